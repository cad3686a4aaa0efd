import net from 'node:net';
import { expect } from 'chai';
import { parseMessage } from '../../src/sip/parser.js';
import { SipResponse } from '../../src/sip/message.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { TestUa } from '../support/test-ua.js';

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

  it('drops an oversized UDP datagram and stays up', async () => {
    const u = await ua('udp');
    const req = u.request('OPTIONS', 'sip:example.com', { body: 'x'.repeat(5000), headers: { 'Content-Type': 'text/plain' } });
    u.send(req);
    const ok = await u.transact(u.request('OPTIONS', 'sip:example.com'));
    expect(ok.status).to.equal(200);
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

  it('answers Max-Forwards 0 with 483', async () => {
    const u = await ua('udp');
    const res = await u.transact(u.request('MESSAGE', 'sip:bob@example.com', { headers: { 'Max-Forwards': 0 } }));
    expect(res.status).to.equal(483);
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
