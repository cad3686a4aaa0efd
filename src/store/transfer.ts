import { createReadStream, createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { dialectOf, type Database } from './database.js';
import { loadMigrations } from './migrations.js';
import { PUBLICATIONS_TABLE } from './repositories/publications.js';
import { REGISTRATIONS_TABLE } from './repositories/registrations.js';
import { SUBSCRIPTIONS_TABLE } from './repositories/subscriptions.js';
import type { ColumnSpec } from './write-behind.js';

/**
 * `simple-presence db export` / `db import`: the whole store as JSON lines, between any two
 * drivers (the embedded SQLite store to PostgreSQL when a user outgrows one machine).
 *
 *   {"format":"simple-presence-export","version":1,"schema":2}      first line: the schema it is of
 *   {"table":"accounts","row":{"domain":"example.com",...}}          one a row, tables in order
 *   {"end":true,"rows":1234}                                         last: a cut file is refused
 *
 * Values: timestamptz as ISO 8601 text, bytea as base64, jsonb as JSON, text[] as an array.
 */

export const EXPORT_FORMAT = 'simple-presence-export';
const VERSION = 1;
/** Rows read a statement (export) and written a statement (import: at most 32 columns × 100 parameters). */
const PAGE = 1000;
const ROWS_PER_INSERT = 100;

interface TransferTable {
  readonly table: string;
  /** Columns exported, in order. */
  readonly columns: readonly ColumnSpec[];
  /** The key the export pages by (keyset); `id` of stored_messages is read for order but not exported. */
  readonly key: readonly string[];
}

const text = (name: string): ColumnSpec => ({ name, type: 'text' });
const ts = (name: string): ColumnSpec => ({ name, type: 'timestamptz' });
const bool = (name: string): ColumnSpec => ({ name, type: 'boolean' });

/** Every table, in the order they are written (durable first; a table before those whose foreign keys name it). */
export const TRANSFER_TABLES: readonly TransferTable[] = [
  { table: 'accounts', key: ['domain', 'username'], columns: [text('domain'), text('username'), text('display_name'), text('ha1_md5'), text('ha1_sha256'), ts('created_at')] },
  {
    table: 'presence_rules',
    key: ['presentity', 'watcher'],
    columns: [text('presentity'), text('watcher'), text('action'), bool('hide_notes'), bool('hide_devices'), bool('basic_only'), ts('updated_at')],
  },
  { table: 'resource_lists', key: ['owner', 'name'], columns: [text('owner'), text('name'), text('display_name'), text('document'), ts('updated_at')] },
  // XCAP documents (schemas/sql/005): pres-rules copies, pidf-manipulation hard state.
  { table: 'xcap_documents', key: ['auid', 'owner', 'path'], columns: [text('auid'), text('owner'), text('path'), text('content'), text('etag'), ts('updated_at')] },
  {
    table: 'stored_messages',
    // Exported in id order, without the id: the importing database numbers them anew, in the same order.
    key: ['id'],
    columns: [
      text('message_id'),
      text('recipient'),
      text('sender'),
      text('from_header'),
      text('to_header'),
      text('call_id'),
      { name: 'cseq', type: 'integer' },
      text('content_type'),
      { name: 'headers', type: 'jsonb' },
      { name: 'body', type: 'bytea' },
      ts('received_at'),
      ts('expires_at'),
    ],
  },
  // Chat rooms (issue 22): a room before its members, bans and history (PostgreSQL's foreign keys).
  {
    table: 'rooms',
    key: ['uri'],
    columns: [text('uri'), text('owner'), text('topic'), bool('persistent'), bool('members_only'), ts('created_at')],
  },
  { table: 'room_members', key: ['room', 'member'], columns: [text('room'), text('member'), bool('cpim'), ts('joined_at')] },
  { table: 'room_bans', key: ['room', 'member'], columns: [text('room'), text('member'), text('banned_by'), ts('banned_at')] },
  {
    table: 'room_history',
    // In id order, without the id, as stored_messages.
    key: ['id'],
    columns: [text('room'), text('sender'), text('content_type'), { name: 'body', type: 'bytea' }, ts('received_at')],
  },
  { table: 'publications', key: PUBLICATIONS_TABLE.keyColumns, columns: PUBLICATIONS_TABLE.columns },
  { table: 'subscriptions', key: SUBSCRIPTIONS_TABLE.keyColumns, columns: SUBSCRIPTIONS_TABLE.columns },
  { table: 'registrations', key: REGISTRATIONS_TABLE.keyColumns, columns: REGISTRATIONS_TABLE.columns },
  { table: 'list_subscriptions', key: ['id'], columns: [text('id'), text('document'), bool('deflate'), bool('bare_content_ids')] },
];

export class TransferError extends Error {
  override name = 'TransferError';
}

/** The schema version this code writes and reads: its newest migration. */
function schemaVersion(db: Database): number {
  return Math.max(...loadMigrations(undefined, dialectOf(db)).map((m) => m.version));
}

function q(name: string): string {
  return `"${name}"`;
}

function toJson(value: unknown, type: ColumnSpec['type']): unknown {
  if (value === null || value === undefined) return null;
  if (type === 'timestamptz') return (value as Date).toISOString();
  if (type === 'bytea') return Buffer.from(value as Uint8Array).toString('base64');
  return value;
}

function fromJson(value: unknown, type: ColumnSpec['type'], where: string): unknown {
  if (value === null || value === undefined) return null;
  switch (type) {
    case 'timestamptz': {
      const d = new Date(value as string);
      if (typeof value !== 'string' || !Number.isFinite(d.getTime())) throw new TransferError(`${where}: not a time`);
      return d;
    }
    case 'bytea':
      if (typeof value !== 'string') throw new TransferError(`${where}: not base64`);
      return Buffer.from(value, 'base64');
    case 'jsonb':
      return JSON.stringify(value);
    default:
      return value;
  }
}

/** Writes the whole store as JSON lines through `write` (which may wait); resolves with the rows written. */
export async function exportStore(db: Database, write: (line: string) => Promise<void> | void): Promise<number> {
  await write(JSON.stringify({ format: EXPORT_FORMAT, version: VERSION, schema: schemaVersion(db) }));
  let rows = 0;
  for (const t of TRANSFER_TABLES) {
    const cols = [...t.columns.map((c) => c.name), ...t.key.filter((k) => !t.columns.some((c) => c.name === k))];
    let after: unknown[] | undefined;
    for (;;) {
      const params: unknown[] = after ? [...after] : [];
      const where = after ? `WHERE (${t.key.map(q).join(', ')}) > (${t.key.map((_, i) => `$${i + 1}`).join(', ')})` : '';
      params.push(PAGE);
      const res = await db.query<Record<string, unknown>>(
        `SELECT ${cols.map(q).join(', ')} FROM ${q(t.table)} ${where} ORDER BY ${t.key.map(q).join(', ')} LIMIT $${params.length}`,
        params,
      );
      for (const r of res.rows) {
        const row: Record<string, unknown> = {};
        for (const c of t.columns) row[c.name] = toJson(r[c.name], c.type);
        await write(JSON.stringify({ table: t.table, row }));
        rows++;
      }
      if (res.rows.length < PAGE) break;
      const last = res.rows[res.rows.length - 1]!;
      after = t.key.map((k) => last[k]);
    }
  }
  await write(JSON.stringify({ end: true, rows }));
  return rows;
}

/**
 * Reads an export (`file`) into `db`, which must be migrated and hold no rows in any of
 * the tables: all in one transaction, so a bad line leaves the database as it was.
 */
export async function importStore(db: Database, file: string): Promise<number> {
  for (const t of TRANSFER_TABLES) {
    const res = await db.query(`SELECT 1 FROM ${q(t.table)} LIMIT 1`);
    if (res.rows.length > 0) throw new TransferError(`the target store is not empty (table ${t.table} has rows); import into a new one`);
  }
  const byName = new Map(TRANSFER_TABLES.map((t) => [t.table, t]));
  return db.transaction(async (tx) => {
    let n = 0;
    let rows = 0;
    let ended = false;
    let batch: { table: TransferTable; values: unknown[][] } | undefined;
    const flush = async (): Promise<void> => {
      if (!batch || batch.values.length === 0) return;
      const { table, values } = batch;
      const width = table.columns.length;
      const tuples = values.map((_, r) => `(${table.columns.map((__, c) => `$${r * width + c + 1}`).join(', ')})`);
      await tx.query(`INSERT INTO ${q(table.table)} (${table.columns.map((c) => q(c.name)).join(', ')}) VALUES ${tuples.join(', ')}`, values.flat());
      batch = undefined;
    };
    // Made here and iterated at once: readline drops the lines it reads before iteration starts.
    const lines = createInterface({ input: createReadStream(file, { encoding: 'utf8' }), crlfDelay: Infinity });
    for await (const line of lines) {
      n++;
      if (line.trim() === '') continue;
      let rec: Record<string, unknown>;
      try {
        rec = JSON.parse(line) as Record<string, unknown>;
      } catch {
        throw new TransferError(`line ${n}: not JSON`);
      }
      if (n === 1) {
        if (rec.format !== EXPORT_FORMAT || rec.version !== VERSION) throw new TransferError(`line 1: not a ${EXPORT_FORMAT} version ${VERSION} file`);
        if (typeof rec.schema !== 'number' || rec.schema > schemaVersion(db)) {
          throw new TransferError(`line 1: the export is of schema ${String(rec.schema)}, newer than this release's ${schemaVersion(db)}`);
        }
        continue;
      }
      if (ended) throw new TransferError(`line ${n}: after the end line`);
      if (rec.end === true) {
        if (rec.rows !== rows) throw new TransferError(`line ${n}: the export says ${String(rec.rows)} rows, the file has ${rows}`);
        ended = true;
        continue;
      }
      const table = byName.get(rec.table as string);
      const row = rec.row;
      if (!table || typeof row !== 'object' || row === null) throw new TransferError(`line ${n}: not a row of a known table`);
      if (batch && (batch.table !== table || batch.values.length >= ROWS_PER_INSERT)) await flush();
      batch ??= { table, values: [] };
      batch.values.push(table.columns.map((c) => fromJson((row as Record<string, unknown>)[c.name], c.type, `line ${n}, ${table.table}.${c.name}`)));
      rows++;
    }
    if (n === 0) throw new TransferError('the file is empty');
    if (!ended) throw new TransferError('the file ends without its end line (cut short?)');
    await flush();
    return rows;
  });
}

/** exportStore into a new file (never over an existing one); resolves with the rows written. */
export async function exportToFile(db: Database, file: string): Promise<number> {
  const out = createWriteStream(file, { flags: 'wx' });
  await once(out, 'open');
  try {
    const rows = await exportStore(db, async (line) => {
      if (!out.write(`${line}\n`)) await once(out, 'drain');
    });
    out.end();
    await once(out, 'finish');
    return rows;
  } catch (err) {
    out.destroy();
    throw err;
  }
}
