import { parseMessage } from '../sip/parser.js';
import { SipRequest, SipResponse, type HeaderField } from '../sip/message.js';

/** The headers a response copies from its request (RFC 3261 §8.2.6.2). */
const COPIED_HEADERS = new Set(['via', 'from', 'to', 'call-id', 'cseq']);

/**
 * The request a finished server transaction answered, read back from the response it keeps:
 * the Request-Line it was given, then Via, From, To (with the tag the response added),
 * Call-ID and CSeq. A non-INVITE server transaction stays Completed for 64*T1 (RFC 3261
 * §17.2.2, Timer J) only to resend its response; it keeps the bytes, not the request, so
 * this is for diagnostics (undefined when the bytes do not parse, which ours always do).
 */
export function requestFromResponse(method: string, uriText: string, response: Buffer): SipRequest | undefined {
  const parsed = parseMessage(response);
  if (!parsed.ok || !(parsed.message instanceof SipResponse)) return undefined;
  const headers: HeaderField[] = parsed.message.headers.filter((h) => COPIED_HEADERS.has(h.key));
  return new SipRequest(method, uriText, headers);
}

/**
 * A copy of `s` that does not point into the string it was cut from: V8 keeps a sliced
 * string's parent (here the whole message head) alive as long as the slice lives, so
 * anything kept past its message (a transaction key, for 64*T1) is detached first.
 */
export function detached(s: string): string {
  return Buffer.from(s, 'utf8').toString('utf8');
}
