import { randomBytes } from 'node:crypto';
import os from 'node:os';
import type { KV } from '@nats-io/kv';
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import { ServiceUnavailableError } from '../core/services.js';
import type { BranchResult } from '../messaging/fork.js';
import type { PublicationStoreFactory } from '../presence/publication-store.js';
import type { RemoteWatcher } from '../presence/winfo/remote-watchers.js';
import type { Binding, BindingNode } from '../registrar/binding.js';
import type { SipRequest } from '../sip/message.js';
import type { WallClock } from '../util/timers.js';
import { ClusterCaches, type CacheHandlers } from './cluster-caches.js';
import { ClusterLocations } from './cluster-locations.js';
import { ClusterPublications } from './cluster-publications.js';
import { ClusterRelay } from './cluster-relay.js';
import { ClusterRooms, type RoomNewsHandlers } from './cluster-rooms.js';
import { ClusterWatchers } from './cluster-watchers.js';
import { HEARTBEAT_MS, Membership, NODE_TTL_MS, type NodeInfo, type NodeLoad } from './membership.js';
import { BUCKETS, PUBLICATION_NEWS } from './names.js';
import { isConflict, NatsLink, RETRY_AFTER_SECONDS, type ClusterHandle, type LinkState } from './nats-link.js';

/** Slack beyond the longest expiry before a bucket forgets an entry nobody rewrote. */
const BUCKET_SLACK_MS = 60_000;

/** Where this node runs among the workers of its machine (`serve --workers`). */
export interface WorkerPlace {
  readonly index: number;
  readonly count: number;
}

/** What this node tells of itself that only the server knows. */
export type ServerLoad = Omit<NodeLoad, 'cpu' | 'rssBytes'>;

/** The cluster as `status` and the admin API show it. */
export interface ClusterStatus {
  readonly node: string;
  readonly run: string;
  readonly nats: { readonly state: LinkState; readonly downForMs: number; readonly server?: string };
  readonly nodes: readonly NodeInfo[];
  readonly stats: { readonly kvWrites: number; readonly kvConflicts: number; readonly relayed: number; readonly relayedHere: number };
}

/**
 * One node of a cluster (DESIGN: "Past one machine"), built by the composition root when
 * cluster.natsUrl is set: the adapters the services take (publication store, location
 * store, binding relay, remote watchers, cache news) and the link to NATS they share.
 * Without it the server is one process with everything in memory; nothing here runs.
 */
export class ClusterNode implements ClusterHandle {
  readonly name: string;
  /** This run of the process: bindings made before a restart name another. */
  readonly run = randomBytes(6).toString('hex');
  readonly self: BindingNode;
  private linkValue?: NatsLink;
  private readonly buckets = new Map<string, KV>();
  private readonly reconnectListeners: Array<() => void> = [];
  private membership?: Membership;
  private relayValue?: ClusterRelay;
  private watchersValue?: ClusterWatchers;
  private caches?: ClusterCaches;
  private roomsValue?: { readonly rooms: ClusterRooms; readonly handlers: RoomNewsHandlers };
  private listeners: readonly string[] = [];
  private readonly startedAtMs = Date.now();
  private cpuMark = { usage: process.cpuUsage(), at: performance.now() };
  private serverLoad: () => ServerLoad = () => ({ subscriptions: 0, registrations: 0, followed: 0, connections: 0, requestsPerSecond: 0 });
  private readonly stats = { writes: 0, conflicts: 0 };
  private readonly log: Logger;

  constructor(
    private readonly config: Config,
    logger: Logger,
    private readonly worker?: WorkerPlace,
  ) {
    this.name = nodeName(config, worker);
    this.self = { name: this.name, run: this.run };
    this.log = logger.child({ node: this.name });
  }

  // ---- ClusterHandle ----------------------------------------------------------------

  get link(): NatsLink {
    if (!this.linkValue) throw new ServiceUnavailableError('Cluster Starting', RETRY_AFTER_SECONDS);
    return this.linkValue;
  }

  bucket(name: 'publications' | 'bindings'): KV {
    const kv = this.buckets.get(name);
    if (!kv) throw new ServiceUnavailableError('Cluster Starting', RETRY_AFTER_SECONDS);
    return kv;
  }

  onReconnect(listener: () => void): void {
    this.reconnectListeners.push(listener);
  }

  // ---- the adapters -----------------------------------------------------------------

  /** PUBLISH state in the shared bucket (presence's PublicationStore). */
  readonly publicationStore: PublicationStoreFactory = (options) => {
    this.publications = new ClusterPublications({ ...options, cluster: this, logger: this.log.child({ layer: 'cluster' }), stats: this.stats });
    return this.publications;
  };

  private publications?: ClusterPublications;

  /** Presentities this node follows (it has watchers of them). */
  get followed(): number {
    return this.publications?.followedCount ?? 0;
  }

  /** Bindings in the shared bucket, each with the node that holds its flow (the registrar's LocationStore). */
  locations(options: { wallClock: WallClock; isOpen: (connectionId: number) => boolean }): ClusterLocations {
    return new ClusterLocations({ cluster: this, node: this.self, ...options, logger: this.log.child({ layer: 'cluster' }), stats: this.stats });
  }

  /** MESSAGE branches through the node that holds the flow; `deliver` sends the branches others relay here. */
  relay(deliver: (request: SipRequest, binding: Binding) => Promise<BranchResult>): ClusterRelay {
    this.relayValue = new ClusterRelay({ cluster: this, node: this.self, deliver, logger: this.log.child({ layer: 'cluster' }) });
    return this.relayValue;
  }

  /** Watchers held on other nodes, for watcher information. */
  watchers(localWatchers: (resource: string) => RemoteWatcher[], followedHere: (resource: string) => boolean): ClusterWatchers {
    this.watchersValue = new ClusterWatchers({
      cluster: this,
      node: this.name,
      membership: () => this.membership,
      localWatchers,
      followedHere,
      logger: this.log.child({ layer: 'cluster' }),
    });
    return this.watchersValue;
  }

  /** Tells other nodes of account and rule writes, and applies theirs here. */
  cacheNews(handlers: CacheHandlers): ClusterCaches {
    this.caches = new ClusterCaches(
      this,
      this.name,
      handlers,
      this.log.child({ layer: 'cluster' }),
      () => (this.membership?.list().length ?? 1) - 1,
      this.config.cluster.requestTimeoutMs,
    );
    return this.caches;
  }

  /** Rooms shared by the nodes: change news and the stream of room messages (started with join). */
  rooms(handlers: RoomNewsHandlers): ClusterRooms {
    const rooms = new ClusterRooms(this, this.name, this.log.child({ layer: 'cluster' }), () => (this.membership?.list().length ?? 1) - 1, {
      ackTimeoutMs: this.config.cluster.requestTimeoutMs,
      replicas: this.config.cluster.replicas,
    });
    this.roomsValue = { rooms, handlers };
    return rooms;
  }

  // ---- life -------------------------------------------------------------------------

  /**
   * Connects to NATS and opens the buckets (made when missing); resolves with the digest
   * nonce secret every node shares, so a challenge from one node is answered at another.
   */
  async connect(): Promise<Buffer> {
    const c = this.config.cluster;
    const link = await NatsLink.connect({
      servers: c.natsUrl!,
      name: this.name,
      requestTimeoutMs: c.requestTimeoutMs,
      connectTimeoutMs: c.connectTimeoutMs,
      logger: this.log.child({ layer: 'cluster' }),
    });
    this.linkValue = link;
    link.onReconnect(() => {
      for (const l of this.reconnectListeners) l();
    });
    const common = { history: 1, replicas: c.replicas };
    const [publications, bindings, nodes, cluster] = await Promise.all([
      link.bucket(BUCKETS.publications, {
        ...common,
        ttl: this.config.presence.publishMaxExpires * 1000 + BUCKET_SLACK_MS,
        // Every committed write, with its revision, to the nodes that follow the presentity.
        republish: { src: `$KV.${BUCKETS.publications}.>`, dest: `${PUBLICATION_NEWS}.>` },
      }),
      link.bucket(BUCKETS.bindings, { ...common, ttl: this.config.registrar.maxExpires * 1000 + BUCKET_SLACK_MS }),
      link.bucket(BUCKETS.nodes, { ...common, ttl: NODE_TTL_MS }),
      link.bucket(BUCKETS.cluster, common),
    ]);
    this.buckets.set('publications', publications);
    this.buckets.set('bindings', bindings);
    this.membership = new Membership(link, nodes, BUCKETS.nodes, () => this.info(), this.log.child({ layer: 'cluster' }));
    return sharedSecret(cluster);
  }

  /** Starts serving other nodes and says this one is alive (once the listeners are up). */
  async join(listeners: readonly string[], load: () => ServerLoad): Promise<void> {
    this.listeners = listeners;
    this.serverLoad = load;
    this.relayValue?.start();
    this.watchersValue?.start();
    this.caches?.start();
    // Steps at debug level: a start that hangs shows the last one reached.
    this.log.debug({ step: 'rooms' }, 'cluster: joining');
    await this.roomsValue?.rooms.start(this.roomsValue.handlers);
    this.log.debug({ step: 'membership' }, 'cluster: joining');
    await this.membership?.start();
    this.log.info({ run: this.run, heartbeatMs: HEARTBEAT_MS }, 'cluster: node joined');
  }

  /** Leaves: stops answering other nodes, removes the heartbeat, closes the link. */
  async stop(): Promise<void> {
    this.relayValue?.stop();
    this.watchersValue?.stop();
    this.caches?.stop();
    this.roomsValue?.rooms.stop();
    await this.membership?.stop();
    await this.linkValue?.close();
  }

  status(): ClusterStatus {
    const link = this.linkValue;
    return {
      node: this.name,
      run: this.run,
      nats: { state: link?.state ?? 'closed', downForMs: link?.downForMs() ?? 0, ...(link?.nc.info?.server_name ? { server: link.nc.info.server_name } : {}) },
      nodes: this.membership?.list() ?? [this.info()],
      stats: { kvWrites: this.stats.writes, kvConflicts: this.stats.conflicts, relayed: this.relayValue?.stats.sent ?? 0, relayedHere: this.relayValue?.stats.served ?? 0 },
    };
  }

  /** This node's heartbeat. */
  private info(): NodeInfo {
    const now = performance.now();
    const usage = process.cpuUsage();
    const elapsedMs = now - this.cpuMark.at;
    let cpu = 0;
    if (elapsedMs >= 1000) {
      cpu = (usage.user - this.cpuMark.usage.user + usage.system - this.cpuMark.usage.system) / 1000 / elapsedMs;
      this.cpuMark = { usage, at: now };
      this.lastCpu = cpu;
    } else cpu = this.lastCpu;
    return {
      name: this.name,
      run: this.run,
      host: os.hostname(),
      pid: process.pid,
      ...(this.worker ? { worker: this.worker.index, workers: this.worker.count } : {}),
      listeners: this.listeners,
      startedAtMs: this.startedAtMs,
      updatedAtMs: Date.now(),
      load: { cpu: Math.round(cpu * 1000) / 1000, rssBytes: process.memoryUsage.rss(), ...this.serverLoad() },
    };
  }

  private lastCpu = 0;
}

/** cluster.nodeName, else host:sip.port; a worker adds /N. */
export function nodeName(config: Config, worker?: WorkerPlace): string {
  const base = config.cluster.nodeName ?? `${os.hostname()}:${config.sip.port}`;
  return worker && worker.count > 1 ? `${base}/${worker.index}` : base;
}

/** The nonce secret of the cluster: the first node to start makes it, the others read it. */
async function sharedSecret(kv: KV): Promise<Buffer> {
  const key = 'auth-secret';
  const mine = randomBytes(32);
  try {
    await kv.create(key, mine);
    return mine;
  } catch (err) {
    if (!isConflict(err)) throw err;
    const e = await kv.get(key);
    if (!e || e.operation !== 'PUT' || e.value.length !== 32) throw new Error('cluster: unreadable auth secret in the cluster bucket');
    return Buffer.from(e.value);
  }
}
