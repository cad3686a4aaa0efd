import { expect } from 'chai';
import { pino } from 'pino';
import { openStore, type Store } from '../../src/store/index.js';
import { authedTransact } from '../auth/digest-client.js';
import { call, httpBase } from '../http/http-support.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { TestUa } from '../support/test-ua.js';

/** The value of an unlabelled or one-label sample in the text exposition format. */
function sample(text: string, line: string): number | undefined {
  const found = text.split('\n').find((l) => l.startsWith(`${line} `));
  return found === undefined ? undefined : Number(found.slice(line.length + 1));
}

// Issue 21: users behind one NAT share an address; one phone with a stale password must not
// lock its colleagues out, while password spraying from that address still blocks it.
describe('security: lock-outs behind one NAT address (end to end)', function () {
  this.timeout(60000);
  const USERS = 50;
  let store: Store;
  let srv: TestServer;
  before(async () => {
    store = await openStore({ logger: pino({ level: 'silent' }) });
    srv = await startTestServer(
      { auth: { required: true, maxFailuresPerSourceUser: 10, maxFailedUsersPerSource: 20, blockSeconds: 300 }, limits: { rate: { requestsPerSecond: 10_000, burst: 10_000 } } },
      { store },
    );
    for (let i = 0; i < USERS; i++) await srv.server.security.admin!.addUser({ username: `u${i}`, password: `pw${i}` });
  });
  after(async () => {
    await srv?.stop();
    await store?.close();
  });

  async function register(user: string, password: string): Promise<number> {
    // Every UA sends from 127.0.0.1 (a port of its own): one address, as behind a NAT.
    const ua = await TestUa.create({ port: srv.port, user });
    try {
      const reg = (a?: string) => ua.request('REGISTER', 'sip:example.com', { to: `<${ua.aor}>`, headers: { Expires: 60, ...(a ? { Authorization: a } : {}) } });
      const first = await ua.transact(reg());
      if (first.status !== 401) return first.status;
      return (await authedTransact(ua, reg, { username: user, password })).res.status;
    } finally {
      await ua.close();
    }
  }

  it('one of 50 users failing is blocked alone; the other 49 register; spraying then blocks the address', async () => {
    const stale = 'u0';
    const tries: number[] = [];
    for (let i = 0; i < 12; i++) tries.push(await register(stale, 'old-password'));
    // Ten failures answered with a new challenge but the tenth, which starts the block; then 403.
    expect(tries).to.deep.equal([...Array(9).fill(401), 403, 403, 403]);
    expect(await register(stale, 'pw0'), 'the blocked pair, right password').to.equal(403);
    for (let i = 1; i < USERS; i++) expect(await register(`u${i}`, `pw${i}`), `u${i}`).to.equal(200);

    const base = httpBase(srv.server);
    let metrics = (await call(base, 'GET', '/metrics', { token: null })).text;
    expect(sample(metrics, 'simple_presence_auth_failures_total')).to.equal(10);
    expect(sample(metrics, 'simple_presence_auth_blocks_total{scope="source_user"}')).to.equal(1);
    expect(sample(metrics, 'simple_presence_auth_blocks_total{scope="source"}')).to.equal(0);
    expect(sample(metrics, 'simple_presence_auth_blocked{scope="source_user"}')).to.equal(1);
    expect(sample(metrics, 'simple_presence_auth_refused_total{scope="source_user"}')).to.equal(3);

    // Password spraying: one guess for each of 19 more names (u0 failed already: 20 distinct).
    const spray: number[] = [];
    for (let i = 1; i < 20; i++) spray.push(await register(`u${i}`, 'Winter2026!'));
    expect(spray).to.deep.equal([...Array(18).fill(401), 403]);
    // The whole address is blocked now, right passwords too, before any challenge.
    expect(await register('u30', 'pw30')).to.equal(403);
    metrics = (await call(base, 'GET', '/metrics', { token: null })).text;
    expect(sample(metrics, 'simple_presence_auth_blocks_total{scope="source"}')).to.equal(1);
    expect(sample(metrics, 'simple_presence_auth_blocked{scope="source"}')).to.equal(1);
  });
});
