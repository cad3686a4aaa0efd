import { expect } from 'chai';
import { parseSubscriptionState, reconnectDelayMs, resubscribeDelayMs } from '../../web/src/retry.js';

describe('web client: when to try again (web/src/retry.ts)', () => {
  describe('reconnectDelayMs', () => {
    it('doubles from 0.5 s and stays at 10 s', () => {
      expect([0, 1, 2, 3, 4, 5, 20].map((n) => reconnectDelayMs(n, 0.5))).to.deep.equal([500, 1000, 2000, 4000, 8000, 10_000, 10_000]);
    });

    it('spreads each delay by ±25 %', () => {
      expect(reconnectDelayMs(1, 0)).to.equal(750);
      expect(reconnectDelayMs(1, 0.999999)).to.equal(1250);
      expect(reconnectDelayMs(-3, 0.5)).to.equal(500);
    });
  });

  describe('parseSubscriptionState (RFC 6665 §8.2.3)', () => {
    it('reads the state, reason, retry-after and expires, case and spaces aside', () => {
      expect(parseSubscriptionState('terminated;reason=deactivated')).to.deep.equal({ state: 'terminated', reason: 'deactivated' });
      expect(parseSubscriptionState(' Terminated ; reason = Probation ; retry-after = 30')).to.deep.equal({ state: 'terminated', reason: 'probation', retryAfterS: 30 });
      expect(parseSubscriptionState('active;expires=599')).to.deep.equal({ state: 'active', expiresS: 599 });
      expect(parseSubscriptionState('pending')).to.deep.equal({ state: 'pending' });
    });

    it('ignores what it cannot read', () => {
      expect(parseSubscriptionState(undefined)).to.equal(undefined);
      expect(parseSubscriptionState('')).to.equal(undefined);
      expect(parseSubscriptionState(';reason=x')).to.equal(undefined);
      expect(parseSubscriptionState('terminated;retry-after=soon;expires=-1;foo')).to.deep.equal({ state: 'terminated' });
    });
  });

  describe('resubscribeDelayMs (RFC 6665 §4.1.3)', () => {
    it('subscribes again at once after deactivated or timeout, then backs off', () => {
      expect(resubscribeDelayMs('deactivated', undefined, 0)).to.equal(0);
      expect(resubscribeDelayMs('timeout', undefined, 0)).to.equal(0);
      expect(resubscribeDelayMs('deactivated', undefined, 1)).to.equal(1000);
      expect(resubscribeDelayMs('deactivated', undefined, 3)).to.equal(4000);
      expect(resubscribeDelayMs('deactivated', undefined, 30)).to.equal(60_000);
    });

    it('waits for retry-after after probation or giveup, 30 s without one', () => {
      expect(resubscribeDelayMs('probation', 5, 0)).to.equal(5000);
      expect(resubscribeDelayMs('giveup', undefined, 0)).to.equal(30_000);
    });

    it('never retries after rejected, noresource or invariant: the answer will not change', () => {
      for (const reason of ['rejected', 'noresource', 'invariant']) expect(resubscribeDelayMs(reason, 10, 0), reason).to.equal(undefined);
    });

    it('may retry at any time without a reason (a refresh answered 481 after the server lost it)', () => {
      expect(resubscribeDelayMs(undefined, undefined, 0)).to.equal(0);
      expect(resubscribeDelayMs('some-new-reason', 2, 0)).to.equal(2000);
      expect(resubscribeDelayMs(undefined, undefined, 2)).to.equal(2000);
    });
  });
});
