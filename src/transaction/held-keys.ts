import type { TimerHandle, Timers } from '../util/timers.js';

/**
 * Transaction keys held for one fixed time each (a timer of RFC 3261 §17 that is the same for
 * every transaction of a kind: J for non-INVITE server transactions, K for non-INVITE client
 * ones, over unreliable transports), in the order they came: since the time is fixed they
 * expire in that order too, so one timer for the oldest replaces a timer and a closure each.
 * Under load these are most of the transactions alive at once, and an object fewer each is
 * what the old generation's marking and the heap trimmer's compaction feel.
 *
 * Subclasses keep values beside each key in arrays of their own, parallel to the keys: they
 * push an entry's values right after `hold`, let go of expired ones (`released`), and drop
 * the expired front when the keys do (`shifted`) or everything (`emptied`).
 */
export abstract class HeldKeys {
  /** Key -> sequence number (below 2^30, so a small integer, not a boxed number). */
  private readonly index = new Map<string, number>();
  private keys: string[] = [];
  private expiries: number[] = [];
  /** Position of the oldest live entry in the arrays. */
  private head = 0;
  /** Sequence number of `keys[0]`. */
  private firstSeq = 0;
  private timer: TimerHandle | undefined;

  constructor(
    protected readonly timers: Timers,
    /** How long each key is held (ms). */
    private readonly holdMs: number,
  ) {}

  get size(): number {
    return this.index.size;
  }

  has(key: string): boolean {
    return this.index.has(key);
  }

  /** Forgets everything and stops the timer (the layer is closing). */
  clear(): void {
    this.index.clear();
    this.empty();
  }

  /** Ends one entry before its time. */
  delete(key: string): void {
    const i = this.position(key);
    this.index.delete(key);
    // The slot stays in the arrays until it reaches the head; its key no longer maps to it.
    if (i !== undefined) this.keys[i] = '';
    if (this.index.size === 0) this.empty();
  }

  /** Holds `key` from now for the fixed time (a key held already starts again); the subclass then pushes its values. */
  protected hold(key: string): void {
    if (this.index.has(key)) this.delete(key);
    const seq = (this.firstSeq + this.keys.length) & 0x3fffffff;
    this.index.set(key, seq);
    this.keys.push(key);
    this.expiries.push(this.timers.clock.now() + this.holdMs);
    if (!this.timer) this.arm();
  }

  /** Where `key`'s values are in the parallel arrays, or undefined when it is not held. */
  protected position(key: string): number | undefined {
    const seq = this.index.get(key);
    if (seq === undefined) return undefined;
    return (seq - this.firstSeq) & 0x3fffffff;
  }

  /** Slot `i` expired: let its values go (they stay as placeholders until the front is dropped). */
  protected abstract released(i: number): void;
  /** The first `n` slots are dropped: slice them off. */
  protected abstract shifted(n: number): void;
  /** Nothing is held: drop the arrays. */
  protected abstract emptied(): void;

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
    const from = this.head;
    this.head = i;
    if (this.head === n) {
      this.empty();
      return;
    }
    // Drop the expired front in one move once it is the larger part (amortized O(1) a entry).
    if (this.head > 1024 && this.head * 2 > n) {
      this.keys = this.keys.slice(this.head);
      this.expiries = this.expiries.slice(this.head);
      this.shifted(this.head);
      this.firstSeq = (this.firstSeq + this.head) & 0x3fffffff;
      this.head = 0;
    } else {
      // Let the expired strings go now, not when the front is dropped.
      for (let j = from; j < this.head; j++) {
        this.keys[j] = '';
        this.released(j);
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
    this.expiries = [];
    this.head = 0;
    this.emptied();
  }

  private arm(): void {
    const at = this.expiries[this.head];
    if (at === undefined) return;
    this.timer = this.timers.schedule(Math.max(0, at - this.timers.clock.now()), () => this.expire());
  }
}

/**
 * Non-INVITE client transactions in Completed over an unreliable transport (RFC 3261
 * §17.1.2.2): all such a transaction still does is absorb retransmissions of its final
 * response until Timer K (T4) ends it, so only its key is held, and the transaction with its
 * request, its response and its user's callbacks is let go at once (under load the NOTIFYs
 * and relayed MESSAGEs of the last 5 s).
 */
export class CompletedClients extends HeldKeys {
  /** A transaction entered Completed: absorb its final response's retransmissions until Timer K. */
  add(key: string): void {
    this.hold(key);
  }

  protected released(): void {}
  protected shifted(): void {}
  protected emptied(): void {}
}
