import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import type { SipRequest } from '../sip/message.js';
import type { ReceiveDelay, ReceiveDelayReading } from '../transport/receive-delay.js';
import type { TimerHandle, Timers } from '../util/timers.js';

export type OverloadSettings = Readonly<Config['overload']>;

/**
 * What refusing a request does to the state clients hold with us (as RFC 6357 and RFC 7339
 * advise, new work is refused before work that keeps existing sessions going):
 * - `new`: requests out of a dialog that start something: an initial SUBSCRIBE or PUBLISH, a
 *   MESSAGE, a REGISTER, OPTIONS. Refused first; the client tries again after Retry-After
 *   (or another server of the domain, RFC 3263) and loses nothing it had.
 * - `ongoing`: requests inside a dialog (a To tag: SUBSCRIBE refreshes and unsubscribes,
 *   NOTIFY, BYE) and PUBLISHes that refresh, modify or remove a publication (SIP-If-Match,
 *   RFC 3903 §4.4). Refusing them ends or ages state the client holds, and the client then
 *   rebuilds it with a new SUBSCRIBE or an initial PUBLISH with a body: more work, not less.
 *   Refused only when refusing all new work was not enough.
 * CANCEL (it ends work) and ACK are never refused; neither are retransmissions of a request
 * whose transaction exists (the transaction layer answers them before asking) nor
 * responses (to our NOTIFYs and forwarded MESSAGEs: they end our client transactions and
 * their retransmissions).
 */
export type LoadClass = 'new' | 'ongoing';

export function loadClass(req: SipRequest): LoadClass | undefined {
  const method = req.method;
  if (method === 'CANCEL' || method === 'ACK') return undefined;
  if (method === 'PUBLISH' && req.getHeader('sip-if-match') !== undefined) return 'ongoing';
  let toTag: string | undefined;
  try {
    toTag = req.to.tag;
  } catch {
    toTag = undefined; // a To the service will answer 400 for: nothing ongoing about it
  }
  return toTag !== undefined ? 'ongoing' : 'new';
}

/** Per second of the relative error: how fast the shed level climbs (and falls) when off target. */
const GAIN = 1;
/** Windows in a row over the target before the level climbs: one slow window is noise. */
const WINDOWS_OVER_TARGET = 2;
/** Level 1 sheds every new request; the part above 1 sheds ongoing ones. */
const MAX_LEVEL = 2;
/**
 * Ongoing work is refused only while the delay stands over this many times the target with
 * all new work refused: a refused refresh or in-dialog request wastes the work its dialog or
 * publication already cost (and, in a client's call of two requests, the first one's).
 */
const ONGOING_FACTOR = 2;

export interface OverloadStats {
  /** 0: nothing shed; 0..1: that share of new work; 1..2: all new work and (level - 1) of ongoing. */
  readonly level: number;
  readonly queueDelayMs: number;
  readonly eventLoopLagMs: number;
  readonly cpuWaitMs: number;
  readonly shed: Readonly<Record<LoadClass, number>>;
}

export interface OverloadControlOptions {
  readonly delay: ReceiveDelay;
  readonly timers: Timers;
  readonly settings: OverloadSettings;
  /** Uniform in [0, 1) (tests inject their own). */
  readonly random?: () => number;
  readonly logger: Logger;
}

/**
 * Overload control of the SIP thread: the server itself decides how much to refuse, as in
 * RFC 7339's loss-based scheme, and refuses with a 503 and Retry-After (RFC 3261 §21.5.4). It
 * keeps the standing receive delay (how long requests wait before the SIP thread starts on
 * them, see transport/receive-delay.ts) near `targetDelayMs` by refusing a share of the
 * requests, the level, at the cheapest point:
 * once a request's head is parsed and the transaction layer has found it is not a
 * retransmission, before any transaction, service or body parsing touches it.
 *
 * Every `intervalMs` the level moves by GAIN × (delay − target) / target × interval:
 * - up only when the delay was over the target for WINDOWS_OVER_TARGET windows in a row
 *   and is not falling: a queue that drains by itself (the backlog of a GC pause, a burst)
 *   needs no refusals, a growing or standing one does; past level 1 (all new work refused)
 *   only while the delay is over ONGOING_FACTOR × the target, and by what exceeds that;
 * - down whenever it is under the target, so the server is back to answering everything
 *   within a second or two once the load drops (the part above 1 four times faster);
 * - against the target plus the time the SIP thread waited for a CPU in the window (other
 *   processes on a shared host: a delay no refusal takes away), up to twice the target;
 * - not at all over a window in which the loop stalled (one probe round later than a
 *   window): a stall is no measure of the offered load, and the windows after it tell
 *   whether its backlog drains. Stalls in a row (loop iterations longer than a window, as
 *   with a flood over TCP) count as ordinary windows.
 */
export class OverloadControl {
  private readonly delay: ReceiveDelay;
  private readonly timers: Timers;
  private readonly settings: OverloadSettings;
  private readonly random: () => number;
  private readonly log: Logger;
  private timer: TimerHandle | undefined;
  private currentLevel = 0;
  private last: ReceiveDelayReading = { queueDelayMs: 0, measured: true, eventLoopLagMs: 0, cpuWaitMs: 0 };
  /** The last measured delay, to tell a growing queue from a draining one. */
  private previous = 0;
  private windowsOver = 0;
  private stalled = false;
  private readonly shed: Record<LoadClass, number> = { new: 0, ongoing: 0 };
  /** Shed counts when the current episode began (for its log line). */
  private episodeStart: Record<LoadClass, number> | undefined;

  constructor(options: OverloadControlOptions) {
    this.delay = options.delay;
    this.timers = options.timers;
    this.settings = options.settings;
    this.random = options.random ?? Math.random;
    this.log = options.logger;
  }

  get level(): number {
    return this.currentLevel;
  }

  start(): void {
    if (this.timer) return;
    const tick = (): void => {
      this.timer = this.timers.schedule(this.settings.intervalMs, tick);
      this.update(this.delay.read());
    };
    this.timer = this.timers.schedule(this.settings.intervalMs, tick);
  }

  stop(): void {
    this.timers.cancel(this.timer);
    this.timer = undefined;
  }

  /**
   * 0 when the request is to be served; otherwise the Retry-After (seconds) of the 503 it is
   * answered with at once.
   */
  admit(req: SipRequest): number {
    return this.currentLevel === 0 ? 0 : this.admitClass(loadClass(req));
  }

  /** `admit` for a request whose class is known (undefined: never refused). */
  admitClass(cls: LoadClass | undefined): number {
    if (this.currentLevel === 0 || cls === undefined) return 0;
    const share = cls === 'new' ? Math.min(1, this.currentLevel) : this.currentLevel - 1;
    if (share <= 0 || this.random() >= share) return 0;
    this.shed[cls]++;
    // Spread over [base, 2 × base]: refused clients that honour it do not all come back at once.
    const base = this.settings.retryAfterSeconds;
    return base + Math.floor(this.random() * (base + 1));
  }

  stats(): OverloadStats {
    const { queueDelayMs, eventLoopLagMs, cpuWaitMs } = this.last;
    return { level: this.currentLevel, queueDelayMs, eventLoopLagMs, cpuWaitMs, shed: { ...this.shed } };
  }

  /** One window's reading: moves the level (exposed for tests; the timer calls it every interval). */
  update(reading: ReceiveDelayReading): void {
    this.last = reading;
    const { intervalMs, targetDelayMs } = this.settings;
    const d = reading.queueDelayMs;
    const stall = reading.eventLoopLagMs >= intervalMs;
    if (stall && !this.stalled) {
      this.stalled = true;
      this.windowsOver = 0;
      // What the stall queued drains by itself unless the load is past capacity: the queue
      // grows only if requests come to wait longer than the stall lasted.
      this.previous = Math.max(d, reading.eventLoopLagMs);
      return;
    }
    this.stalled = stall;
    // Time the SIP thread waited for a CPU that other processes held is the host's delay, not
    // the load's, and refusing requests cannot take it away: it raises the bar for the window,
    // by one target at most, so that the queue stays well short of the clients' retransmission
    // timer (T1, 500 ms) on a host that starves the server for long.
    const allowance = Math.min(reading.cpuWaitMs, targetDelayMs);
    const target = targetDelayMs + allowance;
    const error = (d - target) / targetDelayMs;
    this.windowsOver = error > 0 ? this.windowsOver + 1 : 0;
    // A lower bound (a probe still queued) that is already above the last measurement is rising too.
    const rising = d >= this.previous;
    if (reading.measured) this.previous = d;
    const seconds = intervalMs / 1000;
    let level = this.currentLevel;
    if (error > 0 && this.windowsOver >= WINDOWS_OVER_TARGET && rising) {
      if (level < 1) {
        // New work first: one reading, however high, takes the level to 1 at most.
        level = Math.min(1, level + GAIN * error * seconds);
      } else if (d > ONGOING_FACTOR * targetDelayMs + allowance) {
        // Refusing all new work did not hold the queue: refuse ongoing work too.
        level += GAIN * ((d - ONGOING_FACTOR * targetDelayMs - allowance) / targetDelayMs) * seconds;
      }
    } else if (error < 0) {
      // Refusing ongoing work is for emergencies: that part goes ONGOING_FACTOR² times faster.
      level = level > 1 ? Math.max(1, level + ONGOING_FACTOR ** 2 * GAIN * error * seconds) : level + GAIN * error * seconds;
    }
    // Under 0.1 % is nothing (and the sum of steps down lands on 0, not on a rounding error above it).
    this.setLevel(level < 1e-3 ? 0 : Math.min(MAX_LEVEL, level), reading);
  }

  private setLevel(level: number, reading: ReceiveDelayReading): void {
    const before = this.currentLevel;
    this.currentLevel = level;
    const fields = { level: round(level), queueDelayMs: round(reading.queueDelayMs), eventLoopLagMs: round(reading.eventLoopLagMs) };
    if (before === 0 && level > 0) {
      this.episodeStart = { ...this.shed };
      this.log.warn(fields, 'overload: refusing new requests with 503');
    } else if (before > 0 && level === 0) {
      const start = this.episodeStart ?? { new: 0, ongoing: 0 };
      this.log.warn({ ...fields, shedNew: this.shed.new - start.new, shedOngoing: this.shed.ongoing - start.ongoing }, 'overload: over, serving every request');
      this.episodeStart = undefined;
    }
    if (before <= 1 && level > 1) this.log.warn(fields, 'overload: refusing requests in dialogs too');
  }
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}
