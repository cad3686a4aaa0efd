import type { WallClock } from '../../util/timers.js';
import type { EventPackage, NotifyBody, PackageHost, SubscribeAttempt, SubscriptionDecision, SubscriptionEvent } from '../event-package.js';
import type { Subscription, WatcherEvent } from '../subscription.js';
import { buildWatcherInfo, type WatcherInfoStatus } from './watcherinfo-document.js';
import { watcherOf, type RemoteWatcher, type RemoteWatchers } from './remote-watchers.js';

/** RFC 3858 §7: the watcher information body type. */
export const WATCHERINFO_CONTENT_TYPE = 'application/watcherinfo+xml';

/** RFC 3858 §4 watcher status. */
export type WatcherStatus = WatcherInfoStatus;

/** One `<watcher>` as it stood when its event happened. */
export interface WatcherSnapshot {
  /** RFC 3858 §4: unique per subscription; the subscription's id. */
  readonly id: string;
  readonly uri: string;
  readonly displayName?: string;
  readonly status: WatcherStatus;
  readonly event: WatcherEvent;
  /** Seconds since the subscription began. */
  readonly durationSubscribed: number;
  /** Seconds left, for live subscriptions. */
  readonly expiration?: number;
}

/** What one winfo subscriber has been sent. */
interface SubscriberState {
  /** A full document went out since the subscription began or was refreshed. */
  fullSent: boolean;
  /** Watchers changed since the last document, by id (newest snapshot wins). */
  changes: Map<string, WatcherSnapshot>;
}

/** Changed watchers kept per winfo subscriber before a full document is sent instead. */
const MAX_PENDING_CHANGES = 1000;

/** Who may see a resource's watchers (the security issue may pass its own). */
export type WatcherInfoAuthorization = (attempt: SubscribeAttempt) => SubscriptionDecision | Promise<SubscriptionDecision>;

/**
 * RFC 3857 §5.3: by default only the presentity itself may see who watches it; anyone
 * else is refused.
 */
export const OWNER_ONLY: WatcherInfoAuthorization = (a) => (a.watcher === a.resource ? 'allow' : 'block');

/**
 * The watcher information template package (RFC 3857) over a watched package: a
 * subscriber learns who subscribes to a resource through `<package>.winfo`, with a full
 * RFC 3858 document first (and after each refresh), then partial ones with the watchers
 * that changed, version numbers going up by one per document.
 */
export class WatcherInfoPackage implements EventPackage {
  readonly name: string;
  readonly accept = [WATCHERINFO_CONTENT_TYPE] as const;
  private host?: PackageHost;
  private readonly states = new Map<string, SubscriberState>();

  constructor(
    private readonly wallClock: WallClock,
    private readonly watched = 'presence',
    private readonly authorization: WatcherInfoAuthorization = OWNER_ONLY,
    /** Watchers held on other nodes (a cluster): listed too, and their news told. */
    private readonly remote?: RemoteWatchers,
  ) {
    this.name = `${watched}.winfo`;
    remote?.listen((resource, w) => this.tell(resource, () => this.remoteSnapshot(w)));
  }

  attach(host: PackageHost): void {
    this.host = host;
  }

  authorize(attempt: SubscribeAttempt): SubscriptionDecision | Promise<SubscriptionDecision> {
    const remote = this.remote;
    if (!remote) return this.authorization(attempt);
    // The other nodes' watchers are known before the first (full) document is built.
    return (async () => {
      const decision = await this.authorization(attempt);
      if (decision !== 'block') await remote.follow(attempt.resource);
      return decision;
    })();
  }

  /** RFC 3857 §3.3: each watcher event of the watched package is news for the resource's winfo subscribers. */
  onSubscriptionEvent(e: SubscriptionEvent): void {
    const sub = e.subscription;
    if (sub.eventPackage !== this.watched || !this.host) return;
    this.remote?.tell(sub.resource, watcherOf(sub, e.event));
    this.tell(sub.resource, () => this.snapshot(sub, e.event));
  }

  /** A watcher of `resource` changed (here or on another node): its winfo subscribers hear of it. */
  private tell(resource: string, snapshotOf: () => WatcherSnapshot): void {
    if (!this.host) return;
    const subscribers = this.host.subscriptionsTo(this.name, resource);
    if (subscribers.length === 0) return;
    const snapshot = snapshotOf();
    for (const w of subscribers) {
      if (w.status !== 'active') continue;
      const st = this.stateOf(w);
      if (st.fullSent) {
        st.changes.delete(snapshot.id);
        st.changes.set(snapshot.id, snapshot);
        // Too much to tell piecemeal: the next document is a full one.
        if (st.changes.size > MAX_PENDING_CHANGES) {
          st.fullSent = false;
          st.changes.clear();
        }
      }
      this.host.notify(w);
    }
  }

  body(sub: Subscription): NotifyBody | undefined {
    // The final NOTIFY of a winfo subscription needs no document (RFC 6665 §4.2.2).
    if (sub.status === 'terminated' || !this.host) return undefined;
    const st = this.stateOf(sub);
    let state: 'full' | 'partial';
    let watchers: WatcherSnapshot[];
    if (!st.fullSent) {
      state = 'full';
      watchers = this.host.subscriptionsTo(this.watched, sub.resource).map((w) => this.snapshot(w, w.lastEvent));
      for (const w of this.remote?.of(sub.resource) ?? []) watchers.push(this.remoteSnapshot(w));
      st.fullSent = true;
    } else {
      state = 'partial';
      watchers = [...st.changes.values()];
    }
    st.changes.clear();
    // RFC 3858 §4: version 0 first, then one up for every document sent in the subscription.
    const version = sub.documentVersion++;
    const body = buildWatcherInfo({
      version,
      state,
      resource: sub.resource,
      package: this.watched,
      watchers: watchers.map((w) => ({
        id: w.id,
        uri: w.uri,
        status: w.status,
        event: w.event,
        durationSubscribed: w.durationSubscribed,
        ...(w.displayName !== undefined ? { displayName: w.displayName } : {}),
        ...(w.expiration !== undefined ? { expiration: w.expiration } : {}),
      })),
    });
    return { contentType: WATCHERINFO_CONTENT_TYPE, body };
  }

  /** The NOTIFY answering a refresh carries the full state (RFC 3858 §4: a subscriber that lost track refreshes to get it). */
  onRefresh(sub: Subscription): void {
    const st = this.stateOf(sub);
    st.fullSent = false;
    st.changes.clear();
  }

  onRemoved(sub: Subscription): void {
    this.states.delete(sub.id);
  }

  private stateOf(sub: Subscription): SubscriberState {
    let st = this.states.get(sub.id);
    if (!st) this.states.set(sub.id, (st = { fullSent: false, changes: new Map() }));
    return st;
  }

  /** A watcher's `<watcher>` as of now (RFC 3858 §4: duration and expiration from this node's clock). */
  private remoteSnapshot(w: RemoteWatcher): WatcherSnapshot {
    const nowMs = this.wallClock.nowMs();
    const live = w.status !== 'terminated';
    return {
      id: w.id,
      uri: w.uri,
      ...(w.displayName !== undefined ? { displayName: w.displayName } : {}),
      status: w.status,
      event: w.event,
      durationSubscribed: Math.max(0, Math.round((nowMs - w.createdAtMs) / 1000)),
      ...(live ? { expiration: Math.max(0, Math.ceil((w.expiresAtMs - nowMs) / 1000)) } : {}),
    };
  }

  private snapshot(sub: Subscription, event: WatcherEvent): WatcherSnapshot {
    return this.remoteSnapshot(watcherOf(sub, event));
  }

}
