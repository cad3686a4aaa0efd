import type { SipRequest, SipResponse } from '../sip/message.js';
import type { Destination } from '../transport/types.js';
import type { ClientOutcome } from './types.js';

/** The part of a client transaction its user needs (dialogs, the messaging proxy). */
export interface SentRequest {
  /** Never rejects: a timeout gives a 408, a transport error a 503. */
  readonly final: Promise<SipResponse>;
  /** Set once `final` resolved. */
  readonly outcome?: ClientOutcome;
}

/** The part of the transaction layer that sends requests (RFC 3261 §17.1.2 non-INVITE client transactions). */
export interface RequestSender {
  sendRequest(req: SipRequest, dest: Destination): SentRequest;
}
