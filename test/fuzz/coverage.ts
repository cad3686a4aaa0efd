import { Session } from 'node:inspector';

/**
 * V8's own precise block coverage (the Profiler domain of the inspector protocol), read
 * after every input: each block of the project's own code that ran is a feature, keyed with
 * a bucket of its hit count (as AFL buckets edge counts), so an input that runs a loop
 * twice as often is new too. The summed hit counts are the work an input cost, the measure
 * of a hang that needs no clock.
 */
export class BlockCoverage {
  private readonly session = new Session();
  private readonly scripts = new Map<string, boolean>();
  private static current: BlockCoverage | undefined;

  /**
   * One session for the process: starting precise coverage makes V8 recompile every
   * function with counters, which costs seconds with mocha and all of src/ loaded, so
   * runs share it (`include` names the scripts each run looks at).
   */
  static shared(include: (url: string) => boolean): BlockCoverage {
    const c = (BlockCoverage.current ??= new BlockCoverage(include));
    c.include = include;
    c.scripts.clear();
    c.known.clear();
    return c;
  }
  /** Every block seen so far, by function (script URL and the function's start). */
  private readonly known = new Map<string, Set<string>>();

  /** `include`: the script URLs whose blocks count (the code under test, not the test harness). */
  private constructor(private include: (url: string) => boolean) {
    this.session.connect();
    this.post('Profiler.enable');
    // callCount: counts reset at each take, so each take is one input's; detailed: blocks, not just functions.
    this.post('Profiler.startPreciseCoverage', { callCount: true, detailed: true });
  }

  /**
   * What ran since the last call: the blocks covered (each with a bucket of its hit count as
   * a feature) and the summed hit counts. V8 leaves out a nested block whose count equals its
   * parent's, but always lists a block that did not run; so a block once seen, inside a
   * function that ran, is covered unless this run lists it (or a block around it) as not run.
   */
  take(): { features: string[]; blocks: Set<string>; work: number } {
    const result = this.post('Profiler.takePreciseCoverage') as { result: Array<{ url: string; functions: Array<{ ranges: Array<{ startOffset: number; endOffset: number; count: number }> }> }> };
    const features: string[] = [];
    const blocks = new Set<string>();
    let work = 0;
    for (const script of result.result) {
      let wanted = this.scripts.get(script.url);
      if (wanted === undefined) this.scripts.set(script.url, (wanted = this.include(script.url)));
      if (!wanted) continue;
      for (const fn of script.functions) {
        const whole = fn.ranges[0];
        if (!whole) continue;
        const fnKey = `${script.url}:${whole.startOffset}`;
        let known = this.known.get(fnKey);
        if (!known) this.known.set(fnKey, (known = new Set()));
        const unrun: Array<[number, number]> = [];
        for (const r of fn.ranges) {
          const block = `${script.url}:${r.startOffset}:${r.endOffset}`;
          known.add(block);
          if (r.count === 0) {
            unrun.push([r.startOffset, r.endOffset]);
            continue;
          }
          blocks.add(block);
          features.push(`${block}#${bucket(r.count)}`);
          work += r.count;
        }
        if (whole.count === 0) continue;
        for (const block of known) {
          if (blocks.has(block)) continue;
          const [start, end] = block.slice(script.url.length + 1).split(':').map(Number) as [number, number];
          if (unrun.some(([s, e]) => s <= start && end <= e)) continue;
          blocks.add(block);
          features.push(block);
        }
      }
    }
    return { features, blocks, work };
  }

  /** The inspector answers a session of the same thread synchronously. */
  private post(method: string, params?: object): unknown {
    let answer: unknown;
    let failure: Error | null = null;
    let done = false;
    this.session.post(method, params ?? {}, (err, res) => {
      failure = err;
      answer = res;
      done = true;
    });
    if (!done) throw new Error(`inspector did not answer ${method} synchronously`);
    if (failure) throw failure;
    return answer;
  }
}

/** AFL's hit-count buckets: 1, 2, 3, 4-7, 8-15, 16-31, 32-127, 128+. */
function bucket(n: number): number {
  if (n <= 3) return n;
  if (n <= 7) return 4;
  if (n <= 15) return 8;
  if (n <= 31) return 16;
  if (n <= 127) return 32;
  return 128;
}
