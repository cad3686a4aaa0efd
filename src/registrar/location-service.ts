import type { Logger } from 'pino';
import type { TimerHandle, Timers, WallClock } from '../util/timers.js';
import { remainingSeconds, type Binding, type BindingRef } from './binding.js';
import { NO_REGISTRATION_SINK, type RegistrationSink } from './registration-sink.js';
import { timersWallClock } from './wall-clock.js';
import type { BindingEvent, LocationDecision, LocationStore } from './location-store.js';

export interface LocationServiceOptions {
  readonly timers: Timers;
  /** Defaults to a wall clock that follows `timers`. */
  readonly wallClock?: WallClock;
  readonly sink?: RegistrationSink;
  /** The transport's view of a stream connection, checked again at lookup. */
  readonly isOpen?: (connectionId: number) => boolean;
  readonly logger?: Logger;
}

/** A registration as the admin API shows it. */
export interface RegistrationView {
  readonly aor: string;
  readonly contact: string;
  /** Seconds left. */
  readonly expires: number;
  readonly q?: number;
  readonly reachable: boolean;
  readonly transport: string;
  /** Where the REGISTER came from, `address:port`. */
  readonly source: string;
  readonly instanceId?: string;
  readonly regId?: number;
  readonly path: readonly string[];
  readonly userAgent?: string;
  readonly updatedAt: number;
  /** In a cluster, the node that holds its flow. */
  readonly node?: string;
}

interface Entry {
  binding: Binding;
  timer: TimerHandle;
}

/**
 * The location service (RFC 3261 §10): bindings of addresses-of-record to contacts, in
 * memory, each expiring on the shared timer structure; changes reported to a sink for
 * write-behind. It answers "where can I reach user X" for messaging and anything else.
 */
export class LocationService implements LocationStore {
  readonly wallClock: WallClock;
  private readonly timers: Timers;
  private sink: RegistrationSink;
  private readonly isOpen: (connectionId: number) => boolean;
  private readonly log?: Logger;
  private readonly byAor = new Map<string, Map<string, Entry>>();
  /** Stream connection id → entries whose flow it is (to mark them when it closes). */
  private readonly byConnection = new Map<number, Set<Entry>>();
  private count = 0;
  private readonly listeners: Array<(e: BindingEvent) => void> = [];

  constructor(options: LocationServiceOptions) {
    this.timers = options.timers;
    this.wallClock = options.wallClock ?? timersWallClock(options.timers);
    this.sink = options.sink ?? NO_REGISTRATION_SINK;
    this.isOpen = options.isOpen ?? (() => true);
    this.log = options.logger;
  }

  /**
   * Sends later changes to `sink` (the store opens after the services are built). Call
   * `restore` with what the store saved before any REGISTER is served.
   */
  setSink(sink: RegistrationSink): void {
    this.sink = sink;
  }

  /** `listener` hears of every change of a binding here (registration state, RFC 3680). */
  onBindingEvent(listener: (e: BindingEvent) => void): void {
    this.listeners.push(listener);
  }

  private tell(binding: Binding, event: BindingEvent['event']): void {
    for (const l of this.listeners) {
      try {
        l({ binding, event });
      } catch (err) {
        this.log?.error({ err, aor: binding.aor }, 'binding listener failed');
      }
    }
  }

  /** Number of live bindings. */
  get size(): number {
    return this.count;
  }

  /** Number of AoRs with at least one binding. */
  get aorCount(): number {
    return this.byAor.size;
  }

  /** Every current binding of an AoR, reachable or not (what a 200 to REGISTER lists). */
  bindings(aor: string): readonly Binding[] {
    const m = this.byAor.get(aor);
    return m ? [...m.values()].map((e) => e.binding) : [];
  }

  /**
   * Where `aor` can be reached now: its unexpired bindings whose flow is believed to work,
   * highest q first (RFC 3261 §16.6: a parallel search may still try them all), then the
   * most recently refreshed.
   */
  lookup(aor: string): readonly Binding[] {
    const m = this.byAor.get(aor);
    if (!m) return [];
    const now = this.wallClock.nowMs();
    const out: Binding[] = [];
    for (const { binding: b } of m.values()) {
      if (!b.reachable || b.expiresAt <= now) continue;
      if (b.flow.connectionId !== undefined && !this.isOpen(b.flow.connectionId)) continue;
      out.push(b);
    }
    return out.sort((a, b) => (b.q ?? 1) - (a.q ?? 1) || b.updatedAt - a.updatedAt);
  }

  /** In memory, a decision is applied at once: nothing else runs in between. */
  decide<R>(aor: string, decide: (current: readonly Binding[]) => LocationDecision<R>): R {
    const d = decide(this.bindings(aor));
    this.update(aor, d.put ?? [], d.remove ?? []);
    return d.result;
  }

  /**
   * Applies one REGISTER's outcome to an AoR at once: bindings to add or replace, keys to
   * remove. The registrar has checked it all first (RFC 3261 §10.3 step 7: all or nothing).
   */
  update(aor: string, put: readonly Binding[], remove: readonly string[]): void {
    for (const key of remove) this.delete(aor, key, 'unregistered');
    for (const b of put) this.put(b);
  }

  /**
   * Marks a binding unreachable after a request down its flow failed (RFC 5626 §4.4 ideas),
   * unless it was refreshed meanwhile (then it names a new flow). True when it changed.
   */
  markUnreachable(binding: Binding): boolean {
    const e = this.byAor.get(binding.aor)?.get(binding.key);
    if (!e || e.binding !== binding || !binding.reachable) return false;
    this.setBinding(e, { ...binding, reachable: false });
    this.sink.bindingChanged(e.binding);
    this.tell(e.binding, 'deactivated');
    this.log?.debug({ aor: binding.aor, contact: binding.contact }, 'binding marked unreachable');
    return true;
  }

  /** A stream connection closed: the bindings whose flow it was cannot be reached through it. */
  connectionClosed(connectionId: number): void {
    const set = this.byConnection.get(connectionId);
    if (!set) return;
    this.byConnection.delete(connectionId);
    for (const e of set) {
      if (!e.binding.reachable) continue;
      e.binding = { ...e.binding, reachable: false };
      this.sink.bindingChanged(e.binding);
      this.tell(e.binding, 'deactivated');
    }
  }

  /**
   * Loads bindings saved before a restart. Expired ones are dropped. Connection ids from
   * the old process mean nothing now: a binding that relied on its connection stays
   * unreachable until the client registers again; one routed by Path or by its contact
   * address stays reachable. Returns the number restored.
   */
  restore(bindings: Iterable<Binding>): number {
    const now = this.wallClock.nowMs();
    let n = 0;
    for (const b of bindings) {
      if (b.expiresAt <= now) continue;
      const connectionBound = b.flow.protocol !== 'udp' && b.path.length === 0;
      const { connectionId: _old, ...flow } = b.flow;
      this.put({ ...b, flow, reachable: b.reachable && !connectionBound }, false);
      n++;
    }
    return n;
  }

  /** Admin view: registrations, optionally of one AoR, bounded by `limit`. */
  registrations(options: { aor?: string; limit?: number } = {}): RegistrationView[] {
    const now = this.wallClock.nowMs();
    const limit = options.limit ?? 1000;
    const out: RegistrationView[] = [];
    const aors = options.aor !== undefined ? [options.aor] : this.byAor.keys();
    for (const aor of aors) {
      for (const { binding: b } of this.byAor.get(aor)?.values() ?? []) {
        if (out.length >= limit) return out;
        out.push(registrationView(b, now));
      }
    }
    return out;
  }

  /** Cancels every expiry timer (server stop); the bindings stay readable. */
  close(): void {
    for (const m of this.byAor.values()) for (const e of m.values()) this.timers.cancel(e.timer);
  }

  private put(b: Binding, report = true): void {
    let m = this.byAor.get(b.aor);
    if (!m) {
      m = new Map();
      this.byAor.set(b.aor, m);
    }
    const e = m.get(b.key);
    // RFC 3680 §5.1.2: a contact that was not active (new, or its flow had dropped) is registered again.
    const event = e?.binding.reachable ? 'refreshed' : 'registered';
    if (e) {
      this.timers.cancel(e.timer);
      this.setBinding(e, b);
      e.timer = this.schedule(b);
    } else {
      const entry: Entry = { binding: b, timer: this.schedule(b) };
      m.set(b.key, entry);
      this.index(entry);
      this.count++;
    }
    if (report) {
      this.sink.bindingChanged(b);
      this.tell(b, event);
    }
  }

  private delete(aor: string, key: string, event: BindingEvent['event']): void {
    const m = this.byAor.get(aor);
    const e = m?.get(key);
    if (!m || !e) return;
    this.timers.cancel(e.timer);
    this.unindex(e);
    m.delete(key);
    if (m.size === 0) this.byAor.delete(aor);
    this.count--;
    this.sink.bindingRemoved({ aor, key } satisfies BindingRef);
    this.tell(e.binding, event);
  }

  private schedule(b: Binding): TimerHandle {
    const delay = Math.max(0, b.expiresAt - this.wallClock.nowMs());
    return this.timers.schedule(delay, this.expire, b);
  }

  /** RFC 3261 §10.2.1: a binding not refreshed within its expiration interval is removed (one function for every timer). */
  private readonly expire = (b: Binding): void => {
    const e = this.byAor.get(b.aor)?.get(b.key);
    if (!e || e.binding.expiresAt !== b.expiresAt) return;
    this.log?.debug({ aor: b.aor, contact: b.contact }, 'binding expired');
    this.delete(b.aor, b.key, 'expired');
  };

  /** Replaces the binding of an entry, keeping the connection index in step. */
  private setBinding(e: Entry, b: Binding): void {
    if (e.binding.flow.connectionId !== b.flow.connectionId) {
      this.unindex(e);
      e.binding = b;
      this.index(e);
    } else e.binding = b;
  }

  private index(e: Entry): void {
    const id = e.binding.flow.connectionId;
    if (id === undefined) return;
    let set = this.byConnection.get(id);
    if (!set) {
      set = new Set();
      this.byConnection.set(id, set);
    }
    set.add(e);
  }

  private unindex(e: Entry): void {
    const id = e.binding.flow.connectionId;
    if (id === undefined) return;
    const set = this.byConnection.get(id);
    if (!set) return;
    set.delete(e);
    if (set.size === 0) this.byConnection.delete(id);
  }
}

/** A binding as the admin API shows it. */
export function registrationView(b: Binding, now: number): RegistrationView {
  return {
    aor: b.aor,
    contact: b.contact,
    expires: remainingSeconds(b, now),
    q: b.q,
    reachable: b.reachable,
    transport: b.flow.protocol,
    source: `${b.flow.remoteAddress}:${b.flow.remotePort}`,
    instanceId: b.instanceId,
    regId: b.regId,
    path: b.path,
    userAgent: b.userAgent,
    updatedAt: b.updatedAt,
    ...(b.node ? { node: b.node.name } : {}),
  };
}
