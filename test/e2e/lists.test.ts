import { expect } from 'chai';
import { deflateSync, inflateSync } from 'node:zlib';
import { parseListNotify, type ListNotify } from '../../src/lists/list-notify.js';
import type { SipRequest, SipResponse } from '../../src/sip/message.js';
import { startTestServer } from '../support/test-server.js';
import { TestUa, type UaProtocol } from '../support/test-ua.js';
import { parseWatcherInfo } from '../../src/presence/winfo/watcherinfo-document.js';
import { advance, basics, Bench, drivenPerTest, isNotify, pidf, publishReq, watch } from './presence-support.js';

/**
 * The resource list server (RFC 4662) over real sockets: request-contained lists as Linphone
 * sends them (RFC 5367), full then partial state, members' rules, refresh with and without a
 * body, and the refusals (421, 413, 400, 415).
 */

const RLS = 'sip:rls@example.com';

function listBody(uris: readonly string[]): string {
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists">\n<list>\n' +
    uris.map((u) => `<entry uri="${u}"/>\n`).join('') +
    '</list>\n</resource-lists>\n'
  );
}

function read(n: SipRequest): ListNotify {
  const r = parseListNotify(n.getHeader('content-type') ?? '', n.body);
  if (!r.ok) throw new Error(`not a list NOTIFY: ${r.reason}`);
  return r.notify;
}

/** Each resource of an RLMI document as `uri state[;reason]`, and its PIDF basic when it has a part. */
function summary(n: ListNotify): string[] {
  return n.rlmi.resources.map((r) => {
    const i = r.instances[0]!;
    const part = i.cid !== undefined ? n.parts.get(i.cid) : undefined;
    const basic = part ? ` ${basics(part.body).join(',') || 'none'}` : '';
    return `${r.uri} ${i.state}${i.reason ? `;${i.reason}` : ''}${basic}`;
  });
}

interface ListWatch {
  ua: TestUa;
  callId: string;
  fromTag: string;
  toTag: string;
  cseq: number;
  res: SipResponse;
  first: SipRequest;
}

interface SubscribeOpts {
  body?: string | Buffer;
  headers?: Record<string, string | number>;
  uri?: string;
}

function listSubscribe(ua: TestUa, opts: SubscribeOpts, callId: string, fromTag: string, cseq = 1): SipRequest {
  const headers: Record<string, string | number> = {
    Event: 'presence',
    Expires: 600,
    Accept: 'multipart/related, application/rlmi+xml, application/pidf+xml',
    Supported: 'eventlist',
    Require: 'recipient-list-subscribe',
    'Content-Disposition': 'recipient-list',
    'Content-Type': 'application/resource-lists+xml',
    ...opts.headers,
  };
  return ua.request('SUBSCRIBE', opts.uri ?? RLS, { callId, fromTag, cseq, headers, body: opts.body });
}

async function watchList(ua: TestUa, opts: SubscribeOpts): Promise<ListWatch> {
  ua.autoAnswer('NOTIFY', 200);
  const callId = `l-${Math.random().toString(36).slice(2)}@test`;
  const fromTag = `ft${Math.random().toString(36).slice(2)}`;
  const first = ua.waitRequest(isNotify(callId));
  const res = await ua.transact(listSubscribe(ua, opts, callId, fromTag));
  expect(res.status, `${res.status} ${res.reason}`).to.equal(200);
  return { ua, callId, fromTag, toTag: res.to.tag!, cseq: 1, res, first: await first };
}

function refresh(w: ListWatch, body?: string): SipRequest {
  w.cseq++;
  const headers: Record<string, string | number> = { Event: 'presence', Expires: 600, Supported: 'eventlist' };
  if (body !== undefined) Object.assign(headers, { 'Content-Type': 'application/resource-lists+xml', 'Content-Disposition': 'recipient-list' });
  return w.ua.request('SUBSCRIBE', w.res.contacts[0]!.uri.raw, { callId: w.callId, fromTag: w.fromTag, toTag: w.toTag, to: `<${RLS}>`, cseq: w.cseq, headers, body });
}

describe('e2e: resource lists (RFC 4662 RLS, RFC 5367 request-contained lists)', function () {
  this.timeout(15000);

  for (const protocol of ['udp', 'tcp'] as UaProtocol[]) {
    describe(`open policy, over ${protocol.toUpperCase()}`, () => {
      const b = Bench.perSuite();

      it('answers 200, then a full-state NOTIFY (RLMI version 0 + PIDF parts), then partial state with only what changed', async () => {
        const [alice, bob, carol] = [b.user('alice'), b.user('bob'), b.user('carol')];
        const bobAor = `sip:${bob}@example.com`;
        const carolAor = `sip:${carol}@example.com`;
        const pua = await b.ua(bob);
        expect((await pua.transact(publishReq(pua, bobAor, { body: pidf(bobAor, 'open'), expires: 600 }))).status).to.equal(200);
        const ua = await b.ua(alice, protocol);
        const w = await watchList(ua, { body: listBody([bobAor, carolAor, 'sip:dave@elsewhere.example']) });
        expect(w.first.getHeader('content-type')).to.match(/^multipart\/related;type="application\/rlmi\+xml";start="<[^>]+>";boundary=/);
        expect(w.first.getHeader('require')).to.equal('eventlist');
        expect(w.first.getHeader('subscription-state')).to.match(/^active;expires=/);
        const full = read(w.first);
        expect(full.rlmi).to.include({ uri: RLS, version: 0, fullState: true });
        expect(summary(full)).to.deep.equal([`${bobAor} active open`, `${carolAor} active none`, 'sip:dave@elsewhere.example terminated;noresource']);

        // Carol comes online: one partial NOTIFY, version 1, carrying Carol only.
        const next = ua.waitRequest(isNotify(w.callId));
        const cpua = await b.ua(carol);
        expect((await cpua.transact(publishReq(cpua, carolAor, { body: pidf(carolAor, 'open'), expires: 600 }))).status).to.equal(200);
        const partial = read(await next);
        expect(partial.rlmi).to.include({ version: 1, fullState: false });
        expect(summary(partial)).to.deep.equal([`${carolAor} active open`]);
      });

      it('a fetch (Expires: 0) gets one full-state NOTIFY, terminated;reason=timeout, and leaves nothing behind', async () => {
      const bobAor = `sip:${b.user('bob')}@example.com`;
      const alice = b.user('alice');
      const ua = await b.ua(alice, protocol);
      const w = await watchList(ua, { body: listBody([bobAor]), headers: { Expires: 0 } });
      expect(w.first.getHeader('subscription-state')).to.equal('terminated;reason=timeout');
      expect(read(w.first).rlmi).to.include({ version: 0, fullState: true });
      expect(b.srv.server.presence.lists.watches(bobAor)).to.equal(false);
      expect(b.srv.server.presence.lists.subscriptions.list({ watcher: `sip:${alice}@example.com` })).to.deep.equal([]);
    });

    it('a refresh without a body keeps the list (full state again); with a body replaces it', async () => {
        const [alice, bob, carol] = [b.user('alice'), b.user('bob'), b.user('carol')];
        const bobAor = `sip:${bob}@example.com`;
        const carolAor = `sip:${carol}@example.com`;
        const ua = await b.ua(alice, protocol);
        const w = await watchList(ua, { body: listBody([bobAor]) });
        expect(summary(read(w.first))).to.deep.equal([`${bobAor} active none`]);

        let next = ua.waitRequest(isNotify(w.callId));
        expect((await ua.transact(refresh(w))).status).to.equal(200);
        const kept = read(await next);
        expect(kept.rlmi).to.include({ version: 1, fullState: true });
        expect(summary(kept)).to.deep.equal([`${bobAor} active none`]);

        next = ua.waitRequest(isNotify(w.callId));
        expect((await ua.transact(refresh(w, listBody([carolAor])))).status).to.equal(200);
        const replaced = read(await next);
        expect(replaced.rlmi).to.include({ version: 2, fullState: true });
        expect(summary(replaced)).to.deep.equal([`${carolAor} active none`]);
      });
    });
  }

  describe('refusals', () => {
    const b = Bench.perSuite({ presence: { maxListMembers: 5 } });
    const status = (r: SipResponse): string => `${r.status} ${r.reason}`;

    it('421 with Require: eventlist when the subscriber does not support it (RFC 4662 §5.1)', async () => {
      const ua = await b.ua(b.user('alice'));
      const res = await ua.transact(listSubscribe(ua, { body: listBody(['sip:bob@example.com']), headers: { Supported: 'timer' } }, 'c1@test', 'f1'));
      expect(status(res)).to.equal('421 Extension Required');
      expect(res.getHeader('require')).to.equal('eventlist');
    });

    it('400, 413 and 415 for bad, oversized, bomb-like and mistyped lists; 420 for another Require', async () => {
      const ua = await b.ua(b.user('alice'));
      const six = listBody(Array.from({ length: 6 }, (_, i) => `sip:u${i}@example.com`));
      const bomb = deflateSync(Buffer.from(`<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"><list>${' '.repeat(8 * 1024 * 1024)}</list></resource-lists>`));
      expect(bomb.length).to.be.below(65536);
      const cases: Array<[string, SubscribeOpts, string]> = [
        ['not XML', { body: '<resource-lists' }, '400 Bad resource list: not well-formed XML'],
        ['no body', {}, '400 Missing Resource List'],
        ['too many', { body: six }, '413 Too Many List Members'],
        ['bomb', { body: bomb, headers: { 'Content-Encoding': 'deflate' } }, '413 Resource List Too Large'],
        ['not deflate', { body: 'plain', headers: { 'Content-Encoding': 'deflate' } }, '400 Bad deflate body'],
        ['gzip', { body: listBody([]), headers: { 'Content-Encoding': 'gzip' } }, '415 Unsupported Content-Encoding'],
        ['type', { body: listBody([]), headers: { 'Content-Type': 'text/plain' } }, '415 Unsupported Media Type'],
        ['require', { body: listBody([]), headers: { Require: 'recipient-list-subscribe, foo' } }, '420 Bad Extension'],
      ];
      let n = 0;
      for (const [what, opts, expected] of cases) expect(status(await ua.transact(listSubscribe(ua, opts, `c${++n}@test`, `f${n}`))), what).to.equal(expected);
    });

    it('403 Too Many Subscriptions past the list subscriptions a watcher may hold (presence.maxSubscriptionsPerWatcher, at most 32)', async () => {
      const other = await startTestServer({ presence: { maxSubscriptionsPerWatcher: 1 } });
      const ua = await TestUa.create({ port: other.port, user: 'alice', domain: 'example.com' });
      try {
        ua.autoAnswer('NOTIFY', 200);
        expect(status(await ua.transact(listSubscribe(ua, { body: listBody(['sip:bob@example.com']) }, 'm1@test', 'fm1')))).to.equal('200 OK');
        expect(status(await ua.transact(listSubscribe(ua, { body: listBody(['sip:bob@example.com']) }, 'm2@test', 'fm2')))).to.equal('403 Too Many Subscriptions');
      } finally {
        await ua.close();
        await other.stop();
      }
    });

    it('takes a deflated list and deflates its NOTIFYs (Content-Encoding, Accept-Encoding: deflate, as Linphone sends them)', async () => {
      const ua = await b.ua(b.user('alice'));
      const w = await watchList(ua, {
        body: deflateSync(Buffer.from(listBody(['sip:bob@example.com']))),
        headers: { 'Content-Encoding': 'deflate', 'Accept-Encoding': 'deflate', 'User-Agent': 'LinphoneAndroid/5.2.5 (belle-sip/5.2.0)' },
      });
      expect(w.first.getHeader('content-encoding')).to.equal('deflate');
      const body = inflateSync(w.first.body);
      const r = parseListNotify(w.first.getHeader('content-type')!, body);
      if (!r.ok) expect.fail(r.reason);
      expect(summary(r.notify)).to.deep.equal(['sip:bob@example.com active none']);
      // liblinphone matches the raw Content-Id header against the RLMI cid: written bare for it.
      const cid = r.notify.rlmi.resources[0]!.instances[0]!.cid!;
      expect(body.toString()).to.include(`Content-ID: ${cid}\r\n`);
    });

    it('writes Content-IDs in angle brackets (RFC 2392) for other subscribers, without deflate unless asked', async () => {
      const ua = await b.ua(b.user('alice'));
      const w = await watchList(ua, { body: listBody(['sip:bob@example.com']) });
      expect(w.first.getHeader('content-encoding')).to.equal(undefined);
      const cid = read(w.first).rlmi.resources[0]!.instances[0]!.cid!;
      expect(w.first.body.toString()).to.include(`Content-ID: <${cid}>\r\n`);
    });
  });

  describe('on a driven clock', () => {
    const driven = drivenPerTest();

    it('changes of several members within presence.notifyMinIntervalMs go out coalesced in one partial NOTIFY', async () => {
      const { b, srv, timers } = await driven.start({ presence: { notifyMinIntervalMs: 5000 } });
      const [bobAor, carolAor, daveAor] = ['bob', 'carol', 'dave'].map((u) => `sip:${u}@example.com`);
      const ua = await b.ua('alice');
      ua.autoAnswer('NOTIFY', 200);
      const callId = 'coalesce-list@test';
      const first = ua.waitRequest(isNotify(callId));
      expect((await ua.transact(listSubscribe(ua, { body: listBody([bobAor, carolAor, daveAor]) }, callId, 'fcoalesce'))).status).to.equal(200);
      expect(read(await first).rlmi.version).to.equal(0);
      // Bob's change waits out the interval after the first NOTIFY, then goes alone.
      const bobNotify = ua.waitRequest(isNotify(callId));
      const bob = await b.ua('bob');
      expect((await bob.transact(publishReq(bob, bobAor!, { body: pidf(bobAor!, 'open'), expires: 600 }))).status).to.equal(200);
      await advance(srv, timers, 5000);
      const afterBob = read(await bobNotify);
      expect(summary(afterBob)).to.deep.equal([`${bobAor} active open`]);
      const next = ua.waitRequest(isNotify(callId));
      for (const [who, aor] of [['carol', carolAor], ['dave', daveAor]] as const) {
        const pua = await b.ua(who);
        expect((await pua.transact(publishReq(pua, aor, { body: pidf(aor, 'open'), expires: 600 }))).status).to.equal(200);
      }
      await advance(srv, timers, 5000);
      const both = read(await next);
      expect(both.rlmi).to.include({ version: afterBob.rlmi.version + 1, fullState: false });
      expect(summary(both)).to.deep.equal([`${carolAor} active open`, `${daveAor} active open`]);
    });

    it("a member's publication expiring is a partial NOTIFY; the list subscription itself expiring ends with timeout", async () => {
      const { b, srv, timers } = await driven.start();
      const bobAor = 'sip:bob@example.com';
      const pua = await b.ua('bob');
      expect((await pua.transact(publishReq(pua, bobAor, { body: pidf(bobAor, 'open'), expires: 60 }))).status).to.equal(200);
      const ua = await b.ua('alice');
      ua.autoAnswer('NOTIFY', 200);
      const callId = 'driven-list@test';
      const first = ua.waitRequest(isNotify(callId));
      const res = await ua.transact(listSubscribe(ua, { body: listBody([bobAor]), headers: { Expires: 120 } }, callId, 'fdriven'));
      expect(res.status).to.equal(200);
      expect(summary(read(await first))).to.deep.equal([`${bobAor} active open`]);

      const expired = ua.waitRequest(isNotify(callId));
      await advance(srv, timers, 61_000);
      const partial = read(await expired);
      expect(partial.rlmi).to.include({ version: 1, fullState: false });
      expect(summary(partial)).to.deep.equal([`${bobAor} active none`]);

      const ended = ua.waitRequest(isNotify(callId));
      await advance(srv, timers, 60_000);
      const last = await ended;
      expect(last.getHeader('subscription-state')).to.equal('terminated;reason=timeout');
      expect(read(last).rlmi).to.include({ version: 2, fullState: true });
      expect(srv.server.presence.lists.subscriptions.size).to.equal(0);
    });
  });

  describe('a list larger than one NOTIFY (limits.maxMessageSize 8192)', () => {
    const b = Bench.perSuite({ limits: { maxMessageSize: 8192 } });

    it('sends what fits in a full-state NOTIFY, then the rest in partial NOTIFYs, versions one after another', async () => {
      const uris = Array.from({ length: 40 }, (_, i) => `sip:member${i}@example.com`);
      const ua = await b.ua(b.user('alice'), 'tcp');
      const seen = ua.requests;
      const w = await watchList(ua, { body: listBody(uris) });
      // The first NOTIFY went to watchList's waiter; the others stay in the UA's mailbox.
      const all = (): SipRequest[] => [w.first, ...seen.filter((r) => isNotify(w.callId)(r) && r !== w.first)];
      const end = Date.now() + 5000;
      const told = (): string[] => all().flatMap((n) => read(n).rlmi.resources.map((r) => r.uri));
      while (told().length < uris.length && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
      const notifies = all().map(read);
      expect(notifies.length).to.be.above(1);
      expect(notifies.map((n) => n.rlmi.version)).to.deep.equal(notifies.map((_, i) => i));
      expect(notifies.map((n) => n.rlmi.fullState)).to.deep.equal([true, ...notifies.slice(1).map(() => false)]);
      expect([...told()].sort()).to.deep.equal([...uris].sort());
      for (const n of all()) expect(n.toBuffer().length).to.be.at.most(8192);
    });
  });

  describe('members follow their own rules (confirm policy)', () => {
    const b = Bench.perSuite({ presence: { defaultPolicy: 'confirm' } });

    it('a member pending approval shows pending without a document, then active when approved; refused: terminated;rejected', async () => {
      const [alice, bob, carol] = [b.user('alice'), b.user('bob'), b.user('carol')];
      const aliceAor = `sip:${alice}@example.com`;
      const bobAor = `sip:${bob}@example.com`;
      const carolAor = `sip:${carol}@example.com`;
      const ua = await b.ua(alice);
      const w = await watchList(ua, { body: listBody([bobAor, carolAor]) });
      const first = read(w.first);
      expect(summary(first)).to.deep.equal([`${bobAor} pending`, `${carolAor} pending`]);
      expect(first.parts.size).to.equal(0);

      let next = ua.waitRequest(isNotify(w.callId));
      await b.srv.server.presence.approve(bobAor, aliceAor);
      expect(summary(read(await next))).to.deep.equal([`${bobAor} active none`]);

      next = ua.waitRequest(isNotify(w.callId));
      await b.srv.server.presence.reject(carolAor, aliceAor);
      expect(summary(read(await next))).to.deep.equal([`${carolAor} terminated;rejected`]);
    });

    it("the member's owner sees the list watcher in its watcher information (RFC 3857) and approves it there", async () => {
      const [alice, bob] = [b.user('alice'), b.user('bob')];
      const aliceAor = `sip:${alice}@example.com`;
      const bobAor = `sip:${bob}@example.com`;
      const bobUa = await b.ua(bob);
      const winfo = await watch(bobUa, bobAor, { event: 'presence.winfo' });
      const ua = await b.ua(alice);
      const told = bobUa.waitRequest(isNotify(winfo.callId));
      const w = await watchList(ua, { body: listBody([bobAor]) });
      expect(summary(read(w.first))).to.deep.equal([`${bobAor} pending`]);
      const pending = parseWatcherInfo((await told).body);
      if (!pending.ok) expect.fail(pending.reason);
      expect(pending.document.watcherLists[0]!.watchers.map((x) => `${x.uri} ${x.status} ${x.event}`)).to.deep.equal([`${aliceAor} pending subscribe`]);

      const approvedWinfo = bobUa.waitRequest(isNotify(winfo.callId));
      const approvedList = ua.waitRequest(isNotify(w.callId));
      await b.srv.server.presence.approve(bobAor, aliceAor);
      expect(summary(read(await approvedList))).to.deep.equal([`${bobAor} active none`]);
      const approved = parseWatcherInfo((await approvedWinfo).body);
      if (!approved.ok) expect.fail(approved.reason);
      expect(approved.document.watcherLists[0]!.watchers.map((x) => `${x.uri} ${x.status} ${x.event}`)).to.deep.equal([`${aliceAor} active approved`]);
    });
  });
});
