/**
 * `npm run bench:store`: write-behind throughput, rows a second, of each store: 10,000
 * subscription records (32 columns, dialog included) flushed as inserts, then all updated,
 * 500 rows a statement (the defaults). Embedded stores in a fresh data directory on disk, on
 * their own thread as the server runs them: SQLite (the default) and PGlite (the embedded
 * store of earlier releases, for comparison); PostgreSQL too when DATABASE_URL is set.
 * The best of three rounds.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { Database } from '../src/store/database.js';
import { migrate } from '../src/store/migrations.js';
import { openPg } from '../src/store/pg-driver.js';
import { openPglite } from '../src/store/pglite-driver.js';
import { createSoftStateWriter } from '../src/store/soft-state.js';
import { openSqlite } from '../src/store/sqlite-driver.js';
import { subscription } from '../test/store/fixtures.js';

const N = 10_000;
const ROUNDS = 3;
const logger = pino({ level: 'silent' });

async function admin(url: string, sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

async function measure(db: Database): Promise<{ insert: number; update: number }> {
  await migrate(db, { logger });
  const best = { insert: 0, update: 0 };
  for (let round = 0; round < ROUNDS; round++) {
    await db.query('DELETE FROM subscriptions');
    const wb = createSoftStateWriter(db, { schedule: () => () => undefined, rowsPerStatement: 500, rowsPerFlush: N, maxPending: N });
    const records = Array.from({ length: N }, (_, i) => subscription(i));
    for (const phase of ['insert', 'update'] as const) {
      for (const r of records) wb.put('subscription', r.id, phase === 'insert' ? r : { ...r, documentVersion: r.documentVersion + 1 });
      const t0 = performance.now();
      await wb.flush();
      best[phase] = Math.max(best[phase], Math.round(N / ((performance.now() - t0) / 1000)));
    }
  }
  return best;
}

const stores: Array<{ name: string; open: () => Promise<{ db: Database; done: () => Promise<void> }> }> = [
  {
    name: 'SQLite (embedded, default)',
    open: async () => {
      const dir = mkdtempSync(join(tmpdir(), 'sp-bench-store-'));
      const db = await openSqlite({ dataDir: dir, logger });
      return { db, done: async () => (await db.close(), rmSync(dir, { recursive: true, force: true })) };
    },
  },
  {
    name: 'PGlite (embedded, before)',
    open: async () => {
      const dir = mkdtempSync(join(tmpdir(), 'sp-bench-store-'));
      const db = await openPglite({ dataDir: dir, logger });
      return { db, done: async () => (await db.close(), rmSync(dir, { recursive: true, force: true })) };
    },
  },
];
const url = process.env.DATABASE_URL;
if (url) {
  stores.push({
    name: 'PostgreSQL',
    open: async () => {
      const schema = `sp_bench_${randomBytes(4).toString('hex')}`;
      await admin(url, `CREATE SCHEMA ${schema}`);
      const db = openPg({ url, schema, logger });
      return { db, done: async () => (await db.close(), await admin(url, `DROP SCHEMA ${schema} CASCADE`)) };
    },
  });
}

console.log(`write-behind: ${N.toLocaleString('en')} subscriptions, 500 rows a statement, best of ${ROUNDS}`);
for (const s of stores) {
  const { db, done } = await s.open();
  try {
    const r = await measure(db);
    console.log(`  ${s.name.padEnd(28)} insert ${r.insert.toLocaleString('en').padStart(7)} rows/s   update ${r.update.toLocaleString('en').padStart(7)} rows/s`);
  } finally {
    await done();
  }
}
