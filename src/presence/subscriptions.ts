import type { Logger } from 'pino';
import type { LocalDomains } from '../core/local-domains.js';
import type { RequestContext } from '../core/services.js';
import type { RequestSender } from '../transaction/request-sender.js';
import { acceptRemoteSeq, createUasDialog, keyOf, recordRouteHeaders, refreshTarget, remoteTargetOf, requestDialogKey } from '../dialog/dialog.js';
import { SipParseError } from '../sip/errors.js';
import type { EventHeader } from '../sip/header-values.js';
import type { SipRequest } from '../sip/message.js';
import { randomToken } from '../sip/response.js';
import type { Flow } from '../transport/types.js';
import { ownString } from '../util/own-string.js';
import type { Timers, WallClock } from '../util/timers.js';
import { negotiateType } from './accept.js';
import type { EventPackage, NotifyBody, PackageHost, SubscriptionDecision } from './event-package.js';
import { DEFAULT_PRESENCE_EXPIRES, grantExpires, type ExpiryBounds } from './expires.js';
import { Notifier, type NotifierOptions, type NotifyFailure } from './notifier.js';
import { NO_PRESENCE_STATE_SINK, type PresenceStateSink } from './presence-state-sink.js';
import { presentityOf, watcherOf } from './presentity.js';
import { stringSharer, Subscription, type SubscriptionRecord, type TerminationReason, type WatcherEvent } from './subscription.js';

export interface SubscriptionSettings {
  readonly subscribeMinExpires: number;
  readonly subscribeMaxExpires: number;
  readonly maxSubscriptionsPerWatcher: number;
  /** RFC 6446 ideas: at most one NOTIFY per subscription per interval (0: off). */
  readonly notifyMinIntervalMs: number;
}

export interface SubscriptionManagerOptions {
  readonly domains: LocalDomains;
  readonly timers: Timers;
  readonly wallClock: WallClock;
  readonly settings: SubscriptionSettings;
  readonly transactions: RequestSender;
  /** Our Contact URI for a dialog whose requests come on `flow` (RFC 6665 §4.2.1.1). */
  readonly contactFor: (flow: Flow) => string;
  readonly sink?: PresenceStateSink;
  readonly logger?: Logger;
  /** How NOTIFYs are spread over turns of the event loop (tests; the defaults otherwise). */
  readonly notifyPacing?: Pick<NotifierOptions, 'sendsPerTurn' | 'nextTurn'>;
}

/** Which subscriptions to list. */
export interface SubscriptionFilter {
  readonly eventPackage?: string;
  readonly resource?: string;
  readonly watcher?: string;
}

/** The watcher event a termination reason is reported as (RFC 3857 §3.3: the same words). */
function eventOf(reason: TerminationReason): WatcherEvent {
  return reason === 'invariant' ? 'deactivated' : reason;
}

/**
 * The subscription state machine of RFC 6665 §4.2 for every event package: SUBSCRIBE
 * creates a subscription and its dialog, refreshes it, ends it (Expires: 0) or fetches
 * (Expires: 0 on a new one); expiry ends it with reason=timeout; the transitions an
 * owner's decisions need (approve, polite-block, reject, terminate) are here too.
 *
 *   (new) --allow/polite-block--> active --expiry/unsubscribe/reject/NOTIFY failure--> terminated
 *   (new) --confirm--> pending --approve--> active
 *                      pending --reject/expiry--> terminated
 *
 * Packages plug in through EventPackage; this file knows none of them.
 */
export class SubscriptionManager implements PackageHost {
  readonly notifier: Notifier;
  private readonly packages = new Map<string, EventPackage>();
  private readonly byId = new Map<string, Subscription>();
  private readonly byDialog = new Map<string, Subscription>();
  /**
   * Live subscriptions by package and resource: the subscription itself while it is the only
   * one (most resources have one watcher; a Set of one is ~180 B of heap), a Set past one.
   */
  private readonly byResource = new Map<string, Subscription | Set<Subscription>>();
  private readonly perWatcher = new Map<string, number>();
  private readonly bounds: ExpiryBounds;
  private readonly sink: PresenceStateSink;
  private readonly log?: Logger;

  constructor(private readonly options: SubscriptionManagerOptions) {
    const s = options.settings;
    this.bounds = { min: s.subscribeMinExpires, max: s.subscribeMaxExpires, fallback: DEFAULT_PRESENCE_EXPIRES };
    this.sink = options.sink ?? NO_PRESENCE_STATE_SINK;
    this.log = options.logger;
    this.notifier = new Notifier({
      transactions: options.transactions,
      timers: options.timers,
      wallClock: options.wallClock,
      minIntervalMs: s.notifyMinIntervalMs,
      logger: options.logger,
      ...options.notifyPacing,
      hooks: {
        body: (sub) => this.bodyOf(sub),
        sent: (sub) => {
          if (sub.live) this.sink.subscriptionChanged(sub.toRecord());
        },
        failed: (sub, failure) => this.notifyFailed(sub, failure),
      },
    });
  }

  /** Adds an event package; its name becomes a valid Event for SUBSCRIBE. */
  register(pkg: EventPackage): void {
    if (this.packages.has(pkg.name)) throw new Error(`event package ${pkg.name} registered twice`);
    this.packages.set(pkg.name, pkg);
    pkg.attach?.(this);
  }

  /** RFC 6665 §8.2.2 Allow-Events. */
  get eventPackages(): string[] {
    return [...this.packages.keys()];
  }

  get size(): number {
    return this.byId.size;
  }

  // ---- SUBSCRIBE (RFC 6665 §4.2.1) -------------------------------------------------

  async handleSubscribe(ctx: RequestContext): Promise<void> {
    const req = ctx.request;
    const event = req.event;
    const pkg = event ? this.packages.get(event.package) : undefined;
    if (!event || !pkg) {
      // RFC 6665 §4.2.1.1: an unknown or missing package is 489, with the packages we serve (§8.2.2).
      ctx.reply(489, 'Bad Event', { headers: [['Allow-Events', this.eventPackages.join(', ')]] });
      return;
    }
    // Read Expires now, so that a malformed one is a 400 before any state changes.
    const requested = req.expires;
    if (req.to.tag !== undefined) {
      this.inDialog(ctx, pkg, event, requested);
      return;
    }
    await this.create(ctx, pkg, event, requested);
  }

  /** RFC 6665 §4.2.1.2 refresh and §4.2.1.4 unsubscribe, within the subscription's dialog. */
  private inDialog(ctx: RequestContext, pkg: EventPackage, event: EventHeader, requested: number | undefined): void {
    const req = ctx.request;
    const key = requestDialogKey(req);
    const sub = key !== undefined ? this.byDialog.get(key) : undefined;
    if (!sub || sub.eventPackage !== pkg.name || sub.eventId !== event.id) {
      ctx.reply(481, 'Subscription Does Not Exist');
      return;
    }
    const grant = grantExpires(requested, this.bounds);
    if (!grant.ok) {
      ctx.reply(423, 'Interval Too Brief', { headers: [['Min-Expires', grant.minExpires]] });
      return;
    }
    if (req.contact) remoteTargetOf(req); // a bad Contact is a 400 before the CSeq is taken
    // RFC 3261 §12.2.2: a lower CSeq is out of order.
    if (!acceptRemoteSeq(sub.dialog, req)) {
      ctx.reply(500, 'Out of Order CSeq');
      return;
    }
    refreshTarget(sub.dialog, req, ctx.flow);
    const headers: Array<[string, string | number]> = [['Expires', grant.seconds], ['Contact', `<${sub.dialog.localContact}>`]];
    if (grant.seconds === 0) {
      ctx.reply(200, 'OK', { headers });
      // RFC 6665 §4.2.1.4: the unsubscribe gets a final NOTIFY with "terminated".
      this.terminate(sub, 'timeout');
      return;
    }
    sub.expiresAtMs = this.options.wallClock.nowMs() + grant.seconds * 1000;
    this.scheduleExpiry(sub);
    this.sink.subscriptionChanged(sub.toRecord());
    ctx.reply(200, 'OK', { headers });
    this.packages.get(sub.eventPackage)?.onRefresh?.(sub);
    // RFC 6665 §4.2.2: a refresh is answered with a NOTIFY of the current state.
    this.notifier.notify(sub);
  }

  /** RFC 6665 §4.2.1.1: a new subscription (or a fetch, §4.4.3). */
  private async create(ctx: RequestContext, pkg: EventPackage, event: EventHeader, requested: number | undefined): Promise<void> {
    const req = ctx.request;
    const from = req.from;
    if (from.tag === undefined) throw new SipParseError('Missing From tag');
    remoteTargetOf(req);
    const resource = presentityOf(req.uri, this.options.domains);
    if (resource === undefined) {
      ctx.reply(404, 'Not Found');
      return;
    }
    const contentType = negotiateType(req, pkg.accept);
    if (contentType === undefined) {
      ctx.reply(406, 'Not Acceptable', { headers: [['Accept', pkg.accept.join(', ')]] });
      return;
    }
    const grant = grantExpires(requested, this.bounds);
    if (!grant.ok) {
      ctx.reply(423, 'Interval Too Brief', { headers: [['Min-Expires', grant.minExpires]] });
      return;
    }
    const watcher = watcherOf(from.uri, this.options.domains);
    const fetch = grant.seconds === 0;
    if (!fetch && this.overLimit(watcher)) {
      this.tooMany(ctx, watcher);
      return;
    }
    // No 404 for a user of our domain without an account: the answer must not tell a
    // watcher who exists. Such a presentity is answered like one that never published:
    // the policy decides (pending under confirm), and its state is the neutral document.
    const decision: SubscriptionDecision = await pkg.authorize({ watcher, resource, request: req });
    if (decision === 'block') {
      // RFC 6665 §4.2.1.1: a subscriber known at once not to be authorized gets 403.
      ctx.reply(403, 'Forbidden');
      return;
    }
    // Checked again: another SUBSCRIBE of this watcher may have completed while we waited.
    if (!fetch && this.overLimit(watcher)) {
      this.tooMany(ctx, watcher);
      return;
    }

    const localTag = randomToken();
    const dialog = createUasDialog(req, ctx.flow, localTag, this.options.contactFor(ctx.flow));
    const nowMs = this.options.wallClock.nowMs();
    const sub = new Subscription({
      id: randomToken(12),
      eventPackage: pkg.name,
      ...(event.id !== undefined ? { eventId: event.id } : {}),
      resource,
      watcher,
      watcherUri: from.uri.raw,
      ...(from.displayName !== undefined ? { watcherDisplayName: from.displayName } : {}),
      contentType,
      dialog,
      createdAtMs: nowMs,
      expiresAtMs: nowMs + grant.seconds * 1000,
      status: decision === 'confirm' ? 'pending' : 'active',
      view: decision === 'polite-block' ? 'polite-block' : 'full',
    });
    // RFC 6665 §4.2.1.1: 200 (202 is deprecated), our tag, Expires granted, our Contact.
    ctx.reply(200, 'OK', { toTag: localTag, headers: [['Expires', grant.seconds], ['Contact', `<${dialog.localContact}>`], ...recordRouteHeaders(req)] });
    ctx.log.debug({ subscription: sub.id, event: pkg.name, resource, watcher, status: sub.status, expires: grant.seconds }, 'subscribe');
    if (fetch) {
      // RFC 6665 §4.4.3: a fetch is one NOTIFY with the state, and the subscription is over.
      this.emit(sub, 'subscribe');
      sub.status = 'terminated';
      sub.reason = 'timeout';
      this.emit(sub, 'timeout');
      this.notifier.notify(sub);
      return;
    }
    this.index(sub);
    this.scheduleExpiry(sub);
    this.sink.subscriptionChanged(sub.toRecord(), true);
    this.emit(sub, 'subscribe');
    // RFC 6665 §4.2.1.1: the NOTIFY follows the 200 at once (the 200 left first, above).
    this.notifier.notify(sub);
  }

  private overLimit(watcher: string): boolean {
    return (this.perWatcher.get(watcher) ?? 0) >= this.options.settings.maxSubscriptionsPerWatcher;
  }

  /**
   * Over the per-watcher bound: 403 rather than 503. The condition lasts until the watcher
   * ends some of its own subscriptions, so it is a refusal (RFC 3261 §21.4.3: "SHOULD NOT
   * be repeated"), not an overload that Retry-After would cure (§21.5.4); a 503 would also
   * send clients and proxies to fail over and retry.
   */
  private tooMany(ctx: RequestContext, watcher: string): void {
    ctx.log.info({ watcher, limit: this.options.settings.maxSubscriptionsPerWatcher }, 'too many subscriptions');
    ctx.reply(403, 'Too Many Subscriptions');
  }

  // ---- transitions (the owner's decisions, the security issue's entry points) -------

  /** pending → active (RFC 3857 event "approved"), or a polite-blocked watcher now sees the real state. */
  approve(sub: Subscription): boolean {
    if (!sub.live) return false;
    if (sub.status === 'pending') {
      sub.status = 'active';
      sub.authorized = true;
      sub.view = 'full';
      this.changed(sub, 'approved');
      return true;
    }
    if (sub.view === 'polite-block') {
      sub.view = 'full';
      this.changed(sub);
      return true;
    }
    return false;
  }

  /**
   * RFC 5025 §3.2.1 polite-block: the watcher looks accepted (a pending one becomes
   * active) but is shown a neutral state from now on.
   */
  politeBlock(sub: Subscription): boolean {
    if (!sub.live) return false;
    if (sub.status === 'active' && sub.view === 'polite-block') return false;
    const wasPending = sub.status === 'pending';
    sub.status = 'active';
    sub.authorized = true;
    sub.view = 'polite-block';
    this.changed(sub, wasPending ? 'approved' : undefined);
    return true;
  }

  /** RFC 6665 §4.1.3 reason=rejected: the owner said no. */
  reject(sub: Subscription): boolean {
    return this.terminate(sub, 'rejected');
  }

  /**
   * Ends a subscription: forgotten at once (a refresh gets 481), a final NOTIFY with
   * `terminated;reason=...` goes out after any NOTIFY in flight, unless `notify` is false
   * (its dialog no longer works).
   */
  terminate(sub: Subscription, reason: TerminationReason, notify = true): boolean {
    if (!sub.live) return false;
    sub.status = 'terminated';
    sub.reason = reason;
    this.options.timers.cancel(sub.expiryTimer);
    sub.expiryTimer = undefined;
    this.unindex(sub);
    this.sink.subscriptionRemoved(sub.id);
    this.emit(sub, eventOf(reason));
    this.packages.get(sub.eventPackage)?.onRemoved?.(sub);
    if (notify) this.notifier.notify(sub);
    else this.notifier.stop(sub);
    this.log?.debug({ subscription: sub.id, reason, notify }, 'subscription terminated');
    return true;
  }

  private changed(sub: Subscription, event?: WatcherEvent): void {
    this.sink.subscriptionChanged(sub.toRecord());
    if (event) this.emit(sub, event);
    this.notifier.notify(sub);
  }

  private notifyFailed(sub: Subscription, failure: NotifyFailure): void {
    // RFC 6665 §4.2.2: an error response or a timeout to a NOTIFY removes the subscription.
    this.log?.info({ subscription: sub.id, watcher: sub.watcher, ...failure }, 'NOTIFY failed: subscription removed');
    this.terminate(sub, 'deactivated', false);
  }

  private bodyOf(sub: Subscription): NotifyBody | undefined {
    // RFC 3856 §6.6 / RFC 6665 §4.2.1.1: nothing of the state goes out before authorization.
    if (sub.status === 'pending' || !sub.authorized) return undefined;
    return this.packages.get(sub.eventPackage)?.body(sub);
  }

  private emit(sub: Subscription, event: WatcherEvent): void {
    sub.lastEvent = event;
    for (const pkg of this.packages.values()) {
      if (!pkg.onSubscriptionEvent) continue;
      try {
        pkg.onSubscriptionEvent({ subscription: sub, event });
      } catch (err) {
        this.log?.error({ err, package: pkg.name }, 'subscription event listener failed');
      }
    }
  }

  // ---- expiry -----------------------------------------------------------------------

  private scheduleExpiry(sub: Subscription): void {
    const timers = this.options.timers;
    timers.cancel(sub.expiryTimer);
    const delay = Math.max(0, sub.expiresAtMs - this.options.wallClock.nowMs());
    sub.expiryTimer = timers.schedule(delay, this.expire, sub);
  }

  /** RFC 6665 §4.2.2: an expired subscription ends with reason=timeout (one function for every timer). */
  private readonly expire = (sub: Subscription): void => {
    sub.expiryTimer = undefined;
    this.terminate(sub, 'timeout');
  };

  // ---- indexes ----------------------------------------------------------------------

  private index(sub: Subscription, dialogKey: string = keyOf(sub.dialog)): void {
    this.byId.set(sub.id, sub);
    // Keys kept as long as the subscription are flat strings of their own: a key joined from
    // parts is a chain of concatenations (four or five heap objects) until something flattens it.
    this.byDialog.set(ownString(dialogKey), sub);
    const rk = resourceKey(sub.eventPackage, sub.resource);
    const held = this.byResource.get(rk);
    if (!held) this.byResource.set(ownString(rk), sub);
    else if (held instanceof Set) held.add(sub);
    else if (held !== sub) this.byResource.set(rk, new Set([held, sub]));
    this.perWatcher.set(sub.watcher, (this.perWatcher.get(sub.watcher) ?? 0) + 1);
  }

  private unindex(sub: Subscription): void {
    if (this.byId.get(sub.id) !== sub) return;
    this.byId.delete(sub.id);
    this.byDialog.delete(keyOf(sub.dialog));
    const rk = resourceKey(sub.eventPackage, sub.resource);
    const held = this.byResource.get(rk);
    if (held === sub) this.byResource.delete(rk);
    else if (held instanceof Set) {
      held.delete(sub);
      if (held.size === 1) this.byResource.set(rk, held.values().next().value!);
    }
    const n = (this.perWatcher.get(sub.watcher) ?? 1) - 1;
    if (n <= 0) this.perWatcher.delete(sub.watcher);
    else this.perWatcher.set(sub.watcher, n);
  }

  // ---- PackageHost and queries ------------------------------------------------------

  subscriptionsTo(eventPackage: string, resource: string): readonly Subscription[] {
    return [...members(this.byResource.get(resourceKey(eventPackage, resource)))];
  }

  hasSubscriptionsTo(eventPackage: string, resource: string): boolean {
    return this.byResource.has(resourceKey(eventPackage, resource));
  }

  resourceChanged(eventPackage: string, resource: string): void {
    for (const sub of members(this.byResource.get(resourceKey(eventPackage, resource)))) if (sub.status === 'active') this.notifier.notify(sub);
  }

  notify(sub: Subscription): void {
    this.notifier.notify(sub);
  }

  get(id: string): Subscription | undefined {
    return this.byId.get(id);
  }

  /** The live subscription whose dialog an in-dialog request names (the authenticator trusts its watcher). */
  dialogSubscription(req: SipRequest): Subscription | undefined {
    const key = requestDialogKey(req);
    return key !== undefined ? this.byDialog.get(key) : undefined;
  }

  list(filter: SubscriptionFilter = {}): Subscription[] {
    let source: Iterable<Subscription>;
    if (filter.resource !== undefined && filter.eventPackage !== undefined) source = members(this.byResource.get(resourceKey(filter.eventPackage, filter.resource)));
    else source = this.byId.values();
    const out: Subscription[] = [];
    for (const s of source) {
      if (filter.eventPackage !== undefined && s.eventPackage !== filter.eventPackage) continue;
      if (filter.resource !== undefined && s.resource !== filter.resource) continue;
      if (filter.watcher !== undefined && s.watcher !== filter.watcher) continue;
      out.push(s);
    }
    return out;
  }

  /** Resources with at least one live subscription of `eventPackage`. */
  resources(eventPackage: string): string[] {
    const prefix = `${eventPackage}\u0000`;
    return [...this.byResource.keys()].filter((k) => k.startsWith(prefix)).map((k) => k.slice(prefix.length));
  }

  /**
   * Puts stored subscriptions back after a restart: the live ones go on in their dialogs,
   * `notify` sending each a NOTIFY of the current state (what it last saw may have changed
   * while we were down). Ones that expired while we were down end as if their timer had
   * fired: with `notify`, a final NOTIFY `terminated;reason=timeout` (RFC 6665 §4.2.2).
   */
  restore(records: readonly SubscriptionRecord[], options: { notify?: boolean } = {}): number {
    const nowMs = this.options.wallClock.nowMs();
    const shared = stringSharer();
    let restored = 0;
    for (const r of records) {
      if (!this.packages.has(r.eventPackage) || this.byId.has(r.id)) continue;
      const expired = r.expiresAtMs <= nowMs;
      if (expired && !options.notify) {
        this.sink.subscriptionRemoved(r.id);
        continue;
      }
      const sub = Subscription.fromRecord(r, shared);
      const dialogKey = keyOf(sub.dialog);
      if (this.byDialog.has(dialogKey)) continue;
      if (expired) {
        this.index(sub, dialogKey);
        this.terminate(sub, 'timeout');
        continue;
      }
      this.index(sub, dialogKey);
      this.scheduleExpiry(sub);
      restored++;
      if (options.notify) this.notifier.notify(sub);
    }
    return restored;
  }

  /** Cancels every timer (server stop). Subscriptions stay in memory for a store to flush. */
  close(): void {
    for (const sub of this.byId.values()) {
      this.options.timers.cancel(sub.expiryTimer);
      sub.expiryTimer = undefined;
      this.notifier.stop(sub);
    }
  }
}

/** The subscriptions a byResource entry holds. */
function members(held: Subscription | Set<Subscription> | undefined): Iterable<Subscription> {
  return held instanceof Set ? held : held ? [held] : [];
}

function resourceKey(eventPackage: string, resource: string): string {
  return `${eventPackage}\u0000${resource}`;
}
