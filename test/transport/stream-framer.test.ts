import { expect } from 'chai';
import { parseMessage } from '../../src/sip/parser.js';
import { StreamFramer, type StreamEvent } from '../../src/transport/stream-framer.js';

function sipMessage(callId: string, body = '', lengthHeader: string | null = 'Content-Length'): Buffer {
  const lines = [
    'MESSAGE sip:bob@example.com SIP/2.0',
    'Via: SIP/2.0/TCP h.example.com;branch=z9hG4bK' + callId,
    'To: <sip:bob@example.com>',
    'From: <sip:alice@example.com>;tag=1',
    `Call-ID: ${callId}`,
    'CSeq: 1 MESSAGE',
  ];
  if (lengthHeader !== null) lines.push(`${lengthHeader}: ${Buffer.byteLength(body)}`);
  return Buffer.from(lines.join('\r\n') + '\r\n\r\n' + body);
}

function messages(events: StreamEvent[]): Buffer[] {
  return events.filter((e): e is Extract<StreamEvent, { kind: 'message' }> => e.kind === 'message').map((e) => e.data);
}

function callIdOf(data: Buffer): string {
  const r = parseMessage(data);
  if (!r.ok) throw new Error(r.error.reason);
  return r.message.callId;
}

describe('transport/stream-framer', () => {
  it('frames one message pushed whole', () => {
    const f = new StreamFramer(65535);
    const msg = sipMessage('one', 'hello');
    const ev = f.push(msg);
    expect(ev).to.have.length(1);
    expect(ev[0]!.kind).to.equal('message');
    expect(messages(ev)[0]!.equals(msg)).to.equal(true);
    expect(f.buffered).to.equal(0);
  });

  it('frames one message fed one byte at a time', () => {
    const f = new StreamFramer(65535);
    const msg = sipMessage('bytewise', 'body with\r\n\r\nblank lines');
    const events: StreamEvent[] = [];
    for (let i = 0; i < msg.length; i++) {
      const ev = f.push(msg.subarray(i, i + 1));
      if (i < msg.length - 1) expect(ev, `byte ${i}`).to.deep.equal([]);
      events.push(...ev);
    }
    expect(events).to.have.length(1);
    expect(messages(events)[0]!.equals(msg)).to.equal(true);
    expect(f.buffered).to.equal(0);
  });

  it('frames many messages in one chunk, with bodies', () => {
    const f = new StreamFramer(65535);
    const all = Buffer.concat(Array.from({ length: 50 }, (_, i) => sipMessage(`m${i}`, i % 2 ? `body ${i}` : '')));
    const got = messages(f.push(all));
    expect(got.map(callIdOf)).to.deep.equal(Array.from({ length: 50 }, (_, i) => `m${i}`));
    expect(f.buffered).to.equal(0);
  });

  it('waits for body bytes split across chunks', () => {
    const f = new StreamFramer(65535);
    const msg = sipMessage('split', '0123456789');
    const cut = msg.length - 7;
    expect(f.push(msg.subarray(0, cut))).to.deep.equal([]);
    expect(f.buffered).to.equal(cut);
    expect(f.push(msg.subarray(cut, cut + 3))).to.deep.equal([]);
    const ev = f.push(msg.subarray(cut + 3));
    expect(messages(ev)).to.have.length(1);
    const r = parseMessage(messages(ev)[0]!);
    expect(r.ok && r.message.body.toString()).to.equal('0123456789');
  });

  it('frames a message and the start of the next, then the rest', () => {
    const f = new StreamFramer(65535);
    const a = sipMessage('a', 'AAA');
    const b = sipMessage('b', 'BBBB');
    const both = Buffer.concat([a, b]);
    const first = f.push(both.subarray(0, a.length + 10));
    expect(messages(first).map(callIdOf)).to.deep.equal(['a']);
    expect(f.buffered).to.equal(10);
    const second = f.push(both.subarray(a.length + 10));
    expect(messages(second).map(callIdOf)).to.deep.equal(['b']);
  });

  it('reports a CRLF CRLF keep-alive as a ping', () => {
    const f = new StreamFramer(65535);
    expect(f.push(Buffer.from('\r\n\r\n'))).to.deep.equal([{ kind: 'ping' }]);
    expect(f.buffered).to.equal(0);
    expect(f.push(Buffer.from('\r\n\r\n\r\n\r\n'))).to.deep.equal([{ kind: 'ping' }, { kind: 'ping' }]);
  });

  it('reports a ping split over several chunks', () => {
    const f = new StreamFramer(65535);
    expect(f.push(Buffer.from('\r'))).to.deep.equal([]);
    expect(f.push(Buffer.from('\n'))).to.deep.equal([]);
    expect(f.push(Buffer.from('\r'))).to.deep.equal([]);
    expect(f.push(Buffer.from('\n'))).to.deep.equal([{ kind: 'ping' }]);
  });

  it('reports pings between messages in order', () => {
    const f = new StreamFramer(65535);
    const ev = f.push(Buffer.concat([sipMessage('a'), Buffer.from('\r\n\r\n'), sipMessage('b')]));
    expect(ev.map((e) => e.kind)).to.deep.equal(['message', 'ping', 'message']);
  });

  it('ignores single CRLFs between messages', () => {
    const f = new StreamFramer(65535);
    const ev = f.push(Buffer.concat([Buffer.from('\r\n'), sipMessage('a'), Buffer.from('\r\n'), sipMessage('b'), Buffer.from('\n')]));
    expect(ev.map((e) => e.kind)).to.deep.equal(['message', 'message']);
    expect(messages(ev).map(callIdOf)).to.deep.equal(['a', 'b']);
    // a single CRLF at the end of a chunk may start a ping: it waits, then is dropped
    const ev2 = f.push(Buffer.concat([Buffer.from('\r\n'), sipMessage('c')]));
    expect(messages(ev2).map(callIdOf)).to.deep.equal(['c']);
  });

  it('a single CRLF followed by a message in the next chunk is not a ping', () => {
    const f = new StreamFramer(65535);
    expect(f.push(Buffer.from('\r\n'))).to.deep.equal([]);
    const ev = f.push(sipMessage('x'));
    expect(ev.map((e) => e.kind)).to.deep.equal(['message']);
  });

  it('reads the compact l: header and is case-insensitive', () => {
    const f = new StreamFramer(65535);
    const a = sipMessage('compact', 'abcdef', 'l');
    const b = sipMessage('upper', 'xyz', 'CONTENT-LENGTH');
    const c = sipMessage('spaced', 'pq', 'content-length  ');
    const got = messages(f.push(Buffer.concat([a, b, c])));
    expect(got.map(callIdOf)).to.deep.equal(['compact', 'upper', 'spaced']);
    expect(got[0]!.equals(a)).to.equal(true);
  });

  it('does not take a header ending in "l" for Content-Length', () => {
    const f = new StreamFramer(65535);
    const msg = Buffer.concat([
      Buffer.from('OPTIONS sip:x@example.com SIP/2.0\r\nX-Val: 99\r\nCall-ID: n\r\nContent-Length: 2\r\n\r\nab'),
    ]);
    const got = messages(f.push(msg));
    expect(got).to.have.length(1);
    expect(got[0]!.length).to.equal(msg.length);
  });

  it('treats a missing Content-Length as 0', () => {
    const f = new StreamFramer(65535);
    const a = sipMessage('nolen', '', null);
    const b = sipMessage('next', 'z');
    const got = messages(f.push(Buffer.concat([a, b])));
    expect(got.map(callIdOf)).to.deep.equal(['nolen', 'next']);
    expect(got[0]!.equals(a)).to.equal(true);
  });

  it('frames LF-only heads', () => {
    const f = new StreamFramer(65535);
    const m = Buffer.from('OPTIONS sip:x@example.com SIP/2.0\nCall-ID: lf\nContent-Length: 3\n\nabcOPTIONS');
    const got = messages(f.push(m));
    expect(got).to.have.length(1);
    expect(got[0]!.toString()).to.match(/\n\nabc$/);
    expect(f.buffered).to.equal('OPTIONS'.length);
  });

  it('fails too-large when no end of headers comes within the limit', () => {
    const f = new StreamFramer(1024);
    expect(f.push(Buffer.alloc(1000, 0x41))).to.deep.equal([]);
    const ev = f.push(Buffer.alloc(100, 0x41));
    expect(ev).to.deep.equal([{ kind: 'error', reason: 'too-large', head: undefined }]);
    expect(f.buffered).to.equal(0);
    // the framer stays failed
    expect(f.push(sipMessage('after'))).to.deep.equal([]);
  });

  it('buffers up to the limit without an end of headers', () => {
    const f = new StreamFramer(1024);
    expect(f.push(Buffer.alloc(1024, 0x41))).to.deep.equal([]);
    expect(f.buffered).to.equal(1024);
  });

  it('fails too-large with the head when Content-Length goes past the limit', () => {
    const f = new StreamFramer(2048);
    const head = 'MESSAGE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/TCP h.example.com;branch=z9hG4bKbig\r\nCall-ID: big\r\nContent-Length: 5000';
    const ev = f.push(Buffer.from(head + '\r\n\r\nstart of body'));
    expect(ev).to.have.length(1);
    const e = ev[0]!;
    expect(e.kind).to.equal('error');
    if (e.kind !== 'error') return;
    expect(e.reason).to.equal('too-large');
    expect(e.head!.toString()).to.equal(head);
    expect(f.push(Buffer.from('more'))).to.deep.equal([]);
  });

  it('accepts a message of exactly the limit and refuses one byte more', () => {
    const msg = sipMessage('exact', 'x'.repeat(100));
    expect(messages(new StreamFramer(msg.length).push(msg))).to.have.length(1);
    const ev = new StreamFramer(msg.length - 1).push(msg);
    expect(ev.map((e) => e.kind)).to.deep.equal(['error']);
    expect(ev[0]).to.include({ reason: 'too-large' });
  });

  it('delivers messages before an error in the same chunk', () => {
    const f = new StreamFramer(65535);
    const bad = Buffer.from('MESSAGE sip:x SIP/2.0\r\nContent-Length: lots\r\n\r\n');
    const ev = f.push(Buffer.concat([sipMessage('good'), bad]));
    expect(ev.map((e) => e.kind)).to.deep.equal(['message', 'error']);
  });

  it('fails bad-content-length with the head for non-numeric or over-long values', () => {
    for (const value of ['abc', '-1', '1.5', '12345678901', '', '0x10']) {
      const f = new StreamFramer(65535);
      const head = `MESSAGE sip:x@example.com SIP/2.0\r\nCall-ID: bcl\r\nContent-Length: ${value}`;
      const ev = f.push(Buffer.from(head + '\r\n\r\nbody'));
      expect(ev, value).to.have.length(1);
      const e = ev[0]!;
      expect(e.kind).to.equal('error');
      if (e.kind !== 'error') continue;
      expect(e.reason, value).to.equal('bad-content-length');
      expect(e.head!.toString(), value).to.equal(head);
      expect(f.buffered).to.equal(0);
    }
  });

  it('reads a folded Content-Length as the parser does', () => {
    // RFC 3261 §7.3.1: any header may be folded onto continuation lines. The parser reads
    // this message (body "hello"); the framer must cut it at the same place.
    const f = new StreamFramer(65535);
    const msg = Buffer.from(
      'MESSAGE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/TCP h.example.com;branch=z9hG4bKf\r\n' +
        'To: <sip:bob@example.com>\r\nFrom: <sip:alice@example.com>;tag=1\r\nCall-ID: folded\r\n' +
        'CSeq: 1 MESSAGE\r\nContent-Length:\r\n   5\r\n\r\nhello',
    );
    const parsed = parseMessage(msg);
    expect(parsed.ok && parsed.message.body.toString()).to.equal('hello');
    const ev = f.push(msg);
    expect(ev.map((e) => e.kind)).to.deep.equal(['message']);
    expect(messages(ev)[0]!.equals(msg)).to.equal(true);
  });

  it('treats a Content-Length holding two numbers as bad, not as absent', () => {
    // Taking "5 6" as a missing header (0) cuts the message before its body and then
    // reads the body bytes as the start of the next message.
    const f = new StreamFramer(65535);
    const head = 'MESSAGE sip:bob@example.com SIP/2.0\r\nCall-ID: two\r\nContent-Length: 5 6';
    const ev = f.push(Buffer.from(head + '\r\n\r\nhello'));
    expect(ev.map((e) => e.kind)).to.deep.equal(['error']);
    expect(ev[0]).to.include({ reason: 'bad-content-length' });
  });

  it('reads a value folded onto two numbers as bad, as the parser does', () => {
    for (const cl of ['Content-Length: 5\r\n 6', 'Content-Length:\r\n 5\r\n\t6', 'l: 5\r6']) {
      const f = new StreamFramer(65535);
      const head = `MESSAGE sip:bob@example.com SIP/2.0\r\nCall-ID: fold\r\n${cl}`;
      const msg = Buffer.from(head + '\r\n\r\nhello');
      const parsed = parseMessage(msg);
      expect(!parsed.ok && parsed.error.reason, cl).to.equal('Bad Content-Length');
      const ev = f.push(msg);
      expect(ev.map((e) => e.kind), cl).to.deep.equal(['error']);
      expect(ev[0], cl).to.include({ reason: 'bad-content-length' });
    }
  });

  it('starts header lines at LF only: a bare CR inside a value starts no Content-Length', () => {
    // The parser splits lines at LF; "Subject: x<CR>l: 5" is one Subject header to it.
    const f = new StreamFramer(65535);
    const msg = Buffer.from('MESSAGE sip:bob@example.com SIP/2.0\r\nSubject: x\rl: 5\r\nCall-ID: cr\r\n\r\n');
    const ev = f.push(Buffer.concat([msg, Buffer.from('\r\n\r\n')]));
    expect(ev.map((e) => e.kind)).to.deep.equal(['message', 'ping']);
    expect(messages(ev)[0]!.equals(msg)).to.equal(true);
  });

  it('reads a folded Content-Length with LF-only line ends', () => {
    const f = new StreamFramer(65535);
    const msg = Buffer.from('MESSAGE sip:bob@example.com SIP/2.0\nCall-ID: lf\nContent-Length:\n\t 3 \n\nabc');
    const ev = f.push(msg);
    expect(ev.map((e) => e.kind)).to.deep.equal(['message']);
    expect(messages(ev)[0]!.equals(msg)).to.equal(true);
  });

  it('does not keep a reference to the caller chunk in emitted messages', () => {
    const f = new StreamFramer(65535);
    const chunk = sipMessage('copy', 'abc');
    const [ev] = f.push(chunk);
    chunk.fill(0);
    expect(ev!.kind).to.equal('message');
    if (ev!.kind === 'message') expect(callIdOf(ev.data)).to.equal('copy');
  });

  it('frames randomly chunked streams the same as whole ones', () => {
    let seed = 12345;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed % n;
    };
    const parts: Buffer[] = [];
    const expected: string[] = [];
    for (let i = 0; i < 40; i++) {
      if (rand(4) === 0) {
        parts.push(Buffer.from('\r\n\r\n'));
        expected.push('ping');
      }
      parts.push(sipMessage(`r${i}`, 'b'.repeat(rand(300))));
      expected.push(`r${i}`);
    }
    const stream = Buffer.concat(parts);
    for (let round = 0; round < 20; round++) {
      const f = new StreamFramer(65535);
      const got: string[] = [];
      for (let i = 0; i < stream.length; ) {
        const n = 1 + rand(200);
        for (const e of f.push(stream.subarray(i, i + n))) got.push(e.kind === 'message' ? callIdOf(e.data) : e.kind);
        i += n;
      }
      expect(got).to.deep.equal(expected);
      expect(f.buffered).to.equal(0);
    }
  });
});
