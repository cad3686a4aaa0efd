/**
 * Header names: case-insensitive (RFC 3261 §7.3.1), with compact forms (§7.3.3 and
 * the event/refer extensions). Every header is stored under its lower-case long name.
 */
const COMPACT: Record<string, string> = {
  i: 'call-id',
  m: 'contact',
  e: 'content-encoding',
  l: 'content-length',
  c: 'content-type',
  f: 'from',
  t: 'to',
  v: 'via',
  k: 'supported',
  s: 'subject',
  o: 'event', // RFC 6665 §8.2.1
  u: 'allow-events', // RFC 6665 §8.2.2
  r: 'refer-to', // RFC 3515
  b: 'referred-by', // RFC 3892
  x: 'session-expires', // RFC 4028
  y: 'identity', // RFC 8224
};

/** How we write a header's name on the wire. Unknown headers keep the name they came with. */
const CANONICAL: Record<string, string> = {
  'accept': 'Accept',
  'accept-encoding': 'Accept-Encoding',
  'accept-language': 'Accept-Language',
  'allow': 'Allow',
  'allow-events': 'Allow-Events',
  'authorization': 'Authorization',
  'authentication-info': 'Authentication-Info',
  'call-id': 'Call-ID',
  'contact': 'Contact',
  'content-encoding': 'Content-Encoding',
  'content-length': 'Content-Length',
  'content-type': 'Content-Type',
  'cseq': 'CSeq',
  'date': 'Date',
  'event': 'Event',
  'expires': 'Expires',
  'from': 'From',
  'max-forwards': 'Max-Forwards',
  'min-expires': 'Min-Expires',
  'path': 'Path',
  'proxy-authenticate': 'Proxy-Authenticate',
  'proxy-authorization': 'Proxy-Authorization',
  'proxy-require': 'Proxy-Require',
  'record-route': 'Record-Route',
  'require': 'Require',
  'retry-after': 'Retry-After',
  'route': 'Route',
  'server': 'Server',
  'sip-etag': 'SIP-ETag',
  'sip-if-match': 'SIP-If-Match',
  'subject': 'Subject',
  'subscription-state': 'Subscription-State',
  'supported': 'Supported',
  'to': 'To',
  'unsupported': 'Unsupported',
  'user-agent': 'User-Agent',
  'via': 'Via',
  'warning': 'Warning',
  'www-authenticate': 'WWW-Authenticate',
};

/** Keys of the names seen as they were written ("Call-ID", "call-id", "i"): one lookup, no new string. */
const KEYS = new Map<string, string>();
/** Bound on KEYS: names come from the network, and past the usual ones each is lowered anew. */
const MAX_KEYS = 512;

/** Lower-case long name of a header as it appeared on the wire. */
export function headerKey(name: string): string {
  const known = KEYS.get(name);
  if (known !== undefined) return known;
  const lower = name.toLowerCase();
  const key = (lower.length === 1 && COMPACT[lower]) || lower;
  if (KEYS.size < MAX_KEYS) KEYS.set(name, key);
  return key;
}

/** Wire form for a header key; `original` is used for headers we do not know. */
export function canonicalHeaderName(key: string, original?: string): string {
  return CANONICAL[key] ?? original ?? key.replace(/(^|-)([a-z])/g, (_m, d: string, c: string) => d + c.toUpperCase());
}

/**
 * Headers whose values are comma-separated lists (RFC 3261 §7.3.1), so that several
 * header lines and one line with commas mean the same. Headers not listed here
 * (Date, WWW-Authenticate, ...) may carry commas inside a single value.
 */
export const LIST_HEADERS: ReadonlySet<string> = new Set([
  'via', 'contact', 'route', 'record-route', 'path', 'allow', 'supported', 'require',
  'proxy-require', 'unsupported', 'accept', 'accept-encoding', 'accept-language',
  'allow-events', 'content-encoding', 'sip-if-match',
]);

/** Headers that may appear once only; a second instance makes the request unusable. */
export const SINGLE_HEADERS: ReadonlySet<string> = new Set([
  'call-id', 'cseq', 'from', 'to', 'max-forwards', 'content-length', 'content-type', 'expires', 'event',
]);
