import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  MigrationError,
  defaultMigrationsDir,
  loadMigrations,
  migrate,
  migrationStatus,
} from '../../src/store/migrations.js';
import { dialectOf } from '../../src/store/database.js';
import { TARGETS, tableExists, type TestDb } from './helpers.js';

describe('store: migrations files', () => {
  it('finds schemas/sql of the package and reads 001_initial first', () => {
    const dir = defaultMigrationsDir();
    expect(dir.replace(/\\/g, '/')).to.match(/\/schemas\/sql$/);
    const files = loadMigrations(dir);
    expect(files[0]).to.include({ version: 1, name: 'initial', file: '001_initial.postgres.sql' });
    expect(files[0]!.checksum).to.match(/^[0-9a-f]{64}$/);
    const sqlite = loadMigrations(dir, 'sqlite');
    expect(sqlite[0]).to.include({ version: 1, name: 'initial', file: '001_initial.sqlite.sql' });
    // The same versions for both dialects, shared files the same.
    expect(sqlite.map((m) => m.name)).to.deep.equal(files.map((m) => m.name));
    expect(sqlite[1]!.file).to.equal(files[1]!.file);
  });

  it("takes a dialect's file and the shared ones, and refuses a version both shared and of a dialect", () => {
    const dir = mkdtempSync(join(tmpdir(), 'sp-mig-'));
    try {
      writeFileSync(join(dir, '001_a.postgres.sql'), 'SELECT 1;');
      writeFileSync(join(dir, '001_a.sqlite.sql'), 'SELECT 2;');
      writeFileSync(join(dir, '002_b.sql'), 'SELECT 3;');
      expect(loadMigrations(dir, 'postgres').map((m) => m.sql)).to.deep.equal(['SELECT 1;', 'SELECT 3;']);
      expect(loadMigrations(dir, 'sqlite').map((m) => m.sql)).to.deep.equal(['SELECT 2;', 'SELECT 3;']);
      writeFileSync(join(dir, '002_b.sqlite.sql'), 'SELECT 4;');
      expect(() => loadMigrations(dir, 'sqlite')).to.throw(MigrationError, /same version/);
      expect(loadMigrations(dir, 'postgres')).to.have.length(2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a misnamed file and a duplicate version', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sp-mig-'));
    try {
      writeFileSync(join(dir, '1-bad.sql'), 'SELECT 1;');
      expect(() => loadMigrations(dir)).to.throw(MigrationError, /not named NNN_name\.sql/);
      rmSync(join(dir, '1-bad.sql'));
      writeFileSync(join(dir, '001_a.sql'), 'SELECT 1;');
      writeFileSync(join(dir, '001_b.sql'), 'SELECT 1;');
      expect(() => loadMigrations(dir)).to.throw(MigrationError, /same version/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('hashes CRLF and LF checkouts alike', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sp-mig-'));
    try {
      writeFileSync(join(dir, '001_a.sql'), 'CREATE TABLE a (x int);\nSELECT 1;\n');
      const lf = loadMigrations(dir)[0]!.checksum;
      writeFileSync(join(dir, '001_a.sql'), 'CREATE TABLE a (x int);\r\nSELECT 1;\r\n');
      expect(loadMigrations(dir)[0]!.checksum).to.equal(lf);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

for (const target of TARGETS) {
  describe(`store: migrations on ${target.name}`, function () {
    this.timeout(30_000);
    let t: TestDb;
    let dir: string;

    before(async () => {
      t = await target.open();
      // A copy of the real migrations, so the test can add and change files.
      dir = mkdtempSync(join(tmpdir(), 'sp-mig-'));
      for (const f of ['001_initial.postgres.sql', '001_initial.sqlite.sql']) writeFileSync(join(dir, f), readFileSync(join(defaultMigrationsDir(), f)));
    });

    after(async () => {
      await t?.cleanup();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it('lists everything pending on an empty database, writing nothing', async () => {
      const s = await migrationStatus(t.db, { dir });
      expect(s.applied).to.deep.equal([]);
      expect(s.pending.map((m) => m.version)).to.deep.equal([1]);
      expect(await tableExists(t.db, 'schema_migrations')).to.equal(false);
    });

    it('applies each migration once and records it', async () => {
      const first = await migrate(t.db, { dir });
      expect(first.map((m) => m.file)).to.deep.equal([`001_initial.${dialectOf(t.db)}.sql`]);
      const again = await migrate(t.db, { dir });
      expect(again).to.deep.equal([]);
      const rows = await t.db.query<{ version: number; name: string; checksum: string; applied_at: Date }>(
        'SELECT version, name, checksum, applied_at FROM schema_migrations',
      );
      expect(rows.rows).to.have.length(1);
      expect(rows.rows[0]).to.include({ version: 1, name: 'initial', checksum: first[0]!.checksum });
      expect(rows.rows[0]!.applied_at).to.be.instanceOf(Date);
      // The schema is there.
      for (const table of ['accounts', 'presence_rules', 'publications', 'subscriptions', 'registrations', 'stored_messages']) {
        expect(await tableExists(t.db, table), table).to.equal(true);
      }
    });

    it('applies a new file in order, and status shows applied and pending', async () => {
      writeFileSync(join(dir, '002_extra.sql'), 'CREATE TABLE extra (id integer PRIMARY KEY);\nINSERT INTO extra VALUES (1);\n');
      let s = await migrationStatus(t.db, { dir });
      expect(s.applied.map((a) => a.version)).to.deep.equal([1]);
      expect(s.pending.map((m) => m.name)).to.deep.equal(['extra']);
      expect((await migrate(t.db, { dir })).map((m) => m.version)).to.deep.equal([2]);
      s = await migrationStatus(t.db, { dir });
      expect(s.applied.map((a) => a.version)).to.deep.equal([1, 2]);
      expect(s.pending).to.deep.equal([]);
      expect((await t.db.query<{ id: number }>('SELECT id FROM extra')).rows).to.deep.equal([{ id: 1 }]);
    });

    it('accepts gaps in the numbers, and applies a lower number that arrives after a higher one (branches merged in any order)', async () => {
      writeFileSync(join(dir, '005_later.sql'), 'CREATE TABLE later (id integer PRIMARY KEY);\n');
      expect((await migrate(t.db, { dir })).map((m) => m.version)).to.deep.equal([5]);
      writeFileSync(join(dir, '004_merged.sql'), 'CREATE TABLE merged (id integer PRIMARY KEY);\n');
      const s = await migrationStatus(t.db, { dir });
      expect(s.pending.map((m) => m.version)).to.deep.equal([4]);
      expect(s.unknown).to.deep.equal([]);
      expect((await migrate(t.db, { dir })).map((m) => m.version)).to.deep.equal([4]);
      expect(await tableExists(t.db, 'merged')).to.equal(true);
      expect((await migrationStatus(t.db, { dir })).applied.map((a) => a.version)).to.deep.equal([1, 2, 4, 5]);
    });

    it('rolls back a failing migration entirely and records nothing', async () => {
      writeFileSync(join(dir, '003_broken.sql'), 'CREATE TABLE broken (id integer);\nSELECT * FROM no_such_table;\n');
      let failed: unknown;
      try {
        await migrate(t.db, { dir });
      } catch (err) {
        failed = err;
      }
      expect(failed).to.be.instanceOf(Error);
      const s = await migrationStatus(t.db, { dir });
      expect(s.pending.map((m) => m.version)).to.deep.equal([3]);
      expect(await tableExists(t.db, 'broken')).to.equal(false);
      rmSync(join(dir, '003_broken.sql'));
    });

    it('refuses an applied migration whose file changed', async () => {
      writeFileSync(join(dir, '002_extra.sql'), 'CREATE TABLE extra (id bigint PRIMARY KEY);\n');
      const s = await migrationStatus(t.db, { dir });
      expect(s.changed.map((a) => a.version)).to.deep.equal([2]);
      let failed: unknown;
      try {
        await migrate(t.db, { dir });
      } catch (err) {
        failed = err;
      }
      expect(failed).to.be.instanceOf(MigrationError);
      expect((failed as Error).message).to.match(/002_extra\.sql was changed after it was applied/);
    });

    it('refuses a database that has a migration this code does not know', async () => {
      rmSync(join(dir, '002_extra.sql'));
      const s = await migrationStatus(t.db, { dir });
      expect(s.unknown.map((a) => a.version)).to.deep.equal([2]);
      let failed: unknown;
      try {
        await migrate(t.db, { dir });
      } catch (err) {
        failed = err;
      }
      expect(failed).to.be.instanceOf(MigrationError);
      expect((failed as Error).message).to.match(/migration 2 \(extra\)/);
    });
  });
}
