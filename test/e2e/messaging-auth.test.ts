import { expect } from 'chai';
import { pino } from 'pino';
import { openStore, type Store } from '../../src/store/index.js';
import { Pager } from '../../src/ua/pager.js';
import { Registration } from '../../src/ua/registration.js';
import { UserAgent } from '../../src/ua/user-agent.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { until } from '../support/wait.js';

/**
 * With authentication on, which users exist is the accounts table: a MESSAGE to a user of
 * our domain without an account is 404 (RFC 3261 §21.4.5), never stored; one to an
 * account that is offline is stored (202) and delivered at its next registration.
 */
describe('e2e: messaging with authentication on (accounts decide who exists)', function () {
  this.timeout(20_000);
  const PASSWORD = 'messaging auth password';
  let store: Store;
  let srv: TestServer;
  const agents: UserAgent[] = [];

  before(async () => {
    store = await openStore({ logger: pino({ level: 'silent' }) });
    srv = await startTestServer({ auth: { required: true, defaultPolicy: 'allow', maxFailedUsersPerSource: 1000 } }, { store });
    for (const u of ['ann', 'ben']) await srv.server.security.admin!.addUser({ username: u, password: PASSWORD });
  });
  after(async () => {
    for (const a of agents.splice(0)) await a.close();
    await srv?.stop();
    await store?.close();
  });

  async function agent(user: string, protocol: 'udp' | 'tcp' = 'udp'): Promise<UserAgent> {
    const a = new UserAgent({ aor: `sip:${user}@example.com`, password: PASSWORD, server: { host: '127.0.0.1', port: srv.port, transport: protocol } });
    agents.push(a);
    await a.start();
    return a;
  }

  async function sendMessage(from: UserAgent, to: string, body: string): Promise<number> {
    const { response } = await from.send(from.createRequest('MESSAGE', to, { body, contentType: 'text/plain' }));
    return response.status;
  }

  it('answers 404 to a MESSAGE for a user of our domain with no account, and stores nothing', async () => {
    const ann = await agent('ann');
    expect(await sendMessage(ann, 'sip:nobody@example.com', 'hello?')).to.equal(404);
    expect((await srv.server.messaging.storedMessages('sip:nobody@example.com')).count).to.equal(0);
    // Another domain is still refused as a relay.
    expect(await sendMessage(ann, 'sip:ben@elsewhere.example.org', 'hello?')).to.equal(403);
  });

  it('stores a MESSAGE for an offline account (202), durably, and delivers it when that user registers', async () => {
    const ann = await agent('ann');
    expect(await sendMessage(ann, 'sip:ben@example.com', 'while you were away')).to.equal(202);
    expect((await store.storedMessages.countAndBytesFor('sip:ben@example.com', Date.now())).count).to.equal(1);
    const ben = await agent('ben', 'tcp');
    const got: string[] = [];
    new Pager(ben).on('message', (m) => got.push(m.text));
    await new Registration(ben).register();
    await until(() => got.length === 1, 'the stored message');
    expect(got).to.deep.equal(['while you were away']);
    await until(async () => (await srv.server.messaging.storedMessages('sip:ben@example.com')).count === 0, 'the stored message to be deleted');
  });
});
