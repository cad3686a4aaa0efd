import type { Destination } from '../transport/types.js';
import type { TimerHandle, Timers } from '../util/timers.js';

/** Sends a kept final response again; rejects on a transport error. */
export type Resend = (data: Buffer, route: Destination) => Promise<void>;

/** Routes interned at most; past it the table starts a new set (old entries keep theirs). */
const MAX_INTERNED_ROUTES = 4096;

/**
 * Non-INVITE server transactions in Completed over an unreliable transport (RFC 3261
 * §17.2.2). All such a transaction still does is resend its final response whenever its
 * request comes again, until Timer J (64*T1) ends it. Under load that is most of the live
 * state (a PUBLISH at 4,000 calls/s leaves 256,000 of them), so the table holds for each only
 * its key and its response bytes (a one-byte string, see NonInviteServerTransaction), in
 * arrays kept in the order they entered: Timer J is the same for all, so they leave in that
 * order too, and one timer for the oldest replaces a timer and a closure each. The route is
 * shared by every response to the same address. Fewer objects is what matters: the old
 * generation's marking, and the heap trimmer's compaction, walk every one of them.
 */
export class CompletedResponses {
  /** Key -> sequence number (below 2^30, so a small integer, not a boxed number). */
  private readonly index = new Map<string, number>();
  private keys: string[] = [];
  private sent: string[] = [];
  private routes: Destination[] = [];
  private expiries: number[] = [];
  /** Position of the oldest live entry in the arrays. */
  private head = 0;
  /** Sequence number of `keys[0]`. */
  private firstSeq = 0;
  private readonly interned = new Map<string, Destination>();
  private timer: TimerHandle | undefined;

  constructor(
    private readonly timers: Timers,
    /** Timer J (ms). */
    private readonly holdMs: number,
    private readonly resend: Resend,
    private readonly onResendError: (err: unknown) => void = () => {},
  ) {}

  get size(): number {
    return this.index.size;
  }

  has(key: string): boolean {
    return this.index.has(key);
  }

  /** A transaction entered Completed: keep its response until Timer J. */
  add(key: string, response: string, route: Destination): void {
    if (this.index.has(key)) this.delete(key);
    const seq = (this.firstSeq + this.keys.length) & 0x3fffffff;
    this.index.set(key, seq);
    this.keys.push(key);
    this.sent.push(response);
    this.routes.push(this.intern(route));
    this.expiries.push(this.timers.clock.now() + this.holdMs);
    if (!this.timer) this.arm();
  }

  /** §17.2.2: a retransmitted request gets the final response again. False when the key is not here. */
  retransmit(key: string): boolean {
    const i = this.position(key);
    if (i === undefined) return false;
    this.resend(Buffer.from(this.sent[i]!, 'latin1'), this.routes[i]!).catch((err: unknown) => this.onResendError(err));
    return true;
  }

  /** The response kept for `key` (diagnostics and tests). */
  response(key: string): Buffer | undefined {
    const i = this.position(key);
    return i === undefined ? undefined : Buffer.from(this.sent[i]!, 'latin1');
  }

  /** Forgets everything and stops its timer (the layer is closing). */
  clear(): void {
    this.index.clear();
    this.empty();
  }

  private position(key: string): number | undefined {
    const seq = this.index.get(key);
    if (seq === undefined) return undefined;
    return (seq - this.firstSeq) & 0x3fffffff;
  }

  /** Ends one entry before its time (its response could not be sent, or its key came again in add). */
  delete(key: string): void {
    const i = this.position(key);
    this.index.delete(key);
    // The slot stays in the arrays until it reaches the head; its key no longer maps to it.
    if (i !== undefined) this.keys[i] = '';
    if (this.index.size === 0) this.empty();
  }

  /** §17.2.2: "[...] until Timer J fires, at which point it MUST transition to the "Terminated" state." */
  private expire(): void {
    this.timer = undefined;
    const now = this.timers.clock.now();
    let i = this.head;
    const n = this.keys.length;
    while (i < n && this.expiries[i]! <= now) {
      const key = this.keys[i]!;
      if (key !== '' && this.index.get(key) === ((this.firstSeq + i) & 0x3fffffff)) this.index.delete(key);
      i++;
    }
    this.head = i;
    if (this.head === n) {
      this.empty();
      return;
    }
    // Drop the expired front in one move once it is the larger part (amortized O(1) a entry).
    if (this.head > 1024 && this.head * 2 > n) {
      this.keys = this.keys.slice(this.head);
      this.sent = this.sent.slice(this.head);
      this.routes = this.routes.slice(this.head);
      this.expiries = this.expiries.slice(this.head);
      this.firstSeq = (this.firstSeq + this.head) & 0x3fffffff;
      this.head = 0;
    } else {
      // Let the expired strings go now, not when the front is dropped.
      for (let j = this.head - 1; j >= 0 && this.sent[j] !== ''; j--) {
        this.sent[j] = '';
        this.keys[j] = '';
      }
    }
    this.arm();
  }

  /** Nothing live is left: drop the arrays and the timer (sequence numbers go on). */
  private empty(): void {
    this.timers.cancel(this.timer);
    this.timer = undefined;
    this.firstSeq = (this.firstSeq + this.keys.length) & 0x3fffffff;
    this.keys = [];
    this.sent = [];
    this.routes = [];
    this.expiries = [];
    this.head = 0;
    this.interned.clear();
  }

  private arm(): void {
    const at = this.expiries[this.head];
    if (at === undefined) return;
    this.timer = this.timers.schedule(Math.max(0, at - this.timers.clock.now()), () => this.expire());
  }

  private intern(route: Destination): Destination {
    const id = `${route.protocol} ${route.address} ${route.port} ${route.connectionId ?? ''} ${route.connectionOnly ? 1 : 0}`;
    const known = this.interned.get(id);
    if (known) return known;
    if (this.interned.size >= MAX_INTERNED_ROUTES) this.interned.clear();
    // A copy of its own: the address may be a slice of a whole message's text.
    const kept: Destination = { ...route, address: Buffer.from(route.address, 'utf8').toString('utf8') };
    this.interned.set(id, kept);
    return kept;
  }
}
