import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { WallClock } from '../util/timers.js';

/** What a nonce turned out to be. */
export type NonceCheck =
  /** Ours, in time, and this nonce-count is new. */
  | { readonly kind: 'fresh' }
  /** Ours and signed, but past its lifetime (RFC 3261 §22.4 / RFC 2617 stale=true). */
  | { readonly kind: 'stale' }
  /** Ours and in time, but this nonce-count was seen already: a replay. */
  | { readonly kind: 'replayed' }
  /** Not a nonce we issued (or forgotten: treated as stale by the caller's challenge). */
  | { readonly kind: 'invalid' };

export interface NonceOptions {
  /** HMAC key; a server restart with a new key makes old nonces stale. */
  readonly secret: Buffer;
  /** How long a nonce may be used (auth.nonceLifetimeSeconds). */
  readonly lifetimeMs: number;
  /** Nonces whose counts are remembered at once (a bound on memory). */
  readonly maxTracked?: number;
  readonly wallClock: WallClock;
}

const STAMP_BYTES = 6;
const RANDOM_BYTES = 9;
const MAC_BYTES = 16;
const NONCE_BYTES = STAMP_BYTES + RANDOM_BYTES + MAC_BYTES;

/**
 * Counts below the highest one still accepted once each: a client sending several requests
 * on one nonce may have them arrive out of order (a UDP datagram lost and retransmitted).
 */
const NC_WINDOW = 32;

interface Tracked {
  readonly issuedAtMs: number;
  /** Highest nonce-count accepted. */
  nc: number;
  /** Bit i set: count `nc - i` was accepted (bit 0 is `nc` itself). */
  seen: number;
}

/**
 * Signed, time-limited nonces (RFC 3261 §22.4, RFC 7616 §3.3 ideas): issue time, random
 * bytes and an HMAC of both under the server secret, so any nonce can be checked without
 * keeping it. The nonce-count of every nonce in use is remembered (RFC 7616 §3.4.2): each
 * count is accepted once, the highest and the NC_WINDOW below it remembered, anything
 * older refused as a replay; when too many nonces are in use the oldest are
 * forgotten, and every nonce issued before the newest forgotten one is then refused as
 * stale, so a forgotten nonce can never be replayed.
 */
export class NonceManager {
  private readonly tracked = new Map<string, Tracked>();
  private readonly maxTracked: number;
  /** Nonces issued at or before this time and not tracked are refused. */
  private forgottenUpToMs = -1;

  constructor(private readonly options: NonceOptions) {
    this.maxTracked = options.maxTracked ?? 100_000;
  }

  get size(): number {
    return this.tracked.size;
  }

  issue(): string {
    const buf = Buffer.alloc(NONCE_BYTES);
    buf.writeUIntBE(Math.max(0, Math.floor(this.options.wallClock.nowMs())), 0, STAMP_BYTES);
    randomBytes(RANDOM_BYTES).copy(buf, STAMP_BYTES);
    this.mac(buf.subarray(0, STAMP_BYTES + RANDOM_BYTES)).copy(buf, STAMP_BYTES + RANDOM_BYTES);
    return buf.toString('base64url');
  }

  /** Signature and age only (no count): what a challenge's stale flag depends on. */
  verify(nonce: string): 'valid' | 'stale' | 'invalid' {
    const issued = this.issuedAt(nonce);
    return issued === undefined ? 'invalid' : this.age(issued);
  }

  private age(issuedAtMs: number): 'valid' | 'stale' {
    const now = this.options.wallClock.nowMs();
    return now - issuedAtMs > this.options.lifetimeMs || issuedAtMs > now + 60_000 ? 'stale' : 'valid';
  }

  /**
   * Checks and consumes `nc` (the hex nonce-count of the credentials) for `nonce`. Call only
   * once the response digest was found right, so that a forger cannot burn counts.
   */
  use(nonce: string, ncHex: string): NonceCheck {
    // One HMAC per request: signature and age from the same decoding.
    const issuedAtMs = this.issuedAt(nonce);
    if (issuedAtMs === undefined) return { kind: 'invalid' };
    if (this.age(issuedAtMs) === 'stale') return { kind: 'stale' };
    if (!/^[0-9a-fA-F]{8}$/.test(ncHex)) return { kind: 'replayed' };
    const nc = parseInt(ncHex, 16);
    if (nc < 1) return { kind: 'replayed' };
    const t = this.tracked.get(nonce);
    if (t) {
      if (nc > t.nc) {
        const shift = nc - t.nc;
        t.seen = shift >= NC_WINDOW ? 1 : ((t.seen << shift) | 1) >>> 0;
        t.nc = nc;
        return { kind: 'fresh' };
      }
      const back = t.nc - nc;
      if (back >= NC_WINDOW || ((t.seen >>> back) & 1) === 1) return { kind: 'replayed' };
      t.seen = (t.seen | (1 << back)) >>> 0;
      return { kind: 'fresh' };
    }
    if (issuedAtMs <= this.forgottenUpToMs) return { kind: 'stale' };
    this.prune();
    this.tracked.set(nonce, { issuedAtMs, nc, seen: 1 });
    return { kind: 'fresh' };
  }

  private prune(): void {
    const oldest = this.options.wallClock.nowMs() - this.options.lifetimeMs;
    // Expired nonces are refused as stale anyway: forgetting them loses nothing.
    for (const [k, t] of this.tracked) {
      if (t.issuedAtMs >= oldest) break;
      this.tracked.delete(k);
    }
    while (this.tracked.size >= this.maxTracked) {
      const [k, t] = this.tracked.entries().next().value as [string, Tracked];
      this.tracked.delete(k);
      this.forgottenUpToMs = Math.max(this.forgottenUpToMs, t.issuedAtMs);
    }
  }

  private issuedAt(nonce: string): number | undefined {
    if (nonce.length !== Math.ceil((NONCE_BYTES * 4) / 3) || !/^[A-Za-z0-9_-]+$/.test(nonce)) return undefined;
    const buf = Buffer.from(nonce, 'base64url');
    // Only the canonical spelling: another one of the same bytes would be another map key.
    if (buf.length !== NONCE_BYTES || buf.toString('base64url') !== nonce) return undefined;
    const expected = this.mac(buf.subarray(0, STAMP_BYTES + RANDOM_BYTES));
    if (!timingSafeEqual(expected, buf.subarray(STAMP_BYTES + RANDOM_BYTES))) return undefined;
    return buf.readUIntBE(0, STAMP_BYTES);
  }

  private mac(data: Buffer): Buffer {
    return createHmac('sha256', this.options.secret).update(data).digest().subarray(0, MAC_BYTES);
  }
}
