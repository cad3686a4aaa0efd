import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { Logger } from 'pino';
import { loadConfig, type Config } from '../config/config.js';
import { CONTROL_SOCKET } from '../control/control-protocol.js';
import { SQLITE_FILE, isPgliteDataDir, migrate, migrationStatus, openDatabase, openPglite, openSqlite, type Database } from '../store/index.js';
import { exportToFile, importStore } from '../store/transfer.js';
import { createLogger } from '../util/logger.js';
import { CONTROL_START_WAIT_MS, withOperations } from './admin-commands.js';

export const DB_USAGE = `  simple-presence db migrate [--config FILE]               apply pending SQL migrations (schemas/sql)
  simple-presence db status [--config FILE]                list applied and pending migrations
  simple-presence db backup FILE [--config FILE]           copy the embedded store to FILE, the server running or not
  simple-presence db export FILE [--config FILE]           write the whole store to FILE as JSON lines
  simple-presence db import FILE [--config FILE]           read an export into an empty store (e.g. PostgreSQL)
  simple-presence db convert-pglite [--config FILE]        turn an earlier release's PGlite data directory into SQLite`;

/** A backup or an export of a large store takes a while: the control channel waits this long. */
const LONG_OP_MS = 30 * 60_000;

/**
 * `simple-presence db ...`: the store the config names (DATABASE_URL, or the embedded
 * SQLite in DATA_DIR). The server applies migrations at start-up too; migrate and status
 * let an operator do it, or look, beforehand. The embedded store is one process's at a
 * time: backup and export go through the running server's control socket when there is
 * one; the others refuse while a server holds the store.
 */
export async function dbCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  const { values, positionals } = parseArgs({ args: rest, options: { config: { type: 'string', short: 'c' } }, strict: true, allowPositionals: true });
  const config = loadConfig({ file: values.config });
  const log = createLogger((process.env.LOG_LEVEL ?? 'warn') as Parameters<typeof createLogger>[0]);
  const withFile = sub === 'backup' || sub === 'export' || sub === 'import';
  if (!['migrate', 'status', 'convert-pglite'].includes(sub ?? '') && !withFile) {
    console.error(`simple-presence db: expected migrate, status, backup, export, import or convert-pglite\n${DB_USAGE}`);
    return 2;
  }
  if (withFile !== (positionals.length === 1)) {
    console.error(`simple-presence db ${sub}: ${withFile ? 'expected one FILE' : 'takes no arguments'}\n${DB_USAGE}`);
    return 2;
  }
  const where = config.store.url ? redact(config.store.url) : `SQLite in ${config.store.dataDir}`;
  try {
    if (sub === 'backup' || sub === 'export') {
      const file = resolve(positionals[0]!);
      await withOperations(
        config,
        async (ops) => {
          if (sub === 'backup') {
            const b = await ops.backup(file);
            console.log(`store ${where}: backed up to ${b.file} (${b.bytes} bytes)`);
          } else {
            const e = await ops.exportTo(file);
            console.log(`store ${where}: exported ${e.rows} rows to ${e.file}`);
          }
        },
        CONTROL_START_WAIT_MS,
        LONG_OP_MS,
      );
      return 0;
    }
    if (sub === 'convert-pglite') return await convertPglite(config, log);
  } catch (err) {
    console.error(`simple-presence db ${sub}: ${(err as Error).message}`);
    return 1;
  }
  let db: Database;
  try {
    db = await openDatabase({ ...(config.store.url ? { url: config.store.url } : { dataDir: config.store.dataDir }), logger: log });
  } catch (err) {
    console.error(`simple-presence db: cannot open the store (${where}): ${(err as Error).message}`);
    return 1;
  }
  try {
    if (sub === 'migrate') {
      const applied = await migrate(db, { logger: log });
      console.log(applied.length === 0 ? `store ${where}: up to date` : `store ${where}: applied ${applied.map((m) => m.name).join(', ')}`);
      return 0;
    }
    if (sub === 'import') {
      await migrate(db, { logger: log });
      const rows = await importStore(db, resolve(positionals[0]!));
      console.log(`store ${where}: imported ${rows} rows`);
      return 0;
    }
    const status = await migrationStatus(db);
    console.log(`store: ${where}`);
    for (const m of status.applied) console.log(`  applied  ${m.name}  ${new Date(m.appliedAtMs).toISOString()}`);
    for (const m of status.pending) console.log(`  pending  ${m.name}`);
    for (const m of status.changed) console.log(`  CHANGED  ${m.name}  (the file differs from what was applied)`);
    for (const m of status.unknown) console.log(`  unknown  ${m.name}  (applied by a newer release)`);
    return status.changed.length > 0 || status.unknown.length > 0 ? 1 : 0;
  } catch (err) {
    console.error(`simple-presence db ${sub}: ${(err as Error).message}`);
    return 1;
  } finally {
    await db.close();
  }
}

/** PostgreSQL's files in a data directory (PGlite's layout); the rest is ours and stays. */
function isPostgresFile(name: string): boolean {
  return ['PG_VERSION', 'base', 'global'].includes(name) || /^(pg_|postgresql\.|postmaster\.)/.test(name);
}

/**
 * An earlier release's PGlite data directory becomes an SQLite one: every row exported
 * from PGlite (opened one last time, its migrations brought up to date), PGlite's files
 * moved into `pglite-old/` (kept: delete it once satisfied), the rows imported into a new
 * SQLite store. The server must be stopped (the directory's lock says so).
 */
async function convertPglite(config: Config, log: Logger): Promise<number> {
  if (config.store.url) throw new Error('the store is PostgreSQL (DATABASE_URL); convert-pglite converts the embedded store in store.dataDir');
  const dir = resolve(config.store.dataDir);
  if (!isPgliteDataDir(dir)) throw new Error(`${dir} holds no PGlite store (no PG_VERSION): nothing to convert`);
  const dump = join(dir, 'pglite-export.jsonl');
  const old = join(dir, 'pglite-old');
  if (existsSync(old)) throw new Error(`${old} exists: a conversion was interrupted; move it away and run again`);
  rmSync(dump, { force: true });
  const pglite = await openPglite({ dataDir: dir, logger: log });
  let rows: number;
  try {
    await migrate(pglite, { logger: log });
    rows = await exportToFile(pglite, dump);
  } finally {
    await pglite.close();
  }
  mkdirSync(old);
  const moved = readdirSync(dir).filter(isPostgresFile);
  for (const name of moved) renameSync(join(dir, name), join(old, name));
  try {
    const sqlite = await openSqlite({ dataDir: dir, logger: log });
    try {
      await migrate(sqlite, { logger: log });
      const imported = await importStore(sqlite, dump);
      if (imported !== rows) throw new Error(`exported ${rows} rows but imported ${imported}`);
    } finally {
      await sqlite.close();
    }
  } catch (err) {
    // Back as it was: PGlite's files in place, no SQLite store.
    for (const suffix of ['', '-wal', '-shm']) rmSync(join(dir, SQLITE_FILE + suffix), { force: true });
    for (const name of moved) renameSync(join(old, name), join(dir, name));
    rmSync(old, { recursive: true, force: true });
    throw err;
  }
  rmSync(dump);
  console.log(`store ${dir}: converted ${rows} rows from PGlite to SQLite; PGlite's files are in ${old} (delete it once satisfied)`);
  return 0;
}

/** A database URL without its password, for messages. */
function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'the configured database';
  }
}
