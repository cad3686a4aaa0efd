import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { freePort } from '../support/server-process.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { TestUa } from '../support/test-ua.js';
import { until } from '../support/wait.js';

function haveBaresip(): boolean {
  return spawnSync('baresip', ['-h'], { stdio: 'ignore' }).error === undefined;
}

/**
 * baresip's `mwi` module as a message-summary watcher (RFC 3842): it registers, subscribes to
 * its own account's message-summary, and the NOTIFY it gets (seen in its SIP trace) says how
 * many messages wait for it.
 */
describe('interop: baresip mwi module watches message-summary', function () {
  this.timeout(30_000);
  let srv: TestServer;
  let dir: string;

  before(async function () {
    if (!haveBaresip()) {
      console.log('      baresip is not installed: baresip mwi interop skipped');
      this.skip();
    }
    dir = mkdtempSync(join(tmpdir(), 'baresip-mwi-'));
    srv = await startTestServer({});
  });
  // A phone still up when the test ends (a timeout, a failure) is killed: one left behind
  // here once grew to 21 GB.
  let phone: ChildProcess | undefined;
  after(async () => {
    if (phone && phone.exitCode === null && phone.signalCode === null) phone.kill('SIGKILL');
    await srv?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('sees Messages-Waiting: yes with the stored message count', async () => {
    // A message waits for bob before his phone comes up.
    const alice = await TestUa.create({ port: srv.port, user: 'alice', domain: 'example.com' });
    const msg = alice.request('MESSAGE', 'sip:bob@example.com', { headers: { 'Content-Type': 'text/plain' }, body: 'call me back' });
    msg.removeHeader('contact');
    expect((await alice.transact(msg)).status).to.equal(202);
    await alice.close();

    const local = await freePort();
    // baresip 1.0's mwi module subscribes again, for ever, when its account registered before
    // the module's 1 ms start timer ran (its timer walks the list it appends to): a phone that
    // registers at start loops when the server answers fast, and grew to 21 GB here once. So
    // the phone starts without an account and gets one from its menu (uanew) once it is up.
    writeFileSync(
      join(dir, 'config'),
      ['module_path /usr/lib/baresip/modules', 'module stdio.so', 'module_app account.so', 'module_app menu.so', 'module_app mwi.so', `sip_listen 127.0.0.1:${local}`, 'audio_player none', 'audio_source none', ''].join('\n'),
    );
    writeFileSync(join(dir, 'accounts'), '');
    writeFileSync(join(dir, 'contacts'), '');
    // -s prints its SIP trace. The phone is stopped once the NOTIFY is seen, or after 20 s;
    // baresip un-registers on SIGTERM and may wait for answers, so SIGKILL follows 3 s later.
    const child = (phone = spawn('baresip', ['-f', dir, '-s'], { stdio: ['pipe', 'pipe', 'pipe'] }));
    let out = '';
    const seen = (): boolean => /Text-Message: 1\/0/.test(out);
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    try {
      await until(() => /baresip is ready/.test(out), 'baresip up', 10_000, 20);
      child.stdin.write(`/uanew <sip:bob@example.com>;outbound="sip:127.0.0.1:${srv.port};transport=udp";regint=600\n`);
      await until(seen, 'the message-summary NOTIFY in the trace', 20_000, 20).catch(() => undefined);
    } finally {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(killer);
    }
    expect(out.match(/mwi: subscribing/g) ?? [], out.slice(-4000)).to.have.length(1);
    expect(out, out.slice(-4000)).to.match(/SUBSCRIBE sip:bob@example\.com/);
    expect(out, out.slice(-4000)).to.match(/Messages-Waiting: yes/);
    expect(out, out.slice(-4000)).to.match(/Text-Message: 1\/0/);
  });
});
