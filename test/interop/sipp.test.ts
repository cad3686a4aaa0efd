import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { freePort } from '../support/server-process.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { pino } from 'pino';
import { openStore, type Store } from '../../src/store/index.js';

/**
 * Interop with SIPp (Debian package sip-tester), an independent SIP test tool: each
 * scenario under test/interop/sipp/ runs against the real server over UDP and TCP, and
 * SIPp's own checks (expected responses, header and body regexps) decide pass or fail.
 * With authentication on, the server is set to challenge with MD5 only (auth.algorithms):
 * SIPp 3.6 answers only the first WWW-Authenticate and only MD5, while the default
 * offers SHA-256 first (RFC 8760 §2.4).
 */

const SCENARIOS = fileURLToPath(new URL('./sipp/', import.meta.url));

function haveSipp(): boolean {
  try {
    execFileSync('sipp', ['-v'], { stdio: 'ignore' });
    return true;
  } catch (err) {
    // sipp -v exits non-zero on some builds but still exists.
    return (err as NodeJS.ErrnoException).code !== 'ENOENT';
  }
}

interface SippRun {
  readonly code: number;
  readonly output: string;
  readonly errors: string;
}

async function runSipp(target: string, scenario: string, transport: 'u1' | 't1', user: string, dir: string, password?: string): Promise<SippRun> {
  // An explicit free local port: SIPp's default is 5060, which a running server may hold.
  const localPort = await freePort();
  const errorFile = join(dir, `${scenario}-${transport}-${user}.err`);
  const args = [
    target, '-sf', join(SCENARIOS, `${scenario}.xml`), '-t', transport, '-m', '1', '-i', '127.0.0.1', '-p', String(localPort),
    '-key', 'user', user, '-nostdin', '-timeout', '10', '-timeout_error', '-recv_timeout', '5000',
    '-trace_err', '-error_file', errorFile,
    ...(password !== undefined ? ['-au', user, '-ap', password] : []),
  ];
  return new Promise((resolve) => {
    execFile('sipp', args, { cwd: dir, timeout: 20_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : -1) : 0;
      const errors = existsSync(errorFile) ? readFileSync(errorFile, 'utf8') : '';
      resolve({ code, output: `${stdout}\n${stderr}`, errors });
    });
  });
}

describe('interop: SIPp scenarios', function () {
  this.timeout(30_000);
  let srv: TestServer;
  let dir: string;
  let n = 0;

  before(async function () {
    if (!haveSipp()) {
      console.log('      sipp is not installed (Debian package sip-tester; .ci/run installs it): SIPp interop skipped');
      this.skip();
    }
    dir = mkdtempSync(join(tmpdir(), 'sipp-'));
    srv = await startTestServer({ registrar: { minExpires: 60 } });
  });
  after(async () => {
    await srv?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const cases: Array<[string, 'u1' | 't1']> = [
    ['register', 'u1'],
    ['register', 't1'],
    ['publish', 'u1'],
    ['publish', 't1'],
    ['publish-dialog', 'u1'],
    ['publish-dialog', 't1'],
    ['subscribe', 'u1'],
    ['subscribe', 't1'],
    ['message', 'u1'],
    ['message', 't1'],
  ];
  for (const [scenario, transport] of cases) {
    it(`${scenario} over ${transport === 'u1' ? 'UDP' : 'TCP'}`, async () => {
      const run = await runSipp(`127.0.0.1:${srv.port}`, scenario, transport, `sipp${++n}${transport}`, dir);
      expect(run.code, `sipp exit ${run.code}\n${run.errors}\n${run.output.slice(-3000)}`).to.equal(0);
    });
  }
});

describe('interop: SIPp with digest authentication on', function () {
  this.timeout(30_000);
  let srv: TestServer;
  let store: Store;
  let dir: string;
  let n = 0;

  before(async function () {
    if (!haveSipp()) this.skip();
    dir = mkdtempSync(join(tmpdir(), 'sipp-auth-'));
    store = await openStore({ logger: pino({ level: 'silent' }) });
    srv = await startTestServer({ auth: { required: true, algorithms: ['MD5'], defaultPolicy: 'allow' } }, { store });
  });
  after(async () => {
    await srv?.stop();
    await store?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  for (const transport of ['u1', 't1'] as const) {
    it(`registers and publishes after a 401 over ${transport === 'u1' ? 'UDP' : 'TCP'}`, async () => {
      const user = `sippauth${++n}`;
      await srv.server.security.admin!.addUser({ username: user, password: 'sipp secret 1' });
      const run = await runSipp(`127.0.0.1:${srv.port}`, 'auth', transport, user, dir, 'sipp secret 1');
      expect(run.code, `sipp exit ${run.code}\n${run.errors}\n${run.output.slice(-3000)}`).to.equal(0);
    });
  }

  for (const transport of ['u1', 't1'] as const) {
    it(`subscribes, unsubscribes and messages after a 401 over ${transport === 'u1' ? 'UDP' : 'TCP'}`, async () => {
      const user = `sippauth${++n}`;
      await srv.server.security.admin!.addUser({ username: user, password: 'sipp secret 2' });
      const run = await runSipp(`127.0.0.1:${srv.port}`, 'auth-subscribe', transport, user, dir, 'sipp secret 2');
      expect(run.code, `sipp exit ${run.code}\n${run.errors}\n${run.output.slice(-3000)}`).to.equal(0);
    });
  }

  it('fails with a wrong password', async () => {
    const user = `sippauth${++n}`;
    await srv.server.security.admin!.addUser({ username: user, password: 'the right one' });
    const run = await runSipp(`127.0.0.1:${srv.port}`, 'auth', 'u1', user, dir, 'a wrong one');
    expect(run.code).to.not.equal(0);
  });
});
