import { expect } from 'chai';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CONTROL_SOCKET } from '../../src/control/control-protocol.js';
import { LOCK_FILE } from '../../src/store/index.js';
import { freePort, runCli, spawnServerProcess, type SpawnedServer } from '../support/server-process.js';
import { until } from '../support/wait.js';

// Issue 21: a CLI command run while the server is still starting (data directory locked,
// control socket not open yet) is answered by the server, not refused with "in use".
describe('cli: a command run while the server is starting (end to end)', function () {
  this.timeout(120_000);
  let dir: string;
  let server: SpawnedServer | undefined;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'sp-startup-'));
  });
  afterEach(async () => {
    if (server) {
      server.child.kill('SIGCONT');
      await server.stop('SIGKILL');
    }
    server = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  it('waits for the control socket and gets its answer from the server (or says it did not answer in time)', async () => {
    const dataDir = join(dir, 'data');
    const port = await freePort();
    server = spawnServerProcess(dir, { sip: { hosts: ['127.0.0.1'], port, domain: 'example.com' }, http: { host: '127.0.0.1', port: 0 }, store: { dataDir } });
    // Freeze the server the moment it holds the data directory: it is "starting" for as long as the test wants.
    await until(() => existsSync(join(dataDir, LOCK_FILE)), 'the server to take the data directory', 60_000, 2);
    server.child.kill('SIGSTOP');
    expect(existsSync(join(dataDir, CONTROL_SOCKET)), 'control socket already open: the start-up window was missed').to.equal(false);
    // A server that does not open its socket in time: the command says so (and never opens the store beside it).
    const impatient = await runCli(['user', 'list', '--wait', '1', '--config', server.configFile]);
    expect(impatient.code).to.equal(1);
    expect(impatient.out).to.match(/holds data directory .* did not answer within 1 s/);
    // --wait: the default 10 s is for a server starting on an idle machine; the test machine may be far from idle.
    const cli = runCli(['user', 'add', 'carol', '--password', 'secret', '--wait', '120', '--config', server.configFile]);
    // The command is running now; let the server go on starting.
    setTimeout(() => server!.child.kill('SIGCONT'), 300);
    const { code, out } = await cli;
    expect(out).to.not.match(/in use/);
    expect(code, out).to.equal(0);
    await server.listening(60_000);
    // The account was made by the server (through its socket): a second add is refused by it.
    const again = await runCli(['user', 'add', 'carol', '--password', 'secret', '--config', server.configFile]);
    expect(again.code).to.equal(1);
    expect(again.out).to.match(/exists/);
  });
});
