import { createHash, randomBytes } from 'node:crypto';
import type { SipRequest, SipResponse } from '../../src/sip/message.js';
import type { TestUa } from '../support/test-ua.js';

/** A WWW-Authenticate challenge as a client reads it. */
export interface Challenge {
  readonly realm: string;
  readonly nonce: string;
  readonly algorithm: string;
  readonly qop?: string;
  readonly stale: boolean;
}

/** Independent of the server's parser on purpose: a second reading of RFC 2617 / RFC 8760. */
export function parseChallenge(value: string): Challenge {
  const params = new Map<string, string>();
  for (const m of value.replace(/^Digest\s+/i, '').matchAll(/([a-z-]+)=(?:"([^"]*)"|([^,\s]+))/gi)) params.set(m[1]!.toLowerCase(), m[2] ?? m[3]!);
  return {
    realm: params.get('realm')!,
    nonce: params.get('nonce')!,
    algorithm: params.get('algorithm') ?? 'MD5',
    ...(params.has('qop') ? { qop: params.get('qop')! } : {}),
    stale: params.get('stale')?.toLowerCase() === 'true',
  };
}

export function challengesOf(res: SipResponse): Challenge[] {
  return res.getHeaders('www-authenticate').map(parseChallenge);
}

function h(algorithm: string, data: string): string {
  return createHash(algorithm.toUpperCase() === 'MD5' ? 'md5' : 'sha256').update(data).digest('hex');
}

/** An Authorization value answering `c` (qop=auth). */
export function authorization(c: Challenge, o: { username: string; password: string; method: string; uri: string; nc?: number; cnonce?: string }): string {
  const nc = (o.nc ?? 1).toString(16).padStart(8, '0');
  const cnonce = o.cnonce ?? randomBytes(8).toString('hex');
  const ha1 = h(c.algorithm, `${o.username}:${c.realm}:${o.password}`);
  const ha2 = h(c.algorithm, `${o.method}:${o.uri}`);
  const response = h(c.algorithm, `${ha1}:${c.nonce}:${nc}:${cnonce}:auth:${ha2}`);
  return `Digest username="${o.username}", realm="${c.realm}", nonce="${c.nonce}", uri="${o.uri}", response="${response}", algorithm=${c.algorithm}, cnonce="${cnonce}", qop=auth, nc=${nc}`;
}

/**
 * Sends `build()` without credentials, expects a 401, and sends `build(authorization)` again
 * answering the challenge of `algorithm` (SHA-256 by default). Returns both responses and
 * the Authorization used.
 */
export async function authedTransact(
  ua: TestUa,
  build: (authorization?: string) => SipRequest,
  creds: { username: string; password: string },
  algorithm = 'SHA-256',
): Promise<{ challenge: SipResponse; res: SipResponse; authorization: string; request: SipRequest }> {
  const first = build();
  const challenge = await ua.transact(first);
  if (challenge.status !== 401) throw new Error(`expected 401, got ${challenge.status}`);
  const c = challengesOf(challenge).find((x) => x.algorithm.toUpperCase() === algorithm);
  if (!c) throw new Error(`no ${algorithm} challenge`);
  const value = authorization(c, { ...creds, method: first.method, uri: first.uriText });
  const request = build(value);
  const res = await ua.transact(request);
  return { challenge, res, authorization: value, request };
}
