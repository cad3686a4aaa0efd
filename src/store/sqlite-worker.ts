// The embedded store's own thread: SQLite (node:sqlite, built into Node) runs here, so its
// work (every write-behind flush, every query, every fsync) never blocks the SIP thread.
// Protocol (engine-remote.ts): one request a message, one answer each, in order.
import { parentPort, workerData } from 'node:worker_threads';
import { DatabaseSync, type SQLInputValue, type StatementSync } from 'node:sqlite';
import type { WorkerAnswer, WorkerRequest } from './engine-remote.js';
import { fromSqliteColumn, toSqliteParam, type SqliteConverter } from './sqlite-values.js';
import { memoryReducingCollection } from '../util/heap-trim.js';

const port = parentPort!;
const { file } = workerData as { file: string };

/** Prepared statements kept (the repositories and the write-behind use a few dozen). */
const STATEMENT_CACHE = 256;

interface Prepared {
  readonly stmt: StatementSync;
  /** Output columns; empty for a statement that returns no rows. */
  readonly columns: ReadonlyArray<{ readonly name: string; readonly convert: SqliteConverter | undefined }>;
}

/**
 * SQLite result codes (primary code in the low byte, extended above) to the SQLSTATE the
 * rest of the store reads (database.ts): constraint violations are data errors.
 */
function sqlStateOf(errcode: number): string | undefined {
  switch (errcode) {
    case 1555: // SQLITE_CONSTRAINT_PRIMARYKEY
    case 2067: // SQLITE_CONSTRAINT_UNIQUE
      return '23505';
    case 275: // SQLITE_CONSTRAINT_CHECK
      return '23514';
    case 1299: // SQLITE_CONSTRAINT_NOTNULL
      return '23502';
    case 787: // SQLITE_CONSTRAINT_FOREIGNKEY
      return '23503';
  }
  if ((errcode & 0xff) === 19) return '23000'; // another SQLITE_CONSTRAINT
  if ((errcode & 0xff) === 20) return '22000'; // SQLITE_MISMATCH
  if ((errcode & 0xff) === 18) return '22001'; // SQLITE_TOOBIG
  return undefined;
}

function errorOf(err: unknown, id: number): WorkerAnswer & { ok: false } {
  const e = err as { message?: unknown; errcode?: unknown; errstr?: unknown };
  const fields: Record<string, string> = {};
  const state = typeof e?.errcode === 'number' ? sqlStateOf(e.errcode) : undefined;
  if (state) fields.code = state;
  if (typeof e?.errstr === 'string') fields.detail = e.errstr;
  return { id, ok: false, message: err instanceof Error ? err.message : String(err), fields };
}

let db: DatabaseSync;
try {
  db = new DatabaseSync(file);
  if (file !== ':memory:') {
    // WAL: readers (a backup) never wait for the writer, and a commit is one append.
    // synchronous=NORMAL: a commit is durable against a crash of the process (kill -9);
    // on power loss the last commits before the last checkpoint may be lost, never the
    // file's consistency (docs/store.md).
    db.exec('PRAGMA journal_mode = WAL');
    db.exec('PRAGMA synchronous = NORMAL');
  }
  db.exec('PRAGMA foreign_keys = ON');
  db.exec('PRAGMA busy_timeout = 5000');
  port.postMessage({ id: 0, ok: true, ready: true } satisfies WorkerAnswer);
} catch (err) {
  port.postMessage(errorOf(err, 0));
  process.exit(1);
}

const cache = new Map<string, Prepared>();

/** `$1` (the store's placeholders) is SQLite's `?1`: the same numbered parameter. */
function prepare(sql: string): Prepared {
  const hit = cache.get(sql);
  if (hit) {
    // Most recently used last: the first entry is the one to evict.
    cache.delete(sql);
    cache.set(sql, hit);
    return hit;
  }
  const stmt = db.prepare(sql.replace(/\$(\d+)/g, '?$1'));
  // Rows as arrays, their column names sent once: building 100,000 rows of 30 columns as
  // objects and cloning every key of every row to the SIP thread cost twice as much (start-up).
  stmt.setReturnArrays(true);
  const prepared: Prepared = { stmt, columns: stmt.columns().map((c) => ({ name: c.name, convert: fromSqliteColumn(c.type) })) };
  cache.set(sql, prepared);
  if (cache.size > STATEMENT_CACHE) cache.delete(cache.keys().next().value!);
  return prepared;
}

/** Rows as arrays in the order of `columns` (the names go across once, in the answer's fields). */
function query(sql: string, params: unknown[] = []): { rows: unknown[][]; columns: readonly string[]; rowCount: number } {
  const { stmt, columns } = prepare(sql);
  const args = params.map(toSqliteParam) as SQLInputValue[];
  if (columns.length === 0) return { rows: [], columns: [], rowCount: Number(stmt.run(...args).changes) };
  const rows = stmt.all(...args) as unknown as unknown[][];
  columns.forEach((col, i) => {
    if (!col.convert) return;
    for (const row of rows) row[i] = col.convert(row[i]);
  });
  return { rows, columns: columns.map((c) => c.name), rowCount: rows.length };
}

/**
 * After large reads (start-up loads every soft-state row), this thread's heap pages stay in
 * V8's pool unless a memory-reducing collection empties it (util/heap-trim.ts): one runs when
 * this many rows went out and no further rows were read for TRIM_IDLE_MS (writes do not count).
 */
const TRIM_AFTER_ROWS = 10_000;
const TRIM_IDLE_MS = 5_000;
let rowsSinceTrim = 0;
let trimTimer: NodeJS.Timeout | undefined;

function rowsSent(n: number): void {
  rowsSinceTrim += n;
  if (trimTimer) clearTimeout(trimTimer);
  trimTimer = undefined;
  if (rowsSinceTrim < TRIM_AFTER_ROWS) return;
  trimTimer = setTimeout(() => {
    trimTimer = undefined;
    rowsSinceTrim = 0;
    memoryReducingCollection();
  }, TRIM_IDLE_MS);
  trimTimer.unref();
}

port.on('message', (req: WorkerRequest) => {
  try {
    if (req.op === 'query') {
      const { rows, columns, rowCount } = query(req.sql, req.params);
      port.postMessage({ id: req.id, ok: true, result: { rows, fields: columns.map((name) => ({ name, dataTypeID: 0 })), rowCount } } satisfies WorkerAnswer);
      if (rows.length > 0) rowsSent(rows.length);
    } else if (req.op === 'exec') {
      db.exec(req.sql);
      port.postMessage({ id: req.id, ok: true } satisfies WorkerAnswer);
    } else if (req.op === 'backup') {
      // A consistent, compacted copy while the store stays open (never inside a transaction:
      // the driver runs it between them).
      db.prepare('VACUUM INTO ?').run(req.file);
      port.postMessage({ id: req.id, ok: true } satisfies WorkerAnswer);
    } else {
      cache.clear();
      db.close();
      port.postMessage({ id: req.id, ok: true } satisfies WorkerAnswer);
      port.close();
    }
  } catch (err) {
    port.postMessage(errorOf(err, req.id));
  }
});
