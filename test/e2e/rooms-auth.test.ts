import { expect } from 'chai';
import { pino } from 'pino';
import { openStore, type Store } from '../../src/store/index.js';
import { Pager } from '../../src/ua/pager.js';
import { Registration } from '../../src/ua/registration.js';
import { UserAgent } from '../../src/ua/user-agent.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { until } from '../support/wait.js';

/**
 * Rooms and the URI-list service with authentication on: requests are digest-authenticated
 * like any MESSAGE, no one speaks in another's name, and recipients are accounts.
 */
describe('e2e: rooms and multiple-recipient MESSAGE with authentication on', function () {
  this.timeout(20_000);
  const PASSWORD = 'rooms auth password';
  let store: Store;
  let srv: TestServer;
  const agents: UserAgent[] = [];

  before(async () => {
    store = await openStore({ logger: pino({ level: 'silent' }) });
    srv = await startTestServer({ auth: { required: true, defaultPolicy: 'allow', maxFailedUsersPerSource: 1000 } }, { store });
    for (const u of ['ann', 'ben', 'cat']) await srv.server.security.admin!.addUser({ username: u, password: PASSWORD });
  });
  after(async () => {
    for (const a of agents.splice(0)) await a.close();
    await srv?.stop();
    await store?.close();
  });

  async function agent(user: string, password = PASSWORD): Promise<UserAgent> {
    const a = new UserAgent({ aor: `sip:${user}@example.com`, password, server: { host: '127.0.0.1', port: srv.port } });
    agents.push(a);
    await a.start();
    return a;
  }

  async function send(from: UserAgent, to: string, body: string, contentType = 'text/plain', headers: Record<string, string> = {}): Promise<number> {
    const req = from.createRequest('MESSAGE', to, { body, contentType });
    for (const [k, v] of Object.entries(headers)) req.setHeader(k, v);
    const { response } = await from.send(req);
    return response.status;
  }

  it('a room takes authenticated members only, never an account\'s name, and a stranger cannot write as a member', async () => {
    const ann = await agent('ann');
    const ben = await agent('ben');
    const got: string[] = [];
    new Pager(ben).on('message', (m) => got.push(m.text));
    await new Registration(ben).register();
    expect(await send(ann, 'sip:club@example.com', '#create')).to.equal(200);
    expect(await send(ben, 'sip:club@example.com', '#join')).to.equal(200);
    // An account's address stays the account's.
    expect(await send(ann, 'sip:cat@example.com', '#create')).to.equal(202);
    expect(srv.server.rooms.isRoom('sip:cat@example.com')).to.equal(false);
    expect(await send(ann, 'sip:club@example.com', 'authenticated hello')).to.equal(202);
    await until(() => got.includes('ann: authenticated hello'), 'ben got it');
    // A wrong password gets no further than the challenge.
    const eve = await agent('ann', 'not the password');
    expect(await send(eve, 'sip:club@example.com', 'forged').catch(() => 401)).to.be.oneOf([401, 403]);
    expect(got).to.not.include('ann: forged');
  });

  it('the URI-list service reaches accounts only: a user without an account is not sent', async () => {
    const ann = await agent('ann');
    const cat = await agent('cat');
    const got: string[] = [];
    new Pager(cat).on('message', (m) => got.push(m.text));
    await new Registration(cat).register();
    const before = { ...srv.server.uriList.outcomes };
    const list =
      '<?xml version="1.0" encoding="UTF-8"?><resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"><list>' +
      '<entry uri="sip:cat@example.com"/><entry uri="sip:nobody@example.com"/></list></resource-lists>';
    const body = `--xx\r\nContent-Type: text/plain\r\n\r\nto the list\r\n--xx\r\nContent-Type: application/resource-lists+xml\r\nContent-Disposition: recipient-list\r\n\r\n${list}\r\n--xx--\r\n`;
    expect(await send(ann, 'sip:uri-list@example.com', body, 'multipart/mixed;boundary=xx', { Require: 'recipient-list-message' })).to.equal(202);
    await until(() => got.some((t) => t.includes('to the list')), 'cat got it');
    await until(() => srv.server.uriList.outcomes['not-found'] === before['not-found'] + 1, 'nobody counted as not found');
  });
});
