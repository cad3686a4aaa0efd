import type { Logger } from 'pino';
import type { SipRequest, SipResponse } from '../sip/message.js';
import type { Destination, Flow } from '../transport/types.js';
import type { Timers } from '../util/timers.js';

/** The states of the four RFC 3261 §17 machines, with RFC 6026's Accepted. */
export enum TransactionState {
  /** INVITE client: request sent, nothing heard yet (§17.1.1.2). */
  Calling = 'calling',
  /** Non-INVITE client or server: request sent / received, nothing answered yet (§17.1.2.2, §17.2.2). */
  Trying = 'trying',
  /** A provisional response was received (client) or sent (server). */
  Proceeding = 'proceeding',
  /** A final response (non-2xx for INVITE) was received or sent; waiting for retransmissions. */
  Completed = 'completed',
  /** INVITE server: the ACK for a non-2xx final arrived (§17.2.1). */
  Confirmed = 'confirmed',
  /** INVITE, RFC 6026: a 2xx was sent or received; the transaction stays to absorb retransmissions. */
  Accepted = 'accepted',
  /** Gone: removed from the layer's maps, every timer cancelled. */
  Terminated = 'terminated',
}

/** How a client transaction ended. */
export type ClientOutcome = 'response' | 'timeout' | 'transport-error';

/** Why a server transaction ended without its response being delivered as the RFC expects. */
export type ServerFailure =
  /** Timer H fired: no ACK for the final non-2xx response of an INVITE (§17.2.1). */
  | 'timeout'
  /** A response could not be sent (§17.2.4). */
  | 'transport-error'
  /** The TU never passed a final response in time (a local bound, not an RFC rule). */
  | 'no-answer';

/** A server transaction as the TU sees it (both kinds, §17.2). */
export interface ServerTransaction {
  /** The matching key (§17.2.3): branch, sent-by and method, or the RFC 2543 fields. */
  readonly id: string;
  readonly kind: 'invite' | 'non-invite';
  /**
   * The request that created the transaction, with `received`/`rport` stamped on its top Via.
   * A non-INVITE transaction Completed over UDP no longer holds it: each read then builds a
   * copy from its final response (Via, From, To with the tag it was given, Call-ID, CSeq).
   */
  readonly request: SipRequest;
  /** The flow the request came on. */
  readonly flow: Flow;
  readonly state: TransactionState;
  /**
   * For a CANCEL: the INVITE server transaction it matches (§9.2: same matching as §17.2.3
   * with the method taken as INVITE), when one is live. The CANCEL is still its own
   * transaction; answering the INVITE (487) is the TU's business.
   */
  readonly cancelTarget?: ServerTransaction;
  /** The last response passed to the transport (after the TU's respond, or the 100 Trying). */
  readonly lastResponse?: SipResponse;
  /**
   * Sends a response through the transaction (§17.2, routed per §18.2.2 / RFC 3581).
   * Provisional responses any number of times, then one final; a response the machine
   * cannot take in its state (a second final, anything after Terminated) is dropped with
   * a debug log. Never throws.
   */
  respond(res: SipResponse): void;
}

/** What a client transaction's user may hear besides the final response. */
export interface ClientTransactionUser {
  /** Each 1xx received before the final response. */
  onProvisional?(res: SipResponse): void;
  /**
   * INVITE only (RFC 6026, revised §17.1.1.2): a 2xx received in the Accepted state, after `final`
   * resolved: a retransmission, or a 2xx from another fork. The TU ACKs it (§13.2.2.4).
   */
  onAdditional2xx?(res: SipResponse): void;
}

export interface SendRequestOptions extends ClientTransactionUser {
  /**
   * Use the request's own top Via instead of adding one. By default the layer always
   * puts a new Via on top (`SIP/2.0/<TRANSPORT> <sent-by>;branch=z9hG4bK<random>;rport`),
   * because a request we forward (messaging acts as a proxy, §16.6 step 8) carries the
   * upstream Vias. Set this when the caller built the top Via itself, e.g. a CANCEL, whose
   * Via must equal the top Via of the INVITE it cancels (§9.1). The kept Via must have a
   * branch starting with z9hG4bK that no live client transaction of the same method
   * uses; otherwise the layer adds its own Via after all (and logs it).
   */
  keepTopVia?: boolean;
}

/** A client transaction as its user sees it (§17.1). */
export interface ClientTransaction {
  /** `<branch>|<method>`: what responses are matched on (§17.1.3). */
  readonly id: string;
  readonly kind: 'invite' | 'non-invite';
  /** The request as sent, our Via on top. */
  readonly request: SipRequest;
  readonly destination: Destination;
  readonly state: TransactionState;
  /**
   * The final response: the one received, or a local 408 "Request Timeout" (Timer B or F,
   * §8.1.3.1) or 503 "Transport Error" (§17.1.4, §8.1.3.1). Never rejects.
   */
  readonly final: Promise<SipResponse>;
  /** Set when `final` resolves. */
  readonly outcome?: ClientOutcome;
}

/** What a server machine needs from the layer. */
export interface ServerMachineContext {
  readonly timers: Timers;
  readonly log: Logger;
  /**
   * Sends response bytes along the §18.2.2 route (`dest` when the machine kept it). Rejects
   * on a transport error; never throws.
   */
  sendResponse(txn: ServerTransaction, data: Buffer, dest?: Destination): Promise<void>;
  /** The §18.2.2 route of the transaction's responses now, if its Via gives one. */
  responseRoute(txn: ServerTransaction): Destination | undefined;
  /** The machine entered Terminated: forget it. */
  terminated(txn: ServerTransaction): void;
  /**
   * A non-INVITE machine entered Completed over an unreliable transport: from now on the
   * layer resends `response` (its bytes as a one-byte string) along `route` whenever the
   * request comes again, until Timer J (RFC 3261 §17.2.2), and forgets the machine.
   */
  completed(txn: ServerTransaction, response: string, route: Destination): void;
  /** The machine ends in failure; the TU may want to know (§17.2.1 Timer H, §17.2.4). */
  failed(txn: ServerTransaction, reason: ServerFailure): void;
}

/** What a client machine needs from the layer. */
export interface ClientMachineContext {
  readonly timers: Timers;
  readonly log: Logger;
  /** Sends request bytes (§18.1.1). Rejects on a transport error; never throws. */
  send(data: Buffer, dest: Destination): Promise<void>;
  /** The machine entered Terminated: forget it. */
  terminated(txn: ClientTransaction): void;
  /**
   * A non-INVITE machine entered Completed over an unreliable transport: from now on the
   * layer absorbs retransmissions of its final response by its key alone, until Timer K
   * (RFC 3261 §17.1.2.2), and forgets the machine.
   */
  completed(txn: ClientTransaction): void;
}
