import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { Writable } from 'node:stream';
import { join } from 'node:path';
import { expect } from 'chai';
import { loadConfig } from '../../src/config/config.js';
import { SimplePresenceServer } from '../../src/server.js';
import { parseMessage } from '../../src/sip/parser.js';
import { createLogger } from '../../src/util/logger.js';
import { ManualTimers } from '../../src/util/timers.js';
import { SipRequest, SipResponse } from '../../src/sip/message.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { TestUa } from '../support/test-ua.js';
import { freePort, runCli, startServerProcess } from '../support/server-process.js';

/** Reads responses from a raw TCP socket until `count` have arrived. */
function collectTcp(socket: net.Socket, count: number, timeoutMs = 3000): Promise<SipResponse[]> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const out: SipResponse[] = [];
    const timer = setTimeout(() => reject(new Error(`only ${out.length} of ${count} responses`)), timeoutMs);
    socket.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) break;
        const len = Number(/content-length:\s*(\d+)/i.exec(buf.subarray(0, end).toString())?.[1] ?? 0);
        if (buf.length < end + 4 + len) break;
        const parsed = parseMessage(buf.subarray(0, end + 4 + len));
        buf = buf.subarray(end + 4 + len);
        if (parsed.ok && parsed.message instanceof SipResponse) out.push(parsed.message);
      }
      if (out.length >= count) {
        clearTimeout(timer);
        resolve(out);
      }
    });
  });
}

function options(branch: string, extra = '', port = 5999, transport = 'TCP'): string {
  return (
    `OPTIONS sip:example.com SIP/2.0\r\nVia: SIP/2.0/${transport} 127.0.0.1:${port};branch=z9hG4bK${branch}\r\n` +
    `Max-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=a1\r\nTo: <sip:example.com>\r\n` +
    `Call-ID: ${branch}@test\r\nCSeq: 1 OPTIONS\r\n${extra}Content-Length: 0\r\n\r\n`
  );
}

describe('e2e: SIP core over real sockets', () => {
  let srv: TestServer;
  const uas: TestUa[] = [];
  const sockets: net.Socket[] = [];

  before(async () => {
    srv = await startTestServer({ limits: { maxMessageSize: 4096 } });
  });
  after(async () => {
    for (const s of sockets) s.destroy();
    for (const ua of uas) await ua.close();
    await srv.stop();
  });

  async function ua(protocol: 'udp' | 'tcp' = 'udp'): Promise<TestUa> {
    const u = await TestUa.create({ protocol, port: srv.port });
    uas.push(u);
    return u;
  }

  async function tcp(): Promise<net.Socket> {
    const s = net.connect({ host: '127.0.0.1', port: srv.port });
    await new Promise((r) => s.once('connect', r));
    sockets.push(s);
    return s;
  }

  it('answers OPTIONS over UDP with 200 and Allow', async () => {
    const u = await ua('udp');
    const res = await u.transact(u.request('OPTIONS', 'sip:example.com'));
    expect(res.status).to.equal(200);
    expect(res.getHeader('allow')).to.include('OPTIONS');
    expect(res.to.tag).to.be.a('string');
    // RFC 3581: rport filled in with our source port
    expect(res.topVia.params.get('rport')).to.equal(String(u.localPort));
  });

  it('answers OPTIONS over TCP with 200', async () => {
    const u = await ua('tcp');
    const res = await u.transact(u.request('OPTIONS', 'sip:example.com'));
    expect(res.status).to.equal(200);
  });

  it('answers a retransmitted OPTIONS with the same response', async () => {
    const u = await ua('udp');
    const req = u.request('OPTIONS', 'sip:example.com');
    const first = await u.transact(req);
    const second = await u.transact(req);
    expect(second.status).to.equal(200);
    expect(second.to.tag).to.equal(first.to.tag);
  });

  it('frames a TCP stream split byte by byte and messages sent back to back', async () => {
    const s = await tcp();
    const got = collectTcp(s, 3);
    const one = Buffer.from(options('frag1'));
    for (let i = 0; i < one.length; i++) s.write(one.subarray(i, i + 1));
    s.write(options('cat2') + '\r\n\r\n' + options('cat3'));
    const responses = await got;
    expect(responses.map((r) => r.callId).sort()).to.deep.equal(['cat2@test', 'cat3@test', 'frag1@test']);
    expect(responses.every((r) => r.status === 200)).to.equal(true);
  });

  it('answers on the TCP connection a request whose Via names UDP', async () => {
    const s = await tcp();
    const got = collectTcp(s, 1);
    s.write(options('viaudp', '', 5999, 'UDP'));
    const [res] = await got;
    expect(res!.status).to.equal(200);
    expect(res!.callId).to.equal('viaudp@test');
  });

  it('answers a CRLF CRLF keep-alive with CRLF (RFC 5626 §3.5.1)', async () => {
    const s = await tcp();
    const pong = new Promise<Buffer>((r) => s.once('data', r));
    s.write('\r\n\r\n');
    expect((await pong).toString()).to.equal('\r\n');
  });

  it('answers a malformed request with 400 and a reason naming the fault', async () => {
    const u = await ua('udp');
    const req = u.request('OPTIONS', 'sip:example.com');
    req.setHeader('CSeq', 'abc OPTIONS');
    const res = await u.transact(req);
    expect(res.status).to.equal(400);
    expect(res.reason).to.equal('Bad CSeq');
    // The 400 copies the CSeq it could not read (RFC 3261 §8.2.6.2), Call-ID and Via too.
    expect(res.getHeader('cseq')).to.equal('abc OPTIONS');
    expect(res.getHeader('call-id')).to.equal(req.getHeader('call-id'));
    expect(res.topVia.branch).to.equal(req.topVia.branch);
  });

  it('answers a Request-URI in <> with 400, not 416 (RFC 4475 §3.1.2.7)', async () => {
    const u = await ua('udp');
    const req = u.request('OPTIONS', '<sip:example.com>', { to: '<sip:example.com>' });
    const res = await u.transact(req);
    expect(res.status).to.equal(400);
  });

  it('takes From, To and Contact of non-SIP schemes; 416 is for the Request-URI (RFC 4475 §3.3.4)', async () => {
    const u = await ua('udp');
    const req = u.request('OPTIONS', 'sip:example.com', { from: '<http://www.example.com>', to: 'isbn:2983792873', headers: { Contact: '<name:John_Smith>' } });
    const res = await u.transact(req);
    expect(res.status).to.equal(200);
    expect(res.getHeader('to')).to.match(/^isbn:2983792873;tag=/);
    const bad = await u.transact(u.request('OPTIONS', 'isbn:2983792873'));
    expect(bad.status).to.equal(416);
  });

  it('frames a folded Content-Length over TCP and refuses one holding two numbers with 400', async () => {
    const s = await tcp();
    const got = collectTcp(s, 2);
    const folded = options('fold1').replace('Content-Length: 0', 'Content-Type: text/plain\r\nContent-Length:\r\n   5') + 'hello';
    s.write(folded + options('fold2').replace('Content-Length: 0', 'Content-Length: 5 6') + 'hello');
    const [ok, bad] = await got;
    expect(ok!.callId).to.equal('fold1@test');
    expect(ok!.status).to.equal(200);
    expect(bad!.callId).to.equal('fold2@test');
    expect(bad!.status).to.equal(400);
    expect(bad!.reason).to.equal('Bad Content-Length');
  });

  it('drops a request whose Via cannot be read', async () => {
    const u = await ua('udp');
    u.send('OPTIONS sip:example.com SIP/2.0\r\nVia: garbage\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:b@c>\r\n\r\n');
    const ok = await u.transact(u.request('OPTIONS', 'sip:example.com'));
    expect(ok.status).to.equal(200);
    expect(u.responses).to.have.length(0);
  });

  it('refuses an oversized TCP message with 513, closes, and stays up', async () => {
    const s = await tcp();
    const got = collectTcp(s, 1);
    const closed = new Promise((r) => s.once('close', r));
    s.write(options('big1', '', 5999).replace('Content-Length: 0', 'Content-Type: text/plain\r\nContent-Length: 10000'));
    const [res] = await got;
    expect(res!.status).to.equal(513);
    await closed;
    const u = await ua('tcp');
    expect((await u.transact(u.request('OPTIONS', 'sip:example.com'))).status).to.equal(200);
  });

  it('refuses an oversized UDP datagram with 513 and stays up', async () => {
    const u = await ua('udp');
    const req = u.request('OPTIONS', 'sip:example.com', { body: 'x'.repeat(5000), headers: { 'Content-Type': 'text/plain' } });
    const refused = await u.transact(req);
    expect(refused.status).to.equal(513);
    expect(refused.reason).to.equal('Message Too Large');
    expect(refused.getHeader('call-id')).to.equal(req.getHeader('call-id'));
    const ok = await u.transact(u.request('OPTIONS', 'sip:example.com'));
    expect(ok.status).to.equal(200);
  });

  it('drops an oversized UDP datagram whose headers cannot be read, and stays up', async () => {
    const u = await ua('udp');
    u.send(Buffer.alloc(5000, 'x'));
    const ok = await u.transact(u.request('OPTIONS', 'sip:example.com'));
    expect(ok.status).to.equal(200);
    expect(u.responses).to.have.length(0);
  });

  it('retransmits the 405 to an INVITE over UDP until the ACK, which it absorbs (RFC 3261 §17.2.1)', async () => {
    // Its own server on a driven clock: Timer G fires when the test says, not after real time.
    const timers = new ManualTimers();
    const own = await startTestServer({}, { timers });
    const u = await TestUa.create({ protocol: 'udp', port: own.port });
    try {
      const t1 = own.server.config.sip.timers.t1;
      const inv = u.request('INVITE', 'sip:bob@example.com');
      const first = await u.transact(inv);
      expect(first.status).to.equal(405);
      // Timer G (T1): the same final response again, same To tag.
      timers.advance(t1);
      const again = await u.waitResponse((r) => r.topVia.branch === inv.topVia.branch, 1000);
      expect(again.status).to.equal(405);
      expect(again.to.tag).to.equal(first.to.tag);
      const ack = new SipRequest('ACK', inv.uriText, inv.headers.filter((h) => h.key !== 'to' && h.key !== 'cseq' && h.key !== 'contact'));
      ack.addHeader('To', first.getHeader('to')!);
      ack.addHeader('CSeq', `${inv.cseq.seq} ACK`);
      u.send(ack);
      // An OPTIONS answered after the ACK: the server has taken the ACK in (loopback keeps order).
      expect((await u.transact(u.request('OPTIONS', 'sip:example.com'))).status).to.equal(200);
      u.responses.length = 0;
      // Without the ACK, copies would follow at 2·T1, 4·T1, ... until Timer H (64·T1): none
      // comes, and the ACK itself gets no answer. A second OPTIONS round trip lets any copy arrive.
      timers.advance(64 * t1);
      expect((await u.transact(u.request('OPTIONS', 'sip:example.com'))).status).to.equal(200);
      expect(u.responses.filter((r) => r.topVia.branch === inv.topVia.branch)).to.have.length(0);
    } finally {
      await u.close();
      await own.stop();
    }
  });

  it('answers a CANCEL matching the INVITE with 200, an unmatched one with 481 (RFC 3261 §9.2)', async () => {
    const u = await ua('tcp');
    const inv = u.request('INVITE', 'sip:bob@example.com');
    expect((await u.transact(inv)).status).to.equal(405);
    // §9.1: the CANCEL repeats the INVITE's Request-URI, Call-ID, From, To, CSeq number and top Via.
    const cancel = new SipRequest('CANCEL', inv.uriText, inv.headers.filter((h) => h.key !== 'cseq' && h.key !== 'contact'));
    cancel.addHeader('CSeq', `${inv.cseq.seq} CANCEL`);
    const matched = await u.transact(cancel);
    expect(matched.status).to.equal(200);
    expect(matched.reason).to.equal('OK');
    const stray = await u.transact(u.request('CANCEL', 'sip:bob@example.com'));
    expect(stray.status).to.equal(481);
    expect(stray.reason).to.equal('Call/Transaction Does Not Exist');
  });

  it('answers a request without the magic cookie (RFC 2543), retransmission with the same response', async () => {
    const u = await ua('udp');
    const req = u.request('OPTIONS', 'sip:example.com');
    req.setHeader('Via', `SIP/2.0/UDP ${u.viaHost};branch=old2543-1`);
    const first = await u.transact(req);
    expect(first.status).to.equal(200);
    const second = await u.transact(req);
    expect(second.to.tag).to.equal(first.to.tag);
    const noBranch = u.request('OPTIONS', 'sip:example.com');
    noBranch.setHeader('Via', `SIP/2.0/UDP ${u.viaHost}`);
    const p = u.waitResponse((r) => r.getHeader('call-id') === noBranch.getHeader('call-id'));
    u.send(noBranch);
    expect((await p).status).to.equal(200);
  });

  it('answers INVITE with 405 and Allow, unknown methods with 501', async () => {
    const u = await ua('udp');
    const inv = await u.transact(u.request('INVITE', 'sip:bob@example.com'));
    expect(inv.status).to.equal(405);
    expect(inv.getHeader('allow')).to.include('OPTIONS');
    const foo = await u.transact(u.request('FOO', 'sip:bob@example.com'));
    expect(foo.status).to.equal(501);
  });

  it('answers unknown Require option tags with 420 and Unsupported', async () => {
    const u = await ua('udp');
    const res = await u.transact(u.request('OPTIONS', 'sip:example.com', { headers: { Require: 'foo, bar' } }));
    expect(res.status).to.equal(420);
    expect(res.getHeader('unsupported')).to.equal('foo, bar');
  });

  it('answers Max-Forwards 0 with 483, except OPTIONS, which it answers itself (RFC 3261 §16.3)', async () => {
    const u = await ua('udp');
    for (const [method, uri] of [['MESSAGE', 'sip:bob@example.com'], ['REGISTER', 'sip:example.com'], ['INVITE', 'sip:bob@example.com']] as const) {
      const res = await u.transact(u.request(method, uri, { headers: { 'Max-Forwards': 0 } }));
      expect(res.status, method).to.equal(483);
      expect(res.reason).to.equal('Too Many Hops');
    }
    const options = await u.transact(u.request('OPTIONS', 'sip:example.com', { headers: { 'Max-Forwards': 0 } }));
    expect(options.status).to.equal(200);
  });

  it('answers an unsupported SIP version with 505', async () => {
    const u = await ua('udp');
    const req = u.request('OPTIONS', 'sip:example.com');
    const text = req.toString().replace('SIP/2.0\r\n', 'SIP/7.0\r\n');
    const p = u.waitResponse();
    u.send(text);
    expect((await p).status).to.equal(505);
  });
});

describe('e2e: SIP core over IPv6 loopback', () => {
  let srv: TestServer;
  const uas: TestUa[] = [];

  before(async () => {
    srv = await startTestServer({ sip: { hosts: ['127.0.0.1', '::1'] } });
  });
  after(async () => {
    for (const u of uas) await u.close();
    await srv.stop();
  });

  for (const protocol of ['udp', 'tcp'] as const) {
    it(`answers OPTIONS over ${protocol.toUpperCase()} on [::1], the response routed back per RFC 3581`, async () => {
      const v6 = srv.server.listeners.find((l) => l.protocol === protocol && l.host === '::1');
      expect(v6, 'an IPv6 listener').to.not.equal(undefined);
      const u = await TestUa.create({ protocol, host: '::1', port: v6!.port });
      uas.push(u);
      const res = await u.transact(u.request('OPTIONS', 'sip:example.com'));
      expect(res.status).to.equal(200);
      expect(res.topVia.host).to.equal('[::1]');
      expect(res.topVia.params.get('rport')).to.equal(String(u.localPort));
      expect(res.topVia.params.get('received')).to.equal('::1');
    });
  }
});

describe('e2e: what the server logs about malformed input', () => {
  it('logs a malformed request once, at debug, with the peer address, the reason and the Call-ID', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
        done();
      },
    });
    const config = loadConfig({ env: {}, overrides: { sip: { hosts: ['127.0.0.1'], port: 0, drainTimeoutMs: 0 }, http: { host: '127.0.0.1', port: 0 }, auth: { required: false } } });
    const server = new SimplePresenceServer(config, { logger: createLogger('debug', sink), store: false });
    const port = (await server.start())[0]!.port;
    const u = await TestUa.create({ protocol: 'udp', port });
    try {
      const req = u.request('OPTIONS', 'sip:example.com', { callId: 'logged-once@test' });
      req.setHeader('CSeq', '1 INVITE');
      const answered = u.waitResponse((r) => r.getHeader('call-id') === 'logged-once@test');
      u.send(req);
      expect((await answered).reason).to.equal('CSeq method mismatch');
      const about = lines.filter((l) => JSON.stringify(l).includes('logged-once@test') || l.reason === 'CSeq method mismatch');
      expect(about).to.have.length(1);
      expect(about[0]).to.include({ level: 20, peer: `127.0.0.1:${u.localPort}`, reason: 'CSeq method mismatch', callId: 'logged-once@test' });
    } finally {
      await u.close();
      await server.stop();
    }
  });
});

describe('e2e: simple-presence serve (the CLI process)', function () {
  this.timeout(40_000);
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'sp-core-cli-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('logs one line naming every listener once all are up, answers OPTIONS, and exits 0 on SIGINT', async () => {
    const port = await freePort();
    const proc = await startServerProcess(dir, {
      sip: { hosts: ['127.0.0.1'], port, domain: 'example.com' },
      http: { host: '127.0.0.1', port: 0 },
      store: { enabled: false },
      auth: { required: false },
    });
    try {
      const listening = proc.lines.map((l) => JSON.parse(l) as { msg: string; listeners?: string[] }).filter((l) => l.msg === 'simple-presence listening');
      expect(listening).to.have.length(1);
      expect(listening[0]!.listeners).to.include.members([`udp:127.0.0.1:${port}`, `tcp:127.0.0.1:${port}`]);
      expect(listening[0]!.listeners!.some((l) => /^ws:127\.0\.0\.1:\d+$/.test(l))).to.equal(true);
      const u = await TestUa.create({ protocol: 'udp', port });
      try {
        expect((await u.transact(u.request('OPTIONS', 'sip:example.com'))).status).to.equal(200);
      } finally {
        await u.close();
      }
    } finally {
      expect(await proc.stop('SIGINT')).to.equal(0);
    }
    expect(proc.lines.some((l) => l.includes('simple-presence stopped'))).to.equal(true);
  });

  it('refuses to start on a bad configuration with a message naming the key, exit code 2', async () => {
    const file = join(dir, 'bad.json');
    writeFileSync(file, JSON.stringify({ sip: { port: 70000 } }));
    const bad = await runCli(['serve', '--config', file]);
    expect(bad.code).to.equal(2);
    expect(bad.out).to.include('simple-presence: invalid configuration: "sip.port" must be <= 65535');
  });
});
