import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { WebSocket } from 'ws';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { TestUa } from '../support/test-ua.js';
import { WsUa, wsUrl } from '../interop/ws-ua.js';
import type { LocationService } from '../../src/registrar/location-service.js';

const network = (ms = 30): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Opens a WebSocket and resolves with the HTTP status of a refused handshake (or 101). */
function handshakeStatus(url: string, protocols: string[], origin?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, origin ? { origin } : {});
    ws.once('open', () => {
      ws.terminate();
      resolve(101);
    });
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.once('error', reject);
  });
}

describe('SIP over WebSocket (RFC 7118)', function () {
  let srv: TestServer;
  let url: string;
  const uas: Array<{ close(): Promise<void> }> = [];
  let n = 0;
  const user = (base: string): string => `${base}${++n}`;

  before(async () => {
    srv = await startTestServer({ websocket: { allowedOrigins: ['https://app.example.com'] }, limits: { maxMessageSize: 4096 } });
    url = wsUrl(srv.server.listeners);
  });
  after(async () => {
    await srv.stop();
  });
  afterEach(async () => {
    for (const u of uas.splice(0)) await u.close();
  });

  async function ws(name: string, origin?: string): Promise<WsUa> {
    const u = await WsUa.connect(url, { user: name, origin });
    uas.push(u);
    return u;
  }
  async function udp(name: string): Promise<TestUa> {
    const u = await TestUa.create({ port: srv.port, user: name });
    uas.push(u);
    return u;
  }

  it('lists the ws listener on the HTTP port and answers plain HTTP with 404', async () => {
    const l = srv.server.listeners.find((x) => x.protocol === 'ws')!;
    expect(l.port).to.be.above(0);
    expect(l.port).to.equal((srv.server.http.address() as { port: number }).port);
    const status = await new Promise<number>((resolve, reject) => {
      http.get(`http://127.0.0.1:${l.port}/nothing`, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      }).on('error', reject);
    });
    expect(status).to.equal(404);
  });

  it('refuses a handshake without the sip subprotocol (400) and a foreign Origin (403)', async () => {
    expect(await handshakeStatus(url, ['chat'])).to.equal(400);
    expect(await handshakeStatus(url, [])).to.equal(400);
    expect(await handshakeStatus(url, ['sip'], 'https://evil.example.net')).to.equal(403);
    expect(await handshakeStatus(url, ['sip'], 'https://app.example.com')).to.equal(101);
    expect(await handshakeStatus(url, ['sip'])).to.equal(101); // non-browser: no Origin
    expect(await handshakeStatus(`${url}/other`, ['sip'])).to.equal(404);
  });

  it('answers a request down the same connection, in a text or a binary frame', async () => {
    const a = await ws(user('wsa'));
    const res = await a.transact(a.request('OPTIONS', 'sip:example.com'));
    expect(res.status).to.equal(200);
    expect(res.topVia.transport).to.equal('WS');
    expect(res.topVia.params.get('received')).to.equal('127.0.0.1');
    const bin = await a.transact(a.request('OPTIONS', 'sip:example.com'), 3000, true);
    expect(bin.status).to.equal(200);
  });

  it('registers a connection-bound contact and delivers MESSAGE to it down the connection', async () => {
    const bobName = user('wsbob');
    const bob = await ws(bobName);
    bob.autoAnswer('MESSAGE', 200);
    const reg = await bob.transact(bob.request('REGISTER', 'sip:example.com', { headers: { Expires: 600, To: `<${bob.aor}>` } }));
    expect(reg.status).to.equal(200);
    const alice = await udp(user('udpalice'));
    const sent = alice.request('MESSAGE', `sip:${bobName}@example.com`, { headers: { 'Content-Type': 'text/plain' }, body: 'hello over ws' });
    const res = await alice.transact(sent);
    expect(res.status).to.equal(200);
    const got = await bob.waitRequest((r) => r.method === 'MESSAGE');
    expect(got.body.toString()).to.equal('hello over ws');
    expect(got.uriText).to.contain('.invalid');
  });

  it('sends NOTIFYs of a WS watcher down its connection', async () => {
    const watcher = await ws(user('wswatch'));
    watcher.autoAnswer('NOTIFY', 200);
    const target = user('presentity');
    const res = await watcher.transact(watcher.request('SUBSCRIBE', `sip:${target}@example.com`, { headers: { Event: 'presence', Expires: 600, Accept: 'application/pidf+xml' } }));
    expect(res.status).to.be.oneOf([200, 202]);
    const first = await watcher.waitRequest((r) => r.method === 'NOTIFY');
    expect(first.getHeader('Subscription-State')).to.match(/^active/);
    const pub = await udp(target);
    const body = `<?xml version="1.0"?><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:${target}@example.com"><tuple id="t"><status><basic>open</basic></status></tuple></presence>`;
    const p = await pub.transact(pub.request('PUBLISH', `sip:${target}@example.com`, { headers: { Event: 'presence', Expires: 600, 'Content-Type': 'application/pidf+xml' }, body }));
    expect(p.status).to.equal(200);
    const second = await watcher.waitRequest((r) => r.method === 'NOTIFY' && r.body.includes('open'));
    expect(second.topVia.transport).to.equal('WS');
  });

  it('marks the binding unreachable when the connection closes', async () => {
    const carolName = user('wscarol');
    const carol = await ws(carolName);
    const reg = await carol.transact(carol.request('REGISTER', 'sip:example.com', { headers: { Expires: 600, To: `<${carol.aor}>` } }));
    expect(reg.status).to.equal(200);
    expect((srv.server.location as LocationService).lookup(`sip:${carolName}@example.com`)).to.have.length(1);
    const before = srv.server.transport.connections.size;
    await carol.close();
    await network();
    expect(srv.server.transport.connections.size).to.equal(before - 1);
    expect((srv.server.location as LocationService).lookup(`sip:${carolName}@example.com`)).to.have.length(0);
    const alice = await udp(user('udpalice'));
    const res = await alice.transact(alice.request('MESSAGE', `sip:${carolName}@example.com`, { headers: { 'Content-Type': 'text/plain' }, body: 'are you there' }));
    // Nobody reachable: stored for later (202) rather than sent to the unreachable .invalid host.
    expect(res.status).to.equal(202);
  });

  it('closes a connection that sends a frame over limits.maxMessageSize (1009)', async () => {
    const big = await ws(user('wsbig'));
    const req = big.request('MESSAGE', 'sip:nobody@example.com', { headers: { 'Content-Type': 'text/plain' }, body: 'x'.repeat(5000) });
    big.send(req);
    expect(await big.closed).to.equal(1009);
    // The server is still up.
    const other = await ws(user('wsafter'));
    expect((await other.transact(other.request('OPTIONS', 'sip:example.com'))).status).to.equal(200);
  });

  it('ignores a CRLF keep-alive frame and answers malformed SIP with 400 on the connection', async () => {
    const u = await ws(user('wsbad'));
    u.ws.send('\r\n\r\n');
    const rawReply = new Promise<string>((r) => u.ws.once('message', (d: Buffer) => r(d.toString())));
    u.ws.send('OPTIONS sip:example.com SIP/2.0\r\nVia: SIP/2.0/WS x.invalid;branch=z9hG4bKbad1\r\nFrom: <sip:a@example.com>;tag=1\r\nTo: <sip:example.com>\r\nCall-ID: bad1\r\nCSeq: nope\r\n\r\n');
    // The 400 copies the bad CSeq, so it is read as text, not parsed.
    const raw = await rawReply;
    expect(raw).to.match(/^SIP\/2\.0 400 Bad CSeq/);
    expect((await u.transact(u.request('OPTIONS', 'sip:example.com'))).status).to.equal(200);
  });
});

describe('SIP over secure WebSocket (wss)', function () {
  this.timeout(20_000);
  let dir: string;
  let srv: TestServer;

  before(async function () {
    dir = mkdtempSync(join(tmpdir(), 'wss-'));
    try {
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=localhost', '-days', '1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
    } catch {
      this.skip(); // no openssl to make a test certificate
    }
    srv = await startTestServer({ tls: { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') }, websocket: { wssPort: 0 } });
  });
  after(async () => {
    await srv?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('accepts SIP over wss with Via WSS', async () => {
    const l = srv.server.listeners.find((x) => x.protocol === 'wss')!;
    expect(l).to.not.equal(undefined);
    const ws = new WebSocket(`wss://127.0.0.1:${l.port}`, ['sip'], { rejectUnauthorized: false });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const reply = new Promise<string>((r) => ws.once('message', (d: Buffer) => r(d.toString())));
    ws.send('OPTIONS sip:example.com SIP/2.0\r\nVia: SIP/2.0/WSS abc.invalid;branch=z9hG4bKwss1\r\nMax-Forwards: 70\r\nFrom: <sip:a@example.com>;tag=1\r\nTo: <sip:example.com>\r\nCall-ID: wss1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n');
    const text = await reply;
    expect(text).to.match(/^SIP\/2\.0 200/);
    expect(text).to.match(/Via: SIP\/2\.0\/WSS abc\.invalid/);
    ws.terminate();
  });
});
