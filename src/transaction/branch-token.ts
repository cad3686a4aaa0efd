import { randomFillSync } from 'node:crypto';

const TOKEN_BYTES = 8;
/** Random bytes for 512 tokens: one call into the CSPRNG per 512 branches, not one per branch. */
const pool = Buffer.alloc(TOKEN_BYTES * 512);
let offset = pool.length;

/**
 * The random part of a branch parameter (RFC 3261 §8.1.1.7: unique over space and time),
 * 8 bytes as base64url like `randomToken()`. Drawing them from a pool matters when a
 * presentity change sends thousands of NOTIFYs, each a new client transaction: a
 * `randomBytes` call per branch was several percent of the server's CPU.
 */
export function branchToken(): string {
  if (offset + TOKEN_BYTES > pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  const token = pool.toString('base64url', offset, offset + TOKEN_BYTES);
  offset += TOKEN_BYTES;
  return token;
}
