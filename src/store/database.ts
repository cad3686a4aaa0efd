/**
 * The narrow interface every service uses to reach SQL (DESIGN: one interface, several
 * drivers). Plain parameterized SQL ($1, $2 ...) that PostgreSQL, PGlite and SQLite all
 * accept (the SQLite driver reads $N as SQLite's ?N); where the dialects differ, the
 * caller asks `dialectOf(db)`.
 */

export interface QueryResult<R> {
  readonly rows: R[];
  /** Rows returned (SELECT) or affected (INSERT, UPDATE, DELETE). */
  readonly rowCount: number;
}

/** What a transaction body may do: statements on the transaction's own connection. */
export interface Queryable {
  query<R>(sql: string, params?: unknown[]): Promise<QueryResult<R>>;
  /**
   * Runs a script of several statements without parameters (migrations). A separate
   * method because PGlite's `query` goes through the extended protocol, which takes one
   * statement only.
   */
  exec(sql: string): Promise<void>;
}

export type DriverName = 'pg' | 'pglite' | 'sqlite';

/** The SQL a driver speaks: PostgreSQL's (pg, PGlite) or SQLite's. */
export type Dialect = 'postgres' | 'sqlite';

export function dialectOf(db: { readonly driver: DriverName }): Dialect {
  return db.driver === 'sqlite' ? 'sqlite' : 'postgres';
}

export interface Database extends Queryable {
  /**
   * Runs `fn` inside BEGIN ... COMMIT; a throw rolls back and rethrows. Use `tx`, not the
   * database, inside `fn`: on an embedded store (one connection) a statement on the database would
   * wait for the transaction that waits for it, so the drivers refuse it.
   */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /** Ends every connection; pending statements finish first. */
  close(): Promise<void>;
  readonly driver: DriverName;
  /** True when a trivial statement succeeds (health checks); never throws. */
  ping(): Promise<boolean>;
}

/** A store that cannot be opened for a reason the operator must act on (lock, bad option). */
export class StoreOpenError extends Error {
  override name = 'StoreOpenError';
}

/** The SQLSTATE of a driver error, when it has one (every driver sets `code`; SQLite's maps its result codes). */
export function sqlState(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null || !('code' in err)) return undefined;
  const code = (err as { code: unknown }).code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/** 23505: the row would duplicate a unique key. */
export function isUniqueViolation(err: unknown): boolean {
  return sqlState(err) === '23505';
}

/**
 * Errors in the data itself (class 22 data exception, class 23 integrity violation):
 * retrying the same statement can never succeed, unlike a lost connection.
 */
export function isDataError(err: unknown): boolean {
  const s = sqlState(err);
  return s !== undefined && (s.startsWith('22') || s.startsWith('23'));
}

/**
 * A driver that can read a whole table's rows on the calling thread (the embedded SQLite
 * store): `readWholeTable(sql, params, pageRows, each)` hands `each` the rows a page at a
 * time and resolves with their count; undefined where the driver cannot (then the paged
 * queries of sql-values.ts read). Blocks the thread: start-up only.
 */
export interface WholeTableReader {
  readonly readWholeTable:
    | (<R>(sql: string, params: readonly unknown[], pageRows: number, each: (rows: R[]) => void) => Promise<number>)
    | undefined;
}
