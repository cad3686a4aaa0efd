import type { Subscription } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { NatsLink, type ClusterHandle } from './nats-link.js';
import { SUBJECTS } from './names.js';

/** News of a write to PostgreSQL that other nodes' caches must follow. */
export type CacheNews =
  | { readonly kind: 'rules'; readonly node: string; readonly presentity: string; readonly watcher: string }
  | { readonly kind: 'account'; readonly node: string; readonly aor: string; readonly deleted: boolean };

export interface CacheHandlers {
  /** A rule of `presentity` about `watcher` changed elsewhere: read it again, decide the watchers here again. */
  rulesChanged(presentity: string, watcher: string): Promise<void>;
  /** An account changed (or went) elsewhere: forget it; a deleted one's subscriptions here end. */
  accountChanged(aor: string, deleted: boolean): Promise<void>;
}

/**
 * Cache invalidation across the cluster (DESIGN: "Past one machine"): accounts and rules
 * live in PostgreSQL and every node reads them through caches; the node that writes tells
 * the others on one subject, and they read again. `user del`, a password or a rule (an
 * approval) made at any node takes effect at every node at once.
 */
export class ClusterCaches {
  private subscription?: Subscription;

  constructor(
    private readonly cluster: ClusterHandle,
    private readonly node: string,
    private readonly handlers: CacheHandlers,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.subscription = this.cluster.link.nc.subscribe(SUBJECTS.caches, {
      callback: (err, msg) => {
        if (err) return;
        let news: CacheNews;
        try {
          news = JSON.parse(msg.string()) as CacheNews;
        } catch {
          return;
        }
        if (news.node === this.node) return;
        const done =
          news.kind === 'rules' && typeof news.presentity === 'string' && typeof news.watcher === 'string'
            ? this.handlers.rulesChanged(news.presentity, news.watcher)
            : news.kind === 'account' && typeof news.aor === 'string'
              ? this.handlers.accountChanged(news.aor, news.deleted === true)
              : undefined;
        done?.catch((e: unknown) => this.log.error({ err: e, news }, 'cluster: cache news not applied'));
      },
    });
  }

  stop(): void {
    this.subscription?.unsubscribe();
  }

  rulesChanged(presentity: string, watcher: string): void {
    this.send({ kind: 'rules', node: this.node, presentity, watcher });
  }

  accountChanged(aor: string, deleted: boolean): void {
    this.send({ kind: 'account', node: this.node, aor, deleted });
  }

  /**
   * Cache news from a process that is no node (the CLI writing to PostgreSQL itself, no
   * server being at hand): connects, and tells the nodes of each write.
   */
  static async sender(servers: string, timeoutMs: number, log: Logger): Promise<{ news: ClusterCaches; close: () => Promise<void> }> {
    const link = await NatsLink.connect({ servers, name: `cli-${process.pid}`, requestTimeoutMs: timeoutMs, connectTimeoutMs: timeoutMs, logger: log });
    const handle: ClusterHandle = {
      link,
      bucket: () => {
        throw new Error('no buckets in the CLI');
      },
      onReconnect: () => {},
    };
    return { news: new ClusterCaches(handle, `cli-${process.pid}`, { rulesChanged: async () => {}, accountChanged: async () => {} }, log), close: () => link.close() };
  }

  private send(news: CacheNews): void {
    const link = this.cluster.link;
    // Not connected: the publish is buffered by the client and goes out on reconnection.
    link.nc.publish(SUBJECTS.caches, JSON.stringify(news));
  }
}
