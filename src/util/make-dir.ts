import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';

/**
 * `mkdir -p` that fails rather than spins: Node's recursive mkdir of a relative path loops
 * for ever when the working directory has been deleted (ENOENT for the path, EEXIST for
 * "."), which left servers at 100 % CPU after their directory went. Resolving the path first
 * throws ENOENT in that case instead.
 */
export function makeDir(dir: string, mode?: number): void {
  mkdirSync(resolve(dir), mode === undefined ? { recursive: true } : { recursive: true, mode });
}
