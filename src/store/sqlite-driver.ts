import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { DataDirLock, makeDataDir } from './data-dir-lock.js';
import { StoreOpenError, type QueryResult } from './database.js';
import type { RemoteEngine } from './engine-remote.js';
import { SessionDatabase } from './session-database.js';

/** The database file inside store.dataDir (with its -wal and -shm beside it while open). */
export const SQLITE_FILE = 'simple-presence.db';

export interface SqliteOptions {
  /** Data directory (created if missing); in memory when absent (tests). */
  readonly dataDir?: string;
  readonly logger?: Logger;
}

/** The embedded store: SQLite opened by openSqlite, with an online backup. */
export class SqliteDatabase extends SessionDatabase {
  constructor(
    private readonly engine: RemoteEngine,
    onClose?: () => void,
  ) {
    super(
      'sqlite',
      {
        query: (sql, params) => sqliteQuery(engine, sql, params),
        exec: (sql) => engine.exec(sql),
        transaction: (fn) =>
          engine.transaction((tx) =>
            fn({
              query: (sql, params) => sqliteQuery(engine, sql, params),
              exec: async (sql) => {
              await tx.exec(sql);
            },
          }),
        ),
        close: () => engine.close(),
      },
      onClose,
    );
  }

  /**
   * Writes a consistent copy of the whole database to `file` (which must not exist) while
   * the store stays open: between two transactions, in the order of the queue.
   */
  backup(file: string): Promise<void> {
    return this.exclusive(() => this.engine.backup(resolve(file)));
  }
}

/**
 * Opens embedded SQLite (node:sqlite) in `dataDir`/simple-presence.db on a thread of its
 * own (engine-remote.ts). One process at a time: the data directory's lock says who.
 */
export async function openSqlite(options: SqliteOptions = {}): Promise<SqliteDatabase> {
  const dir = options.dataDir !== undefined ? resolve(options.dataDir) : undefined;
  let lock: DataDirLock | undefined;
  if (dir !== undefined) {
    makeDataDir(dir);
    refusePgliteDir(dir);
    lock = DataDirLock.acquire(dir);
  }
  try {
    const { RemoteEngine } = await import('./engine-remote.js');
    const engine = await RemoteEngine.open('sqlite-worker', { file: dir !== undefined ? join(dir, SQLITE_FILE) : ':memory:' });
    options.logger?.info({ dataDir: dir ?? 'memory' }, 'store: SQLite open');
    return new SqliteDatabase(engine, () => lock?.release());
  } catch (err) {
    lock?.release();
    if (err instanceof StoreOpenError) throw err;
    throw new StoreOpenError(`cannot open SQLite ${dir !== undefined ? `data directory ${dir}` : 'in memory'}: ${(err as Error).message}`);
  }
}

/** True when `dir` holds the PGlite store of a release before 0.2 (PostgreSQL's PG_VERSION file). */
export function isPgliteDataDir(dir: string): boolean {
  return existsSync(join(dir, 'PG_VERSION'));
}

/** An earlier release's PGlite store is never opened over, nor silently left behind. */
function refusePgliteDir(dir: string): void {
  if (isPgliteDataDir(dir) && !existsSync(join(dir, SQLITE_FILE))) {
    throw new StoreOpenError(
      `data directory ${dir} holds a PGlite store of an earlier release; convert it once with: simple-presence db convert-pglite`,
    );
  }
}

/** The store's thread sends rows as arrays and the column names once (sqlite-worker.ts); records are objects by name, as node-postgres gives. */
async function sqliteQuery<R>(engine: RemoteEngine, sql: string, params?: unknown[]): Promise<QueryResult<R>> {
  const res = await engine.query<unknown[]>(sql, params);
  const names = res.fields.map((f) => f.name);
  const build = rowBuilder(names);
  const rows = new Array<R>(res.rows.length);
  for (let r = 0; r < res.rows.length; r++) rows[r] = build(res.rows[r]!, asBuffer) as R;
  return { rows, rowCount: res.rowCount ?? rows.length };
}


/** Blobs cross the thread as Uint8Array; the store's records hold Buffers. */
function asBuffer(v: unknown): unknown {
  return v instanceof Uint8Array && !Buffer.isBuffer(v) ? Buffer.from(v.buffer, v.byteOffset, v.byteLength) : v;
}

type RowBuilder = (values: readonly unknown[], convert: (v: unknown) => unknown) => Record<string, unknown>;
const builders = new Map<string, RowBuilder>();

/**
 * An object literal of a statement's columns, compiled once a column list: V8 then makes every
 * row with one shape in one allocation, where adding 30 properties by computed names to `{}`
 * was 2 µs a row and most of the SIP thread's part of a start-up (100,000 subscriptions). The
 * names are the statement's own columns (our SQL), quoted as JSON string literals; `__proto__`
 * would set the prototype in a literal, so such a row is built property by property.
 */
function rowBuilder(names: readonly string[]): RowBuilder {
  if (names.includes('__proto__')) return (v, c) => Object.fromEntries(names.map((n, i) => [n, c(v[i])]));
  const key = names.join('\u0000');
  let build = builders.get(key);
  if (!build) {
    const fields = names.map((n, i) => `${JSON.stringify(n)}: c(v[${i}])`).join(', ');
    build = new Function('v', 'c', `return { ${fields} };`) as RowBuilder;
    if (builders.size >= 256) builders.delete(builders.keys().next().value!);
    builders.set(key, build);
  }
  return build;
}
