import { expect } from 'chai';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../../src/config/config.js';
import { freePort } from '../support/server-process.js';
import { until } from '../support/wait.js';

/**
 * docs/install.md: `npm pack`, then `npm install -g` of the tarball, then `simple-presence
 * serve` from any directory. Done here exactly so, in a temporary prefix, with the built dist/
 * that `npm install` made (npm pack would otherwise build it again).
 */
/** The V8 options the server runs with (config/node-flags). */
function nodeFlags(): string[] {
  return readFileSync(join(packageRoot(), 'config', 'node-flags'), 'utf8').split(/\s+/).filter(Boolean);
}

describe('install: npm start runs the server with the V8 options of config/node-flags', () => {
  it('the start script carries them as the launcher does', () => {
    const pkg = JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    const flags = nodeFlags();
    expect(flags).to.not.be.empty;
    for (const flag of flags) expect(pkg.scripts.start!.split(/\s+/)).to.include(flag);
  });
});

describe('install: the packed package installs globally and runs from any directory', function () {
  this.timeout(300_000);
  let dir: string;
  let bin: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'sp-global-'));
    const npm = (args: string[], cwd: string): string => execFileSync('npm', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const tarball = npm(['pack', '--ignore-scripts', '--pack-destination', dir, '--silent'], packageRoot()).trim().split('\n').pop()!;
    const prefix = join(dir, 'prefix');
    npm(['install', '--global', '--prefix', prefix, '--no-audit', '--no-fund', '--silent', join(dir, tarball)], dir);
    bin = join(prefix, 'bin', 'simple-presence');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('ships what it needs and nothing of the checkout', () => {
    const pkg = join(dir, 'prefix', 'lib', 'node_modules', 'simple-presence');
    for (const needed of ['bin/simple-presence', 'dist/src/cli/entry.js', 'dist/web/index.html', 'config/default.json', 'schemas/config.schema.json', 'schemas/sql']) {
      expect(existsSync(join(pkg, needed)), needed).to.equal(true);
    }
    for (const absent of ['src', 'test', 'bench', '.ci', 'dist/test']) expect(existsSync(join(pkg, absent)), absent).to.equal(false);
    expect(execFileSync(bin, ['version'], { encoding: 'utf8' }).trim()).to.match(/^\d+\.\d+\.\d+$/);
  });

  it('serves from another directory on its own Node.js 24, data in the working directory, and stops on SIGTERM', async () => {
    const work = join(dir, 'somewhere-else');
    mkdirSync(work);
    const port = await freePort();
    const env = { ...process.env, PATH: '/usr/bin:/bin', SIP_HOST: '127.0.0.1', SIP_PORT: String(port), HTTP_PORT: '0', LOG_FORMAT: 'json', DATABASE_URL: '', DATA_DIR: '' };
    const server = spawn(bin, ['serve'], { cwd: work, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    server.stdout.on('data', (d: Buffer) => (out += d.toString()));
    server.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => server.once('exit', (code) => resolve(code)));
    try {
      await until(() => out.includes('simple-presence listening') || server.exitCode !== null, 'the server listening', 60_000);
      expect(out).to.contain('simple-presence listening');
      // The launcher exec'd the package's own Node.js 24, not the system's.
      expect(readlinkSync(`/proc/${server.pid}/exe`)).to.contain(join('simple-presence', 'node_modules'));
      // ...with the V8 options of config/node-flags (the young generation's bound).
      const argv = readFileSync(`/proc/${server.pid}/cmdline`, 'utf8').split('\0');
      for (const flag of nodeFlags()) expect(argv).to.include(flag);
      const listening = JSON.parse(out.split('\n').find((l) => l.includes('simple-presence listening'))!) as { listeners: string[] };
      const http = Number(listening.listeners.find((l) => l.startsWith('ws:'))!.split(':').pop());
      // The web client and the schemas are found inside the package.
      const page = await fetch(`http://127.0.0.1:${http}/`);
      expect(page.status).to.equal(200);
      expect(await page.text()).to.contain('<html');
      expect(readdirSync(join(work, 'data'))).to.include('control.sock');
      // The CLI of the same install reaches the running server through the data directory.
      execFileSync(bin, ['user', 'add', 'alice', '--password', 'alice-secret'], { cwd: work, env, encoding: 'utf8' });
      expect(execFileSync(bin, ['user', 'list'], { cwd: work, env, encoding: 'utf8' })).to.contain('alice');
    } finally {
      server.kill('SIGTERM');
    }
    expect(await exited).to.equal(0);
  });
});
