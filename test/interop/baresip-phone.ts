import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestServer, type TestServer } from '../support/test-server.js';

export function haveBaresip(): boolean {
  return spawnSync('baresip', ['-h'], { stdio: 'ignore' }).error === undefined;
}

/** A running baresip: its SIP trace (`-s`) and console output, and a stop that always ends it. */
export interface BaresipPhone {
  readonly child: ChildProcess;
  /** Everything it printed so far. */
  out(): string;
  /** SIGTERM (baresip un-registers and may wait for answers), SIGKILL 3 s later. */
  stop(): Promise<void>;
}

/**
 * One interop suite's sandbox: skipped without baresip, a test server and a config directory
 * before, and after it the phone killed should it still be up (one left behind here once grew
 * to 21 GB), the server stopped and the directory removed.
 */
export function baresipSandbox(suite: Mocha.Suite, name: string): { readonly srv: () => TestServer; readonly startPhone: (configLines: readonly string[], account: string, args?: readonly string[]) => BaresipPhone } {
  let srv: TestServer | undefined;
  let dir: string | undefined;
  let phone: ChildProcess | undefined;
  suite.beforeAll(async function () {
    if (!haveBaresip()) {
      console.log(`      baresip is not installed: ${name} skipped`);
      this.skip();
    }
    dir = mkdtempSync(join(tmpdir(), 'baresip-'));
    srv = await startTestServer({});
  });
  suite.afterAll(async () => {
    if (phone && phone.exitCode === null && phone.signalCode === null) phone.kill('SIGKILL');
    await srv?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  return {
    srv: () => srv!,
    startPhone: (configLines, account, args = []) => {
      writeFileSync(join(dir!, 'config'), ['module_path /usr/lib/baresip/modules', ...configLines, 'audio_player none', 'audio_source none', ''].join('\n'));
      writeFileSync(join(dir!, 'accounts'), account);
      writeFileSync(join(dir!, 'contacts'), '');
      const child = (phone = spawn('baresip', ['-f', dir!, '-s', ...args], { stdio: ['pipe', 'pipe', 'pipe'] }));
      let out = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      child.stderr.on('data', (c: Buffer) => (out += c.toString()));
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      return {
        child,
        out: () => out,
        stop: async () => {
          child.kill('SIGTERM');
          const killer = setTimeout(() => child.kill('SIGKILL'), 3000);
          await exited;
          clearTimeout(killer);
        },
      };
    },
  };
}
