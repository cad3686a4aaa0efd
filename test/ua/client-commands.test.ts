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
import { freePort } from '../support/server-process.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** A command running in-process, its output collected, stopped by abort(). */
function run(command: ClientCommand, args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const abort = new AbortController();
  const done = runClientCommand(command, args, { out: (l) => out.push(l), err: (l) => err.push(l), signal: abort.signal, env: {} });
  const waitOut = async (re: RegExp, timeoutMs = 3000): Promise<string> => {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const hit = out.find((l) => re.test(l));
      if (hit) return hit;
      if (Date.now() > end) throw new Error(`no output matching ${re}; out=${JSON.stringify(out)} err=${JSON.stringify(err)}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  return { out, err, done, stop: () => abort.abort(), waitOut };
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
    expect(srv.server.location.lookup(`sip:${me}@example.com`)).to.have.length(0);
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

  it('fails clearly: no --user, and a server that is not there', async () => {
    const a = run('message', [...common, 'bob', 'hi']);
    expect(await a.done).to.equal(2);
    expect(a.err[0]).to.match(/--user is required/);
    const closed = await freePort();
    const b = run('message', ['--server', `127.0.0.1:${closed}`, '--transport', 'tcp', '--user', 'alice', 'bob', 'hi']);
    expect(await b.done).to.equal(1);
    expect(b.err[0]).to.match(/MESSAGE to tcp:127\.0\.0\.1:\d+ failed: 503 .*server unreachable/);
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
