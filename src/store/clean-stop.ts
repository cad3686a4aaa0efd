import { rmSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A mark in the data directory that the last run stopped gracefully, after its final flush
 * of the soft state. A start takes it away before it serves anything, so a run that dies
 * (SIGKILL, out of memory, power) leaves none, and the next start knows that the soft state
 * it reads may be up to one flush window behind what was sent (docs/store.md).
 */
export const CLEAN_STOP_FILE = 'clean-stop';

/** True when the last run stopped gracefully; removes the mark either way. */
export function takeCleanStop(dataDir: string): boolean {
  const path = join(dataDir, CLEAN_STOP_FILE);
  const clean = existsSync(path);
  if (clean) rmSync(path, { force: true });
  return clean;
}

/**
 * Leaves the mark; call once the final flush succeeded. The store made the directory when it
 * opened; if it is gone since (deleted under a stopping server), there is nothing to mark and
 * this throws ENOENT rather than make it again.
 */
export function markCleanStop(dataDir: string): void {
  writeFileSync(join(dataDir, CLEAN_STOP_FILE), `${new Date().toISOString()}\n`);
}
