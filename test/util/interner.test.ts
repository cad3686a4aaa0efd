import { expect } from 'chai';
import { Interner } from '../../src/util/interner.js';

describe('util/interner', () => {
  it('gives one shared value per key, made once', () => {
    const i = new Interner<string[]>(10);
    let made = 0;
    const a = i.get('k', () => (made++, ['x']));
    const b = i.get('k', () => (made++, ['x']));
    expect(a).to.equal(b);
    expect(made).to.equal(1);
    expect(i.get('other', () => ['y'])).to.not.equal(a);
  });

  it('keeps at most max values, starting afresh past it', () => {
    const i = new Interner<number>(3);
    for (let k = 0; k < 3; k++) i.get(String(k), () => k);
    expect(i.size).to.equal(3);
    i.get('3', () => 3);
    expect(i.size).to.equal(1);
    expect(i.get('0', () => 100)).to.equal(100);
  });
});
