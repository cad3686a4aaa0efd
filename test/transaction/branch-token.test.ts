import { expect } from 'chai';
import { branchToken } from '../../src/transaction/branch-token.js';

describe('transaction/branch-token', () => {
  it('gives 11-character base64url tokens, distinct across several pool refills', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const t = branchToken();
      expect(t).to.match(/^[A-Za-z0-9_-]{11}$/);
      seen.add(t);
    }
    expect(seen.size).to.equal(2000);
  });
});
