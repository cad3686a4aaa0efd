import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type Metric } from 'prom-client';
import type { OverloadStats } from '../core/overload-control.js';
import type { SipCoreObserver } from '../core/sip-core.js';
import type { SimplePresenceServer } from '../server.js';
import type { SipRequest, SipResponse } from '../sip/message.js';
import type { ClientTransaction } from '../transaction/types.js';
import type { ClusterNode } from '../cluster/cluster-node.js';
import type { NodeLoad } from '../cluster/membership.js';
import { LATENCY_BUCKETS, SipTallies, type LatencyTally } from './sip-tallies.js';

/**
 * The namespace of the server's own metrics (Prometheus naming: one application prefix,
 * base units, `_total` on counters). Process and Node.js metrics keep their standard
 * names (`process_*`, `nodejs_*`) so stock dashboards find them.
 */
export const METRIC_PREFIX = 'simple_presence_';

/** Subscription states a gauge always reports, zero included, so series do not vanish. */
const SUBSCRIPTION_STATES = ['pending', 'active'] as const;

/**
 * Prometheus metrics of a running server (prom-client). Counters and the latency histogram
 * are fed by observers on the SIP core and the transaction layer; gauges read the services
 * at scrape time, so nothing is kept twice.
 */
export class ServerMetrics {
  readonly registry = new Registry();
  /** Requests, responses and latency as the SIP core counts them (read at scrape time). */
  private readonly tallies = new SipTallies();
  private readonly notifiesSent: Counter;
  private readonly notifiesFailed: Counter;
  private lastFlushes = 0;

  constructor(private readonly server: SimplePresenceServer, options: { processMetrics?: boolean } = {}) {
    const registers = [this.registry];
    if (options.processMetrics !== false) collectDefaultMetrics({ register: this.registry });
    const P = METRIC_PREFIX;

    lazyCounter(registers, `${P}sip_requests_received_total`, 'SIP requests received (new server transactions), by method', () => this.tallies.requestTotals(), 'method');
    responseCounter(registers, `${P}sip_responses_sent_total`, 'SIP responses sent by the core, by request method and status code', () => this.tallies.responseTotals());
    latencyHistogram(this.registry, `${P}sip_request_duration_seconds`, 'Time from a request reaching the core to its final response, by method', () => this.tallies.latency());
    // Two counters, not one with an outcome label: a failed NOTIFY was also sent, and a sum over labels must mean something.
    this.notifiesSent = new Counter({ name: `${P}notifies_sent_total`, help: 'NOTIFY requests sent (client transactions started)', registers });
    this.notifiesFailed = new Counter({ name: `${P}notifies_failed_total`, help: 'NOTIFY requests that failed: error response, timeout or transport error (RFC 6665 §4.2.2)', registers });

    new Histogram({
      name: `${P}store_flush_duration_seconds`,
      help: 'Duration of soft-state write-behind flushes to the store (the last flush, sampled at each scrape)',
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
      collect: () => {
        const stats = this.server.store?.softState.stats();
        if (!stats) return;
        // The store keeps only the last duration: one sample per scrape that saw new flushes.
        if (stats.flushes > this.lastFlushes && stats.lastFlushMs !== undefined) flushHistogram.observe(stats.lastFlushMs / 1000);
        this.lastFlushes = stats.flushes;
      },
    });
    const flushHistogram = this.registry.getSingleMetric(`${P}store_flush_duration_seconds`) as Histogram;
    new Gauge({
      name: `${P}store_write_queue_length`,
      help: 'Soft-state writes waiting for the next flush (plus those being written)',
      registers,
      collect() {
        const stats = server.store?.softState.stats();
        this.set(stats ? stats.pending + stats.inFlight : 0);
      },
    });
    new Gauge({
      name: `${P}store_last_flush_duration_seconds`,
      help: 'Duration of the last successful soft-state flush',
      registers,
      collect() {
        const ms = server.store?.softState.stats().lastFlushMs;
        this.set(ms === undefined ? 0 : ms / 1000);
      },
    });
    lazyCounter(registers, `${P}store_flushes_total`, 'Soft-state flushes since start', () => server.store?.softState.stats().flushes ?? 0);
    lazyCounter(registers, `${P}store_flush_failures_total`, 'Failed soft-state flushes since start', () => server.store?.softState.stats().failures ?? 0);
    new Gauge({
      name: `${P}publications`,
      help: 'Live PUBLISH publications (RFC 3903) by event package',
      labelNames: ['event'],
      registers,
      collect() {
        this.reset();
        for (const [event, n] of server.presence.publicationCounts()) this.set({ event }, n);
      },
    });
    new Gauge({
      name: `${P}subscriptions`,
      help: 'Live subscriptions by event package and state (RFC 6665)',
      labelNames: ['event', 'state'],
      registers,
      collect() {
        this.reset();
        for (const event of server.presence.eventPackages) for (const state of SUBSCRIPTION_STATES) this.set({ event, state }, 0);
        // List subscriptions (RFC 4662) are presence subscriptions too.
        for (const s of [...server.presence.subscriptions.list(), ...server.presence.lists.subscriptions.list()]) this.inc({ event: s.eventPackage, state: s.status });
      },
    });
    // Issue 22: each copy a room or the URI-list service sent, by how it ended.
    lazyCounter(registers, `${P}room_copies_total`, 'Copies of room messages sent to members, by outcome (delivered, stored, refused, dropped, full)', () => server.rooms.outcomes, 'outcome');
    lazyCounter(
      registers,
      `${P}uri_list_copies_total`,
      'Copies of RFC 5365 multiple-recipient MESSAGEs, by outcome (delivered, stored, refused, dropped, full, not-found, not-ours)',
      () => server.uriList.outcomes,
      'outcome',
    );
    new Gauge({
      name: `${P}rooms`,
      help: 'Chat rooms (issue 22)',
      registers,
      collect() {
        this.set(server.rooms.size);
      },
    });
    new Gauge({
      name: `${P}registrations`,
      help: 'Contact bindings in the location service (RFC 3261 §10)',
      registers,
      collect() {
        this.set(server.location.size);
      },
    });
    new Gauge({
      name: `${P}registered_aors`,
      help: 'Addresses-of-record with at least one binding',
      registers,
      collect() {
        this.set(server.location.aorCount);
      },
    });
    // Failed digests and lock-outs (auth/lockout.ts), by scope: one user from one address, a whole address, a user.
    const noScopes = { source_user: 0, source: 0, user: 0 };
    const lockout = () => server.security.lockout;
    lazyCounter(registers, `${P}auth_failures_total`, 'Failed digest authentications (wrong password, replayed nonce-count)', () => lockout()?.stats().failures ?? 0);
    lazyCounter(registers, `${P}auth_blocks_total`, 'Lock-outs started, by scope: source_user (one user from one address), source (distinct users failing from one address), user', () => lockout()?.stats().blocks ?? noScopes, 'scope');
    lazyCounter(registers, `${P}auth_refused_total`, 'Requests refused with 403 because of a lock-out, by scope', () => lockout()?.stats().refused ?? noScopes, 'scope');
    new Gauge({
      name: `${P}auth_blocked`,
      help: 'Lock-outs in force, by scope',
      labelNames: ['scope'],
      registers,
      collect() {
        for (const [scope, n] of Object.entries(lockout()?.blockedNow() ?? noScopes)) this.set({ scope }, n);
      },
    });
    new Gauge({
      name: `${P}connections`,
      help: 'Open stream connections (TCP, TLS, WebSocket) by transport',
      labelNames: ['transport'],
      registers,
      collect() {
        this.reset();
        const counts = server.transport.connections.countByProtocol();
        // Every stream listener's transport, at zero too, so a series does not vanish when its last connection closes.
        for (const protocol of new Set([...server.listeners.map((l) => l.protocol).filter((t) => t !== 'udp'), ...Object.keys(counts)])) {
          this.set({ transport: protocol }, counts[protocol] ?? 0);
        }
      },
    });
    new Gauge({
      name: `${P}sip_transactions`,
      help: 'Live transactions by kind',
      labelNames: ['kind'],
      registers,
      collect() {
        const t = server.transactions.stats();
        this.set({ kind: 'server' }, t.server);
        this.set({ kind: 'client' }, t.client);
      },
    });
    lazyCounter(registers, `${P}sip_overload_refused_total`, 'Requests answered with a stateless 503 because too many transactions were live', () => server.transactions.stats().refused);
    // Overload control (core/overload-control.ts): what it reads and what it refuses.
    const overload = (read: (s: OverloadStats) => number) => (): number => {
      const stats = server.overload?.stats();
      return stats ? read(stats) : 0;
    };
    const overloadGauges: Array<[string, string, () => number]> = [
      ['event_loop_lag_seconds', 'Longest event-loop lag in the last overload-control window', overload((s) => s.eventLoopLagMs / 1000)],
      [
        'receive_delay_seconds',
        'Standing delay before the SIP thread starts on a request (event-loop lag and UDP receive queue) in the last window: what overload control holds under overload.targetDelayMs',
        overload((s) => s.queueDelayMs / 1000),
      ],
      [
        'cpu_wait_seconds',
        'Time the SIP thread was ready to run but waited for a CPU (other processes) in the last overload-control window; overload control adds it to its target',
        overload((s) => s.cpuWaitMs / 1000),
      ],
      [
        'overload_level',
        'Overload control level: 0 serves everything, up to 1 the share of new requests refused, above 1 all new and (level - 1) of in-dialog ones',
        overload((s) => s.level),
      ],
    ];
    for (const [name, help, value] of overloadGauges) {
      new Gauge({
        name: `${P}${name}`,
        help,
        registers,
        collect() {
          this.set(value());
        },
      });
    }
    lazyCounter(
      registers,
      `${P}sip_overload_shed_total`,
      'Requests answered at once with 503 and Retry-After by overload control, by class: new work, or requests that keep existing state (ongoing)',
      () => server.overload?.stats().shed ?? { new: 0, ongoing: 0 },
      'class',
    );
    if (server.cluster) this.clusterMetrics(server.cluster, registers);

    server.core.observe(this.coreObserver());
    server.transactions.observeClients((txn) => this.clientTransaction(txn));
  }

  /**
   * The cluster as this node sees it (docs/cluster.md): the NATS link, the live nodes and
   * every node's load from its heartbeat, so one scrape of any worker shows them all.
   */
  private clusterMetrics(cluster: ClusterNode, registers: Registry[]): void {
    const P = METRIC_PREFIX;
    new Gauge({
      name: `${P}cluster_nats_connected`,
      help: 'This node is connected to NATS (1) or not (0: requests that need it get 503)',
      registers,
      collect() {
        this.set(cluster.status().nats.state === 'connected' ? 1 : 0);
      },
    });
    new Gauge({
      name: `${P}cluster_nodes`,
      help: 'Live nodes of the cluster, this one included',
      registers,
      collect() {
        this.set(cluster.status().nodes.length);
      },
    });
    const perNode = (name: string, help: string, read: (load: NodeLoad) => number): void => {
      new Gauge({
        name: `${P}cluster_node_${name}`,
        help,
        labelNames: ['node', 'host'],
        registers,
        collect() {
          this.reset();
          for (const n of cluster.status().nodes) this.set({ node: n.name, host: n.host }, read(n.load));
        },
      });
    };
    perNode('cpu_ratio', "Each node's CPU over its last heartbeat interval (1 = one core)", (l) => l.cpu);
    perNode('requests_per_second', "Each node's SIP requests a second over its last heartbeat interval", (l) => l.requestsPerSecond);
    perNode('subscriptions', 'Subscriptions (dialogs) each node holds', (l) => l.subscriptions);
    perNode('registrations', 'Bindings whose flow each node holds', (l) => l.registrations);
    lazyCounter(registers, `${P}cluster_kv_writes_total`, 'Compare-and-set writes of this node to the publication and binding buckets', () => cluster.status().stats.kvWrites);
    lazyCounter(registers, `${P}cluster_kv_conflicts_total`, "Writes of this node that lost a race to another node's (decided again)", () => cluster.status().stats.kvConflicts);
    lazyCounter(registers, `${P}cluster_relayed_total`, 'MESSAGE branches this node sent through the node holding the flow', () => cluster.status().stats.relayed);
  }

  /** The text exposition format. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  private coreObserver(): SipCoreObserver {
    return {
      requestReceived: (req: SipRequest) => this.tallies.request(req.method),
      responseSent: (req: SipRequest, res: SipResponse, elapsedMs: number) => this.tallies.response(req.method, res.status, elapsedMs / 1000),
    };
  }

  private clientTransaction(txn: ClientTransaction): void {
    if (txn.request.method !== 'NOTIFY') return;
    this.notifiesSent.inc();
    void txn.final.then(
      (res) => {
        // RFC 6665 §4.2.2: an error response (or a timeout, a transport error) ends the subscription.
        if (res.status >= 300 || txn.outcome !== 'response') this.notifiesFailed.inc();
      },
      () => this.notifiesFailed.inc(),
    );
  }
}

/**
 * A counter whose total lives in a service: each scrape adds what it grew by since the last.
 * With `label`, `read` gives a total per label value (every one reported from the first scrape, zero included).
 */
function lazyCounter(registers: Registry[], name: string, help: string, read: () => number): Counter;
function lazyCounter(registers: Registry[], name: string, help: string, read: () => Readonly<Record<string, number>>, label: string): Counter;
function lazyCounter(registers: Registry[], name: string, help: string, read: () => number | Readonly<Record<string, number>>, label?: string): Counter {
  const seen = new Map<string, number>();
  return new Counter({
    name,
    help,
    labelNames: label ? [label] : [],
    registers,
    collect() {
      const now = read();
      const totals = typeof now === 'number' ? { '': now } : now;
      for (const [value, total] of Object.entries(totals)) {
        const before = seen.get(value) ?? 0;
        const labels = label ? { [label]: value } : {};
        this.inc(labels, Math.max(0, total - before));
        seen.set(value, Math.max(before, total));
      }
    },
  });
}

/** The responses counter: each scrape adds what every (method, status) pair grew by since the last. */
function responseCounter(registers: Registry[], name: string, help: string, read: () => ReturnType<SipTallies['responseTotals']>): Counter {
  const seen = new Map<string, number>();
  return new Counter({
    name,
    help,
    labelNames: ['method', 'status'],
    registers,
    collect() {
      for (const { method, status, total } of read()) {
        const key = `${method} ${status}`;
        const before = seen.get(key) ?? 0;
        this.inc({ method, status: String(status) }, Math.max(0, total - before));
        seen.set(key, Math.max(before, total));
      }
    },
  });
}

/**
 * The latency histogram, exposed from the tallies: a metric of prom-client's shape (name,
 * help, type, `get`) registered as it is, so the exposition is the one a Histogram gives
 * (`_bucket` with `le`, `_sum`, `_count`, by method).
 */
function latencyHistogram(registry: Registry, name: string, help: string, read: () => LatencyTally[]): void {
  const metric = {
    name,
    help,
    type: 'histogram',
    aggregator: 'sum',
    collect: undefined,
    reset() {},
    get: async () => ({
      name,
      help,
      type: 'histogram',
      aggregator: 'sum',
      values: read().flatMap(({ method, cumulative, sum, count }) => [
        ...cumulative.map((value, i) => ({ labels: { le: LATENCY_BUCKETS[i]!, method }, value, metricName: `${name}_bucket` })),
        { labels: { le: '+Inf', method }, value: count, metricName: `${name}_bucket` },
        { labels: { method }, value: sum, metricName: `${name}_sum` },
        { labels: { method }, value: count, metricName: `${name}_count` },
      ]),
    }),
  };
  registry.registerMetric(metric as unknown as Metric);
}
