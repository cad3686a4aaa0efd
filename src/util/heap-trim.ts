import { performance } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Logger } from 'pino';
import type { TimerHandle, Timers } from './timers.js';

/**
 * Gives the JavaScript heap's freed pages back to the system once a burst is over.
 *
 * Node 24's V8 keeps the 256 KiB pages a garbage collection frees in a pool for reuse, and
 * empties the pool only in a "memory-reducing" collection (a low-memory notification, or
 * the last-resort flavour of a full one). Plain collections and V8's own memory reducer
 * leave it full: 20,000 SUBSCRIBEs over UDP, whose transactions live 32 s (RFC 3261 §17.2.2
 * Timer J), left 397 MB resident with 77 MB of heap, and one memory-reducing collection
 * brought that to 172 MB (docs/performance.md "Memory"). Node 20 returned them by itself.
 *
 * Every `intervalMs` the trimmer compares what the process holds beyond its live heap
 * (resident set minus the heap in use and external memory: the pool, free space inside the
 * heap's pages, and what malloc keeps) with that figure after its last collection; when it
 * grew by `minSlackBytes` and the event loop was mostly idle in the interval (a full
 * collection of a large heap stops it for a while, so never under load), it runs one
 * memory-reducing collection. Such a collection moves only so many objects out of half-empty
 * pages (V8 bounds each compaction), so while one gives back at least half the threshold
 * the next interval may run another.
 */
export interface HeapTrimOptions {
  readonly timers: Timers;
  /** How often the slack is read (ms). */
  readonly intervalMs?: number;
  /** Growth of the slack that is worth a collection (bytes). */
  readonly minSlackBytes?: number;
  /** Event-loop utilisation (0..1) in the interval above which the loop counts as busy. */
  readonly maxUtilization?: number;
  /** Tests inject these three; the defaults read this process. */
  readonly readMemory?: () => MemoryReading;
  readonly utilization?: () => number;
  readonly collect?: () => boolean;
  readonly logger?: Logger;
}

/** The part of process.memoryUsage() the trimmer reads (bytes). */
export interface MemoryReading {
  readonly rss: number;
  readonly heapTotal: number;
  readonly heapUsed: number;
  readonly external: number;
}

export const HEAP_TRIM_INTERVAL_MS = 10_000;
export const HEAP_TRIM_MIN_SLACK_BYTES = 32 * 1024 * 1024;
export const HEAP_TRIM_MAX_UTILIZATION = 0.25;

function slackOf(m: MemoryReading): number {
  return m.rss - m.heapUsed - m.external;
}

/** The event loop's utilisation since the previous call (perf_hooks ELU). */
function loopUtilization(): () => number {
  let last = performance.eventLoopUtilization();
  return () => {
    const now = performance.eventLoopUtilization();
    const delta = performance.eventLoopUtilization(now, last);
    last = now;
    return delta.utilization;
  };
}

let gcFunction: ((options: { type: 'major'; flavor: 'last-resort' }) => void) | null | undefined;

/**
 * One memory-reducing full collection. The `gc` of a context made while --expose-gc is set
 * takes the flavour that empties V8's page pool; the flag is cleared again at once, so no
 * other context sees a `gc`. False (and never tried again) where the runtime offers none.
 */
export function memoryReducingCollection(): boolean {
  if (gcFunction === undefined) {
    try {
      setFlagsFromString('--expose-gc');
      const gc: unknown = runInNewContext('typeof gc === "function" ? gc : undefined');
      gcFunction = typeof gc === 'function' ? (gc as NonNullable<typeof gcFunction>) : null;
    } catch {
      gcFunction = null;
    } finally {
      setFlagsFromString('--no-expose-gc');
    }
  }
  if (!gcFunction) return false;
  gcFunction({ type: 'major', flavor: 'last-resort' });
  return true;
}

export class HeapTrimmer {
  private timer: TimerHandle | undefined;
  private running = false;
  private baseline: number | undefined;
  private readonly intervalMs: number;
  private readonly minSlack: number;
  private readonly maxUtilization: number;
  private readonly readMemory: () => MemoryReading;
  private readonly utilization: () => number;
  private readonly collect: () => boolean;
  /** Collections run so far (metrics, tests). */
  collections = 0;

  constructor(private readonly options: HeapTrimOptions) {
    this.intervalMs = options.intervalMs ?? HEAP_TRIM_INTERVAL_MS;
    this.minSlack = options.minSlackBytes ?? HEAP_TRIM_MIN_SLACK_BYTES;
    this.maxUtilization = options.maxUtilization ?? HEAP_TRIM_MAX_UTILIZATION;
    this.readMemory = options.readMemory ?? (() => process.memoryUsage());
    this.utilization = options.utilization ?? loopUtilization();
    this.collect = options.collect ?? memoryReducingCollection;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.baseline = slackOf(this.readMemory());
    this.utilization();
    this.schedule();
  }

  stop(): void {
    this.running = false;
    this.options.timers.cancel(this.timer);
    this.timer = undefined;
  }

  /** One reading; collects when the slack grew and the loop is quiet. Returns whether it collected. */
  check(): boolean {
    const busy = this.utilization() > this.maxUtilization;
    const before = this.readMemory();
    const slack = slackOf(before);
    // The least slack seen is the floor to compare with (start-up garbage goes too).
    if (this.baseline === undefined || slack < this.baseline) this.baseline = slack;
    if (busy || slack - this.baseline < this.minSlack) return false;
    const t0 = performance.now();
    if (!this.collect()) {
      // Nothing to collect with: stop reading.
      this.stop();
      return false;
    }
    this.collections++;
    const after = this.readMemory();
    // What is left (malloc's own slack, say) is the new floor: no collection again for it,
    // unless this one gave back enough that another may give back more.
    if (before.rss - after.rss < this.minSlack / 2) this.baseline = slackOf(after);
    this.options.logger?.debug(
      { rssMb: mb(before.rss), rssAfterMb: mb(after.rss), heapMb: mb(after.heapTotal), ms: Math.round(performance.now() - t0) },
      'heap trimmed: freed pages returned to the system',
    );
    return true;
  }

  private schedule(): void {
    this.timer = this.options.timers.schedule(this.intervalMs, () => {
      this.timer = undefined;
      try {
        this.check();
      } finally {
        if (this.running) this.schedule();
      }
    });
  }
}

function mb(bytes: number): number {
  return Math.round(bytes / 1048576);
}
