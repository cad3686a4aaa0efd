import type { Logger } from 'pino';
import { dialectOf, isDataError, type Database, type Queryable } from './database.js';
import { toSqlText, type ColumnType } from './sql-text.js';
import { toSqliteJson } from './sqlite-values.js';

/**
 * Write-behind for soft state (DESIGN: publications, subscriptions and registrations are
 * written behind in batches; a crash loses at most one window). `put` and `delete` never
 * wait on the database: they coalesce by key in memory (the last operation for a key
 * wins), and a timer flushes every `windowMs` in one short transaction of multi-row
 * statements (INSERT ... SELECT FROM unnest(one text[] a column) ... ON CONFLICT DO UPDATE:
 * measured twice as fast as VALUES lists, whose parameters grow with the rows; on SQLite,
 * INSERT ... SELECT FROM json_each(one JSON array of rows)). A failed flush keeps its operations (newer ones for the same key win) and
 * is retried with backoff, so an outage loses nothing that fits in the bound.
 */

export interface ColumnSpec {
  readonly name: string;
  /** The column's SQL type: how `toRow`'s value is sent as text and cast back. */
  readonly type: ColumnType;
}

/** What the flush needs to know about a table. */
export interface TableShape {
  readonly table: string;
  /** Every column, in the order of `toRow`'s values. */
  readonly columns: readonly ColumnSpec[];
  /** The primary key: text columns, in the order of `keyParts`' values. */
  readonly keyColumns: readonly string[];
}

/** A table written behind, with how its keys and records become SQL values. */
export interface TableSpec<K, R> extends TableShape {
  keyParts(key: K): readonly string[];
  toRow(record: R): readonly unknown[];
}

/** The key and record types of one kind. */
export interface KindTypes {
  readonly key: unknown;
  readonly record: unknown;
}

export type TableSpecs<M extends { [K in keyof M]: KindTypes }> = {
  readonly [K in keyof M]: TableSpec<M[K]['key'], M[K]['record']>;
};

/** One kind's side of the queue, for a repository that writes one table. */
export interface KindQueue<K, R> {
  /**
   * False when the queue is full (or stopped) and the change was not taken. `fresh`: the
   * key was never written before (a new entity-tag, a new subscription).
   */
  put(key: K, record: R, fresh?: boolean): boolean;
  delete(key: K): boolean;
}

/** Schedules `fn` after `delayMs`; returns its cancel function. */
export type ScheduleFn = (delayMs: number, fn: () => void) => () => void;

export interface WriteBehindOptions {
  /** How late a change may be written (default 1000 ms). */
  readonly windowMs?: number;
  /** Distinct keys waiting at most; beyond it put/delete return false (default 100,000). */
  readonly maxPending?: number;
  /** Rows in one INSERT or DELETE (default 500): on the embedded store other work runs between statements, so they stay short. */
  readonly rowsPerStatement?: number;
  /** Operations in one flush transaction (default 5,000): the embedded store has one session, so a flush stays short. */
  readonly rowsPerFlush?: number;
  /** Retry delay doubles from `windowMs` after each failure, up to this (default 30,000 ms). */
  readonly maxBackoffMs?: number;
  /** Timer source (default setTimeout, unref'd); tests pass a manual one. */
  readonly schedule?: ScheduleFn;
  /** Monotonic ms for latency figures (default performance.now). */
  readonly now?: () => number;
  readonly logger?: Logger;
}

export interface WriteBehindStats {
  /** Operations waiting (not counting those being written). */
  readonly pending: number;
  readonly inFlight: number;
  readonly flushes: number;
  readonly rowsWritten: number;
  /** Duration of the last successful flush. */
  readonly lastFlushMs: number | undefined;
  readonly lastFlushRows: number;
  /** Failed flushes since start, and in a row now. */
  readonly failures: number;
  readonly consecutiveFailures: number;
  /** put/delete refused because the queue was full. */
  readonly rejected: number;
  /** Operations the database refused as bad data, logged and given up. */
  readonly dropped: number;
  /** First writes cancelled by a removal before they were written (nothing to write). */
  readonly elided: number;
}

interface PendingOp {
  readonly kind: string;
  readonly parts: readonly string[];
  /** The record to upsert (converted to SQL text at flush), or undefined to delete. */
  readonly record: unknown;
  /** Its column values as SQL text (PostgreSQL) or JSON values (SQLite), once converted. */
  row?: readonly (string | number | null)[];
  /** An upsert of a key the database has never had: a delete that follows it cancels both. */
  fresh: boolean;
}

/** Adapts a timer structure with schedule/cancel (util/timers' TimerHeap, ManualTimers) to a ScheduleFn. */
export function scheduleOn<H>(timers: { schedule(delayMs: number, fn: () => void): H; cancel(handle: H): void }): ScheduleFn {
  return (delayMs, fn) => {
    const h = timers.schedule(delayMs, fn);
    return () => timers.cancel(h);
  };
}

const defaultSchedule: ScheduleFn = (delayMs, fn) => {
  const t = setTimeout(fn, delayMs);
  // Pending soft state must not keep a stopping process alive; stop() flushes it.
  t.unref();
  return () => clearTimeout(t);
};

export class WriteBehind<M extends { [K in keyof M]: KindTypes }> {
  private readonly shapes = new Map<string, TableShape>();
  private pending = new Map<string, PendingOp>();
  /** When the oldest operation waiting was queued (`now()`), its window counting from there. */
  private pendingSince: number | undefined;
  private inFlight = 0;
  private running: Promise<void> | undefined;
  private cancelTimer: (() => void) | undefined;
  private stopped = false;
  private overflowing = false;
  private outageStartedAt = 0;
  private readonly sqlCache = new Map<string, string>();
  private readonly sqlite: boolean;

  private readonly windowMs: number;
  private readonly maxPending: number;
  private readonly rowsPerStatement: number;
  private readonly rowsPerFlush: number;
  private readonly maxBackoffMs: number;
  private readonly schedule: ScheduleFn;
  private readonly now: () => number;
  private readonly logger: Logger | undefined;

  private counters = { flushes: 0, rowsWritten: 0, lastFlushMs: undefined as number | undefined, lastFlushRows: 0, failures: 0, consecutiveFailures: 0, rejected: 0, dropped: 0, elided: 0 };

  constructor(
    private readonly db: Database,
    private readonly specs: TableSpecs<M>,
    options: WriteBehindOptions = {},
  ) {
    for (const kind of Object.keys(specs) as Array<keyof M & string>) {
      const spec = specs[kind];
      const names = spec.columns.map((c) => c.name);
      if (!spec.keyColumns.every((k) => names.includes(k))) throw new Error(`write-behind ${kind}: key columns must be among the columns`);
      this.shapes.set(kind, spec);
    }
    this.windowMs = options.windowMs ?? 1000;
    this.maxPending = options.maxPending ?? 100_000;
    this.rowsPerStatement = Math.max(1, options.rowsPerStatement ?? 500);
    this.rowsPerFlush = Math.max(1, options.rowsPerFlush ?? 5000);
    this.maxBackoffMs = options.maxBackoffMs ?? 30_000;
    this.schedule = options.schedule ?? defaultSchedule;
    this.now = options.now ?? (() => performance.now());
    this.logger = options.logger;
    this.sqlite = dialectOf(db) === 'sqlite';
  }

  /** Queues an insert-or-update of `record` under `key`. False when refused (full or stopped). */
  put<K extends keyof M & string>(kind: K, key: M[K]['key'], record: M[K]['record'], fresh = false): boolean {
    // Converted at flush, not here: most changes are replaced or cancelled within the window
    // (a NOTIFY moving a CSeq, a subscribe then unsubscribe), so only the last is converted.
    // Records are snapshots their callers do not change afterwards; one that cannot be
    // converted is logged and dropped at flush.
    if (record === undefined || record === null) throw new TypeError(`write-behind ${kind}: no record`);
    return this.enqueue({ kind, parts: this.partsOf(kind, key), record, fresh });
  }

  /** Queues the removal of `key`. False when refused (full or stopped). */
  delete<K extends keyof M & string>(kind: K, key: M[K]['key']): boolean {
    return this.enqueue({ kind, parts: this.partsOf(kind, key), record: undefined, fresh: false });
  }

  /** A view bound to one kind. */
  queue<K extends keyof M & string>(kind: K): KindQueue<M[K]['key'], M[K]['record']> {
    return { put: (key, record, fresh) => this.put(kind, key, record, fresh), delete: (key) => this.delete(kind, key) };
  }

  /**
   * Writes everything queued before the call (graceful stop, tests). Rejects with the
   * database's error when a flush fails; the operations stay queued for the next try.
   */
  async flush(): Promise<void> {
    let rounds = Math.ceil(this.pending.size / this.rowsPerFlush) + 1;
    for (;;) {
      if (this.running) {
        await this.running.catch(() => undefined);
        continue;
      }
      // Keys queued later are appended, so these rounds cover every earlier key.
      if (this.pending.size === 0 || rounds-- <= 0) return;
      await this.flushOnce();
    }
  }

  /** Refuses new operations, cancels the timer and flushes what is queued. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.disarm();
    await this.flush();
  }

  stats(): WriteBehindStats {
    return { pending: this.pending.size, inFlight: this.inFlight, ...this.counters };
  }

  private partsOf<K extends keyof M & string>(kind: K, key: M[K]['key']): readonly string[] {
    const spec = this.specs[kind];
    const parts = spec.keyParts(key);
    if (parts.length !== spec.keyColumns.length) throw new Error(`write-behind ${kind}: key has ${parts.length} parts for ${spec.keyColumns.length} key columns`);
    return parts;
  }

  private enqueue(op: PendingOp): boolean {
    if (this.stopped) return false;
    const id = `${op.kind}\u0000${op.parts.join('\u0000')}`;
    const waiting = this.pending.get(id);
    if (waiting?.fresh) {
      // Never written: a removal cancels it (a subscription ended, an entity-tag replaced,
      // within one window: nothing to write at all); a change keeps it a first write.
      if (op.record === undefined) {
        this.pending.delete(id);
        this.counters.elided++;
        return true;
      }
      op.fresh = true;
    }
    if (!waiting && this.pending.size + this.inFlight >= this.maxPending) {
      this.counters.rejected++;
      if (!this.overflowing) {
        this.overflowing = true;
        this.logger?.warn({ maxPending: this.maxPending }, 'store: write-behind queue full; refusing soft-state changes until it drains');
      }
      return false;
    }
    // A key already waiting keeps its place (Map.set), so a hot key cannot starve behind a backlog.
    if (this.pending.size === 0) this.pendingSince = this.now();
    this.pending.set(id, op);
    this.arm();
    return true;
  }

  /** `backlog`: the last flush was full, so what is left goes at once, not a window later. */
  private arm(backlog = false): void {
    if (this.cancelTimer || this.running || this.stopped || this.pending.size === 0) return;
    const f = this.counters.consecutiveFailures;
    // A change queued while a flush ran has waited for it already: its window started when it
    // was queued, not when that flush ended (else a slow flush made it nearly two windows late).
    const due = Math.max(0, (this.pendingSince ?? this.now()) + this.windowMs - this.now());
    const delay = f > 0 ? Math.min(this.maxBackoffMs, this.windowMs * 2 ** Math.min(f - 1, 30)) : backlog ? 0 : due;
    this.cancelTimer = this.schedule(delay, () => {
      this.cancelTimer = undefined;
      // Failures are counted and logged inside.
      this.flushOnce().catch(() => undefined);
    });
  }

  private disarm(): void {
    this.cancelTimer?.();
    this.cancelTimer = undefined;
  }

  private flushOnce(): Promise<void> {
    if (this.running) return this.running;
    this.disarm();
    const batch = this.take(this.rowsPerFlush);
    if (batch.length === 0) return Promise.resolve();
    this.inFlight = batch.length;
    const run = this.runFlush(batch).finally(() => {
      this.inFlight = 0;
      this.running = undefined;
      // Back-to-back short flushes drain a backlog while SIP handling runs in between.
      this.arm(batch.length >= this.rowsPerFlush);
    });
    this.running = run;
    return run;
  }

  private async runFlush(batch: PendingOp[]): Promise<void> {
    const t0 = this.now();
    const done = new Set<PendingOp>();
    try {
      try {
        await this.db.transaction((tx) => this.writeBatch(tx, batch));
      } catch (err) {
        if (!isDataError(err)) throw err;
        // A bad row would fail every retry and wedge the queue: find it, drop it, write the rest.
        await this.writeOneByOne(batch, done);
      }
    } catch (err) {
      this.restore(batch, done);
      this.failed(err);
      throw err;
    }
    const ms = this.now() - t0;
    const c = this.counters;
    if (c.consecutiveFailures > 0) {
      this.logger?.info({ failures: c.consecutiveFailures, outageMs: Math.round(this.now() - this.outageStartedAt) }, 'store: write-behind flush recovered');
    }
    c.consecutiveFailures = 0;
    c.flushes++;
    c.rowsWritten += batch.length;
    c.lastFlushMs = ms;
    c.lastFlushRows = batch.length;
    if (this.overflowing && this.pending.size < this.maxPending / 2) this.overflowing = false;
  }

  private failed(err: unknown): void {
    const c = this.counters;
    c.failures++;
    c.consecutiveFailures++;
    // One line an outage, not one a retry.
    if (c.consecutiveFailures === 1) {
      this.outageStartedAt = this.now();
      this.logger?.error({ err, pending: this.pending.size }, 'store: write-behind flush failed; keeping changes and retrying with backoff');
    } else {
      this.logger?.debug({ err: (err as Error).message, failures: c.consecutiveFailures }, 'store: write-behind flush failed again');
    }
  }

  /** Takes up to `n` operations, oldest first. */
  private take(n: number): PendingOp[] {
    const out: PendingOp[] = [];
    for (const [id, op] of this.pending) {
      if (out.length >= n) break;
      out.push(op);
      this.pending.delete(id);
    }
    if (this.pending.size === 0) this.pendingSince = undefined;
    return out;
  }

  /** Puts back what a failed flush did not write, unless a newer operation for the key came meanwhile. */
  private restore(batch: readonly PendingOp[], done: ReadonlySet<PendingOp>): void {
    const newer = this.pending;
    this.pending = new Map();
    // Retried with backoff (arm): their window is past.
    this.pendingSince ??= this.now();
    for (const op of batch) {
      if (!done.has(op)) this.pending.set(`${op.kind}\u0000${op.parts.join('\u0000')}`, op);
    }
    // Older first, as they were; a newer operation replaces a restored one in its place.
    for (const [id, op] of newer) this.pending.set(id, op);
  }

  private async writeBatch(tx: Queryable, batch: readonly PendingOp[]): Promise<void> {
    for (const [kind, shape] of this.shapes) {
      const upserts: PendingOp[] = [];
      const deletes: (readonly string[])[] = [];
      for (const op of batch) {
        if (op.kind !== kind) continue;
        if (op.record === undefined) deletes.push(op.parts);
        else upserts.push(op);
      }
      for (let i = 0; i < upserts.length; i += this.rowsPerStatement) {
        // Converted a statement at a time: the SIP thread never converts a whole flush at once.
        const chunk: (readonly (string | number | null)[])[] = [];
        for (const op of upserts.slice(i, i + this.rowsPerStatement)) {
          const row = this.rowOf(op);
          if (row) chunk.push(row);
        }
        if (chunk.length === 0) continue;
        await tx.query(this.upsertSql(kind, shape), this.params(shape.columns.length, chunk));
      }
      for (let i = 0; i < deletes.length; i += this.rowsPerStatement) {
        const chunk = deletes.slice(i, i + this.rowsPerStatement);
        await tx.query(this.deleteSql(kind, shape), this.params(shape.keyColumns.length, chunk));
      }
    }
  }

  private async writeOneByOne(batch: readonly PendingOp[], done: Set<PendingOp>): Promise<void> {
    for (const op of batch) {
      const shape = this.shapes.get(op.kind)!;
      try {
        const row = op.record === undefined ? undefined : this.rowOf(op);
        if (row) await this.db.query(this.upsertSql(op.kind, shape), this.params(row.length, [row]));
        else if (op.record === undefined) await this.db.query(this.deleteSql(op.kind, shape), this.params(op.parts.length, [op.parts]));
      } catch (err) {
        if (!isDataError(err)) throw err;
        this.counters.dropped++;
        this.logger?.error({ err, kind: op.kind, key: op.parts }, 'store: write-behind change refused by the database; dropped');
      }
      done.add(op);
    }
  }

  /**
   * A statement's parameters for `rows`: on PostgreSQL one text[] a column, on SQLite one
   * JSON array of the rows; their number is fixed whatever the number of rows.
   */
  private params(columns: number, rows: ReadonlyArray<readonly (string | number | null)[]>): unknown[] {
    if (this.sqlite) return [JSON.stringify(rows)];
    const out: unknown[] = [];
    for (let c = 0; c < columns; c++) out.push(rows.map((row) => row[c]!));
    return out;
  }

  /** The op's row as SQL values, converted once; undefined (logged, dropped) when it cannot be. */
  private rowOf(op: PendingOp): readonly (string | number | null)[] | undefined {
    if (op.row) return op.row;
    const spec = this.specs[op.kind as keyof M & string];
    try {
      const values = spec.toRow(op.record as M[keyof M & string]['record']);
      if (values.length !== spec.columns.length) throw new Error(`toRow gave ${values.length} values for ${spec.columns.length} columns`);
      op.row = values.map((v, i) => (this.sqlite ? toSqliteJson : toSqlText)(v, spec.columns[i]!.type));
      return op.row;
    } catch (err) {
      this.counters.dropped++;
      this.logger?.error({ err, kind: op.kind, key: op.parts }, 'store: write-behind record cannot be converted; dropped');
      return undefined;
    }
  }

  private upsertSql(kind: string, shape: TableShape): string {
    const cacheKey = `${kind}\u0000upsert`;
    const cached = this.sqlCache.get(cacheKey);
    if (cached) return cached;
    const cols = shape.columns;
    const names = cols.map((c) => ident(c.name)).join(', ');
    const updates = cols.filter((c) => !shape.keyColumns.includes(c.name)).map((c) => `${ident(c.name)} = EXCLUDED.${ident(c.name)}`);
    const conflict = `ON CONFLICT (${shape.keyColumns.map(ident).join(', ')}) ` + (updates.length > 0 ? `DO UPDATE SET ${updates.join(', ')}` : 'DO NOTHING');
    // SQLite: `WHERE true` tells its parser that ON CONFLICT belongs to the INSERT, not to a join.
    const sql = this.sqlite
      ? `INSERT INTO ${ident(shape.table)} (${names}) ` +
        `SELECT ${cols.map((c, i) => (c.type === 'bytea' ? `unhex(r.value ->> ${i})` : `r.value ->> ${i}`)).join(', ')} ` +
        `FROM json_each($1) AS r WHERE true ${conflict}`
      : `INSERT INTO ${ident(shape.table)} (${names}) ` +
      `SELECT ${cols.map((c) => (c.type === 'text' ? `u.${ident(c.name)}` : `u.${ident(c.name)}::${c.type}`)).join(', ')} ` +
        `FROM unnest(${cols.map((_, i) => `$${i + 1}::text[]`).join(', ')}) AS u(${names}) ${conflict}`;
    this.sqlCache.set(cacheKey, sql);
    return sql;
  }

  private deleteSql(kind: string, shape: TableShape): string {
    const cacheKey = `${kind}\u0000delete`;
    const cached = this.sqlCache.get(cacheKey);
    if (cached) return cached;
    const keys = shape.keyColumns;
    const sql = this.sqlite
      ? `DELETE FROM ${ident(shape.table)} WHERE (${keys.map(ident).join(', ')}) IN (SELECT ${keys.map((_, i) => `r.value ->> ${i}`).join(', ')} FROM json_each($1) AS r)`
      : keys.length === 1
        ? `DELETE FROM ${ident(shape.table)} WHERE ${ident(keys[0]!)} = ANY($1::text[])`
        : `DELETE FROM ${ident(shape.table)} AS t USING unnest(${keys.map((_, i) => `$${i + 1}::text[]`).join(', ')}) AS d(${keys.map(ident).join(', ')}) ` +
          `WHERE ${keys.map((k) => `t.${ident(k)} = d.${ident(k)}`).join(' AND ')}`;
    this.sqlCache.set(cacheKey, sql);
    return sql;
  }
}

/** Table and column names come from code, never from input; quoting keeps keywords (view, state) safe. */
function ident(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
