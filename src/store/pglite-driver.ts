import { AsyncLocalStorage } from 'node:async_hooks';
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import type { PGlite } from '@electric-sql/pglite';
import type { Logger } from 'pino';
import { DataDirLock } from './data-dir-lock.js';
import { StoreOpenError, type Database, type Queryable, type QueryResult } from './database.js';
import { SerialQueue } from './serial-queue.js';

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

/** The calls the driver makes of PGlite: in-process (tests) or on the store's thread. */
export interface PgliteLike {
  query<R>(sql: string, params?: unknown[]): Promise<PgliteResults<R>>;
  exec(sql: string): Promise<unknown>;
  transaction<T>(fn: (tx: PgliteTransaction) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** bytea's type oid: PGlite returns Uint8Array, made a Buffer like node-postgres gives. */
const BYTEA_OID = 17;

/**
 * Opens embedded PGlite (PostgreSQL in WebAssembly) on a thread of its own (pglite-remote.ts),
 * so the store's work runs beside SIP, not in its way. A server on PostgreSQL never loads
 * the WebAssembly. Opening a new data directory takes seconds.
 */
export async function openPglite(options: PgliteOptions = {}): Promise<Database> {
  const dir = options.dataDir !== undefined ? resolve(options.dataDir) : undefined;
  let lock: DataDirLock | undefined;
  if (dir !== undefined) {
    try {
      mkdirSync(dir, { recursive: true });
    } catch (err) {
      throw new StoreOpenError(`cannot create data directory ${dir}: ${(err as Error).message}`);
    }
    lock = DataDirLock.acquire(dir);
  }
  try {
    const { RemotePglite } = await import('./pglite-remote.js');
    const pglite = await RemotePglite.open(dir);
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
  return new PgliteDatabase(pglite as PgliteLike, options.onClose);
}

/** Marks the async context of a running transaction; `active` goes false when it ends. */
interface TxMark {
  active: boolean;
}

class PgliteDatabase implements Database {
  readonly driver = 'pglite' as const;
  private readonly queue = new SerialQueue();
  private readonly txContext = new AsyncLocalStorage<TxMark>();
  private closing: Promise<void> | undefined;

  constructor(
    private readonly pglite: PgliteLike,
    private readonly onClose?: () => void,
  ) {}

  async query<R>(sql: string, params?: unknown[]): Promise<QueryResult<R>> {
    this.check('query');
    return toResult<R>(await this.queue.run(() => this.pglite.query<R>(sql, params)));
  }

  async exec(sql: string): Promise<void> {
    this.check('exec');
    await this.queue.run(() => this.pglite.exec(sql));
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    this.check('transaction');
    // One transaction at a time through the queue: the session is shared by everyone.
    return this.queue.run(() =>
      this.pglite.transaction(async (tx) => {
        const mark: TxMark = { active: true };
        try {
          return await this.txContext.run(mark, () => fn(txQueryable(tx)));
        } finally {
          mark.active = false;
        }
      }),
    );
  }

  async ping(): Promise<boolean> {
    try {
      await this.query('SELECT 1');
      return true;
    } catch {
      return false;
    }
  }

  close(): Promise<void> {
    // Queued statements run first; close once however often it is called.
    this.closing ??= this.queue
      .run(() => this.pglite.close())
      .finally(() => this.onClose?.());
    return this.closing;
  }

  private check(what: string): void {
    if (this.closing) throw new Error(`store: ${what} on a closed database`);
    if (this.txContext.getStore()?.active) {
      throw new Error(`store: ${what} on the database inside one of its transactions would deadlock on PGlite; use the transaction's handle`);
    }
  }
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
