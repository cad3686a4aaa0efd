import type { Worker } from 'node:worker_threads';
import { startModuleWorker } from '../util/module-worker.js';
import type { PgliteLike, PgliteResults, PgliteTransaction } from './pglite-driver.js';

/** What the store's thread is asked (sqlite-worker.ts, pglite-worker.ts). */
export type WorkerRequest =
  | { readonly id: number; readonly op: 'query'; readonly sql: string; readonly params?: unknown[] }
  | { readonly id: number; readonly op: 'exec'; readonly sql: string }
  | { readonly id: number; readonly op: 'backup'; readonly file: string }
  | { readonly id: number; readonly op: 'close' };

/** What it answers; a database error keeps its SQLSTATE and details. */
export type WorkerAnswer =
  | { readonly id: number; readonly ok: true; readonly ready?: true; readonly result?: PgliteResults<unknown> }
  | { readonly id: number; readonly ok: false; readonly message: string; readonly fields: Record<string, string> };

/**
 * An embedded engine (SQLite, or PGlite) on a worker thread of its own, so the store's work
 * runs beside SIP, not in its way. Structured cloning carries rows, Dates and byte arrays
 * across. A transaction is BEGIN, its statements, COMMIT (or ROLLBACK) on the one session:
 * the driver runs one at a time.
 */
export class RemoteEngine implements PgliteLike {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (a: WorkerAnswer & { ok: true }) => void; reject: (e: Error) => void }>();
  private dead: Error | undefined;

  private constructor(private readonly worker: Worker) {
    worker.on('message', (a: WorkerAnswer) => {
      const p = this.pending.get(a.id);
      if (!p) return;
      this.pending.delete(a.id);
      if (a.ok) p.resolve(a);
      else p.reject(Object.assign(new Error(a.message), a.fields));
    });
    const fail = (err: Error): void => {
      this.dead ??= err;
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`store thread exited (${code})`)));
  }

  /** Starts the thread on module `name` and resolves once its engine is open. */
  static async open(name: 'sqlite-worker' | 'pglite-worker', workerData: unknown): Promise<RemoteEngine> {
    // SQLite's thread holds a page of rows or a batch at a time (a few MB): a small old
    // generation keeps its garbage from piling up as resident memory. Its young generation is
    // the pages in flight: at 8 MB, reading 200,000 rows at start-up spent 5.5 s in collections
    // (32 MB: 1.3 s, the load 21 -> 10 s, loaded machine); the thread trims its heap afterwards
    // (sqlite-worker.ts). PGlite's WebAssembly needs its own room.
    const worker = startModuleWorker(import.meta.url, name, workerData, name === 'sqlite-worker' ? { maxOldGenerationSizeMb: 64, maxYoungGenerationSizeMb: 32 } : undefined);
    await new Promise<void>((resolve, reject) => {
      const onMessage = (a: WorkerAnswer): void => {
        if (a.id !== 0) return;
        worker.off('message', onMessage);
        worker.off('error', reject);
        if (a.ok) resolve();
        else reject(new Error(a.message));
      };
      worker.on('message', onMessage);
      worker.once('error', reject);
    });
    return new RemoteEngine(worker);
  }

  async query<R>(sql: string, params?: unknown[]): Promise<PgliteResults<R>> {
    const a = await this.call({ id: 0, op: 'query', sql, ...(params !== undefined ? { params } : {}) });
    return a.result as PgliteResults<R>;
  }

  async exec(sql: string): Promise<void> {
    await this.call({ id: 0, op: 'exec', sql });
  }

  async transaction<T>(fn: (tx: PgliteTransaction) => Promise<T>): Promise<T> {
    await this.exec('BEGIN');
    try {
      const out = await fn({ query: (sql, params) => this.query(sql, params), exec: (sql) => this.exec(sql) });
      await this.exec('COMMIT');
      return out;
    } catch (err) {
      await this.exec('ROLLBACK').catch(() => undefined);
      throw err;
    }
  }

  /** Writes a consistent copy of the database to `file` (SQLite only). */
  async backup(file: string): Promise<void> {
    await this.call({ id: 0, op: 'backup', file });
  }

  async close(): Promise<void> {
    if (!this.dead) await this.call({ id: 0, op: 'close' }).catch(() => undefined);
    await this.worker.terminate();
  }

  private call(req: WorkerRequest): Promise<WorkerAnswer & { ok: true }> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...req, id });
    });
  }
}
