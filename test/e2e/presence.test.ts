import { expect } from 'chai';
import type { Json } from '../../src/config/config.js';
import { ManualTimers } from '../../src/util/timers.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { advance, basics, Bench, inDialog, isNotify, network, pidf, PIDF, publishReq, watch } from './presence-support.js';

describe('e2e: presence over real sockets (RFC 3903, 3856, 6665, 3857)', function () {
  this.timeout(15000);

  describe('with real time', () => {
    const b = Bench.perSuite({ presence: { maxSubscriptionsPerWatcher: 4 } });

    it('one PUA publishes, two WUAs watch, each sees the composed document', async () => {
      const alice = b.user('alice');
      const aor = `sip:${alice}@example.com`;
      const pua = await b.ua(alice);
      const w1 = await watch(await b.ua(b.user('bob')), aor);
      const w2 = await watch(await b.ua(b.user('carol'), 'tcp'), aor);
      // Nobody published yet: a neutral document, never an error.
      for (const w of [w1, w2]) {
        expect(w.first.getHeader('subscription-state')).to.equal('active;expires=600');
        expect(w.first.getHeader('content-type')).to.equal(PIDF);
        expect(w.first.body.toString()).to.contain(`entity="${aor}"`);
        expect(basics(w.first.body)).to.not.include('open');
      }
      const pub = await pua.transact(publishReq(pua, aor, { body: pidf(aor, 'open', 't1', 'at my desk'), expires: 600 }));
      expect(pub.status).to.equal(200);
      expect(pub.getHeader('sip-etag')).to.be.a('string').with.length.greaterThan(10);
      expect(pub.getHeader('expires')).to.equal('600');
      for (const w of [w1, w2]) {
        const n = await w.ua.waitRequest(isNotify(w.callId));
        expect(basics(n.body)).to.deep.equal(['open']);
        expect(n.body.toString()).to.contain('at my desk');
        expect(n.cseq.seq).to.equal(2);
        expect(n.getHeader('event')).to.equal('presence');
        expect(n.to.tag).to.equal(w.fromTag);
        expect(n.from.tag).to.equal(w.toTag);
      }
      const adminView = b.srv.server.presence.listSubscriptions({ resource: aor });
      expect(adminView.map((s) => s.transport).sort()).to.deep.equal(['tcp', 'udp']);
    });

    it('two devices of one presentity compose into one document', async () => {
      const alice = b.user('alice');
      const aor = `sip:${alice}@example.com`;
      const phone = await b.ua(alice);
      const laptop = await b.ua(alice, 'tcp');
      const w = await watch(await b.ua(b.user('bob')), aor);
      expect((await phone.transact(publishReq(phone, aor, { body: pidf(aor, 'open', 'phone') }))).status).to.equal(200);
      await w.ua.waitRequest(isNotify(w.callId));
      expect((await laptop.transact(publishReq(laptop, aor, { body: pidf(aor, 'closed', 'laptop') }))).status).to.equal(200);
      const n = await w.ua.waitRequest(isNotify(w.callId));
      expect(n.body.toString()).to.contain('phone').and.to.contain('laptop');
      expect(basics(n.body).sort()).to.deep.equal(['closed', 'open']);
      expect(b.srv.server.presence.publications(aor)).to.have.length(2);
    });

    it('takes the presentity from the Request-URI user and host, whatever port (baresip)', async () => {
      const alice = b.user('alice');
      const aor = `sip:${alice}@example.com`;
      const pua = await b.ua(alice);
      const w = await watch(await b.ua(b.user('bob')), aor);
      const res = await pua.transact(publishReq(pua, aor, { uri: `sip:${alice}@example.com:5060;transport=udp`, body: pidf(aor, 'open') }));
      expect(res.status).to.equal(200);
      expect(basics((await w.ua.waitRequest(isNotify(w.callId))).body)).to.deep.equal(['open']);
    });

    it('refresh, modify and remove (RFC 3903 §4.3-4.5)', async () => {
      const alice = b.user('alice');
      const aor = `sip:${alice}@example.com`;
      const pua = await b.ua(alice);
      const w = await watch(await b.ua(b.user('bob')), aor);
      const initial = await pua.transact(publishReq(pua, aor, { body: pidf(aor, 'open'), expires: 300 }));
      const etag1 = initial.getHeader('sip-etag')!;
      await w.ua.waitRequest(isNotify(w.callId));
      // Refresh: no body, new entity-tag, no NOTIFY (nothing changed).
      const refresh = await pua.transact(publishReq(pua, aor, { etag: etag1, expires: 300 }));
      expect(refresh.status).to.equal(200);
      const etag2 = refresh.getHeader('sip-etag')!;
      expect(etag2).to.not.equal(etag1);
      expect((await pua.transact(publishReq(pua, aor, { etag: etag1, expires: 300 }))).status).to.equal(412);
      // Modify: body and SIP-If-Match, new entity-tag, watchers see it.
      const modify = await pua.transact(publishReq(pua, aor, { etag: etag2, body: pidf(aor, 'closed'), expires: 300 }));
      expect(modify.status).to.equal(200);
      const etag3 = modify.getHeader('sip-etag')!;
      expect(etag3).to.not.equal(etag2);
      const n1 = await w.ua.waitRequest(isNotify(w.callId));
      expect(basics(n1.body)).to.deep.equal(['closed']);
      // Remove: Expires 0; the presentity is back to the neutral document.
      const remove = await pua.transact(publishReq(pua, aor, { etag: etag3, expires: 0 }));
      expect(remove.status).to.equal(200);
      expect(remove.getHeader('expires')).to.equal('0');
      const n2 = await w.ua.waitRequest(isNotify(w.callId));
      expect(n2.body.toString()).to.not.contain('<tuple id="t1"');
      expect(b.srv.server.presence.publications(aor)).to.have.length(0);
      expect((await pua.transact(publishReq(pua, aor, { etag: etag3, expires: 300 }))).status).to.equal(412);
    });

    it('answers every PUBLISH error status', async () => {
      const alice = b.user('alice');
      const aor = `sip:${alice}@example.com`;
      const pua = await b.ua(alice);
      const noEvent = await pua.transact(publishReq(pua, aor, { event: null, body: pidf(aor, 'open') }));
      expect(noEvent.status).to.equal(489);
      expect(noEvent.getHeader('allow-events')).to.equal('presence, dialog, message-summary');
      expect((await pua.transact(publishReq(pua, aor, { event: 'conference', body: pidf(aor, 'open') }))).status).to.equal(489);
      // A PIDF body published as dialog state is the wrong type for that package.
      expect((await pua.transact(publishReq(pua, aor, { event: 'dialog', body: pidf(aor, 'open') }))).status).to.equal(415);
      expect((await pua.transact(publishReq(pua, aor, { etag: 'no-such-etag', expires: 600 }))).status).to.equal(412);
      const brief = await pua.transact(publishReq(pua, aor, { body: pidf(aor, 'open'), expires: 10 }));
      expect(brief.status).to.equal(423);
      expect(brief.getHeader('min-expires')).to.equal('60');
      const long = await pua.transact(publishReq(pua, aor, { body: pidf(aor, 'open'), expires: 99999 }));
      expect(long.getHeader('expires')).to.equal('3600');
      const type = await pua.transact(publishReq(pua, aor, { body: 'hello', contentType: 'text/plain' }));
      expect(type.status).to.equal(415);
      expect(type.getHeader('accept')).to.equal(PIDF);
      const bad = await pua.transact(publishReq(pua, aor, { body: '<presence xmlns="urn:ietf:params:xml:ns:pidf"' }));
      expect(bad.status).to.equal(400);
      expect(bad.reason).to.not.equal('Bad Request');
      expect(bad.reason.length).to.be.greaterThan(3);
      const other = await pua.transact(publishReq(pua, aor, { body: pidf('sip:mallory@example.com', 'open') }));
      expect(other.status).to.equal(400);
      expect(other.reason).to.match(/entity/i);
      const noBody = await pua.transact(publishReq(pua, aor, { expires: 600 }));
      expect(noBody.status).to.equal(400);
    });

    it('answers every SUBSCRIBE error status, and NOTIFY from a client with 481', async () => {
      const bob = await b.ua(b.user('bob'));
      const aor = `sip:${b.user('alice')}@example.com`;
      const sub = (headers: Record<string, string | number>, opts: { toTag?: string } = {}) => bob.transact(bob.request('SUBSCRIBE', aor, { headers, toTag: opts.toTag }));
      const noEvent = await sub({ Expires: 600 });
      expect(noEvent.status).to.equal(489);
      expect(noEvent.getHeader('allow-events')).to.contain('presence').and.to.contain('presence.winfo');
      expect((await sub({ Event: 'ua-profile' })).status).to.equal(489);
      // Another user's mailbox is not bob's to watch.
      expect((await sub({ Event: 'message-summary' })).status).to.equal(403);
      const na = await sub({ Event: 'presence', Accept: 'text/html' });
      expect(na.status).to.equal(406);
      expect(na.getHeader('accept')).to.equal(PIDF);
      const brief = await sub({ Event: 'presence', Expires: 5 });
      expect(brief.status).to.equal(423);
      expect(brief.getHeader('min-expires')).to.equal('60');
      expect((await sub({ Event: 'presence' }, { toTag: 'unknown' })).status).to.equal(481);
      const notify = await bob.transact(bob.request('NOTIFY', aor, { headers: { Event: 'presence', 'Subscription-State': 'active' } }));
      expect(notify.status).to.equal(481);
      // maxSubscriptionsPerWatcher is 4 on this server.
      const carol = await b.ua(b.user('carol'));
      for (let i = 0; i < 4; i++) await watch(carol, `sip:${b.user('dave')}@example.com`);
      const over = await carol.transact(carol.request('SUBSCRIBE', aor, { headers: { Event: 'presence', Expires: 600 } }));
      expect(over.status).to.equal(403);
      const other = await b.ua(b.user('erin'));
      expect((await watch(other, aor)).res.status).to.equal(200);
    });

    it('unsubscribes (final NOTIFY terminated) and fetches (one NOTIFY, terminated)', async () => {
      const alice = b.user('alice');
      const aor = `sip:${alice}@example.com`;
      const pua = await b.ua(alice);
      await pua.transact(publishReq(pua, aor, { body: pidf(aor, 'open') }));
      const bob = await b.ua(b.user('bob'));
      const w = await watch(bob, aor);
      expect(basics(w.first.body)).to.deep.equal(['open']);
      const unsub = await bob.transact(inDialog(w, 0));
      expect(unsub.status).to.equal(200);
      const last = await bob.waitRequest(isNotify(w.callId));
      expect(last.getHeader('subscription-state')).to.equal('terminated;reason=timeout');
      expect(b.srv.server.presence.listSubscriptions({ resource: aor })).to.have.length(0);
      expect((await bob.transact(inDialog(w, 600))).status).to.equal(481);

      const fetch = await watch(await b.ua(b.user('carol')), aor, { expires: 0 });
      expect(fetch.res.getHeader('expires')).to.equal('0');
      expect(fetch.first.getHeader('subscription-state')).to.equal('terminated;reason=timeout');
      expect(basics(fetch.first.body)).to.deep.equal(['open']);
      expect(b.srv.server.presence.listSubscriptions({ resource: aor })).to.have.length(0);
    });

    it('drops a TCP watcher whose connection is gone when a NOTIFY cannot be sent', async () => {
      const alice = b.user('alice');
      const aor = `sip:${alice}@example.com`;
      const pua = await b.ua(alice);
      const carol = await b.ua(b.user('carol'), 'tcp');
      await watch(carol, aor);
      expect(b.srv.server.presence.listSubscriptions({ resource: aor })).to.have.length(1);
      await carol.close();
      await network();
      await pua.transact(publishReq(pua, aor, { body: pidf(aor, 'open') }));
      const end = Date.now() + 3000;
      while (b.srv.server.presence.listSubscriptions({ resource: aor }).length > 0 && Date.now() < end) await network();
      expect(b.srv.server.presence.listSubscriptions({ resource: aor })).to.have.length(0);
    });

    it('refreshes a subscription in its dialog and gets the state again', async () => {
      const aor = `sip:${b.user('alice')}@example.com`;
      const bob = await b.ua(b.user('bob'));
      const w = await watch(bob, aor);
      const res = await bob.transact(inDialog(w, 1200));
      expect(res.status).to.equal(200);
      expect(res.getHeader('expires')).to.equal('1200');
      const n = await bob.waitRequest(isNotify(w.callId));
      expect(n.getHeader('subscription-state')).to.equal('active;expires=1200');
    });

    it('winfo: the presentity sees its watchers, a full document first, then partial ones', async () => {
      const alice = b.user('alice');
      const aor = `sip:${alice}@example.com`;
      const owner = await b.ua(alice);
      const wi = await watch(owner, aor, { event: 'presence.winfo' });
      expect(wi.first.getHeader('content-type')).to.equal('application/watcherinfo+xml');
      expect(wi.first.getHeader('event')).to.equal('presence.winfo');
      const full = wi.first.body.toString();
      expect(full).to.match(/version="0"/);
      expect(full).to.match(/state="full"/);
      const bobUser = b.user('bob');
      const bob = await b.ua(bobUser);
      const w = await watch(bob, aor);
      const p1 = (await owner.waitRequest(isNotify(wi.callId))).body.toString();
      expect(p1).to.match(/version="1"/);
      expect(p1).to.match(/state="partial"/);
      expect(p1).to.contain(`sip:${bobUser}@example.com`);
      expect(p1).to.match(/status="active"/);
      expect(p1).to.match(/event="subscribe"/);
      await bob.transact(inDialog(w, 0));
      const p2 = (await owner.waitRequest(isNotify(wi.callId))).body.toString();
      expect(p2).to.match(/version="2"/);
      expect(p2).to.match(/status="terminated"/);
      expect(p2).to.match(/event="timeout"/);
      // Someone else may not see alice's watchers.
      const eve = await b.ua(b.user('eve'));
      const denied = await eve.transact(eve.request('SUBSCRIBE', aor, { headers: { Event: 'presence.winfo', Expires: 600 } }));
      expect(denied.status).to.equal(403);
    });
  });

  describe('with confirm policy', () => {
    const b = Bench.perSuite({ presence: { defaultPolicy: 'confirm' } as Json });

    it('pending until the owner approves, then active with the state; winfo tells the owner', async () => {
      const alice = b.user('alice');
      const aor = `sip:${alice}@example.com`;
      const owner = await b.ua(alice);
      await owner.transact(publishReq(owner, aor, { body: pidf(aor, 'open') }));
      const wi = await watch(owner, aor, { event: 'presence.winfo' });
      const bobUser = b.user('bob');
      const bob = await b.ua(bobUser);
      const w = await watch(bob, aor);
      expect(w.first.getHeader('subscription-state')).to.match(/^pending;expires=/);
      expect(w.first.body.length).to.equal(0);
      const p1 = (await owner.waitRequest(isNotify(wi.callId))).body.toString();
      expect(p1).to.match(/status="pending"/);
      expect(await b.srv.server.presence.approve(aor, `sip:${bobUser}@example.com`)).to.equal(1);
      const n = await bob.waitRequest(isNotify(w.callId));
      expect(n.getHeader('subscription-state')).to.match(/^active;expires=/);
      expect(basics(n.body)).to.deep.equal(['open']);
      const p2 = (await owner.waitRequest(isNotify(wi.callId))).body.toString();
      expect(p2).to.match(/status="active"/);
      expect(p2).to.match(/event="approved"/);
      // The decision is remembered: bob's next subscription is active at once.
      const again = await watch(bob, aor);
      expect(again.first.getHeader('subscription-state')).to.match(/^active;/);
    });
  });

  describe('with a driven clock', () => {
    let srv: TestServer;
    let timers: ManualTimers;
    let b: Bench;
    beforeEach(async () => {
      timers = new ManualTimers();
      srv = await startTestServer({}, { timers });
      b = new Bench(srv);
    });
    afterEach(async () => {
      await b.closeAll();
      await srv.stop();
    });

    it('expiry of a publication changes what watchers see', async () => {
      const alice = b.user('alice');
      const aor = `sip:${alice}@example.com`;
      const pua = await b.ua(alice);
      const w = await watch(await b.ua(b.user('bob')), aor, { expires: 3600 });
      await pua.transact(publishReq(pua, aor, { body: pidf(aor, 'open'), expires: 120 }));
      expect(basics((await w.ua.waitRequest(isNotify(w.callId))).body)).to.deep.equal(['open']);
      await advance(srv, timers, 119_000, 10_000);
      expect(srv.server.presence.publications(aor)).to.have.length(1);
      await advance(srv, timers, 1_000);
      const n = await w.ua.waitRequest(isNotify(w.callId));
      expect(basics(n.body)).to.not.include('open');
      expect(srv.server.presence.publications(aor)).to.have.length(0);
    });

    it('expiry of a subscription sends terminated;reason=timeout', async () => {
      const aor = `sip:${b.user('alice')}@example.com`;
      const w = await watch(await b.ua(b.user('bob')), aor, { expires: 60 });
      await advance(srv, timers, 59_000, 10_000);
      expect(srv.server.presence.listSubscriptions()).to.have.length(1);
      await advance(srv, timers, 1_000);
      const n = await w.ua.waitRequest(isNotify(w.callId));
      expect(n.getHeader('subscription-state')).to.equal('terminated;reason=timeout');
      expect(srv.server.presence.listSubscriptions()).to.have.length(0);
    });

    it('retransmits a NOTIFY over UDP until it is answered (RFC 3261 §17.1.2.2 Timer E)', async () => {
      const aor = `sip:${b.user('alice')}@example.com`;
      const bob = await b.ua(b.user('bob'));
      const w = await watch(bob, aor, { answer: false });
      await network();
      timers.advance(500);
      const again = await bob.waitRequest(isNotify(w.callId));
      expect(again.topVia.branch).to.equal(w.first.topVia.branch);
      expect(again.cseq.seq).to.equal(w.first.cseq.seq);
      bob.respond(again, 200);
      await advance(srv, timers, 4000);
      expect(bob.requests.filter(isNotify(w.callId))).to.have.length(0);
      expect(srv.server.presence.listSubscriptions({ resource: aor })).to.have.length(1);
    });

    it('drops a watcher that stops answering once its NOTIFY times out', async () => {
      const alice = b.user('alice');
      const aor = `sip:${alice}@example.com`;
      const pua = await b.ua(alice);
      const silentUa = await b.ua(b.user('bob'));
      const w1 = await watch(silentUa, aor);
      const w2 = await watch(await b.ua(b.user('carol')), aor);
      silentUa.autoAnswer('NOTIFY', () => undefined);
      await pua.transact(publishReq(pua, aor, { body: pidf(aor, 'open') }));
      await w2.ua.waitRequest(isNotify(w2.callId));
      await silentUa.waitRequest(isNotify(w1.callId));
      expect(srv.server.presence.listSubscriptions({ resource: aor })).to.have.length(2);
      // Timer F: 64*T1 = 32 s.
      await advance(srv, timers, 31_000, 1000, 1);
      expect(srv.server.presence.listSubscriptions({ resource: aor })).to.have.length(2);
      await advance(srv, timers, 2_000, 1000, 1);
      const left = srv.server.presence.listSubscriptions({ resource: aor });
      expect(left).to.have.length(1);
      expect(left[0]!.watcher).to.equal(`sip:${w2.ua.user}@example.com`);
    });
  });
});
