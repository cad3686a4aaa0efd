import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../../src/config/config.js';

const SCRIPT = join(packageRoot(), 'test', 'support', 'ensure-tools.mjs');

/**
 * `npm test` first runs test/support/ensure-tools.mjs. As root with apt-get it installs what
 * is missing (CI on a fresh machine shows that); anyone else gets one line naming the
 * packages and a failure, before any test runs. Here: a user who is not root, with none of
 * the tools on PATH.
 */
describe('install: npm test checks for the programs the suite drives', () => {
  it('stops with one line naming the Debian packages when it cannot install them', () => {
    const bin = mkdtempSync(join(tmpdir(), 'sp-nobin-'));
    try {
      chmodSync(bin, 0o755); // mkdtemp makes it 0700: nobody could not run node from it
      symlinkSync(process.execPath, join(bin, 'node'));
      const asRoot = process.getuid?.() === 0;
      // As root, run it as nobody (who may not use apt-get); otherwise as ourselves.
      const runuser = spawnSync('sh', ['-c', 'command -v runuser'], { encoding: 'utf8' }).stdout.trim();
      if (asRoot && !runuser) throw new Error('runuser (util-linux) is needed to run this as a user other than root');
      const argv = asRoot ? [runuser, '-u', 'nobody', '--', join(bin, 'node'), SCRIPT] : [join(bin, 'node'), SCRIPT];
      const r = spawnSync(argv[0]!, argv.slice(1), { env: { PATH: bin }, encoding: 'utf8' });
      expect(r.status).to.equal(1);
      expect(r.stdout).to.equal('');
      const lines = r.stderr.trim().split('\n');
      expect(lines).to.have.length(1);
      expect(lines[0]).to.match(/^npm test needs chromium, sip-tester, openssl, python3, systemd, nats-server /);
      expect(lines[0]).to.contain('apt-get install chromium sip-tester openssl python3 systemd nats-server');
    } finally {
      rmSync(bin, { recursive: true, force: true });
    }
  });

  it('says nothing and succeeds when every program is there', () => {
    const r = spawnSync(process.execPath, [SCRIPT], { encoding: 'utf8' });
    expect(r.status).to.equal(0);
    expect(r.stdout + r.stderr).to.equal('');
  });
});
