/**
 * Conversions between record fields and SQL values, shared by the repositories. Both
 * drivers give timestamptz as Date, bytea as Buffer (the embedded drivers convert),
 * integer as number, text[] as string[] and jsonb parsed.
 */
import { dialectOf, type Database, type WholeTableReader } from './database.js';

/** Wall-clock ms to a timestamptz parameter; a non-finite time is a bug upstream, caught here. */
export function toDate(ms: number): Date {
  if (!Number.isFinite(ms)) throw new RangeError(`store: time ${ms} is not a finite number of ms`);
  return new Date(ms);
}

export function toMs(d: Date): number {
  return d.getTime();
}

/** A text column that must hold one of a fixed set (CHECK constraints keep it so). */
export function oneOf<T extends string>(value: string, allowed: readonly T[], what: string): T {
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new Error(`store: unexpected ${what} ${JSON.stringify(value)} in the database`);
}

/** A jsonb array of [name, value] pairs (header fields, URI parameters), checked on the way out. */
export function nameValuePairs(value: unknown, what: string): Array<[string, string | null]> {
  if (!Array.isArray(value)) throw new Error(`store: ${what} is not a JSON array`);
  return value.map((p: unknown) => {
    if (!Array.isArray(p) || p.length !== 2 || typeof p[0] !== 'string' || !(typeof p[1] === 'string' || p[1] === null)) {
      throw new Error(`store: ${what} holds a malformed pair`);
    }
    return [p[0], p[1]];
  });
}

/** Like nameValuePairs, every value present. */
export function namePairs(value: unknown, what: string): Array<[string, string]> {
  return nameValuePairs(value, what).map(([n, v]) => {
    if (v === null) throw new Error(`store: ${what} holds a pair without a value`);
    return [n, v];
  });
}

/** null becomes undefined, for optional record fields. */
export function opt<T>(value: T | null): T | undefined {
  return value === null ? undefined : value;
}

/** Rows a statement when a whole table is read at start-up (loadLive). */
export const PAGE_ROWS = 2000;

/**
 * `SELECT columns FROM table WHERE where ORDER BY keys` read a page at a time (keyset: each
 * page after the last row's keys), each row turned into a record by `map` as its page arrives.
 * An embedded store builds a statement's rows on its own thread and copies them across at
 * once: 100,000 subscriptions in one statement cost hundreds of MB there, kept by the allocator
 * afterwards; a page costs a few MB. Mapped page by page, the rows die young instead of all
 * 200,000 of a start-up outliving the young generation (whose collections were a third of it).
 * `keys` must identify a row and be the table's primary key: each page is then a range of its
 * index, where other keys made the engine sort every remaining row again for every page
 * (quadratic: 100,000 rows, 50 sorts). On SQLite the pages follow the table's rowid instead (the
 * tables read so are rowid tables): a walk of the table's own b-tree, where the primary key's
 * index costs a second lookup a row (100,000 subscriptions: 570-840 -> 370-490 ms of stepping).
 */
export async function selectPaged<R extends Record<string, unknown>, T>(db: Pick<Database, 'query' | 'driver'>, q: PagedSelect<R, T>): Promise<T[]> {
  const out: T[] = [];
  await forEachPage(db, q, (page) => {
    for (const t of page) out.push(t);
  });
  return out;
}

/** What selectPaged reads: `SELECT from.columns FROM from.table WHERE where`, rows made records by `map`. */
export interface PagedSelect<R, T> {
  readonly from: { readonly table: string; readonly columns: readonly string[] };
  readonly where: string;
  readonly params: readonly unknown[];
  /** The table's primary key (PostgreSQL's pages; SQLite pages by rowid). */
  readonly keys: readonly string[];
  readonly map: (row: R) => T;
}

/** selectPaged handing each page's records to `each` as it comes, never holding them all; resolves with the count. */
export async function forEachPage<R extends Record<string, unknown>, T>(
  db: Pick<Database, 'query' | 'driver'>,
  { from, where, params, keys, map }: PagedSelect<R, T>,
  each: (page: T[]) => void,
): Promise<number> {
  const whole = (db as Partial<WholeTableReader>).readWholeTable;
  if (whole) {
    // One statement in one snapshot, on this thread: no page needs to know where the last ended.
    const sql = `SELECT ${from.columns.map((c) => `"${c}"`).join(', ')} FROM ${from.table} WHERE ${where} ORDER BY rowid`;
    return whole<R>(sql, params, PAGE_ROWS, (rows) => each(rows.map(map)));
  }
  let count = 0;
  const pageKeys = dialectOf(db) === 'sqlite' ? ['rowid'] : keys;
  const columns = [...from.columns.map((c) => `"${c}"`), ...(pageKeys === keys ? [] : ['rowid'])].join(', ');
  const order = pageKeys.map((k) => `"${k}"`).join(', ');
  let after: unknown[] | undefined;
  for (;;) {
    const p = [...params, ...(after ?? [])];
    const next = after ? ` AND (${order}) > (${pageKeys.map((_, i) => `$${params.length + i + 1}`).join(', ')})` : '';
    p.push(PAGE_ROWS);
    const res = await db.query<R>(`SELECT ${columns} FROM ${from.table} WHERE ${where}${next} ORDER BY ${order} LIMIT $${p.length}`, p);
    each(res.rows.map(map));
    count += res.rows.length;
    if (res.rows.length < PAGE_ROWS) return count;
    const last = res.rows[res.rows.length - 1]!;
    after = pageKeys.map((k) => last[k]);
  }
}
