import { parseArgs } from 'node:util';
import { loadConfig } from '../config/config.js';
import { migrate, migrationStatus, openDatabase, type Database } from '../store/index.js';
import { createLogger } from '../util/logger.js';

export const DB_USAGE = `  simple-presence db migrate [--config FILE]               apply pending SQL migrations (schemas/sql)
  simple-presence db status [--config FILE]                list applied and pending migrations`;

/**
 * `simple-presence db migrate|status`: the store the config names (DATABASE_URL, or the
 * embedded SQLite in DATA_DIR). The server applies migrations at start-up too; these
 * let an operator do it, or look, beforehand. The embedded store is one process's at a
 * time, so they refuse while a server holds it.
 */
export async function dbCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  const { values } = parseArgs({ args: rest, options: { config: { type: 'string', short: 'c' } }, strict: true });
  const config = loadConfig({ file: values.config });
  const log = createLogger((process.env.LOG_LEVEL ?? 'warn') as Parameters<typeof createLogger>[0]);
  if (sub !== 'migrate' && sub !== 'status') {
    console.error(`simple-presence db: expected "migrate" or "status"\n${DB_USAGE}`);
    return 2;
  }
  const where = config.store.url ? redact(config.store.url) : `SQLite in ${config.store.dataDir}`;
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
