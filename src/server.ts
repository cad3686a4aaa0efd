import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import type { Logger } from 'pino';
import type { Config } from './config/config.js';
import { LocalDomains } from './core/local-domains.js';
import { EarlyRefusal } from './core/early-refusal.js';
import { OverloadControl } from './core/overload-control.js';
import { SipCore } from './core/sip-core.js';
import { MessagingService } from './messaging/messaging-service.js';
import { RoomService } from './messaging/rooms/room-service.js';
import { UriListService } from './messaging/uri-list/uri-list-service.js';
import { ConferencePackage } from './presence/conference/conference-package.js';
import { PresenceService } from './presence/presence-service.js';
import { MessageSummaryPackage } from './presence/message-summary/message-summary-package.js';
import { RegPackage } from './presence/reg/reg-package.js';
import { LocationService } from './registrar/location-service.js';
import { RegistrarService } from './registrar/registrar-service.js';
import type { SipService } from './core/services.js';
import { parseMessage, type MessageHead } from './sip/parser.js';
import { createResponse } from './sip/response.js';
import { SipRequest, type SipResponse } from './sip/message.js';
import { TransactionLayer } from './transaction/transaction-layer.js';
import { responseDestination, stampReceived } from './transaction/response-routing.js';
import { TransportLayer, type ListenSpec, type ListenerInfo } from './transport/transport-layer.js';
import { ReceiveDelayMonitor, type ReceiveDelay } from './transport/receive-delay.js';
import type { Flow } from './transport/types.js';
import { TimerHeap, type Timers } from './util/timers.js';
import { markCleanStop, openStore, takeCleanStop, type Store } from './store/index.js';
import { HeapTrimmer } from './util/heap-trim.js';
import { RepositoryOfflineMessageStore } from './messaging/repository-offline-store.js';
import { storeRegistrationSink } from './registrar/store-registration-sink.js';
import { NO_PRESENCE_STATE_SINK, type PresenceStateSink } from './presence/presence-state-sink.js';
import { storePresenceSink } from './presence/store-presence-sink.js';
import { CRASH_SKIP, skipAfterCrash } from './presence/subscription.js';
import { HttpSide } from './http/http-side.js';
import { join } from 'node:path';
import { ServerSecurity } from './auth/security.js';
import { CONTROL_SOCKET } from './control/control-protocol.js';
// Types only: the cluster's code (and nats.js) is loaded by `create` when cluster.natsUrl is set.
import type { ClusterNode, ServerLoad, WorkerPlace } from './cluster/cluster-node.js';
import type { LocationStore } from './registrar/location-store.js';
import { timersWallClock } from './registrar/wall-clock.js';
import { watcherOf, type RemoteWatcher } from './presence/winfo/remote-watchers.js';
import type { AccountNews } from './auth/security.js';
import { RepositoryListSource } from './lists/stored-lists.js';

export interface ServerOptions {
  readonly logger: Logger;
  /** Injected timer structure (tests drive it by hand). */
  readonly timers?: Timers;
  /** Services added after the built-in ones (tests, plug-ins). */
  readonly services?: readonly SipService[];
  /**
   * The store: an open one (tests share one), `false` to keep all state in memory only,
   * or absent to open the one the config names (DESIGN: State).
   */
  readonly store?: Store | false;
  /** Answers plain HTTP requests on the http (and wss) port; without it every request gets 404. */
  readonly httpHandler?: http.RequestListener;
  /**
   * Where the control channel listens (the CLI's way in): by default `control.sock` in
   * store.dataDir when the server opened its own store; `false` for none.
   */
  readonly controlSocket?: string | false;
  /**
   * This process is worker `index` of `count` on its machine (`serve --workers`): every
   * listener binds with SO_REUSEPORT, and the cluster names the node after it.
   */
  readonly worker?: WorkerPlace;
  /**
   * The cluster's module, when cluster.natsUrl is set: `SimplePresenceServer.create` loads
   * it, so that one process never loads NATS code.
   */
  readonly clusterModule?: typeof import('./cluster/cluster-node.js');
  /**
   * What overload control reads the load from: by default a probe of the event loop and the
   * UDP receive queues (transport/receive-delay.ts). Tests inject the readings, and the
   * random source that picks which requests are refused.
   */
  readonly overload?: { readonly delay?: ReceiveDelay; readonly random?: () => number };
  /**
   * Hands the heap's freed pages back to the system after a burst (util/heap-trim.ts); on by
   * default, off by default when the timers are injected (tests).
   */
  readonly heapTrim?: boolean;
}

/**
 * The composition root (DESIGN): reads the config, builds the layers bottom-up and wires
 * them. Nothing else constructs layers.
 */
export class SimplePresenceServer {
  readonly transport: TransportLayer;
  readonly transactions: TransactionLayer;
  readonly core: SipCore;
  readonly domains: LocalDomains;
  readonly timers: Timers;
  /** RFC 3261 §10 location service: where each user can be reached. */
  readonly location: LocationStore;
  /** This node of a cluster, when cluster.natsUrl is set (DESIGN: "Past one machine"); else undefined. */
  readonly cluster: ClusterNode | undefined;
  readonly registrar: RegistrarService;
  readonly messaging: MessagingService;
  /** Chat rooms (issue 22), reached through the messaging service. */
  readonly rooms: RoomService;
  /** The MESSAGE URI-list service (RFC 5365). */
  readonly uriList: UriListService;
  /** PUBLISH, SUBSCRIBE/NOTIFY: presence and watcher information (RFC 3903, 3856, 3857). */
  readonly presence: PresenceService;
  /** The HTTP server on http.host:http.port: SIP over WebSocket (RFC 7118) and the HTTP side share it. */
  readonly http: http.Server;
  /** The HTTPS server for wss, when tls.cert/tls.key and websocket.wssPort are set. */
  readonly https: https.Server | undefined;
  /** The SQL store, once start() opened it; undefined when state lives in memory only. */
  store: Store | undefined;
  /** The HTTP side (admin API, /metrics, /healthz, /readyz, web client) on the http server. */
  readonly httpSide: HttpSide;
  /** Digest authentication, presence rules, accounts, rate limits, the control channel (issue 6). */
  readonly security: ServerSecurity;
  /** 503 with Retry-After past capacity (config `overload`); undefined when turned off. */
  readonly overload: OverloadControl | undefined;
  /** While `overload` refuses: 503s from a request's head alone, before it is parsed whole. */
  private readonly earlyRefusal: EarlyRefusal | undefined;
  /** The probe behind `overload`, when the server runs its own. */
  private readonly receiveDelay: ReceiveDelayMonitor | undefined;
  private readonly heapTrimmer: HeapTrimmer | undefined;
  private readonly controlSocket: string | false | undefined;
  private readonly worker: WorkerPlace | undefined;
  /** Listeners bind with SO_REUSEPORT (several workers share the ports). */
  private readonly reusePort: boolean;
  private readonly log: Logger;
  /** Where presence soft state goes: nowhere until the store is open. */
  private presenceSink: PresenceStateSink = NO_PRESENCE_STATE_SINK;
  private readonly storeOption: Store | false | undefined;
  private ownsStore = false;
  private stopped = false;
  private httpHandler: http.RequestListener;

  constructor(readonly config: Config, options: ServerOptions) {
    this.log = options.logger;
    this.storeOption = options.store;
    this.controlSocket = options.controlSocket;
    this.security = new ServerSecurity(config, this.log.child({ layer: 'auth' }));
    this.timers = options.timers ?? new TimerHeap();
    if (options.heapTrim ?? options.timers === undefined) this.heapTrimmer = new HeapTrimmer({ timers: this.timers, logger: this.log, received: () => this.received });
    this.domains = new LocalDomains(config.sip.domain, config.sip.hosts, config.sip.advertisedHost);
    if (config.cluster.natsUrl && !options.clusterModule) throw new Error('cluster.natsUrl is set: build the server with SimplePresenceServer.create, which loads the cluster');
    this.cluster = config.cluster.natsUrl ? new options.clusterModule!.ClusterNode(config, this.log, options.worker) : undefined;
    this.worker = options.worker;
    const reusePort = options.worker !== undefined && options.worker.count > 1;
    this.reusePort = reusePort;

    const listen: ListenSpec[] = [];
    for (const host of config.sip.hosts) {
      for (const protocol of config.sip.transports) {
        listen.push({ protocol, host, port: protocol === 'tls' ? config.tls.port : config.sip.port, ...(reusePort ? { reusePort } : {}) });
      }
    }
    const tls = config.sip.transports.includes('tls') ? loadTls(config) : undefined;

    this.transport = new TransportLayer(
      { listen, limits: config.limits, tls, advertisedHost: config.sip.advertisedHost ?? undefined, logger: this.log.child({ layer: 'transport' }) },
      {
        onMessage: (data, flow) => this.receive(data, flow),
        onFramingError: (reason, head, flow) => this.framingError(reason, head, flow),
        onConnectionClosed: (id) => {
          this.transactions.connectionClosed(id);
          this.location.connectionClosed(id);
        },
      },
    );
    // One HTTP server for WebSocket upgrades and the HTTP side; requests go to the handler set last.
    this.httpHandler = options.httpHandler ?? notFound;
    const onRequest: http.RequestListener = (req, res) => this.httpHandler(req, res);
    const wsOptions = { allowedOrigins: config.websocket.allowedOrigins, pingIntervalMs: config.websocket.pingIntervalMs };
    this.http = http.createServer(onRequest);
    this.transport.attachWebSocket(this.http, { protocol: 'ws', ...wsOptions });
    if (config.tls.cert && config.tls.key && config.websocket.wssPort !== null) {
      this.https = https.createServer({ cert: readFileSync(config.tls.cert), key: readFileSync(config.tls.key) }, onRequest);
      this.transport.attachWebSocket(this.https, { protocol: 'wss', ...wsOptions });
    }
    this.core = new SipCore(this.log.child({ layer: 'core' }));
    if (config.overload.enabled) {
      const injected = options.overload?.delay;
      if (!injected) this.receiveDelay = new ReceiveDelayMonitor({ intervalMs: config.overload.probeIntervalMs });
      this.overload = new OverloadControl({
        delay: injected ?? this.receiveDelay!,
        timers: this.timers,
        settings: config.overload,
        ...(options.overload?.random ? { random: options.overload.random } : {}),
        logger: this.log.child({ layer: 'core' }),
      });
    }
    const overload = this.overload;
    this.transactions = new TransactionLayer({
      sender: this.transport,
      timers: this.timers,
      t1: config.sip.timers.t1,
      t2: config.sip.timers.t2,
      t4: config.sip.timers.t4,
      maxTransactions: config.sip.maxTransactions,
      logger: this.log.child({ layer: 'transaction' }),
      onRequest: (txn) => this.core.handle(txn),
      ...(overload ? { admit: (req: SipRequest) => overload.admit(req) } : {}),
    });
    if (overload) this.earlyRefusal = new EarlyRefusal({ overload, transactions: this.transactions, admitFrom: (flow) => this.security.admitFrom(flow) });
    const isOpen = (id: number): boolean => this.transport.isOpen(id);
    this.location = this.cluster
      ? this.cluster.locations({ wallClock: timersWallClock(this.timers), isOpen })
      : new LocationService({ timers: this.timers, isOpen, logger: this.log.child({ service: 'registrar' }) });
    this.registrar = new RegistrarService({ location: this.location, domains: this.domains, settings: config.registrar, users: this.security.users, logger: this.log.child({ service: 'registrar' }) });
    this.messaging = new MessagingService({
      location: this.location,
      domains: this.domains,
      transactions: this.transactions,
      timers: this.timers,
      settings: config.messaging,
      maxMessageSize: this.transport.limits.maxMessageSize,
      // Below the sender's Timer F (64*T1): a silent contact must not outlast the sender's wait.
      answerWithinMs: 60 * config.sip.timers.t1,
      listeners: () => this.transport.listeners,
      users: this.security.users,
      ...(this.cluster ? { relay: this.cluster.relay((req, binding) => this.messaging.deliverHere(req, binding)) } : {}),
      logger: this.log.child({ service: 'messaging' }),
    });
    // Stored messages go out after the 200 to the REGISTER (RFC 3428 store-and-forward).
    this.registrar.onRegistered((aor) => this.messaging.registered(aor));
    this.core.register(this.registrar);
    this.core.register(this.messaging);
    const domain = config.sip.domain.toLowerCase();
    this.rooms = new RoomService({
      domains: this.domains,
      deliver: (m, o) => this.messaging.deliver(m, o),
      settings: { ...config.messaging.rooms, offlineTtlSeconds: config.messaging.offlineTtlSeconds },
      wallClock: timersWallClock(this.timers),
      // A room may not take the name of an account (whether or not authentication is on), nor,
      // since without accounts anyone may use any name, of an address with a registration.
      isUser: async (aor) => {
        if ((await this.location.lookup(aor)).length > 0) return true;
        const m = /^sip:([^@]+)@(.+)$/.exec(aor);
        if (!this.store || !m || m[2] !== domain) return false;
        let user: string;
        try {
          user = decodeURIComponent(m[1]!);
        } catch {
          return false;
        }
        return (await this.store.accounts.get(domain, user)) !== undefined;
      },
      reserved: (aor) => aor === this.uriList.uri,
      // Issue 22: one room whichever node each member is on (the store is shared; news and messages go through NATS).
      ...(this.cluster
        ? {
            cluster: {
              link: this.cluster.rooms({ roomChanged: (uri) => this.rooms.reload(uri), roomMessage: (m) => this.rooms.streamed(m), resync: () => this.rooms.resync() }),
              deliverHere: (m, o) => this.messaging.deliverFromHere(m, o),
            },
          }
        : {}),
      logger: this.log.child({ service: 'rooms' }),
    });
    this.messaging.addTarget(this.rooms);
    // RFC 5365: one MESSAGE to sip:uri-list@<domain> for many recipients.
    this.uriList = new UriListService({
      domains: this.domains,
      users: this.security.users,
      deliver: (m, o) => this.messaging.deliver(m, o),
      settings: { ...config.messaging.uriList, offlineTtlSeconds: config.messaging.offlineTtlSeconds },
      wallClock: timersWallClock(this.timers),
    });
    this.messaging.addTarget(this.uriList);
    // Event: conference (RFC 4575): a room's members, followed through the room service's changes.
    const conference = new ConferencePackage(this.rooms, this.log.child({ service: 'presence' }));
    // Message waiting (RFC 3842): our stored pager messages, read back from the offline store.
    const messageSummary = new MessageSummaryPackage({
      storedCount: async (aor) => (await this.messaging.storedMessages(aor)).count,
      maxBytes: config.presence.maxDocumentBytes,
      logger: this.log.child({ service: 'presence' }),
    });
    this.messaging.onStoredMessagesChanged((aor) => messageSummary.storedMessagesChanged(aor));
    // Registration state (RFC 3680): the location store's bindings, followed through its events.
    const reg = new RegPackage({ bindings: (aor) => this.location.bindings(aor), wallClock: timersWallClock(this.timers), logger: this.log.child({ service: 'presence' }) });
    this.location.onBindingEvent?.((e) => reg.bindingEvent(e));
    this.presence = new PresenceService({
      publishedPackages: [messageSummary],
      packages: [reg, conference],
      domains: this.domains,
      timers: this.timers,
      transactions: this.transactions,
      settings: config.presence,
      // A composed document leaves room for the NOTIFY's headers within the transport's limit.
      maxNotifyBodyBytes: config.limits.maxMessageSize - 4096,
      hostFor: (flow) => this.transport.advertise(flow.localAddress, flow.remoteAddress),
      authorizer: this.security.authorizer,
      users: this.security.users,
      ...(this.cluster
        ? {
            publicationStore: this.cluster.publicationStore,
            remoteWatchers: this.cluster.watchers(
              (resource) => this.localWatchers(resource),
              (resource) => this.presence.subscriptions.hasSubscriptionsTo(this.presence.watcherInfo.name, resource),
            ),
          }
        : {}),
      // Forwards to the store's write-behind queue once start() opened it.
      sink: {
        publicationChanged: (p, replaces) => this.presenceSink.publicationChanged(p, replaces),
        publicationRemoved: (etag) => this.presenceSink.publicationRemoved(etag),
        subscriptionChanged: (s, created) => this.presenceSink.subscriptionChanged(s, created),
        subscriptionRemoved: (id) => this.presenceSink.subscriptionRemoved(id),
      },
      logger: this.log.child({ service: 'presence' }),
      // RFC 5367 list bodies: the inflated size is capped like the body itself.
      lists: {
        stored: new RepositoryListSource(() => this.store?.resourceLists, this.domains),
        // The lists SUBSCRIBEs brought, kept so their subscriptions go on after a restart (not in a cluster).
        saved: {
          set: async (l) => (this.cluster ? undefined : this.store?.listSubscriptions.set(l)),
          delete: async (id) => (this.cluster ? undefined : this.store?.listSubscriptions.delete(id)),
          all: async () => (this.store && !this.cluster ? this.store.listSubscriptions.all() : []),
        },
        maxListBytes: config.limits.maxBodySize['application/resource-lists+xml'] ?? config.limits.maxBodySize['*'] ?? 256 * 1024,
      },
    });
    this.core.register(this.presence);
    this.rooms.onChange((uri, ended) => {
      // RFC 6665 §4.1.3: a room that ended is a resource gone (reason=noresource).
      if (ended) this.presence.endSubscriptionsOf(uri);
      else conference.roomChanged(uri);
    });
    for (const s of options.services ?? []) this.core.register(s);
    // A node's load, as the cluster shows it: requests a second.
    if (this.cluster) this.core.observe({ requestReceived: () => void this.requestMark.count++, responseSent: () => {} });
    this.httpSide = new HttpSide(this, {
      logger: this.log.child({ layer: 'http' }),
      adminToken: config.admin?.token ?? null,
      // Users and rules through the same operations as the CLI (ready once the store is open).
      operations: () => this.security.admin,
      // RFC 3261 §22.4: the HA1s were computed in the digest realm.
      realm: () => this.security.realm,
    });
    if (!options.httpHandler) this.setHttpHandler(this.httpSide.handle);
    // Slow or stalled HTTP clients (not WebSocket connections, which leave the HTTP server
    // at the upgrade): the headers within 10 s, a whole request within 30 s.
    this.http.headersTimeout = 10_000;
    this.http.requestTimeout = 30_000;
  }

  /** Builds the server, with the cluster's code loaded first when cluster.natsUrl is set. */
  static async create(config: Config, options: ServerOptions): Promise<SimplePresenceServer> {
    const clusterModule = config.cluster.natsUrl ? await import('./cluster/cluster-node.js') : undefined;
    return new SimplePresenceServer(config, { ...options, ...(clusterModule ? { clusterModule } : {}) });
  }

  get listeners(): readonly ListenerInfo[] {
    return this.transport.listeners;
  }

  /** Replaces the handler of plain HTTP requests (the admin API, metrics, web client). */
  setHttpHandler(handler: http.RequestListener): void {
    this.httpHandler = handler;
  }

  async start(): Promise<readonly ListenerInfo[]> {
    const saved = await this.openStore();
    // Rooms are the store's (in a cluster, PostgreSQL's, shared by every node).
    if (this.store) await this.rooms.useStore(this.store.rooms);
    // A cluster shares publications and bindings through NATS (nothing to load back), and
    // stored messages, accounts and rules through PostgreSQL.
    const secret = this.cluster ? await this.cluster.connect() : undefined;
    if (this.cluster && this.store) this.messaging.useStore(new RepositoryOfflineMessageStore(this.store.storedMessages));
    // With PostgreSQL too: the CLI must reach the running server, whose account and rule
    // caches would otherwise never hear of its changes (issue 6: they take effect at once).
    const control = this.controlSocket ?? (this.ownsStore ? join(this.config.store.dataDir, CONTROL_SOCKET) : false);
    await this.security.start({
      core: this.core,
      presence: this.presence,
      store: this.store,
      ...(control ? { controlSocket: control } : {}),
      ...(this.ownsStore ? { dataDir: this.config.store.dataDir } : {}),
      location: this.location,
      ...(secret ? { secret } : {}),
      ...(this.cluster ? { news: this.clusterNews(this.cluster) } : {}),
    });
    // XCAP hard state (pidf-manipulation) into the composed documents before anybody is notified.
    await this.httpSide.started();
    // Restored watchers of presentities with transforming rules see the transformed document from the first NOTIFY.
    if (saved) await this.security.authorizer.warm(saved.subscriptions.filter((s) => s.eventPackage === 'presence').map((s) => ({ watcher: s.watcher, presentity: s.resource })));
    const listeners = await this.transport.start();
    if (this.receiveDelay) {
      // Workers share each UDP port (SO_REUSEPORT) and the kernel picks the socket a datagram
      // goes to by its source: a probe could not choose its worker's queue. There, the
      // event-loop lag alone is read.
      if (!this.reusePort) await this.transport.probeReceiveQueues(this.receiveDelay);
      this.receiveDelay.start();
    }
    this.overload?.start();
    this.heapTrimmer?.start();
    const httpHost = this.config.http.host;
    this.transport.addListenerInfo({ protocol: 'ws', host: httpHost, port: await listenHttp(this.http, httpHost, this.config.http.port, this.reusePort) });
    if (this.https) {
      this.transport.addListenerInfo({ protocol: 'wss', host: httpHost, port: await listenHttp(this.https, httpHost, this.config.websocket.wssPort ?? 0, this.reusePort) });
    }
    // Synchronous from here to the log line: nothing is served before the state is back.
    if (saved) this.restore(saved);
    for (const l of listeners) this.domains.add(l.host);
    const shown = listeners.map((l) => `${l.protocol}:${l.host.includes(':') ? `[${l.host}]` : l.host}:${l.port}`);
    if (this.cluster) await this.cluster.join(shown, () => this.load());
    this.log.info(
      { listeners: shown, domain: this.config.sip.domain, ...(this.cluster ? { node: this.cluster.name } : {}) },
      this.worker ? 'simple-presence worker listening' : 'simple-presence listening',
    );
    return listeners;
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.httpSide.markStopping();
    // Stop accepting (new requests get 503), let what is in flight finish, within a bound.
    this.core.drain();
    // A cluster node's watchers move to another node at once (their dialogs end with it).
    if (this.cluster) this.presence.deactivateAll();
    await this.drain(this.config.sip.drainTimeoutMs);
    await this.security.stop();
    this.messaging.close();
    const presenceClosed = this.presence.close();
    this.location.close();
    this.transactions.close();
    this.overload?.stop();
    this.heapTrimmer?.stop();
    this.receiveDelay?.stop();
    await this.transport.stop();
    await Promise.all([presenceClosed, closeHttp(this.http), this.https ? closeHttp(this.https) : undefined, this.cluster?.stop()]);
    // DESIGN (State): soft state is flushed on a graceful stop; subscriptions are not
    // terminated, they go on after a restart.
    if (this.store && this.ownsStore) {
      await this.store.close();
      // Everything sent is written: the next start needs no crash skip (Subscription.fromRecord).
      if (this.store.softState.stats().pending === 0) this.markCleanStop();
    } else if (this.store) await this.store.softState.flush().catch((err: unknown) => this.log.error({ err }, 'store: final flush failed'));
    if (this.timers instanceof TimerHeap) this.timers.stop();
    this.log.info('simple-presence stopped');
  }

  private markCleanStop(): void {
    try {
      markCleanStop(this.config.store.dataDir);
    } catch (err) {
      this.log.warn({ err }, 'store: cannot leave the clean-stop mark; the next start skips CSeqs as after a crash');
    }
  }

  /** Resolves once no transaction waits for a final response, or after `boundMs`. */
  private async drain(boundMs: number): Promise<void> {
    const end = Date.now() + boundMs;
    let left = this.transactions.unanswered();
    while (left > 0 && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 10));
      left = this.transactions.unanswered();
    }
    if (left > 0) this.log.warn({ unanswered: left }, 'stopping with transactions still unanswered');
  }

  /**
   * Opens the store (unless state is memory-only), then loads the soft state saved before
   * a restart back into the services before any request is served (DESIGN: State).
   */
  /** The presence watchers of `resource` held here, as other nodes' watcher information lists them. */
  private localWatchers(resource: string): RemoteWatcher[] {
    return this.presence.subscriptions.list({ eventPackage: this.presence.presence.name, resource }).map((s) => watcherOf(s, s.lastEvent));
  }

  /**
   * Account and rule writes at this node are told to the others; theirs are applied here:
   * caches read again, the watchers here decided again (an approval activates a pending
   * watcher wherever it is), a deleted account's subscriptions here end.
   */
  private clusterNews(cluster: ClusterNode): AccountNews {
    const caches = cluster.cacheNews({
      rulesChanged: async (presentity, watcher) => {
        await this.security.rulesChangedElsewhere(presentity);
        await this.presence.rulesChanged(presentity, watcher);
      },
      accountChanged: async (aor, deleted) => {
        await this.security.accountChangedElsewhere(aor, deleted);
        if (!deleted) return;
        // Its subscriptions here end; its publications and bindings go (every node tries:
        // removing what is gone already changes nothing, and the CLI may have deleted it
        // with no node's help).
        this.presence.accountDeleted(aor);
        await this.location.decide(aor, (current) => ({ result: undefined, remove: current.map((b) => b.key) }));
      },
    });
    return { rulesChanged: (p, w) => caches.rulesChanged(p, w), accountChanged: (aor, deleted) => caches.accountChanged(aor, deleted) };
  }

  /** What this node tells the cluster of its load. */
  private load(): ServerLoad {
    const now = performance.now();
    const seconds = Math.max(0.001, (now - this.requestMark.at) / 1000);
    const requestsPerSecond = Math.round((this.requestMark.count - this.requestMark.counted) / seconds);
    this.requestMark.counted = this.requestMark.count;
    this.requestMark.at = now;
    return {
      subscriptions: this.presence.subscriptions.size,
      registrations: this.location.size,
      followed: this.cluster?.followed ?? 0,
      connections: this.transport.connections.size,
      requestsPerSecond,
    };
  }

  private readonly requestMark = { count: 0, counted: 0, at: performance.now() };
  /** Messages received from every transport (the heap trimmer waits for a lull in them). */
  private received = 0;

  private async openStore(): Promise<SavedState | undefined> {
    if (this.storeOption === false) return undefined;
    if (this.storeOption === undefined && !this.config.store.enabled) {
      this.log.warn('store.enabled is false: all state is in memory only and lost on restart');
      return undefined;
    }
    if (this.storeOption) {
      this.store = this.storeOption;
    } else {
      const c = this.config.store;
      this.store = await openStore({
        ...(c.url ? { url: c.url } : { dataDir: c.dataDir }),
        flushWindowMs: c.flushWindowMs,
        logger: this.log.child({ layer: 'store' }),
      });
      this.ownsStore = true;
    }
    const store = this.store;
    // A cluster's soft state is in NATS, not here.
    if (this.cluster) return undefined;
    // Injected stores are the host's to stop; only a store we opened and closed has the mark.
    const afterCrash = this.ownsStore && !takeCleanStop(this.config.store.dataDir);
    const now = Date.now();
    // Subscriptions that expired while we were down, lately enough that their watcher may
    // still care, get their final NOTIFY (reason=timeout) when restored; older ones are gone.
    const notifyExpiredSince = now - this.config.presence.subscribeMaxExpires * 1000;
    // Rows a crash left behind after they expired: gone before anything reads them.
    await Promise.all([store.publications.deleteExpired(now), store.subscriptions.deleteExpired(notifyExpiredSince), store.registrations.deleteExpired(now)]);
    // Publications go back page by page as they come: the records die young, and this thread
    // puts them back while the store's thread reads the subscriptions (start-up time). Nothing
    // is notified before the subscriptions are back (restore); unreadable ones are written removed.
    this.presenceSink = storePresenceSink(store, this.log);
    let publications = 0;
    const [, loaded, registrations] = await Promise.all([
      store.publications.forEachLive(now, (page) => (publications += this.presence.restorePublications(page))),
      store.subscriptions.loadLive(notifyExpiredSince),
      store.registrations.loadLive(now),
    ]);
    const subscriptions = afterCrash ? await this.skipAfterCrash(store, loaded) : loaded;
    return { publications, subscriptions, registrations };
  }

  /**
   * The subscriptions' CSeqs and versions moved past what the crashed run may have sent
   * (skipAfterCrash), written before any NOTIFY goes out: a second crash then skips from here.
   */
  private async skipAfterCrash(store: Store, loaded: SavedState['subscriptions']): Promise<SavedState['subscriptions']> {
    const skipped = loaded.map(skipAfterCrash);
    if (skipped.length === 0) return skipped;
    for (const r of skipped) store.subscriptions.upsert(r, false);
    try {
      await store.softState.flush();
    } catch (err) {
      this.log.error({ err }, 'store: cannot write the subscriptions skipped after a crash; another crash before the next flush may repeat NOTIFY CSeqs');
    }
    this.log.info({ subscriptions: skipped.length, skip: CRASH_SKIP }, 'store: last run did not stop cleanly; restored dialogs skip ahead in CSeq and version');
    return skipped;
  }

  private restore(saved: SavedState): void {
    const store = this.store!;
    const { publications, subscriptions, registrations } = saved;
    // Sinks first: what restoring changes (subscriptions ended, CSeqs moved) is written too
    // (the presence sink was set before the publications came back, in openStore).
    this.location.setSink(storeRegistrationSink(store.registrations, this.log));
    const bindings = this.location.restore(registrations);
    // The durable offline store before the subscriptions: message waiting counts read it.
    this.messaging.useStore(new RepositoryOfflineMessageStore(store.storedMessages));
    // Watchers get the current state in their old dialogs: it may have changed while we were down.
    const restored = this.presence.restoreSubscriptions(subscriptions, { notify: true });
    this.log.info({ driver: store.db.driver, publications, subscriptions: restored, registrations: bindings }, 'store: soft state loaded');
  }

  /** Bytes from a transport: parse, answer what cannot be parsed, hand the rest to the transactions. */
  private receive(data: Buffer, flow: Flow): void {
    this.received++;
    let head: MessageHead | undefined;
    const early = this.earlyRefusal;
    if (early?.active) {
      const outcome = early.screen(data, flow);
      if (outcome.kind === 'refused') return;
      if (outcome.kind === 'admitted') head = outcome.head;
    }
    const parsed = parseMessage(data, head);
    if (!parsed.ok) {
      const peer = `${flow.remoteAddress}:${flow.remotePort}`;
      this.log.debug({ peer, transport: flow.protocol, reason: parsed.error.reason, callId: parsed.request?.getHeader('call-id') }, 'malformed message');
      // RFC 3261 §8.2: a request gets 400 (or 505, 416) naming the fault; a response, or a
      // request whose Via cannot be read, is dropped.
      if (parsed.request) {
        stampReceived(parsed.request, flow);
        this.sendStateless(createResponse(parsed.request, parsed.error.status, parsed.error.reason), flow);
      }
      return;
    }
    // Rate limit and message caps before any state is kept for the message.
    const screened = this.security.screen(parsed.message, flow);
    if (!screened.pass) {
      if (screened.status !== undefined && parsed.message instanceof SipRequest) {
        this.log.debug({ peer: `${flow.remoteAddress}:${flow.remotePort}`, status: screened.status, reason: screened.reason }, 'request refused before processing');
        stampReceived(parsed.message, flow);
        this.sendStateless(createResponse(parsed.message, screened.status, screened.reason, { headers: screened.headers ?? [] }), flow);
      }
      return;
    }
    this.transactions.receive({ message: parsed.message, flow, receivedAt: this.timers.clock.now(), ...(head ? { admitted: true } : {}) });
  }

  private framingError(reason: 'too-large' | 'bad-content-length', head: Buffer | undefined, flow: Flow): void {
    // Answered from the same per-source budget as requests, before anything is parsed: a
    // (spoofable) UDP source must not get an answer per oversized datagram.
    if (!head || !this.security.admitFrom(flow)) return;
    const parsed = parseMessage(Buffer.concat([head, Buffer.from('\r\n\r\n')]));
    const req = parsed.ok ? (parsed.message instanceof SipRequest ? parsed.message : undefined) : parsed.request;
    if (!req) return;
    stampReceived(req, flow);
    const status = reason === 'too-large' ? 513 : 400;
    this.sendStateless(createResponse(req, status, reason === 'too-large' ? 'Message Too Large' : 'Bad Content-Length'), flow);
  }

  private sendStateless(res: SipResponse, flow: Flow): void {
    let dest;
    try {
      dest = responseDestination(res.topVia, flow);
    } catch {
      return;
    }
    this.transport.send(res.toBuffer(), dest).catch((err: Error) => this.log.debug({ err: err.message }, 'stateless response not sent'));
  }
}

/** Soft state read from the store at start-up. */
interface SavedState {
  /** Read and put back already, page by page (openStore). */
  readonly publications: number;
  readonly subscriptions: Awaited<ReturnType<Store['subscriptions']['loadLive']>>;
  readonly registrations: Awaited<ReturnType<Store['registrations']['loadLive']>>;
}

const notFound: http.RequestListener = (_req, res) => {
  res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('Not Found\n');
};

async function listenHttp(server: http.Server | https.Server, host: string, port: number, reusePort: boolean): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port, ipv6Only: host.includes(':'), ...(reusePort ? { reusePort } : {}) }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return (server.address() as net.AddressInfo).port;
}

async function closeHttp(server: http.Server | https.Server): Promise<void> {
  if (!server.listening) return;
  const closed = new Promise<void>((r) => server.close(() => r()));
  server.closeAllConnections();
  await closed;
}

function loadTls(config: Config): { key: Buffer; cert: Buffer } {
  if (!config.tls.cert || !config.tls.key) throw new Error('sip.transports includes "tls": set tls.cert and tls.key');
  return { cert: readFileSync(config.tls.cert), key: readFileSync(config.tls.key) };
}
