import { createRequire } from 'node:module';
import type pg from 'pg';
import type { Logger } from 'pino';
import { StoreOpenError, type Database, type Queryable, type QueryResult } from './database.js';

export interface PgOptions {
  /** postgres://user@host:port/db */
  readonly url: string;
  /** Schema to work in (search_path of every connection): tests get one each. */
  readonly schema?: string;
  readonly logger?: Logger;
  /** Pool size (default 10). */
  readonly max?: number;
  /** Give up connecting after this (default 5000 ms): a dead server must not hang callers forever. */
  readonly connectTimeoutMs?: number;
}

const IDENTIFIER_RE = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/**
 * A node-postgres Pool behind the Database interface. Connections are made lazily: a
 * server that is down shows in the first statement (migrations at start-up), not here.
 */
export function openPg(options: PgOptions): Database {
  if (options.schema !== undefined && !IDENTIFIER_RE.test(options.schema)) {
    throw new StoreOpenError(`store schema ${JSON.stringify(options.schema)} is not a plain SQL identifier`);
  }
  const { Pool } = loadPg();
  const pool = new Pool({
    connectionString: options.url,
    max: options.max ?? 10,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 5000,
    idleTimeoutMillis: 10_000,
    keepAlive: true,
    // A startup parameter, so the search path is set before any statement on every connection.
    ...(options.schema !== undefined ? { options: `-c search_path=${options.schema}` } : {}),
  });
  return new PgDatabase(pool, options.logger);
}

/**
 * node-postgres, loaded by the first openPg: the embedded store's start-up does not load its
 * forty modules (it is CommonJS, so a synchronous require keeps openPg synchronous).
 */
function loadPg(): typeof pg {
  return createRequire(import.meta.url)('pg') as typeof pg;
}

class PgDatabase implements Database {
  readonly driver = 'pg' as const;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly pool: pg.Pool,
    private readonly logger?: Logger,
  ) {
    // An idle connection that dies (server restart, network) emits 'error' on the pool;
    // unhandled, it would crash the process. The pool drops that client and makes a new one later.
    pool.on('error', (err) => this.logger?.warn({ err }, 'store: idle PostgreSQL connection failed'));
  }

  async query<R>(sql: string, params?: unknown[]): Promise<QueryResult<R>> {
    const res = await this.pool.query(sql, params);
    return { rows: res.rows as R[], rowCount: res.rowCount ?? res.rows.length };
  }

  async exec(sql: string): Promise<void> {
    // Without parameters node-postgres uses the simple protocol, which takes several statements.
    await this.pool.query(sql);
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    // A checked-out client is not watched by the pool: its errors need a listener too.
    const onError = (err: Error) => this.logger?.warn({ err }, 'store: PostgreSQL connection failed in a transaction');
    client.on('error', onError);
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      const result = await fn(clientQueryable(client));
      await client.query('COMMIT');
      return result;
    } catch (err) {
      try {
        await client.query('ROLLBACK');
      } catch (rollbackErr) {
        // The connection is unusable: the pool must destroy it, not hand it out again.
        broken = rollbackErr as Error;
      }
      throw err;
    } finally {
      client.off('error', onError);
      client.release(broken ?? false);
    }
  }

  async ping(): Promise<boolean> {
    try {
      await this.pool.query('SELECT 1');
      return true;
    } catch {
      return false;
    }
  }

  close(): Promise<void> {
    this.closing ??= this.pool.end();
    return this.closing;
  }
}

function clientQueryable(client: pg.PoolClient): Queryable {
  return {
    query: async <R>(sql: string, params?: unknown[]) => {
      const res = await client.query(sql, params);
      return { rows: res.rows as R[], rowCount: res.rowCount ?? res.rows.length };
    },
    exec: async (sql: string) => {
      await client.query(sql);
    },
  };
}
