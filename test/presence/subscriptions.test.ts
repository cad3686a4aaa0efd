import { expect } from 'chai';
import type { EventPackage, NotifyBody, PackageHost, SubscriptionDecision, SubscriptionEvent } from '../../src/presence/event-package.js';
import type { PresenceStateSink } from '../../src/presence/presence-state-sink.js';
import type { Subscription, SubscriptionRecord, WatcherEvent } from '../../src/presence/subscription.js';
import { SubscriptionManager, type SubscriptionSettings } from '../../src/presence/subscriptions.js';
import type { SipRequest, SipResponse } from '../../src/sip/message.js';
import { ManualTimers } from '../../src/util/timers.js';
import { fakeContext, FakeTransactions, nextOrder, run, settle, silent, subscribe, tcpFlow, testDomains, UDP_FLOW, type Answer, type SubscribeOptions } from './helpers.js';

const EPOCH = Date.UTC(2024, 0, 1);

class FakePackage implements EventPackage {
  readonly accept = ['application/pidf+xml', 'application/xpidf+xml'];
  decision: SubscriptionDecision = 'allow';
  state = 'state-0';
  host!: PackageHost;
  readonly events: Array<{ id: string; event: WatcherEvent; status: string }> = [];
  refreshed = 0;
  removed = 0;
  constructor(readonly name = 'presence') {}
  attach(host: PackageHost): void {
    this.host = host;
  }
  authorize(): SubscriptionDecision {
    return this.decision;
  }
  body(sub: Subscription): NotifyBody {
    return { contentType: 'application/pidf+xml', body: Buffer.from(sub.view === 'polite-block' ? 'neutral' : this.state) };
  }
  onSubscriptionEvent(e: SubscriptionEvent): void {
    if (e.subscription.eventPackage === this.name) this.events.push({ id: e.subscription.id, event: e.event, status: e.subscription.status });
  }
  onRefresh(): void {
    this.refreshed++;
  }
  onRemoved(): void {
    this.removed++;
  }
}

class RecordingSink implements PresenceStateSink {
  readonly changed: SubscriptionRecord[] = [];
  readonly removed: string[] = [];
  publicationChanged(): void {}
  publicationRemoved(): void {}
  subscriptionChanged(s: SubscriptionRecord): void {
    this.changed.push(s);
  }
  subscriptionRemoved(id: string): void {
    this.removed.push(id);
  }
}

describe('presence: subscriptions and NOTIFY (RFC 6665)', () => {
  let timers: ManualTimers;
  let tx: FakeTransactions;
  let pkg: FakePackage;
  let sink: RecordingSink;
  let mgr: SubscriptionManager;
  let responseOrder: Map<SipResponse, number>;

  function setup(settings: Partial<SubscriptionSettings> = {}, answerer: ((req: SipRequest) => Answer | undefined) | null = () => 200): void {
    timers = new ManualTimers();
    tx = new FakeTransactions(answerer ?? undefined);
    pkg = new FakePackage();
    sink = new RecordingSink();
    responseOrder = new Map();
    mgr = new SubscriptionManager({
      domains: testDomains(),
      timers,
      wallClock: { nowMs: () => EPOCH + timers.now() },
      settings: { subscribeMinExpires: 60, subscribeMaxExpires: 3600, maxSubscriptionsPerWatcher: 3, notifyMinIntervalMs: 0, ...settings },
      transactions: tx,
      contactFor: () => 'sip:127.0.0.1:5060',
      sink,
      logger: silent,
    });
    mgr.register(pkg);
  }

  beforeEach(() => setup());
  afterEach(() => mgr.close());

  async function send(o: SubscribeOptions = {}, flow = UDP_FLOW): Promise<SipResponse> {
    const fc = fakeContext(subscribe(o), flow, (res) => responseOrder.set(res, nextOrder()));
    const res = await run((ctx) => mgr.handleSubscribe(ctx), fc);
    await settle();
    return res;
  }

  function lastNotify(): SipRequest {
    const n = tx.notifies();
    expect(n.length, 'a NOTIFY was sent').to.be.greaterThan(0);
    return n[n.length - 1]!;
  }

  it('creates a subscription: 200 with Expires and Contact, then at once a NOTIFY with the state', async () => {
    const res = await send({ expires: 600 });
    expect(res.status).to.equal(200);
    expect(res.getHeader('expires')).to.equal('600');
    expect(res.getHeader('contact')).to.equal('<sip:127.0.0.1:5060>');
    const toTag = res.to.tag!;
    expect(toTag).to.be.a('string');
    const sent = tx.sent[0]!;
    // The 200 left before the NOTIFY (sip.js rejects a NOTIFY that overtakes it).
    expect(responseOrder.get(res)!).to.be.lessThan(sent.order);
    const n = sent.request;
    expect(n.method).to.equal('NOTIFY');
    expect(n.uriText).to.equal('sip:bob@192.0.2.10:5062');
    expect(n.getHeader('event')).to.equal('presence');
    expect(n.getHeader('subscription-state')).to.equal('active;expires=600');
    expect(n.getHeader('content-type')).to.equal('application/pidf+xml');
    expect(n.getHeader('contact')).to.equal('<sip:127.0.0.1:5060>');
    expect(n.maxForwards).to.equal(70);
    expect(n.body.toString()).to.equal('state-0');
    // RFC 6665 §4.2.1: From is our To with our tag, To the watcher's From with its tag.
    expect(n.from.tag).to.equal(toTag);
    expect(n.from.uri.raw).to.equal('sip:alice@example.com');
    expect(n.to.tag).to.equal('wtag');
    expect(n.to.uri.raw).to.equal('sip:bob@example.com');
    expect(n.callId).to.equal('sub-1@test');
    expect(sent.destination).to.deep.equal({ protocol: 'udp', address: '192.0.2.10', port: 5062 });
    expect(mgr.size).to.equal(1);
    expect(pkg.events.map((e) => e.event)).to.deep.equal(['subscribe']);
    expect(sink.changed.length).to.be.greaterThan(0);
    expect(sink.changed[0]!.dialog.callId).to.equal('sub-1@test');
  });

  it('carries the Event id parameter in NOTIFYs and matches refreshes by it', async () => {
    const res = await send({ event: 'presence;id=42' });
    expect(lastNotify().getHeader('event')).to.equal('presence;id=42');
    const wrongId = await send({ event: 'presence;id=43', toTag: res.to.tag!, cseq: 2 });
    expect(wrongId.status).to.equal(481);
    const ok = await send({ event: 'presence;id=42', toTag: res.to.tag!, cseq: 3, expires: 900 });
    expect(ok.status).to.equal(200);
  });

  it('answers a missing or unknown Event with 489 and Allow-Events', async () => {
    for (const event of [null, 'dialog']) {
      const res = await send({ event });
      expect(res.status).to.equal(489);
      expect(res.getHeader('allow-events')).to.equal('presence');
    }
  });

  it('negotiates Accept: the package default, a listed type, or 406', async () => {
    await send({ accept: 'application/xpidf+xml, application/pidf+xml;q=0.5', callId: 'a1' });
    expect(mgr.list()[0]!.contentType).to.equal('application/xpidf+xml');
    await send({ accept: 'application/*', callId: 'a2' });
    expect(mgr.list()[1]!.contentType).to.equal('application/pidf+xml');
    const res = await send({ accept: 'text/plain', callId: 'a3' });
    expect(res.status).to.equal(406);
    expect(res.getHeader('accept')).to.equal('application/pidf+xml, application/xpidf+xml');
  });

  it('clamps Expires to the maximum and answers 423 with Min-Expires below the minimum', async () => {
    expect((await send({ expires: 99999, callId: 'e1' })).getHeader('expires')).to.equal('3600');
    const res = await send({ expires: 10, callId: 'e2' });
    expect(res.status).to.equal(423);
    expect(res.getHeader('min-expires')).to.equal('60');
    expect((await send({ callId: 'e3' })).getHeader('expires')).to.equal('3600');
  });

  it('answers 400 without Contact or From tag, and 404 for a resource not ours', async () => {
    expect((await send({ contact: null })).reason).to.equal('Missing Contact');
    const fc = fakeContext(subscribe());
    fc.ctx.request.setHeader('From', '<sip:bob@example.com>');
    expect((await run((ctx) => mgr.handleSubscribe(ctx), fc)).reason).to.equal('Missing From tag');
    expect((await send({ uri: 'sip:alice@elsewhere.example.org' })).status).to.equal(404);
    expect(mgr.size).to.equal(0);
  });

  it('answers 481 for a SUBSCRIBE naming an unknown dialog', async () => {
    const res = await send({ toTag: 'nope', cseq: 2 });
    expect(res.status).to.equal(481);
  });

  it('refreshes in the dialog: new expiry, remote target, and a NOTIFY of the current state', async () => {
    const first = await send({ expires: 600 });
    const res = await send({ toTag: first.to.tag!, cseq: 2, expires: 1200, contact: 'sip:bob@192.0.2.10:6000' });
    expect(res.status).to.equal(200);
    expect(res.getHeader('expires')).to.equal('1200');
    expect(res.to.tag).to.equal(first.to.tag);
    const n = lastNotify();
    expect(n.uriText).to.equal('sip:bob@192.0.2.10:6000');
    expect(n.getHeader('subscription-state')).to.equal('active;expires=1200');
    expect(n.cseq.seq).to.equal(2);
    expect(pkg.refreshed).to.equal(1);
    // The old expiry no longer applies.
    timers.advance(700_000);
    expect(mgr.size).to.equal(1);
    timers.advance(600_000);
    expect(mgr.size).to.equal(0);
  });

  it('answers an out-of-order CSeq in the dialog with 500 (RFC 3261 §12.2.2)', async () => {
    const first = await send({ cseq: 5 });
    const res = await send({ toTag: first.to.tag!, cseq: 4 });
    expect(res.status).to.equal(500);
  });

  it('unsubscribes with Expires: 0: 200, then a final NOTIFY terminated (RFC 6665 §4.2.1.4)', async () => {
    const first = await send();
    const res = await send({ toTag: first.to.tag!, cseq: 2, expires: 0 });
    expect(res.status).to.equal(200);
    expect(res.getHeader('expires')).to.equal('0');
    const n = lastNotify();
    expect(n.getHeader('subscription-state')).to.equal('terminated;reason=timeout');
    expect(n.body.toString()).to.equal('state-0');
    expect(mgr.size).to.equal(0);
    expect(sink.removed).to.have.length(1);
    expect(pkg.events.map((e) => e.event)).to.deep.equal(['subscribe', 'timeout']);
    expect((await send({ toTag: first.to.tag!, cseq: 3 })).status).to.equal(481);
  });

  it('fetches with Expires: 0 on a new subscription: one NOTIFY, terminated (RFC 6665 §4.4.3)', async () => {
    const res = await send({ expires: 0 });
    expect(res.status).to.equal(200);
    expect(res.getHeader('expires')).to.equal('0');
    const n = tx.notifies();
    expect(n).to.have.length(1);
    expect(n[0]!.getHeader('subscription-state')).to.equal('terminated;reason=timeout');
    expect(n[0]!.body.toString()).to.equal('state-0');
    expect(mgr.size).to.equal(0);
  });

  it('expires a subscription with terminated;reason=timeout, driven by the timer heap', async () => {
    await send({ expires: 60 });
    timers.advance(59_000);
    expect(mgr.size).to.equal(1);
    timers.advance(1_000);
    await settle();
    expect(mgr.size).to.equal(0);
    expect(lastNotify().getHeader('subscription-state')).to.equal('terminated;reason=timeout');
  });

  it('notifies every active watcher of a change, with CSeq going up', async () => {
    await send({ callId: 'w1', fromTag: 'a' });
    await send({ callId: 'w2', fromTag: 'b', from: 'sip:carol@example.com' });
    pkg.state = 'state-1';
    pkg.host.resourceChanged('presence', 'sip:alice@example.com');
    await settle();
    const byCall = (c: string) => tx.notifies().filter((n) => n.callId === c);
    expect(byCall('w1').map((n) => n.cseq.seq)).to.deep.equal([1, 2]);
    expect(byCall('w2').map((n) => n.body.toString())).to.deep.equal(['state-0', 'state-1']);
  });

  it('a resource\'s watchers as they come and go: one, three, back to one, none (the index holds one without a Set)', async () => {
    const alice = 'sip:alice@example.com';
    const watchers = () => mgr.subscriptionsTo('presence', alice).map((s) => s.dialog.callId).sort();
    const w1 = await send({ callId: 'w1', fromTag: 'a' });
    expect(watchers()).to.deep.equal(['w1']);
    const w2 = await send({ callId: 'w2', fromTag: 'b', from: 'sip:carol@example.com' });
    await send({ callId: 'w3', fromTag: 'c', from: 'sip:dave@example.com' });
    expect(watchers()).to.deep.equal(['w1', 'w2', 'w3']);
    expect(mgr.list({ eventPackage: 'presence', resource: alice })).to.have.length(3);
    await send({ callId: 'w1', fromTag: 'a', toTag: w1.to.tag!, cseq: 2, expires: 0 });
    await send({ callId: 'w2', fromTag: 'b', from: 'sip:carol@example.com', toTag: w2.to.tag!, cseq: 2, expires: 0 });
    expect(watchers()).to.deep.equal(['w3']);
    expect(mgr.hasSubscriptionsTo('presence', alice)).to.equal(true);
    pkg.state = 'state-1';
    pkg.host.resourceChanged('presence', alice);
    await settle();
    expect(tx.notifies().filter((n) => n.callId === 'w3').map((n) => n.body.toString())).to.deep.equal(['state-0', 'state-1']);
    const w4 = await send({ callId: 'w4', fromTag: 'd', from: 'sip:erin@example.com' });
    expect(watchers()).to.deep.equal(['w3', 'w4']);
    await send({ callId: 'w4', fromTag: 'd', from: 'sip:erin@example.com', toTag: w4.to.tag!, cseq: 2, expires: 0 });
    timers.advance(3600_000);
    await settle();
    expect(watchers()).to.deep.equal([]);
    expect(mgr.hasSubscriptionsTo('presence', alice)).to.equal(false);
    expect(mgr.resources('presence')).to.deep.equal([]);
  });

  it('keeps one NOTIFY in flight per subscription and coalesces changes into the newest state', async () => {
    setup({}, null);
    await send();
    expect(tx.sent).to.have.length(1);
    for (const s of ['s1', 's2', 's3']) {
      pkg.state = s;
      pkg.host.resourceChanged('presence', 'sip:alice@example.com');
    }
    expect(tx.sent).to.have.length(1);
    tx.sent[0]!.answer(200);
    await settle();
    expect(tx.sent).to.have.length(2);
    expect(tx.sent[1]!.request.body.toString()).to.equal('s3');
    expect(tx.sent[1]!.request.cseq.seq).to.equal(2);
  });

  it('a slow watcher holds up nobody else', async () => {
    setup({}, (req) => (req.callId === 'slow' ? undefined : 200));
    await send({ callId: 'slow', fromTag: 'a' });
    await send({ callId: 'fast', fromTag: 'b', from: 'sip:carol@example.com' });
    pkg.state = 'state-1';
    pkg.host.resourceChanged('presence', 'sip:alice@example.com');
    await settle();
    expect(tx.notifies().filter((n) => n.callId === 'fast')).to.have.length(2);
    expect(tx.notifies().filter((n) => n.callId === 'slow')).to.have.length(1);
  });

  for (const failure of [481, 408, 'timeout', 'transport-error'] as const) {
    it(`ends and frees a subscription whose NOTIFY gets ${failure}`, async () => {
      setup({}, null);
      await send();
      tx.sent[0]!.answer(failure);
      await settle();
      expect(mgr.size).to.equal(0);
      expect(sink.removed).to.have.length(1);
      expect(tx.sent).to.have.length(1);
      expect(pkg.events.map((e) => e.event)).to.deep.equal(['subscribe', 'deactivated']);
    });
  }

  it('rate control: at most one NOTIFY per interval, changes in between coalesced, none lost', async () => {
    setup({ notifyMinIntervalMs: 5000 });
    await send();
    expect(tx.notifies()).to.have.length(1);
    pkg.state = 'a';
    pkg.host.resourceChanged('presence', 'sip:alice@example.com');
    pkg.state = 'b';
    pkg.host.resourceChanged('presence', 'sip:alice@example.com');
    await settle();
    expect(tx.notifies()).to.have.length(1);
    timers.advance(4999);
    await settle();
    expect(tx.notifies()).to.have.length(1);
    timers.advance(1);
    await settle();
    expect(tx.notifies()).to.have.length(2);
    expect(lastNotify().body.toString()).to.equal('b');
  });

  it('rate control never holds back the final NOTIFY', async () => {
    setup({ notifyMinIntervalMs: 60_000 });
    const first = await send();
    await send({ toTag: first.to.tag!, cseq: 2, expires: 0 });
    expect(tx.notifies()).to.have.length(2);
    expect(lastNotify().getHeader('subscription-state')).to.equal('terminated;reason=timeout');
  });

  it('bounds subscriptions per watcher with 403', async () => {
    for (let i = 0; i < 3; i++) expect((await send({ callId: `c${i}` })).status).to.equal(200);
    const res = await send({ callId: 'c3' });
    expect(res.status).to.equal(403);
    expect(res.reason).to.equal('Too Many Subscriptions');
    // A fetch holds nothing, so it is still served.
    expect((await send({ callId: 'c4', expires: 0 })).status).to.equal(200);
    // Another watcher is not affected.
    expect((await send({ callId: 'c5', from: 'sip:carol@example.com' })).status).to.equal(200);
  });

  it('block: 403 at once', async () => {
    pkg.decision = 'block';
    expect((await send()).status).to.equal(403);
    expect(tx.sent).to.have.length(0);
  });

  it('confirm: pending without state, then approve makes it active with the state', async () => {
    pkg.decision = 'confirm';
    const res = await send({ expires: 600 });
    expect(res.status).to.equal(200);
    let n = lastNotify();
    expect(n.getHeader('subscription-state')).to.equal('pending;expires=600');
    expect(n.body.length).to.equal(0);
    // A pending watcher hears of no changes.
    pkg.host.resourceChanged('presence', 'sip:alice@example.com');
    await settle();
    expect(tx.notifies()).to.have.length(1);
    const sub = mgr.list()[0]!;
    expect(mgr.approve(sub)).to.equal(true);
    await settle();
    n = lastNotify();
    expect(n.getHeader('subscription-state')).to.equal('active;expires=600');
    expect(n.body.toString()).to.equal('state-0');
    expect(pkg.events.map((e) => e.event)).to.deep.equal(['subscribe', 'approved']);
  });

  it('reject ends a pending subscription with reason=rejected and no state', async () => {
    pkg.decision = 'confirm';
    await send();
    mgr.reject(mgr.list()[0]!);
    await settle();
    const n = lastNotify();
    expect(n.getHeader('subscription-state')).to.equal('terminated;reason=rejected');
    expect(mgr.size).to.equal(0);
  });

  it('polite-block shows the neutral view, approve shows the real one again', async () => {
    await send();
    const sub = mgr.list()[0]!;
    mgr.politeBlock(sub);
    await settle();
    expect(lastNotify().body.toString()).to.equal('neutral');
    mgr.approve(sub);
    await settle();
    expect(lastNotify().body.toString()).to.equal('state-0');
  });

  it('terminate with any RFC 6665 reason sends the final NOTIFY after the one in flight', async () => {
    setup({}, null);
    await send();
    const sub = mgr.list()[0]!;
    mgr.terminate(sub, 'noresource');
    expect(mgr.size).to.equal(0);
    expect(tx.sent).to.have.length(1);
    tx.sent[0]!.answer(200);
    await settle();
    expect(tx.sent).to.have.length(2);
    expect(tx.sent[1]!.request.getHeader('subscription-state')).to.equal('terminated;reason=noresource');
    tx.sent[1]!.answer(200);
    await settle();
    expect(tx.sent).to.have.length(2);
  });

  it('sends NOTIFYs down the TCP connection the watcher used', async () => {
    await send({ contact: 'sip:bob@192.0.2.20:40000;transport=tcp' }, tcpFlow(12));
    expect(tx.sent[0]!.destination).to.deep.equal({ protocol: 'tcp', address: '192.0.2.20', port: 40000, connectionId: 12, connectionOnly: false });
  });

  it('reports every change to the sink and restores subscriptions from records', async () => {
    const first = await send({ expires: 600 });
    const record = sink.changed[sink.changed.length - 1]!;
    expect(record.dialog.localSeq).to.equal(1);
    expect(record.expiresAtMs).to.equal(EPOCH + 600_000);
    // A new server, the same records: the dialog goes on with the next CSeq.
    const oldTimers = timers;
    setup();
    timers.advance(oldTimers.now() + 10_000);
    const json = JSON.parse(JSON.stringify(record)) as SubscriptionRecord;
    expect(mgr.restore([json, { ...json, id: 'expired', expiresAtMs: EPOCH }])).to.equal(1);
    expect(sink.removed).to.deep.equal(['expired']);
    const res = await send({ toTag: first.to.tag!, cseq: 2, expires: 600 });
    expect(res.status).to.equal(200);
    expect(lastNotify().cseq.seq).to.equal(2);
  });
});
