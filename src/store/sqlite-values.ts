/**
 * How the store's values live in SQLite, which has no timestamptz, boolean, bytea, jsonb
 * or array types. Columns keep PostgreSQL's type names in the SQLite schema
 * (schemas/sql/*.sqlite.sql); the driver reads a column's declared type to give back
 * what the pg driver gives: Date, boolean, Buffer, parsed JSON, string[].
 *
 *   timestamptz       integer ms since the epoch (compared and ordered as numbers)
 *   boolean           0 / 1
 *   bytea             blob
 *   jsonb, text[]     JSON text
 */
import type { ColumnType } from './sql-text.js';

export type SqliteConverter = (value: unknown) => unknown;

/** A statement parameter as SQLite takes it. */
export function toSqliteParam(value: unknown): unknown {
  if (value === undefined) return null;
  if (value instanceof Date) return value.getTime();
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (value instanceof Uint8Array || value === null || typeof value !== 'object') return value;
  // Arrays (text[]) and objects (jsonb) as JSON text.
  return JSON.stringify(value);
}

/** The conversion a result column of declared type `declared` needs; undefined for none. */
export function fromSqliteColumn(declared: string | null): SqliteConverter | undefined {
  switch (declared?.toLowerCase()) {
    case 'timestamptz':
      return (v) => (typeof v === 'number' ? new Date(v) : v);
    case 'boolean':
      return (v) => (v === null ? null : v === 1 || v === 1n);
    case 'jsonb':
    case 'text[]':
      return (v) => (typeof v === 'string' ? JSON.parse(v) : v);
    default:
      return undefined;
  }
}

/**
 * A write-behind value as it travels in the JSON batch of an SQLite upsert
 * (write-behind.ts): bytea as hex (unhex() in SQL), the rest as the table keeps it.
 * TypeError for a value that does not fit, like toSqlText.
 */
export function toSqliteJson(value: unknown, type: ColumnType): string | number | null {
  if (value === null || value === undefined) return null;
  switch (type) {
    case 'text':
      if (typeof value === 'string') return value;
      break;
    case 'integer':
      if (typeof value === 'number' && Number.isSafeInteger(value)) return value;
      break;
    case 'double precision':
      if (typeof value === 'number' && Number.isFinite(value)) return value;
      break;
    case 'boolean':
      if (typeof value === 'boolean') return value ? 1 : 0;
      break;
    case 'timestamptz':
      if (value instanceof Date && Number.isFinite(value.getTime())) return value.getTime();
      break;
    case 'bytea':
      if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('hex');
      break;
    case 'jsonb':
      return JSON.stringify(value);
    case 'text[]':
      if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return JSON.stringify(value);
      break;
  }
  throw new TypeError(`store: ${value instanceof Date ? 'an invalid Date' : typeof value} is not a ${type} value`);
}
