import type { Msg, Subscription } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import type { RemoteWatcher, RemoteWatchers } from '../presence/winfo/remote-watchers.js';
import type { Membership } from './membership.js';
import type { ClusterHandle } from './nats-link.js';
import { SUBJECTS, token } from './names.js';

/** How long a winfo subscription waits for the other nodes to list their watchers. */
const QUERY_WAIT_MS = 1000;

/** How long a resource nobody here subscribes to with winfo is still followed. */
const FOLLOW_GRACE_MS = 30_000;

/** Watchers of one resource listed in one answer, at most. */
const MAX_LISTED = 10_000;

export interface ClusterWatchersOptions {
  readonly cluster: ClusterHandle;
  readonly node: string;
  readonly membership: () => Membership | undefined;
  /** The presence watchers of `resource` this node holds. */
  readonly localWatchers: (resource: string) => RemoteWatcher[];
  /** Whether a winfo subscriber of `resource` is here. */
  readonly followedHere: (resource: string) => boolean;
  readonly logger: Logger;
}

interface Followed {
  readonly subscription: Subscription;
  ready: Promise<void>;
  usedAt: number;
  /** Other nodes' watchers, by subscription id. */
  readonly watchers: Map<string, { readonly node: string; readonly watcher: RemoteWatcher }>;
}

/** A watcher event on the wire. */
interface WatcherNews {
  readonly node: string;
  readonly resource: string;
  readonly watcher: RemoteWatcher;
}

/**
 * Watcher information across the cluster (RFC 3857, DESIGN: "Past one machine"): every
 * node tells each watcher event of its presence subscriptions on the presentity's subject
 * (NATS delivers it only where winfo subscribers of it listen), and answers "which watchers
 * of this presentity do you hold?" when a winfo subscription begins elsewhere. Nothing is
 * written per SUBSCRIBE: the index is the nodes themselves, so a dead node's watchers leave
 * the list with it.
 */
export class ClusterWatchers implements RemoteWatchers {
  private readonly listeners: Array<(resource: string, watcher: RemoteWatcher) => void> = [];
  private readonly followed = new Map<string, Followed>();
  private query?: Subscription;
  private sweeper?: NodeJS.Timeout;
  private readonly log: Logger;

  constructor(private readonly options: ClusterWatchersOptions) {
    this.log = options.logger;
  }

  start(): void {
    this.query = this.options.cluster.link.nc.subscribe(SUBJECTS.watcherQuery, { callback: (err, msg) => (err ? undefined : this.answer(msg)) });
    this.sweeper = setInterval(() => this.sweep(), FOLLOW_GRACE_MS).unref();
    // News missed while away: ask again.
    this.options.cluster.onReconnect(() => {
      for (const [resource, f] of this.followed) void this.gather(resource, f);
    });
  }

  stop(): void {
    clearInterval(this.sweeper);
    this.query?.unsubscribe();
    for (const f of this.followed.values()) f.subscription.unsubscribe();
    this.followed.clear();
  }

  tell(resource: string, watcher: RemoteWatcher): void {
    const link = this.options.cluster.link;
    if (!link.available) return;
    const news: WatcherNews = { node: this.options.node, resource, watcher };
    // With the turn's other NATS operations: one socket write for all of them (inTurn).
    link.soon(() => link.nc.publish(SUBJECTS.watcherNews(token(resource)), JSON.stringify(news)));
  }

  of(resource: string): readonly RemoteWatcher[] {
    const f = this.followed.get(resource);
    if (!f) return [];
    const now = Date.now();
    const members = this.options.membership();
    const out: RemoteWatcher[] = [];
    for (const [id, { node, watcher }] of f.watchers) {
      // Gone with its node, or past its expiry without news: no longer a watcher.
      if (watcher.expiresAtMs <= now || (members && !members.alive(node, now))) {
        f.watchers.delete(id);
        continue;
      }
      out.push(watcher);
    }
    return out;
  }

  follow(resource: string): Promise<void> {
    const known = this.followed.get(resource);
    if (known) {
      known.usedAt = Date.now();
      return known.ready;
    }
    const link = this.options.cluster.link;
    link.require();
    const subscription = link.nc.subscribe(SUBJECTS.watcherNews(token(resource)), { callback: (err, msg) => (err ? undefined : this.news(msg)) });
    const f: Followed = { subscription, ready: Promise.resolve(), usedAt: Date.now(), watchers: new Map() };
    f.ready = this.gather(resource, f);
    this.followed.set(resource, f);
    return f.ready;
  }

  listen(listener: (resource: string, watcher: RemoteWatcher) => void): void {
    this.listeners.push(listener);
  }

  /** Asks every other node for its watchers of `resource`; waits for all live ones, at most QUERY_WAIT_MS. */
  private async gather(resource: string, f: Followed): Promise<void> {
    const link = this.options.cluster.link;
    const others = (this.options.membership()?.list().length ?? 1) - 1;
    if (others <= 0 || !link.available) return;
    try {
      const answers = await link.nc.requestMany(SUBJECTS.watcherQuery, JSON.stringify({ node: this.options.node, resource }), {
        strategy: 'count',
        maxMessages: others,
        maxWait: QUERY_WAIT_MS,
      });
      for await (const msg of answers) {
        const a = JSON.parse(msg.string()) as { node?: unknown; watchers?: unknown };
        if (typeof a.node !== 'string' || !Array.isArray(a.watchers)) continue;
        for (const w of a.watchers as RemoteWatcher[]) if (isWatcher(w)) f.watchers.set(w.id, { node: a.node, watcher: w });
      }
    } catch (err) {
      // A node that did not answer in time is left out of the full document; its news still comes.
      this.log.debug({ err: (err as Error).message, resource }, 'cluster: watcher query ended early');
    }
  }

  /** Another node asks which watchers of a resource we hold. */
  private answer(msg: Msg): void {
    try {
      const q = JSON.parse(msg.string()) as { node?: unknown; resource?: unknown };
      if (typeof q.resource !== 'string' || q.node === this.options.node || !msg.reply) return;
      msg.respond(JSON.stringify({ node: this.options.node, watchers: this.options.localWatchers(q.resource).slice(0, MAX_LISTED) }));
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, 'cluster: bad watcher query');
    }
  }

  private news(msg: Msg): void {
    let n: WatcherNews;
    try {
      n = JSON.parse(msg.string()) as WatcherNews;
    } catch {
      return;
    }
    if (n.node === this.options.node || typeof n.resource !== 'string' || !isWatcher(n.watcher)) return;
    const f = this.followed.get(n.resource);
    if (!f) return;
    if (n.watcher.status === 'terminated') f.watchers.delete(n.watcher.id);
    else f.watchers.set(n.watcher.id, { node: n.node, watcher: n.watcher });
    for (const l of this.listeners) l(n.resource, n.watcher);
  }

  private sweep(): void {
    const now = Date.now();
    for (const [resource, f] of this.followed) {
      if (this.options.followedHere(resource)) {
        f.usedAt = now;
        continue;
      }
      if (now - f.usedAt < FOLLOW_GRACE_MS) continue;
      f.subscription.unsubscribe();
      this.followed.delete(resource);
    }
  }
}

function isWatcher(w: unknown): w is RemoteWatcher {
  const x = w as RemoteWatcher;
  return typeof x === 'object' && x !== null && typeof x.id === 'string' && typeof x.uri === 'string' && typeof x.status === 'string' && typeof x.event === 'string' && Number.isFinite(x.createdAtMs) && Number.isFinite(x.expiresAtMs);
}
