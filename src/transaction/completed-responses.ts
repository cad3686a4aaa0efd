import type { Destination } from '../transport/types.js';
import type { Timers } from '../util/timers.js';
import { HeldKeys } from './held-keys.js';

/** Sends a kept final response again; rejects on a transport error. */
export type Resend = (data: Buffer, route: Destination) => Promise<void>;

/** Routes interned at most; past it the table starts a new set (old entries keep theirs). */
const MAX_INTERNED_ROUTES = 4096;

/**
 * Non-INVITE server transactions in Completed over an unreliable transport (RFC 3261
 * §17.2.2). All such a transaction still does is resend its final response whenever its
 * request comes again, until Timer J (64*T1) ends it. Under load that is most of the live
 * state (a PUBLISH at 4,000 calls/s leaves 256,000 of them), so the table holds for each only
 * its key (HeldKeys: in the order they came, one timer for the oldest) and its response bytes
 * (a one-byte string, see NonInviteServerTransaction) in an array beside it. The route is
 * shared by every response to the same address.
 */
export class CompletedResponses extends HeldKeys {
  private sent: string[] = [];
  private routes: Destination[] = [];
  private readonly interned = new Map<string, Destination>();

  constructor(
    timers: Timers,
    /** Timer J (ms). */
    holdMs: number,
    private readonly resend: Resend,
    private readonly onResendError: (err: unknown) => void = () => {},
  ) {
    super(timers, holdMs);
  }

  /** A transaction entered Completed: keep its response until Timer J. */
  add(key: string, response: string, route: Destination): void {
    this.hold(key);
    this.sent.push(response);
    this.routes.push(this.intern(route));
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

  protected released(i: number): void {
    this.sent[i] = '';
  }

  protected shifted(n: number): void {
    this.sent = this.sent.slice(n);
    this.routes = this.routes.slice(n);
  }

  protected emptied(): void {
    this.sent = [];
    this.routes = [];
    this.interned.clear();
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
