import type { TransportProtocol } from './types.js';

/** One open stream connection (TCP, TLS, later WebSocket), whichever side opened it. */
export interface StreamConnection {
  readonly id: number;
  readonly protocol: TransportProtocol;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  /** Queues bytes; throws when the write backlog is over its limit. */
  write(data: Buffer): void;
  close(): void;
}

function remoteKey(protocol: TransportProtocol, address: string, port: number): string {
  return `${protocol}|${address}|${port}`;
}

/**
 * Open connections by id and by remote address, so that a request to a client that
 * holds a connection to us goes down that connection (RFC 5626 §4.3 ideas; RFC 3261 §18.2.2).
 */
export class ConnectionTable {
  private nextId = 1;
  private readonly byId = new Map<number, StreamConnection>();
  private readonly byRemote = new Map<string, number>();

  allocateId(): number {
    return this.nextId++;
  }

  get size(): number {
    return this.byId.size;
  }

  add(conn: StreamConnection): void {
    this.byId.set(conn.id, conn);
    this.byRemote.set(remoteKey(conn.protocol, conn.remoteAddress, conn.remotePort), conn.id);
  }

  remove(id: number): StreamConnection | undefined {
    const conn = this.byId.get(id);
    if (!conn) return undefined;
    this.byId.delete(id);
    const key = remoteKey(conn.protocol, conn.remoteAddress, conn.remotePort);
    if (this.byRemote.get(key) === id) this.byRemote.delete(key);
    return conn;
  }

  get(id: number): StreamConnection | undefined {
    return this.byId.get(id);
  }

  findByRemote(protocol: TransportProtocol, address: string, port: number): StreamConnection | undefined {
    const id = this.byRemote.get(remoteKey(protocol, address, port));
    return id === undefined ? undefined : this.byId.get(id);
  }

  countByProtocol(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const c of this.byId.values()) out[c.protocol] = (out[c.protocol] ?? 0) + 1;
    return out;
  }

  all(): IterableIterator<StreamConnection> {
    return this.byId.values();
  }
}
