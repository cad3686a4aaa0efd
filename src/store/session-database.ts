import { AsyncLocalStorage } from 'node:async_hooks';
import type { Database, DriverName, Queryable, QueryResult } from './database.js';
import { SerialQueue } from './serial-queue.js';

/** One connection of an embedded engine (SQLite, PGlite), as the shared wrapper drives it. */
export interface Session extends Queryable {
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** Marks the async context of a running transaction; `active` goes false when it ends. */
interface TxMark {
  active: boolean;
}

/**
 * The Database interface over an embedded engine's single session: statements and
 * transactions run one at a time, in arrival order, so two callers' transactions never
 * interleave their statements in the one session.
 */
export class SessionDatabase implements Database {
  private readonly queue = new SerialQueue();
  private readonly txContext = new AsyncLocalStorage<TxMark>();
  private closing: Promise<void> | undefined;

  constructor(
    readonly driver: DriverName,
    private readonly session: Session,
    private readonly onClose?: () => void,
  ) {}

  async query<R>(sql: string, params?: unknown[]): Promise<QueryResult<R>> {
    this.check('query');
    return this.queue.run(() => this.session.query<R>(sql, params));
  }

  async exec(sql: string): Promise<void> {
    this.check('exec');
    await this.queue.run(() => this.session.exec(sql));
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    this.check('transaction');
    return this.queue.run(() =>
      this.session.transaction(async (tx) => {
        const mark: TxMark = { active: true };
        try {
          return await this.txContext.run(mark, () => fn(tx));
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

  /** Runs `job` between statements, in the queue's order (a backup sees no half transaction). */
  exclusive<T>(job: () => Promise<T>): Promise<T> {
    this.check('exclusive job');
    return this.queue.run(job);
  }

  close(): Promise<void> {
    // Queued statements run first; close once however often it is called.
    this.closing ??= this.queue.run(() => this.session.close()).finally(() => this.onClose?.());
    return this.closing;
  }

  private check(what: string): void {
    if (this.closing) throw new Error(`store: ${what} on a closed database`);
    if (this.txContext.getStore()?.active) {
      throw new Error(`store: ${what} on the database inside one of its transactions would deadlock on the embedded store; use the transaction's handle`);
    }
  }
}
