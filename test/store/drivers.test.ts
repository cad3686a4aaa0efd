import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataDirLock, LOCK_FILE } from '../../src/store/data-dir-lock.js';
import { StoreOpenError, dialectOf, isUniqueViolation, type Database } from '../../src/store/database.js';
import { openDatabase, openStore } from '../../src/store/open-store.js';
import { loadMigrations } from '../../src/store/migrations.js';
import { EPOCH, publication } from './fixtures.js';
import { openPg } from '../../src/store/pg-driver.js';
import { SQLITE_FILE, openSqlite } from '../../src/store/sqlite-driver.js';
import { DATABASE_URL, TARGETS, adminQuery, captureLogger, openTestPg, randomSchema, silentLogger, until, type TestDb } from './helpers.js';

/** A pid that was just alive and is not any more. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', '']);
  return child.pid!;
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

for (const target of TARGETS) {
  describe(`store: ${target.name} driver`, function () {
    this.timeout(30_000);
    let t: TestDb;

    before(async () => {
      t = await target.open();
      const serial = dialectOf(t.db) === 'sqlite' ? 'integer PRIMARY KEY AUTOINCREMENT' : 'serial';
      await t.db.exec(`CREATE TABLE items (id integer PRIMARY KEY, note text, data bytea); CREATE TABLE log (n ${serial}, who text)`);
    });

    after(async () => {
      await t?.cleanup();
    });

    it('says which driver it is and answers ping', async () => {
      expect(t.db.driver).to.equal(target.name);
      expect(await t.db.ping()).to.equal(true);
    });

    it('runs parameterized statements and reports rowCount', async () => {
      const ins = await t.db.query('INSERT INTO items (id, note, data) VALUES ($1, $2, $3), ($4, $5, $6)', [1, 'a', Buffer.from([0, 1, 255]), 2, 'b', null]);
      expect(ins.rowCount).to.equal(2);
      const sel = await t.db.query<{ id: number; note: string; data: Buffer | null }>('SELECT id, note, data FROM items ORDER BY id');
      expect(sel.rowCount).to.equal(2);
      expect(Buffer.isBuffer(sel.rows[0]!.data)).to.equal(true);
      expect([...sel.rows[0]!.data!]).to.deep.equal([0, 1, 255]);
      expect((await t.db.query('UPDATE items SET note = $1', ['z'])).rowCount).to.equal(2);
    });

    it('gives rows as plain objects by column name, whatever the names (one named __proto__ too)', async () => {
      await t.db.query('INSERT INTO items (id, note, data) VALUES ($1, $2, $3)', [7, 'x', null]);
      const odd = await t.db.query<Record<string, unknown>>('SELECT id AS "a b", note AS "__proto__", note AS "constructor", data FROM items WHERE id = $1', [7]);
      const row = odd.rows[0]!;
      expect(Object.getPrototypeOf(row)).to.equal(Object.prototype);
      expect(Object.keys(row)).to.deep.equal(['a b', '__proto__', 'constructor', 'data']);
      expect(Object.getOwnPropertyDescriptor(row, '__proto__')?.value).to.equal('x');
      expect(row['a b']).to.equal(7);
      expect(row.data).to.equal(null);
      await t.db.query('DELETE FROM items WHERE id = $1', [7]);
    });

    it('commits a transaction, and rolls it back on a throw', async () => {
      const n = await t.db.transaction(async (tx) => {
        await tx.query('INSERT INTO items (id, note) VALUES ($1, $2)', [3, 'c']);
        return (await tx.query<{ n: number }>('SELECT CAST(count(*) AS integer) AS n FROM items')).rows[0]!.n;
      });
      expect(n).to.equal(3);
      const err = await rejection(
        t.db.transaction(async (tx) => {
          await tx.query('INSERT INTO items (id, note) VALUES ($1, $2)', [4, 'd']);
          await tx.query('INSERT INTO items (id, note) VALUES ($1, $2)', [1, 'dup']);
        }),
      );
      expect(isUniqueViolation(err)).to.equal(true);
      expect((await t.db.query('SELECT id FROM items WHERE id = 4')).rowCount).to.equal(0);
      // The connection is usable after the rollback.
      expect(await t.db.ping()).to.equal(true);
    });

    it('keeps concurrent transactions apart: no statement of one inside another', async () => {
      await t.db.exec('DELETE FROM log');
      const turn = () => new Promise((r) => setImmediate(r));
      const run = (who: string, fail: boolean) =>
        t.db.transaction(async (tx) => {
          for (let i = 0; i < 3; i++) {
            await tx.query('INSERT INTO log (who) VALUES ($1)', [who]);
            await turn(); // give the others every chance to interleave
          }
          if (fail) throw new Error(`${who} gives up`);
          return who;
        });
      const results = await Promise.allSettled([run('a', false), run('b', true), run('c', false), t.db.query('INSERT INTO log (who) VALUES ($1)', ['q'])]);
      expect(results.map((r) => r.status)).to.deep.equal(['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
      const rows = (await t.db.query<{ who: string }>('SELECT who FROM log ORDER BY n')).rows.map((r) => r.who).join('');
      if (target.name !== 'pg') {
        // One session: whole transactions, strictly in arrival order; b's rows rolled back.
        expect(rows).to.equal('aaacccq');
      } else {
        // Connections of their own run side by side; what each committed is all there, b's is gone.
        expect([...rows].sort().join('')).to.equal('aaacccq');
      }
    });
  });
}

describe('store: embedded (one session) specifics', function () {
  this.timeout(30_000);
  let db: Database;

  before(async () => {
    db = await openSqlite();
  });

  after(async () => {
    await db?.close();
  });

  it('refuses a statement on the database inside its own transaction (it would deadlock)', async () => {
    const err = await rejection(db.transaction(async () => db.query('SELECT 1')));
    expect(err.message).to.match(/inside one of its transactions/);
    // ...but work scheduled from a finished transaction may use the database.
    let later: Promise<unknown> | undefined;
    await db.transaction(async () => {
      later = new Promise((resolve) => setImmediate(resolve)).then(() => db.query('SELECT 1'));
    });
    expect((await later) as { rowCount: number }).to.include({ rowCount: 1 });
  });

  it('closes once, after queued statements, and refuses statements afterwards', async () => {
    const own = await openSqlite();
    const pending = own.query<{ x: number }>('SELECT 42 AS x');
    const closing = own.close();
    expect((await pending).rows).to.deep.equal([{ x: 42 }]);
    await Promise.all([closing, own.close()]);
    expect((await rejection(own.query('SELECT 1'))).message).to.match(/closed database/);
  });
});

describe('store: data directory lock', () => {
  let dir: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'sp-lock-'));
  });

  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes our pid, refuses a second taker naming the directory, and releases', () => {
    const lock = DataDirLock.acquire(dir);
    expect(readFileSync(join(dir, LOCK_FILE), 'utf8').trim()).to.equal(String(process.pid));
    expect(() => DataDirLock.acquire(dir)).to.throw(StoreOpenError, new RegExp(`data directory ${dir.replace(/[/\\.]/g, '\\$&')} is in use`));
    lock.release();
    expect(existsSync(join(dir, LOCK_FILE))).to.equal(false);
    DataDirLock.acquire(dir).release();
  });

  it('refuses a lock held by another live process, naming its pid', () => {
    writeFileSync(join(dir, LOCK_FILE), `${process.ppid}\n`);
    expect(() => DataDirLock.acquire(dir)).to.throw(StoreOpenError, new RegExp(`another process \\(pid ${process.ppid}`));
    expect(readFileSync(join(dir, LOCK_FILE), 'utf8').trim()).to.equal(String(process.ppid));
  });

  it('takes over a stale lock (dead pid, or garbage)', () => {
    writeFileSync(join(dir, LOCK_FILE), `${deadPid()}\n`);
    const lock = DataDirLock.acquire(dir);
    expect(readFileSync(join(dir, LOCK_FILE), 'utf8').trim()).to.equal(String(process.pid));
    lock.release();
    writeFileSync(join(dir, LOCK_FILE), 'not a pid');
    DataDirLock.acquire(dir).release();
  });

  it('takes over a lock with our own pid that this process does not hold (a container restarted as pid 1)', () => {
    writeFileSync(join(dir, LOCK_FILE), `${process.pid}\n`);
    const lock = DataDirLock.acquire(dir);
    expect(() => DataDirLock.acquire(dir)).to.throw(StoreOpenError, /another store in this process/);
    lock.release();
  });

  it('does not remove a lock that is no longer its own', () => {
    const lock = DataDirLock.acquire(dir);
    writeFileSync(join(dir, LOCK_FILE), `${process.ppid}\n`);
    lock.release();
    expect(readFileSync(join(dir, LOCK_FILE), 'utf8').trim()).to.equal(String(process.ppid));
  });
});

describe('store: SQLite in a data directory', function () {
  this.timeout(60_000);
  let dir: string;

  before(() => {
    dir = join(mkdtempSync(join(tmpdir(), 'sp-pgdata-')), 'nested', 'data');
  });

  after(() => {
    rmSync(join(dir, '..', '..'), { recursive: true, force: true });
  });

  it('creates the directory, holds it against a second open, keeps data, takes over a stale lock, restarts with its state', async () => {
    const logger = silentLogger();
    const first = await openDatabase({ dataDir: dir, logger });
    try {
      expect(first.driver).to.equal('sqlite');
      expect(existsSync(join(dir, SQLITE_FILE))).to.equal(true);
      expect(existsSync(join(dir, LOCK_FILE))).to.equal(true);
      await first.exec('CREATE TABLE kept (x integer)');
      await first.query('INSERT INTO kept VALUES ($1)', [7]);
      const err = await rejection(openDatabase({ dataDir: dir, logger }));
      expect(err).to.be.instanceOf(StoreOpenError);
      expect(err.message).to.include(`data directory ${dir} is in use`);
    } finally {
      await first.close();
    }
    expect(existsSync(join(dir, LOCK_FILE))).to.equal(false);

    // A crash leaves its lock behind: the next start takes it over, migrates, writes soft state behind.
    writeFileSync(join(dir, LOCK_FILE), `${deadPid()}\n`);
    const second = await openStore({ dataDir: dir, logger });
    try {
      expect(second.migrated.map((m) => m.file)).to.deep.equal(loadMigrations(undefined, 'sqlite').map((m) => m.file));
      expect((await second.db.query<{ x: number }>('SELECT x FROM kept')).rows).to.deep.equal([{ x: 7 }]);
      expect(readFileSync(join(dir, LOCK_FILE), 'utf8').trim()).to.equal(String(process.pid));
      expect(second.publications.upsert(publication(1))).to.equal(true);
      await second.accounts.create({ domain: 'example.com', username: 'alice' });
    } finally {
      await second.close(); // a graceful stop flushes the soft state
    }

    // After the restart the soft state is there; nothing left to migrate.
    const third = await openStore({ dataDir: dir, logger });
    try {
      expect(third.migrated).to.deep.equal([]);
      expect(await third.publications.loadLive(EPOCH)).to.deep.equal([publication(1)]);
      expect(await third.accounts.get('example.com', 'alice')).to.include({ username: 'alice' });
    } finally {
      await third.close();
    }
  });

  it("refuses an earlier release's PGlite data directory, naming the command that converts it", async () => {
    const old = mkdtempSync(join(tmpdir(), 'sp-pgold-'));
    try {
      writeFileSync(join(old, 'PG_VERSION'), '17\n');
      const err = await rejection(openDatabase({ dataDir: old, logger: silentLogger() }));
      expect(err).to.be.instanceOf(StoreOpenError);
      expect(err.message).to.match(/holds a PGlite store of an earlier release; convert it once with: simple-presence db convert-pglite/);
      expect(existsSync(join(old, SQLITE_FILE))).to.equal(false);
      expect(existsSync(join(old, LOCK_FILE))).to.equal(false);
    } finally {
      rmSync(old, { recursive: true, force: true });
    }
  });
});

if (DATABASE_URL) {
  const url = DATABASE_URL;
  describe('store: pg driver specifics', function () {
    this.timeout(30_000);

    it('works in its own schema (search_path on every connection)', async () => {
      const a = await openTestPg(url);
      const b = await openTestPg(url);
      try {
        await a.db.exec('CREATE TABLE same_name (x integer)');
        await b.db.exec('CREATE TABLE same_name (x integer)');
        await a.db.query('INSERT INTO same_name VALUES (1)');
        // Several connections at once: each must see its schema.
        const counts = await Promise.all(Array.from({ length: 12 }, (_, i) => (i % 2 ? a : b).db.query<{ n: number }>('SELECT CAST(count(*) AS integer) AS n FROM same_name')));
        expect(counts.map((c, i) => [i % 2, c.rows[0]!.n])).to.deep.equal(Array.from({ length: 12 }, (_, i) => [i % 2, i % 2 ? 1 : 0]));
        const where = await a.db.query<{ s: string }>('SELECT current_schema() AS s');
        expect(where.rows[0]!.s).to.equal(a.schema);
      } finally {
        await a.cleanup();
        await b.cleanup();
      }
    });

    it('openStore picks pg for a URL, migrates its schema and flushes soft state on close', async () => {
      const schema = randomSchema();
      await adminQuery(url, `CREATE SCHEMA ${schema}`);
      try {
        const store = await openStore({ url, schema, logger: silentLogger() });
        expect(store.db.driver).to.equal('pg');
        expect(store.migrated.map((m) => m.version)).to.deep.equal(loadMigrations().map((m) => m.version));
        store.publications.upsert(publication(1));
        await store.close();
        const rows = await adminQuery(url, `SELECT etag FROM ${schema}.publications`);
        expect(rows.rows).to.deep.equal([{ etag: 'etag-1' }]);
      } finally {
        await adminQuery(url, `DROP SCHEMA ${schema} CASCADE`);
      }
    });

    it('refuses a schema that is not a plain identifier', () => {
      expect(() => openPg({ url: url, schema: 'x; DROP TABLE y' })).to.throw(StoreOpenError);
    });

    it('survives its idle connections being killed (pool error handled), and reconnects', async () => {
      const app = randomSchema();
      const log = captureLogger();
      const u = new URL(url);
      u.searchParams.set('application_name', app);
      const db = openPg({ url: u.toString(), logger: log.logger });
      try {
        await Promise.all([db.query('SELECT pg_sleep(0.01)'), db.query('SELECT pg_sleep(0.01)')]);
        const killed = await adminQuery(url, 'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [app]);
        expect(killed.rowCount).to.be.greaterThan(0);
        // Every killed connection reported before the pool is asked again (else it may hand out one not yet known dead).
        const n = killed.rowCount ?? 1;
        await until(() => log.lines.filter((l) => /idle PostgreSQL connection failed/.test(l.msg)).length >= n);
        expect(await db.ping()).to.equal(true);
      } finally {
        await db.close();
      }
    });

    it('answers ping false when the server cannot be reached', async () => {
      const db = openPg({ url: 'postgres://postgres@127.0.0.1:1/none', connectTimeoutMs: 500 });
      try {
        expect(await db.ping()).to.equal(false);
        const err = await rejection(db.query('SELECT 1'));
        expect(err.message).to.match(/ECONNREFUSED|connect/);
      } finally {
        await db.close();
      }
    });
  });
}
