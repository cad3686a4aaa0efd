import { linkSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { makeDir } from '../util/make-dir.js';
import { join, resolve } from 'node:path';
import { StoreOpenError } from './database.js';

/** Name of the lock file inside the embedded store's data directory. */
export const LOCK_FILE = 'simple-presence.lock';

/** Creates the data directory `dir` (absolute) and its parents if missing; StoreOpenError when it cannot. */
export function makeDataDir(dir: string): void {
  try {
    makeDir(dir);
  } catch (err) {
    throw new StoreOpenError(`cannot create data directory ${dir}: ${(err as Error).message}`);
  }
}

/** Lock files this process holds: our own pid in a lock we do not hold is a previous run's (pid 1 in containers). */
const heldHere = new Set<string>();

/**
 * The embedded store's data directory may be opened by one process only (two would corrupt
 * PGlite's, and SQLite's locks do not cover the control socket and the soft state). The lock is a file holding the owner's pid, created with O_EXCL;
 * a lock left by a process that is gone (crash, kill -9) is taken over.
 */
export class DataDirLock {
  private released = false;

  private constructor(
    readonly path: string,
    private readonly pid: number,
  ) {}

  /** Takes the lock of `dir` (which must exist) or throws StoreOpenError naming the holder. */
  static acquire(dir: string, pid = process.pid): DataDirLock {
    const path = join(resolve(dir), LOCK_FILE);
    // A few rounds: a stale lock removed here may be taken by a racing process first.
    for (let attempt = 0; attempt < 3; attempt++) {
      if (tryCreate(path, pid)) {
        heldHere.add(path);
        return new DataDirLock(path, pid);
      }
      const holder = readHolder(path);
      if (holder === undefined) continue; // removed meanwhile: try again
      const ours = holder === pid && heldHere.has(path);
      if (ours || (holder !== pid && isAlive(holder))) {
        throw new StoreOpenError(
          `data directory ${dir} is in use by another ${ours ? 'store in this process' : 'process'} ` +
            `(pid ${holder}, lock file ${path}); stop it or choose another store.dataDir`,
        );
      }
      // Stale: its owner is dead, or was an earlier process with our pid. (Two processes
      // taking over the same stale lock at the same instant could both win; starting two
      // servers on one directory after a crash is not worth a heavier protocol.)
      try {
        unlinkSync(path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
    throw new StoreOpenError(`data directory ${dir}: could not take lock file ${path}`);
  }

  /** Removes the lock file if it is still ours. */
  release(): void {
    if (this.released) return;
    this.released = true;
    heldHere.delete(this.path);
    if (readHolder(this.path) !== this.pid) return;
    try {
      unlinkSync(this.path);
    } catch {
      // Already gone: nothing to release.
    }
  }
}

/**
 * The pid of another live process holding `dir`'s lock, or undefined (no lock, a stale one,
 * or this process's own): a CLI that finds the data directory held waits for that server's
 * control socket rather than opening the store.
 */
export function dataDirHolder(dir: string, pid = process.pid): number | undefined {
  const holder = readHolder(join(resolve(dir), LOCK_FILE));
  return holder !== undefined && holder !== pid && isAlive(holder) ? holder : undefined;
}

/** Creates the lock with its content in one step (link fails if it exists), so it is never seen empty. */
function tryCreate(path: string, pid: number): boolean {
  const tmp = `${path}.${pid}.tmp`;
  try {
    writeFileSync(tmp, `${pid}\n`, { mode: 0o644 });
    linkSync(tmp, path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new StoreOpenError(`cannot create lock file ${path}: ${(err as Error).message}`);
  } finally {
    try {
      unlinkSync(tmp);
    } catch {
      // Not created.
    }
  }
}

function readHolder(path: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  const pid = Number.parseInt(text.trim(), 10);
  // An unreadable lock (empty, garbage) counts as stale: pid 0 is never alive for us.
  return Number.isSafeInteger(pid) && pid > 0 ? pid : 0;
}

function isAlive(pid: number): boolean {
  if (pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
