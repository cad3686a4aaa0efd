import { expect } from 'chai';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { adminCommand, type AdminIo } from '../../src/cli/admin-commands.js';
import { CONTROL_SOCKET } from '../../src/control/control-protocol.js';
import { parseListNotify, type ListNotify } from '../../src/lists/list-notify.js';
import type { SipRequest } from '../../src/sip/message.js';
import { openStore, type Store } from '../../src/store/index.js';
import { isNotify } from '../e2e/presence-support.js';
import { call, httpBase, TOKEN } from '../http/http-support.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { TestUa } from '../support/test-ua.js';
import { xcap } from './xcap-client.js';

/**
 * resource-lists and rls-services (RFC 4826) as XCAP documents over real HTTP digest and SIP:
 * the documents ARE the stored lists the RLS serves, so a PUT reaches live list subscriptions
 * with a NOTIFY, and the CLI's changes show in the next GET.
 */

const RL = 'urn:ietf:params:xml:ns:resource-lists';
const RS = 'urn:ietf:params:xml:ns:rls-services';
const RL_TYPE = 'application/resource-lists+xml';
const RS_TYPE = 'application/rls-services+xml';
const EL_TYPE = 'application/xcap-el+xml';
const ALICE_LISTS = '/resource-lists/users/sip:alice@example.com/index';
const ALICE_SERVICES = '/rls-services/users/sip:alice@example.com/index';

function read(n: SipRequest): ListNotify {
  const r = parseListNotify(n.getHeader('content-type') ?? '', n.body);
  if (!r.ok) throw new Error(`not a list NOTIFY: ${r.reason}`);
  return r.notify;
}

const uris = (n: ListNotify): string[] => n.rlmi.resources.map((r) => r.uri);

function lists(body: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<resource-lists xmlns="${RL}">${body}</resource-lists>`;
}

describe('xcap: resource-lists and rls-services are the stored lists (RFC 4826)', function () {
  this.timeout(20000);
  let store: Store;
  let srv: TestServer;
  let base: string;
  let data: string;
  let cfg: string;
  const uas: TestUa[] = [];
  const ua = async (user: string): Promise<TestUa> => {
    const u = await TestUa.create({ port: srv.port, user, domain: 'example.com' });
    uas.push(u);
    u.autoAnswer('NOTIFY', 200);
    return u;
  };
  /** A list subscription (RFC 4662) to `uri`: its dialog's Call-ID and first NOTIFY. */
  const watch = async (u: TestUa, uri: string): Promise<{ callId: string; first: ListNotify }> => {
    const callId = `xl-${Math.random().toString(36).slice(2)}@test`;
    const first = u.waitRequest(isNotify(callId));
    const res = await u.transact(u.request('SUBSCRIBE', uri, { callId, headers: { Event: 'presence', Expires: 600, Supported: 'eventlist', Accept: 'multipart/related, application/rlmi+xml, application/pidf+xml' } }));
    expect(`${res.status} ${res.reason}`).to.match(/^200 /);
    return { callId, first: read(await first) };
  };

  before(async () => {
    data = mkdtempSync(join(tmpdir(), 'sp-xcap-lists-'));
    mkdirSync(join(data, 'db'));
    cfg = join(data, 'config.json');
    writeFileSync(cfg, JSON.stringify({ sip: { domain: 'example.com' }, store: { dataDir: join(data, 'db') } }));
    store = await openStore({ logger: pino({ level: 'silent' }) });
    // The control socket where the CLI finds a running server (store.dataDir of the config).
    srv = await startTestServer({ admin: { token: TOKEN } }, { store, controlSocket: join(data, 'db', CONTROL_SOCKET) });
    base = httpBase(srv.server);
    for (const username of ['alice', 'bob', 'carol']) {
      expect((await call(base, 'POST', '/api/users', { body: { username, password: `${username}-pass` } })).status).to.equal(201);
    }
  });
  afterEach(async () => {
    for (const u of uas.splice(0)) await u.close();
  });
  after(async () => {
    await srv.stop();
    await store.close();
    rmSync(data, { recursive: true, force: true });
  });

  it('xcap-caps lists both usages', async () => {
    const caps = await xcap(base, 'GET', '/xcap-caps/global/index', { user: 'alice' });
    expect(caps.text).to.contain('<auid>resource-lists</auid>').and.to.contain('<auid>rls-services</auid>');
    expect(caps.text).to.contain(`<namespace>${RS}</namespace>`);
  });

  it('a PUT of the document reaches the <user>+presence list subscription (NOTIFY); an element PUT of one entry too; the CLI shows it', async () => {
    // No list yet: 404, and Blink's list is served empty.
    expect((await xcap(base, 'GET', ALICE_LISTS, { user: 'alice' })).status).to.equal(404);
    const alice = await ua('alice');
    const w = await watch(alice, 'sip:alice+presence@example.com');
    expect(uris(w.first)).to.deep.equal([]);

    let next = alice.waitRequest(isNotify(w.callId));
    const doc = lists('<list name="presence"><display-name>Buddies</display-name><entry uri="sip:bob@example.com"><display-name>Bob</display-name></entry><list name="work"><entry uri="sip:carol@example.com"/></list></list><list name="family"><entry uri="sip:dave@example.com"/></list>');
    const put = await xcap(base, 'PUT', ALICE_LISTS, { user: 'alice', body: doc, type: RL_TYPE, headers: { 'If-None-Match': '*' } });
    expect(put.status, put.text).to.equal(201);
    const n1 = read(await next);
    // Nested lists are flattened into the served list (RFC 4662 §4.1), the top list's display name is its name.
    expect(uris(n1)).to.deep.equal(['sip:bob@example.com', 'sip:carol@example.com']);
    expect(n1.rlmi.name).to.equal('Buddies');
    // The same lists through the admin API (the CLI's operations).
    const api = await call(base, 'GET', '/api/users/alice/lists');
    expect(api.json.map((l: { uri: string; entries: unknown[] }) => `${l.uri} ${l.entries.length}`)).to.deep.equal(['sip:alice+family@example.com 1', 'sip:alice+presence@example.com 2']);
    // The client's own document comes back byte for byte (nesting kept), with the entity-tag of the PUT.
    const got = await xcap(base, 'GET', ALICE_LISTS, { user: 'alice' });
    expect(got.text).to.equal(doc);
    expect(got.headers.get('etag')).to.equal(put.headers.get('etag'));

    // One entry added by an element PUT (§8.2.3).
    next = alice.waitRequest(isNotify(w.callId));
    const erin = `${ALICE_LISTS}/~~/resource-lists/list%5b@name=%22presence%22%5d/entry%5b@uri=%22sip:erin@example.com%22%5d`;
    const el = await xcap(base, 'PUT', erin, { user: 'alice', body: '<entry uri="sip:erin@example.com"/>', type: EL_TYPE });
    expect(el.status, el.text).to.equal(201);
    // Appended after the nested list: document order, depth first.
    expect(uris(read(await next))).to.deep.equal(['sip:bob@example.com', 'sip:carol@example.com', 'sip:erin@example.com']);
    expect((await xcap(base, 'GET', erin, { user: 'alice' })).text).to.equal('<entry xmlns="urn:ietf:params:xml:ns:resource-lists" uri="sip:erin@example.com"/>');

    // The CLI adds frank through the running server: the subscription hears it, the next GET shows it.
    next = alice.waitRequest(isNotify(w.callId));
    const out: string[] = [];
    const io: AdminIo = { out: (l) => out.push(l), err: (l) => out.push(l), readPassword: async () => 'x' };
    expect(await adminCommand('lists', ['add', 'alice', 'presence', 'frank', '--config', cfg], io), out.join('\n')).to.equal(0);
    expect(uris(read(await next))).to.include('sip:frank@example.com');
    const after = await xcap(base, 'GET', ALICE_LISTS, { user: 'alice' });
    expect(after.text).to.contain('<entry uri="sip:frank@example.com"');
    expect(after.headers.get('etag')).not.to.equal(got.headers.get('etag'));

    // An attribute PUT renames a list (§8.2.4): stored under the new name, the old one gone.
    // Since the CLI's change the document is rendered from the stored lists, in name order: family first.
    const renamed = await xcap(base, 'PUT', `${ALICE_LISTS}/~~/resource-lists/list%5b1%5d/@name`, { user: 'alice', body: 'relatives', type: 'application/xcap-att+xml' });
    expect(renamed.status, renamed.text).to.equal(200);
    expect((await call(base, 'GET', '/api/users/alice/lists')).json.map((l: { name: string }) => l.name)).to.deep.equal(['presence', 'relatives']);

    // An element DELETE of a whole list: the stored list goes.
    expect((await xcap(base, 'DELETE', `${ALICE_LISTS}/~~/resource-lists/list%5b@name=%22relatives%22%5d`, { user: 'alice' })).status).to.equal(200);
    expect((await call(base, 'GET', '/api/users/alice/lists')).json.map((l: { name: string }) => l.name)).to.deep.equal(['presence']);
  });

  it('refuses repeated list names and entry URIs (409 uniqueness-failure with alt-value), unnamed lists and references (409 constraint-failure), leaving the lists alone', async () => {
    const before = (await call(base, 'GET', '/api/users/bob/lists')).json;
    const twice = await xcap(base, 'PUT', '/resource-lists/users/sip:bob@example.com/index', { user: 'bob', body: lists('<list name="presence"/><list name="presence"/>'), type: RL_TYPE });
    expect(twice.status).to.equal(409);
    expect(twice.headers.get('content-type')).to.equal('application/xcap-error+xml');
    expect(twice.text).to.contain('<uniqueness-failure><exists field="/rl:resource-lists/rl:list[2]/@name"><alt-value>presence-2</alt-value></exists></uniqueness-failure>');
    const entries = await xcap(base, 'PUT', '/resource-lists/users/sip:bob@example.com/index', { user: 'bob', body: lists('<list name="presence"><entry uri="sip:x@example.com"/><entry uri="sip:x@example.com"/></list>'), type: RL_TYPE });
    expect(entries.status).to.equal(409);
    expect(entries.text).to.contain('field="/rl:resource-lists/rl:list[1]/rl:entry[2]/@uri"');
    // The last: a first list fine, the second with an entry the lists refuse: neither is stored.
    for (const body of ['<list><entry uri="sip:x@example.com"/></list>', '<list name="bad name"/>', '<list name="p"><external anchor="http://example.org/x"/></list>', '<list name="ok"><entry uri="sip:y@example.com"/></list><list name="p"><entry uri="http://example.org/x"/></list>']) {
      const r = await xcap(base, 'PUT', '/resource-lists/users/sip:bob@example.com/index', { user: 'bob', body: lists(body), type: RL_TYPE });
      expect(r.status, body).to.equal(409);
      expect(r.text, body).to.contain('<constraint-failure');
      if (body.includes('name="ok"')) expect(r.text).to.contain('bad user name');
    }
    expect((await call(base, 'GET', '/api/users/bob/lists')).json).to.deep.equal(before);

    // An element PUT that would repeat an entry of alice's list: the URI selects by position, the entry repeats.
    const dup = await xcap(base, 'PUT', `${ALICE_LISTS}/~~/resource-lists/list%5b@name=%22presence%22%5d/entry%5b1%5d`, { user: 'alice', body: '<entry uri="sip:erin@example.com"/>', type: EL_TYPE });
    expect(dup.status, dup.text).to.equal(409);
    expect(dup.text).to.contain('<uniqueness-failure>');
  });

  it('rls-services: a service naming a resource list is served at its URI and follows the list; inline lists; refusals; the global index', async () => {
    const put = await xcap(base, 'PUT', '/resource-lists/users/sip:bob@example.com/index', { user: 'bob', body: lists('<list name="oma_buddylist"><entry uri="sip:alice@example.com"/></list>'), type: RL_TYPE });
    expect(put.status, put.text).to.equal(201);
    const ref = `${base}/xcap-root/resource-lists/users/sip:bob@example.com/index/~~/resource-lists/list%5B@name=%22oma_buddylist%22%5D`;
    const services = `<?xml version="1.0" encoding="UTF-8"?>\n<rls-services xmlns="${RS}" xmlns:rl="${RL}">` +
      `<service uri="sip:bob+presence@example.com"><resource-list>${ref}</resource-list><packages><package>presence</package></packages></service>` +
      `<service uri="sip:bob+team@example.com"><rl:list><rl:entry uri="sip:carol@example.com"/></rl:list></service></rls-services>`;
    const r = await xcap(base, 'PUT', '/rls-services/users/sip:bob@example.com/index', { user: 'bob', body: services, type: RS_TYPE });
    expect(r.status, r.text).to.equal(201);
    expect((await xcap(base, 'GET', '/rls-services/users/sip:bob@example.com/index', { user: 'bob' })).text).to.equal(services);

    const bob = await ua('bob');
    const w = await watch(bob, 'sip:bob+presence@example.com');
    expect(uris(w.first)).to.deep.equal(['sip:alice@example.com']);
    expect(uris((await watch(bob, 'sip:bob+team@example.com')).first)).to.deep.equal(['sip:carol@example.com']);

    // The lists the services supply do not disturb bob's own resource-lists document: it comes back as written.
    expect((await xcap(base, 'GET', '/resource-lists/users/sip:bob@example.com/index', { user: 'bob' })).text).to.equal(lists('<list name="oma_buddylist"><entry uri="sip:alice@example.com"/></list>'));

    // The referenced list changes: the service's list follows, with a NOTIFY.
    const next = bob.waitRequest(isNotify(w.callId));
    const add = `/resource-lists/users/sip:bob@example.com/index/~~/resource-lists/list%5b@name=%22oma_buddylist%22%5d/entry%5b@uri=%22sip:dave@example.com%22%5d`;
    expect((await xcap(base, 'PUT', add, { user: 'bob', body: '<entry uri="sip:dave@example.com"/>', type: EL_TYPE })).status).to.equal(201);
    expect(uris(read(await next))).to.deep.equal(['sip:alice@example.com', 'sip:dave@example.com']);

    // Changed through the admin API (the CLI's path): the service's list follows too.
    const byApi = bob.waitRequest(isNotify(w.callId));
    expect((await call(base, 'PUT', '/api/users/bob/lists/oma_buddylist', { body: { entries: [{ uri: 'dave' }] } })).status).to.equal(200);
    expect(uris(read(await byApi))).to.deep.equal(['sip:dave@example.com']);

    // Refused: another user's service URI, one outside our domain, a package we do not serve, a reference to nothing.
    const one = (service: string) => `<rls-services xmlns="${RS}" xmlns:rl="${RL}">${service}</rls-services>`;
    const cases = [
      `<service uri="sip:alice+x@example.com"><rl:list/></service>`,
      `<service uri="sip:bob+x@example.org"><rl:list/></service>`,
      `<service uri="sip:bob+x@example.com"><rl:list/><packages><package>dialog</package></packages></service>`,
      `<service uri="sip:bob+x@example.com"><resource-list>${ref.replace('oma_buddylist', 'nope')}</resource-list></service>`,
      // A first service fine, the second with an entry the lists refuse: neither list is stored.
      `<service uri="sip:bob+new@example.com"><rl:list><rl:entry uri="sip:z@example.com"/></rl:list></service><service uri="sip:bob+x@example.com"><rl:list><rl:entry uri="http://example.org/x"/></rl:list></service>`,
    ];
    for (const c of cases) {
      const x = await xcap(base, 'PUT', '/rls-services/users/sip:bob@example.com/index', { user: 'bob', body: one(c), type: RS_TYPE });
      expect(x.status, c).to.equal(409);
      expect(x.text, c).to.contain('<constraint-failure');
    }
    const twice = await xcap(base, 'PUT', '/rls-services/users/sip:bob@example.com/index', { user: 'bob', body: one('<service uri="sip:bob+a@example.com"><rl:list/></service><service uri="sip:bob+a@example.com"><rl:list/></service>'), type: RS_TYPE });
    expect(twice.status).to.equal(409);
    expect(twice.text).to.contain('<uniqueness-failure>');
    expect((await call(base, 'GET', '/api/users/bob/lists')).json.map((l: { name: string }) => l.name)).to.deep.equal(['oma_buddylist', 'presence', 'team']);

    // A whole resource-lists PUT without them leaves the services' lists stored.
    const again = await xcap(base, 'PUT', '/resource-lists/users/sip:bob@example.com/index', { user: 'bob', body: lists('<list name="oma_buddylist"><entry uri="sip:dave@example.com"/></list>'), type: RL_TYPE });
    expect(again.status, again.text).to.equal(200);
    expect((await call(base, 'GET', '/api/users/bob/lists')).json.map((l: { name: string }) => l.name)).to.deep.equal(['oma_buddylist', 'presence', 'team']);

    // The global index: every user's services, read-only, for the admin token only.
    expect((await xcap(base, 'GET', '/rls-services/global/index', { user: 'alice' })).status).to.equal(403);
    const global = await xcap(base, 'GET', '/rls-services/global/index', { token: TOKEN });
    expect(global.status).to.equal(200);
    expect(global.text).to.contain('uri="sip:bob+presence@example.com"').and.to.contain('uri="sip:bob+team@example.com"');
    expect((await xcap(base, 'PUT', '/rls-services/global/index', { user: 'alice', body: one(''), type: RS_TYPE })).status).to.equal(403);
    expect((await xcap(base, 'PUT', '/rls-services/global/index', { token: TOKEN, body: one(''), type: RS_TYPE })).status).to.equal(409);
  });

  it("an RCS client's oma_buddylist, an <external> to its own list: served with that list's members, following its edits", async () => {
    const path = '/resource-lists/users/sip:carol@example.com/index';
    const anchor = `${base}/xcap-root${path}/~~/resource-lists/list%5B@name=%22rcs%22%5D`;
    const doc = lists(`<list name="rcs"><entry uri="sip:alice@example.com"/></list><list name="oma_buddylist"><external anchor="${anchor}"/></list><list name="oma_grantedcontacts"><external anchor="${anchor}"/></list><list name="oma_blockedcontacts"/>`);
    const put = await xcap(base, 'PUT', path, { user: 'carol', body: doc, type: RL_TYPE });
    expect(put.status, put.text).to.equal(201);
    const carol = await ua('carol');
    const w = await watch(carol, 'sip:carol+oma_buddylist@example.com');
    expect(uris(w.first)).to.deep.equal(['sip:alice@example.com']);
    const next = carol.waitRequest(isNotify(w.callId));
    const add = `${path}/~~/resource-lists/list%5b@name=%22rcs%22%5d/entry%5b@uri=%22sip:bob@example.com%22%5d`;
    expect((await xcap(base, 'PUT', add, { user: 'carol', body: '<entry uri="sip:bob@example.com"/>', type: EL_TYPE })).status).to.equal(201);
    expect(uris(read(await next))).to.deep.equal(['sip:alice@example.com', 'sip:bob@example.com']);
    // The client's document, references and all, comes back as written (with the entry added).
    expect((await xcap(base, 'GET', path, { user: 'carol' })).text).to.contain(`<external anchor="${anchor}"/>`);

    // SIP SIMPLE's own service: an inline list of <external>s, presence and dialog asked (presence served).
    const services = `<rls-services xmlns="${RS}" xmlns:rl="${RL}"><service uri="sip:carol+buddies@example.com"><rl:list><rl:external anchor="${anchor}"/></rl:list><packages><package>presence</package><package>dialog</package></packages></service></rls-services>`;
    const r = await xcap(base, 'PUT', '/rls-services/users/sip:carol@example.com/index', { user: 'carol', body: services, type: RS_TYPE });
    expect(r.status, r.text).to.equal(201);
    expect(uris((await watch(carol, 'sip:carol+buddies@example.com')).first)).to.deep.equal(['sip:alice@example.com', 'sip:bob@example.com']);
  });

  it('DELETE of the rls-services document leaves the lists; DELETE of the resource-lists document deletes them all', async () => {
    const names = async () => (await call(base, 'GET', '/api/users/bob/lists')).json.map((l: { name: string }) => l.name);
    const before = await names();
    expect(before).to.include('team');
    expect((await xcap(base, 'DELETE', '/rls-services/users/sip:bob@example.com/index', { user: 'bob' })).status).to.equal(200);
    expect((await xcap(base, 'GET', '/rls-services/users/sip:bob@example.com/index', { user: 'bob' })).status).to.equal(404);
    expect(await names()).to.deep.equal(before);
    expect((await xcap(base, 'DELETE', '/resource-lists/users/sip:bob@example.com/index', { user: 'bob' })).status).to.equal(200);
    expect(await names()).to.deep.equal([]);
    expect((await xcap(base, 'GET', '/resource-lists/users/sip:bob@example.com/index', { user: 'bob' })).status).to.equal(404);
  });

  it('xcap-diff tells a list changed through the admin API (the CLI path) as a change of the resource-lists document', async () => {
    const alice = await ua('alice');
    const callId = 'xcap-diff-lists@test';
    const initial = alice.waitRequest(isNotify(callId));
    const res = await alice.transact(alice.request('SUBSCRIBE', 'sip:alice@example.com', { callId, headers: { Event: 'xcap-diff', Expires: 600, Accept: 'application/xcap-diff+xml' } }));
    expect(res.status).to.be.oneOf([200, 202]);
    expect((await initial).body.toString()).to.contain('sel="resource-lists/users/sip:alice@example.com/index"');
    const changed = alice.waitRequest((r) => isNotify(callId)(r) && r.body.toString().includes('previous-etag'));
    expect((await call(base, 'PUT', '/api/users/alice/lists/presence', { body: { entries: [{ uri: 'bob' }] } })).status).to.equal(200);
    expect((await changed).body.toString()).to.match(/sel="resource-lists\/users\/sip:alice@example.com\/index" previous-etag="[^"]+" new-etag="[^"]+"/);
  });
});
