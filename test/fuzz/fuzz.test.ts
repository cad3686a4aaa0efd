import { expect } from 'chai';
import { fuzz, type FuzzFailure, type FuzzTarget } from './engine.js';
import { magicBytes, quadratic } from './magic-bytes.js';
import { TARGETS } from './targets.js';
import { WORK_BOUND } from './work-bound.js';

/** Executions of each target in the suite: a few seconds each on a loaded machine; `npm run fuzz` runs for minutes. */
const SHORT_RUN = 200;

function describeFailures(failures: readonly FuzzFailure[]): string {
  return failures.map((f) => `${f.kind}: ${f.message}\n  input: ${JSON.stringify(f.input.toString('latin1').slice(0, 400))}`).join('\n');
}

describe('fuzz: coverage-guided runs of every parser of network input (test/fuzz)', function () {
  this.timeout(60_000);

  it('the engine finds a bug behind two nested comparisons through coverage (not blind luck)', () => {
    // With the letters in its dictionary, a mutation puts the right one in the right place about
    // once in 150 tries: a few hundred executions step by step, tens of thousands for both at once.
    const toy: FuzzTarget = { name: 'magic-bytes', maxLength: 16, dictionary: ['F', 'U'], seeds: () => [Buffer.from('abcd')], run: magicBytes };
    const report = fuzz(toy, { executions: 5_000, untilFailure: true, include: (url) => url.includes('/test/fuzz/magic-bytes') });
    expect(report.failures.map((f) => f.message)).to.deep.equal(['TypeError: reached the planted bug']);
    expect(report.executions).to.be.below(5_000);
    expect(report.failures[0]!.input.subarray(0, 2).toString()).to.equal('FU');
  });

  it('the work bound takes a parser quadratic in its input for a hang, whatever the clock says', () => {
    const toy: FuzzTarget = { name: 'quadratic', maxLength: 2048, dictionary: [], seeds: () => [Buffer.alloc(16, 0x61), Buffer.alloc(1500, 0x61)], run: (b) => void quadratic(b) };
    const report = fuzz(toy, { executions: 0, workBound: WORK_BOUND, include: (url) => url.includes('/test/fuzz/magic-bytes') });
    expect(report.failures.map((f) => [f.kind, f.input.length])).to.deep.equal([['hang', 1500]]);
  });

  for (const target of TARGETS) {
    it(`${target.name}: seeds, regressions and ${SHORT_RUN} mutated inputs: only the parser's own errors, no hang`, () => {
      const report = fuzz(target, { executions: SHORT_RUN, seed: 1, workBound: WORK_BOUND });
      expect(report.failures, describeFailures(report.failures)).to.deep.equal([]);
      expect(report.blocks).to.be.above(0);
    });
  }
});
