import { expect } from 'chai';
import { pino } from 'pino';
import type { SipRequest } from '../../src/sip/message.js';
import { openStore, type Store } from '../../src/store/index.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { TestUa } from '../support/test-ua.js';

const PIDF = 'application/pidf+xml';

/**
 * The persistence issue: "objects that expired while the server was down are expired at
 * load, with the NOTIFYs that implies". Two servers in turn on one store; the store's
 * clock is moved by rewriting expiry times while no server runs.
 */
describe('e2e: what expired while the server was down', function () {
  this.timeout(30_000);
  let store: Store;
  let srv: TestServer | undefined;
  const uas: TestUa[] = [];

  before(async () => {
    store = await openStore({ logger: pino({ level: 'silent' }) });
  });
  after(async () => {
    for (const u of uas) await u.close();
    await srv?.stop();
    await store.close();
  });

  it('sends the final NOTIFY (terminated;reason=timeout) of a subscription that expired, and a watcher the state without an expired publication', async () => {
    srv = await startTestServer({}, { store });
    const port = srv.port;
    const alice = await TestUa.create({ port, user: 'alice' });
    const bob = await TestUa.create({ port, user: 'bob' });
    const carol = await TestUa.create({ port, user: 'carol' });
    uas.push(alice, bob, carol);
    const doc = `<?xml version="1.0"?><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="${alice.aor}"><tuple id="t"><status><basic>open</basic></status></tuple></presence>`;
    const pub = alice.request('PUBLISH', alice.aor, { to: `<${alice.aor}>`, headers: { Event: 'presence', Expires: 600, 'Content-Type': PIDF }, body: doc });
    pub.removeHeader('contact');
    expect((await alice.transact(pub)).status).to.equal(200);
    const subscribe = async (ua: TestUa, callId: string): Promise<SipRequest> => {
      ua.autoAnswer('NOTIFY', 200);
      const first = ua.waitRequest((r) => r.method === 'NOTIFY' && r.callId === callId);
      const res = await ua.transact(ua.request('SUBSCRIBE', alice.aor, { callId, cseq: 1, headers: { Event: 'presence', Expires: 600, Accept: PIDF } }));
      expect(res.status).to.equal(200);
      return first;
    };
    const bobFirst = await subscribe(bob, 'bob-expires@test');
    expect(bobFirst.body.toString()).to.contain('<basic>open</basic>');
    await subscribe(carol, 'carol-stays@test');
    await srv.stop();

    // While no server runs: bob's subscription and alice's publication run out.
    const past = new Date(Date.now() - 1000);
    await store.db.query('UPDATE subscriptions SET expires_at = $1 WHERE call_id = $2', [past, 'bob-expires@test']);
    await store.db.query('UPDATE publications SET expires_at = $1', [past]);

    const bobFinal = bob.waitRequest((r) => r.method === 'NOTIFY' && r.callId === 'bob-expires@test' && r.cseq.seq > bobFirst.cseq.seq);
    const carolNow = carol.waitRequest((r) => r.method === 'NOTIFY' && r.callId === 'carol-stays@test' && r.cseq.seq > 1);
    srv = await startTestServer({ sip: { port } }, { store });
    const final = await bobFinal;
    expect(final.getHeader('subscription-state')).to.match(/^terminated;\s*reason=timeout/);
    const now = await carolNow;
    expect(now.getHeader('subscription-state')).to.match(/^active/);
    expect(now.body.toString()).to.not.contain('<basic>open</basic>');
    await store.softState.flush();
    expect((await store.db.query('SELECT CAST(count(*) AS integer) AS n FROM subscriptions WHERE call_id = $1', ['bob-expires@test'])).rows[0]).to.deep.equal({ n: 0 });
  });
});
