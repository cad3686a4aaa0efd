import { pino, type Logger } from 'pino';
import { MAGIC_COOKIE } from '../sip/header-values.js';
import { SipRequest, type SipResponse } from '../sip/message.js';
import { createResponse, randomToken } from '../sip/response.js';
import { isReliable, viaTransport, type Destination, type Flow, type InboundMessage, type MessageSender } from '../transport/types.js';
import type { Timers } from '../util/timers.js';
import { InviteClientTransaction } from './invite-client-transaction.js';
import { InviteServerTransaction } from './invite-server-transaction.js';
import { clientKey, isRfc3261Branch, responseClientKey, rfc2543AckKey, serverKey } from './matching.js';
import { NonInviteClientTransaction } from './non-invite-client-transaction.js';
import { errorText, NonInviteServerTransaction } from './non-invite-server-transaction.js';
import { responseDestination, stampReceived } from './response-routing.js';
import { detached } from './completed-request.js';
import { CompletedResponses } from './completed-responses.js';
import { CompletedClients } from './held-keys.js';
import { TimerValues, type TimerConfig } from './timer-values.js';
import type {
  ClientMachineContext, ClientTransaction, SendRequestOptions, ServerFailure, ServerMachineContext, ServerTransaction,
} from './types.js';
import { TransactionState } from './types.js';

export interface TransactionLayerOptions extends TimerConfig {
  readonly sender: MessageSender;
  /** The shared timer structure; every transaction timer goes through it. */
  readonly timers: Timers;
  readonly logger?: Logger;
  /** A new request opened a server transaction (never called for ACK or retransmissions). */
  readonly onRequest: (txn: ServerTransaction) => void;
  /** A response that matches no client transaction (§17.1.3). Without it, such responses are dropped. */
  readonly onStrayResponse?: (res: SipResponse, flow: Flow) => void;
  /**
   * An ACK that no server transaction absorbs: the ACK for a 2xx (§17: its own transaction,
   * for the TU), or one matching nothing. Without it, such ACKs are dropped.
   */
  readonly onStrayAck?: (req: SipRequest, flow: Flow) => void;
  /** A server transaction ended in failure: Timer H (no ACK), a transport error, or a TU that never answered. */
  readonly onServerFailure?: (txn: ServerTransaction, reason: ServerFailure) => void;
  /** Live transactions (server and client together) above which new requests get a stateless 503. Default 100,000. */
  readonly maxTransactions?: number;
  /** Retry-After (seconds) of that 503. Default 5. */
  readonly overloadRetryAfter?: number;
  /**
   * Overload control, asked about each new request once matching has found it is no
   * retransmission and before a transaction exists: 0 to serve it, or the Retry-After
   * (seconds) of a stateless 503 it gets instead (RFC 3261 §21.5.4). Not asked for ACK.
   */
  readonly admit?: (req: SipRequest) => number;
}

export interface TransactionStats {
  /** Live server transactions. */
  readonly server: number;
  /** Live client transactions. */
  readonly client: number;
  /** Requests answered with a stateless 503 because of maxTransactions, since start. */
  readonly refused: number;
}

export const DEFAULT_MAX_TRANSACTIONS = 100_000;

type ServerMachine = NonInviteServerTransaction | InviteServerTransaction;
type ClientMachine = NonInviteClientTransaction | InviteClientTransaction;

/**
 * RFC 3261 §17 transaction layer: matches what comes from the transports to server and
 * client transactions (§17.2.3, §17.1.3), runs the four state machines on the shared
 * timer structure, and routes responses (§18.2.2, RFC 3581).
 *
 * Nothing that arrives from the network makes it throw; a message it cannot place is
 * logged and dropped. Terminated transactions leave the maps at once.
 */
export class TransactionLayer {
  readonly timerValues: TimerValues;
  private readonly sender: MessageSender;
  private readonly timers: Timers;
  private readonly log: Logger;
  private readonly options: TransactionLayerOptions;
  private readonly maxTransactions: number;
  private readonly retryAfter: number;
  private readonly servers = new Map<string, ServerMachine>();
  /** RFC 2543 INVITE server transactions by their ACK key (§17.2.3). */
  private readonly rfc2543Invites = new Map<string, InviteServerTransaction>();
  private readonly clients = new Map<string, ClientMachine>();
  /** Non-INVITE server transactions in Completed over UDP (§17.2.2), kept as a table. */
  private readonly completed: CompletedResponses;
  /** Non-INVITE client transactions in Completed over UDP (§17.1.2.2), by their keys alone. */
  private readonly completedClients: CompletedClients;
  private readonly serverCtx: ServerMachineContext;
  private readonly clientCtx: ClientMachineContext;
  private refused = 0;
  private closed = false;
  /** Watchers of every client transaction started (metrics: NOTIFYs sent and failed). */
  private readonly clientObservers: Array<(txn: ClientTransaction) => void> = [];

  constructor(options: TransactionLayerOptions) {
    this.options = options;
    this.sender = options.sender;
    this.timers = options.timers;
    this.log = options.logger ?? pino({ level: 'silent' });
    this.timerValues = new TimerValues(options);
    const max = options.maxTransactions ?? DEFAULT_MAX_TRANSACTIONS;
    if (!Number.isInteger(max) || max < 0) throw new RangeError(`maxTransactions must be a non-negative integer, got ${max}`);
    this.maxTransactions = max;
    this.retryAfter = options.overloadRetryAfter ?? 5;
    this.serverCtx = {
      timers: this.timers,
      log: this.log,
      sendResponse: (txn, data, dest) => this.sendResponse(txn, data, dest),
      responseRoute: (txn) => this.responseRoute(txn),
      terminated: (txn) => this.serverTerminated(txn as ServerMachine),
      failed: (txn, reason) => this.serverFailed(txn, reason),
      completed: (txn, response, route) => {
        if (this.servers.get(txn.id) === txn) this.servers.delete(txn.id);
        this.completed.add(txn.id, response, route);
      },
    };
    this.completed = new CompletedResponses(this.timers, this.timerValues.for(false).J, (data, dest) => this.send(data, dest), (err) =>
      this.log.debug({ err: errorText(err) }, 'final response not resent: transport error'));
    this.completedClients = new CompletedClients(this.timers, this.timerValues.for(false).K);
    this.clientCtx = {
      timers: this.timers,
      log: this.log,
      send: (data, dest) => this.send(data, dest),
      terminated: (txn) => {
        if (this.clients.get(txn.id) === txn) this.clients.delete(txn.id);
      },
      completed: (txn) => {
        if (this.clients.get(txn.id) === txn) this.clients.delete(txn.id);
        this.completedClients.add(txn.id);
      },
    };
  }

  /** A parsed message from a transport. Never throws. */
  receive(inbound: InboundMessage): void {
    if (this.closed) return;
    const { message, flow } = inbound;
    try {
      if (message instanceof SipRequest) this.receiveRequest(message, flow, inbound.admitted === true);
      else this.receiveResponse(message, flow);
    } catch (err) {
      // A header the matching needs did not parse after all: nothing can be done with it.
      this.log.debug({ err: errorText(err), peer: `${flow.remoteAddress}:${flow.remotePort}` }, 'message dropped: cannot be matched');
    }
  }

  /**
   * Sends a request in a new client transaction (§17.1): puts our Via on top (see
   * `SendRequestOptions.keepTopVia` for the one exception), starts the INVITE or non-INVITE
   * machine and returns it. `final` never rejects. The request object is modified (the Via)
   * and must not be changed afterwards; it is serialized once and retransmitted as is.
   * ACK is not a transaction: send it with `sendAck`.
   */
  sendRequest(req: SipRequest, dest: Destination, options: SendRequestOptions = {}): ClientTransaction {
    const method = req.method;
    let branch: string | undefined;
    let viaError: unknown;
    if (options.keepTopVia) {
      let kept: string | undefined;
      try {
        kept = req.topVia.branch;
      } catch {
        kept = undefined;
      }
      if (isRfc3261Branch(kept) && !this.clientKeyInUse(clientKey(kept, method))) branch = kept;
      else this.log.debug({ method, branch: kept }, 'caller Via unusable as ours (no z9hG4bK branch, or in use): adding our own');
    }
    if (branch === undefined) {
      do branch = MAGIC_COOKIE + randomToken();
      while (this.clientKeyInUse(clientKey(branch, method)));
      try {
        req.prependHeader('Via', `SIP/2.0/${viaTransport(dest.protocol)} ${this.sender.sentBy(dest)};branch=${branch};rport`);
      } catch (err) {
        viaError = err;
      }
    }
    const id = clientKey(branch, method);
    const values = this.timerValues.for(isReliable(dest.protocol));
    const txn: ClientMachine =
      method === 'INVITE'
        ? new InviteClientTransaction(id, req, dest, values, this.clientCtx, options)
        : new NonInviteClientTransaction(id, req, dest, values, this.clientCtx, options);
    for (const o of this.clientObservers) o(txn);
    if (this.closed || viaError !== undefined) {
      // Nothing will be sent: the TU hears a transport error (§8.1.3.1: 503) at once.
      txn.transportError(viaError ?? new Error('transaction layer closed'));
      return txn;
    }
    this.clients.set(id, txn);
    txn.start();
    return txn;
  }

  /**
   * Sends an ACK for a 2xx, which is no transaction (§13.2.2.4, §17.1.1.3: the TU passes it
   * to the transport directly). Adds our Via unless `keepTopVia`. Rejects on a transport error.
   */
  sendAck(ack: SipRequest, dest: Destination, options: { keepTopVia?: boolean } = {}): Promise<void> {
    try {
      if (!options.keepTopVia) {
        ack.prependHeader('Via', `SIP/2.0/${viaTransport(dest.protocol)} ${this.sender.sentBy(dest)};branch=${MAGIC_COOKIE}${randomToken()};rport`);
      }
      return this.send(ack.toBuffer(), dest);
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  /** Calls `observer` with each client transaction as it starts (its `final` tells the outcome). */
  observeClients(observer: (txn: ClientTransaction) => void): void {
    this.clientObservers.push(observer);
  }

  /**
   * A connection closed: requests sent down it will never be answered there (a reliable
   * transport does not retransmit), so their client transactions fail at once with a
   * transport error (RFC 3261 §17.1.4) instead of waiting for Timer F.
   */
  connectionClosed(connectionId: number): void {
    for (const t of [...this.clients.values()]) {
      if (t.destination.connectionId === connectionId) t.transportError(new Error('connection closed'));
    }
  }

  /**
   * Transactions still waiting for a final response: server ones the TU has not answered,
   * client ones not answered yet. A graceful stop waits for them to reach zero.
   */
  unanswered(): number {
    let n = 0;
    for (const t of this.servers.values()) if (t.state === TransactionState.Trying || t.state === TransactionState.Proceeding) n++;
    for (const t of this.clients.values()) if (t.state === TransactionState.Trying || t.state === TransactionState.Calling || t.state === TransactionState.Proceeding) n++;
    return n;
  }

  stats(): TransactionStats {
    return { server: this.servers.size + this.completed.size, client: this.clients.size + this.completedClients.size, refused: this.refused };
  }

  /**
   * Cancels every timer and forgets every transaction. Client transactions still waiting
   * keep their `final` unresolved (a stop is not a failure the TU should act on); later
   * calls to `receive` are ignored and `sendRequest` resolves at once with a 503.
   */
  close(): void {
    this.closed = true;
    for (const t of this.servers.values()) t.dispose();
    for (const t of this.clients.values()) t.dispose();
    this.servers.clear();
    this.completed.clear();
    this.completedClients.clear();
    this.rfc2543Invites.clear();
    this.clients.clear();
  }

  /**
   * Whether a request (not ACK) belongs to a server transaction that exists, live or
   * Completed (§17.2.3): a retransmission, which its transaction answers.
   */
  isRetransmission(req: SipRequest): boolean {
    const key = serverKey(req);
    return this.servers.has(key) || this.completed.has(key);
  }

  /**
   * A request overload control refused before it was parsed whole (core/early-refusal.ts):
   * its Via stamped (§18.2.1) and a stateless 503 with Retry-After sent.
   */
  refuseOverloaded(req: SipRequest, flow: Flow, retryAfter: number): void {
    if (!stampReceived(req, flow)) return;
    if (this.log.isLevelEnabled('debug')) this.log.debug({ callId: req.getHeader('call-id'), method: req.method, retryAfter }, 'overload: 503');
    this.refuse(req, flow, retryAfter);
  }

  private receiveRequest(req: SipRequest, flow: Flow, admitted: boolean): void {
    // §18.2.1 / RFC 3581: received and rport, before anything looks at the Via.
    if (!stampReceived(req, flow)) {
      this.log.debug({ peer: `${flow.remoteAddress}:${flow.remotePort}` }, 'request without a readable Via dropped');
      return;
    }
    if (req.method === 'ACK') {
      this.receiveAck(req, flow);
      return;
    }
    let key = serverKey(req);
    const existing = this.servers.get(key);
    if (existing) {
      // A retransmission: it goes to its transaction only (§17.2.3).
      existing.receiveRequest(req);
      return;
    }
    // §17.2.2: Completed, the final response goes out again.
    if (this.completed.retransmit(key)) return;
    const retryAfter = admitted ? 0 : this.options.admit?.(req) ?? 0;
    if (retryAfter > 0) {
      if (this.log.isLevelEnabled('debug')) this.log.debug({ callId: req.getHeader('call-id'), method: req.method, retryAfter }, 'overload: 503');
      this.refuse(req, flow, retryAfter);
      return;
    }
    const live = this.servers.size + this.completed.size + this.clients.size + this.completedClients.size;
    if (live >= this.maxTransactions) {
      this.refused++;
      this.log.debug({ method: req.method, live }, 'transaction limit reached: 503');
      this.refuse(req, flow, this.retryAfter);
      return;
    }
    const values = this.timerValues.for(isReliable(flow.protocol));
    // The key lives as long as the transaction: not as a slice of the whole message.
    key = detached(key);
    let txn: ServerMachine;
    if (req.method === 'INVITE') {
      const invite = new InviteServerTransaction(key, req, flow, values, this.serverCtx);
      if (!isRfc3261Branch(req.topVia.branch)) this.rfc2543Invites.set(rfc2543AckKey(req), invite);
      txn = invite;
    } else {
      // §9.2: "the CANCEL request matches a transaction [...] using the procedures of
      // Section 17.2.3 [...] with the method taken as INVITE" — the CANCEL itself is a new
      // non-INVITE transaction of its own.
      const target = req.method === 'CANCEL' ? this.servers.get(serverKey(req, 'INVITE')) : undefined;
      txn = new NonInviteServerTransaction(key, req, flow, values, this.serverCtx, target instanceof InviteServerTransaction ? target : undefined);
    }
    this.servers.set(key, txn);
    try {
      this.options.onRequest(txn);
    } catch (err) {
      this.log.error({ err, method: req.method }, 'transaction user failed on a new request');
    }
  }

  /** §17.2.3: an ACK matches the INVITE transaction it acknowledges; else it is the TU's. */
  private receiveAck(ack: SipRequest, flow: Flow): void {
    let txn: InviteServerTransaction | undefined;
    if (isRfc3261Branch(ack.topVia.branch)) {
      const t = this.servers.get(serverKey(ack, 'INVITE'));
      if (t instanceof InviteServerTransaction) txn = t;
    } else {
      const t = this.rfc2543Invites.get(rfc2543AckKey(ack));
      let ackToTag: string | undefined;
      try {
        ackToTag = ack.to.tag;
      } catch {
        ackToTag = undefined;
      }
      if (t && t.finalToTag !== undefined && t.finalToTag === ackToTag) txn = t;
    }
    if (txn && txn.receiveAck(ack)) return;
    if (this.options.onStrayAck) {
      try {
        this.options.onStrayAck(ack, flow);
      } catch (err) {
        this.log.error({ err }, 'transaction user failed on an ACK');
      }
    } else {
      this.log.debug({ peer: `${flow.remoteAddress}:${flow.remotePort}` }, 'ACK matching no transaction dropped');
    }
  }

  private receiveResponse(res: SipResponse, flow: Flow): void {
    const key = responseClientKey(res);
    const txn = key !== undefined ? this.clients.get(key) : undefined;
    if (txn) {
      txn.receiveResponse(res);
      return;
    }
    // §17.1.2.2: "The "Completed" state exists to buffer any additional response retransmissions that may be received."
    if (key !== undefined && this.completedClients.has(key)) {
      this.log.trace({ txn: key, status: res.status }, 'response retransmission absorbed in Completed');
      return;
    }
    if (this.options.onStrayResponse) {
      try {
        this.options.onStrayResponse(res, flow);
      } catch (err) {
        this.log.error({ err }, 'transaction user failed on a stray response');
      }
    } else {
      this.log.debug({ status: res.status, peer: `${flow.remoteAddress}:${flow.remotePort}` }, 'response matching no transaction dropped');
    }
  }

  /** Over maxTransactions, or refused by overload control: a stateless 503 with Retry-After (§21.5.4), nothing stored. */
  private refuse(req: SipRequest, flow: Flow, retryAfter: number): void {
    const res = createResponse(req, 503, 'Service Unavailable', { headers: [['Retry-After', retryAfter]] });
    const dest = responseDestination(req.topVia, flow, (id) => this.sender.isOpen(id));
    this.send(res.toBuffer(), dest).catch((err: unknown) => this.log.debug({ err: errorText(err) }, 'stateless 503 not sent'));
  }

  private sendResponse(txn: ServerTransaction, data: Buffer, route?: Destination): Promise<void> {
    const dest = route ?? this.responseRoute(txn);
    return dest ? this.send(data, dest) : Promise.reject(new Error('no route for the response: unreadable top Via'));
  }

  /** §18.2.2: where the transaction's responses go now; undefined when its top Via does not read. */
  private responseRoute(txn: ServerTransaction): Destination | undefined {
    try {
      return responseDestination(txn.request.topVia, txn.flow, (id) => this.sender.isOpen(id));
    } catch {
      return undefined;
    }
  }

  /** The sender, with a synchronous throw turned into a rejection. */
  private send(data: Buffer, dest: Destination): Promise<void> {
    try {
      return this.sender.send(data, dest);
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  /** A client key a live or Completed transaction still answers to. */
  private clientKeyInUse(key: string): boolean {
    return this.clients.has(key) || this.completedClients.has(key);
  }

  private serverTerminated(txn: ServerMachine): void {
    if (this.servers.get(txn.id) === txn) this.servers.delete(txn.id);
    // A send of its final response failed after it was handed over (§17.2.4).
    else if (txn.kind === 'non-invite') this.completed.delete(txn.id);
    if (txn instanceof InviteServerTransaction && !isRfc3261Branch(txn.request.topVia.branch)) {
      const key = rfc2543AckKey(txn.request);
      if (this.rfc2543Invites.get(key) === txn) this.rfc2543Invites.delete(key);
    }
  }

  private serverFailed(txn: ServerTransaction, reason: ServerFailure): void {
    if (!this.options.onServerFailure) return;
    try {
      this.options.onServerFailure(txn, reason);
    } catch (err) {
      this.log.error({ err }, 'transaction user failed on a transaction failure');
    }
  }
}
