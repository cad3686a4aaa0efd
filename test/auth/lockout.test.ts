import { expect } from 'chai';
import { FailureTracker } from '../../src/auth/failure-tracker.js';
import { AuthLockout } from '../../src/auth/lockout.js';

function clock(start = 1_700_000_000_000) {
  const c = { t: start, nowMs: () => c.t };
  return c;
}

const NAT = '198.51.100.7';

describe('auth lock-outs (auth/lockout.ts)', () => {
  describe('FailureTracker', () => {
    it('forgets a window that ran out without a block', () => {
      const c = clock();
      const f = new FailureTracker({ windowMs: 1000, threshold: 3, blockMs: 5000 }, c);
      f.fail('a');
      f.fail('a');
      c.t += 1001;
      expect(f.count('a')).to.equal(0);
      expect(f.fail('a')).to.equal(false);
      expect(f.count('a')).to.equal(1);
    });

    it('counts a member once a window with failDistinct', () => {
      const c = clock();
      const f = new FailureTracker({ windowMs: 1000, threshold: 3, blockMs: 5000 }, c);
      expect([f.failDistinct('s', 'u1'), f.failDistinct('s', 'u1'), f.failDistinct('s', 'u2'), f.failDistinct('s', 'u2')]).to.deep.equal([false, false, false, false]);
      expect(f.count('s')).to.equal(2);
      expect(f.failDistinct('s', 'u3')).to.equal(true);
      expect(f.blockedFor('s')).to.equal(5000);
      expect(f.blockedCount()).to.equal(1);
    });

    it('keeps at most maxKeys, forgetting the least recently failed', () => {
      const c = clock();
      const f = new FailureTracker({ windowMs: 60_000, threshold: 5, blockMs: 5000, maxKeys: 100 }, c);
      for (let i = 0; i < 10_000; i++) f.fail(`flood${i}`);
      expect(f.size).to.equal(100);
      expect(f.count('flood0')).to.equal(0);
      expect(f.count('flood9999')).to.equal(1);
      const g = new FailureTracker({ windowMs: 60_000, threshold: 50, blockMs: 5000, maxKeys: 3 }, c);
      g.fail('a');
      g.fail('b');
      g.fail('a');
      g.fail('c');
      g.fail('d'); // evicts b, the least recently failed, not a
      expect(g.count('a')).to.equal(2);
      expect(g.count('b')).to.equal(0);
    });
  });

  describe('AuthLockout', () => {
    const limits = { windowMs: 300_000, blockMs: 300_000, perSourceUser: 10, usersPerSource: 20, perUser: 20 };

    it('blocks one user behind a NAT after perSourceUser failures; the address and its other users stay open', () => {
      const c = clock();
      const l = new AuthLockout(limits, c);
      const started = [];
      for (let i = 0; i < 10; i++) started.push(...l.fail(NAT, 'stale-phone'));
      expect(started).to.deep.equal(['source_user']);
      expect(l.refuses(NAT, 'stale-phone')).to.equal('source_user');
      expect(l.sourceBlockedFor(NAT)).to.equal(0);
      for (let u = 0; u < 49; u++) expect(l.refuses(NAT, `colleague${u}`)).to.equal(undefined);
      // The same user from elsewhere (its laptop at home) is not refused either.
      expect(l.refuses('203.0.113.1', 'stale-phone')).to.equal(undefined);
      c.t += 300_001;
      expect(l.refuses(NAT, 'stale-phone')).to.equal(undefined);
      expect(l.stats()).to.deep.include({ failures: 10 });
      expect(l.stats().blocks).to.deep.equal({ source_user: 1, source: 0, user: 0 });
      expect(l.stats().refused).to.deep.equal({ source_user: 1, source: 0, user: 0 });
    });

    it('blocks the whole address when usersPerSource distinct users fail from it (password spraying)', () => {
      const c = clock();
      const l = new AuthLockout(limits, c);
      for (let u = 0; u < 19; u++) expect(l.fail(NAT, `name${u}`)).to.deep.equal([]);
      expect(l.sourceBlockedFor(NAT)).to.equal(0);
      expect(l.fail(NAT, 'name19')).to.deep.equal(['source']);
      expect(l.sourceBlockedFor(NAT)).to.equal(300_000);
      expect(l.sourceBlockedFor('198.51.100.8')).to.equal(0);
      expect(l.blockedNow()).to.deep.equal({ source_user: 0, source: 1, user: 0 });
    });

    it('does not take many failures of one user for spraying', () => {
      const c = clock();
      const l = new AuthLockout({ ...limits, perSourceUser: 1000 }, c);
      for (let i = 0; i < 500; i++) l.fail(NAT, 'one');
      expect(l.sourceBlockedFor(NAT)).to.equal(0);
    });

    it('refuses, past perUser failures of a user from anywhere, the addresses that failed for it, not a clean one', () => {
      const c = clock();
      const l = new AuthLockout({ ...limits, perUser: 5 }, c);
      const started = [];
      for (let i = 0; i < 5; i++) started.push(...l.fail(`192.0.2.${i}`, 'ceo'));
      expect(started).to.deep.equal(['user']);
      expect(l.refuses('192.0.2.0', 'ceo')).to.equal('user');
      expect(l.refuses('192.0.2.200', 'ceo')).to.equal(undefined);
      expect(l.refuses('192.0.2.0', 'intern')).to.equal(undefined);
    });

    it('forgives a pair and its user on success', () => {
      const c = clock();
      const l = new AuthLockout(limits, c);
      for (let i = 0; i < 9; i++) l.fail(NAT, 'typo');
      l.succeeded(NAT, 'typo');
      expect(l.fail(NAT, 'typo')).to.deep.equal([]);
      expect(l.refuses(NAT, 'typo')).to.equal(undefined);
    });

    it('stays bounded under a flood of made-up names from made-up addresses', () => {
      const c = clock();
      const l = new AuthLockout({ ...limits, maxKeys: 1000 }, c);
      for (let i = 0; i < 20_000; i++) l.fail(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, `u${i}`);
      // pairs and users at most maxKeys each, sources at most max(1000, maxKeys / 10).
      expect(l.size).to.be.at.most(3000);
    });
  });
});
