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
 * the last-resort flavour of a full one, or its own memory reducer, which runs only while
 * the process allocates almost nothing). Plain collections leave it full: 20,000 SUBSCRIBEs
 * over UDP, whose transactions live 32 s (RFC 3261 §17.2.2 Timer J), left 397 MB resident
 * with 77 MB of heap, and one memory-reducing collection brought that to 172 MB
 * (docs/performance.md "Memory"). Node 20 returned them by itself.
 *
 * Such a collection compacts the whole heap and stops the event loop for it: about 3-4 ms
 * a MB of heap here (0.6 s for 175 MB). Every message that arrives meanwhile waits, and past
 * T1 (500 ms) UDP clients retransmit. So the trimmer samples the loop every `intervalMs`
 * and collects only when (a) what the process holds beyond its live heap (resident set
 * minus the heap in use and external memory: the pool, free space inside the heap's pages,
 * what malloc keeps) grew by `minSlackBytes` since its last collection, (b) the loop was
 * mostly idle in every sample of the last `quietMs`, and (c) at the highest rate messages
 * arrived in those samples, the pause it expects (the heap's size times the pause a MB the
 * last collection took) would hold up at most `maxDelayed` of them. A burst is followed by
 * a collection once it has been over for `quietMs`; a server that keeps serving keeps its
 * pages, and reuses them in its next burst. (d) Collections are spaced so that their pauses
 * take at most `maxPauseShare` of the time, but never more than `maxSpacingMs` apart (so
 * that what a burst left is given back within that): a burst's garbage goes over Timer J's
 * 32 s (RFC 3261 §17.2.2), and collecting each time a few MB more came free stopped a server
 * holding 100,000 publications for 0.4-1 s every 4 s of that (a SUBSCRIBE arriving then
 * waited as long).
 *
 * A collection moves only so many objects out of half-empty pages (V8 bounds each
 * compaction), so while one gives back at least half the threshold the next quiet stretch
 * may run another.
 */
export interface HeapTrimOptions {
  readonly timers: Timers;
  /** How often the loop and the slack are sampled (ms). */
  readonly intervalMs?: number;
  /** How long the loop must have been quiet before a collection (ms). */
  readonly quietMs?: number;
  /** Growth of the slack that is worth a collection (bytes). */
  readonly minSlackBytes?: number;
  /** Event-loop utilisation (0..1) in a sample above which the loop counts as busy. */
  readonly maxUtilization?: number;
  /** How many arriving messages a collection's pause may hold up, expected. */
  readonly maxDelayed?: number;
  /** The share of time collections may stop the loop: after a pause P, none for P / share. */
  readonly maxPauseShare?: number;
  /** The longest that spacing keeps the next collection waiting (ms). */
  readonly maxSpacingMs?: number;
  /** Messages received so far (a counter); without it only the loop's utilisation is read. */
  readonly received?: () => number;
  /** Tests inject these; the defaults read this process. */
  readonly readMemory?: () => MemoryReading;
  readonly utilization?: () => number;
  readonly collect?: () => boolean;
  /** Milliseconds, to time a collection. */
  readonly clock?: () => number;
  readonly logger?: Logger;
}

/** The part of process.memoryUsage() the trimmer reads (bytes). */
export interface MemoryReading {
  readonly rss: number;
  readonly heapTotal: number;
  readonly heapUsed: number;
  readonly external: number;
}

export const HEAP_TRIM_INTERVAL_MS = 1_000;
export const HEAP_TRIM_QUIET_MS = 3_000;
export const HEAP_TRIM_MIN_SLACK_BYTES = 32 * 1024 * 1024;
export const HEAP_TRIM_MAX_UTILIZATION = 0.25;
export const HEAP_TRIM_MAX_DELAYED = 1;
export const HEAP_TRIM_MAX_PAUSE_SHARE = 0.03;
export const HEAP_TRIM_MAX_SPACING_MS = 15_000;
/** The pause a MB of heap costs before the first collection has been timed (ms; this VM: 3-4.5). */
const INITIAL_PAUSE_MS_PER_MB = 4;

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

/** One sample of the loop: was it busy, and how many messages arrived. */
interface LoopSample {
  readonly busy: boolean;
  readonly messages: number;
}

export class HeapTrimmer {
  private timer: TimerHandle | undefined;
  private running = false;
  private baseline: number | undefined;
  private readonly intervalMs: number;
  private readonly quietSamples: number;
  private readonly minSlack: number;
  private readonly maxUtilization: number;
  private readonly maxDelayed: number;
  private readonly maxPauseShare: number;
  private readonly maxSpacingMs: number;
  /** No collection before this time (clock ms): the last one's pause, spread out. */
  private notBefore = -Infinity;
  private readonly readMemory: () => MemoryReading;
  private readonly utilization: () => number;
  private readonly collect: () => boolean;
  private readonly clock: () => number;
  /** The last `quietSamples` samples, oldest first. */
  private samples: LoopSample[] = [];
  private receivedBefore = 0;
  /** What a MB of heap cost the last collection (ms). */
  private pauseMsPerMb = INITIAL_PAUSE_MS_PER_MB;
  /** Collections run so far (metrics, tests). */
  collections = 0;

  constructor(private readonly options: HeapTrimOptions) {
    this.intervalMs = options.intervalMs ?? HEAP_TRIM_INTERVAL_MS;
    this.quietSamples = Math.max(1, Math.ceil((options.quietMs ?? HEAP_TRIM_QUIET_MS) / this.intervalMs));
    this.minSlack = options.minSlackBytes ?? HEAP_TRIM_MIN_SLACK_BYTES;
    this.maxUtilization = options.maxUtilization ?? HEAP_TRIM_MAX_UTILIZATION;
    this.maxDelayed = options.maxDelayed ?? HEAP_TRIM_MAX_DELAYED;
    this.maxPauseShare = options.maxPauseShare ?? HEAP_TRIM_MAX_PAUSE_SHARE;
    this.maxSpacingMs = options.maxSpacingMs ?? HEAP_TRIM_MAX_SPACING_MS;
    this.readMemory = options.readMemory ?? (() => process.memoryUsage());
    this.utilization = options.utilization ?? loopUtilization();
    this.collect = options.collect ?? memoryReducingCollection;
    this.clock = options.clock ?? (() => performance.now());
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.baseline = slackOf(this.readMemory());
    this.utilization();
    this.receivedBefore = this.options.received?.() ?? 0;
    this.samples = [];
    this.schedule();
  }

  stop(): void {
    this.running = false;
    this.options.timers.cancel(this.timer);
    this.timer = undefined;
  }

  /** The pause the next collection is expected to take (ms). */
  expectedPauseMs(heapUsed = this.readMemory().heapUsed): number {
    return (heapUsed / 1048576) * this.pauseMsPerMb;
  }

  /** One sample; collects when the slack grew and the loop has been quiet. Returns whether it collected. */
  check(): boolean {
    this.sample();
    const before = this.readMemory();
    const slack = slackOf(before);
    // The least slack seen is the floor to compare with (start-up garbage goes too).
    if (this.baseline === undefined || slack < this.baseline) this.baseline = slack;
    if (slack - this.baseline < this.minSlack || !this.quiet(before.heapUsed)) return false;
    const t0 = this.clock();
    if (t0 < this.notBefore) return false;
    if (!this.collect()) {
      // Nothing to collect with: stop reading.
      this.stop();
      return false;
    }
    const ms = this.clock() - t0;
    this.collections++;
    this.notBefore = t0 + ms + Math.min(ms / this.maxPauseShare, this.maxSpacingMs);
    // Timed on a heap large enough for the time to mean something.
    if (before.heapUsed >= 16 * 1048576) this.pauseMsPerMb = ms / (before.heapUsed / 1048576);
    // The pause itself counts as busy: the next collection waits for a quiet stretch again.
    this.samples = [];
    const after = this.readMemory();
    // What is left (malloc's own slack, say) is the new floor: no collection again for it,
    // unless this one gave back enough that another may give back more.
    if (before.rss - after.rss < this.minSlack / 2) this.baseline = slackOf(after);
    this.options.logger?.debug(
      { rssMb: mb(before.rss), rssAfterMb: mb(after.rss), heapMb: mb(after.heapTotal), ms: Math.round(ms) },
      'heap trimmed: freed pages returned to the system',
    );
    return true;
  }

  private sample(): void {
    const received = this.options.received?.() ?? 0;
    this.samples.push({ busy: this.utilization() > this.maxUtilization, messages: received - this.receivedBefore });
    this.receivedBefore = received;
    if (this.samples.length > this.quietSamples) this.samples.shift();
  }

  /** Idle over the whole quiet stretch, and too little arriving for the pause to hold up. */
  private quiet(heapUsed: number): boolean {
    if (this.samples.length < this.quietSamples) return false;
    let most = 0;
    for (const s of this.samples) {
      if (s.busy) return false;
      if (s.messages > most) most = s.messages;
    }
    const perMs = most / this.intervalMs;
    return perMs * this.expectedPauseMs(heapUsed) <= this.maxDelayed;
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
