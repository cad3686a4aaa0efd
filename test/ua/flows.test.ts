import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { runClientCommand } from '../../src/cli/client-commands.js';
import type { PresenceUpdate } from '../../src/ua/client-subscription.js';
import { SipRequestError } from '../../src/ua/errors.js';
import { Pager } from '../../src/ua/pager.js';
import { PresenceUserAgent } from '../../src/ua/presence-user-agent.js';
import { flowRecoveryDelayMs } from '../../src/ua/refresh.js';
import { Registration } from '../../src/ua/registration.js';
import { UserAgent, type UserAgentOptions } from '../../src/ua/user-agent.js';
import { WatcherUserAgent } from '../../src/ua/watcher-user-agent.js';
import { ManualTimers } from '../../src/util/timers.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { next, until } from '../support/wait.js';
import type { LocationService } from '../../src/registrar/location-service.js';

/** Drops every server-side connection of a protocol, as a server restart or a NAT would. */
function dropConnections(srv: TestServer, protocol: 'tcp' | 'tls'): number {
  let n = 0;
  for (const c of [...srv.server.transport.connections.all()]) {
    if (c.protocol === protocol) {
      c.close();
      n++;
    }
  }
  return n;
}

describe('ua: flows (TLS certificate checks, connection loss, keep-alives)', function () {
  this.timeout(15_000);
  let dir: string;
  let cert: Buffer;
  let srv: TestServer;
  let tlsPort: number;
  const agents: UserAgent[] = [];
  let n = 0;
  const name = (base: string): string => `${base}${++n}`;

  before(async function () {
    dir = mkdtempSync(join(tmpdir(), 'ua-flows-'));
    try {
      // The certificate names localhost only (no IP entry): connecting to 127.0.0.1 by address must fail the name check.
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost', '-days', '1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
    } catch {
      this.skip(); // no openssl to make a test certificate
    }
    cert = readFileSync(join(dir, 'cert.pem'));
    srv = await startTestServer({ sip: { transports: ['udp', 'tcp', 'tls'] }, tls: { port: 0, cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') }, websocket: { wssPort: null } });
    tlsPort = srv.server.listeners.find((l) => l.protocol === 'tls')!.port;
  });
  after(async () => {
    await srv?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  afterEach(async () => {
    for (const a of agents.splice(0)) await a.close();
  });

  async function agent(user: string, server: UserAgentOptions['server'], extra: Partial<UserAgentOptions> = {}): Promise<UserAgent> {
    const ua = new UserAgent({ aor: `sip:${user}@example.com`, server, keepAliveSeconds: 0, ...extra });
    agents.push(ua);
    await ua.start();
    return ua;
  }

  describe('TLS: the server certificate is verified by default', () => {
    it('registers over TLS when the certificate chains to the given CA and names the host', async () => {
      const user = name('tlsok');
      const ua = await agent(user, { host: 'localhost', port: tlsPort, transport: 'tls' }, { tls: { ca: cert } });
      expect(await new Registration(ua).register()).to.be.greaterThan(0);
      const bindings = (srv.server.location as LocationService).lookup(`sip:${user}@example.com`);
      expect(bindings).to.have.length(1);
      expect(bindings[0]!.flow.protocol).to.equal('tls');
    });

    it('refuses a certificate no trusted CA signed, and says what to do', async () => {
      const user = name('tlsself');
      const ua = await agent(user, { host: 'localhost', port: tlsPort, transport: 'tls' });
      const err = await new Registration(ua).register().then(() => undefined, (e: unknown) => e);
      expect(err).to.be.instanceOf(SipRequestError);
      expect((err as SipRequestError).status).to.equal(503);
      expect((err as SipRequestError).message).to.match(/REGISTER to tls:localhost:\d+ failed: 503 Transport Error: .*self[- ]signed.*--ca FILE.*--insecure/);
      expect((srv.server.location as LocationService).lookup(`sip:${user}@example.com`)).to.have.length(0);
    });

    it('refuses a certificate that does not name the host connected to (an address here)', async () => {
      const ua = await agent(name('tlsname'), { host: '127.0.0.1', port: tlsPort, transport: 'tls' }, { tls: { ca: cert } });
      const err = await new Pager(ua).send('bob', 'hi').then(() => undefined, (e: unknown) => e);
      expect((err as SipRequestError).status).to.equal(503);
      expect((err as SipRequestError).message).to.match(/127\.0\.0\.1.*not trusted/);
    });

    it('the CLI: --ca FILE trusts the server, without it the error names --ca and --insecure', async () => {
      const io = (out: string[], err: string[]) => ({ out: (l: string) => out.push(l), err: (l: string) => err.push(l), signal: new AbortController().signal, env: {} });
      const args = ['--server', `localhost:${tlsPort}`, '--transport', 'tls', '--domain', 'example.com', '--user', 'alice', name('away'), 'hi'];
      const [out1, err1, out2, err2, out3, err3]: string[][] = [[], [], [], [], [], []];
      expect(await runClientCommand('message', ['--ca', join(dir, 'cert.pem'), ...args], io(out1, err1))).to.equal(0);
      expect(out1[0]).to.match(/accepted for later delivery/);
      expect(await runClientCommand('message', args, io(out2, err2))).to.equal(1);
      expect(err2[0]).to.match(/^simple-presence message: MESSAGE to tls:localhost:\d+ failed: 503 Transport Error: .*not trusted: give its CA with --ca FILE, or --insecure/);
      expect(await runClientCommand('message', ['--insecure', ...args], io(out3, err3))).to.equal(0);
      const missing: string[] = [];
      expect(await runClientCommand('message', ['--ca', join(dir, 'no-such.pem'), ...args], io([], missing))).to.equal(2);
      expect(missing[0]).to.match(/--ca .*no-such\.pem: ENOENT/);
    });

    it('accepts any certificate with insecure: true', async () => {
      const ua = await agent(name('tlsinsecure'), { host: '127.0.0.1', port: tlsPort, transport: 'tls' }, { tls: { insecure: true } });
      expect((await new Pager(ua).send(name('nobody'), 'hi')).status).to.equal(202);
    });
  });

  describe('connection loss (RFC 5626 §4.4.1)', () => {
    for (const transport of ['tcp', 'tls'] as const) {
      it(`registers again at once when the ${transport.toUpperCase()} connection drops, and messages reach the new one`, async () => {
        const user = name(`lost${transport}`);
        const ua = await agent(user, { host: 'localhost', port: transport === 'tls' ? tlsPort : srv.port, transport }, { tls: { ca: cert } });
        const reg = new Registration(ua);
        await reg.register();
        const before = (srv.server.location as LocationService).lookup(`sip:${user}@example.com`)[0]!.flow.connectionId;
        const failed = next<number>((fn) => reg.on('flowFailed', fn));
        const again = next<number>((fn) => reg.on('registered', fn));
        expect(dropConnections(srv, transport)).to.be.greaterThan(0);
        expect(await failed).to.equal(0);
        await again;
        const after = (srv.server.location as LocationService).lookup(`sip:${user}@example.com`);
        expect(after).to.have.length(1);
        expect(after[0]!.flow.connectionId).to.not.equal(before);
        const got = next<{ text: string }>((fn) => new Pager(ua).on('message', fn));
        const sender = await agent(name('sender'), { host: '127.0.0.1', port: srv.port });
        expect((await new Pager(sender).send(user, 'after the drop')).status).to.equal(200);
        expect((await got).text).to.equal('after the drop');
      });
    }

    it('backs off when the connection keeps dropping (RFC 5626 §4.5)', async () => {
      const timers = new ManualTimers();
      const ua = await agent(name('flappy'), { host: '127.0.0.1', port: srv.port, transport: 'tcp' }, { timers });
      const reg = new Registration(ua);
      await reg.register();
      const delays: number[] = [];
      reg.on('flowFailed', (ms) => delays.push(ms));
      let registrations = 0;
      reg.on('registered', () => registrations++);
      dropConnections(srv, 'tcp');
      await until(() => delays.length === 1, 'first flowFailed');
      timers.advance(0);
      await until(() => registrations === 1, 'registered again at once');
      dropConnections(srv, 'tcp');
      await until(() => delays.length === 2, 'second flowFailed');
      expect(delays[0]).to.equal(0);
      expect(delays[1]).to.be.within(15_000, 30_000);
      timers.advance(delays[1]! - 1);
      await new Promise((r) => setTimeout(r, 30));
      expect(registrations).to.equal(1);
      timers.advance(1);
      await until(() => registrations === 2, 'registered again after the backoff');
    });

    it('a TCP watcher refreshes its subscriptions on a new connection and goes on getting NOTIFYs', async () => {
      const presentity = name('watched');
      const pua = new PresenceUserAgent(await agent(presentity, { host: '127.0.0.1', port: srv.port }));
      await pua.publish({ basic: 'open', note: 'one' });
      const wua = new WatcherUserAgent(await agent(name('tcpwatcher'), { host: '127.0.0.1', port: srv.port, transport: 'tcp' }));
      const first = next<PresenceUpdate>((fn) => wua.on('presence', fn), (u) => u.summary?.note === 'one');
      await wua.watch(presentity);
      await first;
      // Our 200 to that NOTIFY is on its way: drop the connection once the server has it, as
      // an idle connection would be dropped (a NOTIFY caught in the drop waits for Timer F).
      await until(() => srv.server.transactions.stats().client === 0, 'the NOTIFY transaction to end');
      // The refresh on the new connection brings a NOTIFY with the current state (RFC 6665 §4.2.1.2).
      const refreshed = next<PresenceUpdate>((fn) => wua.on('presence', fn), (u) => u.summary?.note === 'one');
      expect(dropConnections(srv, 'tcp')).to.equal(1);
      await refreshed;
      const changed = next<PresenceUpdate>((fn) => wua.on('presence', fn), (u) => u.summary?.note === 'two');
      await pua.publish({ basic: 'open', note: 'two' });
      await changed;
      await pua.close();
    });

    it('the backoff: at once, then 50–100 % of 30 s doubling, at most 1800 s', () => {
      expect(flowRecoveryDelayMs(1)).to.equal(0);
      expect(flowRecoveryDelayMs(2, () => 0)).to.equal(15_000);
      expect(flowRecoveryDelayMs(2, () => 1)).to.equal(30_000);
      expect(flowRecoveryDelayMs(3, () => 1)).to.equal(60_000);
      expect(flowRecoveryDelayMs(50, () => 1)).to.equal(1_800_000);
    });
  });

  it('keep-alives to the real server keep the same connection carrying SIP', async () => {
    const timers = new ManualTimers();
    const user = name('pinger');
    const ua = await agent(user, { host: '127.0.0.1', port: srv.port, transport: 'tcp' }, { timers, keepAliveSeconds: 100 });
    await new Registration(ua).register();
    const conn = (srv.server.location as LocationService).lookup(`sip:${user}@example.com`)[0]!.flow.connectionId!;
    for (let i = 0; i < 3; i++) timers.advance(100_000);
    // The server's pongs (a CRLF each, RFC 5626 §3.5.1) are read as nothing, and the next message arrives whole.
    await new Promise((r) => setTimeout(r, 30));
    const got = next<{ text: string }>((fn) => new Pager(ua).on('message', fn));
    const sender = await agent(name('s'), { host: '127.0.0.1', port: srv.port });
    expect((await new Pager(sender).send(user, 'between pings')).status).to.equal(200);
    expect((await got).text).to.equal('between pings');
    expect(srv.server.transport.isOpen(conn)).to.equal(true);
  });

  it('sends CRLF keep-alives on an open TCP connection (RFC 5626 §3.5.1)', async () => {
    const received: Buffer[] = [];
    const server = net.createServer((s) => s.on('data', (d: Buffer) => received.push(d)));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    try {
      const timers = new ManualTimers();
      const port = (server.address() as net.AddressInfo).port;
      const ua = await agent(name('keepalive'), { host: '127.0.0.1', port, transport: 'tcp' }, { timers, keepAliveSeconds: 100 });
      void new Pager(ua).send('bob', 'opens the connection');
      await until(() => received.length > 0, 'the MESSAGE');
      const before = Buffer.concat(received).length;
      timers.advance(100_000);
      await until(() => Buffer.concat(received).length > before, 'a keep-alive');
      expect(Buffer.concat(received).subarray(before).toString('latin1')).to.equal('\r\n\r\n');
    } finally {
      for (const a of agents.splice(0)) await a.close();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});
