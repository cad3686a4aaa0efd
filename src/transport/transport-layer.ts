import dgram from 'node:dgram';
import os from 'node:os';
import net from 'node:net';
import type http from 'node:http';
import type https from 'node:https';
import type { Logger } from 'pino';
import { ConnectionTable } from './connection-table.js';
import { DEFAULT_LIMITS, type TransportLimits } from './limits.js';
import type { ReceiveDelayMonitor } from './receive-delay.js';
import { StreamTransport, type TlsClientOptions, type TlsOptions } from './stream-transport.js';
import type { Destination, Flow, MessageSender } from './types.js';
import { UdpTransport } from './udp-transport.js';
import { WebSocketTransport, type WebSocketTransportOptions } from './websocket-transport.js';

export interface ListenSpec {
  readonly protocol: 'udp' | 'tcp' | 'tls';
  readonly host: string;
  /** 0 picks a free port (shared by UDP and TCP on the same host when possible). */
  readonly port: number;
  /**
   * SO_REUSEPORT: several processes (workers) bind the same port and the kernel spreads
   * clients over them, keeping one client's datagrams and connections on one of them.
   */
  readonly reusePort?: boolean;
}

export interface ListenerInfo {
  readonly protocol: 'udp' | 'tcp' | 'tls' | 'ws' | 'wss';
  readonly host: string;
  readonly port: number;
}

export interface TransportLayerOptions {
  readonly listen: readonly ListenSpec[];
  readonly limits?: Partial<TransportLimits>;
  readonly tls?: TlsOptions;
  /** Host to put in Via/Contact when listening on a wildcard address. */
  readonly advertisedHost?: string;
  /**
   * Stream transports that only open connections and never listen (a client: our user
   * agents over TCP or TLS need no listener and no certificate).
   */
  readonly connectOnly?: ReadonlyArray<'tcp' | 'tls'>;
  /** How connections we open over TLS check the server's certificate (our user agents verify it). */
  readonly tlsClient?: TlsClientOptions;
  readonly logger: Logger;
}

export interface TransportEvents {
  onMessage(data: Buffer, flow: Flow): void;
  onFramingError(reason: 'too-large' | 'bad-content-length', head: Buffer | undefined, flow: Flow): void;
  onConnectionClosed(id: number): void;
}

const WILDCARDS = new Set(['0.0.0.0', '::', '']);

/**
 * Every listener and the connection table behind one MessageSender: the transaction
 * layer and services send to a Destination and never see a socket.
 */
export class TransportLayer implements MessageSender {
  readonly connections = new ConnectionTable();
  readonly limits: TransportLimits;
  private udp?: UdpTransport;
  private readonly streams = new Map<'tcp' | 'tls', StreamTransport>();
  private readonly websockets: WebSocketTransport[] = [];
  private readonly bound: ListenerInfo[] = [];
  private readonly log: Logger;

  constructor(private readonly options: TransportLayerOptions, private readonly events: TransportEvents) {
    this.limits = { ...DEFAULT_LIMITS, ...options.limits };
    this.log = options.logger;
  }

  get listeners(): readonly ListenerInfo[] {
    return this.bound;
  }

  /** Another transport (WebSocket) shares the connection table; it reports its listener here. */
  addListenerInfo(info: ListenerInfo): void {
    this.bound.push(info);
  }

  /**
   * SIP over WebSocket (RFC 7118) on an HTTP(S) server someone else listens with: its
   * connections join the same table, so sends, `isOpen` and connection-closed events
   * work for WS flows as for TCP ones.
   */
  attachWebSocket(server: http.Server | https.Server, options: WebSocketTransportOptions): WebSocketTransport {
    const ws = new WebSocketTransport(this.connections, this.limits, this.events, this.log, options);
    ws.attach(server);
    this.websockets.push(ws);
    return ws;
  }

  async start(): Promise<readonly ListenerInfo[]> {
    for (const protocol of this.options.connectOnly ?? []) {
      if (!this.streams.has(protocol)) this.streams.set(protocol, new StreamTransport(protocol, this.connections, this.limits, this.events, this.log, this.options.tls, this.options.tlsClient));
    }
    const portByHost = new Map<string, number>();
    for (const spec of this.options.listen) {
      // Port 0 for UDP and TCP on one host: a port free for both, so that they share it.
      if (spec.port === 0 && spec.protocol !== 'tls' && !portByHost.has(spec.host) && this.sharesPort(spec.host)) {
        portByHost.set(spec.host, await freeUdpTcpPort(spec.host));
      }
      const wanted = spec.port === 0 ? (spec.protocol === 'tls' ? 0 : portByHost.get(spec.host) ?? 0) : spec.port;
      const port = await this.listenOne(spec, wanted);
      if (spec.port === 0 && spec.protocol !== 'tls') portByHost.set(spec.host, port);
      this.bound.push({ protocol: spec.protocol, host: spec.host, port });
    }
    return this.bound;
  }

  private sharesPort(host: string): boolean {
    const on = this.options.listen.filter((l) => l.host === host && l.port === 0);
    return on.some((l) => l.protocol === 'udp') && on.some((l) => l.protocol === 'tcp');
  }

  private async listenOne(spec: ListenSpec, port: number): Promise<number> {
    if (spec.protocol === 'udp') {
      this.udp ??= new UdpTransport(this.events.onMessage, this.limits.maxMessageSize, this.log, (head, flow) => this.events.onFramingError('too-large', head, flow));
      return this.udp.listen(spec.host, port, spec.reusePort === true);
    }
    let stream = this.streams.get(spec.protocol);
    if (!stream) {
      if (spec.protocol === 'tls' && !this.options.tls) throw new Error('TLS listener needs tls.cert and tls.key');
      stream = new StreamTransport(spec.protocol, this.connections, this.limits, this.events, this.log, this.options.tls, this.options.tlsClient);
      this.streams.set(spec.protocol, stream);
    }
    return stream.listen(spec.host, port, spec.reusePort === true);
  }

  /** Lets `monitor` time the UDP listeners' receive queues (after `start`). */
  async probeReceiveQueues(monitor: ReceiveDelayMonitor): Promise<void> {
    await this.udp?.probeWith(monitor);
  }

  async stop(): Promise<void> {
    await this.udp?.close();
    for (const s of this.streams.values()) await s.close();
    for (const w of this.websockets) await w.close();
    for (const c of [...this.connections.all()]) c.close();
  }

  isOpen(connectionId: number): boolean {
    return this.connections.get(connectionId) !== undefined;
  }

  async send(data: Buffer, dest: Destination): Promise<void> {
    if (data.length > this.limits.maxMessageSize) throw new Error('message too large for transport');
    if (dest.protocol === 'udp') {
      if (!this.udp) throw new Error('no UDP transport');
      return this.udp.send(data, dest.address, dest.port);
    }
    let conn = dest.connectionId !== undefined ? this.connections.get(dest.connectionId) : undefined;
    conn ??= this.connections.findByRemote(dest.protocol, dest.address, dest.port);
    if (!conn) {
      if (dest.connectionOnly) throw new Error('connection closed');
      const stream = dest.protocol === 'tcp' || dest.protocol === 'tls' ? this.streams.get(dest.protocol) : undefined;
      if (!stream) throw new Error(`no ${dest.protocol} transport to open a connection`);
      conn = await stream.connect(dest.address, dest.port);
    }
    conn.write(data);
  }

  /** RFC 3261 §18.1.1: the sent-by of our Via for a message to `dest`. */
  sentBy(dest: Destination): string {
    const conn =
      (dest.connectionId !== undefined ? this.connections.get(dest.connectionId) : undefined) ??
      (dest.protocol !== 'udp' ? this.connections.findByRemote(dest.protocol, dest.address, dest.port) : undefined);
    if (conn) return hostPort(this.advertise(conn.localAddress, dest.address), conn.localPort);
    const listener = this.bound.find((l) => l.protocol === dest.protocol) ?? this.bound[0];
    const local = dest.protocol === 'udp' ? this.udp?.localFor(dest.address) : undefined;
    const address = local?.address ?? listener?.host ?? '0.0.0.0';
    const port = local?.port ?? listener?.port ?? 5060;
    return hostPort(this.advertise(address, dest.address), port);
  }

  /** A host others can reach us at: the configured one, else the listen address, else an interface address. */
  advertise(localAddress: string, towards: string): string {
    if (this.options.advertisedHost) return this.options.advertisedHost;
    if (!WILDCARDS.has(localAddress)) return localAddress;
    const v6 = towards.includes(':');
    if (towards === '127.0.0.1' || towards.startsWith('127.') || towards === '::1') return v6 ? '::1' : '127.0.0.1';
    for (const list of Object.values(os.networkInterfaces())) {
      for (const a of list ?? []) if (!a.internal && (a.family === 'IPv6') === v6) return a.address;
    }
    return v6 ? '::1' : '127.0.0.1';
  }
}

/**
 * An ephemeral port free on `host` for both UDP and TCP. The kernel picks a UDP port
 * without looking at TCP, where an outgoing connection may hold the same number: a TCP
 * listen on it then fails with EADDRINUSE. Probe both, and try again on a clash.
 */
export async function freeUdpTcpPort(host: string): Promise<number> {
  const v6 = host.includes(':');
  for (let attempt = 0; ; attempt++) {
    const server = net.createServer();
    const port = await new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port: 0, ipv6Only: v6 }, () => resolve((server.address() as net.AddressInfo).port));
    });
    const socket = dgram.createSocket({ type: v6 ? 'udp6' : 'udp4', ipv6Only: v6 });
    const free = await new Promise<boolean>((resolve) => {
      socket.once('error', () => resolve(false));
      socket.bind({ address: host, port }, () => resolve(true));
    });
    await new Promise<void>((r) => server.close(() => r()));
    await new Promise<void>((r) => {
      try {
        socket.close(() => r());
      } catch {
        r(); // never bound
      }
    });
    if (free || attempt >= 20) return port;
  }
}

export function hostPort(host: string, port: number): string {
  return net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}
