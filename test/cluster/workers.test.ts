import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { adminQuery, DATABASE_URL } from '../store/helpers.js';
import { startNatsServer, type NatsServer } from '../support/nats-server.js';
import { freePort, startServerProcess, type ServerProcess } from '../support/server-process.js';
import { TestUa } from '../support/test-ua.js';
import { until } from '../support/wait.js';

interface LogLine {
  msg: string;
  pid: number;
  worker?: number;
  listeners?: string[];
  node?: string;
}

/**
 * `simple-presence serve --workers 2` (issue 16): two processes on one machine bind the
 * same UDP and TCP port with SO_REUSEPORT, each a node of the cluster; a worker killed is
 * started again while the other goes on; SIGTERM stops them all.
 */
describe('cluster: serve --workers (SO_REUSEPORT, restart on death)', function () {
  this.timeout(120_000);
  let nats: NatsServer | undefined;
  let dir: string;
  let database: string | undefined;
  let proc: ServerProcess | undefined;
  const uas: TestUa[] = [];

  before(async function () {
    if (!DATABASE_URL) return this.skip();
    dir = mkdtempSync(join(tmpdir(), 'sp-workers-'));
    nats = await startNatsServer();
    database = `sp_workers_${randomBytes(4).toString('hex')}`;
    await adminQuery(DATABASE_URL, `CREATE DATABASE ${database}`);
  });

  after(async () => {
    for (const u of uas) await u.close();
    await proc?.stop('SIGKILL');
    await nats?.close();
    if (DATABASE_URL && database) await adminQuery(DATABASE_URL, `DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('starts two workers on one port, starts a killed one again, and stops them all on SIGTERM', async () => {
    const url = new URL(DATABASE_URL!);
    url.pathname = `/${database}`;
    const port = await freePort();
    proc = await startServerProcess(
      dir,
      {
        sip: { hosts: ['127.0.0.1'], port, domain: 'example.com' },
        http: { host: '127.0.0.1', port: 0 },
        store: { url: url.toString(), dataDir: join(dir, 'data') },
        cluster: { natsUrl: nats!.url, nodeName: 'box', workers: 2 },
      },
      { AUTH_REQUIRED: 'false' },
      // Under mocha's bound, so a start that hangs fails with the processes' log.
      60_000,
    );
    const lines = (): LogLine[] => proc!.lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as LogLine);
    // The supervisor hears "listening" from each worker over IPC; a worker's own log line comes
    // down another pipe and may be read after the supervisor's.
    const listened = (): LogLine[] => lines().filter((l) => l.msg === 'simple-presence worker listening');
    await until(() => listened().length >= 2, `both workers' listening lines:\n${proc.lines.slice(-20).join('\n')}`, 10_000);
    const workers = listened();
    expect(workers.map((w) => w.node).sort()).to.deep.equal(['box/1', 'box/2']);
    expect(new Set(workers.map((w) => w.pid)).size).to.equal(2);
    for (const w of workers) expect(w.listeners).to.include.members([`udp:127.0.0.1:${port}`, `tcp:127.0.0.1:${port}`]);

    // Both answer on the shared port (REGISTERs from many source ports spread over them).
    for (let i = 0; i < 4; i++) {
      const u = await TestUa.create({ port, user: `w${i}`, domain: 'example.com' });
      uas.push(u);
      const res = await u.transact(u.request('OPTIONS', 'sip:example.com'), 10_000);
      expect(res.status).to.equal(200);
    }

    // A worker killed is started again; the other went on.
    const victim = workers[0]!;
    process.kill(victim.pid, 'SIGKILL');
    const deadline = Date.now() + 90_000;
    while (!lines().some((l) => l.msg === 'simple-presence worker listening' && l.node === victim.node && l.pid !== victim.pid)) {
      if (Date.now() > deadline) throw new Error(`worker not started again:\n${proc.lines.slice(-20).join('\n')}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(lines().some((l) => l.msg === 'worker died; starting it again')).to.equal(true);
    const u = await TestUa.create({ port, user: 'after', domain: 'example.com' });
    uas.push(u);
    expect((await u.transact(u.request('OPTIONS', 'sip:example.com'), 10_000)).status).to.equal(200);

    expect(await proc.stop('SIGTERM')).to.equal(0);
    expect(lines().some((l) => l.msg === 'simple-presence workers stopped')).to.equal(true);
  });
});
