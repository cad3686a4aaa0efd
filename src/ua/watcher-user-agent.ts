import type { WatcherInfoDocument } from '../presence/winfo/watcherinfo-document.js';
import type { SipRequest } from '../sip/message.js';
import { ClientSubscription, type ListUpdate, type PresenceUpdate, type SubscriptionStatus, type WatchedEvent } from './client-subscription.js';
import { TypedEmitter } from './emitter.js';
import type { EventStateUpdate, StateEvent } from './event-state.js';
import { flowRecoveryDelayMs } from './refresh.js';
import type { RequestAnswer, UserAgent } from './user-agent.js';

/** A connection that stayed up this long counts as recovered: the next loss is refreshed at once again. */
const FLOW_QUIET_MS = 5 * 60_000;

export interface WatcherUserAgentOptions {
  /** Requested subscription duration in seconds (default 3600). */
  readonly expires?: number;
  /** Seconds before re-subscribing when the server gave no retry-after (default 30). */
  readonly retrySeconds?: number;
}

export type WatcherUserAgentEvents = {
  /** A NOTIFY for one of the watched presentities (each resource of a list NOTIFY too). */
  presence: (update: PresenceUpdate) => void;
  /** A list NOTIFY (RFC 4662): the RLMI version, full or partial state, and its resources. */
  list: (update: ListUpdate) => void;
  /** presence.winfo: who watches us, and in what state (RFC 3857). */
  watchers: (doc: WatcherInfoDocument) => void;
  /** dialog, message-summary or reg: a NOTIFY's body and its summary line. */
  state: (update: EventStateUpdate) => void;
  status: (target: string, status: SubscriptionStatus, reason?: string) => void;
  error: (err: Error, target: string) => void;
};

/**
 * The watcher user agent (RFC 3856 §5, RFC 6665 subscriber): subscribes to presentities
 * and to its own watcher information, answers every NOTIFY, and reports each one as a
 * typed value. One SIP user agent, many subscriptions (each its own dialog).
 */
export class WatcherUserAgent extends TypedEmitter<WatcherUserAgentEvents> {
  /** Live dialogs by Call-ID and our tag. */
  private readonly dialogs = new Map<string, ClientSubscription>();
  private readonly subs: ClientSubscription[] = [];
  /** Connection losses in a row (none for FLOW_QUIET_MS resets it), for RFC 5626 §4.5 backoff. */
  private flowFailures = 0;
  private lastFlowFailure = -Infinity;
  private readonly onConnectionLost = (): void => this.flowLost();

  constructor(private readonly ua: UserAgent, private readonly options: WatcherUserAgentOptions = {}) {
    super();
    ua.handle('NOTIFY', (req) => this.receiveNotify(req));
    ua.on('connectionLost', this.onConnectionLost);
  }

  /** Every subscription made, live or ended. */
  get subscriptions(): readonly ClientSubscription[] {
    return this.subs;
  }

  /**
   * Subscribes to `target`'s presence (`bob`, `bob@example.com` or a URI). Resolves once
   * the server accepted (2xx); the state comes in `presence` events.
   */
  watch(target: string): Promise<ClientSubscription> {
    return this.start(this.ua.resolveTarget(target), 'presence');
  }

  /**
   * Subscribes to a list (RFC 4662): one subscription, one NOTIFY stream for every member.
   * Without `entries`, `target` is a list the server keeps (`sip:carol+presence@example.com`,
   * or `presence` for our own); with them, the list goes in the SUBSCRIBE (RFC 5367) to
   * `target`, the RLS address (`rls` for sip:rls@<our domain>).
   */
  watchList(target: string, entries?: readonly string[]): Promise<ClientSubscription> {
    const uri = entries === undefined && !target.includes('@') && !target.includes(':') ? this.ua.aor.replace(/^(sips?:[^@]+)@/, `$1+${target}@`) : this.ua.resolveTarget(target);
    return this.start(uri, 'presence', entries === undefined ? {} : { entries: entries.map((e) => this.ua.resolveTarget(e)) });
  }

  /** Subscribes to our own watcher information (RFC 3857): pending watchers to authorize. */
  watchWatchers(): Promise<ClientSubscription> {
    return this.start(this.ua.aor, 'presence.winfo');
  }

  /**
   * Subscribes to another package of `target` (ourselves when omitted): its busy lamp
   * (dialog, RFC 4235), message waiting (RFC 3842) or registrations (reg, RFC 3680). The
   * state comes in `state` events.
   */
  watchEvent(event: StateEvent, target?: string): Promise<ClientSubscription> {
    return this.start(target === undefined ? this.ua.aor : this.ua.resolveTarget(target), event);
  }

  private async start(target: string, event: WatchedEvent, list?: { entries?: readonly string[] }): Promise<ClientSubscription> {
    const sub = new ClientSubscription(this.ua, target, { event, expires: this.options.expires, retrySeconds: this.options.retrySeconds, ...(list ? { list } : {}) }, this.dialogs);
    sub.on('presence', (u) => this.emit('presence', u));
    sub.on('list', (u) => this.emit('list', u));
    sub.on('watchers', (d) => this.emit('watchers', d));
    sub.on('state', (u) => this.emit('state', u));
    sub.on('status', (s, r) => this.emit('status', target, s, r));
    sub.on('error', (e) => this.emit('error', e, target));
    await sub.subscribe();
    this.subs.push(sub);
    return sub;
  }

  /** Ends every subscription (Expires: 0). */
  async close(): Promise<void> {
    this.ua.off('connectionLost', this.onConnectionLost);
    await Promise.all(this.subs.map((s) => s.unsubscribe().catch(() => undefined)));
  }

  /** Our TCP/TLS connection closed: NOTIFYs cannot reach us until each dialog is refreshed on a new one. */
  private flowLost(): void {
    const now = this.ua.timers.clock.now();
    if (now - this.lastFlowFailure > FLOW_QUIET_MS) this.flowFailures = 0;
    this.lastFlowFailure = now;
    const delay = flowRecoveryDelayMs(++this.flowFailures);
    for (const sub of this.subs) sub.flowLost(delay);
  }

  private receiveNotify(req: SipRequest): RequestAnswer {
    const toTag = req.to.tag;
    const sub = toTag !== undefined ? this.dialogs.get(`${req.callId}\u0000${toTag}`) : undefined;
    // RFC 6665 §4.1.3: a NOTIFY matching no subscription gets 481.
    if (!sub) return { status: 481, reason: 'Subscription Does Not Exist' };
    const event = req.event;
    if (!event || event.package !== sub.event) return { status: 489, reason: 'Bad Event' };
    return sub.receiveNotify(req);
  }
}
