import net from 'node:net';
import tls from 'node:tls';
import type { Logger } from 'pino';
import type { ConnectionTable, StreamConnection } from './connection-table.js';
import { SourceConnections, type TransportLimits } from './limits.js';
import { StreamFramer } from './stream-framer.js';
import { connectionFlow, type Flow } from './types.js';

export interface StreamTransportEvents {
  /** A whole SIP message cut from the stream. */
  onMessage(data: Buffer, flow: Flow): void;
  /** The framing broke or a message was too large; `head` is its header block when readable. */
  onFramingError(reason: 'too-large' | 'bad-content-length', head: Buffer | undefined, flow: Flow): void;
  onConnectionClosed(id: number): void;
}

export type TlsOptions = { key: Buffer; cert: Buffer; ca?: Buffer };

/**
 * How a TLS client checks the server it connects to (RFC 3261 §26.3.1, RFC 5922 §7): the
 * certificate must chain to a trusted CA and name the host. Our user agents pass this;
 * without it (the server's own outbound connections) nothing is verified, as before.
 */
export interface TlsClientOptions {
  /** Refuse a server whose certificate does not verify (false only for --insecure). */
  readonly verify: boolean;
  /** Trust anchors (PEM) instead of the system's. */
  readonly ca?: Buffer;
  /** The host name the certificate must carry (and SNI), when we connect to a resolved address. */
  readonly servername?: string;
}

/** tls.connect options for a connection to `address`. */
function tlsConnectOptions(address: string, client: TlsClientOptions | undefined): tls.ConnectionOptions {
  if (!client) return { rejectUnauthorized: false, servername: net.isIP(address) ? undefined : address };
  const name = client.servername ?? address;
  // RFC 6066 §3: SNI carries host names only; an address is checked against the certificate's IP entries.
  return { rejectUnauthorized: client.verify, ...(client.ca ? { ca: client.ca } : {}), ...(net.isIP(name) ? {} : { servername: name }) };
}

/** A read this large (a TLS record's 16 KB, or more) means more may be waiting: see `yieldAfter`. */
const YIELD_AFTER_BYTES = 16 * 1024;

/** A TCP (or TLS) socket wrapped as a StreamConnection with a framer and a bounded write backlog. */
class SocketConnection implements StreamConnection {
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  private readonly framer: StreamFramer;

  constructor(
    readonly id: number,
    readonly protocol: 'tcp' | 'tls',
    private readonly socket: net.Socket,
    private readonly limits: TransportLimits,
    listenPort: number,
  ) {
    this.remoteAddress = normalizeAddress(socket.remoteAddress ?? '');
    this.remotePort = socket.remotePort ?? 0;
    this.localAddress = normalizeAddress(socket.localAddress ?? '');
    // Via sent-by names the port we listen on, where new connections can reach us.
    this.localPort = listenPort || (socket.localPort ?? 0);
    this.framer = new StreamFramer(limits.maxMessageSize);
  }

  get flow(): Flow {
    return connectionFlow(this);
  }

  attach(events: StreamTransportEvents, log: Logger): void {
    const flow = this.flow;
    // Slowloris: once a message has begun, it must be whole within messageTimeoutMs, however
    // often bytes trickle in (the idle timeout alone restarts with every byte).
    let partial: NodeJS.Timeout | undefined;
    let closing = false;
    this.socket.on('close', () => clearTimeout(partial));
    this.socket.on('data', (chunk: Buffer) => {
      this.yieldAfter(chunk, () => closing);
      const events_ = this.framer.push(chunk);
      if (this.framer.buffered === 0) {
        clearTimeout(partial);
        partial = undefined;
      } else if (!partial) {
        partial = setTimeout(() => {
          log.info({ peer: `${flow.remoteAddress}:${flow.remotePort}`, buffered: this.framer.buffered }, 'message not complete in time, closing');
          this.socket.destroy();
        }, this.limits.messageTimeoutMs);
      }
      for (const ev of events_) {
        if (ev.kind === 'message') events.onMessage(ev.data, flow);
        else if (ev.kind === 'ping') this.tryWrite(Buffer.from('\r\n'));
        else {
          log.debug({ peer: `${flow.remoteAddress}:${flow.remotePort}`, reason: ev.reason }, 'stream framing error, closing');
          events.onFramingError(ev.reason, ev.head, flow);
          // Let a 513/400 written by the handler leave, read nothing more, and close for good soon.
          closing = true;
          this.socket.pause();
          this.socket.end();
          setTimeout(() => this.socket.destroy(), 1000).unref();
        }
      }
    });
  }

  /**
   * After a large read, reads no more from this connection until timers and the other
   * connections have had their turn: libuv reads up to 32 times 64 KB from a busy connection
   * in one go, a flood would hold the loop for a second, and neither overload control (run by
   * a timer) nor any other client would get a word in. TCP then holds the sender back.
   */
  private yieldAfter(chunk: Buffer, closing: () => boolean): void {
    if (chunk.length < YIELD_AFTER_BYTES || this.socket.isPaused()) return;
    this.socket.pause();
    setImmediate(() => {
      if (!closing() && !this.socket.destroyed) this.socket.resume();
    });
  }

  write(data: Buffer): void {
    if (this.socket.destroyed || !this.socket.writable) throw new Error('connection closed');
    if (this.socket.writableLength + data.length > this.limits.maxWriteBacklog) {
      throw new Error('write backlog full');
    }
    this.socket.write(data);
  }

  private tryWrite(data: Buffer): void {
    try {
      this.write(data);
    } catch {
      /* closing anyway */
    }
  }

  close(): void {
    this.socket.destroy();
  }
}

export function normalizeAddress(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

/** Listens for and opens TCP or TLS connections, registering each in the shared table. */
export class StreamTransport {
  private readonly servers: net.Server[] = [];
  private readonly sockets = new Set<net.Socket>();
  /** Accepted connections open per remote address. */
  private readonly perSource: SourceConnections;
  private listenPort = 0;

  constructor(
    readonly protocol: 'tcp' | 'tls',
    private readonly table: ConnectionTable,
    private readonly limits: TransportLimits,
    private readonly events: StreamTransportEvents,
    private readonly log: Logger,
    private readonly tlsOptions?: TlsOptions,
    private readonly tlsClient?: TlsClientOptions,
  ) {
    this.perSource = new SourceConnections(limits.maxConnectionsPerSource);
  }

  async listen(host: string, port: number, reusePort = false): Promise<number> {
    const onSocket = (socket: net.Socket): void => this.accept(socket);
    const server =
      this.protocol === 'tls'
        ? tls.createServer({ key: this.tlsOptions?.key, cert: this.tlsOptions?.cert, handshakeTimeout: this.limits.messageTimeoutMs }, onSocket)
        : net.createServer(onSocket);
    server.maxConnections = this.limits.maxConnections;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port, ipv6Only: host.includes(':'), ...(reusePort ? { reusePort } : {}) }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.log.error({ err }, `${this.protocol} listener error`));
    if (this.protocol === 'tls') server.on('tlsClientError', (err, socket) => {
        this.log.debug({ err: err.message }, 'TLS handshake failed');
        socket.destroy();
      });
    this.servers.push(server);
    const bound = (server.address() as net.AddressInfo).port;
    this.listenPort = bound;
    return bound;
  }

  private accept(socket: net.Socket): void {
    if (this.table.size >= this.limits.maxConnections) {
      this.log.warn({ peer: socket.remoteAddress }, 'connection limit reached, refusing connection');
      socket.destroy();
      return;
    }
    const source = normalizeAddress(socket.remoteAddress ?? '');
    if (!this.perSource.admit(source, socket)) {
      this.log.warn({ peer: source, open: this.limits.maxConnectionsPerSource }, 'connections per source limit reached, refusing connection');
      socket.destroy();
      return;
    }
    this.register(socket);
  }

  private register(socket: net.Socket): SocketConnection {
    const conn = new SocketConnection(this.table.allocateId(), this.protocol, socket, this.limits, this.listenPort);
    this.sockets.add(socket);
    this.table.add(conn);
    socket.setNoDelay(true);
    socket.setTimeout(this.limits.idleTimeoutMs, () => {
      this.log.debug({ peer: `${conn.remoteAddress}:${conn.remotePort}` }, 'idle connection closed');
      socket.destroy();
    });
    socket.on('error', (err) => this.log.debug({ err: err.message, peer: `${conn.remoteAddress}:${conn.remotePort}` }, 'connection error'));
    socket.on('close', () => {
      this.sockets.delete(socket);
      if (this.table.remove(conn.id)) this.events.onConnectionClosed(conn.id);
    });
    conn.attach(this.events, this.log);
    return conn;
  }

  /** Opens a connection to a peer (RFC 3261 §18.1.1: when none is open to it). */
  connect(address: string, port: number): Promise<StreamConnection> {
    if (this.table.size >= this.limits.maxConnections) return Promise.reject(new Error('connection limit reached'));
    return new Promise((resolve, reject) => {
      const opts = { host: address, port, timeout: this.limits.connectTimeoutMs };
      const socket =
        this.protocol === 'tls'
          ? tls.connect({ ...opts, ...tlsConnectOptions(address, this.tlsClient) })
          : net.connect(opts);
      const readyEvent = this.protocol === 'tls' ? 'secureConnect' : 'connect';
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error('connect timeout'));
      }, this.limits.connectTimeoutMs);
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      socket.once(readyEvent, () => {
        clearTimeout(timer);
        resolve(this.register(socket));
      });
    });
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await Promise.all(this.servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    this.servers.length = 0;
  }
}
