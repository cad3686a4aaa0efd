import { expect } from 'chai';
import { LocationService } from '../../src/registrar/location-service.js';
import { RegistrarService } from '../../src/registrar/registrar-service.js';
import type { RegistrarSettings } from '../../src/registrar/registration-plan.js';
import type { SipResponse } from '../../src/sip/message.js';
import { ManualTimers } from '../../src/util/timers.js';
import { domains, fakeContext, register, run, tcpFlow, UDP_FLOW } from './fakes.js';

const SETTINGS: RegistrarSettings = { minExpires: 60, maxExpires: 3600, defaultExpires: 1800, maxContactsPerAor: 3 };
const EPOCH = Date.UTC(2024, 0, 1);

describe('registrar: REGISTER (RFC 3261 §10.3)', () => {
  let timers: ManualTimers;
  let location: LocationService;
  let registrar: RegistrarService;

  beforeEach(() => {
    timers = new ManualTimers();
    location = new LocationService({ timers, wallClock: { nowMs: () => EPOCH + timers.now() } });
    registrar = new RegistrarService({ location, domains: domains(), settings: SETTINGS });
  });

  function send(req = register(), flow = UDP_FLOW): Promise<SipResponse> {
    return run((c) => registrar.handle(c), fakeContext(req, flow));
  }

  function contactExpires(res: SipResponse): Map<string, number> {
    const out = new Map<string, number>();
    for (const c of res.contacts) out.set(c.uri.raw, Number(c.params.get('expires')));
    return out;
  }

  it('adds a binding and lists it with its expires and a Date', async () => {
    const res = await send(register({ expires: 600 }));
    expect(res.status).to.equal(200);
    expect(contactExpires(res)).to.deep.equal(new Map([['sip:bob@192.0.2.10:5062', 600]]));
    expect(res.getHeader('date')).to.equal(new Date(EPOCH).toUTCString());
    expect(location.lookup('sip:bob@example.com')).to.have.length(1);
  });

  it('uses the default expiry when none is given, and shortens one above the maximum', async () => {
    expect(contactExpires(await send(register()))).to.deep.equal(new Map([['sip:bob@192.0.2.10:5062', 1800]]));
    const res = await send(register({ expires: 100000, cseq: 2 }));
    expect(contactExpires(res).get('sip:bob@192.0.2.10:5062')).to.equal(3600);
  });

  it('lets the Contact expires parameter win over the Expires header', async () => {
    const res = await send(register({ contacts: ['<sip:bob@192.0.2.10:5062>;expires=120', '<sip:bob@192.0.2.11>'], expires: 900 }));
    expect(contactExpires(res)).to.deep.equal(new Map([['sip:bob@192.0.2.10:5062', 120], ['sip:bob@192.0.2.11', 900]]));
  });

  it('answers 423 with Min-Expires and leaves the bindings untouched', async () => {
    await send(register({ expires: 600 }));
    const res = await send(register({ contacts: ['<sip:bob@192.0.2.10:5062>', '<sip:bob@192.0.2.11>;expires=30'], cseq: 2 }));
    expect(res.status).to.equal(423);
    expect(res.getHeader('min-expires')).to.equal('60');
    const b = location.bindings('sip:bob@example.com');
    expect(b).to.have.length(1);
    expect(b[0]!.cseq).to.equal(1);
  });

  it('refreshes a binding and reports the remaining time of others', async () => {
    await send(register({ contacts: ['<sip:bob@192.0.2.11>'], expires: 600, callId: 'other' }));
    timers.advance(100_000);
    const res = await send(register({ expires: 300 }));
    expect(contactExpires(res)).to.deep.equal(new Map([['sip:bob@192.0.2.11', 500], ['sip:bob@192.0.2.10:5062', 300]]));
  });

  it('removes one binding with expires=0 and all with Contact: * and Expires: 0', async () => {
    await send(register({ contacts: ['<sip:bob@192.0.2.10:5062>', '<sip:bob@192.0.2.11>'] }));
    let res = await send(register({ contacts: ['<sip:bob@192.0.2.11>;expires=0'], cseq: 2 }));
    expect([...contactExpires(res).keys()]).to.deep.equal(['sip:bob@192.0.2.10:5062']);
    res = await send(register({ contacts: ['*'], expires: 0, cseq: 3 }));
    expect(res.status).to.equal(200);
    expect(res.contacts).to.have.length(0);
    expect(location.bindings('sip:bob@example.com')).to.have.length(0);
  });

  it('refuses Contact: * without Expires: 0 (400)', async () => {
    expect((await send(register({ contacts: ['*'] }))).status).to.equal(400);
    expect((await send(register({ contacts: ['*'], expires: 60 }))).status).to.equal(400);
  });

  it('treats a REGISTER without Contact as a query', async () => {
    await send(register({ expires: 600 }));
    timers.advance(10_000);
    const res = await send(register({ contacts: [], cseq: 2 }));
    expect(res.status).to.equal(200);
    expect(contactExpires(res)).to.deep.equal(new Map([['sip:bob@192.0.2.10:5062', 590]]));
  });

  it('refuses an older or equal CSeq on the same Call-ID, keeping the binding (§10.3 step 7)', async () => {
    await send(register({ expires: 600, cseq: 5 }));
    for (const cseq of [4, 5]) {
      const res = await send(register({ expires: 0, cseq }));
      expect(res.status).to.equal(400);
    }
    expect(location.bindings('sip:bob@example.com')[0]!.cseq).to.equal(5);
    // Contact: * is held to the same rule.
    expect((await send(register({ contacts: ['*'], expires: 0, cseq: 3 }))).status).to.equal(400);
    expect(location.bindings('sip:bob@example.com')).to.have.length(1);
    // A different Call-ID may update it whatever its CSeq.
    expect((await send(register({ expires: 0, cseq: 1, callId: 'new-call' }))).status).to.equal(200);
    expect(location.bindings('sip:bob@example.com')).to.have.length(0);
  });

  it('keeps q-values and echoes them', async () => {
    const res = await send(register({ contacts: ['<sip:bob@192.0.2.10:5062>;q=0.7', '<sip:bob@192.0.2.11>;q=1.0'] }));
    const q = new Map(res.contacts.map((c) => [c.uri.raw, c.params.get('q')]));
    expect(q.get('sip:bob@192.0.2.10:5062')).to.equal('0.7');
    expect(q.get('sip:bob@192.0.2.11')).to.equal('1');
    expect(location.lookup('sip:bob@example.com').map((b) => b.q)).to.deep.equal([1, 0.7]);
  });

  it('refuses a bad q-value (400)', async () => {
    expect((await send(register({ contacts: ['<sip:bob@192.0.2.10>;q=1.5'] }))).status).to.equal(400);
  });

  it('bounds bindings per AoR (403)', async () => {
    await send(register({ contacts: ['<sip:bob@192.0.2.1>', '<sip:bob@192.0.2.2>', '<sip:bob@192.0.2.3>'] }));
    const res = await send(register({ contacts: ['<sip:bob@192.0.2.4>'], cseq: 2 }));
    expect(res.status).to.equal(403);
    expect(location.bindings('sip:bob@example.com')).to.have.length(3);
    const many = ['<sip:bob@192.0.2.1>', '<sip:bob@192.0.2.2>', '<sip:bob@192.0.2.3>', '<sip:bob@192.0.2.4>'];
    expect((await send(register({ user: 'carol', contacts: many }))).status).to.equal(403);
  });

  it('replaces the binding of the same +sip.instance and reg-id (RFC 5626 §6)', async () => {
    const inst = '+sip.instance="<urn:uuid:00000000-0000-1000-8000-000A95A0E128>";reg-id=1';
    await send(register({ contacts: [`<sip:bob@192.0.2.10:5062>;${inst}`] }));
    const res = await send(register({ contacts: [`<sip:bob@198.51.100.7:6000>;${inst}`], callId: 'after-reboot' }));
    expect(res.contacts.map((c) => c.uri.raw)).to.deep.equal(['sip:bob@198.51.100.7:6000']);
    expect(res.contacts[0]!.params.get('+sip.instance')).to.equal('<urn:uuid:00000000-0000-1000-8000-000A95A0E128>');
    expect(res.getHeader('contact')).to.include('+sip.instance="<urn:uuid:00000000-0000-1000-8000-000A95A0E128>"');
    const b = location.bindings('sip:bob@example.com');
    expect(b).to.have.length(1);
    expect(b[0]!.regId).to.equal(1);
  });

  it('answers 404 for a Request-URI domain that is not ours, and for a To of another domain', async () => {
    expect((await send(register({ uri: 'sip:elsewhere.org' }))).status).to.equal(404);
    const req = register();
    req.setHeader('To', '<sip:bob@elsewhere.org>');
    expect((await send(req)).status).to.equal(404);
  });

  it('answers 400 for a To or Contact that is not a SIP URI (RFC 4475 unksm2)', async () => {
    const req = register();
    req.setHeader('To', '<isbn:2983792873>');
    expect((await send(req)).status).to.equal(400);
    const http = register();
    http.setHeader('Contact', '<http://www.example.com>');
    expect((await send(http)).status).to.equal(400);
  });

  it('answers 404 for a user the directory does not know', async () => {
    registrar = new RegistrarService({ location, domains: domains(), settings: SETTINGS, users: { exists: async (aor) => aor === 'sip:alice@example.com' } });
    expect((await send(register())).status).to.equal(404);
    expect((await send(register({ user: 'alice' }))).status).to.equal(200);
  });

  it('folds our other host names into the one domain', async () => {
    const req = register({ uri: 'sip:127.0.0.1' });
    req.setHeader('To', '<sip:bob@localhost>');
    expect((await send(req)).status).to.equal(200);
    expect(location.lookup('sip:bob@example.com')).to.have.length(1);
  });

  it('stores Path and echoes it when the UA supports path (RFC 3327)', async () => {
    const res = await send(register({ extra: ['Path: <sip:edge1.example.com;lr;ob>', 'Supported: path'] }));
    expect(res.getHeaders('path')).to.deep.equal(['<sip:edge1.example.com;lr;ob>']);
    expect(location.bindings('sip:bob@example.com')[0]!.path).to.deep.equal(['<sip:edge1.example.com;lr;ob>']);
    const res2 = await send(register({ cseq: 2, extra: ['Path: <sip:edge1.example.com;lr>'] }));
    expect(res2.hasHeader('path')).to.equal(false);
  });

  it('remembers the connection of a TCP registration and marks it unreachable when it closes', async () => {
    await send(register({ contacts: ['<sip:bob@10.0.0.5:5062;transport=tcp>'] }), tcpFlow(7));
    expect(location.lookup('sip:bob@example.com')[0]!.flow.connectionId).to.equal(7);
    location.connectionClosed(7);
    expect(location.lookup('sip:bob@example.com')).to.have.length(0);
    expect(location.bindings('sip:bob@example.com')).to.have.length(1);
    // Registering again over a new connection makes it reachable again.
    await send(register({ contacts: ['<sip:bob@10.0.0.5:5062;transport=tcp>'], cseq: 2 }), tcpFlow(8));
    expect(location.lookup('sip:bob@example.com')[0]!.flow.connectionId).to.equal(8);
  });

  it('expires bindings on the timer structure', async () => {
    await send(register({ expires: 60 }));
    await send(register({ contacts: ['<sip:bob@192.0.2.11>'], expires: 120, callId: 'b' }));
    timers.advance(59_999);
    expect(location.lookup('sip:bob@example.com')).to.have.length(2);
    timers.advance(1);
    expect(location.lookup('sip:bob@example.com').map((b) => b.contact)).to.deep.equal(['sip:bob@192.0.2.11']);
    timers.advance(60_000);
    expect(location.size).to.equal(0);
    expect(timers.size).to.equal(0);
  });

  it('tells listeners after a 200 that added bindings, not after a query or removal', async () => {
    const heard: string[] = [];
    registrar.onRegistered((aor) => heard.push(aor));
    await send(register());
    await send(register({ contacts: [], cseq: 2 }));
    await send(register({ expires: 0, cseq: 3 }));
    expect(heard).to.deep.equal(['sip:bob@example.com']);
  });

  it('refuses malformed Contact parameters with 400 and never throws past the handler', async () => {
    for (const c of ['<sip:bob@192.0.2.1>;expires=abc', '<sip:bob@192.0.2.1>;reg-id=0;+sip.instance="<urn:x>"', '<tel:+123>', '<sip:bob@192.0.2.1>;+sip.instance=plain']) {
      const res = await send(register({ contacts: [c] }));
      expect(res.status, c).to.equal(400);
    }
  });
});
