import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import WebSocket from 'ws';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { until } from '../support/wait.js';

// The least the configuration allows.
const IDLE_MS = 1000;

/** A registered client connection that can send keep-alives and tell when the server closed it. */
interface Client {
  readonly pongs: () => number;
  keepAlive(): void;
  readonly closed: Promise<void>;
  close(): void;
}

function register(via: string, n: string): string {
  return [
    'REGISTER sip:example.com SIP/2.0',
    `Via: ${via};branch=z9hG4bKidle${n}`,
    'Max-Forwards: 70',
    `From: <sip:idle${n}@example.com>;tag=i${n}`,
    `To: <sip:idle${n}@example.com>`,
    `Call-ID: idle-${n}`,
    'CSeq: 1 REGISTER',
    `Contact: <sip:idle${n}@127.0.0.1;transport=${via.split(' ')[0]!.split('/')[2]!.toLowerCase()}>`,
    'Expires: 600',
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
}

async function streamClient(socket: net.Socket, ready: string, via: string, n: string): Promise<Client> {
  await new Promise<void>((resolve, reject) => {
    socket.once(ready, () => resolve());
    socket.once('error', reject);
  });
  let data = '';
  let pongs = 0;
  socket.on('data', (chunk: Buffer) => {
    data += chunk.toString('latin1');
    // RFC 5626 §3.5.1: the answer to CRLF CRLF is one CRLF, between messages.
    for (;;) {
      if (data.startsWith('\r\n')) {
        pongs++;
        data = data.slice(2);
      } else if (data.startsWith('SIP/2.0') && data.includes('\r\n\r\n')) data = data.slice(data.indexOf('\r\n\r\n') + 4);
      else break;
    }
  });
  const registered = new Promise<void>((r) => socket.once('data', () => r()));
  socket.write(register(via, n));
  await registered;
  return {
    pongs: () => pongs,
    keepAlive: () => void socket.write('\r\n\r\n'),
    closed: new Promise<void>((r) => socket.once('close', () => r())),
    close: () => socket.destroy(),
  };
}

async function wsClient(url: string, n: string): Promise<Client> {
  const ws = new WebSocket(url, ['sip']);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  let pongs = 0;
  ws.on('pong', () => pongs++);
  const registered = new Promise<void>((r) => ws.once('message', () => r()));
  ws.send(register('SIP/2.0/WS idle.invalid', n));
  await registered;
  return {
    pongs: () => pongs,
    // A CRLF frame is what keeps a WebSocket flow from the idle timeout (our pings are answered, but they are not SIP).
    keepAlive: () => {
      ws.ping();
      ws.send('\r\n\r\n');
    },
    closed: new Promise<void>((r) => ws.once('close', () => r())),
    close: () => ws.terminate(),
  };
}

describe('e2e: held connections kept by keep-alives, idle ones closed (limits.idleTimeoutMs)', function () {
  this.timeout(20_000);
  let dir: string;
  let srv: TestServer;
  const clients: Client[] = [];

  before(async function () {
    dir = mkdtempSync(join(tmpdir(), 'sp-idle-'));
    try {
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=localhost', '-days', '1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
    } catch {
      this.skip(); // no openssl to make a test certificate
    }
    srv = await startTestServer({
      sip: { transports: ['udp', 'tcp', 'tls'] },
      tls: { port: 0, cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') },
      limits: { idleTimeoutMs: IDLE_MS },
      websocket: { pingIntervalMs: 1000 },
    });
  });
  after(async () => {
    for (const c of clients) c.close();
    await srv?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const port = (protocol: string): number => srv.server.listeners.find((l) => l.protocol === protocol)!.port;
  const open = (which: 'tcp' | 'tls' | 'ws', n: string): Promise<Client> => {
    if (which === 'ws') return wsClient(`ws://127.0.0.1:${port('ws')}/`, n);
    const socket = which === 'tcp' ? net.connect(port('tcp'), '127.0.0.1') : tls.connect({ port: port('tls'), host: '127.0.0.1', rejectUnauthorized: false });
    return streamClient(socket, which === 'tcp' ? 'connect' : 'secureConnect', `SIP/2.0/${which.toUpperCase()} 127.0.0.1:5060`, n);
  };

  it('tcp, tls, ws: keep-alives are answered and keep a registered connection open past the idle timeout; once they stop, it is closed', async () => {
    const all = (['tcp', 'tls', 'ws'] as const).map(async (which) => {
      const c = await open(which, which);
      clients.push(c);
      let closed = false;
      void c.closed.then(() => (closed = true));
      const binding = async (): Promise<boolean> => (await srv.server.location.lookup(`sip:idle${which}@example.com`)).length === 1;
      expect(await binding(), `${which}: registered`).to.equal(true);
      // Two idle timeouts, a keep-alive every quarter of one.
      for (let k = 0; k < 8; k++) {
        c.keepAlive();
        await new Promise((r) => setTimeout(r, IDLE_MS / 4));
      }
      expect(closed, `${which}: still open while keep-alives flow`).to.equal(false);
      await until(() => c.pongs() >= 8, `${which}: keep-alives answered`);
      // Silence: the server closes the connection, and the binding on it is no longer used.
      await c.closed;
      await until(async () => !(await binding()), `${which}: the binding on the closed flow dropped from lookups`);
    });
    await Promise.all(all);
  });
});
