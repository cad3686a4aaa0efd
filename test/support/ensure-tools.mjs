// `npm test` runs this first (the `pretest` script): the suite drives real programs, and a
// suite that skips what it cannot drive proves nothing. Each tool missing from PATH is
// installed from Debian's packages when we can (root with apt-get); otherwise we stop at
// once with one line naming the packages, before any test runs.
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/** The programs the suite drives, the Debian package of each, and what needs it. */
export const TOOLS = [
  { command: 'chromium', pkg: 'chromium', usedBy: 'test/web (the web client in headless Chromium)' },
  { command: 'sipp', pkg: 'sip-tester', usedBy: 'test/interop (SIPp scenarios)' },
  { command: 'openssl', pkg: 'openssl', usedBy: 'the TLS and WSS tests (throwaway certificates)' },
  { command: 'python3', pkg: 'python3', usedBy: 'test/cli (a stand-in for systemd\'s notify socket)' },
  { command: 'systemd-notify', pkg: 'systemd', usedBy: 'test/cli (readiness for Type=notify units)' },
  { command: 'nats-server', pkg: 'nats-server', usedBy: 'test/cluster (NATS with JetStream under a cluster of nodes)' },
];

function onPath(command) {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    try {
      accessSync(join(dir, command), constants.X_OK);
      return true;
    } catch {
      // not in this directory
    }
  }
  return false;
}

function run(argv) {
  const r = spawnSync(argv[0], argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  return r.status === 0 ? undefined : (r.stderr?.toString().trim().split('\n').pop() ?? r.error?.message ?? `exit ${r.status}`);
}

const missing = TOOLS.filter((t) => !onPath(t.command));
if (missing.length > 0) {
  const pkgs = missing.map((t) => t.pkg);
  const canInstall = process.getuid?.() === 0 && onPath('apt-get');
  if (!canInstall) {
    console.error(`npm test needs ${pkgs.join(', ')} (Debian packages; for ${missing.map((t) => t.usedBy).join('; ')}): install them with "sudo apt-get install ${pkgs.join(' ')}", or run npm test as root to have them installed.`);
    process.exit(1);
  }
  console.log(`npm test: installing ${pkgs.join(', ')} from Debian (apt-get), for ${missing.map((t) => t.usedBy).join('; ')}`);
  const failure = run(['apt-get', 'update', '-qq']) ?? run(['apt-get', 'install', '-y', '-qq', ...pkgs]);
  const still = missing.filter((t) => !onPath(t.command));
  if (failure !== undefined || still.length > 0) {
    console.error(`npm test needs ${still.map((t) => t.pkg).join(', ') || pkgs.join(', ')} and could not install them with apt-get${failure ? ` (${failure})` : ''}: install them, then run npm test again.`);
    process.exit(1);
  }
}
