import { expect } from 'chai';
import { openStore, type Store } from '../../src/store/index.js';
import { registerRequest } from '../registrar/ua-helpers.js';
import { DATABASE_URL, OutageProxy, adminQuery, randomSchema, silentLogger } from '../store/helpers.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { TestUa } from '../support/test-ua.js';
import type { PresenceUpdate } from '../../src/ua/client-subscription.js';
import { PresenceUserAgent } from '../../src/ua/presence-user-agent.js';
import { Registration } from '../../src/ua/registration.js';
import { UserAgent } from '../../src/ua/user-agent.js';
import { WatcherUserAgent } from '../../src/ua/watcher-user-agent.js';
import { until as waitUntil } from '../support/wait.js';

const until = (cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> => waitUntil(cond, what, timeoutMs, 25);

const PIDF = 'application/pidf+xml';
const doc = (entity: string, note: string) =>
  `<?xml version="1.0"?><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="${entity}"><tuple id="t"><status><basic>open</basic></status><note>${note}</note></tuple></presence>`;

/**
 * The persistence issue: the database going away at run time must not stop SIP service.
 * Soft state queues and drains when it is back; durable writes fail with a 5xx meanwhile.
 * The outage is real: the pool talks to PostgreSQL through a proxy the test takes down.
 */
describe('e2e: service goes on through a database outage (PostgreSQL)', function () {
  this.timeout(60_000);
  let proxy: OutageProxy;
  let store: Store;
  let srv: TestServer;
  let schema: string;
  const uas: TestUa[] = [];

  before(async function () {
    if (!DATABASE_URL) this.skip();
    proxy = new OutageProxy(new URL(DATABASE_URL).hostname || '127.0.0.1', Number(new URL(DATABASE_URL).port || 5432));
    await proxy.up();
    schema = randomSchema();
    await adminQuery(DATABASE_URL, `CREATE SCHEMA ${schema}`);
    store = await openStore({ url: proxy.urlFor(DATABASE_URL), schema, flushWindowMs: 50, logger: silentLogger() });
    srv = await startTestServer({}, { store });
  });
  after(async () => {
    if (!DATABASE_URL) return;
    for (const u of uas) await u.close();
    await srv?.stop();
    await store?.close().catch(() => undefined);
    await proxy?.down();
    await adminQuery(DATABASE_URL, `DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  });

  const rows = async (sql: string): Promise<number> => (await adminQuery(DATABASE_URL!, `SELECT count(*)::int AS n FROM ${schema}.${sql}`)).rows[0].n as number;

  it('answers PUBLISH, SUBSCRIBE and REGISTER while the database is down, 5xx for a message it cannot store, then drains the queue', async () => {
    const alice = await TestUa.create({ port: srv.port, user: 'alice' });
    const bob = await TestUa.create({ port: srv.port, user: 'bob' });
    uas.push(alice, bob);
    const pub = (note: string, etag?: string) => {
      const req = alice.request('PUBLISH', alice.aor, {
        to: `<${alice.aor}>`,
        headers: { Event: 'presence', Expires: 600, 'Content-Type': PIDF, ...(etag ? { 'SIP-If-Match': etag } : {}) },
        body: doc(alice.aor, note),
      });
      req.removeHeader('contact');
      return alice.transact(req);
    };
    expect((await pub('up')).status).to.equal(200);
    await until(async () => (await rows('publications')) === 1, 'the first publication to be written');

    await proxy.down();
    const first = await pub('during the outage');
    expect(first.status).to.equal(200);
    bob.autoAnswer('NOTIFY', 200);
    const notified = bob.waitRequest((r) => r.method === 'NOTIFY');
    const sub = await bob.transact(bob.request('SUBSCRIBE', alice.aor, { headers: { Event: 'presence', Expires: 600, Accept: PIDF } }));
    expect(sub.status).to.equal(200);
    expect((await notified).body.toString()).to.contain('during the outage');
    expect((await bob.transact(registerRequest(bob, { expires: 600 }))).status).to.equal(200);
    // A durable write cannot be committed: the sender is told, nothing is promised.
    const msg = await alice.transact(alice.request('MESSAGE', 'sip:nobody-online@example.com', { headers: { 'Content-Type': 'text/plain' }, body: 'x' }), 15_000);
    expect(msg.status).to.be.within(500, 599);
    expect(store.softState.stats().pending).to.be.greaterThan(0);

    await proxy.up();
    await until(() => store.softState.stats().pending === 0, 'the write-behind queue to drain', 30_000);
    await store.softState.flush(); // and the flush in flight, if any, to commit
    // The same device published afresh: its new publication replaced the old one.
    const stored = await adminQuery(DATABASE_URL!, `SELECT convert_from(body, 'UTF8') AS body FROM ${schema}.publications`);
    expect(stored.rows.map((r) => (r.body as string).includes('during the outage'))).to.deep.equal([true]);
    expect(await rows('subscriptions')).to.equal(1);
    expect(await rows('registrations')).to.equal(1);
    // And durable writes work again.
    const again = await alice.transact(alice.request('MESSAGE', 'sip:nobody-online@example.com', { headers: { 'Content-Type': 'text/plain' }, body: 'y' }));
    expect(again.status).to.equal(202);
  });

  it('with authentication on: a known user authenticates, registers and is watched while the database is down', async () => {
    const authed = await startTestServer({ auth: { required: true, defaultPolicy: 'allow' } }, { store });
    const agents: UserAgent[] = [];
    try {
      await authed.server.security.admin!.addUser({ username: 'dora', password: 'dora password 1' });
      await authed.server.security.admin!.addUser({ username: 'emil', password: 'emil password 1' });
      const agent = async (user: string) => {
        const a = new UserAgent({ aor: `sip:${user}@example.com`, server: { host: '127.0.0.1', port: authed.port }, password: `${user} password 1` });
        agents.push(a);
        await a.start();
        return a;
      };
      const dora = await agent('dora');
      await new Registration(dora).register();
      const emil = await agent('emil');

      await proxy.down();
      try {
        // Accounts and rules come from memory: no request needs the database.
        await new Registration(dora).register();
        const pua = new PresenceUserAgent(dora);
        await pua.publish({ basic: 'open', note: 'offline database' });
        const wua = new WatcherUserAgent(emil);
        const seen = new Promise<PresenceUpdate>((resolve) => wua.on('presence', (u) => u.summary?.note === 'offline database' && resolve(u)));
        await wua.watch('dora');
        expect((await seen).summary?.basic).to.equal('open');
        await wua.close();
        await pua.close();
      } finally {
        await proxy.up();
      }
    } finally {
      for (const a of agents) await a.close();
      await authed.stop();
    }
  });
});
