import { readFileSync } from 'node:fs';

/**
 * How long a message that arrives now waits before the SIP thread starts on it. Two parts:
 * - the event loop's lag (a long loop iteration, a GC pause, a synchronous stall), and
 * - for UDP, the socket's receive queue. The kernel keeps filling it while the loop is busy
 *   (up to the 8 MB buffer: seconds of work past capacity), and no event-loop measure sees
 *   it: under overload the loop reads 32 datagrams an iteration and its lag stays at
 *   milliseconds while requests wait a second in the queue.
 * A probe measures both: every `intervalMs` a timer notes how late it runs (the lag) and sends
 * every probed queue (each UDP listener) a small datagram of ours carrying the time it left.
 * The datagram waits in the queue behind the requests, and its age when the transport reads
 * it is what a request that arrived with it waited (CoDel's sojourn time, RFC 8289).
 */

/** What the last window (the time since the previous `read`) showed. */
export interface ReceiveDelayReading {
  /**
   * The standing delay (ms): the least that messages arriving in the window waited before
   * the SIP thread started on them (the smallest probe sojourn, so a single burst or pause
   * that the queue absorbed does not count), or, when no probe came back, the age of the
   * oldest one still queued.
   */
  readonly queueDelayMs: number;
  /** Whether `queueDelayMs` is a measured sojourn, not only the lower bound of a probe still queued. */
  readonly measured: boolean;
  /** The longest event-loop lag seen in the window (ms). */
  readonly eventLoopLagMs: number;
  /**
   * How long the SIP thread was ready to run but waited for a CPU in the window (ms): other
   * processes on the host, not our load (Linux schedstat; 0 where it cannot be read).
   */
  readonly cpuWaitMs: number;
}

/** Where the overload control reads the delay (a probe in the server; tests inject one). */
export interface ReceiveDelay {
  /** Closes the current window and reports it. */
  read(): ReceiveDelayReading;
}

/** A queue the probe can time: one UDP socket's receive queue. */
export interface ProbedQueue {
  /** Sends a probe carrying `stamp` into the queue; the transport hands it back through `arrived`. */
  sendProbe(stamp: number): void;
}

/** Probes still in a queue at most: beyond, the oldest are taken as lost (a full buffer drops datagrams). */
const MAX_OUTSTANDING = 256;

class QueueState {
  /** Stamps of the probes sent and not read yet, oldest first. */
  readonly outstanding: number[] = [];
  /** Smallest sojourn of the probes read in this window. */
  minSojourn = Infinity;

  constructor(readonly queue: ProbedQueue) {}
}

export interface ReceiveDelayMonitorOptions {
  /** How often the timer runs and probes are sent (ms). */
  readonly intervalMs: number;
  /** Monotonic milliseconds (tests inject a manual clock). */
  readonly now?: () => number;
  /** Total ms this thread has waited for a CPU so far (tests inject one; default: Linux schedstat). */
  readonly cpuWait?: () => number;
}

/**
 * The calling thread's run-queue wait so far (ms): the second field of
 * /proc/thread-self/schedstat (nanoseconds runnable but not running). Undefined where the
 * kernel does not offer it.
 */
export function threadCpuWaitMs(): number | undefined {
  try {
    const fields = readFileSync('/proc/thread-self/schedstat', 'latin1').split(' ');
    const ns = Number(fields[1]);
    return Number.isFinite(ns) ? ns / 1e6 : undefined;
  } catch {
    return undefined;
  }
}

/** The probe described above: a Node timer and one probe a queue every interval. */
export class ReceiveDelayMonitor implements ReceiveDelay {
  private readonly intervalMs: number;
  private readonly now: () => number;
  private readonly queues: QueueState[] = [];
  private timer: NodeJS.Timeout | undefined;
  /** When the next probe is due (undefined until started). */
  private due: number | undefined;
  private lagMax = 0;
  private lagMin = Infinity;
  private readonly cpuWait: () => number;
  private cpuWaitBefore: number;

  constructor(options: ReceiveDelayMonitorOptions) {
    this.intervalMs = options.intervalMs;
    this.now = options.now ?? (() => performance.now());
    this.cpuWait = options.cpuWait ?? (threadCpuWaitMs() === undefined ? () => 0 : () => threadCpuWaitMs() ?? 0);
    this.cpuWaitBefore = this.cpuWait();
  }

  /** Adds a queue to probe; the transport calls the returned function with each probe's stamp it reads. */
  attach(queue: ProbedQueue): (stamp: number) => void {
    const state = new QueueState(queue);
    this.queues.push(state);
    return (stamp) => this.arrived(state, stamp);
  }

  start(): void {
    if (this.due !== undefined) return;
    this.due = this.now() + this.intervalMs;
    this.arm();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.due = undefined;
  }

  /**
   * One probe round, due at `due`: records how late it runs (the event loop's lag) and sends
   * every queue a probe stamped with the time it leaves, so that its sojourn is the queue's
   * alone (the lag is counted apart: a stall must not read as a queue that keeps growing).
   * The timer calls it every interval; tests call it by hand.
   */
  probe(due = this.now()): void {
    const now = this.now();
    const lag = Math.max(0, now - due);
    this.lagMax = Math.max(this.lagMax, lag);
    this.lagMin = Math.min(this.lagMin, lag);
    for (const q of this.queues) {
      if (q.outstanding.length >= MAX_OUTSTANDING) q.outstanding.shift();
      q.outstanding.push(now);
      q.queue.sendProbe(now);
    }
  }

  read(): ReceiveDelayReading {
    const now = this.now();
    // A probe round that is due and has not run: the loop is stalled right now.
    const pending = this.due !== undefined ? Math.max(0, now - this.due) : 0;
    const lagMax = Math.max(this.lagMax, pending);
    // Standing lag: the least any probe round was late in the window.
    let queueDelayMs = this.lagMin === Infinity ? pending : this.lagMin;
    let measured = true;
    for (const q of this.queues) {
      if (q.minSojourn !== Infinity) {
        if (q.minSojourn >= queueDelayMs) {
          queueDelayMs = q.minSojourn;
          measured = true;
        }
      } else if (q.outstanding.length > 0) {
        // Nothing came back in the whole window: the oldest probe's age is a lower bound.
        const age = now - q.outstanding[0]!;
        if (age > queueDelayMs) {
          queueDelayMs = age;
          measured = false;
        }
      }
      q.minSojourn = Infinity;
    }
    this.lagMax = 0;
    this.lagMin = Infinity;
    const cpuWait = this.cpuWait();
    const cpuWaitMs = Math.max(0, cpuWait - this.cpuWaitBefore);
    this.cpuWaitBefore = cpuWait;
    return { queueDelayMs, measured, eventLoopLagMs: lagMax, cpuWaitMs };
  }

  private arrived(q: QueueState, stamp: number): void {
    const now = this.now();
    if (!(stamp <= now)) return; // not a time we sent at
    // A queue is first in, first out: probes sent before this one and not read were dropped.
    const out = q.outstanding;
    let i = 0;
    while (i < out.length && out[i]! <= stamp) i++;
    if (i === 0) return; // not one of ours (or already given up on)
    out.splice(0, i);
    q.minSojourn = Math.min(q.minSojourn, now - stamp);
  }

  private arm(): void {
    const delay = Math.max(0, this.due! - this.now());
    this.timer = setTimeout(() => {
      const due = this.due;
      if (due === undefined) return;
      this.probe(due);
      // The next round an interval after this one ran: a stall is one late round, not a burst of them.
      this.due = Math.max(due, this.now()) + this.intervalMs;
      this.arm();
    }, delay);
    this.timer.unref();
  }
}
