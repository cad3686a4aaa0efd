import { expect } from 'chai';
import { migrate } from '../../src/store/migrations.js';
import { createSoftStateWriter } from '../../src/store/soft-state.js';
import { subscription } from './fixtures.js';
import { TARGETS, type TestDb } from './helpers.js';

/**
 * A large flush of the write-behind (DESIGN: batch writes to the store): 10,000
 * subscription records (32 columns, dialog included) inserted, then all updated, in
 * multi-row statements. Correctness only; its speed is measured by the bench
 * (`npm run bench -- --store-throughput`, bench/store-throughput.ts).
 */
const N = 10_000;

for (const target of TARGETS) {
  describe(`store: large write-behind flush on ${target.name}`, function () {
    this.timeout(120_000);
    let t: TestDb;

    before(async () => {
      t = await target.open();
      await migrate(t.db);
    });

    after(async () => {
      await t?.cleanup();
    });

    it(`upserts ${N} subscriptions, then updates them all`, async () => {
      const wb = createSoftStateWriter(t.db, { schedule: () => () => undefined, rowsPerStatement: 500, rowsPerFlush: N, maxPending: N });
      const records = Array.from({ length: N }, (_, i) => subscription(i));
      for (const phase of ['insert', 'update'] as const) {
        for (const r of records) wb.put('subscription', r.id, phase === 'insert' ? r : { ...r, documentVersion: r.documentVersion + 1 });
        await wb.flush();
      }
      const n = (await t.db.query<{ n: number; v: number }>('SELECT CAST(count(*) AS integer) AS n, CAST(sum(last_version) AS integer) AS v FROM subscriptions')).rows[0]!;
      expect(n.n).to.equal(N);
      expect(n.v).to.equal(records.reduce((a, r) => a + r.documentVersion + 1, 0));
      expect(wb.stats().rowsWritten).to.equal(2 * N);
    });
  });
}
