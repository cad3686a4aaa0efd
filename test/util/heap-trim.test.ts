import { expect } from 'chai';
import { runInNewContext } from 'node:vm';
import { HeapTrimmer, memoryReducingCollection, type MemoryReading } from '../../src/util/heap-trim.js';
import { ManualTimers } from '../../src/util/timers.js';

const MB = 1024 * 1024;

/** A process whose resident set the test sets; a collection gives back what `freed` says. */
function fakeProcess() {
  const state = { rss: 200 * MB, heapTotal: 50 * MB, heapUsed: 40 * MB, external: 5 * MB, utilization: 0, freed: 0, collections: 0 };
  return {
    state,
    readMemory: (): MemoryReading => ({ rss: state.rss, heapTotal: state.heapTotal, heapUsed: state.heapUsed, external: state.external }),
    utilization: () => state.utilization,
    collect: () => {
      state.collections++;
      state.rss -= state.freed;
      return true;
    },
  };
}

describe('util/heap-trim', () => {
  it('collects once the memory beyond the heap grew by the threshold, and the loop is idle', () => {
    const timers = new ManualTimers();
    const p = fakeProcess();
    const trimmer = new HeapTrimmer({ timers, intervalMs: 1000, quietMs: 1000, minSlackBytes: 32 * MB, ...p });
    trimmer.start();
    timers.advance(1000);
    expect(p.state.collections).to.equal(0);
    // A burst: the heap grew and shrank again, its pages stayed resident.
    p.state.rss += 31 * MB;
    timers.advance(1000);
    expect(p.state.collections, 'under the threshold').to.equal(0);
    p.state.rss += 2 * MB;
    p.state.freed = 30 * MB;
    timers.advance(1000);
    expect(p.state.collections).to.equal(1);
    expect(trimmer.collections).to.equal(1);
    trimmer.stop();
  });

  it('never collects while the event loop is busy, and does once it is quiet', () => {
    const timers = new ManualTimers();
    const p = fakeProcess();
    const trimmer = new HeapTrimmer({ timers, intervalMs: 1000, quietMs: 1000, minSlackBytes: 32 * MB, maxUtilization: 0.25, ...p });
    trimmer.start();
    p.state.rss += 100 * MB;
    p.state.utilization = 0.9;
    timers.advance(5000);
    expect(p.state.collections).to.equal(0);
    p.state.utilization = 0.1;
    timers.advance(1000);
    expect(p.state.collections).to.equal(1);
    trimmer.stop();
  });

  it('does not collect again for slack a collection could not give back', () => {
    const timers = new ManualTimers();
    const p = fakeProcess();
    const trimmer = new HeapTrimmer({ timers, intervalMs: 1000, quietMs: 1000, minSlackBytes: 32 * MB, ...p });
    trimmer.start();
    p.state.rss += 100 * MB;
    p.state.freed = 10 * MB; // malloc keeps the rest
    timers.advance(1000);
    expect(p.state.collections).to.equal(1);
    timers.advance(10_000);
    expect(p.state.collections, 'the rest is the new floor').to.equal(1);
    p.state.rss += 40 * MB;
    timers.advance(1000);
    expect(p.state.collections).to.equal(2);
    trimmer.stop();
  });

  it('collects again at the next quiet interval while each collection gives back half the threshold or more', () => {
    const timers = new ManualTimers();
    const p = fakeProcess();
    // Collections that take no time: nothing to space out.
    const trimmer = new HeapTrimmer({ timers, intervalMs: 1000, quietMs: 1000, minSlackBytes: 32 * MB, ...p, clock: () => timers.now() });
    trimmer.start();
    // Half-empty pages after a burst: each collection compacts 20 MB of them.
    p.state.rss += 120 * MB;
    p.state.freed = 20 * MB;
    timers.advance(1000);
    timers.advance(1000);
    timers.advance(1000);
    expect(p.state.collections).to.equal(3);
    // Then one gives back little: that is the floor.
    p.state.freed = 2 * MB;
    timers.advance(1000);
    timers.advance(10_000);
    expect(p.state.collections).to.equal(4);
    trimmer.stop();
  });

  for (const [maxSpacingMs, expected] of [[60_000, 2], [15_000, 3]] as const) {
    it(`spaces collections so that their pauses take at most the given share of the time, at most ${maxSpacingMs / 1000} s apart`, () => {
      const timers = new ManualTimers();
      const p = fakeProcess();
      // Each collection stops the loop for 600 ms of the trimmer's clock.
      let now = 0;
      const collect = () => {
        now += 600;
        return p.collect();
      };
      const trimmer = new HeapTrimmer({
        timers, intervalMs: 1000, quietMs: 1000, minSlackBytes: 32 * MB, maxPauseShare: 0.03, maxSpacingMs, ...p, collect,
        clock: () => now + timers.now(),
      });
      trimmer.start();
      // Garbage keeps coming free (Timer J ending a burst's transactions), 40 MB a second.
      p.state.freed = 40 * MB;
      for (let s = 0; s < 40; s++) {
        p.state.rss += 40 * MB;
        timers.advance(1000);
      }
      // 600 ms / 0.03 = 20 s: one at the first quiet second, the next 20.6 s later; or 15.6 s
      // later, and again, under a 15 s bound.
      expect(p.state.collections).to.equal(expected);
      trimmer.stop();
    });
  }

  it('counts free space inside the heap as slack (what compaction gives back), not only memory beyond it', () => {
    const timers = new ManualTimers();
    const p = fakeProcess();
    const trimmer = new HeapTrimmer({ timers, intervalMs: 1000, quietMs: 1000, minSlackBytes: 32 * MB, ...p });
    trimmer.start();
    // The heap grew by 100 MB of pages, of which only 20 MB hold live objects.
    p.state.rss += 100 * MB;
    p.state.heapTotal += 100 * MB;
    p.state.heapUsed += 20 * MB;
    timers.advance(1000);
    expect(p.state.collections).to.equal(1);
    trimmer.stop();
  });

  it('waits until the loop has been quiet for the whole quiet stretch', () => {
    const timers = new ManualTimers();
    const p = fakeProcess();
    const trimmer = new HeapTrimmer({ timers, intervalMs: 1000, quietMs: 3000, minSlackBytes: 32 * MB, maxUtilization: 0.25, ...p });
    trimmer.start();
    p.state.rss += 100 * MB;
    p.state.utilization = 0.9;
    timers.advance(4000);
    p.state.utilization = 0.1;
    timers.advance(2000);
    expect(p.state.collections, 'quiet for 2 s of 3').to.equal(0);
    p.state.utilization = 0.5;
    timers.advance(1000);
    p.state.utilization = 0.1;
    timers.advance(2000);
    expect(p.state.collections, 'a busy second starts the stretch again').to.equal(0);
    timers.advance(1000);
    expect(p.state.collections).to.equal(1);
    trimmer.stop();
  });

  it('does not collect while messages arrive that its pause would hold up, however idle the loop', () => {
    const timers = new ManualTimers();
    const p = fakeProcess();
    let received = 0;
    let now = 0;
    // A collection of this 200 MB heap takes 600 ms (3 ms a MB).
    p.state.heapUsed = 200 * MB;
    const collect = p.collect;
    const trimmer = new HeapTrimmer({
      timers, intervalMs: 1000, quietMs: 3000, minSlackBytes: 32 * MB, maxDelayed: 1, ...p,
      received: () => received, clock: () => now,
      collect: () => {
        now += 600;
        return collect();
      },
    });
    trimmer.start();
    p.state.rss += 100 * MB;
    p.state.freed = 10 * MB;
    // 5 messages a second: 200 MB at the first guess of 4 ms a MB is 0.8 s, 4 messages held up.
    for (let i = 0; i < 5; i++) {
      received += 5;
      timers.advance(1000);
    }
    expect(p.state.collections).to.equal(0);
    expect(trimmer.expectedPauseMs()).to.equal(800);
    // A lull: one message in the last three seconds, 0.8 of one held up.
    received += 1;
    timers.advance(1000);
    timers.advance(1000);
    expect(p.state.collections, 'one busy second still in the stretch').to.equal(0);
    timers.advance(1000);
    expect(p.state.collections).to.equal(1);
    // The pause it took is what it expects next time: 3 ms a MB.
    expect(trimmer.expectedPauseMs()).to.equal(600);
    trimmer.stop();
  });

  it('collects under a trickle of messages when the heap is small enough for its pause to hold up none', () => {
    const timers = new ManualTimers();
    const p = fakeProcess();
    let received = 0;
    // 40 MB of heap: 160 ms expected; 5 messages a second put 0.8 of one in that pause.
    const trimmer = new HeapTrimmer({ timers, intervalMs: 1000, quietMs: 3000, minSlackBytes: 32 * MB, ...p, received: () => received });
    trimmer.start();
    p.state.rss += 100 * MB;
    for (let i = 0; i < 3; i++) {
      received += 5;
      timers.advance(1000);
    }
    expect(p.state.collections).to.equal(1);
    trimmer.stop();
  });

  it('stops reading where the runtime offers no collection to run', () => {
    const timers = new ManualTimers();
    const p = fakeProcess();
    const trimmer = new HeapTrimmer({ timers, intervalMs: 1000, quietMs: 1000, minSlackBytes: 32 * MB, ...p, collect: () => false });
    trimmer.start();
    p.state.rss += 100 * MB;
    timers.advance(1000);
    expect(trimmer.collections).to.equal(0);
    expect(timers.size).to.equal(0);
  });

  it('stops reading when stopped', () => {
    const timers = new ManualTimers();
    const p = fakeProcess();
    const trimmer = new HeapTrimmer({ timers, intervalMs: 1000, ...p });
    trimmer.start();
    expect(timers.size).to.equal(1);
    trimmer.stop();
    expect(timers.size).to.equal(0);
  });

  it('the memory-reducing collection gives freed heap pages back to the system', () => {
    // Garbage of some tens of MB, then a plain collection: the pages stay resident in V8's pool.
    let junk: Array<{ a: string; b: number[] }> | undefined = [];
    for (let i = 0; i < 400_000; i++) junk.push({ a: `x${i}`, b: [i, i + 1] });
    expect(junk.length).to.equal(400_000);
    junk = undefined;
    const before = process.memoryUsage();
    expect(memoryReducingCollection()).to.equal(true);
    const after = process.memoryUsage();
    expect(after.heapTotal).to.be.below(before.heapTotal);
    expect(after.rss).to.be.below(before.rss);
    // No `gc` is left exposed to contexts made afterwards (unless node itself was started with it).
    if (!process.execArgv.includes('--expose-gc')) expect(runInNewContext('typeof gc')).to.equal('undefined');
  });
});
