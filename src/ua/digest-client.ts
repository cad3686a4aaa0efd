import { randomBytes } from 'node:crypto';
import { parseDigestParams } from '../auth/digest-header.js';
import { digestHex } from '../auth/ha1.js';
import { quote } from '../sip/header-values.js';

/** The shared Digest auth-param parser (one grammar for challenges and credentials). */
export { parseDigestParams };

/** RFC 8760 §2: the digest algorithms a UAC may meet; `-sess` variants hash the cnonce in. */
export type DigestAlgorithmName = 'MD5' | 'MD5-sess' | 'SHA-256' | 'SHA-256-sess';

/** What the client supports, in the order it prefers them when it has the choice. */
export const CLIENT_ALGORITHMS: readonly DigestAlgorithmName[] = ['SHA-256', 'SHA-256-sess', 'MD5', 'MD5-sess'];

/** One WWW-Authenticate / Proxy-Authenticate `Digest` challenge (RFC 3261 §20.44, §25.1). */
export interface DigestChallenge {
  /** 401 answers go with Authorization, 407 with Proxy-Authorization (§22.2, §22.3). */
  readonly header: 'Authorization' | 'Proxy-Authorization';
  readonly realm: string;
  readonly nonce: string;
  readonly opaque?: string;
  /** Absent means MD5 (RFC 3261 §25.1, RFC 8760 §2.1). */
  readonly algorithm: DigestAlgorithmName;
  /** The qop values offered; empty for an RFC 2069-style challenge. */
  readonly qop: readonly string[];
  /** RFC 3261 §22.4 / RFC 2617: the nonce was stale, the password was right. */
  readonly stale: boolean;
}

export interface DigestCredentials {
  readonly username: string;
  readonly password: string;
}

function algorithmName(text: string | undefined): DigestAlgorithmName | undefined {
  if (text === undefined) return 'MD5';
  const t = text.toUpperCase();
  return (CLIENT_ALGORITHMS as readonly string[]).includes(t) ? (t as DigestAlgorithmName) : undefined;
}

/** One challenge header value, or undefined when it is not a Digest challenge we can answer. */
export function parseChallenge(value: string, header: DigestChallenge['header']): DigestChallenge | undefined {
  const p = parseDigestParams(value);
  if (!p) return undefined;
  const realm = p.get('realm');
  const nonce = p.get('nonce');
  const algorithm = algorithmName(p.get('algorithm'));
  if (realm === undefined || nonce === undefined || !algorithm) return undefined;
  const qop = (p.get('qop') ?? '').split(',').map((q) => q.trim().toLowerCase()).filter(Boolean);
  // RFC 3261 §22.4 asks for qop=auth support; a challenge offering only auth-int we cannot answer.
  if (qop.length > 0 && !qop.includes('auth')) return undefined;
  const opaque = p.get('opaque');
  return { header, realm, nonce, algorithm, qop, stale: (p.get('stale') ?? '').toLowerCase() === 'true', ...(opaque !== undefined ? { opaque } : {}) };
}

/**
 * Picks the challenge to answer from a 401/407's values. RFC 8760 §2.4: the UAS lists its
 * challenges in order of preference, and the UAC uses the topmost one whose algorithm it
 * supports.
 */
export function chooseChallenge(values: readonly string[], header: DigestChallenge['header']): DigestChallenge | undefined {
  for (const v of values) {
    const c = parseChallenge(v, header);
    if (c) return c;
  }
  return undefined;
}

function hash(algorithm: DigestAlgorithmName, data: string): string {
  return digestHex(algorithm.startsWith('SHA-256') ? 'SHA-256' : 'MD5', data);
}

export interface DigestInput {
  readonly method: string;
  /** The Request-URI as sent (RFC 3261 §22.4: digest-uri is the Request-URI). */
  readonly uri: string;
  /** Nonce count, 1 for the first use of a nonce (RFC 2617 §3.2.2). */
  readonly nc: number;
  readonly cnonce?: string;
}

/** The request-digest (RFC 2617 §3.2.2.1, RFC 7616 §3.4.1, with RFC 8760's algorithms). */
export function digestResponse(challenge: DigestChallenge, creds: DigestCredentials, input: DigestInput & { cnonce: string }): string {
  const alg = challenge.algorithm;
  let ha1 = hash(alg, `${creds.username}:${challenge.realm}:${creds.password}`);
  if (alg.endsWith('-sess')) ha1 = hash(alg, `${ha1}:${challenge.nonce}:${input.cnonce}`);
  const ha2 = hash(alg, `${input.method}:${input.uri}`);
  if (challenge.qop.length === 0) return hash(alg, `${ha1}:${challenge.nonce}:${ha2}`);
  const nc = input.nc.toString(16).padStart(8, '0');
  return hash(alg, `${ha1}:${challenge.nonce}:${nc}:${input.cnonce}:auth:${ha2}`);
}

/** The Authorization / Proxy-Authorization header value answering `challenge` for one request. */
export function authorizationValue(challenge: DigestChallenge, creds: DigestCredentials, input: DigestInput): string {
  const cnonce = input.cnonce ?? randomBytes(12).toString('base64url');
  const response = digestResponse(challenge, creds, { ...input, cnonce });
  const parts = [
    `username=${quote(creds.username)}`,
    `realm=${quote(challenge.realm)}`,
    `nonce=${quote(challenge.nonce)}`,
    `uri=${quote(input.uri)}`,
    `response=${quote(response)}`,
    `algorithm=${challenge.algorithm}`,
  ];
  if (challenge.qop.length > 0) parts.push('qop=auth', `nc=${input.nc.toString(16).padStart(8, '0')}`, `cnonce=${quote(cnonce)}`);
  if (challenge.opaque !== undefined) parts.push(`opaque=${quote(challenge.opaque)}`);
  return `Digest ${parts.join(', ')}`;
}

/**
 * The client side of one realm's digest state: the challenge last answered and its nonce
 * count, so later requests can carry credentials at once (RFC 3261 §22.3: "a UA MAY
 * preemptively send credentials") and a server that says `stale` gets a fresh answer.
 */
export class DigestSession {
  private challenge?: DigestChallenge;
  private nc = 0;

  constructor(private readonly creds: DigestCredentials) {}

  /** Takes a new challenge; false when it is the one already answered and not stale (the password is wrong). */
  accept(challenge: DigestChallenge): boolean {
    const same = this.challenge !== undefined && this.challenge.nonce === challenge.nonce && this.challenge.realm === challenge.realm;
    if (same && !challenge.stale) return false;
    this.challenge = challenge;
    this.nc = 0;
    return true;
  }

  /** Header name and value for the next request, when a challenge is known. */
  authorize(method: string, uri: string): { header: string; value: string } | undefined {
    if (!this.challenge) return undefined;
    this.nc++;
    return { header: this.challenge.header, value: authorizationValue(this.challenge, this.creds, { method, uri, nc: this.nc }) };
  }

  forget(): void {
    this.challenge = undefined;
    this.nc = 0;
  }
}
