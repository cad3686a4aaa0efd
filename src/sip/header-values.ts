import { SipParseError } from './errors.js';
import { trimLws } from './lws.js';
import { NO_PARAMS, parseAddrSpecUri, parseHostPort, type SipUri } from './uri.js';

/** RFC 3261 §20.42 Via. */
export interface Via {
  readonly protocol: string;
  readonly version: string;
  /** Upper-case transport token: UDP, TCP, TLS, WS, WSS, SCTP... */
  readonly transport: string;
  readonly host: string;
  readonly port?: number;
  readonly params: ReadonlyMap<string, string | null>;
  readonly branch?: string;
}

/** RFC 3261 §20.10/§20.20/§20.39 name-addr or addr-spec with header parameters (From, To, Contact, Route...). */
export interface NameAddr {
  readonly displayName?: string;
  readonly uri: SipUri;
  readonly params: ReadonlyMap<string, string | null>;
  readonly tag?: string;
  /** Text as on the wire. */
  readonly raw: string;
}

export interface CSeq {
  readonly seq: number;
  readonly method: string;
}

/** RFC 3261 §25.1 token characters. */
export const TOKEN_CHAR_RE = /[A-Za-z0-9\-.!%*_+`'~]/;
export const TOKEN_RE = new RegExp(`^${TOKEN_CHAR_RE.source}+$`);
export const MAGIC_COOKIE = 'z9hG4bK';


/**
 * Splits a header value at commas that are not inside quotes or angle brackets
 * (RFC 3261 §7.3.1). Empty elements are an error.
 */
export function splitList(value: string): string[] {
  if (!value.includes(',')) return [trimLws(value)];
  const out: string[] = [];
  let start = 0;
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
    else if (c === 0x2c && !inAngle) {
      out.push(trimLws(value.slice(start, i)));
      start = i + 1;
    }
  }
  out.push(trimLws(value.slice(start)));
  return out;
}

/** Header parameters after a value: `;tag=x;expires=60`. Quoted values keep their quotes removed. */
export function parseHeaderParams(text: string, what: string): ReadonlyMap<string, string | null> {
  let i = 0;
  const n = text.length;
  while (i < n && (text[i] === ' ' || text[i] === '\t')) i++;
  if (i === n) return NO_PARAMS;
  const params = new Map<string, string | null>();
  while (i < n) {
    while (i < n && (text[i] === ' ' || text[i] === '\t')) i++;
    if (i >= n) break;
    if (text[i] !== ';') throw new SipParseError(`Bad ${what}`);
    i++;
    while (i < n && (text[i] === ' ' || text[i] === '\t')) i++;
    let j = i;
    while (j < n && text[j] !== '=' && text[j] !== ';' && text[j] !== ' ' && text[j] !== '\t') j++;
    const name = text.slice(i, j).toLowerCase();
    if (!TOKEN_RE.test(name)) throw new SipParseError(`Bad ${what} parameter`);
    i = j;
    while (i < n && (text[i] === ' ' || text[i] === '\t')) i++;
    if (i < n && text[i] === '=') {
      i++;
      while (i < n && (text[i] === ' ' || text[i] === '\t')) i++;
      if (text[i] === '"') {
        const end = closingQuote(text, i);
        if (end < 0) throw new SipParseError(`Bad ${what}: unbalanced quotes`);
        params.set(name, unquote(text.slice(i, end + 1)));
        i = end + 1;
      } else {
        j = i;
        while (j < n && text[j] !== ';' && text[j] !== ' ' && text[j] !== '\t') j++;
        const value = text.slice(i, j);
        // gen-value = token / host / quoted-string; IPv6 references allowed (received=[::1])
        if (value.length === 0 || !/^(?:[A-Za-z0-9\-.!%*_+`'~:]+|\[[0-9A-Fa-f:.]+\])$/.test(value)) {
          throw new SipParseError(`Bad ${what} parameter`);
        }
        params.set(name, value);
        i = j;
      }
    } else {
      params.set(name, null);
    }
  }
  return params;
}

/** Index of the quote closing the quoted-string opened at `start`, honouring quoted-pairs; -1 if none. */
export function closingQuote(text: string, start: number): number {
  for (let i = start + 1; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x5c) i++;
    else if (c === 0x22) return i;
  }
  return -1;
}

export function unquote(quoted: string): string {
  return quoted.slice(1, -1).replace(/\\([\s\S])/g, '$1');
}

export function quote(text: string): string {
  return '"' + text.replace(/(["\\])/g, '\\$1') + '"';
}

/** Parses one Via element (already split from its list). */
export function parseVia(text: string): Via {
  // sent-protocol = protocol-name SLASH protocol-version SLASH transport, with LWS allowed around SLASH
  const m = /^([A-Za-z0-9\-.!%*_+`'~]+)\s*\/\s*([A-Za-z0-9\-.!%*_+`'~]+)\s*\/\s*([A-Za-z0-9\-.!%*_+`'~]+)\s+([^;\s]+(?:\s*:\s*\d+)?)\s*(;.*)?$/s.exec(trimLws(text));
  if (!m) throw new SipParseError('Bad Via');
  const hp = parseHostPort(m[4]!.replace(/\s+/g, ''));
  if (!hp) throw new SipParseError('Bad Via sent-by');
  const params = parseHeaderParams(m[5] ?? '', 'Via');
  const branch = params.get('branch');
  if (params.has('branch') && !branch) throw new SipParseError('Bad Via branch');
  const ttl = params.get('ttl');
  if (ttl !== undefined && (ttl === null || !/^\d{1,3}$/.test(ttl) || Number(ttl) > 255)) throw new SipParseError('Bad Via ttl');
  const rport = params.get('rport');
  if (rport && (!/^\d{1,5}$/.test(rport) || Number(rport) > 65535)) throw new SipParseError('Bad Via rport');
  return {
    protocol: m[1]!.toUpperCase(),
    version: m[2]!,
    transport: m[3]!.toUpperCase(),
    host: hp.host,
    port: hp.port,
    params,
    branch: branch ?? undefined,
  };
}

/**
 * Parses a name-addr or addr-spec with header parameters (RFC 3261 §20.10: in an addr-spec
 * without angle brackets, every `;param` belongs to the header, not the URI).
 */
export function parseNameAddr(text: string, what = 'address'): NameAddr {
  const raw = trimLws(text);
  let i = 0;
  let displayName: string | undefined;
  let uriText: string;
  let rest: string;
  if (raw.startsWith('"')) {
    const end = closingQuote(raw, 0);
    if (end < 0) throw new SipParseError(`Bad ${what}: unbalanced quotes`);
    displayName = unquote(raw.slice(0, end + 1));
    i = end + 1;
    while (raw[i] === ' ' || raw[i] === '\t') i++;
    if (raw[i] !== '<') throw new SipParseError(`Bad ${what}`);
  }
  const lt = raw.indexOf('<', i);
  if (lt >= 0) {
    if (displayName === undefined) {
      const dn = trimLws(raw.slice(0, lt));
      // display-name as tokens separated by LWS
      if (dn.length > 0) {
        if (!/^[A-Za-z0-9\-.!%*_+`'~ \t]+$/.test(dn)) throw new SipParseError(`Bad ${what} display name`);
        displayName = dn.replace(/[ \t]+/g, ' ');
      }
    }
    const gt = raw.indexOf('>', lt);
    if (gt < 0) throw new SipParseError(`Bad ${what}: missing >`);
    uriText = raw.slice(lt + 1, gt);
    rest = raw.slice(gt + 1);
  } else {
    const semi = raw.indexOf(';');
    // RFC 3261 §25.1: SEMI = SWS ";" SWS, so LWS may come between the URI and its first
    // header parameter (RFC 4475 §3.1.1.1 "sip:...example.com ;   tag = ...").
    uriText = semi >= 0 ? trimLws(raw.slice(0, semi)) : raw;
    rest = semi >= 0 ? raw.slice(semi) : '';
    // An addr-spec cannot carry these unescaped (RFC 3261 §20): they need the <> form.
    if (/[\s,?]/.test(uriText)) throw new SipParseError(`Bad ${what}`);
  }
  let uri: SipUri;
  try {
    // From, To, Contact... may hold any absoluteURI (RFC 4475 §3.3.4); whether its scheme
    // will do is for the element to decide, 416 is for the Request-URI alone.
    uri = parseAddrSpecUri(trimLws(uriText));
  } catch {
    throw new SipParseError(`Bad ${what} URI`);
  }
  const params = parseHeaderParams(rest, what);
  const tag = params.get('tag');
  if (params.has('tag') && !tag) throw new SipParseError(`Bad ${what} tag`);
  return { displayName, uri, params, tag: tag ?? undefined, raw };
}

export function parseCSeq(text: string): CSeq {
  const m = /^\s*(\d{1,10})\s+([A-Za-z0-9\-.!%*_+`'~]+)\s*$/.exec(text);
  if (!m) throw new SipParseError('Bad CSeq');
  const seq = Number(m[1]);
  // RFC 3261 §8.1.1.5: the sequence number must be less than 2**31
  if (seq >= 2 ** 31) throw new SipParseError('Bad CSeq');
  return { seq, method: m[2]! };
}

/** A non-negative integer header (Expires, Max-Forwards, Min-Expires). */
export function parseDeltaSeconds(text: string, what: string, max = 2 ** 32 - 1): number {
  const t = trimLws(text);
  if (!/^\d{1,10}$/.test(t)) throw new SipParseError(`Bad ${what}`);
  const n = Number(t);
  // RFC 3261 §25.1: delta-seconds above 2**32-1 are taken as 2**32-1
  return Math.min(n, max);
}

/** Parses `type/subtype;params` (RFC 3261 §20.15). */
export interface MediaType {
  readonly type: string;
  readonly subtype: string;
  /** `type/subtype`, lower-case. */
  readonly essence: string;
  readonly params: ReadonlyMap<string, string | null>;
}

export function parseMediaType(text: string): MediaType {
  const semi = text.indexOf(';');
  const main = trimLws(semi >= 0 ? text.slice(0, semi) : text).toLowerCase();
  const slash = main.indexOf('/');
  if (slash <= 0) throw new SipParseError('Bad Content-Type');
  const type = trimLws(main.slice(0, slash));
  const subtype = trimLws(main.slice(slash + 1));
  if (!TOKEN_RE.test(type) || !TOKEN_RE.test(subtype)) throw new SipParseError('Bad Content-Type');
  const params = semi >= 0 ? parseHeaderParams(text.slice(semi), 'Content-Type') : NO_PARAMS;
  return { type, subtype, essence: `${type}/${subtype}`, params };
}

/** Event header (RFC 6665 §8.2.1): package name and its `id`. */
export interface EventHeader {
  readonly package: string;
  readonly id?: string;
  readonly params: ReadonlyMap<string, string | null>;
}

export function parseEvent(text: string): EventHeader {
  const semi = text.indexOf(';');
  const pkg = trimLws(semi >= 0 ? text.slice(0, semi) : text).toLowerCase();
  if (!TOKEN_RE.test(pkg)) throw new SipParseError('Bad Event');
  const params = semi >= 0 ? parseHeaderParams(text.slice(semi), 'Event') : NO_PARAMS;
  const id = params.get('id');
  return { package: pkg, id: id ?? undefined, params };
}
