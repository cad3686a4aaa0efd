import { expect } from 'chai';
import { migrate } from '../../src/store/migrations.js';
import { createSoftStateWriter } from '../../src/store/soft-state.js';
import { subscription } from './fixtures.js';
import { TARGETS, type TestDb } from './helpers.js';

/**
 * Multi-row upsert throughput of the write-behind (DESIGN: batch writes to the store):
 * 10,000 subscription records (32 columns, dialog included) inserted, then all updated.
 * Prints the figures; the floor only catches a pathological regression.
 * `STORE_BENCH=1 DATABASE_URL=... npx mocha test/store/throughput.test.ts` for the full comparison.
 */
const N = 10_000;

for (const target of TARGETS) {
  describe(`store: write-behind throughput on ${target.name}`, function () {
    this.timeout(120_000);
    let t: TestDb;

    before(async () => {
      t = await target.open();
      await migrate(t.db);
    });

    after(async () => {
      await t?.cleanup();
    });

    // The default statement size always; STORE_BENCH=1 compares others.
    for (const rowsPerStatement of process.env.STORE_BENCH ? [100, 500, 1000] : [500]) {
      it(`upserts ${N} subscriptions, ${rowsPerStatement} rows a statement`, async () => {
        await t.db.exec('TRUNCATE subscriptions');
        const wb = createSoftStateWriter(t.db, { schedule: () => () => undefined, rowsPerStatement, rowsPerFlush: N, maxPending: N });
        const records = Array.from({ length: N }, (_, i) => subscription(i));
        const figures: string[] = [];
        for (const phase of ['insert', 'update'] as const) {
          const q0 = performance.now();
          for (const r of records) wb.put('subscription', r.id, phase === 'insert' ? r : { ...r, documentVersion: r.documentVersion + 1 });
          const queued = performance.now() - q0;
          const f0 = performance.now();
          await wb.flush();
          const ms = performance.now() - f0;
          const rate = Math.round(N / (ms / 1000));
          figures.push(`${phase} ${rate.toLocaleString('en')} rows/s (flush ${ms.toFixed(0)} ms, queueing ${queued.toFixed(0)} ms)`);
          expect(rate).to.be.greaterThan(2000);
        }
        const n = (await t.db.query<{ n: number; v: number }>('SELECT count(*)::int AS n, sum(last_version)::int AS v FROM subscriptions')).rows[0]!;
        expect(n.n).to.equal(N);
        expect(n.v).to.equal(records.reduce((a, r) => a + r.documentVersion + 1, 0));
        console.log(`      ${target.name}, ${rowsPerStatement} rows/statement: ${figures.join('; ')}`);
      });
    }
  });
}
