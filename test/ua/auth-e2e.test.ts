import { expect } from 'chai';
import { pino } from 'pino';
import { openStore, type Store } from '../../src/store/index.js';
import type { PresenceUpdate } from '../../src/ua/client-subscription.js';
import { SipRequestError } from '../../src/ua/errors.js';
import { Pager } from '../../src/ua/pager.js';
import { PresenceUserAgent } from '../../src/ua/presence-user-agent.js';
import { Registration } from '../../src/ua/registration.js';
import { UserAgent } from '../../src/ua/user-agent.js';
import { WatcherUserAgent } from '../../src/ua/watcher-user-agent.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

const PASSWORD = 'a long enough password';

describe('ua: client roles with authentication on (real server, digest RFC 8760)', function () {
  this.timeout(20_000);
  let store: Store;
  let srv: TestServer;
  const agents: UserAgent[] = [];
  let n = 0;

  before(async () => {
    store = await openStore({ logger: pino({ level: 'silent' }) });
    srv = await startTestServer({ auth: { required: true, defaultPolicy: 'allow', maxFailedUsersPerSource: 1000 } }, { store });
  });
  after(async () => {
    await srv?.stop();
    await store?.close();
  });
  afterEach(async () => {
    for (const a of agents.splice(0)) await a.close();
  });

  async function account(base: string): Promise<string> {
    const name = `${base}${++n}`;
    await srv.server.security.admin!.addUser({ username: name, password: PASSWORD });
    return name;
  }

  async function agent(user: string, password = PASSWORD): Promise<UserAgent> {
    const ua = new UserAgent({ aor: `sip:${user}@example.com`, server: { host: '127.0.0.1', port: srv.port }, password });
    agents.push(ua);
    await ua.start();
    return ua;
  }

  it('registers, messages, publishes and watches, answering the challenges', async () => {
    const bobName = await account('bob');
    const aliceName = await account('alice');
    const bob = await agent(bobName);
    await new Registration(bob).register();
    const got: string[] = [];
    new Pager(bob).on('message', (m) => got.push(m.text));
    const alice = await agent(aliceName);
    expect((await new Pager(alice).send(bobName, 'authenticated hello')).status).to.equal(200);
    expect(got).to.deep.equal(['authenticated hello']);

    const pua = new PresenceUserAgent(alice);
    await pua.publish({ basic: 'open', note: 'signed in' });
    const wua = new WatcherUserAgent(bob);
    const seen = new Promise<PresenceUpdate>((resolve) => wua.on('presence', (u) => u.summary?.note === 'signed in' && resolve(u)));
    await wua.watch(aliceName);
    expect((await seen).summary?.basic).to.equal('open');
    await wua.close();
    await pua.close();
  });

  it('reports a wrong password as 401 with a hint, after one try', async () => {
    const name = await account('carol');
    const ua = await agent(name, 'not the password');
    const err = await new Registration(ua).register().then(() => undefined, (e: unknown) => e);
    expect(err).to.be.instanceOf(SipRequestError);
    expect((err as SipRequestError).status).to.be.oneOf([401, 403]);
    expect((err as SipRequestError).message).to.match(/REGISTER to udp:127\.0\.0\.1:\d+ failed: 40[13]/);
  });
});
