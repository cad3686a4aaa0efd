import { expect } from 'chai';
import net from 'node:net';
import { statusCommand } from '../../src/cli/status-command.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { TestUa } from '../support/test-ua.js';
import { httpBase, TOKEN } from './http-support.js';

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await statusCommand(args, (l) => out.push(l), (l) => err.push(l));
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('cli: simple-presence status (through the admin API)', function () {
  this.timeout(10000);
  let srv: TestServer;
  let base: string;
  let ua: TestUa;

  before(async () => {
    srv = await startTestServer({ admin: { token: TOKEN } });
    base = httpBase(srv.server);
    ua = await TestUa.create({ port: srv.port, user: 'zoe' });
    expect((await ua.transact(ua.request('REGISTER', 'sip:example.com', { to: `<${ua.aor}>`, headers: { Expires: 600 } }))).status).to.equal(200);
    const body = `<?xml version="1.0"?><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:zoe@example.com"><tuple id="z"><status><basic>open</basic></status></tuple></presence>`;
    expect((await ua.transact(ua.request('PUBLISH', 'sip:zoe@example.com', { headers: { Event: 'presence', Expires: 600, 'Content-Type': 'application/pidf+xml' }, body }))).status).to.equal(200);
    expect((await ua.transact(ua.request('MESSAGE', 'sip:away@example.com', { headers: { 'Content-Type': 'text/plain' }, body: 'hello' }))).status).to.equal(202);
  });
  after(async () => {
    await ua.close();
    await srv.stop();
  });

  it('prints listeners, registrations, presentities and stored messages', async () => {
    const r = await run(['--url', base, '--token', TOKEN]);
    expect(r.err).to.equal('');
    expect(r.code).to.equal(0);
    expect(r.out).to.match(/^domain +example\.com$/m);
    expect(r.out).to.match(/^listening .*udp:127\.0\.0\.1:\d+.*ws:127\.0\.0\.1:\d+/m);
    expect(r.out).to.match(/^registrations +1 contacts of 1 users$/m);
    expect(r.out).to.match(/^presence +1 publications of 1 presentities; subscriptions none$/m);
    expect(r.out).to.match(/^ +sip:zoe@example\.com +1 +0$/m);
    expect(r.out).to.match(/^ +sip:zoe@example\.com +sip:zoe@127\.0\.0\.1:\d+ +udp +\d+s$/m);
    expect(r.out).to.match(/^ +sip:away@example\.com +1 +5$/m);
    expect(r.out).to.match(/^store +none \(state in memory\)$/m);
  });

  it('prints JSON with --json', async () => {
    const r = await run(['--url', base, '--token', TOKEN, '--json']);
    expect(r.code).to.equal(0);
    const parsed = JSON.parse(r.out) as { status: { domain: string }; registrations: unknown[] };
    expect(parsed.status.domain).to.equal('example.com');
    expect(parsed.registrations).to.have.length(1);
  });

  it('exits 1 naming the refusal for a wrong token', async () => {
    const r = await run(['--url', base, '--token', 'wrong-token-wrong-token']);
    expect(r.code).to.equal(1);
    expect(r.err).to.match(/401 wrong admin token/);
  });

  it('exits 1 when nothing listens at the URL', async () => {
    const free = net.createServer();
    await new Promise<void>((r) => free.listen(0, '127.0.0.1', () => r()));
    const port = (free.address() as net.AddressInfo).port;
    await new Promise((r) => free.close(r));
    const r = await run(['--url', `http://127.0.0.1:${port}`, '--token', TOKEN]);
    expect(r.code).to.equal(1);
    expect(r.err).to.match(/cannot reach the server at http:\/\/127\.0\.0\.1:\d+: ECONNREFUSED/);
  });

  it('exits 2 without a token', async () => {
    const saved = process.env.ADMIN_TOKEN;
    delete process.env.ADMIN_TOKEN;
    try {
      const r = await run(['--url', base]);
      expect(r.code).to.equal(2);
      expect(r.err).to.match(/no admin token/);
    } finally {
      if (saved !== undefined) process.env.ADMIN_TOKEN = saved;
    }
  });
});
