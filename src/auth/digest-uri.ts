import { isSipUri, tryParseUri, type SipUri } from '../sip/uri.js';

/** RFC 3261 §19.1.4: parameters that make two URIs differ when only one of them has it. */
const MUST_MATCH_PARAMS = ['user', 'ttl', 'method', 'maddr', 'transport'];

/**
 * RFC 2617 §3.2.2.5 (RFC 3261 §22.4): the `uri` of the credentials must name the resource of
 * the Request-Line, or a captured Authorization could be spent on another request. Equal
 * text matches at once; otherwise both are compared as SIP URIs (RFC 3261 §19.1.4), so
 * `sip:Bob@EXAMPLE.com` and `sip:Bob@example.com` are the same resource.
 */
export function digestUriMatches(digestUri: string, requestUri: string, server?: ServerAddress): boolean {
  if (digestUri === requestUri) return true;
  const a = tryParseUri(digestUri);
  const b = tryParseUri(requestUri);
  if (!a || !b) return false;
  return equivalentUris(a, b) || (server !== undefined && namesServer(a, server));
}

/** Where the request arrived: the served domain and the local address and port of its flow. */
export interface ServerAddress {
  readonly domain: string;
  readonly host: string;
  readonly port: number;
}

/**
 * A digest uri naming this server itself, with no user part: SIPp signs every request
 * for `sip:remote_ip:remote_port` unless told otherwise (-auth_uri). Such credentials bind
 * no resource for anybody, so accepting them gives nothing away: a client that signs its
 * Request-URI, as RFC 2617 asks, still cannot have its credentials spent on another one.
 */
function namesServer(uri: SipUri, server: ServerAddress): boolean {
  if (!isSipUri(uri) || uri.user !== undefined || uri.params.size > 0 || uri.headers !== undefined) return false;
  const host = uri.host.replace(/^\[(.*)\]$/, '$1');
  if (host === server.domain.toLowerCase()) return true;
  return host === server.host.toLowerCase() && (uri.port === undefined || uri.port === server.port);
}

function equivalentUris(a: SipUri, b: SipUri): boolean {
  if (a.scheme !== b.scheme) return false;
  // tel: (RFC 3966 §4) compared on the number with visual separators gone, and its parameters.
  if (!isSipUri(a)) return a.user === b.user && sameParams(a, b, [...a.params.keys(), ...b.params.keys()]);
  // §19.1.4: user and password case-sensitive (escapes decoded), host case-insensitive, and
  // a port left out differs from the default port written.
  if (a.user !== b.user || a.password !== b.password || a.host !== b.host || a.port !== b.port) return false;
  const shared = [...a.params.keys()].filter((k) => b.params.has(k));
  if (!sameParams(a, b, [...MUST_MATCH_PARAMS, ...shared])) return false;
  return (a.headers ?? '') === (b.headers ?? '');
}

/** The named parameters: present in both with the same value (case-insensitive), or in neither. */
function sameParams(a: SipUri, b: SipUri, names: readonly string[]): boolean {
  for (const k of names) {
    const x = a.params.get(k);
    const y = b.params.get(k);
    if (x === undefined && y === undefined) continue;
    if (x === undefined || y === undefined) return false;
    if ((x ?? '').toLowerCase() !== (y ?? '').toLowerCase()) return false;
  }
  return true;
}
