/**
 * Long fuzz runs: `npm run fuzz -- --minutes N [--target NAME] [--seed S]`. The time is
 * shared among the targets; inputs that added coverage are kept in test/fuzz/corpus/NAME
 * (not committed: a local corpus that the next run starts from), failures are written to
 * test/fuzz/findings/NAME-*.bin and listed at the end. Exit code 1 when anything failed.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { fuzz } from './engine.js';
import { WORK_BOUND } from './work-bound.js';
import { TARGETS } from './targets.js';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const { values } = parseArgs({ options: { minutes: { type: 'string', default: '1' }, target: { type: 'string' }, seed: { type: 'string', default: String(Date.now() % 100_000) } } });
const targets = TARGETS.filter((t) => values.target === undefined || t.name === values.target);
if (targets.length === 0) throw new Error(`no target ${values.target}; targets: ${TARGETS.map((t) => t.name).join(', ')}`);
const each = (Number(values.minutes) * 60_000) / targets.length;
let failed = 0;
for (const target of targets) {
  const corpusDir = join(HERE, 'corpus', target.name);
  mkdirSync(corpusDir, { recursive: true });
  const kept = readdirSync(corpusDir).map((f) => readFileSync(join(corpusDir, f)));
  const withCorpus = { ...target, seeds: () => [...target.seeds(), ...kept] };
  const deadline = Date.now() + each;
  const name = (b: Buffer): string => createHash('sha1').update(b).digest('hex').slice(0, 16);
  const cpu = process.cpuUsage();
  const started = Date.now();
  const report = fuzz(withCorpus, {
    stop: () => Date.now() > deadline,
    seed: Number(values.seed),
    workBound: WORK_BOUND,
    onNewInput: (b) => writeFileSync(join(corpusDir, name(b)), b),
  });
  const used = process.cpuUsage(cpu);
  // CPU seconds beside wall seconds: on a shared machine the rate per CPU second is the engine's own.
  const cpuSeconds = Math.round((used.user + used.system) / 1e5) / 10;
  console.log(JSON.stringify({ target: target.name, seconds: Math.round((Date.now() - started) / 1000), cpuSeconds, executions: report.executions, blocks: report.blocks, corpus: report.corpus, maxWorkPerByte: Math.round(report.maxWorkPerByte * 10) / 10, failures: report.failures.length }));
  for (const f of report.failures) {
    failed++;
    mkdirSync(join(HERE, 'findings'), { recursive: true });
    const file = join(HERE, 'findings', `${target.name}-${name(f.input)}.bin`);
    writeFileSync(file, f.input);
    console.log(`  ${f.kind}: ${f.message}\n    input: ${file}`);
  }
}
process.exitCode = failed > 0 ? 1 : 0;
