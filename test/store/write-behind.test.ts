import { expect } from 'chai';
import { dialectOf, type Database } from '../../src/store/database.js';
import { migrate } from '../../src/store/migrations.js';
import { openPg } from '../../src/store/pg-driver.js';
import { PublicationRepository } from '../../src/store/repositories/publications.js';
import { SubscriptionRepository } from '../../src/store/repositories/subscriptions.js';
import { createSoftStateWriter, type SoftStateKinds } from '../../src/store/soft-state.js';
import { scheduleOn, type WriteBehind, type WriteBehindOptions } from '../../src/store/write-behind.js';
import { ManualTimers } from '../../src/util/timers.js';
import { EPOCH, publication, registration, subscription } from './fixtures.js';
import { DATABASE_URL, FlakyDatabase, OutageProxy, TARGETS, captureLogger, openTestPg, rowCount, until, type TestDb } from './helpers.js';

const LEVEL = { debug: 20, info: 30, warn: 40, error: 50 };

async function count(db: Database, table: string): Promise<number> {
  return rowCount(db, table);
}

for (const target of TARGETS) {
  describe(`store: write-behind on ${target.name}`, function () {
    this.timeout(30_000);
    let t: TestDb;
    let db: FlakyDatabase;
    let timers: ManualTimers;
    let wb: WriteBehind<SoftStateKinds>;
    let log: ReturnType<typeof captureLogger>;

    before(async () => {
      t = await target.open();
      await migrate(t.db);
    });

    after(async () => {
      await t?.cleanup();
    });

    function make(options: WriteBehindOptions = {}): WriteBehind<SoftStateKinds> {
      return createSoftStateWriter(db, { schedule: scheduleOn(timers), now: () => timers.now(), logger: log.logger, ...options });
    }

    beforeEach(async () => {
      await t.db.exec('DELETE FROM publications; DELETE FROM subscriptions; DELETE FROM registrations;');
      db = new FlakyDatabase(t.db);
      timers = new ManualTimers();
      log = captureLogger();
      wb = make();
    });

    it('coalesces by key: the last operation wins, one statement a kind and verb', async () => {
      const subs = new SubscriptionRepository(t.db, wb.queue('subscription'));
      subs.upsert(subscription(1, { documentVersion: 1 }));
      subs.upsert(subscription(1, { documentVersion: 2 }));
      subs.upsert(subscription(2));
      subs.delete('sub-2');
      subs.upsert(subscription(3));
      subs.delete('sub-9');
      subs.delete('sub-3');
      subs.upsert(subscription(3, { documentVersion: 3 }));
      expect(wb.stats().pending).to.equal(4);
      await wb.flush();
      expect(db.transactions).to.equal(1);
      expect(db.statements.map((s) => s.verb)).to.deep.equal(['INSERT', 'DELETE']);
      const live = await subs.loadLive(EPOCH);
      expect(live.map((s) => [s.id, s.documentVersion])).to.deep.equal([
        ['sub-1', 2],
        ['sub-3', 3],
      ]);
      expect(wb.stats()).to.include({ pending: 0, flushes: 1, rowsWritten: 4, lastFlushRows: 4 });
    });

    it('writes nothing for a first write removed within the window, and still removes what was written', async () => {
      const subs = new SubscriptionRepository(t.db, wb.queue('subscription'));
      const pubs = new PublicationRepository(t.db, wb.queue('publication'));
      // Subscribe then unsubscribe, publish then refresh (a new entity-tag) in one window.
      subs.upsert(subscription(1), true);
      subs.upsert(subscription(1, { documentVersion: 2 }));
      subs.delete('sub-1');
      pubs.upsert(publication(1), true);
      pubs.delete(publication(1).etag);
      pubs.upsert(publication(2), true);
      expect(wb.stats()).to.include({ pending: 1, elided: 2 });
      await wb.flush();
      expect(await count(t.db, 'subscriptions')).to.equal(0);
      expect(await count(t.db, 'publications')).to.equal(1);
      // Once written, a removal is a removal.
      pubs.delete(publication(2).etag);
      subs.upsert(subscription(3), true);
      await wb.flush();
      subs.delete('sub-3');
      await wb.flush();
      expect(await count(t.db, 'publications')).to.equal(0);
      expect(await count(t.db, 'subscriptions')).to.equal(0);
      expect(wb.stats().elided).to.equal(2);
    });

    it('writes many rows a statement, chunked, all in one transaction', async () => {
      wb = make({ rowsPerStatement: 500 });
      for (let i = 0; i < 1234; i++) wb.put('subscription', `sub-${i}`, subscription(i));
      for (let i = 0; i < 3; i++) wb.put('publication', `etag-${i}`, publication(i));
      await wb.flush();
      expect(db.transactions).to.equal(1);
      const inserts = db.statements.filter((s) => s.verb === 'INSERT');
      if (dialectOf(t.db) === 'sqlite') {
        // One JSON array of the rows, whatever their number.
        expect(inserts.map((s) => s.params)).to.deep.equal([1, 1, 1, 1]);
        expect(inserts[1]!.sql).to.match(/^INSERT INTO "subscriptions" .* FROM json_each\(\$1\) .*ON CONFLICT \("id"\) DO UPDATE SET/);
      } else {
        // One text[] parameter a column (7 for publications, 32 for subscriptions), whatever the rows.
        expect(inserts.map((s) => s.params)).to.deep.equal([7, 32, 32, 32]);
        expect(inserts[1]!.sql).to.match(/^INSERT INTO "subscriptions" .* FROM unnest\(.*ON CONFLICT \("id"\) DO UPDATE SET/);
      }
      expect(await count(t.db, 'subscriptions')).to.equal(1234);

      db.statements.length = 0;
      for (let i = 0; i < 1234; i++) wb.delete('subscription', `sub-${i}`);
      await wb.flush();
      // Deletes pass one array a key column, whatever the number of keys.
      expect(db.statements.map((s) => `${s.verb} ${s.params}`)).to.deep.equal(['DELETE 1', 'DELETE 1', 'DELETE 1']);
      expect(await count(t.db, 'subscriptions')).to.equal(0);
    });

    it('deletes by composite key (registrations)', async () => {
      wb.put('registration', { aor: registration(1).aor, key: registration(1).key }, registration(1));
      wb.put('registration', { aor: registration(11).aor, key: registration(11).key }, registration(11));
      await wb.flush();
      wb.delete('registration', { aor: registration(1).aor, key: registration(1).key });
      await wb.flush();
      const left = await t.db.query<{ binding_key: string }>('SELECT binding_key FROM registrations');
      expect(left.rows.map((r) => r.binding_key)).to.deep.equal([registration(11).key]);
    });

    it('flushes on its own one window after the first change, and idles when empty', async () => {
      wb.put('publication', 'etag-1', publication(1));
      expect(timers.size).to.equal(1);
      timers.advance(999);
      expect(db.transactions).to.equal(0);
      timers.advance(1);
      await until(() => wb.stats().flushes === 1);
      expect(await count(t.db, 'publications')).to.equal(1);
      expect(timers.size).to.equal(0);
      // The next change arms the timer again.
      wb.put('publication', 'etag-2', publication(2));
      expect(timers.size).to.equal(1);
    });

    it('flush() waits for a running flush, then writes what came meanwhile', async () => {
      wb.put('publication', 'etag-1', publication(1));
      timers.advance(1000); // starts a flush
      wb.put('publication', 'etag-2', publication(2));
      await wb.flush();
      expect(wb.stats().flushes).to.equal(2);
      expect(await count(t.db, 'publications')).to.equal(2);
    });

    it('writes a change queued during a slow flush one window after it was queued, not one window after that flush', async () => {
      // The database takes 800 ms (of the manual clock) to commit the first flush.
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      const inner = db;
      const slow = Object.assign(Object.create(inner) as FlakyDatabase, {
        transaction: <T>(fn: Parameters<FlakyDatabase['transaction']>[0]) => held.then(() => inner.transaction(fn) as Promise<T>),
      });
      db = slow;
      wb = make();
      wb.put('publication', 'etag-1', publication(1));
      timers.advance(1000); // the first flush starts, and waits on the database
      timers.advance(100);
      wb.put('publication', 'etag-2', publication(2)); // queued at 1,100: due by 2,100
      timers.advance(700);
      release();
      await until(() => wb.stats().flushes === 1);
      // At 1,800: due in 300 ms, not in a whole window.
      timers.advance(299);
      await new Promise((r) => setImmediate(r));
      expect(wb.stats().flushes).to.equal(1);
      timers.advance(1);
      await until(() => wb.stats().flushes === 2);
      expect(await count(t.db, 'publications')).to.equal(2);
    });

    it('keeps flushes short: a backlog goes in several transactions', async () => {
      wb = make({ rowsPerFlush: 100 });
      for (let i = 0; i < 250; i++) wb.put('publication', `etag-${i}`, publication(i));
      timers.advance(1000);
      await until(() => wb.stats().flushes === 1);
      expect(wb.stats()).to.include({ lastFlushRows: 100, pending: 150 });
      // The rest of a backlog does not wait another window: it goes at once, a flush at a time.
      timers.advance(0);
      await until(() => wb.stats().flushes === 2);
      timers.advance(0);
      await until(() => wb.stats().flushes === 3);
      expect(wb.stats()).to.include({ rowsWritten: 250, lastFlushRows: 50, pending: 0 });
      expect(db.transactions).to.equal(3);
      // A flush that was not full leaves the next change to wait its window.
      wb.put('publication', 'etag-x', publication(1));
      timers.advance(999);
      await new Promise((r) => setImmediate(r));
      expect(wb.stats().flushes).to.equal(3);
      expect(await count(t.db, 'publications')).to.equal(250);
    });

    it('is bounded: beyond maxPending keys it refuses (and says so once), updates still pass', async () => {
      wb = make({ maxPending: 3 });
      expect(wb.put('publication', 'etag-1', publication(1))).to.equal(true);
      expect(wb.put('publication', 'etag-2', publication(2))).to.equal(true);
      expect(wb.delete('publication', 'etag-3')).to.equal(true);
      expect(wb.put('publication', 'etag-4', publication(4))).to.equal(false);
      expect(wb.delete('publication', 'etag-5')).to.equal(false);
      expect(wb.put('publication', 'etag-1', publication(1, { version: 2 }))).to.equal(true);
      expect(wb.stats()).to.include({ pending: 3, rejected: 2 });
      expect(log.lines.filter((l) => l.level === LEVEL.warn)).to.have.length(1);
      await wb.flush();
      expect(wb.put('publication', 'etag-4', publication(4))).to.equal(true);
    });

    it('survives an outage: keeps changes, merges newer ones, retries with backoff, one log line, nothing lost', async () => {
      const pubs = new PublicationRepository(t.db, wb.queue('publication'));
      for (let i = 0; i < 10; i++) pubs.upsert(publication(i));
      db.down = true;
      timers.advance(1000);
      await until(() => wb.stats().failures === 1);
      expect(wb.stats()).to.include({ pending: 10, consecutiveFailures: 1 });

      // Changes during the outage: a newer version, a removal, a new one.
      pubs.upsert(publication(3, { version: 7 }));
      pubs.delete('etag-4');
      pubs.upsert(publication(10));

      timers.advance(1000); // first retry after one window
      await until(() => wb.stats().failures === 2);
      timers.advance(1999); // then two windows
      expect(wb.stats().failures).to.equal(2);
      timers.advance(1);
      await until(() => wb.stats().failures === 3);
      expect(wb.stats().pending).to.equal(11);

      db.down = false;
      timers.advance(4000);
      await until(() => wb.stats().flushes === 1);
      const live = await pubs.loadLive(EPOCH);
      expect(live.map((p) => p.etag).sort()).to.deep.equal(['etag-0', 'etag-1', 'etag-10', 'etag-2', 'etag-3', 'etag-5', 'etag-6', 'etag-7', 'etag-8', 'etag-9']);
      expect(live.find((p) => p.etag === 'etag-3')!.version).to.equal(7);
      expect(wb.stats()).to.include({ pending: 0, consecutiveFailures: 0, failures: 3 });

      const errors = log.lines.filter((l) => l.level >= LEVEL.error);
      expect(errors).to.have.length(1);
      expect(errors[0]!.msg).to.match(/flush failed/);
      expect(log.lines.filter((l) => l.level === LEVEL.info && /recovered/.test(l.msg))).to.have.length(1);
    });

    it('flush() rejects while the database is down, keeping the changes', async () => {
      wb.put('publication', 'etag-1', publication(1));
      db.down = true;
      let failed: unknown;
      try {
        await wb.flush();
      } catch (err) {
        failed = err;
      }
      expect((failed as Error).message).to.match(/ECONNREFUSED/);
      expect(wb.stats().pending).to.equal(1);
      db.down = false;
      await wb.flush();
      expect(await count(t.db, 'publications')).to.equal(1);
    });

    it('drops a row the database refuses as bad data, and writes the rest', async () => {
      const bad = subscription(2);
      wb.put('subscription', 'sub-1', subscription(1));
      // A transport the table's CHECK refuses (a bug upstream): retrying could never succeed.
      wb.put('subscription', 'sub-2', { ...bad, dialog: { ...bad.dialog, flow: { ...bad.dialog.flow, protocol: 'sctp' as 'tcp' } } });
      wb.put('subscription', 'sub-3', subscription(3));
      await wb.flush();
      expect(wb.stats()).to.include({ dropped: 1, pending: 0, consecutiveFailures: 0 });
      const ids = await t.db.query<{ id: string }>('SELECT id FROM subscriptions ORDER BY id');
      expect(ids.rows.map((r) => r.id)).to.deep.equal(['sub-1', 'sub-3']);
      const dropped = log.lines.find((l) => /refused by the database/.test(l.msg));
      expect(dropped).to.include({ kind: 'subscription' });
    });

    it('stop() writes what is queued and refuses later changes', async () => {
      wb.put('publication', 'etag-1', publication(1));
      await wb.stop();
      expect(await count(t.db, 'publications')).to.equal(1);
      expect(wb.put('publication', 'etag-2', publication(2))).to.equal(false);
      expect(timers.size).to.equal(0);
    });

    it('converts at flush only the last change of a key, and drops (logging) a record it cannot convert, writing the rest', async () => {
      wb.put('publication', 'etag-x', publication(1, { expiresAtMs: Number.NaN }));
      wb.put('publication', 'etag-2', publication(2));
      await wb.flush();
      expect(await count(t.db, 'publications')).to.equal(1);
      expect(wb.stats()).to.include({ pending: 0, dropped: 1 });
      expect(log.lines.some((l) => l.level === LEVEL.error && /cannot be converted/.test(l.msg))).to.equal(true);
      // A bad change replaced by a good one within the window costs nothing.
      wb.put('publication', 'etag-3', publication(3, { expiresAtMs: Number.NaN }));
      wb.put('publication', 'etag-3', publication(3));
      await wb.flush();
      expect(await count(t.db, 'publications')).to.equal(2);
      expect(wb.stats().dropped).to.equal(1);
    });
  });
}

if (DATABASE_URL) {
  const url = DATABASE_URL;
  describe('store: write-behind through a real PostgreSQL outage', function () {
    this.timeout(30_000);
    let direct: TestDb;
    let proxy: OutageProxy;

    before(async () => {
      direct = await openTestPg(url);
      await migrate(direct.db);
      const u = new URL(url);
      proxy = new OutageProxy(u.hostname, Number(u.port || 5432));
      await proxy.up();
    });

    after(async () => {
      await proxy?.down();
      await direct?.cleanup();
    });

    it('loses nothing when the server goes away and comes back; the pool does not crash the process', async () => {
      const log = captureLogger();
      const db = openPg({ url: proxy.urlFor(url), schema: direct.schema!, logger: log.logger, connectTimeoutMs: 1000 });
      const wb = createSoftStateWriter(db, { schedule: () => () => undefined, logger: log.logger });
      try {
        wb.put('publication', 'etag-1', publication(1));
        await wb.flush(); // a pooled connection now sits idle through the proxy

        await proxy.down(); // idle connection cut: the pool's 'error' event, handled
        for (let i = 2; i <= 5; i++) wb.put('publication', `etag-${i}`, publication(i));
        let failed: unknown;
        try {
          await wb.flush();
        } catch (err) {
          failed = err;
        }
        expect(failed).to.be.instanceOf(Error);
        expect(await db.ping()).to.equal(false);
        wb.put('publication', 'etag-2', publication(2, { version: 9 }));
        expect(wb.stats()).to.include({ pending: 4, consecutiveFailures: 1 });

        await proxy.up();
        await wb.flush();
        expect(await db.ping()).to.equal(true);
        const rows = await direct.db.query<{ etag: string; version: number }>('SELECT etag, version FROM publications ORDER BY etag');
        expect(rows.rows).to.deep.equal([
          { etag: 'etag-1', version: 1 },
          { etag: 'etag-2', version: 9 },
          { etag: 'etag-3', version: 1 },
          { etag: 'etag-4', version: 1 },
          { etag: 'etag-5', version: 1 },
        ]);
        expect(log.lines.filter((l) => l.level >= LEVEL.error)).to.have.length(1);
      } finally {
        await db.close();
      }
    });
  });
}
