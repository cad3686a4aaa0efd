import type { Subscription } from '@nats-io/transport-node';
import { Kvm } from '@nats-io/kv';
import type { Logger } from 'pino';
import { NatsLink, type ClusterHandle } from './nats-link.js';
import { BUCKETS, SUBJECTS } from './names.js';

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
 * the others on one subject, and they read again. Each node answers once it has applied the
 * news, and the writer waits for every live node's answer (bounded by the request timeout),
 * so `user del`, a password or a rule (an approval) made at any node is in force at every
 * node when the command that made it returns.
 */
export class ClusterCaches {
  private subscription?: Subscription;

  constructor(
    private readonly cluster: ClusterHandle,
    private readonly node: string,
    private readonly handlers: CacheHandlers,
    private readonly log: Logger,
    /** How many other nodes are live, to wait for as many answers. */
    private readonly peers: () => number,
    /** The longest wait for them. */
    private readonly ackTimeoutMs: number,
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
        // Answered applied or not: the writer waits for every node, not for every success.
        void (done ?? Promise.resolve())
          .catch((e: unknown) => this.log.error({ err: e, news }, 'cluster: cache news not applied'))
          .then(() => {
            if (msg.reply) msg.respond('');
          });
      },
    });
  }

  stop(): void {
    this.subscription?.unsubscribe();
  }

  rulesChanged(presentity: string, watcher: string): Promise<void> {
    return this.send({ kind: 'rules', node: this.node, presentity, watcher });
  }

  accountChanged(aor: string, deleted: boolean): Promise<void> {
    return this.send({ kind: 'account', node: this.node, aor, deleted });
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
    // Every live node is another: their heartbeats are the keys of the nodes bucket.
    let nodes = 0;
    try {
      const kv = await new Kvm(link.nc).open(BUCKETS.nodes, { timeout: timeoutMs });
      for (const k of await link.keys(BUCKETS.nodes)) if ((await kv.get(k))?.operation === 'PUT') nodes++;
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'cluster: the list of nodes could not be read; not waiting for their answers');
    }
    const news = new ClusterCaches(handle, `cli-${process.pid}`, { rulesChanged: async () => {}, accountChanged: async () => {} }, log, () => nodes, timeoutMs);
    return { news, close: () => link.close() };
  }

  /** Publishes the news and waits for every other live node's answer, at most ackTimeoutMs. */
  private async send(news: CacheNews): Promise<void> {
    const link = this.cluster.link;
    const others = this.peers();
    if (others <= 0 || !link.available) {
      // Not connected: the publish is buffered by the client and goes out on reconnection.
      link.nc.publish(SUBJECTS.caches, JSON.stringify(news));
      return;
    }
    let answered = 0;
    try {
      const answers = await link.nc.requestMany(SUBJECTS.caches, JSON.stringify(news), { strategy: 'count', maxMessages: others, maxWait: this.ackTimeoutMs });
      for await (const _ of answers) answered++;
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, 'cluster: cache news answers ended early');
    }
    if (answered < others) this.log.warn({ news, answered, others }, 'cluster: not every node confirmed the cache news in time');
  }
}
