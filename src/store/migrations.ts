import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { dialectOf, type Database, type Dialect, type Queryable } from './database.js';

/**
 * Numbered SQL files (schemas/sql/NNN_name.sql), applied in order at start-up, each in
 * its own transaction, and recorded with a checksum in schema_migrations. One file serves
 * every driver where the SQL is the same; where it is not, a version has a pair instead,
 * NNN_name.postgres.sql (PostgreSQL, PGlite) and NNN_name.sqlite.sql. An applied file must
 * never change: write a new one instead.
 */

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly file: string;
  readonly sql: string;
  /** SHA-256 (hex) of the file, line endings made LF so a checkout on Windows matches. */
  readonly checksum: string;
}

export interface AppliedMigration {
  readonly version: number;
  readonly name: string;
  readonly appliedAtMs: number;
  readonly checksum: string;
}

export interface MigrationStatus {
  readonly applied: readonly AppliedMigration[];
  readonly pending: readonly Migration[];
  /** Applied versions whose file differs from what was applied. */
  readonly changed: readonly AppliedMigration[];
  /** Applied versions this code has no file for (a newer release ran here). */
  readonly unknown: readonly AppliedMigration[];
}

export interface MigrateOptions {
  /** Folder of the SQL files; schemas/sql of the package by default. */
  readonly dir?: string;
  readonly logger?: Logger;
}

export class MigrationError extends Error {
  override name = 'MigrationError';
}

const FILE_RE = /^(\d{3,})_([A-Za-z0-9_-]+)(?:\.(postgres|sqlite))?\.sql$/;

/** schemas/sql of the package: found by walking up to the folder holding package.json (src/ under tsx, dist/src/ when built). */
export function defaultMigrationsDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    // dist/ may hold a copied package.json of its own; the root is the one beside schemas/sql.
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'schemas', 'sql'))) return join(dir, 'schemas', 'sql');
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  throw new MigrationError(`schemas/sql not found above ${fileURLToPath(import.meta.url)}`);
}

/** The migration files of `dir` for `dialect`, in version order. */
export function loadMigrations(dir = defaultMigrationsDir(), dialect: Dialect = 'postgres'): Migration[] {
  const out: Migration[] = [];
  for (const file of readdirSync(dir).sort()) {
    if (!file.endsWith('.sql')) continue;
    const m = FILE_RE.exec(file);
    // A misnamed file would be skipped silently otherwise.
    if (!m) throw new MigrationError(`migration file ${join(dir, file)} is not named NNN_name.sql (or NNN_name.postgres.sql, NNN_name.sqlite.sql)`);
    if (m[3] !== undefined && m[3] !== dialect) continue;
    const sql = readFileSync(join(dir, file), 'utf8').replace(/\r\n/g, '\n');
    out.push({ version: Number(m[1]), name: m[2]!, file, sql, checksum: createHash('sha256').update(sql).digest('hex') });
  }
  out.sort((a, b) => a.version - b.version);
  for (let i = 1; i < out.length; i++) {
    if (out[i]!.version === out[i - 1]!.version) {
      throw new MigrationError(`migrations ${out[i - 1]!.file} and ${out[i]!.file} have the same version`);
    }
  }
  return out;
}

/** Applies the pending migrations in order; resolves with those applied now. */
export async function migrate(db: Database, options: MigrateOptions = {}): Promise<Migration[]> {
  const files = loadMigrations(options.dir, dialectOf(db));
  await ensureTable(db);
  const status = await statusOf(db, files);
  refuseInconsistent(status);
  const applied: Migration[] = [];
  for (const m of status.pending) {
    const t0 = performance.now();
    const done = await db.transaction(async (tx) => {
      await lockMigrations(tx, db);
      // Another process may have applied it while we waited for the lock.
      const seen = await tx.query<{ checksum: string }>('SELECT checksum FROM schema_migrations WHERE version = $1', [m.version]);
      if (seen.rows.length > 0) {
        if (seen.rows[0]!.checksum !== m.checksum) throw changedError(m.file);
        return false;
      }
      await tx.exec(m.sql);
      await tx.query('INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)', [m.version, m.name, m.checksum]);
      return true;
    });
    if (done) {
      applied.push(m);
      options.logger?.info({ version: m.version, file: m.file, ms: Math.round(performance.now() - t0) }, 'store: migration applied');
    }
  }
  return applied;
}

/** What is applied and what is pending (for `simple-presence db status`); writes nothing. */
export async function migrationStatus(db: Database, options: MigrateOptions = {}): Promise<MigrationStatus> {
  return statusOf(db, loadMigrations(options.dir, dialectOf(db)));
}

async function statusOf(db: Database, files: readonly Migration[]): Promise<MigrationStatus> {
  const table = await db.query<{ t: string | null }>(
    dialectOf(db) === 'sqlite'
      ? "SELECT name AS t FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
      : "SELECT to_regclass('schema_migrations')::text AS t",
  );
  const res =
    table.rows[0]?.t == null
      ? { rows: [] } // a database never migrated
      : await db.query<{ version: number; name: string; applied_at: Date; checksum: string }>(
          'SELECT version, name, applied_at, checksum FROM schema_migrations ORDER BY version',
        );
  const applied = res.rows.map((r) => ({ version: r.version, name: r.name, appliedAtMs: r.applied_at.getTime(), checksum: r.checksum }));
  const byVersion = new Map(files.map((f) => [f.version, f]));
  const done = new Set(applied.map((a) => a.version));
  return {
    applied,
    pending: files.filter((f) => !done.has(f.version)),
    changed: applied.filter((a) => byVersion.has(a.version) && byVersion.get(a.version)!.checksum !== a.checksum),
    unknown: applied.filter((a) => !byVersion.has(a.version)),
  };
}

function refuseInconsistent(status: MigrationStatus): void {
  const changed = status.changed[0];
  if (changed) throw changedError(`${String(changed.version).padStart(3, '0')}_${changed.name}.sql`);
  const unknown = status.unknown[0];
  if (unknown) {
    throw new MigrationError(
      `the database has migration ${unknown.version} (${unknown.name}) which this version of simple-presence does not know; ` +
        'run the release that applied it, or restore a matching database',
    );
  }
}

function changedError(file: string): MigrationError {
  return new MigrationError(`migration ${file} was changed after it was applied (checksum differs); add a new migration instead of editing it`);
}

async function ensureTable(db: Database): Promise<void> {
  const sqlite = dialectOf(db) === 'sqlite';
  await db.transaction(async (tx) => {
    // Two servers starting together on one database must not both create it.
    await lockMigrations(tx, db);
    await tx.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version integer PRIMARY KEY,
      name text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT ${sqlite ? "(CAST(unixepoch('subsec') * 1000 AS INTEGER))" : 'now()'},
      checksum text NOT NULL
    )`);
  });
}

/**
 * A transaction-scoped advisory lock per schema, so concurrent starts migrate one at a
 * time. SQLite needs none: its data directory is one process's (data-dir-lock.ts).
 */
async function lockMigrations(tx: Queryable, db: Database): Promise<void> {
  if (dialectOf(db) === 'sqlite') return;
  await tx.query("SELECT pg_advisory_xact_lock(hashtext('simple-presence migrations ' || coalesce(current_schema(), '')))");
}
