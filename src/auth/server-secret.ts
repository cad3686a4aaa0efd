import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { makeDir } from '../util/make-dir.js';
import { join } from 'node:path';
import type { Logger } from 'pino';

const FILE = 'auth-secret';

/**
 * The key nonces are signed with: kept in the data directory (mode 0600) so that nonces
 * stay good across a restart, or made for this run when the directory cannot hold it
 * (clients then get stale=true once and retry).
 */
export function loadServerSecret(dataDir: string | undefined, log: Logger): Buffer {
  if (dataDir) {
    const path = join(dataDir, FILE);
    try {
      const text = readFileSync(path, 'utf8').trim();
      if (/^[0-9a-f]{64}$/.test(text)) return Buffer.from(text, 'hex');
      log.warn({ path }, 'auth: secret file unreadable, writing a new one');
    } catch {
      /* not there yet */
    }
    const secret = randomBytes(32);
    try {
      makeDir(dataDir);
      writeFileSync(path, `${secret.toString('hex')}\n`, { mode: 0o600 });
      return secret;
    } catch (err) {
      log.warn({ err: (err as Error).message, path }, 'auth: cannot keep the nonce secret, using one for this run');
      return secret;
    }
  }
  return randomBytes(32);
}
