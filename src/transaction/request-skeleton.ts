import { SipRequest, type HeaderField } from '../sip/message.js';

/** The headers a finished server transaction still answers by: §17.2.3 matching, §18.2.2 routing. */
const SKELETON_HEADERS = new Set(['via', 'from', 'to', 'call-id', 'cseq']);

/**
 * A copy of `req` with only its Request-Line, Via, From, To, Call-ID and CSeq, in strings of
 * their own. A non-INVITE server transaction keeps its request for 64*T1 after the final
 * response (RFC 3261 §17.2.2, Timer J) only to answer retransmissions; the whole parsed
 * request (every header, their parsed forms, the datagram the body points into) is several
 * kilobytes, which at thousands of requests a second is most of the server's memory.
 */
export function requestSkeleton(req: SipRequest): SipRequest {
  const headers: HeaderField[] = [];
  for (const h of req.headers) {
    if (SKELETON_HEADERS.has(h.key)) headers.push({ key: h.key, name: own(h.name), value: own(h.value) });
  }
  return new SipRequest(req.method, own(req.uriText), headers);
}

/**
 * A string that does not point into the one it was cut from: V8 keeps a sliced string's
 * parent (here the whole message head) alive for as long as the slice lives.
 */
function own(s: string): string {
  return Buffer.from(s, 'utf8').toString('utf8');
}
