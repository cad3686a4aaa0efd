import { lookup } from 'node:dns/promises';
import net from 'node:net';
import { pino, type Logger } from 'pino';
import { nameAddrText } from '../dialog/dialog.js';
import { SipRequest, type SipResponse } from '../sip/message.js';
import { parseMessage } from '../sip/parser.js';
import { createResponse, randomToken } from '../sip/response.js';
import { parseUri } from '../sip/uri.js';
import type { ServerTransaction } from '../transaction/types.js';
import { TRANSPORT_ERROR_REASON } from '../transaction/local-response.js';
import { TransactionLayer } from '../transaction/transaction-layer.js';
import type { TlsClientOptions } from '../transport/stream-transport.js';
import { hostPort, TransportLayer } from '../transport/transport-layer.js';
import type { Destination, Flow, MessageSender } from '../transport/types.js';
import { TimerHeap, type TimerHandle, type Timers } from '../util/timers.js';
import { chooseChallenge, DigestSession } from './digest-client.js';
import { TypedEmitter } from './emitter.js';
import { SipRequestError } from './errors.js';

export const USER_AGENT_HEADER = 'simple-presence-ua/0.1';

/** The transports our client roles speak (WebSocket is for browsers: sip.js). */
export type ClientTransport = 'udp' | 'tcp' | 'tls';

/**
 * How we check a TLS server (RFC 3261 §26.3.1): by default its certificate must chain to a
 * trusted CA (the system's, or `ca`) and name the host we were given.
 */
export interface ClientTlsOptions {
  /** PEM trust anchors instead of the system's (a private CA, or the server's self-signed certificate). */
  readonly ca?: Buffer | string;
  /** Accept any certificate (testing only: anyone on the path can read and change the traffic). */
  readonly insecure?: boolean;
}

/** The server every request goes to (registrar, presence server and outbound proxy in one). */
export interface ServerAddress {
  readonly host: string;
  /** Default 5060 (5061 for TLS). */
  readonly port?: number;
  /** Default UDP. */
  readonly transport?: ClientTransport;
}

export interface UserAgentOptions {
  /** Our address of record, e.g. `sip:alice@example.com`. */
  readonly aor: string;
  readonly server: ServerAddress;
  /** Password for digest authentication (RFC 3261 §22); without it a challenge fails the request. */
  readonly password?: string;
  /** Digest user name; defaults to the user part of the AoR. */
  readonly authUsername?: string;
  readonly displayName?: string;
  /** Local address to bind the UDP socket to; default: loopback for a loopback server, else all. */
  readonly localHost?: string;
  /** Injected timer structure (tests drive it by hand). */
  readonly timers?: Timers;
  readonly logger?: Logger;
  /** RFC 3261 T1 in ms (default 500). */
  readonly t1?: number;
  /** Certificate checks for the TLS transport. */
  readonly tls?: ClientTlsOptions;
  /**
   * Seconds between CRLF keep-alives on a TCP/TLS connection (RFC 5626 §3.5.1, §4.4.1), so
   * an idle connection (a watcher waiting for NOTIFYs) is not dropped by the server or a
   * NAT; 0 turns them off. Default: a random value between 96 and 120 s.
   */
  readonly keepAliveSeconds?: number;
}

export type UserAgentEvents = {
  /**
   * The TCP/TLS connection to the server closed. Requests to us (MESSAGE, NOTIFY) came down
   * it, so registrations and subscriptions must be sent again on a new one (RFC 5626 §4.4.1).
   */
  connectionLost: () => void;
};

/** What an incoming request's handler answers (a status, reason and headers), or nothing for the default. */
export interface RequestAnswer {
  readonly status: number;
  readonly reason?: string;
  readonly headers?: Array<[string, string | number]>;
}

export type RequestHandler = (req: SipRequest, flow: Flow) => RequestAnswer | void;

/** Options of a request we build: the dialog fields when it belongs to one. */
export interface RequestOptions {
  readonly to?: string;
  readonly toTag?: string;
  readonly fromTag?: string;
  readonly callId?: string;
  readonly cseq?: number;
  readonly headers?: ReadonlyArray<readonly [string, string | number]>;
  readonly body?: Buffer | string;
  readonly contentType?: string;
  /** Add our Contact (dialog-creating requests and REGISTER). */
  readonly contact?: boolean;
}

/** A final response, and the request that got it (its CSeq may have grown by auth retries). */
export interface Exchange {
  readonly request: SipRequest;
  readonly response: SipResponse;
}

/** How many challenges one request may meet before the answer stands (first one, then one stale). */
const MAX_AUTH_ROUNDS = 2;

/** Digest sessions kept (one per realm; a user agent talks to one server, usually one realm). */
const MAX_REALMS = 4;

/**
 * A SIP user agent on our own stack (src/transport, src/transaction, src/sip): one local
 * socket, every request to one server, digest authentication answered on the way. The
 * client roles (Registration, Pager, PresenceUserAgent, WatcherUserAgent) are built on it.
 */
export class UserAgent extends TypedEmitter<UserAgentEvents> {
  readonly aor: string;
  readonly user: string;
  readonly domain: string;
  readonly transport: TransportLayer;
  readonly transactions: TransactionLayer;
  readonly timers: Timers;
  readonly log: Logger;
  /** Where requests go, once start() resolved the server's host. */
  destination!: Destination;
  private readonly options: UserAgentOptions;
  private readonly handlers = new Map<string, RequestHandler>();
  private readonly sessions = new Map<string, DigestSession>();
  private readonly contactHost = `${randomToken(6).toLowerCase().replace(/[^a-z0-9]/g, 'x')}.invalid`;
  private started = false;
  private closed = false;
  private cseq = Math.floor(Math.random() * 10000) + 1;
  private keepAliveTimer?: TimerHandle;
  /** The last failure to send (connection refused, certificate refused...), to explain a local 503. */
  private lastTransportError?: Error;

  constructor(options: UserAgentOptions) {
    super();
    this.options = options;
    const uri = parseUri(options.aor);
    if (uri.scheme === 'tel' || !uri.user) throw new Error(`not a SIP address of record: ${options.aor}`);
    this.aor = `${uri.scheme}:${uri.user}@${uri.host}`;
    this.user = uri.user;
    this.domain = uri.host;
    this.timers = options.timers ?? new TimerHeap();
    this.log = options.logger ?? pino({ level: 'silent' });
    const transport = options.server.transport ?? 'udp';
    const localHost = options.localHost ?? (isLoopback(options.server.host) ? (options.server.host.includes(':') ? '::1' : '127.0.0.1') : '0.0.0.0');
    this.transport = new TransportLayer(
      {
        // UDP needs a socket that receives; TCP/TLS only connect out (the server answers
        // and sends its requests down our connection).
        listen: transport === 'udp' ? [{ protocol: 'udp', host: localHost, port: 0 }] : [],
        connectOnly: transport === 'udp' ? [] : [transport],
        ...(transport === 'tls' ? { tlsClient: tlsClientOptions(options.tls, options.server.host) } : {}),
        logger: this.log,
      },
      {
        onMessage: (data, flow) => this.receive(data, flow),
        onFramingError: () => {},
        onConnectionClosed: () => this.connectionClosed(),
      },
    );
    // The transaction layer turns a failed send into a local 503; keep the cause for the error message.
    const sender: MessageSender = {
      send: (data, dest) =>
        this.transport.send(data, dest).then(
          () => {
            this.lastTransportError = undefined;
          },
          (err: Error) => {
            this.lastTransportError = err;
            throw err;
          },
        ),
      sentBy: (dest) => this.transport.sentBy(dest),
      isOpen: (id) => this.transport.isOpen(id),
    };
    this.transactions = new TransactionLayer({
      sender,
      timers: this.timers,
      t1: options.t1 ?? 500,
      t2: 4000,
      t4: 5000,
      logger: this.log,
      onRequest: (txn) => this.dispatch(txn),
    });
    this.handlers.set('OPTIONS', () => ({ status: 200, headers: [['Allow', 'MESSAGE, NOTIFY, OPTIONS']] }));
  }

  /** `udp:127.0.0.1:5060`: how errors name the server. */
  get serverName(): string {
    const s = this.options.server;
    return `${s.transport ?? 'udp'}:${hostPort(s.host, this.serverPort)}`;
  }

  private get serverPort(): number {
    const s = this.options.server;
    return s.port ?? (s.transport === 'tls' ? 5061 : 5060);
  }

  /** Opens the local socket and resolves the server's address. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    const s = this.options.server;
    let address = s.host.replace(/^\[(.*)\]$/, '$1');
    if (net.isIP(address) === 0) {
      try {
        address = (await lookup(address, { family: 4 }).catch(() => lookup(address))).address;
      } catch {
        throw new Error(`cannot resolve the server name "${s.host}"`);
      }
    }
    this.destination = { protocol: s.transport ?? 'udp', address, port: this.serverPort };
    await this.transport.start();
    this.scheduleKeepAlive();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.timers.cancel(this.keepAliveTimer);
    this.transactions.close();
    await this.transport.stop();
    if (this.timers instanceof TimerHeap) this.timers.stop();
  }

  /**
   * The error for a request the server refused or never answered: which server, which
   * status, what to do, and for a local 503 the transport's own reason (refused, certificate).
   */
  failure(method: string, response: SipResponse): SipRequestError {
    const cause = response.status === 503 && response.reason === TRANSPORT_ERROR_REASON ? this.lastTransportError : undefined;
    return new SipRequestError(method, this.serverName, response, { ...(cause ? { cause } : {}), passwordGiven: this.options.password !== undefined });
  }

  /** RFC 5626 §3.5.1: a double CRLF on an open connection; nothing is sent when none is open. */
  private scheduleKeepAlive(): void {
    const transport = this.destination.protocol;
    if (transport === 'udp' || this.closed) return;
    const seconds = this.options.keepAliveSeconds ?? 96 + Math.random() * 24;
    if (seconds <= 0) return;
    this.keepAliveTimer = this.timers.schedule(seconds * 1000, () => {
      const open = this.transport.connections.findByRemote(transport, this.destination.address, this.destination.port);
      try {
        open?.write(Buffer.from('\r\n\r\n', 'latin1'));
      } catch {
        // Closing or backed up: the close event (or the next request) deals with it.
      }
      this.scheduleKeepAlive();
    });
  }

  private connectionClosed(): void {
    if (this.closed) return;
    this.log.info({ server: this.serverName }, 'connection to the server closed');
    this.emit('connectionLost');
  }

  /** Handles incoming requests of a method (NOTIFY for watchers, MESSAGE for pagers). */
  handle(method: string, handler: RequestHandler): void {
    this.handlers.set(method.toUpperCase(), handler);
  }

  /**
   * Our Contact URI. Over UDP, the socket's address; over TCP/TLS an `.invalid` host
   * (RFC 7118 §5 style): the server reaches us only down the connection we opened, which
   * also crosses NATs.
   */
  get contactUri(): string {
    const t = this.destination?.protocol ?? 'udp';
    if (t === 'udp') return `sip:${this.user}@${this.transport.sentBy(this.destination)}`;
    return `sip:${this.user}@${this.contactHost};transport=${t}`;
  }

  /** `bob` → `sip:bob@<our domain>`; `bob@example.org` → `sip:bob@example.org`; a URI stays as it is. */
  resolveTarget(target: string): string {
    const t = target.trim();
    if (/^(sips?|tel):/i.test(t)) return t;
    return t.includes('@') ? `sip:${t}` : `sip:${t}@${this.domain}`;
  }

  nextCSeq(): number {
    return this.cseq++;
  }

  /** Builds a request with the RFC 3261 §8.1.1 headers; the transaction layer adds the Via. */
  createRequest(method: string, requestUri: string, opts: RequestOptions = {}): SipRequest {
    const req = new SipRequest(method, requestUri);
    req.addHeader('Max-Forwards', 70);
    req.addHeader('From', `${nameAddrText(this.aor, this.options.displayName)};tag=${opts.fromTag ?? randomToken()}`);
    req.addHeader('To', `<${opts.to ?? requestUri}>${opts.toTag ? `;tag=${opts.toTag}` : ''}`);
    req.addHeader('Call-ID', opts.callId ?? `${randomToken(12)}@${this.contactHost}`);
    req.addHeader('CSeq', `${opts.cseq ?? this.nextCSeq()} ${method}`);
    if (opts.contact) req.addHeader('Contact', `<${this.contactUri}>`);
    req.addHeader('User-Agent', USER_AGENT_HEADER);
    for (const [name, value] of opts.headers ?? []) req.setHeader(name, value);
    if (opts.body !== undefined) {
      req.body = Buffer.isBuffer(opts.body) ? opts.body : Buffer.from(opts.body, 'utf8');
      if (opts.contentType) req.setHeader('Content-Type', opts.contentType);
    }
    return req;
  }

  /**
   * Sends a request to the server and resolves with its final response. A 401/407 is
   * answered with digest credentials (RFC 3261 §22.2): the same request again with CSeq
   * one higher and a new branch. Never rejects: a timeout or transport failure reads as
   * the transaction layer's local 408 or 503.
   */
  async send(req: SipRequest): Promise<Exchange> {
    if (!this.started) throw new Error('UserAgent.start() was not called');
    let request = req;
    this.addCredentials(request);
    for (let round = 0; ; round++) {
      const txn = this.transactions.sendRequest(request, this.destination);
      const response = await txn.final;
      if ((response.status !== 401 && response.status !== 407) || round >= MAX_AUTH_ROUNDS || !this.options.password) {
        return { request: txn.request, response };
      }
      const header = response.status === 401 ? 'Authorization' : 'Proxy-Authorization';
      const challenge = chooseChallenge(response.getHeaders(response.status === 401 ? 'WWW-Authenticate' : 'Proxy-Authenticate'), header);
      if (!challenge) return { request: txn.request, response };
      const session = this.session(challenge.realm);
      // The same nonce refused again without `stale`: the password is wrong, asking again won't help.
      if (!session.accept(challenge)) return { request: txn.request, response };
      this.log.debug({ callId: req.callId, realm: challenge.realm, algorithm: challenge.algorithm }, 'answering digest challenge');
      request = retryRequest(txn.request);
      request.removeHeader(header);
      const auth = session.authorize(request.method, request.uriText)!;
      request.setHeader(auth.header, auth.value);
    }
  }

  private session(realm: string): DigestSession {
    let s = this.sessions.get(realm);
    if (!s) {
      s = new DigestSession({ username: this.options.authUsername ?? this.user, password: this.options.password ?? '' });
      // Realms are the server's words: a hostile one naming a new realm per 401 must not grow this.
      if (this.sessions.size >= MAX_REALMS) this.sessions.delete(this.sessions.keys().next().value!);
      this.sessions.set(realm, s);
    }
    return s;
  }

  /** RFC 3261 §22.3: credentials known for the realm go on new requests at once. */
  private addCredentials(req: SipRequest): void {
    if (!this.options.password) return;
    for (const s of this.sessions.values()) {
      const auth = s.authorize(req.method, req.uriText);
      if (auth && !req.hasHeader(auth.header)) {
        req.setHeader(auth.header, auth.value);
        return;
      }
    }
  }

  /** Bytes from our socket: parse and hand to the transactions; what cannot be read is dropped. */
  private receive(data: Buffer, flow: Flow): void {
    const parsed = parseMessage(data);
    if (!parsed.ok) {
      this.log.debug({ reason: parsed.error.reason }, 'malformed message from the server dropped');
      return;
    }
    this.transactions.receive({ message: parsed.message, flow, receivedAt: this.timers.clock.now() });
  }

  private dispatch(txn: ServerTransaction): void {
    const req = txn.request;
    const handler = this.handlers.get(req.method);
    let answer: RequestAnswer | void;
    try {
      answer = handler ? handler(req, txn.flow) : { status: 405, headers: [['Allow', [...this.handlers.keys()].join(', ')]] };
    } catch (err) {
      this.log.warn({ err, callId: safeCallId(req) }, 'request handler failed');
      answer = { status: 500 };
    }
    const a = answer ?? { status: 200 };
    txn.respond(createResponse(req, a.status, a.reason, { headers: a.headers }));
  }
}

/** The request again for a new transaction: CSeq one higher, our old Via gone (§22.2, §8.1.3.5). */
export function retryRequest(sent: SipRequest): SipRequest {
  const req = sent.clone();
  req.removeFirstListValue('Via');
  const cseq = sent.cseq;
  req.setHeader('CSeq', `${cseq.seq + 1} ${cseq.method}`);
  return req;
}

function tlsClientOptions(tls: ClientTlsOptions | undefined, host: string): TlsClientOptions {
  const name = host.replace(/^\[(.*)\]$/, '$1');
  const ca = tls?.ca === undefined ? undefined : Buffer.isBuffer(tls.ca) ? tls.ca : Buffer.from(tls.ca, 'utf8');
  return { verify: tls?.insecure !== true, servername: name, ...(ca ? { ca } : {}) };
}

function isLoopback(host: string): boolean {
  const h = host.replace(/^\[(.*)\]$/, '$1');
  return h === 'localhost' || h === '::1' || h.startsWith('127.');
}

function safeCallId(req: SipRequest): string | undefined {
  try {
    return req.callId;
  } catch {
    return undefined;
  }
}
