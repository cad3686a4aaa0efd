import http from 'node:http';
import type net from 'node:net';
import { expect } from 'chai';
import { pino } from 'pino';
import { WebSocket } from 'ws';
import { ConnectionTable } from '../../src/transport/connection-table.js';
import { DEFAULT_LIMITS, type TransportLimits } from '../../src/transport/limits.js';
import type { Flow } from '../../src/transport/types.js';
import { WebSocketTransport } from '../../src/transport/websocket-transport.js';

/** The transport on its own, on a bare HTTP server: heartbeat, idle timeout, closing events. */
describe('transport/websocket-transport', () => {
  let server: http.Server;
  let port: number;
  let ws: WebSocketTransport | undefined;
  const table = new ConnectionTable();
  const closed: number[] = [];
  const messages: Array<{ data: string; flow: Flow }> = [];

  beforeEach(async () => {
    server = http.createServer((_q, r) => r.end());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    port = (server.address() as net.AddressInfo).port;
    closed.length = 0;
    messages.length = 0;
  });
  afterEach(async () => {
    await ws?.close();
    ws = undefined;
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  function start(limits: Partial<TransportLimits>, pingIntervalMs: number): void {
    ws = new WebSocketTransport(
      table,
      { ...DEFAULT_LIMITS, ...limits },
      { onMessage: (data, flow) => messages.push({ data: data.toString(), flow }), onConnectionClosed: (id) => closed.push(id) },
      pino({ level: 'silent' }),
      { protocol: 'ws', pingIntervalMs },
    );
    ws.attach(server);
  }

  async function client(autoPong = true): Promise<WebSocket> {
    const c = new WebSocket(`ws://127.0.0.1:${port}/`, ['sip'], { autoPong });
    await new Promise<void>((resolve, reject) => {
      c.once('open', () => resolve());
      c.once('error', reject);
    });
    c.on('error', () => {});
    return c;
  }

  const wait = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

  it('hands each frame up with its flow and reports the close', async () => {
    start({}, 10_000);
    const c = await client();
    c.send('OPTIONS sip:x SIP/2.0\r\n\r\n');
    await wait(30);
    expect(messages).to.have.length(1);
    const flow = messages[0]!.flow;
    expect(flow.protocol).to.equal('ws');
    expect(flow.remoteAddress).to.equal('127.0.0.1');
    expect(flow.localPort).to.equal(port);
    expect(table.get(flow.connectionId!)).to.not.equal(undefined);
    c.close();
    await wait(50);
    expect(closed).to.deep.equal([flow.connectionId]);
    expect(table.get(flow.connectionId!)).to.equal(undefined);
  });

  it('drops a peer that stops answering pings, keeps one that answers', async () => {
    start({ idleTimeoutMs: 60_000 }, 40);
    const alive = await client(true);
    const dead = await client(false);
    const deadClosed = new Promise<number>((r) => dead.once('close', (code) => r(code)));
    await deadClosed;
    await wait(20);
    expect(alive.readyState).to.equal(WebSocket.OPEN);
    expect(ws!.size).to.equal(1);
    alive.close();
  });

  it('pings its connections in slices spread over the interval, each once an interval', async () => {
    // 160 ms in 16 slices of 10 ms: 32 connections are pinged two at a time, not 32 at once.
    start({ idleTimeoutMs: 60_000 }, 160);
    const clients = await Promise.all(Array.from({ length: 32 }, () => client(true)));
    const pings: number[][] = clients.map(() => []);
    clients.forEach((c, i) => c.on('ping', () => pings[i]!.push(Date.now())));
    await wait(500);
    const firsts = pings.map((p) => p[0]!).sort((a, b) => a - b);
    expect(firsts.every((t) => t !== undefined)).to.equal(true);
    // One sweep of all of them would land within a few ms; slices spread them over ~150 ms.
    expect(firsts[firsts.length - 1]! - firsts[0]!).to.be.at.least(100);
    for (const p of pings) {
      expect(p.length, 'pinged about every 160 ms').to.be.within(2, 4);
    }
    clients.forEach((c) => c.close());
  });

  it('closes a connection that carries no SIP for the idle timeout, even if it answers pings', async () => {
    start({ idleTimeoutMs: 100 }, 40);
    const c = await client(true);
    const t0 = Date.now();
    await new Promise<void>((r) => c.once('close', () => r()));
    expect(Date.now() - t0).to.be.at.least(90);
  });

  it('refuses a handshake past limits.maxConnectionsPerSource with 503, and counts closed ones out', async () => {
    start({ maxConnectionsPerSource: 2 }, 10_000);
    const a = await client();
    const b = await client();
    const status = await new Promise<number>((resolve, reject) => {
      const c = new WebSocket(`ws://127.0.0.1:${port}/`, ['sip']);
      c.once('open', () => {
        c.terminate();
        resolve(101);
      });
      c.once('unexpected-response', (_q, res) => {
        resolve(res.statusCode ?? 0);
        c.terminate();
      });
      c.once('error', reject);
    });
    expect(status).to.equal(503);
    a.close();
    await new Promise<void>((r) => a.once('close', () => r()));
    await wait(20);
    const again = await client();
    expect(ws!.size).to.equal(2);
    again.close();
    b.close();
  });

  it('refuses sends to a closed connection and over the write backlog', async () => {
    start({ maxWriteBacklog: 1024 }, 10_000);
    const c = await client();
    c.send('hello');
    await wait(30);
    const conn = table.get(messages[0]!.flow.connectionId!)!;
    expect(() => conn.write(Buffer.alloc(2048, 0x41))).to.throw('write backlog full');
    conn.write(Buffer.from('SIP/2.0 200 OK\r\n\r\n'));
    c.close();
    await wait(50);
    expect(() => conn.write(Buffer.from('x'))).to.throw('connection closed');
  });
});
