import { expect } from 'chai';
import type { SipResponse } from '../../src/sip/message.js';
import { ManualTimers } from '../../src/util/timers.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { TestUa, type UaProtocol } from '../support/test-ua.js';
import { registerRequest } from '../registrar/ua-helpers.js';
import type { LocationService } from '../../src/registrar/location-service.js';

function expiresOf(res: SipResponse): number[] {
  return res.contacts.map((c) => Number(c.params.get('expires')));
}

describe('e2e: registrar over real sockets (driven clock)', () => {
  let srv: TestServer;
  let timers: ManualTimers;
  const uas: TestUa[] = [];

  before(async () => {
    timers = new ManualTimers();
    srv = await startTestServer({ registrar: { minExpires: 60, maxExpires: 3600, defaultExpires: 3600, maxContactsPerAor: 4 } }, { timers });
  });
  after(async () => {
    for (const ua of uas) await ua.close();
    await srv.stop();
  });

  async function ua(user: string, protocol: UaProtocol = 'udp'): Promise<TestUa> {
    const u = await TestUa.create({ protocol, port: srv.port, user, domain: 'example.com' });
    uas.push(u);
    return u;
  }

  it('registers over UDP and TCP, lists the bindings with expires and a Date', async () => {
    const bob = await ua('bob');
    const res = await bob.transact(registerRequest(bob, { expires: 600 }));
    expect(res.status).to.equal(200);
    expect(res.contacts.map((c) => c.uri.raw)).to.deep.equal([bob.contactUri]);
    expect(expiresOf(res)).to.deep.equal([600]);
    expect(Date.parse(res.getHeader('date')!)).to.be.a('number').and.not.NaN;

    const bobTcp = await ua('bob', 'tcp');
    const res2 = await bobTcp.transact(registerRequest(bobTcp, { expires: 300 }));
    expect(res2.status).to.equal(200);
    expect(res2.contacts).to.have.length(2);
    const views = srv.server.location.registrations({ aor: 'sip:bob@example.com' });
    expect(views.map((v) => v.transport).sort()).to.deep.equal(['tcp', 'udp']);
  });

  it('answers 423 with Min-Expires, and removes with expires 0 and Contact: *', async () => {
    const carol = await ua('carol');
    const brief = await carol.transact(registerRequest(carol, { expires: 10 }));
    expect(brief.status).to.equal(423);
    expect(brief.getHeader('min-expires')).to.equal('60');
    expect((await carol.transact(registerRequest(carol, { expires: 120 }))).status).to.equal(200);
    expect((await carol.transact(registerRequest(carol, { contact: `<${carol.contactUri}>;expires=0` }))).contacts).to.have.length(0);
    await carol.transact(registerRequest(carol, { expires: 120 }));
    const star = await carol.transact(registerRequest(carol, { contact: '*', expires: 0 }));
    expect(star.status).to.equal(200);
    expect((srv.server.location as LocationService).bindings('sip:carol@example.com')).to.have.length(0);
  });

  it('counts expiry down on the driven clock and removes the binding when it runs out', async () => {
    const dave = await ua('dave');
    await dave.transact(registerRequest(dave, { expires: 60 }));
    timers.advance(25_000);
    const q = registerRequest(dave);
    q.removeHeader('contact');
    const query = await dave.transact(q);
    expect(expiresOf(query)).to.deep.equal([35]);
    timers.advance(35_000);
    expect((srv.server.location as LocationService).lookup('sip:dave@example.com')).to.have.length(0);
  });

  it('answers a query (no Contact) with the current bindings', async () => {
    const erin = await ua('erin');
    await erin.transact(registerRequest(erin, { expires: 600 }));
    const req = registerRequest(erin);
    req.removeHeader('contact');
    const res = await erin.transact(req);
    expect(res.status).to.equal(200);
    expect(expiresOf(res)).to.deep.equal([600]);
  });

  it('refuses a REGISTER for a domain that is not ours (404)', async () => {
    const frank = await ua('frank');
    const req = frank.request('REGISTER', 'sip:elsewhere.org', { to: '<sip:frank@elsewhere.org>' });
    expect((await frank.transact(req)).status).to.equal(404);
  });

  it('refuses an out-of-order CSeq on the same Call-ID and keeps the binding', async () => {
    const gina = await ua('gina');
    const first = registerRequest(gina, { expires: 600 });
    const late = registerRequest(gina, { expires: 0 });
    late.setHeader('CSeq', `${first.cseq.seq - 1} REGISTER`);
    expect((await gina.transact(first)).status).to.equal(200);
    expect((await gina.transact(late)).status).to.equal(400);
    expect((srv.server.location as LocationService).lookup('sip:gina@example.com')).to.have.length(1);
  });

  it('lets each Contact expires win over Expires, shortens past the maximum, keeps q, and stores and echoes Path', async () => {
    const ivy = await ua('ivy');
    const other = `sip:ivy@127.0.0.1:${ivy.localPort + 1}`;
    const req = registerRequest(ivy, {
      contact: `<${ivy.contactUri}>;q=0.5;expires=120, <${other}>`,
      expires: 7200,
      headers: { Supported: 'path', Path: '<sip:edge.example.com;lr>' },
    });
    const res = await ivy.transact(req);
    expect(res.status).to.equal(200);
    const byUri = new Map(res.contacts.map((c) => [c.uri.raw, c.params] as const));
    expect(byUri.get(ivy.contactUri)?.get('expires')).to.equal('120');
    expect(byUri.get(ivy.contactUri)?.get('q')).to.equal('0.5');
    expect(byUri.get(other)?.get('expires')).to.equal('3600');
    expect(res.getHeader('path')).to.equal('<sip:edge.example.com;lr>');
    expect((srv.server.location as LocationService).bindings('sip:ivy@example.com').map((b) => b.path)).to.deep.equal([['<sip:edge.example.com;lr>'], ['<sip:edge.example.com;lr>']]);
    // `*` only alone and with Expires: 0 (§10.3 step 6); nothing changes.
    expect((await ivy.transact(registerRequest(ivy, { contact: `*, <${other}>`, expires: 0 }))).status).to.equal(400);
    expect((await ivy.transact(registerRequest(ivy, { contact: '*', expires: 60 }))).status).to.equal(400);
    expect((srv.server.location as LocationService).bindings('sip:ivy@example.com')).to.have.length(2);
  });

  it('marks a TCP binding unreachable when its connection closes', async () => {
    const hank = await ua('hank', 'tcp');
    await hank.transact(registerRequest(hank, { expires: 600 }));
    expect((srv.server.location as LocationService).lookup('sip:hank@example.com')).to.have.length(1);
    await hank.close();
    for (let i = 0; i < 100 && (srv.server.location as LocationService).lookup('sip:hank@example.com').length > 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect((srv.server.location as LocationService).lookup('sip:hank@example.com')).to.have.length(0);
  });
});
