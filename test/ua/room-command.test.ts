import { expect } from 'chai';
import { runClientCommand } from '../../src/cli/client-commands.js';
import { Pager } from '../../src/ua/pager.js';
import { Registration } from '../../src/ua/registration.js';
import { UserAgent } from '../../src/ua/user-agent.js';
import { runCli } from '../support/server-process.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

/** `simple-presence room ...` in-process: exit code and output. */
async function room(args: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runClientCommand('room', args, { out: (l) => out.push(l), err: (l) => err.push(l), signal: new AbortController().signal, env: {} });
  return { code, out, err };
}

describe('cli: simple-presence room (chat rooms over SIP)', function () {
  this.timeout(10_000);
  let srv: TestServer;
  let common: string[];
  let bob: UserAgent;

  before(async () => {
    srv = await startTestServer();
    common = ['--server', `127.0.0.1:${srv.port}`, '--domain', 'example.com'];
    bob = new UserAgent({ aor: 'sip:bob@example.com', server: { host: '127.0.0.1', port: srv.port } });
    await bob.start();
    await new Registration(bob).register();
  });
  after(async () => {
    await bob.close();
    await srv.stop();
  });

  it('creates a room, lets others join, says something to it, lists its members and leaves', async () => {
    const got: string[] = [];
    new Pager(bob).on('message', (m) => got.push(m.text));
    expect((await room([...common, '--user', 'alice', 'create', 'cliroom', '--persistent'])).out).to.deep.equal(['sip:cliroom@example.com: 200 OK']);
    expect(srv.server.rooms.get('sip:cliroom@example.com')).to.deep.include({ owner: 'sip:alice@example.com', persistent: true });
    expect((await room([...common, '--user', 'bob', 'join', 'cliroom'])).code).to.equal(0);
    expect((await room([...common, '--user', 'alice', 'say', 'cliroom', 'hello', 'bob'])).out).to.deep.equal(['sip:cliroom@example.com: 202 Accepted']);
    const deadline = Date.now() + 3000;
    while (!got.includes('alice: hello bob') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    expect(got).to.include('alice: hello bob');
    const members = await room([...common, '--user', 'alice', 'members', 'cliroom']);
    expect(members.out).to.deep.equal(['Members of sip:cliroom@example.com: alice (owner), bob']);
    // The brief registration for the answer is gone again.
    expect(srv.server.location.registrations({ aor: 'sip:alice@example.com', limit: 10 })).to.deep.equal([]);
    expect((await room([...common, '--user', 'bob', 'leave', 'cliroom'])).code).to.equal(0);
    expect(srv.server.rooms.get('sip:cliroom@example.com')!.members).to.deep.equal(['sip:alice@example.com']);
  });

  it('is a command of the simple-presence binary', async () => {
    const r = await runCli(['room', 'join', ...common, '--user', 'carol', 'cliroom']);
    expect(r, r.out).to.deep.include({ code: 0 });
    expect(r.out.trim()).to.equal('sip:cliroom@example.com: 200 OK');
  });

  it('says what the room refused, and exits 1', async () => {
    const r = await room([...common, '--user', 'mallory', 'topic', 'cliroom', 'mine now']);
    expect(r.code).to.equal(1);
    expect(r.err.join('\n')).to.include('403');
    expect(await room([...common, '--user', 'alice', 'dance', 'cliroom'])).to.deep.include({ code: 2 });
  });
});
