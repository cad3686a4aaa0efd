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
 * baresip as a member of a chat room (issue 22): a phone that shows text/plain only. It
 * registers, is a member of the room, and the room's copy of alice's message reaches it From
 * the room with the `alice: ` prefix; baresip's menu module shows it and answers 200.
 */
describe('interop: baresip as a chat room member (nick: text)', function () {
  this.timeout(30_000);
  let srv: TestServer;
  let dir: string;

  before(async function () {
    if (!haveBaresip()) {
      console.log('      baresip is not installed: baresip room interop skipped');
      this.skip();
    }
    dir = mkdtempSync(join(tmpdir(), 'baresip-room-'));
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

  it('gets the room message as text/plain "alice: ..." From the room and answers 200', async () => {
    const room = 'sip:phones@example.com';
    const local = await freePort();
    writeFileSync(
      join(dir, 'config'),
      ['module_path /usr/lib/baresip/modules', 'module stdio.so', 'module_app account.so', 'module_app menu.so', `sip_listen 127.0.0.1:${local}`, 'audio_player none', 'audio_source none', ''].join('\n'),
    );
    writeFileSync(join(dir, 'accounts'), `<sip:bob@example.com>;outbound="sip:127.0.0.1:${srv.port};transport=udp";regint=600\n`);
    writeFileSync(join(dir, 'contacts'), '');
    const child = (phone = spawn('baresip', ['-f', dir, '-s', '-t', '25'], { stdio: ['pipe', 'pipe', 'pipe'] }));
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const alice = await TestUa.create({ port: srv.port, user: 'alice', domain: 'example.com' });
    try {
      await until(async () => (await srv.server.location.lookup('sip:bob@example.com')).length > 0, 'baresip registered', 15_000);
      expect((await srv.server.rooms.create(room, 'sip:alice@example.com')).ok).to.equal(true);
      expect((await srv.server.rooms.join(room, 'sip:bob@example.com')).ok).to.equal(true);
      const msg = alice.request('MESSAGE', room, { headers: { 'Content-Type': 'text/plain;charset=utf-8' }, body: 'hello from the room' });
      msg.removeHeader('contact');
      expect((await alice.transact(msg)).status).to.equal(202);
      await until(() => srv.server.rooms.outcomes.delivered > 0 || srv.server.rooms.outcomes.refused > 0 || srv.server.rooms.outcomes.stored > 0, 'the copy answered', 10_000);
      expect(srv.server.rooms.outcomes, out.slice(-4000)).to.deep.include({ delivered: 1, refused: 0 });
      expect(out).to.match(/MESSAGE sip:bob-\S+@127\.0\.0\.1:\d+ SIP\/2\.0/);
      // What the phone shows: the room, and the text with alice's nick.
      await until(() => out.includes('sip:phones@example.com: "alice: hello from the room"'), 'baresip showed the message', 5000);
    } finally {
      await alice.close();
      child.kill('SIGTERM');
      await exited;
    }
  });
});
