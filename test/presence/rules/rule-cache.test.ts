import { expect } from 'chai';
import type { Queryable, QueryResult } from '../../../src/store/database.js';
import { PresenceRuleStore } from '../../../src/presence/rules/rule-store.js';

interface Row {
  presentity: string;
  watcher: string;
  action: string;
  hide_notes: boolean;
  hide_devices: boolean;
  basic_only: boolean;
}

/** A one-table database whose SELECTs answer, with what it held when they began, once the test lets them. */
class SlowReads implements Queryable {
  rows: Row[] = [];
  private waiting: Array<() => void> = [];
  async query<R>(sql: string, params: unknown[] = []): Promise<QueryResult<R>> {
    if (sql.trimStart().startsWith('SELECT')) {
      const rows = this.rows.filter((r) => r.presentity === params[0]);
      await new Promise<void>((r) => this.waiting.push(r));
      return { rows: rows as R[], rowCount: rows.length };
    }
    const [presentity, watcher, action, hideNotes, hideDevices, basicOnly] = params as [string, string, string, boolean, boolean, boolean];
    this.rows.push({ presentity, watcher, action, hide_notes: hideNotes, hide_devices: hideDevices, basic_only: basicOnly });
    return { rows: [], rowCount: 1 };
  }
  async exec(): Promise<void> {}
  release(): void {
    for (const r of this.waiting.splice(0)) r();
  }
}

describe('presence/rules: the read-through cache', () => {
  it('a read that began before a rule was written does not cache the list without it', async () => {
    const db = new SlowReads();
    const rules = new PresenceRuleStore(db);
    const bob = 'sip:bob@example.com';
    const alice = ['sip:alice@example.com'];
    const read = rules.candidates(bob, alice);
    await rules.set({ presentity: bob, watcher: alice[0]!, action: 'block', transformations: { hideNotes: false, hideDevices: false, basicOnly: false } });
    db.release();
    expect(await read).to.deep.equal([]); // it read before the write
    const next = rules.candidates(bob, alice);
    db.release();
    expect((await next).map((r) => r.action)).to.deep.equal(['block']);
  });
});
