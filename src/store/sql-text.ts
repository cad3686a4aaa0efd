/**
 * Values in PostgreSQL's text input form. The write-behind sends each column of a batch
 * as one text[] parameter and casts it back in SQL (INSERT ... SELECT FROM unnest): the
 * statement has as many parameters as the table has columns, whatever the row count,
 * and both drivers only ever serialize arrays of strings.
 */

export type ColumnType = 'text' | 'integer' | 'double precision' | 'boolean' | 'timestamptz' | 'bytea' | 'jsonb' | 'text[]';

/** `value` (null for SQL NULL) as text a `::type` cast reads back; TypeError for a value that does not fit. */
export function toSqlText(value: unknown, type: ColumnType): string | null {
  if (value === null || value === undefined) return null;
  switch (type) {
    case 'text':
      if (typeof value === 'string') return value;
      break;
    case 'integer':
      if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value);
      break;
    case 'double precision':
      if (typeof value === 'number') return String(value);
      break;
    case 'boolean':
      if (typeof value === 'boolean') return value ? 't' : 'f';
      break;
    case 'timestamptz':
      if (value instanceof Date && Number.isFinite(value.getTime())) return value.toISOString();
      break;
    case 'bytea':
      if (value instanceof Uint8Array) return `\\x${Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('hex')}`;
      break;
    case 'jsonb':
      return JSON.stringify(value);
    case 'text[]':
      if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return arrayLiteral(value as string[]);
      break;
  }
  throw new TypeError(`store: ${describe(value)} is not a ${type} value`);
}

/** `{"a","b \"q\""}`: every element quoted, so commas, braces and NULL-looking text stay text. */
function arrayLiteral(items: readonly string[]): string {
  return `{${items.map((s) => `"${s.replace(/[\\"]/g, '\\$&')}"`).join(',')}}`;
}

function describe(value: unknown): string {
  if (value instanceof Date) return 'an invalid Date';
  return typeof value === 'object' ? `a ${value?.constructor?.name ?? 'object'}` : `${typeof value} ${String(value)}`;
}
