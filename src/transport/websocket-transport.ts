import { isUtf8 } from 'node:buffer';
import type http from 'node:http';
import type https from 'node:https';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import type { ConnectionTable, StreamConnection } from './connection-table.js';
import { SourceConnections, type TransportLimits } from './limits.js';
import { normalizeAddress } from './stream-transport.js';
import { connectionFlow, type Flow } from './types.js';

/** RFC 7118 §4.1: the WebSocket subprotocol a SIP client must ask for. */
export const SIP_SUBPROTOCOL = 'sip';

export interface WebSocketTransportEvents {
  /** One SIP message: RFC 7118 §5.1, one message per frame, text or binary. */
  onMessage(data: Buffer, flow: Flow): void;
  onConnectionClosed(id: number): void;
}

export interface WebSocketTransportOptions {
  readonly protocol: 'ws' | 'wss';
  /**
   * Origins (RFC 6454 serialisation, e.g. `https://app.example.com`) a browser may connect
   * from; empty allows any. A handshake without Origin comes from a non-browser client
   * (softphone, Node) and is allowed: Origin only guards against other sites' pages.
   */
  readonly allowedOrigins?: readonly string[];
  /** Request path that carries SIP (default `/`); upgrades to other paths are left to others. */
  readonly path?: string;
  /** How often every connection is pinged; a peer that missed the previous pong is dropped. */
  readonly pingIntervalMs?: number;
}

const DEFAULT_PING_INTERVAL_MS = 30_000;
/**
 * Connections are pinged in this many slices, one slice a tick, so each is still pinged once
 * an interval but 100,000 pings (and their pongs) do not all fall into one turn of the loop.
 */
const PING_SLICES = 16;

/** One WebSocket as a StreamConnection: frames out, bounded by the write backlog limit. */
class WebSocketConnection implements StreamConnection {
  /** A ping went out and no pong came back yet. */
  awaitingPong = false;
  /** Last SIP message in either direction (ms, Date.now()), for the idle timeout. */
  lastTraffic = Date.now();

  constructor(
    readonly id: number,
    readonly protocol: 'ws' | 'wss',
    readonly remoteAddress: string,
    readonly remotePort: number,
    readonly localAddress: string,
    readonly localPort: number,
    readonly socket: WebSocket,
    private readonly maxWriteBacklog: number,
  ) {}

  get flow(): Flow {
    return connectionFlow(this);
  }

  write(data: Buffer): void {
    if (this.socket.readyState !== this.socket.OPEN) throw new Error('connection closed');
    if (this.socket.bufferedAmount + data.length > this.maxWriteBacklog) throw new Error('write backlog full');
    this.lastTraffic = Date.now();
    // RFC 7118 §5.1: text frames for UTF-8 messages (what browsers expect); a body that is
    // not UTF-8 can only travel in a binary frame.
    this.socket.send(data, { binary: !isUtf8(data) });
  }

  close(): void {
    this.socket.terminate();
  }
}

/**
 * SIP over WebSocket (RFC 7118) on an HTTP server owned by someone else: it takes the
 * server's `upgrade` events for its path, never listens itself, and registers each
 * connection in the shared table so responses and requests to a WS flow go down it.
 */
export class WebSocketTransport {
  readonly protocol: 'ws' | 'wss';
  private readonly wss: WebSocketServer;
  private readonly allowedOrigins: ReadonlySet<string>;
  private readonly path: string;
  private readonly conns = new Set<WebSocketConnection>();
  /** The same connections by ping slice (id modulo the slice count). */
  private readonly slices: Array<Set<WebSocketConnection>>;
  private tick = 0;
  /** Open WebSockets per remote address (limits.maxConnectionsPerSource, as for TCP). */
  private readonly perSource: SourceConnections;
  private readonly servers: Array<{ server: http.Server | https.Server; listener: (req: http.IncomingMessage, socket: Duplex, head: Buffer) => void }> = [];
  private readonly sweep: NodeJS.Timeout;

  constructor(
    private readonly table: ConnectionTable,
    private readonly limits: TransportLimits,
    private readonly events: WebSocketTransportEvents,
    private readonly log: Logger,
    options: WebSocketTransportOptions,
  ) {
    this.protocol = options.protocol;
    this.allowedOrigins = new Set((options.allowedOrigins ?? []).map((o) => o.toLowerCase().replace(/\/$/, '')));
    this.path = options.path ?? '/';
    this.perSource = new SourceConnections(limits.maxConnectionsPerSource);
    // RFC 7118 §4.1: the server MUST NOT accept a handshake without `sip`; we refuse those
    // before the upgrade, so a chosen subprotocol is always `sip`.
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: limits.maxMessageSize,
      clientTracking: false,
      perMessageDeflate: false,
      handleProtocols: (protocols) => (protocols.has(SIP_SUBPROTOCOL) ? SIP_SUBPROTOCOL : false),
    });
    const interval = options.pingIntervalMs ?? Math.min(DEFAULT_PING_INTERVAL_MS, Math.floor(limits.idleTimeoutMs / 2));
    // Ticks of at least 10 ms: a short interval (tests) gets fewer slices.
    const count = Math.max(1, Math.min(PING_SLICES, Math.floor(interval / 10)));
    this.slices = Array.from({ length: count }, () => new Set<WebSocketConnection>());
    this.sweep = setInterval(() => this.heartbeat(), Math.max(10, Math.floor(interval / count)));
    this.sweep.unref();
  }

  /** Takes the `upgrade` events of an HTTP(S) server; other paths stay with other listeners. */
  attach(server: http.Server | https.Server): void {
    const listener = (req: http.IncomingMessage, socket: Duplex, head: Buffer): void => {
      if (this.handleUpgrade(req, socket, head)) return;
      // Nobody else takes upgrades on this server: answer rather than leave the socket hanging.
      if (server.listenerCount('upgrade') === 1) refuse(socket, 404, 'Not Found');
    };
    server.on('upgrade', listener);
    this.servers.push({ server, listener });
  }

  /** Handles one upgrade request; false when its path is not ours (the socket is untouched). */
  handleUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== this.path) return false;
    socket.on('error', () => {});
    const peer = `${req.socket.remoteAddress}:${req.socket.remotePort}`;
    const offered = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim().toLowerCase());
    if (!offered.includes(SIP_SUBPROTOCOL)) {
      this.log.debug({ peer }, 'WebSocket handshake without the sip subprotocol refused');
      refuse(socket, 400, 'Bad Request', 'the "sip" WebSocket subprotocol is required (RFC 7118)');
      return true;
    }
    const origin = req.headers.origin;
    if (origin !== undefined && this.allowedOrigins.size > 0 && !this.allowedOrigins.has(origin.toLowerCase().replace(/\/$/, ''))) {
      this.log.info({ peer, origin }, 'WebSocket origin not allowed');
      refuse(socket, 403, 'Forbidden', 'origin not allowed');
      return true;
    }
    if (this.table.size >= this.limits.maxConnections) {
      this.log.warn({ peer }, 'connection limit reached, refusing WebSocket');
      refuse(socket, 503, 'Service Unavailable');
      return true;
    }
    const source = normalizeAddress(req.socket.remoteAddress ?? '');
    // Counted from the handshake on, so handshakes in flight cannot pass the limit together.
    if (!this.perSource.admit(source, socket)) {
      this.log.warn({ peer, open: this.limits.maxConnectionsPerSource }, 'connections per source limit reached, refusing WebSocket');
      refuse(socket, 503, 'Service Unavailable', 'too many connections from this address');
      return true;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, req));
    return true;
  }

  private accept(ws: WebSocket, req: http.IncomingMessage): void {
    const s = req.socket;
    const conn = new WebSocketConnection(
      this.table.allocateId(),
      this.protocol,
      normalizeAddress(s.remoteAddress ?? ''),
      s.remotePort ?? 0,
      normalizeAddress(s.localAddress ?? ''),
      s.localPort ?? 0,
      ws,
      this.limits.maxWriteBacklog,
    );
    this.table.add(conn);
    this.conns.add(conn);
    const slice = this.slices[conn.id % this.slices.length];
    slice.add(conn);
    const flow = conn.flow;
    const peer = `${flow.remoteAddress}:${flow.remotePort}`;
    this.log.debug({ peer, id: conn.id, transport: this.protocol }, 'WebSocket connection open');
    ws.on('message', (data: RawData) => {
      conn.lastTraffic = Date.now();
      const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
      // RFC 7118 §5.1: each frame holds exactly one SIP message; a frame of only line ends
      // is a keep-alive some clients send, and carries nothing.
      // (every() stops at the first other byte, so a real message costs one step.)
      if (buf.every((b) => b === 0x0d || b === 0x0a)) return;
      this.events.onMessage(buf, flow);
    });
    ws.on('pong', () => {
      conn.awaitingPong = false;
    });
    ws.on('error', (err) => this.log.debug({ peer, err: err.message }, 'WebSocket error'));
    ws.on('close', (code) => {
      this.conns.delete(conn);
      slice.delete(conn);
      this.log.debug({ peer, id: conn.id, code }, 'WebSocket connection closed');
      if (this.table.remove(conn.id)) this.events.onConnectionClosed(conn.id);
    });
  }

  /** Pings the connections of one slice; drops those that missed the last pong or carried no SIP for the idle timeout. */
  private heartbeat(): void {
    const now = Date.now();
    const slice = this.slices[this.tick++ % this.slices.length];
    for (const conn of slice) {
      if (conn.awaitingPong || now - conn.lastTraffic > this.limits.idleTimeoutMs) {
        this.log.debug({ peer: `${conn.remoteAddress}:${conn.remotePort}`, idle: !conn.awaitingPong }, 'WebSocket peer gone or idle, closing');
        conn.close();
        continue;
      }
      conn.awaitingPong = true;
      try {
        conn.socket.ping();
      } catch {
        conn.close();
      }
    }
  }

  get size(): number {
    return this.conns.size;
  }

  async close(): Promise<void> {
    clearInterval(this.sweep);
    for (const { server, listener } of this.servers) server.off('upgrade', listener);
    this.servers.length = 0;
    for (const conn of [...this.conns]) conn.close();
    await new Promise<void>((r) => this.wss.close(() => r()));
  }
}

/** An HTTP answer to a handshake we will not upgrade, then the socket is closed. */
function refuse(socket: Duplex, status: number, reason: string, text = reason): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = `${text}\n`;
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}
