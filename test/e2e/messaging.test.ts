import { expect } from 'chai';
import type { SipRequest } from '../../src/sip/message.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { TestUa, type UaProtocol } from '../support/test-ua.js';
import { createResponse } from '../../src/sip/response.js';
import { registerRequest } from '../registrar/ua-helpers.js';
import { until } from '../support/wait.js';
import type { LocationService } from '../../src/registrar/location-service.js';

const IS_COMPOSING = '<?xml version="1.0" encoding="UTF-8"?>\n<isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing"><state>active</state><contenttype>text/plain</contenttype></isComposing>';

describe('e2e: pager-mode messaging over real sockets', () => {
  let srv: TestServer;
  let uas: TestUa[] = [];
  let n = 0;

  before(async () => {
    srv = await startTestServer({ messaging: { offlineMaxMessages: 3, offlineMaxBytes: 4096, maxUdpMessageSize: 1300 } });
  });
  after(async () => {
    await srv.stop();
  });
  afterEach(async () => {
    for (const ua of uas) await ua.close();
    uas = [];
  });

  /** A fresh user name per test, so tests do not see each other's bindings or stored messages. */
  function user(base: string): string {
    return `${base}${++n}`;
  }

  async function ua(name: string, protocol: UaProtocol = 'udp'): Promise<TestUa> {
    const u = await TestUa.create({ protocol, port: srv.port, user: name, domain: 'example.com' });
    uas.push(u);
    return u;
  }

  async function registered(name: string, protocol: UaProtocol = 'udp'): Promise<TestUa> {
    const u = await ua(name, protocol);
    const res = await u.transact(registerRequest(u, { expires: 600 }));
    expect(res.status).to.equal(200);
    return u;
  }

  function messageTo(from: TestUa, to: string, body: string, contentType = 'text/plain;charset=utf-8', headers: Record<string, string> = {}): SipRequest {
    const req = from.request('MESSAGE', to, { body, headers: { 'Content-Type': contentType, ...headers } });
    req.removeHeader('contact');
    return req;
  }

  const isMessage = (r: SipRequest): boolean => r.method === 'MESSAGE';

  for (const [aliceProto, bobProto] of [['udp', 'udp'], ['udp', 'tcp'], ['tcp', 'udp'], ['tcp', 'tcp']] as Array<[UaProtocol, UaProtocol]>) {
    it(`alice (${aliceProto}) messages bob (${bobProto}): bob answers 200, alice gets 200`, async () => {
      const alice = await registered(user('alice'), aliceProto);
      const bob = await registered(user('bob'), bobProto);
      bob.autoAnswer('MESSAGE', 200);
      const req = messageTo(alice, bob.aor, 'Hello, bob!');
      const res = await alice.transact(req);
      expect(res.status).to.equal(200);
      const got = await bob.waitRequest(isMessage);
      expect(got.uriText).to.equal(bob.contactUri);
      expect(got.body.toString()).to.equal('Hello, bob!');
      expect(got.getHeader('from')).to.equal(req.getHeader('from'));
      expect(got.getHeader('content-type')).to.equal('text/plain;charset=utf-8');
      expect(got.maxForwards).to.equal(69);
      // Our Via on top of alice's (RFC 3261 §16.6 step 8).
      expect(got.vias).to.have.length(2);
      expect(got.vias[1]!.branch).to.equal(req.topVia.branch);
    });
  }

  it('forks to both of bob\'s devices, and alice gets the 200', async () => {
    const alice = await registered(user('alice'));
    const name = user('bob');
    const phone = await registered(name, 'udp');
    const desk = await registered(name, 'tcp');
    phone.autoAnswer('MESSAGE', 200);
    desk.autoAnswer('MESSAGE', 200);
    const res = await alice.transact(messageTo(alice, phone.aor, 'to both'));
    expect(res.status).to.equal(200);
    expect((await phone.waitRequest(isMessage)).body.toString()).to.equal('to both');
    expect((await desk.waitRequest(isMessage)).body.toString()).to.equal('to both');
  });

  it('relays the best failure when no device accepts', async () => {
    const alice = await registered(user('alice'));
    const bob = await registered(user('bob'));
    bob.autoAnswer('MESSAGE', 415);
    expect((await alice.transact(messageTo(alice, bob.aor, 'x', 'application/x-unknown'))).status).to.equal(415);
  });

  it('stores for an offline bob (202) and delivers when he registers, with the original sender', async () => {
    const alice = await registered(user('alice'));
    const name = user('bob');
    const aor = `sip:${name}@example.com`;
    const req = messageTo(alice, aor, 'are you there?');
    const res = await alice.transact(req);
    expect(res.status).to.equal(202);
    expect((await srv.server.messaging.storedMessages(aor)).count).to.equal(1);

    const bob = await ua(name, 'tcp');
    bob.autoAnswer('MESSAGE', 200);
    const reg = await bob.transact(registerRequest(bob, { expires: 600 }));
    expect(reg.status).to.equal(200);
    const got = await bob.waitRequest(isMessage);
    expect(got.body.toString()).to.equal('are you there?');
    expect(got.getHeader('from')).to.equal(req.getHeader('from'));
    expect(got.getHeader('to')).to.equal(req.getHeader('to'));
    expect(got.getHeader('content-type')).to.equal('text/plain;charset=utf-8');
    expect(Date.parse(got.getHeader('date')!)).to.not.be.NaN;
    // The REGISTER's 200 came first.
    expect(bob.raw.findIndex((d) => d.toString().startsWith('SIP/2.0 200'))).to.be.lessThan(bob.raw.findIndex((d) => d.toString().startsWith('MESSAGE')));
    await until(async () => (await srv.server.messaging.storedMessages(aor)).count === 0, 'the stored message to be deleted');
  });

  it('keeps a stored message the recipient did not accept, and delivers it at the next registration', async () => {
    const alice = await registered(user('alice'));
    const name = user('bob');
    const aor = `sip:${name}@example.com`;
    expect((await alice.transact(messageTo(alice, aor, 'first'))).status).to.equal(202);
    expect((await alice.transact(messageTo(alice, aor, 'second'))).status).to.equal(202);
    const bob = await ua(name);
    let refuse = true;
    bob.autoAnswer('MESSAGE', (m) => createResponse(m, refuse && m.body.toString() === 'first' ? 480 : 200));
    await bob.transact(registerRequest(bob, { expires: 600 }));
    expect((await bob.waitRequest(isMessage)).body.toString()).to.equal('first');
    expect((await bob.waitRequest(isMessage)).body.toString()).to.equal('second');
    await until(async () => (await srv.server.messaging.storedMessages(aor)).count === 1, 'one message kept');
    refuse = false;
    await bob.transact(registerRequest(bob, { expires: 600 }));
    expect((await bob.waitRequest(isMessage)).body.toString()).to.equal('first');
    await until(async () => (await srv.server.messaging.storedMessages(aor)).count === 0, 'all delivered');
  });

  it('refuses with 480 past the per-user limit, storing nothing more', async () => {
    const alice = await registered(user('alice'));
    const aor = `sip:${user('bob')}@example.com`;
    for (let i = 0; i < 3; i++) expect((await alice.transact(messageTo(alice, aor, `m${i}`))).status).to.equal(202);
    expect((await alice.transact(messageTo(alice, aor, 'one too many'))).status).to.equal(480);
    const other = `sip:${user('bob')}@example.com`;
    expect((await alice.transact(messageTo(alice, other, 'x'.repeat(4097)))).status).to.equal(480);
    expect(await srv.server.messaging.storedMessages(aor)).to.deep.equal({ count: 3, bytes: 6 });
    expect((await srv.server.messaging.storedMessages(other)).count).to.equal(0);
  });

  it('forwards isComposing to an online user and never stores it for an offline one', async () => {
    const alice = await registered(user('alice'));
    const offline = `sip:${user('bob')}@example.com`;
    expect((await alice.transact(messageTo(alice, offline, IS_COMPOSING, 'application/im-iscomposing+xml'))).status).to.equal(480);
    expect((await srv.server.messaging.storedMessages(offline)).count).to.equal(0);
    const bob = await registered(user('bob'));
    bob.autoAnswer('MESSAGE', 200);
    expect((await alice.transact(messageTo(alice, bob.aor, IS_COMPOSING, 'application/im-iscomposing+xml'))).status).to.equal(200);
    expect((await bob.waitRequest(isMessage)).getHeader('content-type')).to.equal('application/im-iscomposing+xml');
  });

  it('answers 404 for a domain address with no user and 403 for another domain', async () => {
    const alice = await registered(user('alice'));
    expect((await alice.transact(messageTo(alice, 'sip:example.com', 'hi'))).status).to.equal(404);
    expect((await alice.transact(messageTo(alice, 'sip:someone@elsewhere.org', 'hi'))).status).to.equal(403);
  });

  it('answers 482 at once for a contact that is the server itself, instead of looping until Max-Forwards runs out', async () => {
    const alice = await registered(user('alice'));
    const name = user('loopy');
    const bob = await ua(name);
    for (const contact of [`<sip:${name}@127.0.0.1:${srv.port}>`, `<sip:${name}@example.com:${srv.port};transport=tcp>`]) {
      expect((await bob.transact(registerRequest(bob, { contact, expires: 600 }))).status).to.equal(200);
      const res = await alice.transact(messageTo(alice, bob.aor, 'round and round'));
      expect(res.status).to.equal(482);
      expect(res.reason).to.equal('Loop Detected');
      expect((await bob.transact(registerRequest(bob, { contact, expires: 0 }))).status).to.equal(200);
    }
  });

  it('refuses with 513 a MESSAGE too large for bob\'s UDP contact, and delivers it over TCP', async () => {
    const alice = await registered(user('alice'), 'tcp');
    const name = user('bob');
    const udp = await registered(name, 'udp');
    udp.autoAnswer('MESSAGE', 200);
    const big = 'x'.repeat(1400);
    expect((await alice.transact(messageTo(alice, udp.aor, big))).status).to.equal(513);
    const tcp = await registered(name, 'tcp');
    tcp.autoAnswer('MESSAGE', 200);
    expect((await alice.transact(messageTo(alice, udp.aor, big))).status).to.equal(200);
    expect((await tcp.waitRequest(isMessage)).body.length).to.equal(1400);
  });

  it('stores for a TCP user whose connection closed, and delivers on the new connection', async () => {
    const alice = await registered(user('alice'));
    const name = user('bob');
    const first = await registered(name, 'tcp');
    await first.close();
    await until(() => (srv.server.location as LocationService).lookup(`sip:${name}@example.com`).length === 0, 'the binding to be unreachable');
    expect((await alice.transact(messageTo(alice, first.aor, 'after close'))).status).to.equal(202);
    const again = await ua(name, 'tcp');
    again.autoAnswer('MESSAGE', 200);
    await again.transact(registerRequest(again, { expires: 600 }));
    expect((await again.waitRequest(isMessage)).body.toString()).to.equal('after close');
  });
});
