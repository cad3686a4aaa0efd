import { prng } from '../presence/pidf/helpers.js';
import { BlockCoverage } from './coverage.js';

/** One parser under fuzz. */
export interface FuzzTarget {
  readonly name: string;
  /** Seed inputs (RFC 4475 torture messages, interop captures, documents of the tests). */
  seeds(): Buffer[];
  /** Tokens the mutator inserts (the grammar's punctuation and keywords). */
  readonly dictionary: readonly string[];
  /** Inputs are cut to this many bytes (the server's own limits are about this size). */
  readonly maxLength: number;
  /**
   * Runs the parser on one input and checks what it must guarantee; throws FuzzFinding
   * (or anything else: a crash) when it does not.
   */
  run(input: Buffer): void;
}

/** A property of a parser broken by an input (anything else thrown is a crash). */
export class FuzzFinding extends Error {
  override name = 'FuzzFinding';
}

export interface FuzzOptions {
  /** Stop after this many executions... */
  readonly executions?: number;
  /** ...or when this returns true (long runs: a deadline); checked every 64 executions. */
  readonly stop?: () => boolean;
  readonly seed?: number;
  /** Stop at the first failure (the engine's own test). */
  readonly untilFailure?: boolean;
  /**
   * The work bound (summed block hit counts of the code under test) an input of `length`
   * bytes may cost: above it, a hang. Linear in the length: a parser that is not is the finding.
   */
  readonly workBound?: (length: number) => number;
  /** The scripts whose blocks guide the search (default: the project's src/). */
  readonly include?: (url: string) => boolean;
  /** Called for each input that added coverage (to keep a corpus on disk). */
  readonly onNewInput?: (input: Buffer) => void;
}

export interface FuzzFailure {
  readonly input: Buffer;
  readonly kind: 'crash' | 'finding' | 'hang';
  readonly message: string;
}

export interface FuzzReport {
  readonly target: string;
  readonly executions: number;
  /** Distinct blocks of the code under test covered by the corpus. */
  readonly blocks: number;
  readonly corpus: number;
  /** The largest work seen per input byte (for the hang bound's calibration). */
  readonly maxWorkPerByte: number;
  readonly failures: readonly FuzzFailure[];
}

/** The project's own code under test: src/, not the harness, tests or libraries. */
export const projectSource = (url: string): boolean => url.includes('/src/') && !url.includes('/node_modules/');

const INTERESTING = [0x00, 0x09, 0x0a, 0x0d, 0x20, 0x22, 0x25, 0x2c, 0x3a, 0x3b, 0x3c, 0x3d, 0x3e, 0x40, 0x5c, 0x7f, 0x80, 0xc0, 0xff];
const NUMBERS = ['0', '-1', '4294967295', '4294967296', '99999999999999999999', '1e9', '0x10', '00000000000001', 'NaN'];

/**
 * A coverage-guided mutation loop: take an input of the corpus, mutate it (byte flips,
 * interesting bytes, inserted dictionary tokens and numbers, deletions, duplicated ranges,
 * splices with another corpus input), run the target, keep the input when it covered a
 * block (or a hit-count bucket of one) no input covered before.
 */
export function fuzz(target: FuzzTarget, options: FuzzOptions = {}): FuzzReport {
  const random = prng(options.seed ?? 1);
  const pick = (n: number): number => Math.floor(random() * n);
  const coverage = BlockCoverage.shared(options.include ?? projectSource);
  const seen = new Set<string>();
  const blocks = new Set<string>();
  const corpus: Buffer[] = [];
  const failures: FuzzFailure[] = [];
  const failed = new Set<string>();
  let executions = 0;
  let maxWorkPerByte = 0;
  const dictionary = [...target.dictionary.map((t) => Buffer.from(t, 'latin1')), ...NUMBERS.map((n) => Buffer.from(n))];

  const execute = (input: Buffer): boolean => {
    coverage.take(); // what ran before belongs to no input
    let failure: FuzzFailure | undefined;
    try {
      target.run(input);
    } catch (err) {
      const kind = err instanceof FuzzFinding ? 'finding' : 'crash';
      failure = { input, kind, message: `${(err as Error)?.name}: ${(err as Error)?.message}` };
    }
    executions++;
    const taken = coverage.take();
    maxWorkPerByte = Math.max(maxWorkPerByte, taken.work / Math.max(1, input.length));
    if (!failure && options.workBound && taken.work > options.workBound(input.length)) {
      failure = { input, kind: 'hang', message: `work ${taken.work} over the bound ${options.workBound(input.length)} for ${input.length} bytes` };
    }
    if (failure) {
      // One report per distinct message: a thousand inputs hitting the same bug are one finding.
      const key = `${failure.kind}:${failure.message.replace(/\d+/g, 'N')}`;
      if (!failed.has(key)) {
        failed.add(key);
        failures.push(failure);
      }
    }
    for (const b of taken.blocks) blocks.add(b);
    let fresh = false;
    for (const f of taken.features) {
      if (!seen.has(f)) {
        seen.add(f);
        fresh = true;
      }
    }
    return fresh && !failure;
  };

  {
    for (const s of target.seeds()) {
      const input = s.length > target.maxLength ? s.subarray(0, target.maxLength) : s;
      if (execute(input) || corpus.length === 0) corpus.push(input);
    }
    const limit = options.executions ?? Infinity;
    while (executions < limit && !(executions % 64 === 0 && options.stop?.()) && !(options.untilFailure && failures.length > 0)) {
      const parent = corpus[pick(corpus.length)]!;
      const child = mutate(parent, corpus, dictionary, target.maxLength, random);
      if (execute(child)) {
        corpus.push(child);
        options.onNewInput?.(child);
      }
    }
  }
  return { target: target.name, executions, blocks: blocks.size, corpus: corpus.length, maxWorkPerByte, failures };
}

/** One to four stacked mutations of `parent`. */
export function mutate(parent: Buffer, corpus: readonly Buffer[], dictionary: readonly Buffer[], maxLength: number, random: () => number): Buffer {
  const pick = (n: number): number => Math.floor(random() * n);
  let b: Buffer = Buffer.from(parent);
  const rounds = 1 + pick(4);
  for (let r = 0; r < rounds; r++) {
    const at = pick(b.length + 1);
    switch (pick(9)) {
      case 0: // flip a bit
        if (b.length > 0) b[at % b.length]! ^= 1 << pick(8);
        break;
      case 1: // an interesting byte
        if (b.length > 0) b[at % b.length] = INTERESTING[pick(INTERESTING.length)]!;
        break;
      case 2: // a random byte
        if (b.length > 0) b[at % b.length] = pick(256);
        break;
      case 3: // insert a dictionary token
      case 4:
        b = Buffer.concat([b.subarray(0, at), dictionary[pick(dictionary.length)]!, b.subarray(at)]);
        break;
      case 5: { // delete a range
        const len = 1 + pick(Math.min(32, Math.max(1, b.length - at)));
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + len)]);
        break;
      }
      case 6: { // duplicate a range, up to many times (repeated headers, nesting, long lists)
        const len = 1 + pick(Math.min(64, Math.max(1, b.length - at)));
        const chunk = b.subarray(at, at + len);
        const times = 1 + (random() < 0.2 ? pick(64) : pick(3));
        b = Buffer.concat([b.subarray(0, at + len), ...Array<Buffer>(times).fill(chunk), b.subarray(at + len)]);
        break;
      }
      case 7: { // splice: a piece of another input
        const other = corpus[pick(corpus.length)]!;
        const from = pick(other.length + 1);
        const len = pick(Math.min(256, other.length - from) + 1);
        b = Buffer.concat([b.subarray(0, at), other.subarray(from, from + len), b.subarray(at)]);
        break;
      }
      case 8: // truncate
        b = b.subarray(0, at);
        break;
    }
  }
  return b.length > maxLength ? b.subarray(0, maxLength) : b;
}
