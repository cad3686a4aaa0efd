/** Limits on what the network may make us hold (DESIGN: bounded everything). */
export interface TransportLimits {
  /** Largest SIP message accepted, headers and body (default 65,535 bytes). */
  readonly maxMessageSize: number;
  /** Open stream connections at once, both directions; further ones are refused. */
  readonly maxConnections: number;
  /** A stream connection with no traffic for this long is closed. */
  readonly idleTimeoutMs: number;
  /** Bytes queued for one connection before sends to it fail. */
  readonly maxWriteBacklog: number;
  /** Time allowed to open an outgoing connection. */
  readonly connectTimeoutMs: number;
  /** Open stream connections from one address at once; more are closed at once. */
  readonly maxConnectionsPerSource: number;
  /**
   * A message begun on a stream must arrive whole within this time, and a TLS handshake
   * finish: a peer sending a byte now and then (slowloris) is cut off.
   */
  readonly messageTimeoutMs: number;
}

export const DEFAULT_LIMITS: TransportLimits = {
  maxMessageSize: 65535,
  maxConnections: 10000,
  idleTimeoutMs: 600_000,
  maxWriteBacklog: 1024 * 1024,
  connectTimeoutMs: 5000,
  maxConnectionsPerSource: 100,
  messageTimeoutMs: 30_000,
};

export interface RateSettings {
  /** Tokens added per second (sustained requests per second). */
  readonly requestsPerSecond: number;
  /** Bucket size (requests at once). */
  readonly burst: number;
  /** Sources tracked at once (a bound on memory); idle full buckets are forgotten first. */
  readonly maxSources?: number;
}

interface Bucket {
  tokens: number;
  atMs: number;
}

/**
 * A token bucket per source address: each request takes a token, tokens come back at
 * `requestsPerSecond` up to `burst`. `take` answers how long to wait when there is none
 * (the 503's Retry-After, RFC 3261 §21.5.4).
 */
export class SourceRateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly maxSources: number;

  constructor(private readonly settings: RateSettings, private readonly nowMs: () => number = () => performance.now()) {
    this.maxSources = settings.maxSources ?? 100_000;
  }

  get size(): number {
    return this.buckets.size;
  }

  /** 0 when the request may go on; otherwise milliseconds until a token is back. */
  take(source: string): number {
    const now = this.nowMs();
    const { requestsPerSecond: rate, burst } = this.settings;
    let b = this.buckets.get(source);
    if (b) {
      b.tokens = Math.min(burst, b.tokens + ((now - b.atMs) * rate) / 1000);
      b.atMs = now;
      // Most recently used last, so the oldest are the first forgotten.
      this.buckets.delete(source);
      this.buckets.set(source, b);
    } else {
      while (this.buckets.size >= this.maxSources) this.buckets.delete(this.buckets.keys().next().value!);
      b = { tokens: burst, atMs: now };
      this.buckets.set(source, b);
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - b.tokens) * 1000) / rate);
  }
}

/**
 * Open connections per remote address, held under `max` (limits.maxConnectionsPerSource):
 * one peer cannot take every connection slot.
 */
export class SourceConnections {
  private readonly open = new Map<string, number>();

  constructor(private readonly max: number) {}

  /**
   * Counts a connection from `source` until `socket` closes; false (nothing counted) when the
   * source is at the limit.
   */
  admit(source: string, socket: { once(event: 'close', listener: () => void): unknown }): boolean {
    const n = this.open.get(source) ?? 0;
    if (n >= this.max) return false;
    this.open.set(source, n + 1);
    socket.once('close', () => {
      const left = (this.open.get(source) ?? 1) - 1;
      if (left <= 0) this.open.delete(source);
      else this.open.set(source, left);
    });
    return true;
  }
}
