import { resolve } from 'node:path';
import type { PGlite } from '@electric-sql/pglite';
import type { Logger } from 'pino';
import { DataDirLock, makeDataDir } from './data-dir-lock.js';
import { StoreOpenError, type Database, type Queryable, type QueryResult } from './database.js';
import { SessionDatabase } from './session-database.js';

export interface PgliteOptions {
  /** Data directory (created if missing); in memory when absent (tests). */
  readonly dataDir?: string;
  readonly logger?: Logger;
}

/** What the driver reads of a PGlite result. */
export interface PgliteResults<R> {
  readonly rows: R[];
  readonly fields: ReadonlyArray<{ readonly name: string; readonly dataTypeID: number }>;
  readonly affectedRows?: number;
  readonly rowCount?: number;
}

/** A PGlite transaction's handle, as the driver uses it. */
export interface PgliteTransaction {
  query<R>(sql: string, params?: unknown[]): Promise<PgliteResults<R>>;
  exec(sql: string): Promise<unknown>;
}

/** The calls the driver makes of PGlite: in-process (tests) or on the store's thread (engine-remote.ts). */
export interface PgliteLike {
  query<R>(sql: string, params?: unknown[]): Promise<PgliteResults<R>>;
  exec(sql: string): Promise<unknown>;
  transaction<T>(fn: (tx: PgliteTransaction) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** bytea's type oid: PGlite returns Uint8Array, made a Buffer like node-postgres gives. */
const BYTEA_OID = 17;

/**
 * Opens embedded PGlite (PostgreSQL in WebAssembly) on a thread of its own (engine-remote.ts),
 * so the store's work runs beside SIP, not in its way. A server on PostgreSQL never loads
 * the WebAssembly. Opening a new data directory takes seconds.
 */
export async function openPglite(options: PgliteOptions = {}): Promise<Database> {
  const dir = options.dataDir !== undefined ? resolve(options.dataDir) : undefined;
  let lock: DataDirLock | undefined;
  if (dir !== undefined) {
    makeDataDir(dir);
    lock = DataDirLock.acquire(dir);
  }
  try {
    const { RemoteEngine } = await import('./engine-remote.js');
    const pglite = await RemoteEngine.open('pglite-worker', { dataDir: dir });
    options.logger?.info({ dataDir: dir ?? 'memory' }, 'store: PGlite open');
    return wrapPglite(pglite, { onClose: () => lock?.release() });
  } catch (err) {
    lock?.release();
    if (err instanceof StoreOpenError) throw err;
    throw new StoreOpenError(`cannot open PGlite ${dir !== undefined ? `data directory ${dir}` : 'in memory'}: ${(err as Error).message}`);
  }
}

/** Serves the Database interface over an open PGlite instance (tests build their own). */
export function wrapPglite(pglite: PGlite | PgliteLike, options: { onClose?: () => void } = {}): Database {
  const p = pglite as PgliteLike;
  return new SessionDatabase(
    'pglite',
    {
      query: async <R>(sql: string, params?: unknown[]) => toResult<R>(await p.query<R>(sql, params)),
      exec: async (sql: string) => {
        await p.exec(sql);
      },
      transaction: (fn) => p.transaction((tx) => fn(txQueryable(tx))),
      close: () => p.close(),
    },
    options.onClose,
  );
}

function txQueryable(tx: PgliteTransaction): Queryable {
  return {
    query: async <R>(sql: string, params?: unknown[]) => toResult<R>(await tx.query<R>(sql, params)),
    exec: async (sql: string) => {
      await tx.exec(sql);
    },
  };
}

function toResult<R>(res: PgliteResults<R>): QueryResult<R> {
  const byteaFields = res.fields.filter((f) => f.dataTypeID === BYTEA_OID).map((f) => f.name);
  if (byteaFields.length > 0) {
    for (const row of res.rows) {
      const r = row as Record<string, unknown>;
      for (const name of byteaFields) {
        const v = r[name];
        if (v instanceof Uint8Array && !Buffer.isBuffer(v)) r[name] = Buffer.from(v.buffer, v.byteOffset, v.byteLength);
      }
    }
  }
  return { rows: res.rows, rowCount: res.rowCount ?? res.affectedRows ?? res.rows.length };
}
