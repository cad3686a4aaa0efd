import { expect } from 'chai';
import type { EventPackage, NotifyBody, PackageHost, SubscriptionDecision } from '../../src/presence/event-package.js';
import type { Subscription } from '../../src/presence/subscription.js';
import { SubscriptionManager } from '../../src/presence/subscriptions.js';
import { ManualTimers } from '../../src/util/timers.js';
import { fakeContext, FakeTransactions, run, silent, subscribe, testDomains } from './helpers.js';

class StatePackage implements EventPackage {
  readonly name = 'presence';
  readonly accept = ['application/pidf+xml'];
  state = 'v0';
  host!: PackageHost;
  attach(host: PackageHost): void {
    this.host = host;
  }
  authorize(): SubscriptionDecision {
    return 'allow';
  }
  body(_sub: Subscription): NotifyBody {
    return { contentType: 'application/pidf+xml', body: Buffer.from(this.state) };
  }
}

describe('presence: NOTIFYs of a large fan-out are spread over turns of the event loop', () => {
  let turns: Array<() => void>;
  let tx: FakeTransactions;
  let pkg: StatePackage;
  let mgr: SubscriptionManager;

  beforeEach(() => {
    turns = [];
    const timers = new ManualTimers();
    tx = new FakeTransactions(() => 200);
    pkg = new StatePackage();
    mgr = new SubscriptionManager({
      domains: testDomains(),
      timers,
      wallClock: { nowMs: () => timers.now() },
      settings: { subscribeMinExpires: 60, subscribeMaxExpires: 3600, maxSubscriptionsPerWatcher: 10, notifyMinIntervalMs: 0 },
      transactions: tx,
      contactFor: () => 'sip:127.0.0.1:5060',
      logger: silent,
      notifyPacing: { sendsPerTurn: 2, nextTurn: (fn) => turns.push(fn) },
    });
    mgr.register(pkg);
  });
  afterEach(() => mgr.close());

  function nextTurn(): void {
    const due = turns.splice(0);
    for (const fn of due) fn();
  }

  it('sends at most sendsPerTurn NOTIFYs a turn, the rest on the following turns, each once and in order', async () => {
    for (let i = 0; i < 5; i++) {
      const res = await run((ctx) => mgr.handleSubscribe(ctx), fakeContext(subscribe({ from: `sip:w${i}@example.com`, callId: `c${i}@test` })));
      expect(res.status).to.equal(200);
    }
    // Five initial NOTIFYs due, all in the same turn: two went out.
    expect(tx.notifies().map((n) => n.callId)).to.deep.equal(['c0@test', 'c1@test']);
    nextTurn();
    expect(tx.notifies().map((n) => n.callId)).to.deep.equal(['c0@test', 'c1@test', 'c2@test', 'c3@test']);
    nextTurn();
    expect(tx.notifies()).to.have.length(5);
    nextTurn();
    expect(tx.notifies()).to.have.length(5);
    expect(turns).to.have.length(0);
  });

  it('a change while a NOTIFY waits for its turn is carried by that NOTIFY (no second one)', async () => {
    for (let i = 0; i < 3; i++) {
      await run((ctx) => mgr.handleSubscribe(ctx), fakeContext(subscribe({ from: `sip:w${i}@example.com`, callId: `c${i}@test` })));
    }
    expect(tx.notifies()).to.have.length(2);
    pkg.state = 'v1';
    nextTurn();
    const bodies = tx.notifies().map((n) => n.body.toString());
    expect(bodies).to.deep.equal(['v0', 'v0', 'v1']);
  });

  it('a subscription ended while waiting sends nothing more', async () => {
    for (let i = 0; i < 3; i++) {
      await run((ctx) => mgr.handleSubscribe(ctx), fakeContext(subscribe({ from: `sip:w${i}@example.com`, callId: `c${i}@test` })));
    }
    mgr.close();
    nextTurn();
    expect(tx.notifies()).to.have.length(2);
  });
});
