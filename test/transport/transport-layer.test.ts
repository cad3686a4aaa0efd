import dgram from 'node:dgram';
import net from 'node:net';
import { expect } from 'chai';
import { pino } from 'pino';
import { TransportLayer, type ListenSpec } from '../../src/transport/transport-layer.js';
import type { TransportLimits } from '../../src/transport/limits.js';
import type { Flow } from '../../src/transport/types.js';

const silent = pino({ level: 'silent' });

function sipMessage(callId: string, body = ''): string {
  return (
    `OPTIONS sip:example.com SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5999;branch=z9hG4bK${callId}\r\nMax-Forwards: 70\r\n` +
    `From: <sip:a@example.com>;tag=1\r\nTo: <sip:example.com>\r\nCall-ID: ${callId}\r\nCSeq: 1 OPTIONS\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
  );
}

function until(cond: () => boolean, timeoutMs = 2000): Promise<void> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const poll = (): void => {
      if (cond()) resolve();
      else if (Date.now() - started > timeoutMs) reject(new Error('condition not met in time'));
      else setTimeout(poll, 5);
    };
    poll();
  });
}

/** A TransportLayer on loopback that records what it hands up. */
class Harness {
  readonly messages: Array<{ text: string; flow: Flow }> = [];
  readonly framingErrors: Array<{ reason: string; head?: string; flow: Flow }> = [];
  readonly closed: number[] = [];
  readonly layer: TransportLayer;

  constructor(listen: ListenSpec[], limits: Partial<TransportLimits> = {}) {
    this.layer = new TransportLayer(
      { listen, limits, logger: silent, connectOnly: ['tcp'] },
      {
        onMessage: (data, flow) => void this.messages.push({ text: data.toString(), flow }),
        onFramingError: (reason, head, flow) => void this.framingErrors.push({ reason, head: head?.toString(), flow }),
        onConnectionClosed: (id) => void this.closed.push(id),
      },
    );
  }

  port(protocol: 'udp' | 'tcp', host = '127.0.0.1'): number {
    return this.layer.listeners.find((l) => l.protocol === protocol && l.host === host)!.port;
  }
}

describe('transport/TransportLayer over loopback', () => {
  const cleanups: Array<() => void | Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function start(listen: ListenSpec[], limits: Partial<TransportLimits> = {}): Promise<Harness> {
    const h = new Harness(listen, limits);
    await h.layer.start();
    cleanups.push(() => h.layer.stop());
    return h;
  }

  async function connect(port: number, host = '127.0.0.1'): Promise<{ socket: net.Socket; data: () => string; closed: Promise<void> }> {
    const socket = net.connect({ host, port });
    socket.on('error', () => {});
    await new Promise((r) => socket.once('connect', r));
    let received = '';
    socket.on('data', (d) => (received += d.toString()));
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    cleanups.push(() => void socket.destroy());
    return { socket, data: () => received, closed };
  }

  it('shares one ephemeral port between UDP and TCP on a host', async () => {
    const h = await start([{ protocol: 'udp', host: '127.0.0.1', port: 0 }, { protocol: 'tcp', host: '127.0.0.1', port: 0 }]);
    expect(h.port('udp')).to.be.above(0);
    expect(h.port('tcp')).to.equal(h.port('udp'));
  });

  it('receives over UDP and TCP on IPv4 and IPv6, with the flow of each', async () => {
    const h = await start([
      { protocol: 'udp', host: '127.0.0.1', port: 0 },
      { protocol: 'tcp', host: '127.0.0.1', port: 0 },
      { protocol: 'udp', host: '::1', port: 0 },
      { protocol: 'tcp', host: '::1', port: 0 },
    ]);
    for (const host of ['127.0.0.1', '::1']) {
      const udp = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
      await new Promise<void>((r) => udp.bind(0, host, () => r()));
      cleanups.push(() => new Promise<void>((r) => udp.close(() => r())));
      udp.send(sipMessage(`u-${host}`), h.port('udp', host), host);
      const tcp = await connect(h.port('tcp', host), host);
      tcp.socket.write(sipMessage(`t-${host}`));
      await until(() => h.messages.some((m) => m.text.includes(`Call-ID: t-${host}`)) && h.messages.some((m) => m.text.includes(`Call-ID: u-${host}`)));
      const u = h.messages.find((m) => m.text.includes(`Call-ID: u-${host}`))!.flow;
      expect(u).to.include({ protocol: 'udp', remoteAddress: host, remotePort: udp.address().port });
      expect(u.connectionId).to.equal(undefined);
      const t = h.messages.find((m) => m.text.includes(`Call-ID: t-${host}`))!.flow;
      expect(t).to.include({ protocol: 'tcp', remoteAddress: host, remotePort: tcp.socket.localPort });
      expect(t.connectionId).to.be.a('number');
    }
  });

  it('lets the loop turn between large reads of one busy connection (a flood does not hold it)', async () => {
    const h = await start([{ protocol: 'tcp', host: '127.0.0.1', port: 0 }]);
    const client = await connect(h.port('tcp'));
    // About 1 MB in one write: in the kernel before the server reads, which could take it
    // all (libuv reads up to 32 × 64 KB at once) before timers or anyone else ran.
    const total = 3000;
    client.socket.write(Array.from({ length: total }, (_, i) => sipMessage(`flood-${i}`, 'x'.repeat(100))).join(''));
    // Messages handed up between two turns of the loop (check phase to check phase).
    const steps: number[] = [];
    let seen = 0;
    await new Promise<void>((resolve) => {
      const turn = (): void => {
        steps.push(h.messages.length - seen);
        seen = h.messages.length;
        if (seen >= total) resolve();
        else setImmediate(turn);
      };
      setImmediate(turn);
    });
    // At most about one 64 KB read a turn (without the yield, several at once: 600, 1800).
    const perRead = Math.ceil(65536 / Buffer.byteLength(sipMessage('flood-0', 'x'.repeat(100))));
    expect(Math.max(...steps)).to.be.at.most(2 * perRead);
  });

  it('sends a request to a client down the connection it holds to us, found by its address (connection table)', async () => {
    const h = await start([{ protocol: 'tcp', host: '127.0.0.1', port: 0 }]);
    const client = await connect(h.port('tcp'));
    client.socket.write(sipMessage('hello'));
    await until(() => h.messages.length === 1);
    const flow = h.messages[0]!.flow;
    // No connection id: the table finds the open connection by the client's address and port.
    await h.layer.send(Buffer.from(sipMessage('notify-1')), { protocol: 'tcp', address: '127.0.0.1', port: flow.remotePort });
    // With the id of a connection that is gone, the address is used (RFC 5626 flow reuse with fallback).
    await h.layer.send(Buffer.from(sipMessage('notify-2')), { protocol: 'tcp', address: '127.0.0.1', port: flow.remotePort, connectionId: 9999 });
    await until(() => client.data().includes('Call-ID: notify-2'));
    expect(client.data()).to.include('Call-ID: notify-1');
    // No new connection was opened for either.
    expect(h.layer.connections.size).to.equal(1);
    expect(h.layer.sentBy({ protocol: 'tcp', address: '127.0.0.1', port: flow.remotePort, connectionId: flow.connectionId })).to.equal(`127.0.0.1:${h.port('tcp')}`);
  });

  it('opens a connection when none is open, and fails a connection-only send when it is gone', async () => {
    const h = await start([{ protocol: 'tcp', host: '127.0.0.1', port: 0 }]);
    const got: string[] = [];
    const peer = net.createServer((s) => s.on('data', (d) => got.push(d.toString())));
    await new Promise<void>((r) => peer.listen(0, '127.0.0.1', () => r()));
    cleanups.push(() => new Promise<void>((r) => peer.close(() => r())));
    const port = (peer.address() as net.AddressInfo).port;
    await h.layer.send(Buffer.from(sipMessage('out-1')), { protocol: 'tcp', address: '127.0.0.1', port });
    await until(() => got.join('').includes('Call-ID: out-1'));
    expect(h.layer.connections.size).to.equal(1);
    let err: Error | undefined;
    await h.layer.send(Buffer.from('x'), { protocol: 'tcp', address: '127.0.0.1', port: 1, connectionId: 4242, connectionOnly: true }).catch((e: Error) => (err = e));
    expect(err?.message).to.equal('connection closed');
    for (const c of [...h.layer.connections.all()]) c.close();
  });

  it('answers a CRLF CRLF keep-alive with one CRLF and frames messages around it (RFC 5626 §3.5.1)', async () => {
    const h = await start([{ protocol: 'tcp', host: '127.0.0.1', port: 0 }]);
    const c = await connect(h.port('tcp'));
    c.socket.write(sipMessage('k1') + '\r\n\r\n' + sipMessage('k2', 'body'));
    await until(() => h.messages.length === 2 && c.data().length > 0);
    expect(c.data()).to.equal('\r\n');
    expect(h.messages.map((m) => /Call-ID: (\S+)/.exec(m.text)![1])).to.deep.equal(['k1', 'k2']);
    expect(h.messages[1]!.text.endsWith('\r\n\r\nbody')).to.equal(true);
  });

  it('reports a TCP message over maxMessageSize with its head, then closes the connection', async () => {
    const h = await start([{ protocol: 'tcp', host: '127.0.0.1', port: 0 }], { maxMessageSize: 1000 });
    const c = await connect(h.port('tcp'));
    c.socket.write(sipMessage('big', 'x'.repeat(2000)));
    await c.closed;
    expect(h.framingErrors).to.have.length(1);
    expect(h.framingErrors[0]!.reason).to.equal('too-large');
    expect(h.framingErrors[0]!.head).to.include('Call-ID: big');
    expect(h.messages).to.have.length(0);
  });

  it('reports a UDP datagram over maxMessageSize with its head (for a 513) and hands nothing up', async () => {
    const h = await start([{ protocol: 'udp', host: '127.0.0.1', port: 0 }], { maxMessageSize: 1000 });
    const udp = dgram.createSocket('udp4');
    await new Promise<void>((r) => udp.bind(0, '127.0.0.1', () => r()));
    cleanups.push(() => new Promise<void>((r) => udp.close(() => r())));
    udp.send(sipMessage('bigudp', 'x'.repeat(2000)), h.port('udp'), '127.0.0.1');
    udp.send(Buffer.alloc(1500, 'y'), h.port('udp'), '127.0.0.1');
    udp.send(sipMessage('small'), h.port('udp'), '127.0.0.1');
    await until(() => h.messages.length === 1 && h.framingErrors.length === 2);
    expect(h.framingErrors[0]).to.deep.include({ reason: 'too-large' });
    expect(h.framingErrors[0]!.head).to.include('Call-ID: bigudp').and.not.include('xxx');
    expect(h.framingErrors[1]!.head, 'no header block in it').to.equal(undefined);
    expect(h.messages[0]!.text).to.include('Call-ID: small');
  });

  it('refuses connections over maxConnections', async () => {
    const h = await start([{ protocol: 'tcp', host: '127.0.0.1', port: 0 }], { maxConnections: 2 });
    const a = await connect(h.port('tcp'));
    const b = await connect(h.port('tcp'));
    await until(() => h.layer.connections.size === 2);
    const third = await connect(h.port('tcp'));
    await third.closed;
    expect(h.layer.connections.size).to.equal(2);
    a.socket.write(sipMessage('still-a'));
    b.socket.write(sipMessage('still-b'));
    await until(() => h.messages.length === 2);
  });

  it('closes a connection idle for idleTimeoutMs and reports it closed', async () => {
    const h = await start([{ protocol: 'tcp', host: '127.0.0.1', port: 0 }], { idleTimeoutMs: 150 });
    const c = await connect(h.port('tcp'));
    c.socket.write(sipMessage('then-silence'));
    await until(() => h.messages.length === 1);
    const id = h.messages[0]!.flow.connectionId!;
    await c.closed;
    await until(() => h.closed.includes(id));
    expect(h.layer.isOpen(id)).to.equal(false);
  });

  it('fails a send that would take a connection over maxWriteBacklog, and keeps the connection', async () => {
    const h = await start([{ protocol: 'tcp', host: '127.0.0.1', port: 0 }], { maxWriteBacklog: 1024 });
    const c = await connect(h.port('tcp'));
    c.socket.write(sipMessage('backlog'));
    await until(() => h.messages.length === 1);
    const flow = h.messages[0]!.flow;
    const dest = { protocol: 'tcp' as const, address: flow.remoteAddress, port: flow.remotePort, connectionId: flow.connectionId };
    let err: Error | undefined;
    await h.layer.send(Buffer.alloc(2048, 'z'), dest).catch((e: Error) => (err = e));
    expect(err?.message).to.equal('write backlog full');
    await h.layer.send(Buffer.from(sipMessage('fits')), dest);
    await until(() => c.data().includes('Call-ID: fits'));
    expect(h.layer.isOpen(flow.connectionId!)).to.equal(true);
  });

  it('refuses to send a message over maxMessageSize', async () => {
    const h = await start([{ protocol: 'udp', host: '127.0.0.1', port: 0 }], { maxMessageSize: 1000 });
    let err: Error | undefined;
    await h.layer.send(Buffer.alloc(1001), { protocol: 'udp', address: '127.0.0.1', port: 9 }).catch((e: Error) => (err = e));
    expect(err?.message).to.equal('message too large for transport');
  });
});
