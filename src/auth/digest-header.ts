import { closingQuote, TOKEN_CHAR_RE, unquote } from '../sip/header-values.js';
import type { DigestAlgorithm } from './ha1.js';

/** The parameters of a Digest Authorization header (RFC 3261 §25.1 digest-response, RFC 8760). */
export interface DigestCredentials {
  readonly username: string;
  readonly realm: string;
  readonly nonce: string;
  readonly uri: string;
  readonly response: string;
  /** RFC 8760 §2.3: MD5 when absent. */
  readonly algorithm: string;
  readonly cnonce?: string;
  readonly qop?: string;
  /** nonce-count as sent: 8 hex digits. */
  readonly nc?: string;
  readonly opaque?: string;
}

/** A header value longer than this is not read at all. */
const MAX_HEADER_LENGTH = 4096;
const MAX_PARAMS = 20;

/**
 * The auth-params of a `Digest` challenge or credentials (RFC 3261 §25.1, RFC 2617 §3.2.1,
 * §3.2.2): comma-separated name=value, values tokens or quoted strings, names lower-cased.
 * Used by the server (Authorization) and the UA (WWW-/Proxy-Authenticate). Undefined for
 * another scheme, broken text, a repeated parameter (ambiguous) or text past the bounds.
 */
export function parseDigestParams(value: string): Map<string, string> | undefined {
  if (value.length > MAX_HEADER_LENGTH) return undefined;
  const m = /^\s*digest\s+/i.exec(value);
  if (!m) return undefined;
  const params = new Map<string, string>();
  const s = value;
  let i = m[0].length;
  while (i < s.length) {
    while (i < s.length && (s[i] === ' ' || s[i] === '\t' || s[i] === ',')) i++;
    if (i >= s.length) break;
    const nameStart = i;
    while (i < s.length && TOKEN_CHAR_RE.test(s[i]!)) i++;
    const name = s.slice(nameStart, i).toLowerCase();
    if (!name) return undefined;
    i = skipBlanks(s, i);
    if (s[i] !== '=') return undefined;
    i = skipBlanks(s, i + 1);
    let v: string;
    if (s[i] === '"') {
      const end = closingQuote(s, i);
      if (end < 0) return undefined;
      v = unquote(s.slice(i, end + 1));
      i = end + 1;
    } else {
      const start = i;
      while (i < s.length && s[i] !== ',' && s[i] !== ' ' && s[i] !== '\t') i++;
      v = s.slice(start, i);
    }
    if (params.has(name) || params.size >= MAX_PARAMS) return undefined;
    params.set(name, v);
  }
  return params;
}

function skipBlanks(s: string, i: number): number {
  while (i < s.length && (s[i] === ' ' || s[i] === '\t')) i++;
  return i;
}

/**
 * Parses `Digest username="bob", realm="x", ...` (RFC 3261 §25.1, RFC 2617 §3.2.2).
 * Undefined for another scheme, a malformed value or a missing mandatory parameter.
 */
export function parseDigestCredentials(value: string): DigestCredentials | undefined {
  const params = parseDigestParams(value);
  if (!params) return undefined;
  const username = params.get('username');
  const realm = params.get('realm');
  const nonce = params.get('nonce');
  const uri = params.get('uri');
  const response = params.get('response');
  if (username === undefined || realm === undefined || nonce === undefined || uri === undefined || response === undefined) return undefined;
  const opt = (k: string): Record<string, string> => {
    const x = params.get(k);
    return x === undefined ? {} : { [k]: x };
  };
  return { username, realm, nonce, uri, response, algorithm: params.get('algorithm') ?? 'MD5', ...opt('cnonce'), ...opt('qop'), ...opt('nc'), ...opt('opaque') };
}

/** RFC 8760 §2.3 algorithm names are case-insensitive; undefined for one we do not offer. */
export function algorithmOf(name: string): DigestAlgorithm | undefined {
  const n = name.toUpperCase();
  if (n === 'SHA-256') return 'SHA-256';
  if (n === 'MD5') return 'MD5';
  return undefined;
}

/** One WWW-Authenticate value (RFC 3261 §20.44, RFC 8760 §2.4: one per algorithm). */
export function buildChallenge(c: { realm: string; nonce: string; algorithm: DigestAlgorithm; stale: boolean; opaque?: string }): string {
  const parts = [`Digest realm="${quote(c.realm)}"`, `nonce="${c.nonce}"`, `algorithm=${c.algorithm}`, 'qop="auth"'];
  if (c.opaque !== undefined) parts.push(`opaque="${quote(c.opaque)}"`);
  if (c.stale) parts.push('stale=true');
  return parts.join(', ');
}

function quote(v: string): string {
  return v.replace(/["\\]/g, (x) => `\\${x}`);
}
