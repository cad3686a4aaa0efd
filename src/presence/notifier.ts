import type { Logger } from 'pino';
import type { SentRequest, RequestSender } from '../transaction/request-sender.js';
import { dialogDestination } from '../dialog/dialog-destination.js';
import { buildInDialogRequest } from '../dialog/in-dialog-request.js';
import type { SipResponse } from '../sip/message.js';
import type { Timers, WallClock } from '../util/timers.js';
import type { NotifyBody } from './event-package.js';
import type { Subscription } from './subscription.js';

/** Why a NOTIFY failed. */
export interface NotifyFailure {
  readonly outcome: 'response' | 'timeout' | 'transport-error' | 'no-route';
  readonly status: number;
}

/** What the notifier asks of the subscription machinery. */
export interface NotifierHooks {
  /** The body of the NOTIFY being built (the package's newest state), or none. */
  body(sub: Subscription): NotifyBody | undefined;
  /** A NOTIFY was built: the dialog's local CSeq moved. */
  sent(sub: Subscription): void;
  /** A NOTIFY of a live subscription failed: end it without another NOTIFY. */
  failed(sub: Subscription, failure: NotifyFailure): void;
}

export interface NotifierOptions {
  readonly transactions: RequestSender;
  readonly timers: Timers;
  readonly wallClock: WallClock;
  /** At most one NOTIFY per subscription per interval (0: no limit). */
  readonly minIntervalMs: number;
  readonly hooks: NotifierHooks;
  readonly logger?: Logger;
  /**
   * NOTIFYs sent in one turn of the event loop before the rest wait for the next one
   * (default 32, about what one turn reads from a UDP socket; 0: no limit). See `pump`.
   */
  readonly sendsPerTurn?: number;
  /** Runs a function on the next turn of the event loop (default `setImmediate`). */
  readonly nextTurn?: (fn: () => void) => void;
}

const DEFAULT_SENDS_PER_TURN = 32;

/**
 * Sends the NOTIFYs of every subscription (RFC 6665 §4.2.2), each as a client transaction
 * down the dialog's route set and flow:
 * - one NOTIFY in flight per subscription, so they arrive in order with CSeq going up,
 *   and a slow watcher holds up nobody but itself;
 * - changes while one is in flight, or held back by rate control, are coalesced: the next
 *   NOTIFY carries the newest state (RFC 6446 §3 ideas), nothing is lost;
 * - the first and the final NOTIFY are never held back by rate control;
 * - a NOTIFY answered with an error, or that timed out or could not be sent, ends the
 *   subscription (RFC 6665 §4.2.2: the notifier MUST remove it on an error response).
 */
export class Notifier {
  private readonly transactions: RequestSender;
  private readonly timers: Timers;
  private readonly wallClock: WallClock;
  private readonly minIntervalMs: number;
  private readonly hooks: NotifierHooks;
  private readonly log?: Logger;
  private inFlightCount = 0;
  private readonly sendsPerTurn: number;
  private readonly nextTurn: (fn: () => void) => void;
  private sentThisTurn = 0;
  private turnScheduled = false;
  /** Subscriptions with a NOTIFY due that wait for the next turn, in order (each once). */
  private readonly waiting = new Set<Subscription>();

  constructor(options: NotifierOptions) {
    this.transactions = options.transactions;
    this.timers = options.timers;
    this.wallClock = options.wallClock;
    this.minIntervalMs = options.minIntervalMs;
    this.hooks = options.hooks;
    this.log = options.logger;
    this.sendsPerTurn = options.sendsPerTurn ?? DEFAULT_SENDS_PER_TURN;
    this.nextTurn = options.nextTurn ?? ((fn) => void setImmediate(fn));
  }

  /** NOTIFYs waiting for their final response. */
  get inFlight(): number {
    return this.inFlightCount;
  }

  /** The subscription's state (or its package's) changed: a NOTIFY will carry it. */
  notify(sub: Subscription): void {
    if (sub.notify.finished) return;
    sub.notify.dirty = true;
    this.pump(sub);
  }

  /** Nothing more is sent for this subscription (it ended without a final NOTIFY). */
  stop(sub: Subscription): void {
    this.waiting.delete(sub);
    sub.notify.finished = true;
    sub.notify.dirty = false;
    this.timers.cancel(sub.notify.throttle);
    sub.notify.throttle = undefined;
  }

  private pump(sub: Subscription): void {
    const n = sub.notify;
    if (n.finished || n.inFlight || !n.dirty) return;
    const final = sub.status === 'terminated';
    if (!final && this.minIntervalMs > 0 && n.lastSentAt !== undefined) {
      const wait = n.lastSentAt + this.minIntervalMs - this.timers.clock.now();
      if (wait > 0) {
        n.throttle ??= this.timers.schedule(wait, () => {
          n.throttle = undefined;
          this.pump(sub);
        });
        return;
      }
    }
    this.timers.cancel(n.throttle);
    n.throttle = undefined;
    // A change of a presentity with thousands of watchers would otherwise send every NOTIFY
    // in one go, and the socket would not be read meanwhile: their 200s pile up in the
    // receive buffer until the kernel drops them, and each dropped one costs a NOTIFY
    // retransmission (Timer E) and a transaction kept 64*T1. So a turn sends at most
    // `sendsPerTurn`; the rest go on the next turns, after the loop has read the socket.
    if (this.sendsPerTurn > 0 && this.sentThisTurn >= this.sendsPerTurn) {
      this.waiting.add(sub);
      this.scheduleTurn();
      return;
    }
    if (this.sendsPerTurn > 0) {
      this.waiting.delete(sub);
      this.sentThisTurn++;
      this.scheduleTurn();
    }
    n.dirty = false;
    this.send(sub, final);
  }

  private scheduleTurn(): void {
    if (this.turnScheduled) return;
    this.turnScheduled = true;
    this.nextTurn(() => {
      this.turnScheduled = false;
      this.sentThisTurn = 0;
      for (const sub of this.waiting) {
        if (this.sentThisTurn >= this.sendsPerTurn) break;
        this.waiting.delete(sub);
        this.pump(sub);
      }
      if (this.waiting.size > 0) this.scheduleTurn();
    });
  }

  private send(sub: Subscription, final: boolean): void {
    const n = sub.notify;
    let body: NotifyBody | undefined;
    try {
      body = this.hooks.body(sub);
    } catch (err) {
      // A package that cannot build its body still lets the state go out.
      this.log?.error({ err, subscription: sub.id }, 'NOTIFY body failed');
    }
    const built = buildInDialogRequest(sub.dialog, 'NOTIFY', {
      headers: [
        ['Event', sub.eventHeader],
        ['Subscription-State', sub.stateHeader(this.wallClock.nowMs())],
        ...(body?.headers ?? []),
      ],
      body: body?.body,
      contentType: body?.contentType,
    });
    const dest = built ? dialogDestination(built.nextHop, sub.dialog.flow) : undefined;
    if (final) n.finished = true;
    if (!built || !dest) {
      this.log?.debug({ subscription: sub.id, target: sub.dialog.remoteTarget }, 'no route for NOTIFY');
      this.fail(sub, { outcome: 'no-route', status: 480 });
      return;
    }
    n.inFlight = true;
    n.lastSentAt = this.timers.clock.now();
    this.hooks.sent(sub);
    this.inFlightCount++;
    let txn: SentRequest | undefined;
    try {
      txn = this.transactions.sendRequest(built.request, dest);
    } catch (err) {
      this.log?.warn({ err, subscription: sub.id }, 'NOTIFY not sent');
    }
    if (!txn) {
      queueMicrotask(() => this.answered(sub, undefined, 'transport-error'));
      return;
    }
    const t = txn;
    t.final.then(
      (res) => this.answered(sub, res, t.outcome ?? 'response'),
      () => this.answered(sub, undefined, 'transport-error'),
    );
  }

  private answered(sub: Subscription, res: SipResponse | undefined, outcome: NotifyFailure['outcome']): void {
    this.inFlightCount--;
    const n = sub.notify;
    n.inFlight = false;
    const status = res?.status ?? 503;
    if (outcome === 'response' && status >= 200 && status < 300) {
      this.pump(sub);
      return;
    }
    this.log?.debug({ subscription: sub.id, status, outcome }, 'NOTIFY failed');
    this.fail(sub, { outcome: outcome === 'response' ? 'response' : outcome, status });
  }

  private fail(sub: Subscription, failure: NotifyFailure): void {
    const wasFinished = sub.notify.finished;
    this.stop(sub);
    // The final NOTIFY failing changes nothing: the subscription is already over.
    if (!wasFinished) this.hooks.failed(sub, failure);
  }
}
