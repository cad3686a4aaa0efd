import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { algorithmOf, buildChallenge, parseDigestCredentials, type DigestCredentials } from '../auth/digest-header.js';
import { FailureTracker } from '../auth/failure-tracker.js';
import { DIGEST_ALGORITHMS, digestHex, type DigestAlgorithm } from '../auth/ha1.js';
import { NonceManager } from '../auth/nonces.js';
import type { WallClock } from '../util/timers.js';

/** Who made an XCAP request: a user (by HTTP digest with its SIP credentials) or the admin token. */
export type XcapIdentity = { readonly kind: 'user'; readonly aor: string; readonly username: string } | { readonly kind: 'admin' };

export type XcapAuthResult =
  | { readonly ok: true; readonly identity: XcapIdentity }
  | { readonly ok: false; readonly status: 400 | 401 | 429; readonly reason: string; readonly headers: ReadonlyArray<readonly [string, string]> };

export interface XcapAuthOptions {
  /** The realm the stored HA1s were computed in (auth.realm, the SIP domain by default). */
  readonly realm: () => string;
  readonly domain: () => string;
  /** The stored HA1s of a user of our domain. */
  readonly credentials: (username: string) => Promise<{ readonly ha1Md5?: string; readonly ha1Sha256?: string } | undefined>;
  /** The admin token's SHA-256, when the admin API is on. */
  readonly adminTokenDigest?: Buffer;
  readonly wallClock: WallClock;
  readonly algorithms?: readonly DigestAlgorithm[];
  readonly nonceLifetimeMs?: number;
}

/** Failed logins per client address: 20 a minute, then a minute's block (429). */
const LIMITS = { windowMs: 60_000, threshold: 20, blockMs: 60_000, maxKeys: 10_000 };

/**
 * HTTP digest authentication (RFC 7616) for XCAP (RFC 4825 §13 asks for it) with the
 * user's SIP credentials: the HA1s the store keeps for SIP (MD5 and SHA-256, RFC 8760)
 * serve HTTP unchanged, since both are H(username:realm:password) in the same realm.
 * qop=auth only; the digest uri must be the request-target (RFC 7616 §3.4.6); nonces are
 * signed, time-bound and counted like SIP's (src/auth/nonces.ts). The admin token
 * (Bearer, RFC 6750) reaches every document.
 */
export class XcapAuthenticator {
  private readonly nonces: NonceManager;
  private readonly failures: FailureTracker;
  private readonly algorithms: readonly DigestAlgorithm[];

  constructor(private readonly options: XcapAuthOptions) {
    this.nonces = new NonceManager({ secret: randomBytes(32), lifetimeMs: options.nonceLifetimeMs ?? 300_000, wallClock: options.wallClock });
    this.failures = new FailureTracker(LIMITS, options.wallClock);
    this.algorithms = options.algorithms ?? DIGEST_ALGORITHMS;
  }

  async authenticate(req: IncomingMessage): Promise<XcapAuthResult> {
    const peer = req.socket.remoteAddress ?? 'unknown';
    const blocked = this.failures.blockedFor(peer);
    if (blocked > 0) return { ok: false, status: 429, reason: 'too many failed logins, try again later', headers: [['Retry-After', String(Math.ceil(blocked / 1000))]] };
    const header = req.headers.authorization ?? '';
    if (header.length > 4096) return { ok: false, status: 400, reason: 'Authorization header too long', headers: [] };
    const bearer = /^Bearer\s+(\S{1,1024})\s*$/i.exec(header);
    if (bearer) {
      const digest = this.options.adminTokenDigest;
      const given = createHash('sha256').update(bearer[1]!, 'utf8').digest();
      if (digest && timingSafeEqual(given, digest)) return { ok: true, identity: { kind: 'admin' } };
      this.failures.fail(peer);
      return this.challenge(false);
    }
    if (!/^Digest\s/i.test(header)) return this.challenge(false);
    const creds = parseDigestCredentials(header);
    if (!creds) return { ok: false, status: 400, reason: 'malformed Authorization header', headers: [] };
    if (creds.realm !== this.options.realm()) return this.challenge(false);
    const algorithm = algorithmOf(creds.algorithm);
    if (!algorithm || !this.algorithms.includes(algorithm)) return this.challenge(false);
    if (creds.qop?.toLowerCase() !== 'auth' || creds.nc === undefined || creds.cnonce === undefined) {
      return { ok: false, status: 400, reason: 'digest without qop=auth', headers: [] };
    }
    // RFC 7616 §3.4.6: the credentials are for this request-target and no other.
    if (creds.uri !== (req.url ?? '')) return { ok: false, status: 400, reason: 'digest uri is not the request-target', headers: [] };
    const username = creds.username;
    const account = username.length <= 64 ? await this.options.credentials(username) : undefined;
    const ha1 = algorithm === 'MD5' ? account?.ha1Md5 : account?.ha1Sha256;
    if (ha1 === undefined || !responseMatches(req.method ?? 'GET', creds, algorithm, ha1)) {
      this.failures.fail(peer);
      return this.challenge(false);
    }
    const nonce = this.nonces.use(creds.nonce, creds.nc);
    if (nonce.kind === 'fresh') return { ok: true, identity: { kind: 'user', aor: `sip:${username}@${this.options.domain().toLowerCase()}`, username } };
    if (nonce.kind === 'replayed') this.failures.fail(peer);
    // Right password on an old nonce: the client retries with the new one (RFC 7616 §3.3 stale).
    return this.challenge(nonce.kind !== 'replayed');
  }

  /** RFC 7616 §3.3: one challenge per algorithm, the preferred first. */
  private challenge(stale: boolean): XcapAuthResult {
    const headers = this.algorithms.map(
      (algorithm) => ['WWW-Authenticate', buildChallenge({ realm: this.options.realm(), nonce: this.nonces.issue(), algorithm, stale })] as const,
    );
    return { ok: false, status: 401, reason: 'authentication required (HTTP digest with the SIP user name and password)', headers };
  }
}

/** RFC 7616 §3.4.1 with qop=auth: H(HA1:nonce:nc:cnonce:qop:H(method:uri)). */
function responseMatches(method: string, c: DigestCredentials, algorithm: DigestAlgorithm, ha1: string): boolean {
  const ha2 = digestHex(algorithm, `${method}:${c.uri}`);
  const expected = digestHex(algorithm, `${ha1.toLowerCase()}:${c.nonce}:${c.nc}:${c.cnonce}:${c.qop}:${ha2}`);
  const given = c.response.toLowerCase();
  return given.length === expected.length && timingSafeEqual(Buffer.from(given), Buffer.from(expected));
}
