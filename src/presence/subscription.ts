import { snapshotDialog, type Dialog, type DialogFlow } from '../dialog/dialog.js';
import type { TimerHandle } from '../util/timers.js';
import { ownString } from '../util/own-string.js';

/** RFC 6665 §4.1.3 Subscription-State values. */
export type SubscriptionStatus = 'pending' | 'active' | 'terminated';

/** RFC 6665 §4.1.3 (and §8.2.3 registry) reasons a subscription ends. */
export type TerminationReason = 'deactivated' | 'probation' | 'rejected' | 'timeout' | 'giveup' | 'noresource' | 'invariant';

export const TERMINATION_REASONS: readonly TerminationReason[] = ['deactivated', 'probation', 'rejected', 'timeout', 'giveup', 'noresource', 'invariant'];

/**
 * What an authorized watcher is shown: the real state, or (RFC 5025 §3.2.1 polite-block)
 * a neutral one that tells nothing while looking like an accepted subscription.
 */
export type SubscriptionView = 'full' | 'polite-block';

/** RFC 3858 §4 watcher `event` values: what last happened to a watcher's subscription. */
export type WatcherEvent = 'subscribe' | 'approved' | 'deactivated' | 'probation' | 'rejected' | 'timeout' | 'giveup' | 'noresource';

/** The notifier's bookkeeping for one subscription (one NOTIFY in flight at most). */
export interface NotifyBookkeeping {
  /** A NOTIFY is waiting for its final response. */
  inFlight: boolean;
  /** The state changed since the last NOTIFY was built. */
  dirty: boolean;
  /** Timer clock ms of the last NOTIFY sent (rate control). */
  lastSentAt?: number;
  /** The timer of a NOTIFY held back by rate control. */
  throttle?: TimerHandle;
  /** The final NOTIFY went out, or the subscription was dropped: nothing more is sent. */
  finished: boolean;
}

/**
 * The stored form of a subscription with its dialog (RFC 6665 §4.2.1): everything needed
 * to go on sending NOTIFYs after a restart. Expiry is wall-clock ms.
 */
export interface SubscriptionRecord {
  readonly id: string;
  readonly eventPackage: string;
  /** Event header `id` parameter (RFC 6665 §8.2.1), when the SUBSCRIBE had one. */
  readonly eventId?: string;
  /** The resource watched (a presentity's canonical URI). */
  readonly resource: string;
  /** The watcher's address of record. */
  readonly watcher: string;
  /** The From URI of the SUBSCRIBE, as written. */
  readonly watcherUri: string;
  readonly watcherDisplayName?: string;
  readonly status: 'pending' | 'active';
  readonly view: SubscriptionView;
  /** NOTIFY body type negotiated from Accept. */
  readonly contentType: string;
  readonly expiresAtMs: number;
  readonly createdAtMs: number;
  /** Bodies sent so far (RFC 3858 §4 version numbers go on from here). */
  readonly documentVersion: number;
  readonly lastEvent: WatcherEvent;
  readonly authorized: boolean;
  readonly dialog: Dialog;
}

export interface SubscriptionInit {
  readonly id: string;
  readonly eventPackage: string;
  readonly eventId?: string;
  readonly resource: string;
  readonly watcher: string;
  readonly watcherUri: string;
  readonly watcherDisplayName?: string;
  readonly contentType: string;
  readonly dialog: Dialog;
  readonly createdAtMs: number;
  readonly expiresAtMs: number;
  readonly status: 'pending' | 'active';
  readonly view: SubscriptionView;
  readonly documentVersion?: number;
  readonly lastEvent?: WatcherEvent;
  readonly authorized?: boolean;
}

/**
 * One subscription (RFC 6665 §4.2.1) and the dialog it lives in: one subscription a
 * dialog, so the dialog ends with it (RFC 6665 §4.5.2 deprecates dialog reuse).
 */
export class Subscription {
  readonly id: string;
  readonly eventPackage: string;
  readonly eventId?: string;
  readonly resource: string;
  readonly watcher: string;
  readonly watcherUri: string;
  readonly watcherDisplayName?: string;
  readonly contentType: string;
  readonly dialog: Dialog;
  readonly createdAtMs: number;
  status: SubscriptionStatus;
  reason?: TerminationReason;
  view: SubscriptionView;
  expiresAtMs: number;
  expiryTimer?: TimerHandle;
  /** Bodies built so far for this subscription. */
  documentVersion: number;
  lastEvent: WatcherEvent;
  /** Was ever allowed to see the resource's state (active at some point). */
  authorized: boolean;
  // Every field named at creation: one added later takes an array of its own beside the object.
  readonly notify: NotifyBookkeeping = { inFlight: false, dirty: false, lastSentAt: undefined, throttle: undefined, finished: false };

  /**
   * `own` copies each string kept (default: ownString, for strings cut out of a SUBSCRIBE);
   * a restore passes one that shares the few values many subscriptions have.
   */
  constructor(init: SubscriptionInit, own: (s: string) => string = ownString) {
    // Kept as long as the subscription: strings of their own, not slices of the SUBSCRIBE.
    this.id = own(init.id);
    this.eventPackage = own(init.eventPackage);
    this.eventId = init.eventId === undefined ? undefined : own(init.eventId);
    this.resource = own(init.resource);
    this.watcher = own(init.watcher);
    // Usually the same text as the watcher's address of record: one string for both.
    this.watcherUri = init.watcherUri === init.watcher ? this.watcher : own(init.watcherUri);
    this.watcherDisplayName = init.watcherDisplayName === undefined ? undefined : own(init.watcherDisplayName);
    this.contentType = own(init.contentType);
    this.dialog = init.dialog;
    this.createdAtMs = init.createdAtMs;
    this.expiresAtMs = init.expiresAtMs;
    this.status = init.status;
    this.view = init.view;
    this.documentVersion = init.documentVersion ?? 0;
    this.lastEvent = init.lastEvent ?? 'subscribe';
    this.authorized = init.authorized ?? init.status === 'active';
  }

  get live(): boolean {
    return this.status !== 'terminated';
  }

  /** Event header value of our NOTIFYs: the package and the subscription's id (RFC 6665 §8.2.1). */
  get eventHeader(): string {
    return this.eventId !== undefined ? `${this.eventPackage};id=${this.eventId}` : this.eventPackage;
  }

  /** RFC 6665 §4.1.3 Subscription-State at `nowMs` (wall clock). */
  stateHeader(nowMs: number): string {
    if (this.status === 'terminated') return `terminated;reason=${this.reason ?? 'timeout'}`;
    return `${this.status};expires=${Math.max(0, Math.ceil((this.expiresAtMs - nowMs) / 1000))}`;
  }

  toRecord(): SubscriptionRecord {
    if (this.status === 'terminated') throw new Error('a terminated subscription has no record');
    return {
      id: this.id,
      eventPackage: this.eventPackage,
      ...(this.eventId !== undefined ? { eventId: this.eventId } : {}),
      resource: this.resource,
      watcher: this.watcher,
      watcherUri: this.watcherUri,
      ...(this.watcherDisplayName !== undefined ? { watcherDisplayName: this.watcherDisplayName } : {}),
      status: this.status,
      view: this.view,
      contentType: this.contentType,
      expiresAtMs: this.expiresAtMs,
      createdAtMs: this.createdAtMs,
      documentVersion: this.documentVersion,
      lastEvent: this.lastEvent,
      authorized: this.authorized,
      dialog: snapshotDialog(this.dialog),
    };
  }

  /**
   * A stored subscription back in memory. Its strings come from the store's thread (copies
   * of their own already); `shared` keeps one copy of the values many subscriptions repeat.
   */
  static fromRecord(r: SubscriptionRecord, shared: (s: string) => string = ownString): Subscription {
    // A connection id names nothing after a restart (and could name someone else's).
    const f = r.dialog.flow;
    const flow: DialogFlow = { protocol: shared(f.protocol) as DialogFlow['protocol'], remoteAddress: shared(f.remoteAddress), remotePort: f.remotePort, localAddress: shared(f.localAddress), localPort: f.localPort };
    const d = r.dialog;
    // Fields named, not spread: spreads of the record and its dialog were a good part of a
    // start-up's restore (100,000 subscriptions).
    const dialog: Dialog = {
      callId: d.callId,
      localTag: d.localTag,
      remoteTag: d.remoteTag,
      localUri: d.localUri,
      remoteUri: d.remoteUri,
      localSeq: d.localSeq,
      remoteSeq: d.remoteSeq,
      routeSet: d.routeSet.map(shared),
      remoteTarget: d.remoteTarget,
      secure: d.secure,
      localContact: shared(d.localContact),
      flow,
    };
    const kept = (s: string): string => s;
    const init: { -readonly [K in keyof SubscriptionInit]: SubscriptionInit[K] } = {
      id: r.id,
      eventPackage: shared(r.eventPackage),
      resource: r.resource,
      watcher: r.watcher,
      watcherUri: r.watcherUri,
      contentType: shared(r.contentType),
      dialog,
      createdAtMs: r.createdAtMs,
      expiresAtMs: r.expiresAtMs,
      status: r.status,
      view: r.view,
      documentVersion: r.documentVersion,
      lastEvent: r.lastEvent,
      authorized: r.authorized,
    };
    if (r.eventId !== undefined) init.eventId = r.eventId;
    if (r.watcherDisplayName !== undefined) init.watcherDisplayName = r.watcherDisplayName;
    const sub = new Subscription(init, kept);
    sub.status = shared(r.status) as Subscription['status'];
    sub.view = shared(r.view) as SubscriptionView;
    sub.lastEvent = shared(r.lastEvent) as WatcherEvent;
    return sub;
  }
}

/**
 * How far CSeq and version skip after a crash: more NOTIFYs than one subscription sends in
 * a flush window (one at a time, each waiting for its 200; a store outage that holds the
 * write-behind back for longer is the one case it may not cover).
 */
export const CRASH_SKIP = 10_000;
/** RFC 3261 §8.1.1.5: a CSeq sequence number is below 2**31. */
const MAX_CSEQ = 2 ** 31 - 1;

/**
 * A subscription read back after the server died without its final flush: NOTIFYs of the
 * last flush window may have gone out unwritten, so its CSeq and version skip ahead of any
 * the watcher may have seen. A lower or repeated CSeq would be refused (RFC 3261 §12.2.2:
 * 500, which ends the subscription), a higher one is in order; the NOTIFY a restored
 * subscription gets first carries full state, so a gap in the version is harmless
 * (RFC 3857 §4.4, RFC 4235 §4.1, RFC 3680 §5.2). The skipped record must be written before
 * the first NOTIFY goes out, or a second crash would skip to the same numbers.
 */
export function skipAfterCrash(r: SubscriptionRecord): SubscriptionRecord {
  return {
    ...r,
    documentVersion: r.documentVersion + CRASH_SKIP,
    dialog: { ...r.dialog, localSeq: Math.min(MAX_CSEQ, r.dialog.localSeq + CRASH_SKIP) },
  };
}

/**
 * A function that returns one string for equal texts, for values that many records repeat
 * (package, body type, our Contact, the proxy in a route set); `limit` bounds what it keeps.
 */
export function stringSharer(limit = 4096): (s: string) => string {
  const seen = new Map<string, string>();
  return (s) => {
    const hit = seen.get(s);
    if (hit !== undefined) return hit;
    if (seen.size < limit) seen.set(s, s);
    return s;
  };
}
