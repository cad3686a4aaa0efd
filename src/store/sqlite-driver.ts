import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { SQLInputValue } from 'node:sqlite';
import type { Logger } from 'pino';
import { DataDirLock, makeDataDir } from './data-dir-lock.js';
import { StoreOpenError, type QueryResult, type WholeTableReader } from './database.js';
import type { RemoteEngine } from './engine-remote.js';
import { SessionDatabase } from './session-database.js';
import { fromSqliteColumn, toSqliteParam, type SqliteConverter } from './sqlite-values.js';

/** The database file inside store.dataDir (with its -wal and -shm beside it while open). */
export const SQLITE_FILE = 'simple-presence.db';

export interface SqliteOptions {
  /** Data directory (created if missing); in memory when absent (tests). */
  readonly dataDir?: string;
  readonly logger?: Logger;
}

/** The embedded store: SQLite opened by openSqlite, with an online backup. */
export class SqliteDatabase extends SessionDatabase implements WholeTableReader {
  constructor(
    private readonly engine: RemoteEngine,
    onClose?: () => void,
    /** The database file; undefined in memory (only the store's thread sees that one). */
    private readonly file?: string,
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

  /**
   * Start-up reads of whole tables on the calling thread, through a read-only connection of
   * its own (WAL: one consistent snapshot, the store's thread not waited for): rows become
   * records where they are read, where the store's thread built them as arrays and the SIP
   * thread copied them across and built them again (100,000 subscriptions: the copies and the
   * young-generation collections behind them were most of the start-up). Synchronous: only
   * before anything is served. Undefined in memory, where the store's thread reads.
   */
  get readWholeTable(): WholeTableReader['readWholeTable'] {
    const file = this.file;
    if (file === undefined) return undefined;
    return <R>(sql: string, params: readonly unknown[], pageRows: number, each: (rows: R[]) => void) =>
      this.exclusive(async () => {
        // Loaded here, as the store's thread loads it: nothing else of this module needs it.
        const { DatabaseSync } = await import('node:sqlite');
        const local = new DatabaseSync(file, { readOnly: true });
        try {
          const stmt = local.prepare(sql.replace(/\$(\d+)/g, '?$1'));
          stmt.setReturnArrays(true);
          const columns = stmt.columns();
          const build = rowBuilder(
            columns.map((c) => c.name),
            columns.map((c) => fromSqliteColumn(c.type)),
          );
          let count = 0;
          let page: R[] = [];
          // A text equal to the row before's in its column is that string again: columns such
          // as the event package, state, transport or our own address repeat down the table,
          // and a copy a row would live until the records are dropped (tens of MB at 100,000
          // subscriptions, all of it copied by the young generation's collections).
          const previous: unknown[] = new Array(columns.length);
          for (const row of stmt.iterate(...(params.map(toSqliteParam) as SQLInputValue[]))) {
            const values = row as unknown as unknown[];
            for (let i = 0; i < values.length; i++) {
              const v = values[i];
              if (typeof v !== 'string') continue;
              if (v === previous[i]) values[i] = previous[i];
              else previous[i] = v;
            }
            page.push(build(values, asBuffer) as R);
            if (page.length === pageRows) {
              count += page.length;
              each(page);
              page = [];
            }
          }
          count += page.length;
          if (page.length > 0) each(page);
          return count;
        } finally {
          local.close();
        }
      });
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
    return new SqliteDatabase(engine, () => lock?.release(), dir !== undefined ? join(dir, SQLITE_FILE) : undefined);
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
  const build = rowBuilder(names, []);
  const rows = new Array<R>(res.rows.length);
  for (let r = 0; r < res.rows.length; r++) rows[r] = build(res.rows[r]!, asBuffer) as R;
  return { rows, rowCount: res.rowCount ?? rows.length };
}


/** Blobs cross the thread as Uint8Array; the store's records hold Buffers. */
function asBuffer(v: unknown): unknown {
  return v instanceof Uint8Array && !Buffer.isBuffer(v) ? Buffer.from(v.buffer, v.byteOffset, v.byteLength) : v;
}

type RowBuilder = (values: readonly unknown[], convert: (v: unknown) => unknown) => Record<string, unknown>;
type Converters = ReadonlyArray<SqliteConverter | undefined>;
const builders = new Map<string, (typed: Converters) => RowBuilder>();

/**
 * An object literal of a statement's columns, compiled once a column list: V8 then makes every
 * row with one shape in one allocation, where adding 30 properties by computed names to `{}`
 * was 2 µs a row and most of the SIP thread's part of a start-up (100,000 subscriptions). The
 * names are the statement's own columns (our SQL), quoted as JSON string literals; `__proto__`
 * would set the prototype in a literal, so such a row is built property by property. A column
 * with a type converter (`typed[i]`, sqlite-values.ts) gets it; every value then goes through
 * `convert`.
 */
function rowBuilder(names: readonly string[], typed: Converters): RowBuilder {
  const value = (i: number, c: (v: unknown) => unknown, v: readonly unknown[]) => c(typed[i] ? typed[i](v[i]) : v[i]);
  if (names.includes('__proto__')) return (v, c) => Object.fromEntries(names.map((n, i) => [n, value(i, c, v)]));
  const key = `${names.join('\u0000')}\u0001${typed.map((t) => (t ? 1 : 0)).join('')}`;
  let compiled = builders.get(key);
  if (!compiled) {
    const fields = names.map((n, i) => `${JSON.stringify(n)}: c(${typed[i] ? `t[${i}](v[${i}])` : `v[${i}]`})`).join(', ');
    compiled = new Function('t', `return (v, c) => ({ ${fields} });`) as (typed: Converters) => RowBuilder;
    if (builders.size >= 256) builders.delete(builders.keys().next().value!);
    builders.set(key, compiled);
  }
  return compiled(typed);
}
