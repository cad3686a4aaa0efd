import { randomFillSync } from 'node:crypto';
import { SipRequest, SipResponse, type HeaderField } from './message.js';

/** RFC 3261 §21 and the extensions we answer with. */
export const REASON_PHRASES: Readonly<Record<number, string>> = {
  100: 'Trying',
  180: 'Ringing',
  181: 'Call Is Being Forwarded',
  182: 'Queued',
  183: 'Session Progress',
  200: 'OK',
  202: 'Accepted', // RFC 6665 §8.3.1 (deprecated there, still sent by old peers)
  204: 'No Notification', // RFC 5839
  300: 'Multiple Choices',
  301: 'Moved Permanently',
  302: 'Moved Temporarily',
  305: 'Use Proxy',
  380: 'Alternative Service',
  400: 'Bad Request',
  401: 'Unauthorized',
  402: 'Payment Required',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  407: 'Proxy Authentication Required',
  408: 'Request Timeout',
  410: 'Gone',
  412: 'Conditional Request Failed', // RFC 3903
  413: 'Request Entity Too Large',
  414: 'Request-URI Too Long',
  415: 'Unsupported Media Type',
  416: 'Unsupported URI Scheme',
  420: 'Bad Extension',
  421: 'Extension Required',
  423: 'Interval Too Brief',
  480: 'Temporarily Unavailable',
  481: 'Call/Transaction Does Not Exist',
  482: 'Loop Detected',
  483: 'Too Many Hops',
  484: 'Address Incomplete',
  485: 'Ambiguous',
  486: 'Busy Here',
  487: 'Request Terminated',
  488: 'Not Acceptable Here',
  489: 'Bad Event', // RFC 6665
  491: 'Request Pending',
  493: 'Undecipherable',
  500: 'Server Internal Error',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Server Time-out',
  505: 'Version Not Supported',
  513: 'Message Too Large',
  600: 'Busy Everywhere',
  603: 'Decline',
  604: 'Does Not Exist Anywhere',
  606: 'Not Acceptable',
};

export function reasonPhrase(status: number): string {
  // RFC 3261 §21: an unknown code is read as x00 of its class, so its phrase will do.
  return REASON_PHRASES[status] ?? REASON_PHRASES[Math.floor(status / 100) * 100] ?? (status < 200 ? 'Trying' : 'Error');
}

/** Random bytes for many tokens: one call into the CSPRNG per 4 KB, not one per token. */
const tokenPool = Buffer.alloc(4096);
let tokenOffset = tokenPool.length;

/**
 * A random tag, branch suffix or Call-ID part (RFC 3261 §8.1.1.7, §19.3: unique over space
 * and time): `bytes` of randomness (64 bits by default) in URL-safe text. Drawn from a pool:
 * every final response gets a To tag and every NOTIFY a branch, and a `randomBytes` call
 * each was several percent of the server's CPU under load.
 */
export function randomToken(bytes = 8): string {
  if (bytes > tokenPool.length) return randomFillSync(Buffer.alloc(bytes)).toString('base64url');
  if (tokenOffset + bytes > tokenPool.length) {
    randomFillSync(tokenPool);
    tokenOffset = 0;
  }
  const token = tokenPool.toString('base64url', tokenOffset, tokenOffset + bytes);
  tokenOffset += bytes;
  return token;
}

export const SERVER_HEADER = 'simple-presence/0.1';

/**
 * Whether the request's To carries a tag header parameter (RFC 3261 §8.2.6.2). A `tag`
 * URI parameter or the text ";tag=" in a display name is none. When the To does not
 * parse (a 400 to it), the text is scanned outside quoted strings and <...>.
 */
function hasToTag(req: SipRequest): boolean {
  try {
    return req.to.tag !== undefined;
  } catch {
    const value = req.getHeader('to') ?? '';
    let inQuote = false;
    let inAngle = false;
    for (let i = 0; i < value.length; i++) {
      const c = value.charCodeAt(i);
      if (inQuote) {
        if (c === 0x5c) i++; // quoted-pair
        else if (c === 0x22) inQuote = false;
      } else if (c === 0x22) inQuote = true;
      else if (c === 0x3c) inAngle = true;
      else if (c === 0x3e) inAngle = false;
      else if (c === 0x3b && !inAngle && /^;[ \t]*tag[ \t]*=/i.test(value.slice(i))) return true;
    }
    return false;
  }
}

/**
 * Builds a response to `req` per RFC 3261 §8.2.6.2: Via (all, in order), From, Call-ID
 * and CSeq copied; To copied with a tag added when it has none (except for 100).
 * Header lines are copied as text, so a request whose From or To did not parse can
 * still be answered with a 400.
 */
export function createResponse(
  req: SipRequest,
  status: number,
  reason?: string,
  options: { toTag?: string; headers?: Array<[string, string | number]>; body?: Buffer; contentType?: string } = {},
): SipResponse {
  const headers: HeaderField[] = [];
  for (const h of req.headers) {
    if (h.key === 'via' || h.key === 'from' || h.key === 'call-id' || h.key === 'cseq') headers.push(h);
    else if (h.key === 'to') {
      let value = h.value;
      if (status > 100 && !hasToTag(req)) value += `;tag=${options.toTag ?? randomToken()}`;
      headers.push({ key: 'to', name: 'To', value });
    }
  }
  const res = new SipResponse(status, reason ?? reasonPhrase(status), headers);
  res.addHeader('Server', SERVER_HEADER);
  for (const [name, value] of options.headers ?? []) res.addHeader(name, value);
  if (options.body) {
    res.body = options.body;
    if (options.contentType) res.setHeader('Content-Type', options.contentType);
  }
  return res;
}
