/**
 * One timer structure for the whole server (DESIGN: never a setTimeout per object):
 * a binary min-heap of deadlines driven by a single Node timer, or by hand in tests.
 * Cancelled entries are dropped lazily when they reach the top, and the heap is
 * compacted when they outnumber live ones.
 */
export interface Clock {
  /** Milliseconds, monotonic for timers. */
  now(): number;
}

export interface TimerHandle {
  readonly at: number;
  cancelled: boolean;
}

export interface Timers {
  readonly clock: Clock;
  schedule(delayMs: number, fn: () => void): TimerHandle;
  /**
   * `fn(arg)` at the deadline. With one `fn` shared by many timers (a method bound once), a
   * timer is one entry, not an entry and a closure with its context: what 100,000
   * publications or subscriptions hold on the heap, and what a major collection walks.
   */
  schedule<T>(delayMs: number, fn: (arg: T) => void, arg: T): TimerHandle;
  cancel(handle: TimerHandle | undefined): void;
  /** Live timers (for metrics and tests). */
  readonly size: number;
}

interface Entry extends TimerHandle {
  seq: number;
  fn: (arg: unknown) => void;
  arg: unknown;
}

const NOTHING = (): void => {};

export class TimerHeap implements Timers {
  private heap: Entry[] = [];
  private seq = 0;
  private live = 0;
  private armedAt = Infinity;
  private nodeTimer: NodeJS.Timeout | undefined;
  private readonly realTime: boolean;
  /** Called when a timer callback throws; the heap itself goes on. */
  onError: (err: unknown) => void = () => {};

  constructor(readonly clock: Clock = { now: () => performance.now() }, options: { manual?: boolean } = {}) {
    this.realTime = !options.manual;
  }

  get size(): number {
    return this.live;
  }

  schedule(delayMs: number, fn: () => void): TimerHandle;
  schedule<T>(delayMs: number, fn: (arg: T) => void, arg: T): TimerHandle;
  schedule(delayMs: number, fn: (arg: unknown) => void, arg?: unknown): TimerHandle {
    const e: Entry = { at: this.clock.now() + Math.max(0, delayMs), seq: this.seq++, fn, arg, cancelled: false };
    this.push(e);
    this.live++;
    if (this.realTime && e.at < this.armedAt) this.arm();
    return e;
  }

  cancel(handle: TimerHandle | undefined): void {
    if (!handle || handle.cancelled) return;
    handle.cancelled = true;
    // The entry waits in the heap until it reaches the top or a compaction; its callback
    // (a closure over a whole transaction, say) must not wait with it.
    (handle as Entry).fn = NOTHING;
    (handle as Entry).arg = undefined;
    this.live--;
    if (this.heap.length > 1024 && this.heap.length > 2 * this.live) this.compact();
  }

  /** Runs every timer due at `now`, in deadline order (ties in scheduling order). */
  runDue(now = this.clock.now()): number {
    let ran = 0;
    while (this.heap.length > 0) {
      const top = this.heap[0]!;
      if (top.cancelled) {
        this.pop();
        continue;
      }
      if (top.at > now) break;
      this.pop();
      top.cancelled = true;
      this.live--;
      ran++;
      const fn = top.fn;
      const arg = top.arg;
      top.fn = NOTHING;
      top.arg = undefined;
      try {
        fn(arg);
      } catch (err) {
        this.onError(err);
      }
    }
    return ran;
  }

  /** Time of the next live deadline, or undefined. */
  nextDeadline(): number | undefined {
    while (this.heap.length > 0 && this.heap[0]!.cancelled) this.pop();
    return this.heap[0]?.at;
  }

  /** Stops the Node timer (the heap keeps its entries). */
  stop(): void {
    if (this.nodeTimer) clearTimeout(this.nodeTimer);
    this.nodeTimer = undefined;
    this.armedAt = Infinity;
  }

  private arm(): void {
    const next = this.nextDeadline();
    if (this.nodeTimer) clearTimeout(this.nodeTimer);
    this.nodeTimer = undefined;
    this.armedAt = Infinity;
    if (next === undefined) return;
    this.armedAt = next;
    const delay = Math.max(0, Math.min(next - this.clock.now(), 2 ** 31 - 1));
    this.nodeTimer = setTimeout(() => {
      this.nodeTimer = undefined;
      this.armedAt = Infinity;
      this.runDue();
      this.arm();
    }, Math.ceil(delay));
    this.nodeTimer.unref();
  }

  private less(a: Entry, b: Entry): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  private push(e: Entry): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop()!;
    if (h.length === 0) return;
    h[0] = last;
    this.siftDown(h, 0);
  }

  private siftDown(h: Entry[], start: number): void {
    let i = start;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && this.less(h[l]!, h[m]!)) m = l;
      if (r < h.length && this.less(h[r]!, h[m]!)) m = r;
      if (m === i) break;
      const t = h[i]!;
      h[i] = h[m]!;
      h[m] = t;
      i = m;
    }
  }

  /**
   * Drops the cancelled entries and rebuilds the heap bottom-up (Floyd): O(n), where pushing
   * them back one by one took O(n log n) and stalled the event loop for tens of milliseconds
   * with a few hundred thousand timers (publications and subscriptions live for an hour).
   */
  private compact(): void {
    const keep = this.heap.filter((e) => !e.cancelled);
    for (let i = (keep.length >> 1) - 1; i >= 0; i--) this.siftDown(keep, i);
    this.heap = keep;
  }
}

/** A clock and heap that tests drive by hand: `advance(ms)` runs what falls due, in order. */
export class ManualTimers extends TimerHeap {
  private readonly state: { t: number };

  constructor(start = 0) {
    const state = { t: start };
    super({ now: () => state.t }, { manual: true });
    this.state = state;
  }

  now(): number {
    return this.state.t;
  }

  /** Moves time forward step by step, so timers scheduled by timers run at their own time. */
  advance(ms: number): void {
    const target = this.state.t + ms;
    for (;;) {
      const next = this.nextDeadline();
      if (next === undefined || next > target) break;
      this.state.t = Math.max(this.state.t, next);
      this.runDue(this.state.t);
    }
    this.state.t = target;
  }
}

/** Wall-clock time in seconds, for Expires arithmetic that outlives the process (stored expiry). */
export interface WallClock {
  nowMs(): number;
}
export const systemWallClock: WallClock = { nowMs: () => Date.now() };
