import type { Logger } from 'pino';
import { ServiceUnavailableError } from '../core/services.js';
import type { Binding, BindingNode } from '../registrar/binding.js';
import { registrationView, type RegistrationView } from '../registrar/location-service.js';
import type { LocationDecision, LocationStore } from '../registrar/location-store.js';
import type { WallClock } from '../util/timers.js';
import { decodeBindings, encodeBindings } from './codec.js';
import { isConflict, unavailable, type ClusterHandle } from './nats-link.js';
import { token } from './names.js';

/** Tries of one decision before the REGISTER gets 503. */
const MAX_ATTEMPTS = 8;

/** How often this node's expired bindings are forgotten. */
const SWEEP_INTERVAL_MS = 60_000;

export interface ClusterLocationsOptions {
  readonly cluster: ClusterHandle;
  /** This node, as its bindings name it. */
  readonly node: BindingNode;
  readonly wallClock: WallClock;
  /** The transport's view of a stream connection of this node. */
  readonly isOpen: (connectionId: number) => boolean;
  readonly logger: Logger;
  readonly stats?: { writes: number; conflicts: number };
}

interface Entry {
  readonly bindings: Binding[];
  readonly revision: number;
}

/**
 * The location service of a cluster (DESIGN: "Past one machine"): one entry an
 * address-of-record in a JetStream key-value bucket, each binding with the node that holds
 * its flow (a REGISTER's connection or NAT binding lives where it arrived). Any node reads
 * it for a MESSAGE and sends through that node; a REGISTER at any node is decided on every
 * binding of the AoR (RFC 3261 §10.3: CSeq order, `*`, the 200 listing them all) and
 * written with compare-and-set on the entry's revision. Expiry is the time in each binding:
 * expired ones are skipped when read and dropped at the next write.
 */
export class ClusterLocations implements LocationStore {
  readonly wallClock: WallClock;
  /** Bindings whose flow this node holds, by AoR (admin views, closed connections). */
  private readonly mine = new Map<string, Map<string, Binding>>();
  /** Stream connection id → AoRs with a binding on it. */
  private readonly byConnection = new Map<number, Set<string>>();
  private readonly log: Logger;

  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly options: ClusterLocationsOptions) {
    this.wallClock = options.wallClock;
    this.log = options.logger;
    this.sweeper = setInterval(() => this.sweep(), SWEEP_INTERVAL_MS).unref();
  }

  get size(): number {
    const now = this.wallClock.nowMs();
    let n = 0;
    for (const m of this.mine.values()) for (const b of m.values()) if (b.expiresAt > now) n++;
    return n;
  }

  get aorCount(): number {
    return this.mine.size;
  }

  async bindings(aor: string): Promise<readonly Binding[]> {
    this.options.cluster.link.require();
    return (await this.read(aor)).bindings;
  }

  async lookup(aor: string): Promise<readonly Binding[]> {
    const now = this.wallClock.nowMs();
    const out: Binding[] = [];
    for (const b of await this.bindings(aor)) {
      if (!b.reachable || b.expiresAt <= now) continue;
      // A flow of this node is checked here; another node's, by that node when it sends.
      if (this.isMine(b) && b.flow.connectionId !== undefined && !this.options.isOpen(b.flow.connectionId)) continue;
      out.push(b);
    }
    return out.sort((a, b) => (b.q ?? 1) - (a.q ?? 1) || b.updatedAt - a.updatedAt);
  }

  async decide<R>(aor: string, decide: (current: readonly Binding[]) => LocationDecision<R>): Promise<R> {
    this.options.cluster.link.require();
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const entry = await this.read(aor);
      const d = decide(entry.bindings);
      const removes = new Set(d.remove ?? []);
      const puts = d.put ?? [];
      if (puts.length === 0 && removes.size === 0) return d.result;
      // A binding made here names this node: its flow is here.
      const stamped = puts.map((b) => ({ ...b, node: this.options.node }));
      const replaced = new Set(stamped.map((b) => b.key));
      const now = this.wallClock.nowMs();
      const next = [...entry.bindings.filter((b) => !removes.has(b.key) && !replaced.has(b.key) && b.expiresAt > now), ...stamped];
      try {
        await this.write(aor, next, entry.revision);
        this.remember(aor, next);
        return d.result;
      } catch (err) {
        if (!isConflict(err)) throw this.failed(err, aor);
        if (this.options.stats) this.options.stats.conflicts++;
      }
    }
    throw new ServiceUnavailableError('Registration Busy', 1);
  }

  markUnreachable(binding: Binding): void {
    void this.decide(binding.aor, (current) => {
      const b = current.find((x) => x.key === binding.key && x.reachable && sameFlow(x, binding));
      return { result: undefined, ...(b ? { put: [{ ...b, reachable: false }] } : {}) };
    }).catch((err: unknown) => this.log.warn({ err: (err as Error).message, aor: binding.aor }, 'cluster: binding not marked unreachable'));
  }

  connectionClosed(connectionId: number): void {
    const aors = this.byConnection.get(connectionId);
    if (!aors) return;
    this.byConnection.delete(connectionId);
    for (const aor of aors) {
      for (const b of this.mine.get(aor)?.values() ?? []) if (b.flow.connectionId === connectionId && b.reachable) this.markUnreachable(b);
    }
  }

  registrations(options: { aor?: string; limit?: number } = {}): RegistrationView[] {
    const now = this.wallClock.nowMs();
    const limit = options.limit ?? 1000;
    const out: RegistrationView[] = [];
    const aors = options.aor !== undefined ? [options.aor] : this.mine.keys();
    for (const aor of aors) {
      for (const b of this.mine.get(aor)?.values() ?? []) {
        if (b.expiresAt <= now) continue;
        if (out.length >= limit) return out;
        out.push(registrationView(b, now));
      }
    }
    return out;
  }

  /** Bindings of a cluster are never restored from the SQL store. */
  restore(): number {
    return 0;
  }

  setSink(): void {}

  close(): void {
    clearInterval(this.sweeper);
  }

  /** Forgets expired bindings of this node (the entry drops them at its next write). */
  private sweep(): void {
    const now = this.wallClock.nowMs();
    for (const [aor, m] of this.mine) {
      for (const [key, b] of m) if (b.expiresAt <= now) m.delete(key);
      if (m.size === 0) this.mine.delete(aor);
    }
  }

  private async read(aor: string): Promise<Entry> {
    let entry;
    try {
      const bindings = this.options.cluster.bucket('bindings');
      entry = await this.options.cluster.link.inTurn(() => bindings.get(token(aor)));
    } catch (err) {
      throw this.failed(err, aor);
    }
    if (!entry) return { bindings: [], revision: 0 };
    const now = this.wallClock.nowMs();
    let bindings: Binding[] = [];
    if (entry.operation === 'PUT') {
      try {
        bindings = decodeBindings(aor, entry.value);
      } catch (err) {
        this.log.error({ err, aor }, 'cluster: unreadable binding entry, taken as empty');
      }
    }
    return { bindings: bindings.filter((b) => b.expiresAt > now).map((b) => this.local(b)), revision: entry.revision };
  }

  private async write(aor: string, bindings: readonly Binding[], revision: number): Promise<void> {
    if (this.options.stats) this.options.stats.writes++;
    const value = encodeBindings(bindings);
    const kv = this.options.cluster.bucket('bindings');
    const key = token(aor);
    await this.options.cluster.link.inTurn(() => (revision === 0 ? kv.create(key, value) : kv.update(key, value, revision)));
  }

  /**
   * A binding as this node may use it: one this node made in an earlier run names a
   * connection of that run, which means nothing now (a stream flow is then unreachable).
   */
  private local(b: Binding): Binding {
    if (!b.node || b.node.name !== this.options.node.name || b.node.run === this.options.node.run || b.flow.connectionId === undefined) return b;
    const { connectionId: _old, ...flow } = b.flow;
    return { ...b, flow };
  }

  private isMine(b: Binding): boolean {
    return b.node?.name === this.options.node.name && b.node.run === this.options.node.run;
  }

  /** Keeps the bindings of `aor` whose flow is here (admin views, closed connections). */
  private remember(aor: string, bindings: readonly Binding[]): void {
    for (const b of this.mine.get(aor)?.values() ?? []) {
      const id = b.flow.connectionId;
      if (id !== undefined) this.byConnection.get(id)?.delete(aor);
    }
    const mine = bindings.filter((b) => this.isMine(b));
    if (mine.length === 0) {
      this.mine.delete(aor);
      return;
    }
    this.mine.set(aor, new Map(mine.map((b) => [b.key, b])));
    for (const b of mine) {
      const id = b.flow.connectionId;
      if (id === undefined) continue;
      let set = this.byConnection.get(id);
      if (!set) this.byConnection.set(id, (set = new Set()));
      set.add(aor);
    }
  }

  private failed(err: unknown, aor: string): ServiceUnavailableError {
    this.log.warn({ err: (err as Error).message, aor }, 'cluster: binding bucket not reachable');
    return unavailable(err);
  }
}

/** The same flow: the same node's run and connection, or the same source address. */
function sameFlow(a: Binding, b: Binding): boolean {
  return (
    a.node?.run === b.node?.run &&
    a.flow.connectionId === b.flow.connectionId &&
    a.flow.remoteAddress === b.flow.remoteAddress &&
    a.flow.remotePort === b.flow.remotePort
  );
}
