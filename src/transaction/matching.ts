import { MAGIC_COOKIE, type Via } from '../sip/header-values.js';
import type { SipRequest, SipResponse } from '../sip/message.js';
import { transportFromVia } from '../transport/types.js';
import { defaultPort } from './response-routing.js';

/** Does this branch follow RFC 3261 (§8.1.1.7: it starts with the magic cookie z9hG4bK)? */
export function isRfc3261Branch(branch: string | undefined): branch is string {
  return branch !== undefined && branch.startsWith(MAGIC_COOKIE) && branch.length > MAGIC_COOKIE.length;
}

/** sent-by of a Via, host lower-case and the transport's default port filled in. */
export function sentByKey(via: Via): string {
  const protocol = transportFromVia(via.transport);
  return `${via.host.toLowerCase()}:${via.port ?? (protocol ? defaultPort(protocol) : 5060)}`;
}

function safe<T>(read: () => T, fallback: T): T {
  try {
    return read();
  } catch {
    return fallback;
  }
}

function tagOf(req: SipRequest, which: 'from' | 'to'): string {
  return safe(() => req[which].tag ?? '', req.getHeader(which) ?? '');
}

/**
 * The server transaction a request belongs to, per §17.2.3, taking its method as `method`
 * (INVITE for an ACK or for the CANCEL's target):
 * - RFC 3261 branch: "the branch parameter in the request is equal to the one in the top
 *   Via header field of the request that created the transaction, the sent-by value in the
 *   top Via of the request is equal to the one in the request that created the
 *   transaction, and the method of the request matches the one that created the
 *   transaction, except for ACK, where the method of the request that created the
 *   transaction is INVITE."
 * - no magic cookie (an RFC 2543 peer): "The INVITE request matches a transaction if the
 *   Request-URI, To tag, From tag, Call-ID, CSeq, and top Via header field match those of
 *   the INVITE request which created the transaction." The same fields serve every other
 *   method. The Request-URI is compared as text and the top Via by transport, sent-by and
 *   branch, which is what a retransmission repeats.
 */
export function serverKey(req: SipRequest, method: string = req.method): string {
  const via = req.topVia;
  if (isRfc3261Branch(via.branch)) return `${via.branch}|${sentByKey(via)}|${method}`;
  return `2543|${rfc2543Common(req, via)}|${tagOf(req, 'to')}|${method}`;
}

/**
 * RFC 2543 ACK matching (§17.2.3): "the ACK matches a transaction if the Request-URI, From
 * tag, Call-ID, CSeq number (not the method), and top Via header field match those of the
 * INVITE request which created the transaction, and the To tag of the ACK matches the To
 * tag of the response sent by the server transaction." This key covers all but the To tag,
 * which the layer compares with the transaction's final response.
 */
export function rfc2543AckKey(req: SipRequest): string {
  return `2543ack|${rfc2543Common(req, req.topVia)}`;
}

function rfc2543Common(req: SipRequest, via: Via): string {
  const callId = safe(() => req.callId, req.getHeader('call-id') ?? '');
  const seq = safe(() => String(req.cseq.seq), req.getHeader('cseq') ?? '');
  return [req.uriText, tagOf(req, 'from'), callId, seq, `${via.transport} ${sentByKey(via)};branch=${via.branch ?? ''}`].join('|');
}

/**
 * §17.1.3: a response matches a client transaction "if the response has the same value of
 * the branch parameter in the top Via header field as the branch parameter in the top Via
 * header field of the request that created the transaction" and "the method parameter in
 * the CSeq header field matches the method of the request that created the transaction".
 */
export function clientKey(branch: string, method: string): string {
  return `${branch}|${method}`;
}

/** The client key of a response, or undefined when its top Via has no branch. */
export function responseClientKey(res: SipResponse): string | undefined {
  const branch = res.topVia.branch;
  if (branch === undefined) return undefined;
  return clientKey(branch, res.cseq.method);
}
