import { expect } from 'chai';
import { pino } from 'pino';
import { openStore, type Store } from '../../src/store/index.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { TestUa } from '../support/test-ua.js';
import { call, httpBase, TOKEN, basic } from './http-support.js';

const PIDF = 'application/pidf+xml';

describe('http: users and rules (admin API and /api/me)', function () {
  this.timeout(20000);
  let store: Store;
  let srv: TestServer;
  let base: string;

  before(async () => {
    store = await openStore({ logger: pino({ level: 'silent' }) });
    srv = await startTestServer({ admin: { token: TOKEN }, presence: { defaultPolicy: 'confirm' } }, { store });
    base = httpBase(srv.server);
  });
  after(async () => {
    await srv.stop();
    await store.close();
  });

  describe('users', () => {
    it('POST /api/users creates an account (201, Location), GET lists it without secrets', async () => {
      const r = await call(base, 'POST', '/api/users', { body: { username: 'alice', password: 'wonderland', displayName: 'Alice' } });
      expect(r.status).to.equal(201);
      expect(r.headers.get('location')).to.equal('/api/users/alice');
      expect(r.json).to.include({ username: 'alice', domain: 'example.com', aor: 'sip:alice@example.com', displayName: 'Alice', hasPassword: true });
      const list = await call(base, 'GET', '/api/users');
      expect(list.status).to.equal(200);
      const alice = list.json.find((u: { username: string }) => u.username === 'alice');
      expect(alice).to.include({ aor: 'sip:alice@example.com', hasPassword: true });
      expect(JSON.stringify(list.json)).not.to.match(/ha1|wonderland/i);
    });

    it('GET /api/users pages with ?limit= and ?after=, refusing a limit out of range', async () => {
      for (const username of ['pg-a', 'pg-b', 'pg-c']) expect((await call(base, 'POST', '/api/users', { body: { username, password: 'x' } })).status).to.equal(201);
      const first = await call(base, 'GET', '/api/users?limit=2&after=pg-');
      expect(first.json.map((u: { username: string }) => u.username)).to.deep.equal(['pg-a', 'pg-b']);
      const next = await call(base, 'GET', '/api/users?limit=2&after=pg-b');
      expect(next.json.map((u: { username: string }) => u.username)[0]).to.equal('pg-c');
      for (const bad of ['0', '10001', 'x', '-1']) {
        const r = await call(base, 'GET', `/api/users?limit=${bad}`);
        expect(r.status, bad).to.equal(400);
        expect(r.json.error).to.match(/limit/);
      }
      for (const username of ['pg-a', 'pg-b', 'pg-c']) await call(base, 'DELETE', `/api/users/${username}`);
    });

    it('answers 409 for a user that exists', async () => {
      const r = await call(base, 'POST', '/api/users', { body: { username: 'alice', password: 'again' } });
      expect(r.status).to.equal(409);
      expect(r.json.error).to.equal('user alice exists');
    });

    it('answers 400 for a user name the operations refuse', async () => {
      const r = await call(base, 'POST', '/api/users', { body: { username: 'no spaces', password: 'x' } });
      expect(r.status).to.equal(400);
      expect(r.json.error).to.match(/bad user name/);
    });

    it('validates the body against schemas/http/user-create.schema.json', async () => {
      const missing = await call(base, 'POST', '/api/users', { body: { username: 'bob' } });
      expect(missing.status).to.equal(400);
      expect(missing.json.error).to.equal('invalid request body: missing field "password"');
      const extra = await call(base, 'POST', '/api/users', { body: { username: 'bob', password: 'p', admin: true } });
      expect(extra.status).to.equal(400);
      expect(extra.json.error).to.equal('invalid request body: unknown field "admin"');
      const wrongType = await call(base, 'POST', '/api/users', { body: { username: 42, password: 'p' } });
      expect(wrongType.status).to.equal(400);
      expect(wrongType.json.error).to.match(/"username" must be string/);
    });

    it('refuses a body that is not JSON (415), not valid JSON (400) or too large (413)', async () => {
      const type = await call(base, 'POST', '/api/users', { rawBody: 'username=bob', contentType: 'application/x-www-form-urlencoded' });
      expect(type.status).to.equal(415);
      const bad = await call(base, 'POST', '/api/users', { rawBody: '{"username": "bob",' });
      expect(bad.status).to.equal(400);
      expect(bad.json.error).to.match(/not valid JSON/);
      const big = await call(base, 'POST', '/api/users', { rawBody: JSON.stringify({ username: 'bob', password: 'x'.repeat(70_000) }) });
      expect(big.status).to.equal(413);
    });

    it('PUT /api/users/:user/password changes the password (204); 404 for nobody', async () => {
      const r = await call(base, 'PUT', '/api/users/alice/password', { body: { password: 'looking-glass' } });
      expect(r.status).to.equal(204);
      const account = await store.accounts.get('example.com', 'alice');
      expect(account?.ha1Md5).to.equal((await import('node:crypto')).createHash('md5').update('alice:example.com:looking-glass').digest('hex'));
      const none = await call(base, 'PUT', '/api/users/nobody/password', { body: { password: 'x' } });
      expect(none.status).to.equal(404);
      expect(none.json.error).to.equal('no user nobody');
      const invalid = await call(base, 'PUT', '/api/users/alice/password', { body: { password: '' } });
      expect(invalid.status).to.equal(400);
    });

    it('DELETE /api/users/:user removes the account (204), then 404', async () => {
      expect((await call(base, 'POST', '/api/users', { body: { username: 'temp', password: 'p' } })).status).to.equal(201);
      expect((await call(base, 'DELETE', '/api/users/temp')).status).to.equal(204);
      expect(await store.accounts.get('example.com', 'temp')).to.equal(undefined);
      const again = await call(base, 'DELETE', '/api/users/temp');
      expect(again.status).to.equal(404);
    });
  });

  describe('rules', () => {
    it('PUT sets allow, block, polite-block and confirm; GET lists; DELETE removes', async () => {
      for (const [watcher, action] of [['bob', 'allow'], ['sip:carol@example.com', 'block'], ['dave@example.com', 'polite-block'], ['*@other.org', 'confirm']] as const) {
        const r = await call(base, 'PUT', '/api/users/alice/rules', { body: { watcher, action } });
        expect(r.status, `${watcher} ${action}`).to.equal(200);
        expect(r.json.rule.action).to.equal(action);
        expect(r.json.affected).to.equal(0);
      }
      const list = await call(base, 'GET', '/api/users/alice/rules');
      expect(list.status).to.equal(200);
      const byWatcher = Object.fromEntries(list.json.map((r: { watcher: string; action: string }) => [r.watcher, r.action]));
      expect(byWatcher).to.deep.equal({ 'sip:bob@example.com': 'allow', 'sip:carol@example.com': 'block', 'sip:dave@example.com': 'polite-block', '*@other.org': 'confirm' });

      const del = await call(base, 'DELETE', `/api/users/alice/rules/${encodeURIComponent('sip:carol@example.com')}`);
      expect(del.status).to.equal(200);
      expect(del.json).to.deep.equal({ deleted: true, affected: 0 });
      expect((await call(base, 'DELETE', '/api/users/alice/rules/carol')).status).to.equal(404);
    });

    it('validates the rule body against schemas/http/rule-set.schema.json', async () => {
      const r = await call(base, 'PUT', '/api/users/alice/rules', { body: { watcher: 'bob', action: 'maybe' } });
      expect(r.status).to.equal(400);
      expect(r.json.error).to.match(/"action" must be equal to one of the allowed values/);
    });
  });

  describe('/api/me: the user approves watchers with SIP credentials (HTTP Basic)', () => {
    before(async () => {
      expect((await call(base, 'POST', '/api/users', { body: { username: 'erin', password: 'erin-pass' } })).status).to.equal(201);
    });

    it('answers 401 with a Basic challenge without or with wrong credentials', async () => {
      const none = await call(base, 'GET', '/api/me/rules', { token: null });
      expect(none.status).to.equal(401);
      expect(none.headers.get('www-authenticate')).to.equal('Basic realm="example.com", charset="UTF-8"');
      const wrong = await call(base, 'GET', '/api/me/rules', { token: null, headers: basic('erin', 'guess') });
      expect(wrong.status).to.equal(401);
      const nobody = await call(base, 'GET', '/api/me/rules', { token: null, headers: basic('nobody', 'erin-pass') });
      expect(nobody.status).to.equal(401);
    });

    it('GET /api/me names the user; the admin token does not open it', async () => {
      const me = await call(base, 'GET', '/api/me', { token: null, headers: basic('erin', 'erin-pass') });
      expect(me.status).to.equal(200);
      expect(me.json).to.deep.equal({ username: 'erin', rules: [] });
      expect((await call(base, 'GET', '/api/me')).status).to.equal(401);
    });

    it('approving a pending watcher makes its subscription active with a NOTIFY carrying the state', async () => {
      const erin = await TestUa.create({ port: srv.port, user: 'erin' });
      const frank = await TestUa.create({ port: srv.port, user: 'frank' });
      try {
        const body = `<?xml version="1.0"?><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:erin@example.com"><tuple id="e"><status><basic>open</basic></status><note>coffee</note></tuple></presence>`;
        expect((await erin.transact(erin.request('PUBLISH', 'sip:erin@example.com', { headers: { Event: 'presence', Expires: 600, 'Content-Type': PIDF }, body }))).status).to.equal(200);
        frank.autoAnswer('NOTIFY', 200);
        const callId = 'me-approve@test';
        const pending = frank.waitRequest((r) => r.method === 'NOTIFY' && r.callId === callId);
        const res = await frank.transact(frank.request('SUBSCRIBE', 'sip:erin@example.com', { callId, headers: { Event: 'presence', Expires: 600, Accept: PIDF } }));
        expect(res.status).to.be.oneOf([200, 202]);
        expect((await pending).getHeader('subscription-state')).to.match(/^pending/);

        const active = frank.waitRequest((r) => r.method === 'NOTIFY' && r.callId === callId && /^active/.test(r.getHeader('subscription-state') ?? ''));
        const put = await call(base, 'PUT', '/api/me/rules', { token: null, headers: basic('erin', 'erin-pass'), body: { watcher: 'frank', action: 'allow' } });
        expect(put.status).to.equal(200);
        expect(put.json).to.deep.include({ affected: 1 });
        expect(put.json.rule).to.include({ presentity: 'sip:erin@example.com', watcher: 'sip:frank@example.com', action: 'allow' });
        expect((await active).body.toString()).to.contain('coffee');

        const list = await call(base, 'GET', '/api/me/rules', { token: null, headers: basic('erin', 'erin-pass') });
        expect(list.json.map((r: { watcher: string }) => r.watcher)).to.deep.equal(['sip:frank@example.com']);
        const del = await call(base, 'DELETE', '/api/me/rules/frank', { token: null, headers: basic('erin', 'erin-pass') });
        expect(del.status).to.equal(200);
      } finally {
        await erin.close();
        await frank.close();
      }
    });

    it('blocks a client address after 10 failed logins with 429 and Retry-After', async () => {
      let last;
      for (let i = 0; i < 11; i++) last = await call(base, 'GET', '/api/me', { token: null, headers: basic('erin', `wrong-${i}`) });
      expect(last!.status).to.equal(429);
      expect(Number(last!.headers.get('retry-after'))).to.be.within(1, 60);
      // Even the right password waits out the block.
      expect((await call(base, 'GET', '/api/me', { token: null, headers: basic('erin', 'erin-pass') })).status).to.equal(429);
    });
  });
});
