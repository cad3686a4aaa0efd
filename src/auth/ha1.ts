import { createHash } from 'node:crypto';

/** RFC 8760 §2: the digest algorithms we offer, the strongest first. */
export type DigestAlgorithm = 'SHA-256' | 'MD5';
export const DIGEST_ALGORITHMS: readonly DigestAlgorithm[] = ['SHA-256', 'MD5'];

/** H(data) as lower-case hex (RFC 8760 §2: MD5 or SHA-256). */
export function digestHex(algorithm: DigestAlgorithm, data: string): string {
  return createHash(algorithm === 'MD5' ? 'md5' : 'sha256').update(data, 'utf8').digest('hex');
}

/**
 * RFC 3261 §22.4 / RFC 2617 §3.2.2.2: HA1 = H(username ":" realm ":" password), stored
 * instead of the password, once per algorithm.
 */
export function computeHa1s(username: string, realm: string, password: string): { ha1Md5: string; ha1Sha256: string } {
  const a1 = `${username}:${realm}:${password}`;
  return { ha1Md5: digestHex('MD5', a1), ha1Sha256: digestHex('SHA-256', a1) };
}
