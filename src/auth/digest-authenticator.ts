import { timingSafeEqual } from 'node:crypto';
import type { Logger } from 'pino';
import type { AuthDecision, AuthenticatedIdentity, RequestAuthenticator } from '../core/services.js';
import type { SipRequest } from '../sip/message.js';
import type { Flow } from '../transport/types.js';
import { algorithmOf, buildChallenge, parseDigestCredentials, type DigestCredentials } from './digest-header.js';
import { DIGEST_ALGORITHMS, digestHex, type DigestAlgorithm } from './ha1.js';
import { digestUriMatches } from './digest-uri.js';
import type { AuthLockout, LockoutScope } from './lockout.js';
import type { NonceManager } from './nonces.js';

/** The stored HA1 digests of a user (the store's accounts). */
export interface CredentialLookup {
  get(domain: string, username: string): Promise<{ readonly ha1Md5?: string; readonly ha1Sha256?: string } | undefined>;
}

export interface DigestAuthenticatorOptions {
  /** auth.realm (RFC 3261 §22.1: the protection space). */
  readonly realm: string;
  /** sip.domain: the domain of every account. */
  readonly domain: string;
  readonly credentials: CredentialLookup;
  readonly nonces: NonceManager;
  /** Failed attempts per (source, user), per source (distinct users) and per user: 403 while blocked. */
  readonly lockout: AuthLockout;
  /**
   * The watcher of the subscription dialog an in-dialog request belongs to, when the server
   * holds it (RFC 6665: the dialog was authenticated when it was made).
   */
  readonly trustedDialog?: (req: SipRequest) => string | undefined;
  readonly methods?: readonly string[];
  /** auth.algorithms: what we challenge with, preferred first (default SHA-256 then MD5). */
  readonly algorithms?: readonly DigestAlgorithm[];
  /** User-Agent substrings of clients challenged with MD5 only (they fail on any other algorithm). */
  readonly md5OnlyUserAgents?: readonly string[];
}

/** RFC 3261 §22 / issue: the methods whose senders must prove who they are. */
export const AUTHENTICATED_METHODS: readonly string[] = ['REGISTER', 'PUBLISH', 'SUBSCRIBE', 'MESSAGE'];

/**
 * Digest authentication (RFC 3261 §22.4, RFC 8760) in front of the services: a request
 * without good credentials gets a 401 with one challenge per algorithm, SHA-256 first
 * (RFC 8760 §2.4), qop=auth; credentials are checked against the stored HA1 of the
 * user, the nonce against its signature, age and count.
 */
export class DigestAuthenticator implements RequestAuthenticator {
  private readonly methods: Set<string>;
  /** auth.md5OnlyUserAgents, lower-cased once; empty when MD5 is not offered at all. */
  private readonly md5OnlyAgents: readonly string[];

  private get algorithms(): readonly DigestAlgorithm[] {
    return this.options.algorithms ?? DIGEST_ALGORITHMS;
  }

  constructor(private readonly options: DigestAuthenticatorOptions) {
    this.methods = new Set(options.methods ?? AUTHENTICATED_METHODS);
    this.md5OnlyAgents = this.algorithms.includes('MD5') ? (options.md5OnlyUserAgents ?? []).map((p) => p.toLowerCase()) : [];
  }

  async authenticate(req: SipRequest, flow: Flow, log: Logger): Promise<AuthDecision> {
    if (!this.methods.has(req.method)) return { ok: true };
    // A request inside a subscription dialog we hold: its watcher was authenticated when
    // the dialog was made (RFC 3261 §22: challenges are per request, trust is ours to keep).
    if (req.to.tag !== undefined && this.options.trustedDialog) {
      const watcher = this.options.trustedDialog(req);
      if (watcher !== undefined) return { ok: true, identity: dialogIdentity(watcher) };
    }
    const source = flow.remoteAddress;
    const blocked = this.options.lockout.sourceBlockedFor(source);
    if (blocked > 0) {
      log.debug({ source, retryInMs: blocked }, 'auth: source blocked');
      return forbidden();
    }
    const values = req.getHeaders('authorization');
    if (values.length === 0) return this.challenge(req, false);
    const parsed = values.map(parseDigestCredentials);
    const creds = parsed.find((c): c is DigestCredentials => c !== undefined && c.realm === this.options.realm);
    if (!creds) {
      if (parsed.every((c) => c === undefined)) return { ok: false, status: 400, reason: 'Malformed Authorization Header' };
      return this.challenge(req, false); // credentials for another realm: not ours to check
    }
    const algorithm = algorithmOf(creds.algorithm);
    if (!algorithm || !this.algorithms.includes(algorithm)) return this.challenge(req, false);
    // RFC 8760 §2.6 keeps qop; we offered only "auth".
    if (creds.qop?.toLowerCase() !== 'auth' || creds.nc === undefined || creds.cnonce === undefined) {
      return { ok: false, status: 400, reason: 'Digest Without qop=auth' };
    }
    // RFC 2617 §3.2.2.5: credentials are for the resource of the Request-Line, no other.
    if (!digestUriMatches(creds.uri, req.uriText, { domain: this.options.domain, host: flow.localAddress, port: flow.localPort })) {
      log.info({ uri: creds.uri, requestUri: req.uriText }, 'auth: digest uri is not the Request-URI');
      return { ok: false, status: 400, reason: 'Digest URI Does Not Match Request-URI' };
    }
    const username = creds.username;
    const refusing = this.options.lockout.refuses(source, username);
    if (refusing) {
      log.debug({ source, user: username, scope: refusing }, 'auth: blocked');
      return forbidden();
    }
    const account = username.length <= 64 ? await this.options.credentials.get(this.options.domain, username) : undefined;
    const ha1 = algorithm === 'MD5' ? account?.ha1Md5 : account?.ha1Sha256;
    if (ha1 === undefined || !this.responseMatches(req.method, creds, algorithm, ha1)) {
      return this.failed(req, source, username, log, 'wrong credentials');
    }
    const nonce = this.options.nonces.use(creds.nonce, creds.nc);
    switch (nonce.kind) {
      case 'fresh':
        this.options.lockout.succeeded(source, username);
        return { ok: true, identity: { aor: `sip:${username}@${this.options.domain}`, username, by: 'digest' } };
      case 'stale':
      case 'invalid':
        // Right password on a nonce that ran out (or was signed before a restart): no failure,
        // the client retries silently with the new nonce (RFC 2617 §3.2.1 stale).
        log.debug({ user: username }, 'auth: stale nonce');
        return this.challenge(req, true);
      case 'replayed':
        return this.failed(req, source, username, log, 'replayed nonce-count');
    }
  }

  /**
   * RFC 8760 §2.4: one WWW-Authenticate per algorithm, the preferred one first. Clients
   * known to give up on any challenge whose algorithm they do not know (auth.md5OnlyUserAgents,
   * matched in User-Agent: baresip 1.0's libre, sipsak) get the MD5 one only, or they could
   * not log in at all.
   */
  private challenge(req: SipRequest, stale: boolean): AuthDecision {
    const ua = req.getHeader('user-agent')?.toLowerCase();
    const md5Only = ua !== undefined && this.md5OnlyAgents.some((p) => ua.includes(p));
    const order: readonly DigestAlgorithm[] = md5Only ? ['MD5'] : this.algorithms;
    const headers: Array<[string, string]> = order.map((algorithm) => [
      'WWW-Authenticate',
      buildChallenge({ realm: this.options.realm, nonce: this.options.nonces.issue(), algorithm, stale }),
    ]);
    return { ok: false, status: 401, reason: 'Unauthorized', headers };
  }

  private failed(req: SipRequest, source: string, username: string, log: Logger, why: string): AuthDecision {
    const lockout = this.options.lockout;
    const started = lockout.fail(source, username);
    log.info({ source, user: username, why }, 'auth: failed attempt');
    for (const scope of started) {
      log.warn({ source, user: username, scope, blockMs: lockout.blockedFor(scope, source, username) }, BLOCK_MESSAGES[scope]);
    }
    // The request that started a block of this user or this whole source is refused already.
    return started.includes('source_user') || started.includes('source') ? forbidden() : this.challenge(req, false);
  }

  /** RFC 2617 §3.2.2.1 with qop=auth: H(HA1:nonce:nc:cnonce:qop:H(method:digest-uri)). */
  private responseMatches(method: string, c: DigestCredentials, algorithm: DigestAlgorithm, ha1: string): boolean {
    const ha2 = digestHex(algorithm, `${method}:${c.uri}`);
    const expected = digestHex(algorithm, `${ha1}:${c.nonce}:${c.nc}:${c.cnonce}:${c.qop}:${ha2}`);
    const given = c.response.toLowerCase();
    return given.length === expected.length && timingSafeEqual(Buffer.from(given), Buffer.from(expected));
  }
}

const BLOCK_MESSAGES: Readonly<Record<LockoutScope, string>> = {
  source_user: 'auth: too many failed attempts for user from this source, the pair blocked',
  source: 'auth: too many distinct users failing from one source (password spraying), source blocked',
  user: 'auth: too many failed attempts for user, failing sources refused',
};

function forbidden(): AuthDecision {
  return { ok: false, status: 403, reason: 'Too Many Failed Attempts' };
}

function dialogIdentity(aor: string): AuthenticatedIdentity {
  const m = /^sips?:([^@]+)@/.exec(aor);
  return { aor, username: m ? m[1]! : aor, by: 'dialog' };
}
