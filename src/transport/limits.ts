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
}

export const DEFAULT_LIMITS: TransportLimits = {
  maxMessageSize: 65535,
  maxConnections: 10000,
  idleTimeoutMs: 600_000,
  maxWriteBacklog: 1024 * 1024,
  connectTimeoutMs: 5000,
};
