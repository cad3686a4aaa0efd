import { expect } from 'chai';
import { loadConfig } from '../../src/config/config.js';
import { parsePidf } from '../../src/presence/pidf/index.js';
import type { PresenceAuthorizer } from '../../src/presence/authorizer.js';
import type { PresenceStateSink } from '../../src/presence/presence-state-sink.js';
import { PresenceService, type PresenceSettings } from '../../src/presence/presence-service.js';
import type { PublicationRecord } from '../../src/presence/publication.js';
import type { SubscriptionRecord } from '../../src/presence/subscription.js';
import { parseWatcherInfo } from '../../src/presence/winfo/watcherinfo-document.js';
import type { UserDirectory } from '../../src/registrar/user-directory.js';
import { SipParseError } from '../../src/sip/errors.js';
import type { SipRequest, SipResponse } from '../../src/sip/message.js';
import { ManualTimers } from '../../src/util/timers.js';
import { fakeContext, FakeTransactions, pidf, publish, run, settle, silent, subscribe, tcpFlow, testDomains, type PublishOptions, type SubscribeOptions } from './helpers.js';

const ALICE = 'sip:alice@example.com';
const EPOCH = Date.UTC(2024, 0, 1);

class Sink implements PresenceStateSink {
  publications = new Map<string, PublicationRecord>();
  subscriptions = new Map<string, SubscriptionRecord>();
  publicationChanged(p: PublicationRecord, replaces?: string): void {
    if (replaces) this.publications.delete(replaces);
    this.publications.set(p.etag, p);
  }
  publicationRemoved(etag: string): void {
    this.publications.delete(etag);
  }
  subscriptionChanged(s: SubscriptionRecord): void {
    this.subscriptions.set(s.id, s);
  }
  subscriptionRemoved(id: string): void {
    this.subscriptions.delete(id);
  }
}

function basics(body: Buffer): string[] {
  const r = parsePidf(body);
  if (!r.ok) throw new Error(r.reason);
  return r.document.tuples.map((t) => t.basic ?? '-');
}

describe('presence: PUBLISH and the presence service (RFC 3903, 3856)', () => {
  let timers: ManualTimers;
  let tx: FakeTransactions;
  let sink: Sink;
  let svc: PresenceService;
  let settings: PresenceSettings;

  function setup(over: Partial<PresenceSettings> = {}, authorizer?: PresenceAuthorizer, users?: UserDirectory): void {
    timers = new ManualTimers();
    tx = new FakeTransactions(() => 200);
    sink = new Sink();
    // In line unless a test asks for the reader thread (each thread costs a start-up).
    settings = { ...loadConfig({ env: {} }).presence, parseThread: false, ...over };
    svc = new PresenceService({
      domains: testDomains(),
      timers,
      transactions: tx,
      settings,
      sink,
      authorizer,
      users,
      wallClock: { nowMs: () => EPOCH + timers.now() },
      logger: silent,
    });
  }
  beforeEach(() => setup());
  afterEach(() => svc.close());

  async function pub(o: PublishOptions): Promise<SipResponse> {
    const res = await run((ctx) => svc.handle(ctx), fakeContext(publish(o)));
    await settle();
    return res;
  }
  async function sub(o: SubscribeOptions = {}): Promise<SipResponse> {
    const res = await run((ctx) => svc.handle(ctx), fakeContext(subscribe(o)));
    await settle();
    return res;
  }
  const notifies = (callId = 'sub-1@test'): SipRequest[] => tx.notifies().filter((n) => n.callId === callId);

  it('initial publication: 200 with an unguessable SIP-ETag and the granted Expires', async () => {
    const res = await pub({ body: pidf(ALICE, 'open'), expires: 600 });
    expect(res.status).to.equal(200);
    const etag = res.getHeader('sip-etag')!;
    expect(etag).to.match(/^[A-Za-z0-9_-]{22}$/);
    expect(res.getHeader('expires')).to.equal('600');
    const other = await pub({ body: pidf(ALICE, 'open', { tuple: 't2' }), expires: 600 });
    expect(other.getHeader('sip-etag')).to.not.equal(etag);
    expect(svc.publications(ALICE)).to.have.length(2);
    expect(sink.publications.size).to.equal(2);
  });

  it('the default Expires is an hour, shortened to the maximum', async () => {
    expect((await pub({ body: pidf(ALICE, 'open') })).getHeader('expires')).to.equal('3600');
    setup({ publishMaxExpires: 900 });
    expect((await pub({ body: pidf(ALICE, 'open') })).getHeader('expires')).to.equal('900');
  });

  it('answers 404 for a presentity not of our domain', async () => {
    expect((await pub({ uri: 'sip:alice@elsewhere.example.org', body: pidf('sip:alice@elsewhere.example.org', 'open') })).status).to.equal(404);
  });

  it('answers 404 to PUBLISH for a user the directory does not know; SUBSCRIBE does not tell who exists', async () => {
    setup({}, undefined, { exists: async (aor) => aor !== ALICE && aor !== 'sip:nobody@example.com' });
    expect((await pub({ body: pidf(ALICE, 'open') })).status).to.equal(404);
    // A watcher gets the same answer for a user without an account as for one that never
    // published: 200, active under the open policy, and a neutral document.
    const unknown = await sub({ uri: 'sip:nobody@example.com', callId: 'u' });
    const known = await sub({ uri: 'sip:carol@example.com', callId: 'k' });
    expect([unknown.status, unknown.reason, unknown.getHeader('expires')]).to.deep.equal([known.status, known.reason, known.getHeader('expires')]);
    expect(unknown.status).to.equal(200);
    const [nu] = notifies('u');
    const [nk] = notifies('k');
    expect(nu!.getHeader('subscription-state')).to.equal(nk!.getHeader('subscription-state'));
    expect(nu!.body.toString().replace('nobody', 'carol')).to.equal(nk!.body.toString());
    expect(basics(nu!.body)).to.not.include('open');
    // Under confirm both are pending, without state.
    setup({ defaultPolicy: 'confirm' }, undefined, { exists: async (aor) => aor !== 'sip:nobody@example.com' });
    await sub({ uri: 'sip:nobody@example.com', callId: 'u2' });
    await sub({ uri: 'sip:carol@example.com', callId: 'k2' });
    expect(notifies('u2')[0]!.getHeader('subscription-state')).to.match(/^pending;expires=/);
    expect(notifies('k2')[0]!.getHeader('subscription-state')).to.match(/^pending;expires=/);
    expect(notifies('u2')[0]!.body.length).to.equal(0);
  });

  it('accepts a pres: entity and a Request-URI with port and parameters', async () => {
    expect((await pub({ uri: 'sip:alice@example.com:5060;transport=udp', body: pidf('pres:alice@example.com', 'open') })).status).to.equal(200);
  });

  it('bodies: 415 for another type or a content coding, 413 above the limit, 400 with the reason for bad PIDF', async () => {
    const type = await pub({ body: '{}', contentType: 'application/json' });
    expect(type.status).to.equal(415);
    expect(type.getHeader('accept')).to.equal('application/pidf+xml');
    const coded = await pub({ body: pidf(ALICE, 'open'), extra: ['Content-Encoding: gzip'] });
    expect(coded.status).to.equal(415);
    expect(coded.getHeader('accept-encoding')).to.equal('identity');
    setup({ maxDocumentBytes: 256 });
    const big = await pub({ body: pidf(ALICE, 'open', { note: 'x'.repeat(400) }) });
    expect(big.status).to.equal(413);
    const bad = await pub({ body: '<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:alice@example.com"><tuple id="t"></presence>' });
    expect(bad.status).to.equal(400);
    expect(bad.reason).to.not.equal('Bad Request');
    const wrong = await pub({ body: '<presence xmlns="urn:ietf:params:xml:ns:pidf"/>' });
    expect(wrong.status).to.equal(400);
    expect(wrong.reason).to.match(/entity/);
  });

  it('bodies keep RFC 3903 §6 order: an unknown entity-tag is 412, a removal 200, whatever the body', async () => {
    expect((await pub({ body: pidf(ALICE, 'open'), contentType: 'garbage', ifMatch: 'nosuchtag' })).status).to.equal(412);
    const etag = (await pub({ body: pidf(ALICE, 'open') })).getHeader('sip-etag')!;
    const removal = await pub({ body: pidf(ALICE, 'open'), contentType: 'garbage', ifMatch: etag, expires: 0 });
    expect(removal.status).to.equal(200);
    expect(svc.publications(ALICE)).to.have.length(0);
    // On its own the same body is the 400 it always was.
    const alone = await pub({ body: pidf(ALICE, 'open'), contentType: 'garbage' });
    expect([alone.status, alone.reason]).to.deep.equal([400, 'Bad Content-Type']);
  });

  it('on the reader thread: the same answers, and a publication that expires while its document is read is 412', async () => {
    await svc.close();
    setup({ parseThread: true });
    const first = await pub({ body: pidf(ALICE, 'open'), expires: 600 });
    expect(first.status).to.equal(200);
    const bad = await pub({ body: '<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:alice@example.com"><tuple id="t"></presence>' });
    expect(bad.status).to.equal(400);
    expect(bad.reason).to.not.equal('Bad Request');
    const modify = pub({ body: pidf(ALICE, 'closed'), ifMatch: first.getHeader('sip-etag')! });
    timers.advance(601_000);
    expect((await modify).status).to.equal(412);
    expect(svc.publications(ALICE)).to.have.length(0);
    // Nobody watches: only the verdict crossed back; a watcher's first NOTIFY reads the body.
    expect((await pub({ body: pidf(ALICE, 'open', { tuple: 'z' }) })).status).to.equal(200);
    expect((await sub()).status).to.equal(200);
    expect(basics(notifies().at(-1)!.body)).to.deep.equal(['open']);
    // Watched: the document crossed back whole and is composed at once.
    expect((await pub({ body: pidf(ALICE, 'closed', { tuple: 'y' }) })).status).to.equal(200);
    expect(basics(notifies().at(-1)!.body)).to.deep.equal(['closed', 'open']);
  });

  it('shares one copy of equal tuple ids and of the flow among the publications that hold them', async () => {
    await pub({ body: pidf(ALICE, 'open', { tuple: 'a' }) });
    await pub({ uri: 'sip:bob@example.com', body: pidf('sip:bob@example.com', 'closed', { tuple: 'a' }) });
    const [a] = svc.compositor.publications.of(ALICE);
    const [b] = svc.compositor.publications.of('sip:bob@example.com');
    expect(a!.tupleIds).to.deep.equal(['a']);
    expect(a!.tupleIds).to.equal(b!.tupleIds);
    expect(a!.origin).to.be.a('string');
    expect(a!.origin).to.equal(b!.origin);
  });

  it('keeps no parsed document, watched or not: the state is composed from the bodies', async () => {
    await pub({ body: pidf(ALICE, 'open', { tuple: 'a' }) });
    await pub({ body: pidf(ALICE, 'closed', { tuple: 'b' }) });
    const held = () => svc.compositor.publications.of(ALICE).map((p) => p.document !== undefined);
    expect(held()).to.deep.equal([false, false]);
    expect((await sub()).status).to.equal(200);
    expect(basics(notifies().at(-1)!.body)).to.deep.equal(['closed', 'open']);
    // Read for that watcher, then dropped again: only the bytes stay (issue 15).
    expect(held()).to.deep.equal([false, false]);
    await pub({ body: pidf(ALICE, 'open', { tuple: 'c' }) });
    expect(held()).to.deep.equal([false, false, false]);
    expect(basics(notifies().at(-1)!.body)).to.deep.equal(['open', 'closed', 'open']);
    // A modify of one device while watched: the others are read again from their bodies.
    await pub({ body: pidf(ALICE, 'closed', { tuple: 'a' }), ifMatch: svc.compositor.publications.of(ALICE)[0]!.etag });
    expect(basics(notifies().at(-1)!.body)).to.deep.equal(['closed', 'open', 'closed']);
  });

  it('answers 403 when the authorizer refuses the publisher', async () => {
    setup({}, { authorizePublish: async () => false, decideSubscription: () => 'allow' });
    expect((await pub({ body: pidf(ALICE, 'open') })).status).to.equal(403);
    expect(svc.publications()).to.have.length(0);
  });

  it('expires each publication on its own and composes what is left', async () => {
    await sub({ expires: 3600 });
    await pub({ body: pidf(ALICE, 'open', { tuple: 'phone' }), expires: 100 });
    await pub({ body: pidf(ALICE, 'closed', { tuple: 'laptop' }), expires: 200 });
    expect(basics(notifies().at(-1)!.body)).to.deep.equal(['closed', 'open']);
    timers.advance(100_000);
    await settle();
    expect(basics(notifies().at(-1)!.body)).to.deep.equal(['closed']);
    timers.advance(100_000);
    await settle();
    expect(basics(notifies().at(-1)!.body)).to.deep.equal([]);
    expect(notifies()).to.have.length(5);
    expect(sink.publications.size).to.equal(0);
  });

  it('an initial PUBLISH of the same tuples from the same flow replaces that device\'s older publication', async () => {
    await sub({ expires: 3600 });
    // baresip: two initial PUBLISHes at start, then a removal of the last one only.
    await pub({ body: pidf(ALICE, 'open', { tuple: 't4109' }), expires: 600 });
    const second = await pub({ body: pidf(ALICE, 'open', { tuple: 't4109' }), expires: 600 });
    expect(svc.publications(ALICE).map((p) => p.etag)).to.deep.equal([second.getHeader('sip-etag')]);
    expect(sink.publications.size).to.equal(1);
    expect((await pub({ ifMatch: second.getHeader('sip-etag')!, expires: 0 })).status).to.equal(200);
    expect(basics(notifies().at(-1)!.body)).to.deep.equal([]);
    // Another flow is another device, and other tuples from the same flow another publication.
    await pub({ body: pidf(ALICE, 'open', { tuple: 't4109' }), expires: 600 });
    const other = await run((ctx) => svc.handle(ctx), fakeContext(publish({ body: pidf(ALICE, 'closed', { tuple: 't4109' }), expires: 600 }), tcpFlow(7)));
    expect(other.status).to.equal(200);
    await pub({ body: pidf(ALICE, 'open', { tuple: 'other' }), expires: 600 });
    expect(svc.publications(ALICE)).to.have.length(3);
  });

  it('a modify that changes nothing sends no NOTIFY; a refresh neither', async () => {
    await sub();
    const first = await pub({ body: pidf(ALICE, 'open') });
    expect(notifies()).to.have.length(2);
    const same = await pub({ ifMatch: first.getHeader('sip-etag')!, body: pidf(ALICE, 'open') });
    expect(same.status).to.equal(200);
    await pub({ ifMatch: same.getHeader('sip-etag')! });
    expect(notifies()).to.have.length(2);
  });

  it('applies concurrent PUBLISHes of one presentity one at a time, in arrival order', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let calls = 0;
    setup({}, {
      authorizePublish: async () => {
        if (calls++ === 0) await gate;
        return true;
      },
      decideSubscription: () => 'allow',
    });
    await sub();
    const p1 = run((ctx) => svc.handle(ctx), fakeContext(publish({ body: pidf(ALICE, 'open', { tuple: 'a' }) })));
    const p2 = run((ctx) => svc.handle(ctx), fakeContext(publish({ body: pidf(ALICE, 'closed', { tuple: 'b' }) })));
    await settle();
    expect(notifies()).to.have.length(1);
    release();
    await Promise.all([p1, p2]);
    await settle();
    const bodies = notifies().slice(1).map((n) => basics(n.body));
    // The second PUBLISH waited for the first: no watcher ever saw b without a.
    expect(bodies).to.not.deep.include(['closed']);
    expect(bodies.at(-1)).to.deep.equal(['closed', 'open']);
    const [r1, r2] = await Promise.all([p1, p2]);
    expect(r1.status).to.equal(200);
    expect(r2.status).to.equal(200);
    expect(svc.publications(ALICE).map((p) => p.publishedAtMs)).to.have.length(2);
  });

  it('bounds publications per presentity: the one closest to expiry gives way', async () => {
    setup({ maxPublicationsPerPresentity: 2 });
    const a = await pub({ body: pidf(ALICE, 'open', { tuple: 'a' }), expires: 100 });
    await pub({ body: pidf(ALICE, 'open', { tuple: 'b' }), expires: 600 });
    await pub({ body: pidf(ALICE, 'open', { tuple: 'c' }), expires: 600 });
    expect(svc.publications(ALICE)).to.have.length(2);
    expect((await pub({ ifMatch: a.getHeader('sip-etag')! })).status).to.equal(412);
  });

  it('a polite-blocked watcher sees the neutral document, the same bytes for all such watchers', async () => {
    await pub({ body: pidf(ALICE, 'open') });
    await sub({ callId: 'c1', from: 'sip:bob@example.com' });
    await sub({ callId: 'c2', from: 'sip:carol@example.com' });
    expect(await svc.politeBlock(ALICE, 'sip:bob@example.com')).to.equal(1);
    await settle();
    expect(basics(notifies('c1').at(-1)!.body)).to.deep.equal([]);
    expect(basics(notifies('c2').at(-1)!.body)).to.deep.equal(['open']);
    // The full document is built once and shared.
    await pub({ body: pidf(ALICE, 'closed', { tuple: 't9' }) });
    await sub({ callId: 'c3', from: 'sip:dave@example.com' });
    expect(notifies('c2').at(-1)!.body).to.equal(notifies('c3').at(-1)!.body);
    // Bob blocked for good: final NOTIFY with reason=rejected, and a new SUBSCRIBE gets 403.
    expect(await svc.reject(ALICE, 'sip:bob@example.com')).to.equal(1);
    await settle();
    expect(notifies('c1').at(-1)!.getHeader('subscription-state')).to.equal('terminated;reason=rejected');
    expect((await sub({ callId: 'c4', from: 'sip:bob@example.com' })).status).to.equal(403);
  });

  it('winfo: full document, then partial ones with versions going up; refresh gives full again', async () => {
    const owner = await sub({ callId: 'wi', event: 'presence.winfo', from: ALICE, accept: 'application/watcherinfo+xml' });
    expect(owner.status).to.equal(200);
    const doc = (n: SipRequest) => {
      const r = parseWatcherInfo(n.body);
      if (!r.ok) throw new Error(r.reason);
      return r.document;
    };
    let d = doc(notifies('wi')[0]!);
    expect(d.version).to.equal(0);
    expect(d.state).to.equal('full');
    expect(d.watcherLists[0]!.resource).to.equal(ALICE);
    expect(d.watcherLists[0]!.package).to.equal('presence');
    expect(d.watcherLists[0]!.watchers).to.have.length(0);
    await sub({ callId: 'b1', from: 'sip:bob@example.com' });
    d = doc(notifies('wi')[1]!);
    expect(d.version).to.equal(1);
    expect(d.state).to.equal('partial');
    expect(d.watcherLists[0]!.watchers.map((w) => [w.uri, w.status, w.event])).to.deep.equal([['sip:bob@example.com', 'active', 'subscribe']]);
    const bobId = d.watcherLists[0]!.watchers[0]!.id;
    svc.terminateSubscription(bobId, 'deactivated');
    await settle();
    d = doc(notifies('wi')[2]!);
    expect(d.version).to.equal(2);
    expect(d.watcherLists[0]!.watchers.map((w) => [w.id, w.status, w.event])).to.deep.equal([[bobId, 'terminated', 'deactivated']]);
    await sub({ callId: 'c1', from: 'sip:carol@example.com' });
    await sub({ callId: 'wi', event: 'presence.winfo', from: ALICE, toTag: owner.to.tag!, cseq: 2, expires: 600 });
    d = doc(notifies('wi').at(-1)!);
    expect(d.state).to.equal('full');
    expect(d.version).to.equal(4);
    expect(d.watcherLists[0]!.watchers.map((w) => w.uri)).to.deep.equal(['sip:carol@example.com']);
    // Only the presentity may see its watchers.
    expect((await sub({ callId: 'x', event: 'presence.winfo', from: 'sip:eve@example.com' })).status).to.equal(403);
  });

  it('confirm policy: pending, then approve; the decision sticks', async () => {
    setup({ defaultPolicy: 'confirm' });
    await pub({ body: pidf(ALICE, 'open') });
    await sub({ callId: 'c1' });
    expect(notifies('c1')[0]!.getHeader('subscription-state')).to.match(/^pending;/);
    expect(svc.listSubscriptions({ resource: ALICE })[0]!.status).to.equal('pending');
    expect(await svc.approve(ALICE, 'sip:bob@example.com')).to.equal(1);
    await settle();
    expect(notifies('c1')[1]!.getHeader('subscription-state')).to.match(/^active;/);
    expect(basics(notifies('c1')[1]!.body)).to.deep.equal(['open']);
    await sub({ callId: 'c2' });
    expect(notifies('c2')[0]!.getHeader('subscription-state')).to.match(/^active;/);
  });

  it('a deleted account: noresource to its watchers, rejected as a watcher, its publications gone', async () => {
    expect((await pub({ body: pidf(ALICE, 'open') })).status).to.equal(200);
    await sub({ callId: 'bob-watches' });
    await sub({ callId: 'alice-winfo', from: ALICE, fromTag: 'a1', event: 'presence.winfo' });
    await sub({ callId: 'alice-watches', from: ALICE, fromTag: 'a2', uri: 'sip:carol@example.com' });
    const carolWatched = await sub({ callId: 'dave-watches', from: 'sip:dave@example.com', fromTag: 'd', uri: 'sip:carol@example.com' });
    expect(carolWatched.status).to.equal(200);
    expect(svc.listSubscriptions()).to.have.length(4);
    expect(svc.accountDeleted(ALICE)).to.equal(3);
    await settle();
    const last = (callId: string) => notifies(callId).at(-1)!;
    expect(last('bob-watches').getHeader('subscription-state')).to.equal('terminated;reason=noresource');
    expect(last('bob-watches').body.length).to.equal(0);
    expect(last('alice-winfo').getHeader('subscription-state')).to.equal('terminated;reason=noresource');
    expect(last('alice-watches').getHeader('subscription-state')).to.equal('terminated;reason=rejected');
    expect(svc.listSubscriptions().map((x) => x.watcher)).to.deep.equal(['sip:dave@example.com']);
    expect(svc.publications(ALICE)).to.have.length(0);
    expect(svc.composedDocument(ALICE).toString()).to.not.contain('open');
    expect(svc.accountDeleted(ALICE)).to.equal(0);
  });

  it('admin view: presentities, publications, subscriptions', async () => {
    await pub({ body: pidf(ALICE, 'open') });
    await sub({ uri: 'sip:carol@example.com', callId: 'c1' });
    expect(svc.presentities().map((p) => [p.presentity, p.publications, p.watchers])).to.deep.equal([
      [ALICE, 1, 0],
      ['sip:carol@example.com', 0, 1],
    ]);
    expect(svc.listSubscriptions({ watcher: 'sip:bob@example.com' })).to.have.length(1);
    expect(svc.terminateSubscription('nope')).to.equal(false);
    expect(basics(svc.composedDocument(ALICE))).to.deep.equal(['open']);
  });

  it('answers NOTIFY from a client with 481: we hold no subscription it could match', async () => {
    const fc = fakeContext(subscribe());
    fc.ctx.request.method = 'NOTIFY';
    expect((await run((ctx) => svc.handle(ctx), fc)).status).to.equal(481);
  });

  it('hostile input: every odd header gets an answer, nothing but SipParseError escapes', async () => {
    const odd = ['', ' ', ';', '*', '<>', '"', 'a,b,c', '0', '-1', '99999999999', 'presence;id', 'presence;id=', '<sip:x@y>;tag=', '\u00ff', 'x'.repeat(2000)];
    const headers = ['Event', 'Expires', 'Accept', 'Contact', 'Record-Route', 'SIP-If-Match', 'Content-Type', 'Content-Encoding', 'From', 'To'];
    let answered = 0;
    for (const h of headers) {
      for (const v of odd) {
        for (const req of [subscribe({ callId: `f-${h}-${answered}` }), publish({ body: pidf(ALICE, 'open') })]) {
          req.setHeader(h, v);
          const fc = fakeContext(req);
          try {
            await svc.handle(fc.ctx);
          } catch (err) {
            expect(err).to.be.instanceOf(SipParseError);
            fc.ctx.reply(400, (err as SipParseError).reason);
          }
          expect(fc.final().status).to.be.within(200, 699);
          answered++;
        }
      }
    }
    await settle();
    expect(answered).to.equal(headers.length * odd.length * 2);
  });

  it('survives a restart: the sink records bring publications and subscriptions back', async () => {
    const first = await pub({ body: pidf(ALICE, 'open'), expires: 600 });
    const s = await sub({ expires: 600 });
    const pubs = [...sink.publications.values()];
    const subs = [...sink.subscriptions.values()].map((r) => JSON.parse(JSON.stringify(r)) as SubscriptionRecord);
    svc.close();
    const elapsed = timers.now();
    setup();
    timers.advance(elapsed + 1000);
    expect(svc.restore(pubs, subs)).to.deep.equal({ publications: 1, subscriptions: 1 });
    expect((await pub({ ifMatch: first.getHeader('sip-etag')!, body: pidf(ALICE, 'closed') })).status).to.equal(200);
    const n = notifies().at(-1)!;
    expect(basics(n.body)).to.deep.equal(['closed']);
    expect(n.cseq.seq).to.equal(2);
    expect(n.to.tag).to.equal('wtag');
    expect(n.from.tag).to.equal(s.to.tag);
  });

  it('restores publications in parts (start-up pages), one presentity across two parts, then the subscriptions with a NOTIFY of all', async () => {
    await pub({ body: pidf(ALICE, 'open', { tuple: 'phone' }), expires: 600 });
    await pub({ body: pidf(ALICE, 'closed', { tuple: 'desk' }), expires: 600 });
    await sub({ expires: 600 });
    const pubs = [...sink.publications.values()];
    const subs = [...sink.subscriptions.values()].map((r) => JSON.parse(JSON.stringify(r)) as SubscriptionRecord);
    expect(pubs).to.have.length(2);
    svc.close();
    const elapsed = timers.now();
    setup();
    timers.advance(elapsed + 1000);
    expect(svc.restorePublications(pubs.slice(0, 1)) + svc.restorePublications(pubs.slice(1))).to.equal(2);
    expect(notifies()).to.have.length(0);
    expect(svc.restoreSubscriptions(subs, { notify: true })).to.equal(1);
    await settle();
    expect(basics(notifies().at(-1)!.body).sort()).to.deep.equal(['closed', 'open']);
  });
});
