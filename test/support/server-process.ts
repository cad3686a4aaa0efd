import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** A port free on 127.0.0.1 for both UDP and TCP (the server listens on both). */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const tcp = net.createServer();
    const port = await new Promise<number>((resolve, reject) => {
      tcp.once('error', reject);
      tcp.listen(0, '127.0.0.1', () => resolve((tcp.address() as net.AddressInfo).port));
    });
    const udp = dgram.createSocket('udp4');
    const ok = await new Promise<boolean>((resolve) => {
      udp.once('error', () => resolve(false));
      udp.bind(port, '127.0.0.1', () => resolve(true));
    });
    await new Promise<void>((r) => tcp.close(() => r()));
    if (ok) {
      await new Promise<void>((r) => udp.close(() => r()));
      return port;
    }
    udp.close();
  }
  throw new Error('no free port');
}

export interface ServerProcess {
  readonly child: ChildProcess;
  /** Every log line printed so far (pino JSON). */
  readonly lines: string[];
  /** The config file it runs with (CLI commands pass it too, to find the control socket). */
  readonly configFile: string;
  /** Sends `signal` and resolves with the exit code (or the signal's name). */
  stop(signal?: NodeJS.Signals): Promise<number | string>;
}

/** A server process spawned but perhaps not listening yet. */
export interface SpawnedServer extends ServerProcess {
  /** Resolves once it logged that it listens; rejects if it exits first or takes longer than `timeoutMs`. */
  listening(timeoutMs?: number): Promise<void>;
}

/**
 * Runs `simple-presence serve` as its own process (the CLI, as an operator runs it) with
 * `config` written to a file in `dir`, without waiting for it to listen.
 */
export function spawnServerProcess(dir: string, config: object, env: Record<string, string> = {}, options: { openFiles?: number; dist?: boolean } = {}): SpawnedServer {
  const file = join(dir, `config-${Date.now()}-${Math.random().toString(36).slice(2)}.json`);
  // Overload control off unless the test turns it on (as startTestServer does): how busy the
  // test machine is must not decide whether a test's request is answered or refused with 503.
  writeFileSync(file, JSON.stringify({ overload: { enabled: false }, ...config }));
  // `dist`: the built CLI (`npm run build` first), which starts in half the time of compiling src/ with tsx.
  const main = options.dist ? [join(ROOT, 'dist/src/cli/entry.js')] : ['--import', 'tsx', join(ROOT, 'src/cli/main.ts')];
  const argv = [process.execPath, ...main, 'serve', '--config', file];
  // `openFiles`: started under that open-file limit (soft and hard), as a shell's `ulimit -n` does.
  const [cmd, ...args] = options.openFiles === undefined ? argv : ['sh', '-c', `ulimit -n ${options.openFiles} && exec "$@"`, 'sh', ...argv];
  const child = spawn(cmd!, args, {
    cwd: ROOT,
    // The store of the config file, not a PostgreSQL server CI names in the environment.
    env: { ...process.env, DATABASE_URL: '', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  let announced = false;
  const onListening: Array<() => void> = [];
  let buffered = '';
  const onData = (chunk: Buffer): void => {
    buffered += chunk.toString();
    let nl;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      lines.push(line);
      if (line.includes('simple-presence listening')) {
        announced = true;
        for (const f of onListening.splice(0)) f();
      }
    }
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  return {
    child,
    lines,
    configFile: file,
    stop: (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
    listening: (timeoutMs = 30_000) =>
      new Promise<void>((resolve, reject) => {
        if (announced) return resolve();
        const timer = setTimeout(() => reject(new Error(`server did not start within ${timeoutMs} ms:\n${lines.join('\n')}`)), timeoutMs);
        onListening.push(() => {
          clearTimeout(timer);
          resolve();
        });
        void exited.then((code) => {
          clearTimeout(timer);
          reject(new Error(`server exited (${code}) before listening:\n${lines.join('\n')}`));
        });
      }),
  };
}

/**
 * Runs `simple-presence serve` as its own process with `config` written to a file in `dir`,
 * and resolves once it logged that it listens.
 */
export async function startServerProcess(
  dir: string,
  config: object,
  env: Record<string, string> = {},
  timeoutMs = 30_000,
  options: { openFiles?: number } = {},
): Promise<ServerProcess> {
  const server = spawnServerProcess(dir, config, env, options);
  try {
    await server.listening(timeoutMs);
  } catch (err) {
    // A server that did not start in time must not outlive the test that gave up on it.
    await server.stop('SIGKILL');
    throw err;
  }
  return server;
}

/** Runs a CLI command (`simple-presence ARGS`) to its end; resolves with its exit code and output. */
export function runCli(args: readonly string[], env: Record<string, string> = {}): Promise<{ code: number; out: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), ...args], {
    cwd: ROOT,
    env: { ...process.env, DATABASE_URL: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code: code ?? -1, out })));
}
