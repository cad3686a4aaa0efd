import { SipParseError } from './errors.js';
import { trimLws } from './lws.js';

/**
 * The parameters of a value that has none, one map shared by all (most URIs and headers have
 * none: a Map each would be garbage on every message). Never written to.
 */
export const NO_PARAMS: ReadonlyMap<string, string | null> = new Map<string, string | null>();

/** Schemes parsed in full: the Request-URI must be one of these (RFC 3261 §8.2.2.1). */
export type UriScheme = 'sip' | 'sips' | 'tel';

/**
 * A parsed SIP, SIPS or tel URI (RFC 3261 §19.1, RFC 3966), or, in a name-addr or addr-spec
 * (From, To, Contact...), an absoluteURI of another scheme (RFC 3261 §25.1: http:, mailto:,
 * isbn:...) kept opaque: no host, no parameters. Immutable; `raw` is its text.
 */
export interface SipUri {
  /** Lower-cased; a UriScheme, or any other scheme for an opaque absoluteURI (see isSipUri). */
  readonly scheme: UriScheme | (string & NonNullable<unknown>);
  /**
   * User part with %-escapes decoded (RFC 3261 §19.1.4 compares decoded). For tel: the
   * number. For an opaque absoluteURI: everything after the scheme's colon, as written.
   */
  readonly user?: string;
  readonly password?: string;
  /** Host as written, IPv6 references with their brackets; lower-cased. Empty for tel and opaque URIs. */
  readonly host: string;
  readonly port?: number;
  /** URI parameters, names lower-cased, %-escapes decoded; a parameter without value maps to null. */
  readonly params: ReadonlyMap<string, string | null>;
  /** URI headers (after `?`), raw. */
  readonly headers?: string;
  readonly raw: string;
}

/** True for sip: and sips: URIs, the only ones with a host to route to. */
export function isSipUri(uri: SipUri): uri is SipUri & { readonly scheme: 'sip' | 'sips' } {
  return uri.scheme === 'sip' || uri.scheme === 'sips';
}

// RFC 3986 §3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
const SCHEME_RE = /^[A-Za-z][A-Za-z0-9+.-]*$/;
// RFC 3261 §25.1 absoluteURI after "scheme:": uric = reserved / unreserved / escaped (and
// the brackets of RFC 3986 IP literals).
const URIC_RE = /^(?:[A-Za-z0-9\-_.!~*'();/?:@&=+$,[\]]|%[0-9A-Fa-f]{2})+$/;
const HOSTNAME_RE = /^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.?$/;
const IPV4_RE = /^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$/;
const IPV6_RE = /^\[[0-9A-Fa-f:.]+\]$/;
// RFC 3261 §25.1 user: unreserved / escaped / user-unreserved
const USER_RE = /^(?:[A-Za-z0-9\-_.!~*'()&=+$,;?/]|%[0-9A-Fa-f]{2})+$/;
const PASSWORD_RE = /^(?:[A-Za-z0-9\-_.!~*'()&=+$,]|%[0-9A-Fa-f]{2})*$/;
const PARAM_RE = /^(?:[A-Za-z0-9\-_.!~*'()[\]/:&+$]|%[0-9A-Fa-f]{2})+$/;

export function isValidHost(host: string): boolean {
  if (IPV6_RE.test(host)) return host.includes(':');
  if (IPV4_RE.test(host)) return octetsInRange(host);
  return HOSTNAME_RE.test(host) && host.length <= 255;
}

/** Every octet of a dotted quad (IPV4_RE matched) at most 255, read in place. */
function octetsInRange(quad: string): boolean {
  let octet = 0;
  for (let i = 0; i < quad.length; i++) {
    const c = quad.charCodeAt(i);
    if (c === 0x2e) octet = 0;
    else if ((octet = octet * 10 + (c - 0x30)) > 255) return false;
  }
  return true;
}

function decodeEscapes(s: string): string {
  if (!s.includes('%')) return s;
  // Escapes are octets; the decoded user may hold bytes such as %00 (RFC 4475 §3.1.1.4).
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const ch = s.charCodeAt(i);
    if (ch === 0x25) {
      bytes.push(parseInt(s.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      for (const b of Buffer.from(s[i]!, 'utf8')) bytes.push(b);
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/** Parses `host[:port]`; returns undefined when malformed. */
export function parseHostPort(text: string): { host: string; port?: number } | undefined {
  let host: string;
  let portText: string | undefined;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0) return undefined;
    host = text.slice(0, close + 1);
    const rest = text.slice(close + 1);
    if (rest.length > 0) {
      if (rest[0] !== ':') return undefined;
      portText = rest.slice(1);
    }
  } else {
    const colon = text.indexOf(':');
    if (colon >= 0) {
      host = text.slice(0, colon);
      portText = text.slice(colon + 1);
    } else {
      host = text;
    }
  }
  if (!isValidHost(host)) return undefined;
  let port: number | undefined;
  if (portText !== undefined) {
    if (!/^\d{1,5}$/.test(portText)) return undefined;
    port = Number(portText);
    if (port > 65535) return undefined;
  }
  return { host: host.toLowerCase(), port };
}

/** Parses `;name=value;flag` parameter text (leading `;` optional) into a map with lower-cased names. */
export function parseParams(text: string, check: RegExp = PARAM_RE): ReadonlyMap<string, string | null> | undefined {
  if (text.length === 0) return NO_PARAMS;
  const params = new Map<string, string | null>();
  const parts = text.split(';');
  for (let i = 0; i < parts.length; i++) {
    const part = trimLws(parts[i]!);
    if (part.length === 0) {
      if (i === 0) continue;
      return undefined;
    }
    const eq = part.indexOf('=');
    const name = trimLws(eq < 0 ? part : part.slice(0, eq));
    const value = eq < 0 ? null : trimLws(part.slice(eq + 1));
    if (!check.test(name) || (value !== null && value.length > 0 && !check.test(value))) return undefined;
    params.set(name.toLowerCase(), value);
  }
  return params;
}

/** URI parameters of a sip/sips URI: `escaped` is allowed in names and values (RFC 3261 §25.1 pname, pvalue). */
function parseSipParams(text: string): ReadonlyMap<string, string | null> | undefined {
  if (!text.includes('%')) return parseParams(text);
  const escaped = parseParams(text);
  if (!escaped) return undefined;
  // RFC 3261 §19.1.4: an escaped octet equals the octet; unescaped once (RFC 4475 §3.1.1.3).
  const params = new Map<string, string | null>();
  for (const [name, value] of escaped) params.set(decodeEscapes(name).toLowerCase(), value === null ? null : decodeEscapes(value));
  return params;
}

/** Whether `raw` is `scheme ":" 1*uric` (RFC 3261 §25.1 absoluteURI, either form). */
function isAbsoluteUri(raw: string, colon: number): boolean {
  return colon > 0 && colon < raw.length - 1 && SCHEME_RE.test(raw.slice(0, colon)) && URIC_RE.test(raw.slice(colon + 1));
}

/**
 * Parses a SIP/SIPS/tel URI, as the Request-URI must be. Throws SipParseError with a
 * reason phrase on bad input: 416 for a well-formed URI of another scheme (RFC 3261
 * §8.2.2.1), 400 for text that is no URI at all (RFC 4475 §3.1.2.7: `<sip:...>`).
 */
export function parseUri(raw: string): SipUri {
  const colon = raw.indexOf(':');
  if (colon <= 0) throw new SipParseError('Bad URI');
  const scheme = raw.slice(0, colon).toLowerCase();
  const rest = raw.slice(colon + 1);
  if (scheme === 'tel') return parseTelUri(raw, rest);
  if (scheme !== 'sip' && scheme !== 'sips') {
    if (isAbsoluteUri(raw, colon)) throw new SipParseError('Unsupported URI Scheme', 416);
    throw new SipParseError('Bad URI');
  }
  if (/[\s<>"]/.test(rest)) throw new SipParseError('Bad URI');

  let userinfo: string | undefined;
  let hostpart = rest;
  const at = rest.indexOf('@');
  if (at >= 0) {
    userinfo = rest.slice(0, at);
    hostpart = rest.slice(at + 1);
  }
  let headers: string | undefined;
  const q = hostpart.indexOf('?');
  if (q >= 0) {
    headers = hostpart.slice(q + 1);
    hostpart = hostpart.slice(0, q);
  }
  const semi = hostpart.indexOf(';');
  const hostPortText = semi >= 0 ? hostpart.slice(0, semi) : hostpart;
  const params = semi >= 0 ? parseSipParams(hostpart.slice(semi + 1)) : NO_PARAMS;
  if (!params) throw new SipParseError('Bad URI parameters');
  const hp = parseHostPort(hostPortText);
  if (!hp) throw new SipParseError('Bad URI host');

  let user: string | undefined;
  let password: string | undefined;
  if (userinfo !== undefined) {
    const pc = userinfo.indexOf(':');
    const userText = pc >= 0 ? userinfo.slice(0, pc) : userinfo;
    if (!USER_RE.test(userText)) throw new SipParseError('Bad URI user');
    if (pc >= 0) {
      const pw = userinfo.slice(pc + 1);
      if (!PASSWORD_RE.test(pw)) throw new SipParseError('Bad URI password');
      password = decodeEscapes(pw);
    }
    user = decodeEscapes(userText);
  }
  return { scheme, user, password, host: hp.host, port: hp.port, params, headers, raw };
}

function parseTelUri(raw: string, rest: string): SipUri {
  const semi = rest.indexOf(';');
  const number = semi >= 0 ? rest.slice(0, semi) : rest;
  // RFC 3966 §3: global numbers start with '+', local ones need phone-context
  if (!/^\+?[0-9A-Fa-f*#\-.()]+$/.test(number)) throw new SipParseError('Bad tel URI');
  const params = semi >= 0 ? parseParams(rest.slice(semi + 1), /^[^;=\s]+$/) : NO_PARAMS;
  if (!params) throw new SipParseError('Bad tel URI');
  return { scheme: 'tel', user: number.replace(/[-.()]/g, ''), host: '', params, raw };
}

/**
 * Parses the URI of a name-addr or addr-spec (RFC 3261 §25.1: addr-spec = SIP-URI /
 * SIPS-URI / absoluteURI): sip, sips and tel in full, any other scheme as an opaque
 * absoluteURI. 416 is for the Request-URI only; here a URI is either well-formed or 400.
 */
export function parseAddrSpecUri(raw: string): SipUri {
  const colon = raw.indexOf(':');
  if (colon <= 0) throw new SipParseError('Bad URI');
  const scheme = raw.slice(0, colon).toLowerCase();
  if (scheme === 'sip' || scheme === 'sips' || scheme === 'tel') return parseUri(raw);
  if (!isAbsoluteUri(raw, colon)) throw new SipParseError('Bad URI');
  return { scheme, user: raw.slice(colon + 1), host: '', params: NO_PARAMS, raw };
}

/** Tries parseUri; undefined when it fails. */
export function tryParseUri(raw: string): SipUri | undefined {
  try {
    return parseUri(raw);
  } catch {
    return undefined;
  }
}

function encodeUser(user: string): string {
  return user.replace(/[^A-Za-z0-9\-_.!~*'()&=+$,;?/]/g, (c) =>
    [...Buffer.from(c, 'utf8')].map((b) => '%' + b.toString(16).toUpperCase().padStart(2, '0')).join(''));
}

/** Builds the text of a sip/sips URI. */
export function formatSipUri(parts: {
  scheme?: 'sip' | 'sips';
  user?: string;
  host: string;
  port?: number;
  params?: Iterable<[string, string | null]>;
}): string {
  let s = `${parts.scheme ?? 'sip'}:`;
  if (parts.user !== undefined && parts.user !== '') s += encodeUser(parts.user) + '@';
  s += parts.host.includes(':') && !parts.host.startsWith('[') ? `[${parts.host}]` : parts.host;
  if (parts.port !== undefined) s += `:${parts.port}`;
  for (const [k, v] of parts.params ?? []) s += v === null ? `;${k}` : `;${k}=${v}`;
  return s;
}

/**
 * Address-of-record of a URI: scheme, user and host, without port, parameters or headers
 * (RFC 3261 §10.3 step 5). `sip:alice@Example.com:5060;transport=tcp` → `sip:alice@example.com`.
 * sips is folded into sip so that one user has one presentity.
 */
export function addressOfRecord(uri: SipUri): string {
  if (uri.scheme === 'tel') return `tel:${uri.user ?? ''}`;
  // An opaque absoluteURI (From: <http://...>) names itself.
  if (!isSipUri(uri)) return uri.raw;
  return formatSipUri({ user: uri.user, host: uri.host });
}
