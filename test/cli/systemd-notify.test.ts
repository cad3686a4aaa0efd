import { expect } from 'chai';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, startServerProcess } from '../support/server-process.js';
import { until } from '../support/wait.js';

// What systemd does with a Type=notify unit's socket, in a few lines of Python (Node.js has no
// AF_UNIX datagram sockets): print each notice, and answer systemd-notify's barrier (a file
// descriptor passed along, which the manager closes once it has read what came before).
const FAKE_MANAGER = `
import array, os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("bound", flush=True)
while True:
    msg, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(64))
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds = array.array("i")
            fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
            for fd in fds:
                os.close(fd)
    print(msg.decode().replace("\\n", " "), flush=True)
`;

describe('cli: systemd readiness (Type=notify)', function () {
  this.timeout(60_000);
  let dir: string;
  let manager: ChildProcessWithoutNullStreams;
  const notices: string[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sp-notify-'));
    manager = spawn('python3', ['-c', FAKE_MANAGER, join(dir, 'notify.sock')]);
    manager.stdout.on('data', (d: Buffer) => notices.push(...d.toString().trim().split('\n')));
    await until(() => notices.includes('bound'), 'the notify socket bound');
  });
  after(() => {
    manager?.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  it('says READY=1 once it listens and STOPPING=1 on SIGTERM, as the main process', async () => {
    const port = await freePort();
    const srv = await startServerProcess(
      dir,
      { sip: { hosts: ['127.0.0.1'], port }, http: { host: '127.0.0.1', port: 0 }, store: { enabled: false }, auth: { required: false } },
      { NOTIFY_SOCKET: join(dir, 'notify.sock') },
    );
    const pid = srv.child.pid!;
    await until(() => notices.some((n) => n.includes('READY=1')), 'READY=1', 10_000);
    const ready = notices.find((n) => n.includes('READY=1'))!;
    expect(ready).to.contain(`MAINPID=${pid}`);
    expect(ready).to.contain(`STATUS=listening on udp:${port} tcp:${port}`);
    expect(await srv.stop('SIGTERM')).to.equal(0);
    await until(() => notices.some((n) => n.includes('STOPPING=1')), 'STOPPING=1', 10_000);
    expect(notices.find((n) => n.includes('STOPPING=1'))).to.contain(`MAINPID=${pid}`);
  });
});
