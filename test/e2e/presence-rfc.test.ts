import { expect } from 'chai';
import type { Json } from '../../src/config/config.js';
import { parsePidf, type PresenceDocument } from '../../src/presence/pidf/index.js';
import { parseWatcherInfo, type WatcherInfoDocument } from '../../src/presence/winfo/watcherinfo-document.js';
import type { SipRequest, SipResponse } from '../../src/sip/message.js';
import { ManualTimers } from '../../src/util/timers.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { advance, basics, Bench, inDialog, isNotify, network, pidf, PIDF, publishReq, quiet, watch, type Watch } from './presence-support.js';

/**
 * The presence service against the RFC sentences the first e2e file leaves to unit tests:
 * composition of several devices over time (RFC 4479), NOTIFY rate control (RFC 6446
 * ideas), dialogs through a record-routing proxy (RFC 3261 §12), NOTIFY failures (RFC 6665
 * §4.2.2), reason phrases, and watcher information across refreshes (RFC 3857/3858).
 */

const DM = 'urn:ietf:params:xml:ns:pidf:data-model';
const RPID = 'urn:ietf:params:xml:ns:pidf:rpid';

/** A device's document: one tuple, an RPID activity on the person, a note with its language. */
function deviceDoc(entity: string, o: { tuple: string; basic: 'open' | 'closed'; person: string; activity: string; note: string; lang: string }): string {
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="${DM}" xmlns:rp="${RPID}" entity="${entity}">` +
    `<tuple id="${o.tuple}"><status><basic>${o.basic}</basic></status></tuple>` +
    `<dm:person id="${o.person}"><rp:activities><rp:${o.activity}/></rp:activities></dm:person>` +
    `<note xml:lang="${o.lang}">${o.note}</note>` +
    '</presence>'
  );
}

function doc(n: SipRequest): PresenceDocument {
  const r = parsePidf(n.body);
  if (!r.ok) throw new Error(`NOTIFY body is not PIDF: ${r.reason}`);
  return r.document;
}

function winfo(n: SipRequest): WatcherInfoDocument {
  expect(n.getHeader('content-type')).to.equal('application/watcherinfo+xml');
  const r = parseWatcherInfo(n.body);
  if (!r.ok) throw new Error(`NOTIFY body is not watcherinfo: ${r.reason}`);
  return r.document;
}

/** A SUBSCRIBE in the watch's dialog with the headers given (and a CSeq of choice). */
function inDialogWith(w: Watch, headers: Record<string, string | number>, cseq = ++w.cseq): SipRequest {
  return w.ua.request('SUBSCRIBE', w.res.contacts[0]!.uri.raw, {
    callId: w.callId,
    fromTag: w.fromTag,
    toTag: w.toTag,
    to: `<${w.presentity}>`,
    cseq,
    headers: { Event: w.event, ...headers },
  });
}

const statusLine = (r: SipResponse): string => `${r.status} ${r.reason}`;

describe('e2e: presence, RFC details over real sockets', function () {
  this.timeout(15000);

  describe('with real time', () => {
    const b = Bench.perSuite();

    it('answers errors with the RFC status and reason phrase', async () => {
      const alice = b.user('alice');
      const aor = `sip:${alice}@example.com`;
      const pua = await b.ua(alice);
      const cases: Array<[string, SipRequest, string]> = [
        ['412', publishReq(pua, aor, { etag: 'AAAAAAAAAAAAAAAAAAAAAA', expires: 600 }), '412 Conditional Request Failed'],
        ['423', publishReq(pua, aor, { body: pidf(aor, 'open'), expires: 59 }), '423 Interval Too Brief'],
        ['489', publishReq(pua, aor, { event: 'presence.winfo', body: pidf(aor, 'open') }), '489 Bad Event'],
        ['415', publishReq(pua, aor, { body: '{"basic":"open"}', contentType: 'application/json' }), '415 Unsupported Media Type'],
        ['400 basic', publishReq(pua, aor, { body: pidf(aor, 'open').replace('>open<', '>maybe<') }), '400 Invalid PIDF: basic status must be open or closed'],
        ['400 DOCTYPE', publishReq(pua, aor, { body: `<?xml version="1.0"?><!DOCTYPE presence [<!ENTITY a "aaaa">]>${pidf(aor, 'open').replace(/^<\?xml[^>]*>\n/, '')}` }), '400 Invalid PIDF: DOCTYPE not allowed'],
        ['400 ids', publishReq(pua, aor, { body: pidf(aor, 'open').replace('</presence>', '<tuple id="t1"><status/></tuple></presence>') }), '400 Invalid PIDF: duplicate tuple id t1'],
        ['400 entity', publishReq(pua, aor, { body: pidf(`sip:someone-else@example.com`, 'open') }), '400 PIDF entity does not match the presentity'],
        ['400 remove', publishReq(pua, aor, { expires: 0 }), '400 Expires 0 without SIP-If-Match'],
      ];
      for (const [what, req, expected] of cases) expect(statusLine(await pua.transact(req)), what).to.equal(expected);
      const bob = await b.ua(b.user('bob'));
      const sub = (headers: Record<string, string | number>, toTag?: string) => bob.transact(bob.request('SUBSCRIBE', aor, { headers, ...(toTag ? { toTag } : {}) }));
      expect(statusLine(await sub({ Event: 'ua-profile' }))).to.equal('489 Bad Event');
      expect(statusLine(await sub({ Event: 'presence', Accept: 'application/xpidf+xml' }))).to.equal('406 Not Acceptable');
      expect(statusLine(await sub({ Event: 'presence', Expires: 30 }))).to.equal('423 Interval Too Brief');
      expect(statusLine(await sub({ Event: 'presence' }, 'no-such-dialog'))).to.equal('481 Subscription Does Not Exist');
      // Nothing of it was kept.
      expect(b.srv.server.presence.publications(aor)).to.have.length(0);
      expect(b.srv.server.presence.listSubscriptions({ resource: aor })).to.have.length(0);
    });

    it('two PUBLISHes racing on one entity-tag: one wins, the other gets 412, watchers never see a mix', async () => {
      const alice = b.user('alice');
      const aor = `sip:${alice}@example.com`;
      const pua = await b.ua(alice);
      const both = (basic: 'open' | 'closed') =>
        `<?xml version="1.0"?><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="${aor}">` +
        `<tuple id="x"><status><basic>${basic}</basic></status></tuple><tuple id="y"><status><basic>${basic}</basic></status></tuple></presence>`;
      const w = await watch(await b.ua(b.user('bob')), aor);
      const etag = (await pua.transact(publishReq(pua, aor, { body: both('open'), expires: 600 }))).getHeader('sip-etag')!;
      await w.ua.waitRequest(isNotify(w.callId));
      const [r1, r2] = await Promise.all([
        pua.transact(publishReq(pua, aor, { etag, body: both('closed'), expires: 600 })),
        pua.transact(publishReq(pua, aor, { etag, body: both('open'), expires: 600 })),
      ]);
      expect([r1.status, r2.status].sort()).to.deep.equal([200, 412]);
      expect(b.srv.server.presence.publications(aor)).to.have.length(1);
      const winner = r1.status === 200 ? 'closed' : 'open';
      if (winner === 'closed') expect(basics((await w.ua.waitRequest(isNotify(w.callId))).body)).to.deep.equal(['closed', 'closed']);
      await network();
      for (const n of w.ua.requests.filter(isNotify(w.callId))) expect(new Set(basics(n.body)).size).to.equal(1);
      expect(basics(b.srv.server.presence.composedDocument(aor))).to.deep.equal([winner, winner]);
    });

    it('a device that publishes twice afresh and removes the last: watchers see it gone (baresip)', async () => {
      const alice = b.user('alice');
      const aor = `sip:${alice}@example.com`;
      const softphone = await b.ua(alice);
      const deskphone = await b.ua(alice, 'tcp');
      const w = await watch(await b.ua(b.user('bob')), aor);
      // Two initial PUBLISHes of the same tuple from one socket, as baresip sends at start.
      await softphone.transact(publishReq(softphone, aor, { body: pidf(aor, 'open', 't4109'), expires: 600 }));
      const last = await softphone.transact(publishReq(softphone, aor, { body: pidf(aor, 'open', 't4109'), expires: 600 }));
      expect(b.srv.server.presence.publications(aor)).to.have.length(1);
      expect(basics((await w.ua.waitRequest(isNotify(w.callId))).body)).to.deep.equal(['open']);
      // Another device with the same tuple id is another publication.
      await deskphone.transact(publishReq(deskphone, aor, { body: pidf(aor, 'closed', 't4109'), expires: 600 }));
      expect(basics((await w.ua.waitRequest(isNotify(w.callId))).body)).to.deep.equal(['closed']);
      expect(b.srv.server.presence.publications(aor)).to.have.length(2);
      await deskphone.transact(publishReq(deskphone, aor, { etag: b.srv.server.presence.publications(aor).find((p) => p.etag !== last.getHeader('sip-etag'))!.etag, expires: 0 }));
      expect(basics((await w.ua.waitRequest(isNotify(w.callId))).body)).to.deep.equal(['open']);
      // The softphone says goodbye: nothing of it is left.
      expect((await softphone.transact(publishReq(softphone, aor, { etag: last.getHeader('sip-etag')!, expires: 0 }))).status).to.equal(200);
      expect(basics((await w.ua.waitRequest(isNotify(w.callId))).body)).to.deep.equal([]);
      expect(b.srv.server.presence.publications(aor)).to.have.length(0);
    });

    it('a dialog through a record-routing proxy: NOTIFYs go to the proxy with the route set, to the Contact', async () => {
      const aor = `sip:${b.user('alice')}@example.com`;
      const bob = await b.ua(b.user('bob'));
      const proxy = await b.ua('proxy');
      proxy.autoAnswer('NOTIFY', 200);
      const rr = `<sip:127.0.0.1:${proxy.localPort};lr;ftag=x>`;
      const req = bob.request('SUBSCRIBE', aor, { headers: { Event: 'presence', Expires: 600, 'Record-Route': rr } });
      const res = await bob.transact(req);
      expect(res.status).to.equal(200);
      // RFC 3261 §12.1.1: the 200 copies Record-Route; RFC 3261 §12.2.1.1: requests in the
      // dialog carry the route set and go to its first entry, with the Contact as Request-URI.
      expect(res.getHeaders('record-route')).to.deep.equal([rr]);
      const n = await proxy.waitRequest(isNotify(req.callId));
      expect(n.uri.raw).to.equal(bob.contactUri);
      expect(n.getHeaders('route')).to.deep.equal([rr]);
      expect(n.getHeader('subscription-state')).to.match(/^active;expires=/);
      expect(bob.requests.filter(isNotify(req.callId))).to.have.length(0);
    });

    it('a watcher that answers a NOTIFY with 481 is dropped; the others go on; winfo tells the owner', async () => {
      const alice = b.user('alice');
      const aor = `sip:${alice}@example.com`;
      const owner = await b.ua(alice);
      const wi = await watch(owner, aor, { event: 'presence.winfo' });
      const goneUser = b.user('bob');
      const gone = await watch(await b.ua(goneUser), aor);
      const stays = await watch(await b.ua(b.user('carol')), aor);
      expect(winfo(await owner.waitRequest(isNotify(wi.callId))).version).to.equal(1);
      expect(winfo(await owner.waitRequest(isNotify(wi.callId))).version).to.equal(2);
      gone.ua.autoAnswer('NOTIFY', 481);
      await owner.transact(publishReq(owner, aor, { body: pidf(aor, 'open') }));
      await gone.ua.waitRequest(isNotify(gone.callId));
      expect(basics((await stays.ua.waitRequest(isNotify(stays.callId))).body)).to.deep.equal(['open']);
      const p = winfo(await owner.waitRequest(isNotify(wi.callId)));
      expect(p.version).to.equal(3);
      expect(p.state).to.equal('partial');
      expect(p.watcherLists[0]!.watchers.map((x) => [x.uri, x.status, x.event])).to.deep.equal([[`sip:${goneUser}@example.com`, 'terminated', 'deactivated']]);
      const left = b.srv.server.presence.listSubscriptions({ resource: aor, eventPackage: 'presence' });
      expect(left.map((s) => s.watcher)).to.deep.equal([`sip:${stays.ua.user}@example.com`]);
      // No final NOTIFY to a watcher that said it knows no such subscription.
      await owner.transact(publishReq(owner, aor, { body: pidf(aor, 'closed') }));
      await stays.ua.waitRequest(isNotify(stays.callId));
      await network();
      expect(gone.ua.requests.filter(isNotify(gone.callId))).to.have.length(0);
    });

    it('devices whose documents together outgrow a NOTIFY: the oldest is left out, the UDP watcher stays', async () => {
      const alice = b.user('alice');
      const aor = `sip:${alice}@example.com`;
      const w = await watch(await b.ua(b.user('bob')), aor);
      // Two documents of about 37 kB each: together they do not fit a 64 kB datagram.
      const big = (tuple: string) => pidf(aor, 'open', tuple, Array.from({ length: 40 }, (_, i) => `${tuple} ${i} ${'x'.repeat(900)}`).join(' '));
      for (const device of ['phone', 'laptop']) {
        const ua = await b.ua(alice);
        expect((await ua.transact(publishReq(ua, aor, { body: big(device) }))).status).to.equal(200);
        const n = await w.ua.waitRequest(isNotify(w.callId));
        expect(doc(n).tuples.map((t) => t.id)).to.deep.equal([device]);
      }
      expect(b.srv.server.presence.publications(aor)).to.have.length(2);
      expect(b.srv.server.presence.listSubscriptions({ resource: aor })).to.have.length(1);
    });

    it('refresh in the dialog: Expires clamped, 423 leaves the subscription as it was, an old CSeq gets 500', async () => {
      const aor = `sip:${b.user('alice')}@example.com`;
      const bob = await b.ua(b.user('bob'));
      const w = await watch(bob, aor, { expires: 600 });
      const long = await bob.transact(inDialogWith(w, { Expires: 86400 }));
      expect(long.status).to.equal(200);
      expect(long.getHeader('expires')).to.equal('3600');
      expect((await bob.waitRequest(isNotify(w.callId))).getHeader('subscription-state')).to.equal('active;expires=3600');
      const brief = await bob.transact(inDialogWith(w, { Expires: 10 }));
      expect(statusLine(brief)).to.equal('423 Interval Too Brief');
      expect(brief.getHeader('min-expires')).to.equal('60');
      expect(b.srv.server.presence.listSubscriptions({ resource: aor })).to.have.length(1);
      expect(statusLine(await bob.transact(inDialogWith(w, { Expires: 600 }, 1)))).to.equal('500 Out of Order CSeq');
      // The dialog still works.
      expect((await bob.transact(inDialog(w, 0))).status).to.equal(200);
      expect((await bob.waitRequest(isNotify(w.callId))).getHeader('subscription-state')).to.equal('terminated;reason=timeout');
    });

    it('winfo: versions go up by one a document; a refresh sends the full list again; the final NOTIFY has no body', async () => {
      const alice = b.user('alice');
      const aor = `sip:${alice}@example.com`;
      const owner = await b.ua(alice);
      const wi = await watch(owner, aor, { event: 'presence.winfo' });
      const first = winfo(wi.first);
      expect([first.version, first.state, first.watcherLists[0]!.resource, first.watcherLists[0]!.package]).to.deep.equal([0, 'full', aor, 'presence']);
      expect(first.watcherLists[0]!.watchers).to.have.length(0);
      const bobUser = b.user('bob');
      const w = await watch(await b.ua(bobUser), aor);
      const p1 = winfo(await owner.waitRequest(isNotify(wi.callId)));
      expect([p1.version, p1.state]).to.deep.equal([1, 'partial']);
      const id = p1.watcherLists[0]!.watchers[0]!.id;
      expect((await owner.transact(inDialog(wi, 600))).status).to.equal(200);
      const full = winfo(await owner.waitRequest(isNotify(wi.callId)));
      expect([full.version, full.state]).to.deep.equal([2, 'full']);
      expect(full.watcherLists[0]!.watchers.map((x) => [x.id, x.uri, x.status, x.event])).to.deep.equal([[id, `sip:${bobUser}@example.com`, 'active', 'subscribe']]);
      await w.ua.transact(inDialog(w, 0));
      const p3 = winfo(await owner.waitRequest(isNotify(wi.callId)));
      expect([p3.version, p3.state]).to.deep.equal([3, 'partial']);
      expect(p3.watcherLists[0]!.watchers.map((x) => [x.id, x.status, x.event])).to.deep.equal([[id, 'terminated', 'timeout']]);
      expect((await owner.transact(inDialog(wi, 0))).status).to.equal(200);
      const last = await owner.waitRequest(isNotify(wi.callId));
      expect(last.getHeader('subscription-state')).to.equal('terminated;reason=timeout');
      expect(last.body.length).to.equal(0);
    });
  });

  describe('with confirm policy', () => {
    const b = Bench.perSuite({ presence: { defaultPolicy: 'confirm' } as Json });

    it('the owner rejects a pending watcher: terminated;reason=rejected without state; winfo says rejected', async () => {
      const alice = b.user('alice');
      const aor = `sip:${alice}@example.com`;
      const owner = await b.ua(alice);
      await owner.transact(publishReq(owner, aor, { body: pidf(aor, 'open', 't1', 'secret plans') }));
      const wi = await watch(owner, aor, { event: 'presence.winfo' });
      const malloryUser = b.user('mallory');
      const w = await watch(await b.ua(malloryUser), aor);
      expect(w.first.getHeader('subscription-state')).to.match(/^pending;expires=/);
      expect(winfo(await owner.waitRequest(isNotify(wi.callId))).watcherLists[0]!.watchers[0]!.status).to.equal('pending');
      expect(await b.srv.server.presence.reject(aor, `sip:${malloryUser}@example.com`)).to.equal(1);
      const n = await w.ua.waitRequest(isNotify(w.callId));
      expect(n.getHeader('subscription-state')).to.equal('terminated;reason=rejected');
      expect(n.body.length).to.equal(0);
      const p = winfo(await owner.waitRequest(isNotify(wi.callId)));
      expect(p.watcherLists[0]!.watchers.map((x) => [x.status, x.event])).to.deep.equal([['terminated', 'rejected']]);
      // Nothing of alice's state ever reached mallory.
      for (const d of w.ua.raw) expect(d.toString()).to.not.contain('secret plans');
      // The decision sticks: the next attempt is refused at once.
      const again = await w.ua.transact(w.ua.request('SUBSCRIBE', aor, { headers: { Event: 'presence', Expires: 600 } }));
      expect(again.status).to.equal(403);
    });
  });

  describe('with a driven clock', () => {
    let srv: TestServer;
    let timers: ManualTimers;
    let b: Bench;
    async function start(overrides: Json = {}): Promise<void> {
      timers = new ManualTimers();
      srv = await startTestServer(overrides, { timers });
      b = new Bench(srv);
    }
    afterEach(async () => {
      await b.closeAll();
      await srv.stop();
    });

    it('composes two devices, newest wins for the person, and falls back when the newer one expires (RFC 4479)', async () => {
      await start();
      const alice = b.user('alice');
      const aor = `sip:${alice}@example.com`;
      const phone = await b.ua(alice);
      const laptop = await b.ua(alice, 'tcp');
      const w = await watch(await b.ua(b.user('bob')), aor, { expires: 3600 });
      const p1 = await phone.transact(publishReq(phone, aor, { body: deviceDoc(aor, { tuple: 'phone', basic: 'open', person: 'pp', activity: 'busy', note: 'on a call', lang: 'en' }), expires: 3600 }));
      expect(p1.status).to.equal(200);
      const d1 = doc(await w.ua.waitRequest(isNotify(w.callId)));
      expect(d1.persons.map((p) => p.activities)).to.deep.equal([['busy']]);
      await quiet(srv);
      timers.advance(1000); // the laptop publishes a second later
      const p2 = await laptop.transact(publishReq(laptop, aor, { body: deviceDoc(aor, { tuple: 'laptop', basic: 'closed', person: 'pl', activity: 'away', note: 'weg', lang: 'de' }), expires: 120 }));
      expect(p2.status).to.equal(200);
      const d2 = doc(await w.ua.waitRequest(isNotify(w.callId)));
      expect(d2.tuples.map((t) => [t.id, t.basic])).to.deep.equal([
        ['laptop', 'closed'],
        ['phone', 'open'],
      ]);
      expect(d2.persons.map((p) => [p.id, p.activities])).to.deep.equal([['pl', ['away']]]);
      expect(d2.notes.map((n) => [n.lang, n.text])).to.deep.equal([
        ['de', 'weg'],
        ['en', 'on a call'],
      ]);
      // A refresh of the phone is not news: no NOTIFY, and the laptop stays the newest.
      const r = await phone.transact(publishReq(phone, aor, { etag: p1.getHeader('sip-etag')!, expires: 3600 }));
      expect(r.status).to.equal(200);
      await network();
      expect(w.ua.requests.filter(isNotify(w.callId))).to.have.length(0);
      // The laptop's publication runs out: the phone's state is all that is left.
      await advance(srv, timers, 120_000, 10_000);
      const d3 = doc(await w.ua.waitRequest(isNotify(w.callId)));
      expect(d3.tuples.map((t) => t.id)).to.deep.equal(['phone']);
      expect(d3.persons.map((p) => p.activities)).to.deep.equal([['busy']]);
      expect(d3.notes.map((n) => n.lang)).to.deep.equal(['en']);
      // Its entity-tag is gone with it.
      expect((await laptop.transact(publishReq(laptop, aor, { etag: p2.getHeader('sip-etag')!, expires: 120 }))).status).to.equal(412);
    });

    it('rate control: one NOTIFY per interval with the newest state; the final NOTIFY is not held back', async () => {
      await start({ presence: { notifyMinIntervalMs: 5000 } as Json });
      const alice = b.user('alice');
      const aor = `sip:${alice}@example.com`;
      const pua = await b.ua(alice);
      const w = await watch(await b.ua(b.user('bob')), aor, { expires: 3600 });
      let etag = (await pua.transact(publishReq(pua, aor, { body: pidf(aor, 'open', 't1', 'one'), expires: 3600 }))).getHeader('sip-etag')!;
      for (const [basic, note] of [['closed', 'two'], ['open', 'three']] as const) {
        etag = (await pua.transact(publishReq(pua, aor, { etag, body: pidf(aor, basic, 't1', note), expires: 3600 }))).getHeader('sip-etag')!;
      }
      await network();
      expect(w.ua.requests.filter(isNotify(w.callId)), 'held back by rate control').to.have.length(0);
      await advance(srv, timers, 4000);
      expect(w.ua.requests.filter(isNotify(w.callId))).to.have.length(0);
      await advance(srv, timers, 1000);
      const n = await w.ua.waitRequest(isNotify(w.callId));
      expect(n.cseq.seq).to.equal(2);
      expect(n.body.toString()).to.contain('three').and.not.contain('two');
      await network();
      expect(w.ua.requests.filter(isNotify(w.callId)), 'changes coalesced into one NOTIFY').to.have.length(0);
      // Another change, then the watcher unsubscribes before the interval is over: the final
      // NOTIFY leaves at once and carries the newest state.
      await pua.transact(publishReq(pua, aor, { etag, body: pidf(aor, 'closed', 't1', 'four'), expires: 3600 }));
      await network();
      expect(w.ua.requests.filter(isNotify(w.callId))).to.have.length(0);
      expect((await w.ua.transact(inDialog(w, 0))).status).to.equal(200);
      const last = await w.ua.waitRequest(isNotify(w.callId));
      expect(last.getHeader('subscription-state')).to.equal('terminated;reason=timeout');
      expect(last.cseq.seq).to.equal(3);
      expect(last.body.toString()).to.contain('four');
      expect(last.getHeader('content-type')).to.equal(PIDF);
    });

    it('an entity-tag that expired gets 412 even before anyone else publishes', async () => {
      await start();
      const alice = b.user('alice');
      const aor = `sip:${alice}@example.com`;
      const pua = await b.ua(alice);
      const res = await pua.transact(publishReq(pua, aor, { body: pidf(aor, 'open'), expires: 60 }));
      await advance(srv, timers, 60_000, 10_000);
      expect(statusLine(await pua.transact(publishReq(pua, aor, { etag: res.getHeader('sip-etag')!, expires: 60 })))).to.equal('412 Conditional Request Failed');
      expect(srv.server.presence.publications(aor)).to.have.length(0);
    });
  });
});
