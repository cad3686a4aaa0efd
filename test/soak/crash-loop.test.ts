import { expect } from 'chai';
import { formatSummary, runCrashLoop, type SoakStore } from './crash-loop.js';

const DATABASE_URL = process.env.DATABASE_URL;

/**
 * Issue 21, crash loops: the short form of `npm run soak` (test/soak/crash-loop.ts). A few
 * rounds of SIGKILL under load a store, a fixed seed (a failing run prints what it saw);
 * nothing stored may be lost or delivered twice, no restored dialog may contradict its NOTIFYs.
 */
describe('soak: crash loops lose nothing (SIGKILL under load, restart on the same store)', function () {
  this.timeout(120_000);
  const ROUNDS = 3;
  // Round 1 under load, round 2 killed while it starts (restoring, NOTIFYing), round 3 under load.
  const SEED = 1;

  const run = async (store: SoakStore) => {
    const lines: string[] = [];
    const summary = await runCrashLoop({ rounds: ROUNDS, store, seed: SEED, maxRunMs: 1200, log: (l) => lines.push(l), ...(DATABASE_URL ? { databaseUrl: DATABASE_URL } : {}) });
    const report = `${lines.join('\n')}\n${formatSummary(summary)}`;
    expect([summary.kills, summary.killsWhileStarting], report).to.deep.equal([ROUNDS, 1]);
    // The load did run and was answered, and the messages it stored came back.
    expect(summary.accepted, report).to.be.greaterThan(50);
    expect(summary.messagesStored, report).to.be.greaterThan(0);
    expect(summary.messagesDelivered, report).to.be.at.least(summary.messagesStored);
    expect(summary.violations, report).to.deep.equal([]);
  };

  it('embedded SQLite', async () => {
    await run('sqlite');
  });

  // Like the other store tests: PostgreSQL too when DATABASE_URL names a server.
  if (DATABASE_URL) {
    it('PostgreSQL (DATABASE_URL)', async () => {
      await run('postgres');
    });
  }
});
