import type { WallClock } from '../util/timers.js';

export interface FailureLimits {
  /** Failures counted within this window. */
  readonly windowMs: number;
  /** At this many failures in the window the key is blocked... */
  readonly threshold: number;
  /** ...for this long. */
  readonly blockMs: number;
  /** Keys remembered at once (a bound on memory); the oldest are forgotten first. */
  readonly maxKeys?: number;
}

interface Entry {
  count: number;
  windowStartMs: number;
  blockedUntilMs: number;
}

/**
 * Counts failed authentication attempts per key (a source address, a user) in a fixed
 * window, and blocks a key that reaches the threshold for a while.
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

  /** Failures in the current window. */
  count(key: string): number {
    const e = this.entries.get(key);
    if (!e || this.wallClock.nowMs() - e.windowStartMs > this.limits.windowMs) return 0;
    return e.count;
  }

  /** Records a failure; true when this one made the key blocked. */
  fail(key: string): boolean {
    const now = this.wallClock.nowMs();
    let e = this.entries.get(key);
    if (e && now - e.windowStartMs > this.limits.windowMs && e.blockedUntilMs <= now) {
      this.entries.delete(key);
      e = undefined;
    }
    if (!e) {
      while (this.entries.size >= this.maxKeys) this.entries.delete(this.entries.keys().next().value!);
      e = { count: 0, windowStartMs: now, blockedUntilMs: 0 };
      this.entries.set(key, e);
    }
    e.count++;
    if (e.count >= this.limits.threshold && e.blockedUntilMs <= now) {
      e.blockedUntilMs = now + this.limits.blockMs;
      // A block starts a new window: the key must fail again `threshold` times to be blocked again.
      e.count = 0;
      e.windowStartMs = now + this.limits.blockMs;
      return true;
    }
    return false;
  }

  reset(key: string): void {
    this.entries.delete(key);
  }
}
