import { expect } from 'chai';
import { pino } from 'pino';
import { openStore, type Store } from '../../src/store/index.js';
import { registerRequest } from '../registrar/ua-helpers.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { TestUa } from '../support/test-ua.js';

/** auth.md5OnlyUserAgents: clients that fail on any algorithm but MD5 still get a challenge they can answer. */
describe('auth: challenge order by User-Agent', function () {
  this.timeout(20_000);
  let store: Store;
  let srv: TestServer;
  let ua: TestUa;

  before(async () => {
    store = await openStore({ logger: pino({ level: 'silent' }) });
    srv = await startTestServer({ auth: { required: true } }, { store });
    ua = await TestUa.create({ port: srv.port, user: 'alice' });
  });
  after(async () => {
    await ua?.close();
    await srv?.stop();
    await store?.close();
  });

  const algorithms = (headers: string[]) => headers.map((h) => /algorithm=([A-Za-z0-9-]+)/.exec(h)?.[1]);

  it('offers SHA-256 first by default (RFC 8760 §2.4)', async () => {
    const res = await ua.transact(registerRequest(ua, { expires: 600, headers: { 'User-Agent': 'Linphone/5.2' } }));
    expect(res.status).to.equal(401);
    expect(algorithms(res.getHeaders('www-authenticate'))).to.deep.equal(['SHA-256', 'MD5']);
  });

  it('offers only MD5 to a User-Agent on the list (baresip 1.0 fails on a SHA-256 challenge)', async () => {
    const res = await ua.transact(registerRequest(ua, { expires: 600, headers: { 'User-Agent': 'baresip v1.0.0 (x86_64/linux)' } }));
    expect(res.status).to.equal(401);
    expect(algorithms(res.getHeaders('www-authenticate'))).to.deep.equal(['MD5']);
  });
});
