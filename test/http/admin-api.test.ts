import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/config.js';
import type { SipRequest } from '../../src/sip/message.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { TestUa } from '../support/test-ua.js';
import { call, httpBase, TOKEN } from './http-support.js';

const PIDF = 'application/pidf+xml';

function pidf(entity: string, basic: 'open' | 'closed', note: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="${entity}"><tuple id="t1"><status><basic>${basic}</basic></status><note>${note}</note></tuple></presence>`;
}

async function publish(ua: TestUa, presentity: string, body: string, expires = 600): Promise<string> {
  const req = ua.request('PUBLISH', presentity, { to: `<${presentity}>`, headers: { Event: 'presence', Expires: expires, 'Content-Type': PIDF }, body });
  const res = await ua.transact(req);
  expect(res.status).to.equal(200);
  return res.getHeader('sip-etag')!;
}

async function subscribe(ua: TestUa, presentity: string): Promise<{ callId: string; first: SipRequest }> {
  ua.autoAnswer('NOTIFY', 200);
  const callId = `sub-${Math.random().toString(36).slice(2)}@test`;
  const first = ua.waitRequest((r) => r.method === 'NOTIFY' && r.callId === callId);
  const res = await ua.transact(ua.request('SUBSCRIBE', presentity, { callId, headers: { Event: 'presence', Expires: 600, Accept: PIDF } }));
  expect(res.status).to.equal(200);
  return { callId, first: await first };
}

async function register(ua: TestUa): Promise<void> {
  const res = await ua.transact(ua.request('REGISTER', 'sip:example.com', { to: `<${ua.aor}>`, headers: { Expires: 600 } }));
  expect(res.status).to.equal(200);
}

describe('http: admin API over real HTTP (state endpoints)', function () {
  this.timeout(10000);
  let srv: TestServer;
  let base: string;
  const uas: TestUa[] = [];
  const ua = async (user: string): Promise<TestUa> => {
    const u = await TestUa.create({ port: srv.port, user });
    uas.push(u);
    return u;
  };

  before(async () => {
    srv = await startTestServer({ admin: { token: TOKEN } });
    base = httpBase(srv.server);
  });
  after(async () => {
    for (const u of uas) await u.close();
    await srv.stop();
  });

  describe('bearer token (RFC 6750)', () => {
    it('answers 401 with a WWW-Authenticate challenge without a token', async () => {
      const r = await call(base, 'GET', '/api/status', { token: null });
      expect(r.status).to.equal(401);
      expect(r.headers.get('www-authenticate')).to.match(/^Bearer /);
      expect(r.json.error).to.match(/admin token required/);
    });

    it('answers 401 invalid_token for a wrong token', async () => {
      const r = await call(base, 'GET', '/api/status', { token: 'not-the-token' });
      expect(r.status).to.equal(401);
      expect(r.headers.get('www-authenticate')).to.contain('invalid_token');
      expect(r.json.error).to.equal('wrong admin token');
    });

    it('answers 404 with a JSON error for an unknown endpoint (with the token)', async () => {
      const r = await call(base, 'GET', '/api/nothing-here');
      expect(r.status).to.equal(404);
      expect(r.json).to.deep.equal({ error: 'no such endpoint: GET /api/nothing-here', status: 404 });
    });

    it('answers 405 with Allow for a method the path does not take', async () => {
      const r = await call(base, 'PATCH', '/api/subscriptions');
      expect(r.status).to.equal(405);
      expect(r.headers.get('allow')).to.equal('GET');
    });
  });

  describe('state', () => {
    it('GET /api/status sums up what the server holds', async () => {
      const r = await call(base, 'GET', '/api/status');
      expect(r.status).to.equal(200);
      expect(r.json.domain).to.equal('example.com');
      expect(r.json.listeners.map((l: { protocol: string }) => l.protocol)).to.include.members(['udp', 'tcp', 'ws']);
      expect(r.json.registrations).to.have.keys('bindings', 'aors');
      expect(r.json.store).to.equal(null);
    });

    it('presentities: list, composed document, publications with expiry', async () => {
      const alice = await ua('alice');
      const etag = await publish(alice, 'sip:alice@example.com', pidf('sip:alice@example.com', 'open', 'at lunch'), 300);

      const list = await call(base, 'GET', '/api/presentities');
      expect(list.status).to.equal(200);
      expect(list.json.find((p: { presentity: string }) => p.presentity === 'sip:alice@example.com')).to.include({ publications: 1 });

      // A bare user name, a user@domain and a percent-encoded URI all name the same presentity.
      for (const name of ['alice', 'alice@example.com', encodeURIComponent('sip:alice@example.com')]) {
        const one = await call(base, 'GET', `/api/presentities/${name}`);
        expect(one.status, name).to.equal(200);
        expect(one.json.presentity).to.equal('sip:alice@example.com');
        expect(one.json.document).to.contain('at lunch');
        expect(one.json.publications).to.have.length(1);
        expect(one.json.publications[0].etag).to.equal(etag);
        expect(one.json.publications[0].expiresIn).to.be.within(295, 300);
        expect(Date.parse(one.json.publications[0].expiresAt)).to.be.above(Date.now());
      }

      const doc = await call(base, 'GET', '/api/presentities/alice/document');
      expect(doc.status).to.equal(200);
      expect(doc.headers.get('content-type')).to.equal(PIDF);
      expect(doc.text).to.match(/<basic>open<\/basic>/);

      const pubs = await call(base, 'GET', '/api/presentities/alice/publications');
      expect(pubs.json.map((p: { etag: string }) => p.etag)).to.deep.equal([etag]);
    });

    it('rejects an address that is no SIP address with 400', async () => {
      const r = await call(base, 'GET', `/api/presentities/${encodeURIComponent('not a user!')}`);
      expect(r.status).to.equal(400);
      expect(r.json.error).to.match(/not a SIP address/);
    });

    it('rejects a malformed percent-encoding with 400', async () => {
      const r = await call(base, 'GET', '/api/presentities/%E0%A4%A');
      expect(r.status).to.equal(400);
    });

    it('subscriptions by presentity and by watcher; DELETE ends one with a final NOTIFY', async () => {
      const carol = await ua('carol');
      await publish(carol, 'sip:carol@example.com', pidf('sip:carol@example.com', 'open', 'here'));
      const dave = await ua('dave');
      const { callId } = await subscribe(dave, 'sip:carol@example.com');

      const byPresentity = await call(base, 'GET', '/api/subscriptions?presentity=carol');
      expect(byPresentity.status).to.equal(200);
      expect(byPresentity.json).to.have.length(1);
      const sub = byPresentity.json[0];
      expect(sub).to.include({ event: 'presence', presentity: 'sip:carol@example.com', watcher: 'sip:dave@example.com', state: 'active', transport: 'udp' });

      const byWatcher = await call(base, 'GET', '/api/subscriptions?watcher=sip:dave@example.com');
      expect(byWatcher.json.map((s: { id: string }) => s.id)).to.deep.equal([sub.id]);
      const watcherPath = await call(base, 'GET', '/api/watchers/dave/subscriptions');
      expect(watcherPath.json.map((s: { id: string }) => s.id)).to.deep.equal([sub.id]);
      const presentityPath = await call(base, 'GET', '/api/presentities/carol/subscriptions');
      expect(presentityPath.json.map((s: { id: string }) => s.id)).to.deep.equal([sub.id]);
      const one = await call(base, 'GET', `/api/subscriptions/${encodeURIComponent(sub.id)}`);
      expect(one.json.id).to.equal(sub.id);

      const final = dave.waitRequest((r) => r.method === 'NOTIFY' && r.callId === callId && /terminated/.test(r.getHeader('subscription-state') ?? ''));
      const del = await call(base, 'DELETE', `/api/subscriptions/${encodeURIComponent(sub.id)}`);
      expect(del.status).to.equal(204);
      expect((await final).getHeader('subscription-state')).to.match(/^terminated;\s*reason=deactivated/);

      const again = await call(base, 'DELETE', `/api/subscriptions/${encodeURIComponent(sub.id)}`);
      expect(again.status).to.equal(404);
      expect(again.json.error).to.match(/no live subscription/);
      expect((await call(base, 'GET', `/api/subscriptions/${encodeURIComponent(sub.id)}`)).status).to.equal(404);
    });

    it('DELETE /api/subscriptions/:id refuses a reason RFC 6665 does not let an operator give', async () => {
      const r = await call(base, 'DELETE', '/api/subscriptions/x?reason=timeout');
      expect(r.status).to.equal(400);
    });

    it('registrations, all and of one AoR', async () => {
      const erin = await ua('erin');
      await register(erin);
      const all = await call(base, 'GET', '/api/registrations');
      expect(all.status).to.equal(200);
      const mine = all.json.filter((r: { aor: string }) => r.aor === 'sip:erin@example.com');
      expect(mine).to.have.length(1);
      expect(mine[0].contact).to.contain(`${erin.localPort}`);
      expect(mine[0].expires).to.be.within(590, 600);
      // Times as ISO 8601, like the other endpoints.
      expect(mine[0].updatedAt).to.match(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      expect(Date.parse(mine[0].expiresAt) - Date.now()).to.be.within(580_000, 601_000);
      const one = await call(base, 'GET', '/api/registrations/erin');
      expect(one.json).to.have.length(1);
      const q = await call(base, 'GET', '/api/registrations?aor=sip:erin@example.com');
      expect(q.json).to.have.length(1);
      expect((await call(base, 'GET', '/api/registrations?limit=0')).status).to.equal(400);
    });

    it('stored messages: count per user (RFC 3428 store-and-forward)', async () => {
      const frank = await ua('frank');
      for (const text of ['one', 'two']) {
        const req = frank.request('MESSAGE', 'sip:nobody-here@example.com', { headers: { 'Content-Type': 'text/plain' }, body: text });
        expect((await frank.transact(req)).status).to.equal(202);
      }
      const all = await call(base, 'GET', '/api/messages');
      expect(all.status).to.equal(200);
      expect(all.json.find((m: { user: string }) => m.user === 'sip:nobody-here@example.com')).to.deep.equal({ user: 'sip:nobody-here@example.com', count: 2, bytes: 6 });
      const one = await call(base, 'GET', '/api/messages/nobody-here');
      expect(one.json).to.deep.equal({ user: 'sip:nobody-here@example.com', count: 2, bytes: 6 });
    });
  });

  describe('accounts without a store', () => {
    it('answers 503 with a JSON message for users and rules', async () => {
      const r = await call(base, 'GET', '/api/users');
      expect(r.status).to.equal(503);
      expect(r.json.error).to.match(/store/);
    });
  });
});

describe('http: admin API turned off', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startTestServer();
  });
  after(async () => srv.stop());

  it('takes the token from ADMIN_TOKEN (over admin.token) and refuses one under 16 characters', () => {
    const dir = mkdtempSync(join(tmpdir(), 'admin-token-'));
    try {
      const file = join(dir, 'config.json');
      writeFileSync(file, JSON.stringify({ admin: { token: 'from-the-config-file-0123' } }));
      expect(loadConfig({ file, env: {} }).admin.token).to.equal('from-the-config-file-0123');
      expect(loadConfig({ file, env: { ADMIN_TOKEN: 'from-the-environment-0123' } }).admin.token).to.equal('from-the-environment-0123');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect(loadConfig({ env: {} }).admin.token).to.equal(null);
    expect(() => loadConfig({ env: { ADMIN_TOKEN: 'short' } })).to.throw(/admin\.token/);
  });

  it('answers 404 with a JSON message when no admin token is configured', async () => {
    const r = await call(httpBase(srv.server), 'GET', '/api/status');
    expect(r.status).to.equal(404);
    expect(r.json.error).to.match(/admin API is off/);
  });
});
