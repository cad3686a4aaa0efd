import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { runClientCommand, type ClientCommand } from '../../src/cli/client-commands.js';
import type { PresenceUpdate } from '../../src/ua/client-subscription.js';
import { Pager } from '../../src/ua/pager.js';
import { PresenceUserAgent } from '../../src/ua/presence-user-agent.js';
import { Registration } from '../../src/ua/registration.js';
import { UserAgent } from '../../src/ua/user-agent.js';
import { WatcherUserAgent } from '../../src/ua/watcher-user-agent.js';
import type { ListUpdate } from '../../src/ua/client-subscription.js';
import { freePort } from '../support/server-process.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import type { LocationService } from '../../src/registrar/location-service.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** A command running in-process, its output collected, stopped by abort(). */
function run(command: ClientCommand, args: string[], io: { tty?: boolean; noAnswerNoticeMs?: number } = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const abort = new AbortController();
  const done = runClientCommand(command, args, { out: (l) => out.push(l), err: (l) => err.push(l), signal: abort.signal, env: {}, ...io });
  const waitIn = async (lines: string[], re: RegExp, timeoutMs: number): Promise<string> => {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const hit = lines.find((l) => re.test(l));
      if (hit) return hit;
      if (Date.now() > end) throw new Error(`no output matching ${re}; out=${JSON.stringify(out)} err=${JSON.stringify(err)}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  const waitOut = (re: RegExp, timeoutMs = 3000): Promise<string> => waitIn(out, re, timeoutMs);
  const waitErr = (re: RegExp, timeoutMs = 3000): Promise<string> => waitIn(err, re, timeoutMs);
  return { out, err, done, stop: () => abort.abort(), waitOut, waitErr };
}

describe('cli: publish, watch, message, listen', function () {
  this.timeout(10_000);
  let srv: TestServer;
  let common: string[];
  const agents: UserAgent[] = [];
  let n = 0;
  const name = (b: string): string => `${b}${++n}`;

  before(async () => {
    srv = await startTestServer();
    common = ['--server', `127.0.0.1:${srv.port}`, '--domain', 'example.com'];
  });
  after(async () => {
    await srv.stop();
  });
  afterEach(async () => {
    for (const a of agents.splice(0)) await a.close();
  });

  async function agent(user: string): Promise<UserAgent> {
    const ua = new UserAgent({ aor: `sip:${user}@example.com`, server: { host: '127.0.0.1', port: srv.port } });
    agents.push(ua);
    await ua.start();
    return ua;
  }

  it('message: delivers to a registered user, or says it was stored', async () => {
    const bobName = name('bob');
    const bob = await agent(bobName);
    await new Registration(bob).register();
    const got: string[] = [];
    new Pager(bob).on('message', (m) => got.push(m.text));
    const r = run('message', [...common, '--user', 'alice', bobName, 'hello', 'there']);
    expect(await r.done).to.equal(0);
    expect(r.out[0]).to.match(/^delivered to sip:bob\d+@example\.com \(200 OK\)/);
    expect(got).to.deep.equal(['hello there']);
    const s = run('message', [...common, '--user', 'alice', name('offline'), 'later']);
    expect(await s.done).to.equal(0);
    expect(s.out[0]).to.match(/accepted for later delivery.*offline \(202/);
  });

  it('listen: registers and prints incoming messages until stopped', async () => {
    const me = name('carol');
    const r = run('listen', [...common, '--user', me]);
    await r.waitOut(/^registered sip:carol\d+@example\.com at udp:127\.0\.0\.1:\d+ for 600 s/);
    await new Pager(await agent(name('dave'))).send(`sip:${me}@example.com`, 'ping from dave');
    expect(await r.waitOut(/ping from dave/)).to.match(/sip:dave\d+@example\.com: ping from dave$/);
    r.stop();
    expect(await r.done).to.equal(0);
    expect((srv.server.location as LocationService).lookup(`sip:${me}@example.com`)).to.have.length(0);
  });

  it('publish: publishes until stopped, then unpublishes', async () => {
    const me = name('erin');
    const watcher = new WatcherUserAgent(await agent(name('w')));
    const updates: PresenceUpdate[] = [];
    watcher.on('presence', (u) => updates.push(u));
    await watcher.watch(me);
    const r = run('publish', [...common, '--user', me, '--status', 'away', '--note', 'in a meeting']);
    expect(await r.waitOut(/^published/)).to.match(/published sip:erin\d+@example\.com \(open, away, "in a meeting"\)/);
    const end = Date.now() + 3000;
    while (!updates.some((u) => u.summary?.note === 'in a meeting') && Date.now() < end) await new Promise((res) => setTimeout(res, 5));
    expect(updates.at(-1)!.summary).to.deep.include({ basic: 'open', note: 'in a meeting' });
    expect(updates.at(-1)!.summary!.activities).to.deep.equal(['away']);
    r.stop();
    expect(await r.done).to.equal(0);
    expect(r.out.at(-1)).to.equal('unpublished');
  });

  it('watch: prints a line per change of each watched user', async () => {
    const bobName = name('frank');
    const r = run('watch', [...common, '--user', name('gina'), bobName]);
    await r.waitOut(new RegExp(`${bobName}@example\\.com  unknown`));
    const pua = new PresenceUserAgent(await agent(bobName));
    await pua.publish({ basic: 'open', note: 'coding', activities: ['busy'] });
    await r.waitOut(new RegExp(`${bobName}@example\\.com  open \\(busy\\)  "coding"`));
    r.stop();
    expect(await r.done).to.equal(0);
    await pua.close();
  });

  it('watch --list: one list subscription (RFC 4662), the list in the SUBSCRIBE (RFC 5367), a line per member change', async () => {
    const [a, b] = [name('mia'), name('ned')];
    const r = run('watch', [...common, '--user', name('olga'), '--list', 'rls', a, b]);
    await r.waitOut(new RegExp(`${a}@example\\.com  unknown`));
    await r.waitOut(new RegExp(`${b}@example\\.com  unknown`));
    const pua = new PresenceUserAgent(await agent(b));
    await pua.publish({ basic: 'open', note: 'here' });
    await r.waitOut(new RegExp(`${b}@example\\.com  open  "here"`));
    // One subscription at the server for the whole list, ended by Ctrl-C.
    expect(srv.server.presence.lists.subscriptions.size).to.equal(1);
    r.stop();
    expect(await r.done).to.equal(0);
    await pua.close();
    expect(srv.server.presence.lists.subscriptions.size).to.equal(0);
  });

  it('WatcherUserAgent.watchList: the stored <user>+presence list, full then partial state as list events', async () => {
    const me = name('pia');
    const watcher = new WatcherUserAgent(await agent(me));
    const lists: ListUpdate[] = [];
    watcher.on('list', (u) => lists.push(u));
    const sub = await watcher.watchList('presence');
    expect(sub.target).to.equal(`sip:${me}+presence@example.com`);
    const end = Date.now() + 3000;
    while (lists.length === 0 && Date.now() < end) await new Promise((res) => setTimeout(res, 5));
    expect(lists[0]).to.deep.include({ list: `sip:${me}+presence@example.com`, version: 0, fullState: true, resources: [] });
    await watcher.close();
  });

  it('watch on a terminal: one table (who, status, since, note) redrawn in place', async () => {
    const a = name('hank');
    const b = name('ivy');
    const r = run('watch', [...common, '--user', name('jo'), a, b], { tty: true });
    await r.waitOut(new RegExp(`${b}@example\\.com`));
    const pua = new PresenceUserAgent(await agent(a));
    await pua.publish({ basic: 'open', note: 'lunch', activities: ['meal'] });
    const screen = await r.waitOut(/lunch/);
    // Clear and home, then the whole table: a header and one row per watched user.
    expect(screen.startsWith('\x1b[H\x1b[2J')).to.equal(true);
    const lines = screen.slice('\x1b[H\x1b[2J'.length).split('\n');
    expect(lines[0]).to.match(/^WHO\s+STATUS\s+SINCE\s+NOTE$/);
    expect(lines).to.have.length(3);
    expect(lines.find((l) => l.startsWith(`${a}@`))).to.match(/open \(meal\)\s+\d\d:\d\d:\d\d  lunch$/);
    expect(lines.find((l) => l.startsWith(`${b}@`))).to.match(/unknown/);
    r.stop();
    expect(await r.done).to.equal(0);
    // Nothing after Ctrl-C: the subscriptions' last NOTIFYs do not redraw or complain.
    expect(r.err).to.deep.equal([]);
    await pua.close();
  });

  it("watch --event message-summary and reg: one's own mailbox and registrations, a line per NOTIFY", async () => {
    const me = name('mia');
    const mwi = run('watch', [...common, '--user', me, '--event', 'message-summary']);
    await mwi.waitOut(new RegExp(`${me}@example\\.com  message-summary  messages waiting: no$`));
    await new Pager(await agent(name('ned'))).send(`sip:${me}@example.com`, 'are you there?');
    await mwi.waitOut(/message-summary  messages waiting: yes; text-message 1\/0$/);
    mwi.stop();
    expect(await mwi.done).to.equal(0);
    const reg = run('watch', [...common, '--user', me, '--event', 'reg']);
    await reg.waitOut(/reg  registrations \(full, version 0\): sip:mia\d+@example\.com init$/);
    const phone = await agent(me);
    await new Registration(phone).register();
    await reg.waitOut(/reg  registrations \(partial, version 1\): sip:mia\d+@example\.com active: sip:mia\d+@127\.0\.0\.1:\d+ active \(registered\)$/);
    reg.stop();
    expect(await reg.done).to.equal(0);
    const bad = run('watch', [...common, '--user', me, '--event', 'conference']);
    expect(await bad.done).to.equal(2);
    expect(bad.err[0]).to.match(/--event must be presence, dialog, message-summary, reg/);
  });

  it("watch --event dialog: another user's busy lamp", async () => {
    const bob = name('olga');
    const r = run('watch', [...common, '--user', name('pat'), '--event', 'dialog', bob]);
    await r.waitOut(new RegExp(`${bob}@example\\.com  dialog  dialogs \\(full, version 0\\): none$`));
    const pbx = await agent(bob);
    const body = `<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="0" state="full" entity="sip:${bob}@example.com"><dialog id="c1"><state>confirmed</state><remote><identity>sip:quinn@example.com</identity></remote></dialog></dialog-info>`;
    const { response } = await pbx.send(pbx.createRequest('PUBLISH', `sip:${bob}@example.com`, { headers: [['Event', 'dialog'], ['Expires', 600]], contentType: 'application/dialog-info+xml', body }));
    expect(response.status).to.equal(200);
    await r.waitOut(/dialog  dialogs \(partial, version 1\): c1 confirmed with sip:quinn@example\.com$/);
    r.stop();
    expect(await r.done).to.equal(0);
  });

  it('watch: a target the server refuses is reported, the others are watched', async () => {
    const ok = name('kim');
    const r = run('watch', [...common, '--user', name('lee'), 'nobody@other.example', ok]);
    expect(await r.waitErr(/nobody@other\.example|SUBSCRIBE/)).to.match(/SUBSCRIBE to udp:127\.0\.0\.1:\d+ failed: 404 Not Found \(unknown user/);
    await r.waitOut(new RegExp(`${ok}@example\\.com  unknown`));
    r.stop();
    expect(await r.done).to.equal(0);
  });

  it('says so when a UDP server does not answer, and stops on Ctrl-C', async () => {
    const silent = await freePort();
    const r = run('message', ['--server', `127.0.0.1:${silent}`, '--user', 'alice', 'bob', 'hi'], { noAnswerNoticeMs: 20 });
    expect(await r.waitErr(/no answer/)).to.match(/^no answer from udp:127\.0\.0\.1:\d+ yet; trying until 32 s have passed \(Ctrl-C to stop\)$/);
    r.stop();
    expect(await r.done).to.equal(130);
  });

  it('fails clearly: no --user, and a server that is not there', async () => {
    const a = run('message', [...common, 'bob', 'hi']);
    expect(await a.done).to.equal(2);
    expect(a.err[0]).to.match(/--user is required/);
    const closed = await freePort();
    const b = run('message', ['--server', `127.0.0.1:${closed}`, '--transport', 'tcp', '--user', 'alice', 'bob', 'hi']);
    expect(await b.done).to.equal(1);
    expect(b.err[0]).to.match(/MESSAGE to tcp:127\.0\.0\.1:\d+ failed: 503 .*server unreachable/);
  });

  it('listen over TCP (a separate process) registers again when the connection drops, and goes on', async function () {
    this.timeout(20_000);
    const me = name('tcplisten');
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'listen', ...common, '--transport', 'tcp', '--user', me], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', r));
    const wait = async (check: () => boolean, what: string): Promise<void> => {
      const end = Date.now() + 10_000;
      while (!check()) {
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}; out=${out} err=${err}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    try {
      await wait(() => /registered/.test(out), 'registered');
      const before = (srv.server.location as LocationService).lookup(`sip:${me}@example.com`)[0]!.flow.connectionId;
      for (const c of [...srv.server.transport.connections.all()]) if (c.protocol === 'tcp') c.close();
      await wait(() => /lost; registering again/.test(err), 'the notice on stderr');
      await wait(() => (srv.server.location as LocationService).lookup(`sip:${me}@example.com`).some((b) => b.flow.connectionId !== before && srv.server.transport.isOpen(b.flow.connectionId!)), 'the new binding');
      expect((await new Pager(await agent(name('sam'))).send(me, 'still there?')).status).to.equal(200);
      await wait(() => /still there\?/.test(out), 'the message printed');
    } finally {
      child.kill('SIGINT');
    }
    expect(await exited).to.equal(0);
  });

  it('runs from the simple-presence binary (src/cli/main.ts)', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'message', ...common, '--user', 'alice', name('nobody'), 'hi'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    expect(code).to.equal(0);
    expect(out).to.match(/accepted for later delivery/);
  });
});
