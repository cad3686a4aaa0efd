import type { KV } from '@nats-io/kv';
import type { Logger } from 'pino';
import type { NatsLink } from './nats-link.js';
import { SUBJECTS, token } from './names.js';
import type { Subscription } from '@nats-io/transport-node';

/** What a node says of its load in each heartbeat. */
export interface NodeLoad {
  /** CPU time over the last interval, in cores (1 = one core busy). */
  readonly cpu: number;
  readonly rssBytes: number;
  /** Live subscriptions (dialogs) this node holds. */
  readonly subscriptions: number;
  /** Bindings whose flow this node holds. */
  readonly registrations: number;
  /** Presentities this node follows (has watchers of). */
  readonly followed: number;
  /** Open TCP/TLS/WebSocket connections. */
  readonly connections: number;
  /** SIP requests received since the last heartbeat, a second. */
  readonly requestsPerSecond: number;
}

/** One node as the others see it. */
export interface NodeInfo {
  readonly name: string;
  /** This run of the node's process (a restart is another). */
  readonly run: string;
  readonly host: string;
  readonly pid: number;
  /** Worker number and count on its machine (`serve --workers`), when it is a worker. */
  readonly worker?: number;
  readonly workers?: number;
  readonly listeners: readonly string[];
  readonly startedAtMs: number;
  readonly updatedAtMs: number;
  readonly load: NodeLoad;
}

/** How often a node says it is alive. */
export const HEARTBEAT_MS = 5000;
/** A node silent this long is taken as gone (the bucket forgets it at the same age). */
export const NODE_TTL_MS = 3 * HEARTBEAT_MS;

/**
 * The live nodes (DESIGN: "Past one machine"): every node writes its heartbeat with its
 * load into a bucket whose entries age out, and reads the others'. `status`, /metrics and
 * the watcher query (how many answers to wait for) read it.
 */
export class Membership {
  private readonly nodes = new Map<string, NodeInfo>();
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly link: NatsLink,
    private readonly kv: KV,
    /** The bucket's name (`kv`'s), for listing its keys. */
    private readonly bucket: string,
    private readonly self: () => NodeInfo,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    // A node that joins says so: the others read the list again at once, not at their next beat.
    this.hello = this.link.nc.subscribe(SUBJECTS.hello, { callback: (err, msg) => (err || msg.string() === this.self().name ? undefined : void this.beat()) });
    await this.beat();
    this.link.nc.publish(SUBJECTS.hello, this.self().name);
    await this.link.nc.flush();
    this.timer = setInterval(() => void this.beat(), HEARTBEAT_MS).unref();
  }

  private hello?: Subscription;

  /** Live nodes, this one included, by name. */
  list(now = Date.now()): NodeInfo[] {
    const me = this.self();
    const out = new Map<string, NodeInfo>([[me.name, me]]);
    for (const n of this.nodes.values()) if (now - n.updatedAtMs < NODE_TTL_MS && n.name !== me.name) out.set(n.name, n);
    return [...out.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Whether `name` has been heard of lately. */
  alive(name: string, now = Date.now()): boolean {
    if (name === this.self().name) return true;
    const n = this.nodes.get(name);
    return n !== undefined && now - n.updatedAtMs < NODE_TTL_MS;
  }

  /** Leaves at once (a graceful stop), rather than when the heartbeat ages out. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.hello?.unsubscribe();
    if (!this.link.available) return;
    await this.kv.delete(token(this.self().name)).catch(() => {});
  }

  private async beat(): Promise<void> {
    if (!this.link.available) return;
    try {
      const me = this.self();
      await this.kv.put(token(me.name), Buffer.from(JSON.stringify(me)));
      const keys = await this.link.keys(this.bucket);
      const seen = new Set<string>();
      await Promise.all(
        keys.map(async (k) => {
          const e = await this.kv.get(k);
          if (!e || e.operation !== 'PUT') return;
          const info = JSON.parse(Buffer.from(e.value).toString('utf8')) as NodeInfo;
          if (typeof info.name !== 'string') return;
          this.nodes.set(info.name, info);
          seen.add(info.name);
        }),
      );
      for (const name of this.nodes.keys()) if (!seen.has(name)) this.nodes.delete(name);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'cluster: heartbeat failed');
    }
  }
}
