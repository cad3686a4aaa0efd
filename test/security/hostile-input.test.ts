import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { pino } from 'pino';
import { parseMessage } from '../../src/sip/parser.js';
import { SipResponse } from '../../src/sip/message.js';
import { randomToken } from '../../src/sip/response.js';
import { openStore, type Store } from '../../src/store/index.js';
import { StreamFramer } from '../../src/transport/stream-framer.js';
import { authedTransact } from '../auth/digest-client.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { TestUa } from '../support/test-ua.js';

const PIDF = 'application/pidf+xml';

/** OPTIONS over UDP still answered: the server is up. */
async function alive(srv: TestServer): Promise<void> {
  const ua = await TestUa.create({ port: srv.port, user: 'probe' });
  try {
    const res = await ua.transact(ua.request('OPTIONS', 'sip:example.com'));
    expect(res.status).to.equal(200);
  } finally {
    await ua.close();
  }
}

/**
 * Resolves when the server closes the socket. Nothing here times it: a peer that keeps
 * sending would keep the connection forever unless the server cuts it off, so a close at
 * all is the proof (mocha's timeout ends the test otherwise).
 */
function closed(socket: net.Socket): Promise<void> {
  return new Promise((resolve) => {
    if (socket.destroyed) return resolve();
    socket.once('close', () => resolve());
  });
}

/** Sends an OPTIONS down a raw stream socket and resolves with the first line of the answer. */
function optionsOver(socket: net.Socket, branch: string): Promise<string> {
  return new Promise((resolve) => {
    let got = '';
    const onData = (d: Buffer): void => {
      got += d.toString('latin1');
      const end = got.indexOf('\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      resolve(got.slice(0, end));
    };
    socket.on('data', onData);
    const { localPort } = socket;
    socket.write(
      `OPTIONS sip:example.com SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:${localPort};branch=${branch}\r\nMax-Forwards: 70\r\n` +
        `From: <sip:probe@example.com>;tag=${branch}\r\nTo: <sip:example.com>\r\nCall-ID: ${branch}@probe\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n`,
    );
  });
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

describe('security e2e: hostile input (real sockets)', function () {
  this.timeout(20_000);

  describe('rate limit and message caps', () => {
    let srv: TestServer;
    before(async () => {
      srv = await startTestServer({
        limits: { rate: { requestsPerSecond: 2, burst: 5 } },
      });
    });
    after(() => srv?.stop());

    it('answers a source over its token bucket with 503 and Retry-After, and stays up', async () => {
      const ua = await TestUa.create({ port: srv.port, user: 'flood' });
      try {
        const answers = await Promise.all(Array.from({ length: 12 }, () => ua.transact(ua.request('OPTIONS', 'sip:example.com'))));
        const refused = answers.filter((r) => r.status === 503);
        expect(answers.filter((r) => r.status === 200).length).to.be.within(5, 6);
        expect(refused.length).to.be.at.least(6);
        expect(Number(refused[0]!.getHeader('retry-after'))).to.be.at.least(1);
      } finally {
        await ua.close();
      }
      // Another source is not affected (the probe binds a new port on the same address,
      // so wait for one token instead).
      await new Promise((r) => setTimeout(r, 600));
      await alive(srv);
    });

    it('answers oversized UDP datagrams (513) only within the source\'s rate, like requests', async () => {
      const small = await startTestServer({ limits: { maxMessageSize: 2000, rate: { requestsPerSecond: 1, burst: 3 } } });
      const sock = dgram.createSocket('udp4');
      try {
        await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
        const port = sock.address().port;
        const statuses: number[] = [];
        const lastAnswered = new Promise<void>((resolve) => {
          sock.on('message', (data) => {
            const parsed = parseMessage(data);
            if (!parsed.ok || !(parsed.message instanceof SipResponse)) return;
            statuses.push(parsed.message.status);
            if (parsed.message.callId === 'last@flood') resolve();
          });
        });
        const head = (callId: string, length: number) =>
          `OPTIONS sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:${port};branch=z9hG4bK${randomToken()};rport\r\nMax-Forwards: 70\r\n` +
          `From: <sip:flood@example.com>;tag=${randomToken()}\r\nTo: <sip:example.com>\r\nCall-ID: ${callId}\r\nCSeq: 1 OPTIONS\r\nContent-Length: ${length}\r\n\r\n`;
        for (let i = 0; i < 10; i++) sock.send(head(`big${i}@flood`, 3000) + 'x'.repeat(3000), small.port, '127.0.0.1');
        // Datagrams on loopback arrive in order: once this one is answered, all ten were handled.
        sock.send(head('last@flood', 0), small.port, '127.0.0.1');
        await lastAnswered;
        expect(statuses.filter((st) => st === 513)).to.have.length(3);
        expect(statuses.at(-1)).to.equal(503);
      } finally {
        sock.close();
        await small.stop();
      }
    });

    it('refuses too many headers, too many Vias, a long Request-URI and a large body for its type', async function () {
      const caps = await startTestServer({ limits: { maxHeaders: 40, maxVias: 3, maxUriLength: 200, maxBodySize: { 'text/plain': 100, '*': 65536 } } });
      const ua = await TestUa.create({ port: caps.port, user: 'caps', protocol: 'tcp' });
      try {
        const many = ua.request('OPTIONS', 'sip:example.com');
        for (let i = 0; i < 50; i++) many.addHeader(`X-Junk-${i}`, 'x');
        expect((await ua.transact(many)).status).to.equal(400);
        const vias = ua.request('OPTIONS', 'sip:example.com');
        vias.addHeader('Via', 'SIP/2.0/TCP 192.0.2.1;branch=z9hG4bKa, SIP/2.0/TCP 192.0.2.2;branch=z9hG4bKb, SIP/2.0/TCP 192.0.2.3;branch=z9hG4bKc');
        expect((await ua.transact(vias)).status).to.equal(400);
        const long = ua.request('OPTIONS', `sip:${'a'.repeat(300)}@example.com`);
        const r414 = await ua.transact(long);
        expect(r414.status).to.equal(414);
        const big = ua.request('MESSAGE', 'sip:someone@example.com', { headers: { 'Content-Type': 'text/plain' }, body: 'x'.repeat(500) });
        expect((await ua.transact(big)).status).to.equal(413);
      } finally {
        await ua.close();
        await caps.stop();
      }
    });
  });

  describe('failed attempts', () => {
    let store: Store;
    let srv: TestServer;
    before(async () => {
      store = await openStore({ logger: pino({ level: 'silent' }) });
      srv = await startTestServer({ auth: { required: true, maxFailuresPerSourceUser: 3, blockSeconds: 60 } }, { store });
      await srv.server.security.admin!.addUser({ username: 'victim', password: 'right' });
    });
    after(async () => {
      await srv?.stop();
      await store?.close();
    });

    it('blocks a user from a source with 403 after maxFailuresPerSourceUser wrong passwords, even with the right one', async () => {
      const ua = await TestUa.create({ port: srv.port, user: 'victim' });
      const reg = (a?: string) => ua.request('REGISTER', 'sip:example.com', { to: `<${ua.aor}>`, headers: { Expires: 60, ...(a ? { Authorization: a } : {}) } });
      try {
        const statuses: number[] = [];
        for (let i = 0; i < 3; i++) statuses.push((await authedTransact(ua, reg, { username: 'victim', password: `guess${i}` })).res.status);
        expect(statuses).to.deep.equal([401, 401, 403]);
        // The pair is blocked: a request without credentials is still challenged (the user is not
        // known yet), the right password is refused.
        expect((await authedTransact(ua, reg, { username: 'victim', password: 'right' })).res.status).to.equal(403);
        // Time passes: the block ends.
        const security = srv.server.security;
        const real = security.clock;
        security.clock = { nowMs: () => real.nowMs() + 61_000 };
        try {
          expect((await authedTransact(ua, reg, { username: 'victim', password: 'right' })).res.status).to.equal(200);
        } finally {
          security.clock = real;
        }
      } finally {
        await ua.close();
      }
    });
  });

  describe('XML bombs and huge documents', () => {
    let srv: TestServer;
    before(async () => {
      srv = await startTestServer({ limits: { maxMessageSize: 1048576, maxBodySize: { [PIDF]: 1048576, '*': 65536 } } });
    });
    after(() => srv?.stop());

    async function publish(body: string | Buffer, protocol: 'udp' | 'tcp' = 'tcp'): Promise<{ status: number; reason: string }> {
      const ua = await TestUa.create({ port: srv.port, user: 'bomber', protocol });
      try {
        const req = ua.request('PUBLISH', ua.aor, { to: `<${ua.aor}>`, headers: { Event: 'presence', Expires: 60, 'Content-Type': PIDF }, body });
        const res = await ua.transact(req);
        return { status: res.status, reason: res.reason };
      } finally {
        await ua.close();
      }
    }

    it('refuses a billion-laughs document with 400', async () => {
      const lol =
        '<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">' +
        Array.from({ length: 9 }, (_, i) => `<!ENTITY lol${i + 1} "${`&lol${i === 0 ? '' : i};`.repeat(10)}">`).join('') +
        ']>\n<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:bomber@example.com"><tuple id="t"><status><basic>open</basic></status><note>&lol9;</note></tuple></presence>';
      const r = await publish(lol);
      expect(r.status).to.equal(400);
    });

    it('refuses a deeply nested document with 400', async () => {
      // Under presence.maxDocumentBytes (64 KiB), so the XML reader's depth bound is what refuses it.
      const depth = 1000;
      const doc = `<?xml version="1.0"?><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:bomber@example.com"><tuple id="t"><status><basic>open</basic></status>${'<x:a xmlns:x="urn:x">'.repeat(depth)}${'</x:a>'.repeat(depth)}</tuple></presence>`;
      const r = await publish(doc);
      expect(r.status).to.equal(400);
    });

    // RFC 3261 §21.5.7: a message longer than the server can process is 513, not 400 (it is not
    // malformed); the framer refuses it from the Content-Length, before any body is buffered.
    it('refuses a 10 MB document at once with 513 Message Too Large (before any parsing), memory flat', async () => {
      const before = process.memoryUsage().rss;
      const body = `<?xml version="1.0"?><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:bomber@example.com">${'<note>spam</note>'.repeat(600_000)}</presence>`;
      expect(body.length).to.be.above(10_000_000);
      const r = await publish(body);
      expect(r.status).to.equal(513);
      expect(r.reason).to.equal('Message Too Large');
      // The server never buffers more than limits.maxMessageSize of it.
      expect(process.memoryUsage().rss - before).to.be.below(200 * 1024 * 1024);
      await alive(srv);
    });

    it('refuses a body over presence.maxDocumentBytes with 413', async () => {
      const body = `<?xml version="1.0"?><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:bomber@example.com"><tuple id="t"><status><basic>open</basic></status></tuple>${'<note>spam</note>'.repeat(30_000)}</presence>`;
      const r = await publish(body);
      expect(r.status).to.equal(413);
      await alive(srv);
    });
  });

  describe('slow and greedy TCP peers', () => {
    let srv: TestServer;
    before(async () => {
      srv = await startTestServer({ limits: { messageTimeoutMs: 300, maxConnectionsPerSource: 3 } });
    });
    after(() => srv?.stop());

    it('cuts off a peer sending a request one byte at a time (slowloris)', async () => {
      const s = await connect(srv.port);
      const text = 'OPTIONS sip:example.com SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:1;branch=z9hG4bKslow\r\n';
      let i = 0;
      const timer = setInterval(() => {
        if (s.destroyed) return;
        s.write(text[i++ % text.length]!);
      }, 20);
      try {
        await closed(s);
      } finally {
        clearInterval(timer);
        s.destroy();
      }
      await alive(srv);
    });

    it('cuts off a header that never ends, even when it arrives fast', async () => {
      const s = await connect(srv.port);
      s.on('error', () => undefined);
      s.write('OPTIONS sip:example.com SIP/2.0\r\n');
      const timer = setInterval(() => {
        if (!s.destroyed) s.write(`X-Never-Ending-${randomToken(4)}: ${'y'.repeat(10)}\r\n`);
      }, 10);
      try {
        await closed(s);
      } finally {
        clearInterval(timer);
        s.destroy();
      }
      await alive(srv);
    });

    // After a framing error the server stops reading (pause) and destroys the socket shortly
    // after the 513/400, so a peer cannot go on pouring bytes in.
    it('closes, and stops reading from, a peer that goes on sending past limits.maxMessageSize', async () => {
      // An attacker ignores the server's FIN and keeps writing: half-open on purpose.
      const s = net.connect({ host: '127.0.0.1', port: srv.port, allowHalfOpen: true });
      await new Promise((resolve) => s.once('connect', resolve));
      s.on('error', () => undefined);
      const junk = Buffer.from(`X-Flood: ${'y'.repeat(1000)}\r\n`);
      s.write('OPTIONS sip:example.com SIP/2.0\r\n');
      let sent = 0;
      const pump = (): void => {
        while (!s.destroyed && sent < 64 * 1024 * 1024) {
          sent += junk.length;
          if (!s.write(junk)) return void s.once('drain', pump);
        }
      };
      pump();
      try {
        await closed(s);
        // Flow control stopped the peer long before it could pour its 64 MB in.
        expect(sent).to.be.below(16 * 1024 * 1024);
      } finally {
        s.destroy();
      }
      await alive(srv);
    });

    it('keeps a connection that sends whole messages with pauses between them', async () => {
      const ua = await TestUa.create({ port: srv.port, user: 'polite', protocol: 'tcp' });
      try {
        expect((await ua.transact(ua.request('OPTIONS', 'sip:example.com'))).status).to.equal(200);
        await new Promise((r) => setTimeout(r, 400));
        expect((await ua.transact(ua.request('OPTIONS', 'sip:example.com'))).status).to.equal(200);
      } finally {
        await ua.close();
      }
    });

    it('closes connections over limits.maxConnectionsPerSource', async () => {
      const sockets = await Promise.all([1, 2, 3, 4].map(() => connect(srv.port)));
      try {
        // The one past the limit is closed; the three within it still answer.
        await Promise.race(sockets.map((s) => closed(s)));
        const open = sockets.filter((s) => !s.destroyed);
        expect(open).to.have.length(3);
        const answers = await Promise.all(open.map((s, i) => optionsOver(s, `z9hG4bKlimit${i}`)));
        expect(answers.every((a) => a.startsWith('SIP/2.0 200'))).to.equal(true);
      } finally {
        for (const s of sockets) s.destroy();
      }
    });
  });

  describe('TLS', () => {
    let dir: string;
    let srv: TestServer;
    before(async function () {
      dir = mkdtempSync(join(tmpdir(), 'sp-tls-'));
      // A throwaway self-signed pair, made here, never committed.
      execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=localhost'], { stdio: 'ignore' });
      srv = await startTestServer({
        sip: { transports: ['udp', 'tcp', 'tls'] },
        tls: { port: 0, cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') },
        // Long enough for a TLS handshake on a loaded machine, short enough for the slow-peer tests.
        limits: { messageTimeoutMs: 1000 },
        // wss comes up with the TLS pair; an ephemeral port so that parallel runs do not collide on 8443.
        websocket: { wssPort: 0 },
      });
    });
    after(async () => {
      await srv?.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    it('answers OPTIONS over TLS (sips, round trip)', async () => {
      const listener = srv.server.listeners.find((l) => l.protocol === 'tls')!;
      const s = tls.connect({ host: '127.0.0.1', port: listener.port, rejectUnauthorized: false });
      try {
        await new Promise<void>((resolve, reject) => {
          s.once('secureConnect', resolve);
          s.once('error', reject);
        });
        const framer = new StreamFramer(65536);
        const got = new Promise<SipResponse>((resolve) => {
          s.on('data', (chunk: Buffer) => {
            for (const ev of framer.push(chunk)) {
              if (ev.kind !== 'message') continue;
              const p = parseMessage(ev.data);
              if (p.ok && p.message instanceof SipResponse) resolve(p.message);
            }
          });
        });
        s.write(
          [
            'OPTIONS sips:example.com SIP/2.0',
            `Via: SIP/2.0/TLS 127.0.0.1:${s.localPort};branch=z9hG4bK${randomToken()}`,
            'Max-Forwards: 70',
            `From: <sips:tls@example.com>;tag=${randomToken()}`,
            'To: <sips:example.com>',
            `Call-ID: ${randomToken()}`,
            'CSeq: 1 OPTIONS',
            'Content-Length: 0',
            '',
            '',
          ].join('\r\n'),
        );
        const res = await got;
        expect(res.status).to.equal(200);
        expect(s.getPeerCertificate().subject?.CN).to.equal('localhost');
      } finally {
        s.destroy();
      }
    });

    // Node's handshakeTimeout only emits 'tlsClientError': its listener destroys the socket.
    it('cuts off a peer that opens the TLS port and never finishes the handshake', async () => {
      const listener = srv.server.listeners.find((l) => l.protocol === 'tls')!;
      const s = await connect(listener.port);
      s.on('error', () => undefined);
      // Half a ClientHello record header, then nothing.
      s.write(Buffer.from([0x16, 0x03, 0x01]));
      try {
        await closed(s);
      } finally {
        s.destroy();
      }
      await alive(srv);
    });

    it('cuts off a slowloris over TLS (a request begun and never finished)', async () => {
      const listener = srv.server.listeners.find((l) => l.protocol === 'tls')!;
      const s = tls.connect({ host: '127.0.0.1', port: listener.port, rejectUnauthorized: false });
      s.on('error', () => undefined);
      await new Promise<void>((resolve, reject) => {
        s.once('secureConnect', resolve);
        s.once('error', reject);
      });
      const text = 'OPTIONS sips:example.com SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:1;branch=z9hG4bKslowtls\r\n';
      let i = 0;
      const timer = setInterval(() => {
        if (!s.destroyed) s.write(text[i++ % text.length]!);
      }, 20);
      try {
        await closed(s);
      } finally {
        clearInterval(timer);
        s.destroy();
      }
      await alive(srv);
    });
  });
});
