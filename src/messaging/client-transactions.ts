import type { SipRequest, SipResponse } from '../sip/message.js';
import type { Destination } from '../transport/types.js';

/** How a client transaction ended (the transaction layer's words). */
export type ClientOutcome = 'response' | 'timeout' | 'transport-error';

/** The part of a client transaction messaging uses. */
export interface ClientTransactionLike {
  /** Never rejects: a timeout gives a 408, a transport error a 503. */
  readonly final: Promise<SipResponse>;
  /** Set once `final` resolved. */
  readonly outcome?: ClientOutcome;
}

/** The part of the transaction layer messaging uses (RFC 3261 §17.1.2 non-INVITE client transactions). */
export interface ClientTransactionSender {
  sendRequest(req: SipRequest, dest: Destination): ClientTransactionLike;
}
