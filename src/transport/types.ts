import type { SipRequest, SipResponse } from '../sip/message.js';

export type TransportProtocol = 'udp' | 'tcp' | 'tls' | 'ws' | 'wss';

/** How one message reached us: the socket pair, and the connection for stream transports. */
export interface Flow {
  readonly protocol: TransportProtocol;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  /** Set for connection-oriented transports: the connection table's id. */
  readonly connectionId?: number;
}

/** Transports that carry SIPS (RFC 3261 §26.2.2: TLS, and WebSocket over TLS, RFC 7118). */
export function isSecureProtocol(p: TransportProtocol | undefined): boolean {
  return p === 'tls' || p === 'wss';
}

/** The flow of a connection (stream or WebSocket): its addresses and its table id. */
export function connectionFlow(c: Omit<Flow, 'connectionId'> & { readonly id: number }): Flow {
  return {
    protocol: c.protocol,
    remoteAddress: c.remoteAddress,
    remotePort: c.remotePort,
    localAddress: c.localAddress,
    localPort: c.localPort,
    connectionId: c.id,
  };
}

/** Where to send: a connection when one is known and open, else an address to reach. */
export interface Destination {
  readonly protocol: TransportProtocol;
  readonly address: string;
  readonly port: number;
  /** Prefer this open connection (RFC 5626 flow reuse); fall back to address/port when closed. */
  readonly connectionId?: number;
  /** Connection-bound only (WebSocket contacts, `.invalid` hosts): fail if the connection is gone. */
  readonly connectionOnly?: boolean;
}

export interface InboundMessage {
  readonly message: SipRequest | SipResponse;
  readonly flow: Flow;
  /** Clock time (ms) when the message was read. */
  readonly receivedAt: number;
  /** Overload control admitted it already (core/early-refusal.ts): it is not asked again. */
  readonly admitted?: boolean;
}

export function isReliable(protocol: TransportProtocol): boolean {
  return protocol !== 'udp';
}

/** The Via transport token for a protocol (RFC 3261 §20.42, RFC 7118 §5: WS/WSS). */
export function viaTransport(protocol: TransportProtocol): string {
  return protocol.toUpperCase();
}

export function transportFromVia(token: string): TransportProtocol | undefined {
  const t = token.toLowerCase();
  return t === 'udp' || t === 'tcp' || t === 'tls' || t === 'ws' || t === 'wss' ? t : undefined;
}

/** What the transaction layer and services need from the transports. */
export interface MessageSender {
  /**
   * Sends bytes to a destination. Resolves once handed to the socket; rejects on a
   * transport error (no route, connection refused or closed, backlog full).
   */
  send(data: Buffer, dest: Destination): Promise<void>;
  /** sent-by for our Via when sending to `dest` (RFC 3261 §18.1.1), e.g. `127.0.0.1:5060`. */
  sentBy(dest: Destination): string;
  /** Is this connection still open? */
  isOpen(connectionId: number): boolean;
}
