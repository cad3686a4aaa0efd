import { expect } from 'chai';
import type { Database, QueryResult } from '../../src/store/database.js';
import { AccountRepository } from '../../src/store/repositories/accounts.js';

const ROW = { domain: 'example.com', username: 'alice', display_name: null, ha1_md5: 'aa', ha1_sha256: null, created_at: new Date(0) };

/** A database whose SELECTs wait until the test lets them answer; it counts them. */
class SlowReads implements Partial<Database> {
  selects = 0;
  rows: (typeof ROW)[] = [ROW];
  private waiting: Array<() => void> = [];
  async query<R>(sql: string): Promise<QueryResult<R>> {
    if (sql.startsWith('SELECT')) {
      this.selects++;
      const rows = [...this.rows]; // what the database held when the read began
      await new Promise<void>((r) => this.waiting.push(r));
      return { rows: rows as R[], rowCount: rows.length };
    }
    if (sql.startsWith('DELETE')) this.rows = [];
    return { rows: [], rowCount: 1 };
  }
  release(): void {
    for (const r of this.waiting.splice(0)) r();
  }
}

describe('store/accounts: the read-through cache', () => {
  it('a read that began before a delete does not put the deleted account back', async () => {
    const db = new SlowReads();
    const accounts = new AccountRepository(db as unknown as Database);
    const read = accounts.get('example.com', 'alice');
    await accounts.delete('example.com', 'alice');
    db.release();
    expect(await read).to.not.equal(undefined); // it read the row before the delete
    expect(await accounts.get('example.com', 'alice')).to.equal(undefined); // but did not cache it
    expect(db.selects).to.equal(1);
  });

  it('unknown names, more than the cache holds, do not push known accounts out', async () => {
    const db = new SlowReads();
    const accounts = new AccountRepository(db as unknown as Database);
    const first = accounts.get('example.com', 'alice');
    db.release();
    await first;
    db.rows = [];
    for (let i = 0; i < 100_001; i++) {
      const p = accounts.get('example.com', `nobody${i}`);
      db.release();
      await p;
    }
    const before = db.selects;
    expect(await accounts.get('example.com', 'alice')).to.not.equal(undefined);
    expect(db.selects).to.equal(before);
  });
});
