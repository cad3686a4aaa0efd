import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../../src/config/config.js';
import { freePort } from '../support/server-process.js';
import { until } from '../support/wait.js';

/**
 * The docs stay true: every ```sh block of README.md and docs/*.md runs here, in document
 * order, file by file, as a reader would type it in a checkout after `npm install`, with
 * `simple-presence` on PATH and exports carried from block to block. Each file gets a checkout
 * of its own (a directory of links to this one's files, so what a block writes, ./data
 * included, stays there), a HOME and free ports: 5060 and 8080 in a block are replaced by
 * them, and SIP_PORT/HTTP_PORT/SIP_HOST point the server and the client commands there.
 *
 * A comment on the line before a block says how to run it:
 *   (none)                                run it; it must exit 0
 *   <!-- docs-check: background /RE/ -->  start it, wait until its output matches RE, leave it
 *                                         running for the later blocks, SIGTERM at the end
 *   <!-- docs-check: interrupt /RE/ -->   start it, wait for RE, then Ctrl-C (SIGINT): exit 0
 *   <!-- docs-check: fails /RE/ -->       run it; it must exit non-zero, having printed RE
 *   <!-- docs-check: skip REASON -->      not run here, for the reason given (listed below)
 */

interface Block {
  readonly file: string;
  readonly line: number;
  readonly text: string;
  readonly mode: { kind: 'run' } | { kind: 'background' | 'interrupt' | 'fails'; until: RegExp } | { kind: 'skip'; reason: string };
}

const ROOT = packageRoot();
/** How long a block that runs to its end may take. */
const BLOCK_DEADLINE_MS = 180_000;
const DIRECTIVE = /^<!--\s*docs-check:\s*(background|interrupt|fails|skip)\s+(.*?)\s*-->$/;

function docFiles(): string[] {
  const docs = readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .sort()
    .map((f) => join('docs', f));
  return ['README.md', ...docs];
}

export function shellBlocks(file: string, markdown: string): Block[] {
  const lines = markdown.split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const fence = /^(\s*)```(\S*)/.exec(lines[i]!);
    if (!fence) continue;
    let end = i + 1;
    while (end < lines.length && !/^\s*```\s*$/.test(lines[end]!)) end++;
    if (fence[2] === 'sh') {
      const directive = DIRECTIVE.exec((lines[i - 1] ?? '').trim());
      let mode: Block['mode'] = { kind: 'run' };
      if (directive) {
        const [, kind, arg] = directive;
        if (kind === 'skip') mode = { kind: 'skip', reason: arg! };
        else {
          const re = /^\/(.*)\/$/.exec(arg!);
          if (!re) throw new Error(`${file}:${i}: docs-check ${kind} needs /REGEX/`);
          mode = { kind: kind as 'background' | 'interrupt' | 'fails', until: new RegExp(re[1]!) };
        }
      }
      blocks.push({ file, line: i + 1, text: lines.slice(i + 1, end).join('\n'), mode });
    }
    i = end;
  }
  return blocks;
}

/** One reader's shell session over the blocks of one file. */
class Sandbox {
  readonly dir = mkdtempSync(join(tmpdir(), 'sp-docs-'));
  /** The reader's checkout: links to every top-level entry of this one. */
  private readonly checkout = join(this.dir, 'checkout');
  private readonly envFile = join(this.dir, 'env.sh');
  private readonly background: { block: Block; child: ChildProcess; output: () => string }[] = [];
  sipPort = 0;
  httpPort = 0;

  async open(): Promise<void> {
    this.sipPort = await freePort();
    this.httpPort = await freePort();
    const bin = join(this.dir, 'bin');
    mkdirSync(bin);
    mkdirSync(join(this.dir, 'home'));
    mkdirSync(this.checkout);
    for (const entry of readdirSync(ROOT)) if (entry !== 'data' && entry !== '.git') symlinkSync(join(ROOT, entry), join(this.checkout, entry));
    symlinkSync(join(ROOT, 'bin', 'simple-presence'), join(bin, 'simple-presence'));
    const env: Record<string, string> = {
      PATH: `${bin}:${process.env.PATH ?? ''}`,
      HOME: join(this.dir, 'home'),
      SIP_HOST: '127.0.0.1',
      SIP_PORT: String(this.sipPort),
      HTTP_PORT: String(this.httpPort),
      LOG_FORMAT: 'json',
    };
    writeFileSync(this.envFile, Object.entries(env).map(([k, v]) => `export ${k}=${shellQuote(v)}`).join('\n') + '\n');
  }

  /** Other free ports for the blocks from here on (the session's exports keep the rest). */
  private async newPorts(): Promise<void> {
    this.sipPort = await freePort();
    this.httpPort = await freePort();
    appendFileSync(this.envFile, `export SIP_PORT=${this.sipPort}\nexport HTTP_PORT=${this.httpPort}\n`);
  }

  /** The block as the shell runs it: the session's exports in, its own exports out. */
  private script(block: Block, keepEnv: boolean): string {
    const text = block.text.replace(/\b5060\b/g, String(this.sipPort)).replace(/\b8080\b/g, String(this.httpPort));
    return `source ${shellQuote(this.envFile)}\nset -eo pipefail\n${text}\n${keepEnv ? `export -p > ${shellQuote(this.envFile)}\n` : ''}`;
  }

  private start(block: Block, keepEnv: boolean): { child: ChildProcess; output: () => string; exit: Promise<number | string> } {
    // Nothing of the suite's own environment (DATABASE_URL, for one) but PATH: the env file is the session's.
    const child = spawn('bash', ['-c', this.script(block, keepEnv)], { cwd: this.checkout, env: { PATH: process.env.PATH ?? '' }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const exit = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
    return { child, output: () => out, exit };
  }

  async run(block: Block): Promise<void> {
    const where = `${block.file}:${block.line}`;
    const mode = block.mode;
    if (mode.kind === 'skip') return;
    if (mode.kind === 'run' || mode.kind === 'fails') {
      const { child, output, exit } = this.start(block, true);
      // A block that should end but runs on (a server it was not meant to start) fails here.
      const deadline = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), BLOCK_DEADLINE_MS);
      const code = await exit;
      clearTimeout(deadline);
      expect(code, `${where} still running after ${BLOCK_DEADLINE_MS} ms, killed:\n${output()}`).to.not.equal('SIGKILL');
      if (mode.kind === 'run') expect(code, `${where} exited ${code}:\n${block.text}\n--- output:\n${output()}`).to.equal(0);
      else {
        expect(code, `${where} should fail:\n${output()}`).to.not.equal(0);
        expect(output(), where).to.match(mode.until);
      }
      return;
    }
    let { child, output, exit } = this.start(block, false);
    let ended: number | string | undefined;
    void exit.then((c) => (ended = c));
    await until(() => mode.until.test(output()) || ended !== undefined, `${where}: ${mode.until}`, 60_000);
    if (ended !== undefined && /EADDRINUSE/.test(output())) {
      // A free port picked at the file's start was taken since (an outgoing connection of
      // another process may be given any ephemeral port): once more on new ones.
      await this.newPorts();
      ({ child, output, exit } = this.start(block, false));
      ended = undefined;
      void exit.then((c) => (ended = c));
      await until(() => mode.until.test(output()) || ended !== undefined, `${where}: ${mode.until}`, 60_000);
    }
    expect(mode.until.test(output()), `${where} ended (${ended}) before printing ${mode.until}:\n${output()}`).to.equal(true);
    if (mode.kind === 'background') {
      this.background.push({ block, child, output });
      return;
    }
    // Ctrl-C reaches the whole foreground process group.
    process.kill(-child.pid!, 'SIGINT');
    const code = await exit;
    expect(code, `${where} after Ctrl-C:\n${output()}`).to.equal(0);
  }

  /** Background blocks (servers) must still be up, and stop on SIGTERM. */
  async close(): Promise<void> {
    for (const { block, child, output } of this.background.reverse()) {
      const where = `${block.file}:${block.line}`;
      const alive = child.exitCode === null && child.signalCode === null;
      const exit = new Promise<void>((resolve) => (alive ? child.once('exit', () => resolve()) : resolve()));
      if (alive) process.kill(-child.pid!, 'SIGTERM');
      await exit;
      expect(alive, `${where} had ended before the file's last block:\n${output()}`).to.equal(true);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Ends whatever is left after a failure. */
  kill(): void {
    for (const { child } of this.background) if (child.exitCode === null) process.kill(-child.pid!, 'SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Files checked at once: each is mostly waiting on processes, so a few share the cores well. */
const CONCURRENT_FILES = 3;

async function checkFile(file: string, blocks: readonly Block[], skipped: string[]): Promise<void> {
  const sandbox = new Sandbox();
  try {
    await sandbox.open();
    for (const block of blocks) {
      if (block.mode.kind === 'skip') skipped.push(`${file}:${block.line}: ${block.mode.reason}`);
      await sandbox.run(block);
    }
    await sandbox.close();
  } catch (e) {
    sandbox.kill();
    throw e;
  }
}

/** Runs the tasks at most `limit` at a time; the promises are in the tasks' order. */
function limited(limit: number, tasks: readonly (() => Promise<void>)[]): Promise<void>[] {
  let running = 0;
  const waiting: (() => void)[] = [];
  return tasks.map(
    (task) =>
      new Promise<void>((resolve, reject) => {
        const go = (): void => {
          running++;
          task()
            .then(resolve, reject)
            .finally(() => {
              running--;
              waiting.shift()?.();
            });
        };
        if (running < limit) go();
        else waiting.push(go);
      }),
  );
}

describe('docs: every shell block of README.md and docs/ runs as written', function () {
  this.timeout(600_000);
  const files = docFiles()
    .map((file) => ({ file, blocks: shellBlocks(file, readFileSync(join(ROOT, file), 'utf8')) }))
    .filter((f) => f.blocks.length > 0);
  const skipped: string[] = [];
  const results = new Map<string, Promise<void>>();

  // Every file starts in before(), a few at a time; each it() waits for its own.
  before(() => {
    const runs = limited(CONCURRENT_FILES, files.map((f) => () => checkFile(f.file, f.blocks, skipped)));
    files.forEach((f, i) => {
      const run = runs[i]!;
      run.catch(() => undefined); // reported by the file's it(), not as an unhandled rejection
      results.set(f.file, run);
    });
  });

  for (const { file, blocks } of files) {
    it(`${file}: ${blocks.length} block(s)`, () => results.get(file));
  }

  after(() => {
    if (skipped.length > 0) console.log(`      blocks not run here, and why:\n${skipped.map((s) => `        ${s}`).join('\n')}`);
  });
});
