import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pg from 'pg';
import { pino, type Logger } from 'pino';
import { dialectOf, type Database, type Queryable, type QueryResult } from '../../src/store/database.js';
import { openPg } from '../../src/store/pg-driver.js';
import { openSqlite } from '../../src/store/sqlite-driver.js';

/** Set by CI (and by hand): postgres://postgres@127.0.0.1:5432/test */
export const DATABASE_URL = process.env.DATABASE_URL;

export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

/** A logger whose lines the test can read. */
export function captureLogger(): { logger: Logger; lines: Array<{ level: number; msg: string } & Record<string, unknown>> } {
  const lines: Array<{ level: number; msg: string } & Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line) as { level: number; msg: string });
      cb();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines };
}

export interface TestDb {
  readonly db: Database;
  /** The PostgreSQL schema, when on the pg driver. */
  readonly schema?: string;
  cleanup(): Promise<void>;
}

export interface TestTarget {
  readonly name: 'sqlite' | 'pg';
  open(): Promise<TestDb>;
}

export function randomSchema(): string {
  return `sp_test_${randomBytes(6).toString('hex')}`;
}

/** A database in a schema of its own on the real server, dropped (CASCADE) by cleanup. */
export async function openTestPg(url: string, options: { schema?: string; logger?: Logger } = {}): Promise<TestDb> {
  const schema = options.schema ?? randomSchema();
  await adminQuery(url, `CREATE SCHEMA ${schema}`);
  const db = openPg({ url, schema, logger: options.logger ?? silentLogger() });
  return {
    db,
    schema,
    cleanup: async () => {
      await db.close();
      await adminQuery(url, `DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    },
  };
}

export async function adminQuery(url: string, sql: string, params: unknown[] = []): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await client.query(sql, params);
  } finally {
    await client.end();
  }
}

/**
 * Every driver the server runs on: in-memory SQLite (the embedded default) always;
 * PostgreSQL too when DATABASE_URL is set. (PGlite, kept only to convert an earlier
 * release's data directory, has tests of its own in drivers.test.ts.)
 */
export const TARGETS: readonly TestTarget[] = [
  {
    name: 'sqlite',
    open: async () => {
      const db = await openSqlite();
      return { db, cleanup: () => db.close() };
    },
  },
  ...(DATABASE_URL ? [{ name: 'pg' as const, open: () => openTestPg(DATABASE_URL) }] : []),
];

/**
 * The embedded store in a data directory, as the server runs it: start-up reads of whole
 * tables go through its own read-only connection on the calling thread (readWholeTable),
 * where the in-memory store of TARGETS reads through the store's thread.
 */
export const SQLITE_DATA_DIR_TARGET: TestTarget = {
  name: 'sqlite',
  open: async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sp-store-'));
    const db = await openSqlite({ dataDir: dir });
    return {
      db,
      cleanup: async () => {
        await db.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
};

/** Whether `table` exists in the database's own schema (either dialect). */
export async function tableExists(db: Database, table: string): Promise<boolean> {
  const res =
    dialectOf(db) === 'sqlite'
      ? await db.query("SELECT name FROM sqlite_master WHERE type = 'table' AND name = $1", [table])
      : await db.query('SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = $1', [table]);
  return res.rows.length > 0;
}

/** The rows of `table` (either dialect: count(*) is bigint, text, on pg). */
export async function rowCount(db: Database, table: string): Promise<number> {
  return (await db.query<{ n: number }>(`SELECT CAST(count(*) AS integer) AS n FROM ${table}`)).rows[0]!.n;
}

/** A database that fails while `down` (as if the server were unreachable) and counts what runs. */
export class FlakyDatabase implements Database {
  down = false;
  /** Statements run (first word of each, upper-case), transactions included. */
  readonly statements: Array<{ verb: string; params: number; sql: string }> = [];
  transactions = 0;

  constructor(private readonly inner: Database) {}

  get driver() {
    return this.inner.driver;
  }

  query<R>(sql: string, params?: unknown[]): Promise<QueryResult<R>> {
    this.fail();
    this.record(sql, params);
    return this.inner.query<R>(sql, params);
  }

  exec(sql: string): Promise<void> {
    this.fail();
    return this.inner.exec(sql);
  }

  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    this.fail();
    this.transactions++;
    return this.inner.transaction((tx) =>
      fn({
        query: <R>(sql: string, params?: unknown[]) => {
          this.record(sql, params);
          return tx.query<R>(sql, params);
        },
        exec: (sql: string) => tx.exec(sql),
      }),
    );
  }

  ping(): Promise<boolean> {
    return this.down ? Promise.resolve(false) : this.inner.ping();
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  private fail(): void {
    if (this.down) throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
  }

  private record(sql: string, params?: unknown[]): void {
    this.statements.push({ verb: sql.trim().split(/\s+/)[0]!.toUpperCase(), params: params?.length ?? 0, sql });
  }
}

/** Resolves once `cond` holds, checking after each turn of the event loop (no sleeping). */
export async function until(cond: () => boolean, maxMs = 5000): Promise<void> {
  const end = Date.now() + maxMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not reached');
    await new Promise((r) => setImmediate(r));
  }
}

/**
 * A TCP proxy to the real server that can be taken down (listener closed, live
 * connections cut) and brought back on the same port: a database outage on demand.
 */
export class OutageProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  port = 0;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  async up(): Promise<void> {
    const server = createServer((client) => {
      const upstream = connect(this.targetPort, this.targetHost);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  async down(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** `url` with host and port replaced by the proxy's. */
  urlFor(url: string): string {
    const u = new URL(url);
    u.hostname = '127.0.0.1';
    u.port = String(this.port);
    return u.toString();
  }
}
