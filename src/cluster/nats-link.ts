import { connect, type NatsConnection, type Status } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, JetStreamApiError, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm, type KV, type KvOptions } from '@nats-io/kv';
import type { Logger } from 'pino';
import { ServiceUnavailableError } from '../core/services.js';

/** What the link to NATS is doing. */
export type LinkState = 'connected' | 'reconnecting' | 'closed';

export interface NatsLinkOptions {
  /** NATS server URLs, comma-separated (cluster.natsUrl). */
  readonly servers: string;
  /** This node's name (the connection's name, as `nats-server` shows it). */
  readonly name: string;
  /** How long a request may take before the SIP request that needs it gets 503. */
  readonly requestTimeoutMs: number;
  /** How long start-up waits for the first connection. */
  readonly connectTimeoutMs: number;
  readonly logger: Logger;
}

/** JetStream's "wrong last sequence": another writer got there first (compare-and-set failed). */
const WRONG_LAST_SEQUENCE = 10071;

/** Seconds a client is told to wait (Retry-After) while NATS is out of reach. */
export const RETRY_AFTER_SECONDS = 5;

/**
 * The node's connection to NATS (DESIGN: "Past one machine": the cluster's state lives in
 * JetStream, its news goes over NATS subjects). It reconnects for ever; while it is away,
 * whatever needs it fails at once with 503 and Retry-After, never waiting on a request
 * that cannot be answered.
 */
export class NatsLink {
  state: LinkState = 'connected';
  /** When the link last went away (ms), or undefined while connected. */
  private downSince: number | undefined;
  private readonly reconnectListeners: Array<() => void> = [];
  private readonly kvm: Kvm;
  /** NATS operations asked for in this turn of the event loop, started together at its end. */
  private turn: Array<() => void> = [];
  readonly log: Logger;

  private constructor(
    readonly nc: NatsConnection,
    readonly options: NatsLinkOptions,
  ) {
    this.log = options.logger;
    this.kvm = new Kvm(jetstream(nc, { timeout: options.requestTimeoutMs }));
    void this.watchStatus();
  }

  static async connect(options: NatsLinkOptions): Promise<NatsLink> {
    const servers = options.servers.split(',').map((s) => s.trim()).filter(Boolean);
    const end = Date.now() + options.connectTimeoutMs;
    for (let attempt = 1; ; attempt++) {
      try {
        const nc = await connect({
          servers,
          name: options.name,
          timeout: Math.min(options.connectTimeoutMs, 5000),
          reconnect: true,
          maxReconnectAttempts: -1,
          reconnectTimeWait: 500,
          // Requests while reconnecting fail at once (we check `available` first, too).
          pingInterval: 10_000,
          maxPingOut: 3,
          // No stack trace captured per request: an Error built for every KV write was a
          // tenth of a PUBLISH's CPU (node --cpu-prof).
          noAsyncTraces: true,
        });
        options.logger.info({ servers: servers.map(redact), server: nc.info?.server_name, version: nc.info?.version }, 'cluster: connected to NATS');
        return new NatsLink(nc, options);
      } catch (err) {
        if (Date.now() >= end) throw new Error(`cannot reach NATS at ${servers.map(redact).join(',')}: ${(err as Error).message}`);
        options.logger.warn({ attempt, err: (err as Error).message }, 'cluster: NATS not reachable yet, retrying');
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  /** True while requests to NATS can be answered. */
  get available(): boolean {
    return this.state === 'connected';
  }

  /** Throws the 503 a SIP request gets while NATS is out of reach. */
  require(): void {
    if (this.state !== 'connected') throw new ServiceUnavailableError('Cluster Store Unavailable', RETRY_AFTER_SECONDS);
  }

  /** Called after every reconnection (state held here may have missed news meanwhile). */
  onReconnect(listener: () => void): void {
    this.reconnectListeners.push(listener);
  }

  /**
   * The keys of a bucket that hold an entry or a delete marker (read each to tell which): one
   * stream info request with a subjects filter, under the request timeout. Not nats.js's
   * `kv.keys()`: its consumer ends on a "pending 0" that a write landing meanwhile can take
   * away, and it has no timeout (two workers joining a fresh cluster at once hung in it about
   * one start in seven).
   */
  async keys(bucket: string): Promise<string[]> {
    this.jsm ??= jetstreamManager(this.nc, { timeout: this.options.requestTimeoutMs, checkAPI: false });
    const prefix = `$KV.${bucket}.`;
    const info = await (await this.jsm).streams.info(`KV_${bucket}`, { subjects_filter: `${prefix}>` });
    return Object.keys(info.state.subjects ?? {}).map((subject) => subject.slice(prefix.length));
  }

  private jsm: Promise<JetStreamManager> | undefined;

  /** Opens (creating when missing) a key-value bucket; an existing one is used as it is configured. */
  async bucket(name: string, options: Partial<KvOptions>): Promise<KV> {
    try {
      return await this.kvm.create(name, { timeout: this.options.requestTimeoutMs, ...options });
    } catch (err) {
      // Made earlier with other limits (a changed config): use it, and say so.
      this.log.warn({ bucket: name, err: (err as Error).message }, 'cluster: bucket exists with another configuration; using it as it is');
      return this.kvm.open(name, { timeout: this.options.requestTimeoutMs });
    }
  }

  /**
   * Starts `op` (a bucket write or read, a request) at the end of this turn of the event loop,
   * together with every other NATS operation asked for in the turn. nats.js sends what is
   * published before its next flush as one socket write; started one by one, as each SIP
   * request asked, every operation was a send() of its own (under load a third of a cluster
   * PUBLISH's CPU, node --cpu-prof). Operations start in the order they were asked for.
   */
  inTurn<T>(op: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.soon(() => {
        try {
          op().then(resolve, reject);
        } catch (err) {
          reject(err);
        }
      });
    });
  }

  /**
   * `op` (a publish, a subscription) at the end of this turn, with the turn's other NATS
   * operations (inTurn), after those asked for before it. What it throws is logged.
   */
  soon(op: () => void): void {
    if (this.turn.push(op) === 1) setImmediate(this.startTurn);
  }

  private readonly startTurn = (): void => {
    const ops = this.turn;
    this.turn = [];
    for (const op of ops) {
      try {
        op();
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, 'cluster: NATS operation failed to start');
      }
    }
  };

  /** The server's largest message (a value must fit in it). */
  get maxPayload(): number {
    return this.nc.info?.max_payload ?? 1024 * 1024;
  }

  async close(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closed';
    try {
      await this.nc.drain();
    } catch {
      await this.nc.close().catch(() => {});
    }
  }

  /** How long NATS has been out of reach, in ms (0 while connected). */
  downForMs(now = Date.now()): number {
    return this.downSince === undefined ? 0 : now - this.downSince;
  }

  private async watchStatus(): Promise<void> {
    for await (const s of this.nc.status() as AsyncIterable<Status>) {
      switch (s.type) {
        case 'disconnect':
        case 'reconnecting':
          if (this.state === 'connected') {
            this.state = 'reconnecting';
            this.downSince = Date.now();
            this.log.warn({ status: s.type }, 'cluster: NATS connection lost; requests that need it get 503 until it is back');
          }
          break;
        case 'reconnect':
          this.state = 'connected';
          this.log.info({ downMs: this.downForMs() }, 'cluster: NATS connection back');
          this.downSince = undefined;
          for (const l of this.reconnectListeners) {
            try {
              l();
            } catch (err) {
              this.log.error({ err }, 'cluster: reconnect listener failed');
            }
          }
          break;
        case 'slowConsumer':
          this.log.warn({ status: s.type }, 'cluster: a subscription fell behind; news may have been dropped');
          break;
        case 'close':
          this.state = 'closed';
          return;
        default:
          break;
      }
    }
  }
}

/**
 * The cluster as its adapters reach it: built with the server, connected when it starts
 * (nothing is served before), so the link and buckets are looked up when used.
 */
export interface ClusterHandle {
  /** The link to NATS; throws the 503 error before it is connected. */
  readonly link: NatsLink;
  bucket(name: 'publications' | 'bindings'): KV;
  /** Called after every reconnection (state held here may have missed news meanwhile). */
  onReconnect(listener: () => void): void;
}

/** True for a compare-and-set that lost: another writer changed the entry first. */
export function isConflict(err: unknown): boolean {
  return err instanceof JetStreamApiError && err.code === WRONG_LAST_SEQUENCE;
}

/** An error of a request to NATS, as the SIP request that needed it sees it: 503, try again soon. */
export function unavailable(err: unknown): ServiceUnavailableError {
  if (err instanceof ServiceUnavailableError) return err;
  return new ServiceUnavailableError('Cluster Store Unavailable', RETRY_AFTER_SECONDS);
}

/** A server URL without its credentials, for logs. */
function redact(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}
