import dgram from 'node:dgram';
import type { Logger } from 'pino';
import { findHeaderEnd } from '../sip/parser.js';
import type { ReceiveDelayMonitor } from './receive-delay.js';
import { normalizeAddress } from './stream-transport.js';
import type { Flow } from './types.js';

const SOCKET_BUFFER_BYTES = 8 * 1024 * 1024;

/** A socket of ours that sends a listener the receive-delay probes (see receive-delay.ts). */
interface Prober {
  readonly socket: dgram.Socket;
  /** Its address and port as the listener sees them in a datagram's source. */
  readonly address: string;
  readonly port: number;
  readonly arrived: (stamp: number) => void;
}

interface Listener {
  readonly socket: dgram.Socket;
  readonly family: 4 | 6;
  readonly address: string;
  readonly port: number;
  prober?: Prober;
}

/** UDP listeners, one socket per listen address (IPv4 and IPv6 apart). */
export class UdpTransport {
  private readonly sockets: Listener[] = [];

  constructor(
    private readonly onMessage: (data: Buffer, flow: Flow) => void,
    private readonly maxMessageSize: number,
    private readonly log: Logger,
    /** A datagram over maxMessageSize: its header block when one is in it (for a 513). */
    private readonly onTooLarge?: (head: Buffer | undefined, flow: Flow) => void,
  ) {}

  async listen(host: string, port: number, reusePort = false): Promise<number> {
    const family = host.includes(':') ? 6 : 4;
    // Bursts (a NOTIFY fan-out's answers, a GC pause under load) overflow the default ~200 KB
    // receive buffer and the kernel drops datagrams, which the peers then retransmit after T1.
    // The kernel caps these at net.core.rmem_max / wmem_max.
    const socket = dgram.createSocket({
      type: family === 6 ? 'udp6' : 'udp4',
      ipv6Only: family === 6,
      reuseAddr: false,
      ...(reusePort ? { reusePort } : {}),
      recvBufferSize: SOCKET_BUFFER_BYTES,
      sendBufferSize: SOCKET_BUFFER_BYTES,
    });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind({ address: host, port }, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    const bound = socket.address().port;
    const listener: Listener = { socket, family, address: host, port: bound };
    socket.on('error', (err) => this.log.error({ err }, 'udp socket error'));
    socket.on('message', (data, rinfo) => {
      // Our own probe: from the probe socket's address and port, which only this process holds
      // (the kernel drops a datagram from outside that claims a local source address).
      const prober = listener.prober;
      if (prober && rinfo.port === prober.port && rinfo.address === prober.address && data.length === 8) {
        prober.arrived(data.readDoubleLE(0));
        return;
      }
      const flow: Flow = {
        protocol: 'udp',
        remoteAddress: normalizeAddress(rinfo.address),
        remotePort: rinfo.port,
        localAddress: host,
        localPort: bound,
      };
      if (data.length > this.maxMessageSize) {
        this.log.debug({ peer: `${rinfo.address}:${rinfo.port}`, size: data.length }, 'oversized datagram refused');
        // RFC 3261 §21.5.14: 513 when the headers can be read, so the client need not time out.
        const end = findHeaderEnd(data);
        this.onTooLarge?.(end && end.headEnd <= this.maxMessageSize ? data.subarray(0, end.headEnd) : undefined, flow);
        return;
      }
      this.onMessage(data, flow);
    });
    this.sockets.push(listener);
    return bound;
  }

  /**
   * Lets `monitor` time every listener's receive queue: a socket bound to the listener's own
   * address (loopback for a wildcard) sends it the probes. A listener that cannot be reached
   * that way (no IPv6 loopback, say) is left unprobed; the event-loop lag still covers it.
   */
  async probeWith(monitor: ReceiveDelayMonitor): Promise<void> {
    for (const listener of this.sockets) {
      if (listener.prober) continue;
      const address = listener.address === '0.0.0.0' || listener.address === '' ? '127.0.0.1' : listener.address === '::' ? '::1' : listener.address;
      const socket = dgram.createSocket({ type: listener.family === 6 ? 'udp6' : 'udp4', ipv6Only: listener.family === 6 });
      try {
        await new Promise<void>((resolve, reject) => {
          socket.once('error', reject);
          socket.bind({ address, port: 0 }, () => {
            socket.off('error', reject);
            resolve();
          });
        });
      } catch (err) {
        this.log.warn({ err: (err as Error).message, listener: `${listener.address}:${listener.port}` }, 'receive-delay probe not available for this listener');
        socket.close();
        continue;
      }
      socket.on('error', (err) => this.log.debug({ err: err.message }, 'receive-delay probe socket error'));
      socket.unref();
      const local = socket.address();
      const arrived = monitor.attach({
        sendProbe: (at) => {
          const stamp = Buffer.allocUnsafe(8);
          stamp.writeDoubleLE(at, 0);
          // A full receive buffer drops it: the monitor counts a probe not back as still queued.
          socket.send(stamp, listener.port, address, (err) => {
            if (err) this.log.debug({ err: err.message }, 'receive-delay probe not sent');
          });
        },
      });
      listener.prober = { socket, address: normalizeAddress(local.address), port: local.port, arrived };
    }
  }

  /** The socket to send from for a destination of this family (v4-mapped when only IPv6 listens). */
  send(data: Buffer, address: string, port: number): Promise<void> {
    const family = address.includes(':') ? 6 : 4;
    const entry = this.sockets.find((s) => s.family === family) ?? this.sockets[0];
    if (!entry) return Promise.reject(new Error('no UDP socket'));
    const target = entry.family === 6 && family === 4 ? `::ffff:${address}` : address;
    return new Promise((resolve, reject) => {
      entry.socket.send(data, port, target, (err) => (err ? reject(err) : resolve()));
    });
  }

  localFor(address: string): { address: string; port: number } | undefined {
    const family = address.includes(':') ? 6 : 4;
    const entry = this.sockets.find((s) => s.family === family) ?? this.sockets[0];
    return entry && { address: entry.address, port: entry.port };
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.prober?.socket.close();
    await Promise.all(this.sockets.map((s) => new Promise<void>((r) => s.socket.close(() => r()))));
    this.sockets.length = 0;
  }
}
