import type { Subscription, WatcherEvent } from '../subscription.js';
import type { WatcherStatus } from './winfo-package.js';

/**
 * A watcher (a presence subscription) as other nodes learn of it: times are wall-clock ms,
 * so that each node tells its duration and expiration from its own clock.
 */
export interface RemoteWatcher {
  /** The subscription's id (RFC 3858 §4: unique per subscription). */
  readonly id: string;
  readonly uri: string;
  readonly displayName?: string;
  readonly status: WatcherStatus;
  readonly event: WatcherEvent;
  readonly createdAtMs: number;
  readonly expiresAtMs: number;
}

/**
 * Watchers held on other nodes of a cluster (DESIGN: "Past one machine"), for watcher
 * information (RFC 3857): a winfo subscriber here lists every node's watchers and hears of
 * their changes. A single process has none.
 */
export interface RemoteWatchers {
  /** A watcher event of a presence subscription held here: other nodes' winfo subscribers may want it. */
  tell(resource: string, watcher: RemoteWatcher): void;
  /** Watchers of `resource` held on other nodes, as last heard. */
  of(resource: string): readonly RemoteWatcher[];
  /** A winfo subscriber of `resource` is here: resolves once other nodes' watchers of it are known, and keeps them so. */
  follow(resource: string): Promise<void>;
  /** Where news of other nodes' watchers goes. */
  listen(listener: (resource: string, watcher: RemoteWatcher) => void): void;
}

/** A subscription as a watcher, with the event that last happened to it. */
export function watcherOf(sub: Subscription, event: WatcherEvent): RemoteWatcher {
  return {
    id: sub.id,
    uri: sub.watcherUri,
    ...(sub.watcherDisplayName !== undefined ? { displayName: sub.watcherDisplayName } : {}),
    status: sub.status,
    event,
    createdAtMs: sub.createdAtMs,
    expiresAtMs: sub.expiresAtMs,
  };
}
