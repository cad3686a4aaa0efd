import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { adminCommand, type AdminIo } from '../../src/cli/admin-commands.js';
import { parseListNotify, type ListNotify } from '../../src/lists/list-notify.js';
import type { SipRequest, SipResponse } from '../../src/sip/message.js';
import { openStore, type Store } from '../../src/store/index.js';
import { call, httpBase, TOKEN, basic } from '../http/http-support.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { TestUa } from '../support/test-ua.js';
import { isNotify } from './presence-support.js';

/**
 * Stored lists (RFC 4826 resource-lists served by the RLS, RFC 4662) over real sockets:
 * managed through the admin API, /api/me/lists and the CLI, served at sip:<user>+<name>@<domain>,
 * durable in the store, and live list subscriptions following each change.
 */

function read(n: SipRequest): ListNotify {
  const r = parseListNotify(n.getHeader('content-type') ?? '', n.body);
  if (!r.ok) throw new Error(`not a list NOTIFY: ${r.reason}`);
  return r.notify;
}

const members = (n: ListNotify): string[] => n.rlmi.resources.map((r) => `${r.uri}${r.name !== undefined ? ` "${r.name}"` : ''} ${r.instances[0]!.state}`);

interface ListWatch {
  callId: string;
  res: SipResponse;
  first: SipRequest;
}

async function subscribe(ua: TestUa, uri: string, supported = 'eventlist'): Promise<{ res: SipResponse; callId: string; first?: Promise<SipRequest> }> {
  ua.autoAnswer('NOTIFY', 200);
  const callId = `s-${Math.random().toString(36).slice(2)}@test`;
  const first = ua.waitRequest(isNotify(callId));
  first.catch(() => undefined);
  const req = ua.request('SUBSCRIBE', uri, { callId, headers: { Event: 'presence', Expires: 600, Supported: supported, Accept: 'multipart/related, application/rlmi+xml, application/pidf+xml' } });
  const res = await ua.transact(req);
  return { res, callId, ...(res.status === 200 ? { first } : {}) };
}

async function watchStored(ua: TestUa, uri: string): Promise<ListWatch> {
  const s = await subscribe(ua, uri);
  expect(s.res.status, `${s.res.status} ${s.res.reason}`).to.equal(200);
  return { callId: s.callId, res: s.res, first: await s.first! };
}

describe('e2e: stored resource lists (sip:<user>+<name>@<domain>)', function () {
  this.timeout(20000);
  let store: Store;
  let srv: TestServer;
  let base: string;
  const uas: TestUa[] = [];
  const ua = async (user: string): Promise<TestUa> => {
    const u = await TestUa.create({ port: srv.port, user, domain: 'example.com' });
    uas.push(u);
    return u;
  };

  before(async () => {
    store = await openStore({ logger: pino({ level: 'silent' }) });
    srv = await startTestServer({ admin: { token: TOKEN }, presence: { maxListMembers: 3 } }, { store });
    base = httpBase(srv.server);
  });
  afterEach(async () => {
    for (const u of uas.splice(0)) await u.close();
  });
  after(async () => {
    await srv.stop();
    await store.close();
  });

  it('a list set through the admin API is served at its URI; changes reach the live subscription; deleting it ends it', async () => {
    const put = await call(base, 'PUT', '/api/users/alice/lists/friends', {
      body: { displayName: 'Friends', entries: [{ uri: 'bob', displayName: 'Bob' }, { uri: 'sip:carol@example.com' }, { uri: 'bob@example.com' }] },
    });
    expect(put.status, put.text).to.equal(200);
    expect(put.json).to.deep.equal({
      list: { owner: 'sip:alice@example.com', name: 'friends', uri: 'sip:alice+friends@example.com', displayName: 'Friends', entries: [{ uri: 'sip:bob@example.com', displayName: 'Bob' }, { uri: 'sip:carol@example.com' }] },
      affected: 0,
    });
    const get = await call(base, 'GET', '/api/users/alice/lists');
    expect(get.json.map((l: { uri: string }) => l.uri)).to.deep.equal(['sip:alice+friends@example.com']);

    const alice = await ua('alice');
    const w = await watchStored(alice, 'sip:alice+friends@example.com');
    const full = read(w.first);
    expect(full.rlmi).to.include({ uri: 'sip:alice+friends@example.com', version: 0, fullState: true, name: 'Friends' });
    expect(members(full)).to.deep.equal(['sip:bob@example.com "Bob" active', 'sip:carol@example.com active']);

    // Carol out, dave in: the subscription gets the new full state at once.
    let next = alice.waitRequest(isNotify(w.callId));
    const changed = await call(base, 'PUT', '/api/users/alice/lists/friends', { body: { entries: [{ uri: 'bob', displayName: 'Bob' }, { uri: 'dave' }] } });
    expect(changed.json.affected).to.equal(1);
    const after = read(await next);
    expect(after.rlmi).to.include({ version: 1, fullState: true });
    expect(members(after)).to.deep.equal(['sip:bob@example.com "Bob" active', 'sip:dave@example.com active']);
    // Bob kept his instance id across the change (RFC 4662 §5.3: one back-end subscription).
    expect(after.rlmi.resources[0]!.instances[0]!.id).to.equal(full.rlmi.resources[0]!.instances[0]!.id);

    next = alice.waitRequest(isNotify(w.callId));
    expect((await call(base, 'DELETE', '/api/users/alice/lists/friends')).json).to.deep.equal({ deleted: true, affected: 1 });
    expect((await next).getHeader('subscription-state')).to.equal('terminated;reason=noresource');
    expect((await call(base, 'DELETE', '/api/users/alice/lists/friends')).status).to.equal(404);
  });

  it("only the owner may subscribe to a list (403); <user>+presence is an empty list until one is stored (Blink); 421 without eventlist", async () => {
    await call(base, 'PUT', '/api/users/erin/lists/work', { body: { entries: [{ uri: 'bob' }] } });
    const mallory = await ua('mallory');
    const refused = await subscribe(mallory, 'sip:erin+work@example.com');
    expect(`${refused.res.status} ${refused.res.reason}`).to.equal('403 Not Your List');

    const frank = await ua('frank');
    const w = await watchStored(frank, 'sip:frank+presence@example.com');
    expect(read(w.first).rlmi).to.deep.include({ uri: 'sip:frank+presence@example.com', fullState: true, resources: [] });
    const noEventlist = await subscribe(frank, 'sip:frank+presence@example.com', 'timer');
    expect(`${noEventlist.res.status} ${noEventlist.res.reason}`).to.equal('421 Extension Required');
  });

  it('/api/me/lists: the user manages their own lists with their SIP password', async () => {
    expect((await call(base, 'POST', '/api/users', { body: { username: 'gina', password: 'pw-gina' } })).status).to.equal(201);
    const me = { token: null, headers: basic('gina', 'pw-gina') };
    expect((await call(base, 'GET', '/api/me/lists', { token: null })).status).to.equal(401);
    const put = await call(base, 'PUT', '/api/me/lists/presence', { ...me, body: { entries: [{ uri: 'sip:hal@example.org' }, { uri: 'ivy' }] } });
    expect(put.status, put.text).to.equal(200);
    expect(put.json.list.uri).to.equal('sip:gina+presence@example.com');
    const get = await call(base, 'GET', '/api/me/lists', me);
    expect(get.json).to.deep.equal([{ owner: 'sip:gina@example.com', name: 'presence', uri: 'sip:gina+presence@example.com', entries: [{ uri: 'sip:hal@example.org' }, { uri: 'sip:ivy@example.com' }] }]);
    // Members outside our domain show terminated;reason=noresource (we cannot serve them).
    const gina = await ua('gina');
    const w = await watchStored(gina, 'sip:gina+presence@example.com');
    expect(read(w.first).rlmi.resources.map((r) => `${r.uri} ${r.instances[0]!.state};${r.instances[0]!.reason ?? ''}`)).to.deep.equal(['sip:hal@example.org terminated;noresource', 'sip:ivy@example.com active;']);
    expect((await call(base, 'DELETE', '/api/me/lists/presence', me)).json).to.include({ deleted: true });
  });

  it('refuses bad names, bad entries, too many entries and bodies off the schema (400)', async () => {
    const cases: Array<[string, unknown, RegExp]> = [
      ['/api/users/alice/lists/bad%20name', { entries: [] }, /list name/],
      ['/api/users/alice/lists/ok', { entries: [{ uri: 'not a uri' }] }, /bad entry/],
      ['/api/users/alice/lists/ok', { entries: [{ uri: 'a' }, { uri: 'b' }, { uri: 'c' }, { uri: 'd' }] }, /more than 3 entries/],
      ['/api/users/alice/lists/ok', { members: [] }, /invalid request body/],
    ];
    for (const [path, body, error] of cases) {
      const r = await call(base, 'PUT', path, { body });
      expect(r.status, path).to.equal(400);
      expect(r.json.error).to.match(error);
    }
  });

  it('lists are durable: a new server on the same store serves them', async () => {
    await call(base, 'PUT', '/api/users/kim/lists/presence', { body: { entries: [{ uri: 'bob' }] } });
    const other = await startTestServer({ admin: { token: TOKEN } }, { store });
    try {
      const kim = await TestUa.create({ port: other.port, user: 'kim', domain: 'example.com' });
      uas.push(kim);
      const w = await watchStored(kim, 'sip:kim+presence@example.com');
      expect(members(read(w.first))).to.deep.equal(['sip:bob@example.com active']);
    } finally {
      await other.stop();
    }
  });
});

describe('e2e: list subscriptions survive a restart (same store, same port)', function () {
  this.timeout(20000);

  it('a list in the SUBSCRIBE and a stored list: after the restart a full-state NOTIFY in the same dialog, the RLMI version going on; refreshes work', async () => {
    const store = await openStore({ logger: pino({ level: 'silent' }) });
    let srv = await startTestServer({ admin: { token: TOKEN }, store: { flushWindowMs: 10 } }, { store });
    const port = srv.port;
    const ua = await TestUa.create({ port, user: 'lena', domain: 'example.com' });
    try {
      ua.autoAnswer('NOTIFY', 200);
      await call(httpBase(srv.server), 'PUT', '/api/users/lena/lists/presence', { body: { entries: [{ uri: 'max' }] } });
      const body = '<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"><list><entry uri="sip:nina@example.com"/></list></resource-lists>';
      const contained = { callId: 'restart-contained@test', uri: 'sip:rls@example.com', headers: { Require: 'recipient-list-subscribe', 'Content-Disposition': 'recipient-list', 'Content-Type': 'application/resource-lists+xml' }, body };
      const stored = { callId: 'restart-stored@test', uri: 'sip:lena+presence@example.com', headers: {}, body: undefined };
      const dialogs: Array<{ callId: string; uri: string; toTag: string; target: string; version: number }> = [];
      for (const s of [contained, stored]) {
        const first = ua.waitRequest(isNotify(s.callId));
        const req = ua.request('SUBSCRIBE', s.uri, { callId: s.callId, fromTag: `f${s.callId.split("@")[0]}`, cseq: 1, headers: { Event: 'presence', Expires: 600, Supported: 'eventlist', ...s.headers }, body: s.body });
        const res = await ua.transact(req);
        expect(res.status).to.equal(200);
        const n = read(await first);
        expect(n.rlmi.version).to.equal(0);
        dialogs.push({ callId: s.callId, uri: s.uri, toTag: res.to.tag!, target: res.contacts[0]!.uri.raw, version: 0 });
      }
      // Let the write-behind queue take the subscriptions (and their CSeqs) to the store.
      await srv.server.presence.listsRestored;
      await new Promise((r) => setTimeout(r, 100));
      await srv.stop();

      const after = dialogs.map((d) => ua.waitRequest(isNotify(d.callId), 8000));
      srv = await startTestServer({ admin: { token: TOKEN }, sip: { port }, store: { flushWindowMs: 10 } }, { store });
      expect(await srv.server.presence.listsRestored).to.equal(2);
      const [c, s] = (await Promise.all(after)).map(read);
      expect(c!.rlmi).to.include({ uri: 'sip:rls@example.com', version: 1, fullState: true });
      expect(members(c!)).to.deep.equal(['sip:nina@example.com active']);
      expect(s!.rlmi).to.include({ uri: 'sip:lena+presence@example.com', version: 1, fullState: true });
      expect(members(s!)).to.deep.equal(['sip:max@example.com active']);

      // The dialogs go on: a refresh is answered 200 and gets full state, version 2.
      for (const d of dialogs) {
        const next = ua.waitRequest(isNotify(d.callId));
        const refresh = ua.request('SUBSCRIBE', d.target, { callId: d.callId, fromTag: `f${d.callId.split("@")[0]}`, toTag: d.toTag, to: `<${d.uri}>`, cseq: 2, headers: { Event: 'presence', Expires: 600, Supported: 'eventlist' } });
        expect((await ua.transact(refresh)).status).to.equal(200);
        expect(read(await next).rlmi).to.include({ version: 2, fullState: true });
      }
    } finally {
      await ua.close();
      await srv.stop();
      await store.close();
    }
  });
});

describe('cli: simple-presence lists (on the store when no server runs)', function () {
  this.timeout(30_000);

  it('set, add, remove, show and del', async () => {
    const data = mkdtempSync(join(tmpdir(), 'sp-lists-'));
    const databaseUrl = process.env.DATABASE_URL;
    delete process.env.DATABASE_URL;
    try {
      const cfg = join(data, 'config.json');
      writeFileSync(cfg, JSON.stringify({ sip: { domain: 'example.com' }, store: { dataDir: join(data, 'db') } }));
      const out: string[] = [];
      const errs: string[] = [];
      const io: AdminIo = { out: (l) => out.push(l), err: (l) => errs.push(l), readPassword: async () => 'x' };
      const run = (...args: string[]) => adminCommand('lists', [...args, '--config', cfg], io);
      expect(await run('set', 'alice', 'presence', 'bob', 'carol@example.org', '--display-name', 'Buddies')).to.equal(0);
      expect(await run('add', 'alice', 'presence', 'dave')).to.equal(0);
      expect(await run('remove', 'alice', 'presence', 'bob')).to.equal(0);
      expect(await run('show', 'alice')).to.equal(0);
      expect(await run('del', 'alice', 'presence')).to.equal(0);
      expect(await run('del', 'alice', 'presence')).to.equal(3);
      expect(await run('set', 'alice')).to.equal(2);
      expect(out).to.deep.equal([
        'sip:alice+presence@example.com: 2 members',
        'sip:alice+presence@example.com: 3 members',
        'sip:alice+presence@example.com: 2 members',
        'sip:alice+presence@example.com "Buddies"',
        '  sip:carol@example.org',
        '  sip:dave@example.com',
        'list deleted',
      ]);
      expect(errs.join('\n')).to.contain('no list presence of');
    } finally {
      if (databaseUrl !== undefined) process.env.DATABASE_URL = databaseUrl;
      rmSync(data, { recursive: true, force: true });
    }
  });
});
