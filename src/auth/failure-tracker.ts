import type { WallClock } from '../util/timers.js';

export interface FailureLimits {
  /** Failures counted within this window. */
  readonly windowMs: number;
  /** At this many failures in the window the key is blocked... */
  readonly threshold: number;
  /** ...for this long. */
  readonly blockMs: number;
  /** Keys remembered at once (a bound on memory); the least recently failed are forgotten first. */
  readonly maxKeys?: number;
}

interface Entry {
  count: number;
  windowStartMs: number;
  blockedUntilMs: number;
  /** With `failDistinct`: the members counted in this window (at most `threshold` of them). */
  seen?: Set<string>;
}

/**
 * Counts failed authentication attempts per key (a source and user, a source, a user) in a
 * fixed window, and blocks a key that reaches the threshold for a while. Memory is bounded
 * by `maxKeys` (least recently failed forgotten first) and, for distinct counting, by
 * `threshold` members a key.
 */
export class FailureTracker {
  private readonly entries = new Map<string, Entry>();
  private readonly maxKeys: number;

  constructor(private readonly limits: FailureLimits, private readonly wallClock: WallClock) {
    this.maxKeys = limits.maxKeys ?? 100_000;
  }

  get size(): number {
    return this.entries.size;
  }

  /** Milliseconds the key stays blocked, or 0. */
  blockedFor(key: string): number {
    const e = this.entries.get(key);
    if (!e) return 0;
    return Math.max(0, e.blockedUntilMs - this.wallClock.nowMs());
  }

  /** Failures (or distinct members) in the current window. */
  count(key: string): number {
    const e = this.entries.get(key);
    if (!e || this.wallClock.nowMs() - e.windowStartMs > this.limits.windowMs) return 0;
    return e.count;
  }

  /** Records a failure; true when this one made the key blocked. */
  fail(key: string): boolean {
    return this.record(key, undefined);
  }

  /**
   * Records a failure of `member` under `key`, counted once per member a window (distinct
   * users failing from one source); true when this one made the key blocked.
   */
  failDistinct(key: string, member: string): boolean {
    return this.record(key, member);
  }

  private record(key: string, member: string | undefined): boolean {
    const now = this.wallClock.nowMs();
    let e = this.entries.get(key);
    if (e && now - e.windowStartMs > this.limits.windowMs && e.blockedUntilMs <= now) e = undefined;
    this.entries.delete(key); // re-inserted last: the map's order is least recently failed first
    if (!e) {
      while (this.entries.size >= this.maxKeys) this.entries.delete(this.entries.keys().next().value!);
      e = { count: 0, windowStartMs: now, blockedUntilMs: 0 };
    }
    this.entries.set(key, e);
    if (member !== undefined) {
      e.seen ??= new Set();
      if (e.seen.has(member)) return false;
      e.seen.add(member);
    }
    e.count++;
    if (e.count >= this.limits.threshold && e.blockedUntilMs <= now) {
      e.blockedUntilMs = now + this.limits.blockMs;
      // A block starts a new window: the key must fail again `threshold` times to be blocked again.
      e.count = 0;
      e.seen = undefined;
      e.windowStartMs = now + this.limits.blockMs;
      return true;
    }
    return false;
  }

  /** Keys blocked now (a walk over at most `maxKeys` entries: for scrapes, not the hot path). */
  blockedCount(): number {
    const now = this.wallClock.nowMs();
    let n = 0;
    for (const e of this.entries.values()) if (e.blockedUntilMs > now) n++;
    return n;
  }

  reset(key: string): void {
    this.entries.delete(key);
  }
}
