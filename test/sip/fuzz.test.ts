import { expect } from 'chai';
import { SipParseError } from '../../src/sip/errors.js';
import { SipRequest, type SipMessage } from '../../src/sip/message.js';
import { parseMessage } from '../../src/sip/parser.js';
import { createResponse } from '../../src/sip/response.js';
import { StreamFramer } from '../../src/transport/stream-framer.js';
import { prng } from '../presence/pidf/helpers.js';

const crlf = (lines: string[], body = ''): Buffer => Buffer.from(lines.join('\r\n') + '\r\n\r\n' + body, 'utf8');

const PIDF = '<?xml version="1.0" encoding="UTF-8"?>\r\n<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:alice@example.com">\r\n<tuple id="t1"><status><basic>open</basic></status></tuple>\r\n</presence>';

const CORPUS: Buffer[] = [
  crlf([
    'INVITE sip:bob@biloxi.example.com SIP/2.0',
    'Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds;rport',
    'Max-Forwards: 70',
    'To: Bob <sip:bob@biloxi.example.com>',
    'From: "Alice \\"A\\" Liddell" <sip:alice@atlanta.example.com>;tag=1928301774',
    'Call-ID: a84b4c76e66710@pc33.atlanta.example.com',
    'CSeq: 314159 INVITE',
    'Contact: <sip:alice@pc33.atlanta.example.com>',
    'Content-Type: application/sdp',
    'Content-Length: 31',
  ], 'v=0\r\no=alice 1 1 IN IP4 x\r\ns=-\r\n'),
  crlf([
    'REGISTER sip:example.com SIP/2.0',
    'v: SIP/2.0/TCP [2001:db8::10]:5070;branch=z9hG4bKreg1;received=[2001:db8::99];rport=40000',
    'Max-Forwards: 70',
    't: <sip:alice@example.com>',
    'f: <sip:alice@example.com>;tag=reg',
    'i: reg-1@[2001:db8::10]',
    'CSeq: 2 REGISTER',
    'm: "Alice, mobile" <sip:alice@[2001:db8::10]:5070;transport=tcp>;expires=600;q=0.8, <sip:alice@192.0.2.4>',
    'Expires: 3600',
    'Supported: path, outbound',
    'l: 0',
  ]),
  crlf([
    'SUBSCRIBE sips:bob@example.com SIP/2.0',
    'Via: SIP/2.0/TLS proxy.example.com:5061;branch=z9hG4bKp1, SIP/2.0/TLS ua.example.com;branch=z9hG4bKu1;received=198.51.100.3',
    'Route: <sips:proxy.example.com;lr>',
    'Max-Forwards: 69',
    'To: <sips:bob@example.com>',
    'From: Alice <sips:alice@example.com>;tag=sub1',
    'Call-ID: sub-xyz',
    'CSeq: 1 SUBSCRIBE',
    'Contact: <sips:alice@ua.example.com>',
    'Event: presence;id=42',
    'Accept: application/pidf+xml, application/rlmi+xml',
    'Expires: 600',
    'Content-Length: 0',
  ]),
  crlf([
    'NOTIFY sip:alice@192.0.2.4:5060;transport=udp SIP/2.0',
    'Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKn1',
    'Max-Forwards: 70',
    'To: <sip:alice@example.com>;tag=sub1',
    'From: <sip:bob@example.com>;tag=n1',
    'Call-ID: sub-xyz',
    'CSeq: 7 NOTIFY',
    'Event: presence',
    'Subscription-State: active;expires=599',
    'Content-Type: application/pidf+xml;charset=UTF-8',
    `Content-Length: ${Buffer.byteLength(PIDF)}`,
  ], PIDF),
  crlf([
    'MESSAGE sip:bob@example.com SIP/2.0',
    'Via: SIP/2.0/UDP h.example.com',
    '  ;branch=z9hG4bKm1',
    'Max-Forwards: 70',
    'To: sip:bob@example.com',
    'From: sip:alice@example.com;tag=m1',
    'Call-ID: msg-1',
    'CSeq: 1 MESSAGE',
    'Content-Type: text/plain;charset=utf-8',
    `Content-Length: ${Buffer.byteLength('Héllo, Bob! ✓')}`,
  ], 'Héllo, Bob! ✓'),
  crlf([
    'PUBLISH sip:alice@example.com SIP/2.0',
    'Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKpub;maddr=224.2.0.1;ttl=16',
    'Max-Forwards: 70',
    'To: <sip:alice@example.com>',
    'From: <sip:alice@example.com>;tag=p',
    'Call-ID: pub-1',
    'CSeq: 3 PUBLISH',
    'o: presence',
    'SIP-If-Match: abc123',
    'Expires: 1800',
    'c: application/pidf+xml',
    `l: ${Buffer.byteLength(PIDF)}`,
  ], PIDF),
  crlf([
    'SIP/2.0 200 OK',
    'Via: SIP/2.0/UDP server10.biloxi.example.com;branch=z9hG4bKnashds8;received=192.0.2.3',
    'Via: SIP/2.0/UDP bigbox3.site3.atlanta.example.com;branch=z9hG4bK77ef4c2312983.1;received=192.0.2.2',
    'Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds;received=192.0.2.1',
    'To: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf',
    'From: Alice <sip:alice@atlanta.example.com>;tag=1928301774',
    'Call-ID: a84b4c76e66710@pc33.atlanta.example.com',
    'CSeq: 314159 INVITE',
    'Contact: <sip:bob@192.0.2.4>',
    'Content-Length: 0',
  ]),
  crlf([
    'SIP/2.0 423 Interval Too Brief',
    'v: SIP/2.0/UDP [::1]:5062;branch=z9hG4bKx;rport=5062;received=[::1]',
    't: <sip:alice@example.com>;tag=srv',
    'f: <sip:alice@example.com>;tag=reg',
    'i: reg-2',
    'CSeq: 9 REGISTER',
    'Min-Expires: 60',
    'm: *',
  ]),
];

const SPECIAL = ['\r', '\n', '\r\n', ':', ';', '<', '>', '"', '\\', ',', ' ', '\t', '@', '[', ']', '%', '=', '?', '\0', '/'];

function headLines(buf: Buffer): { lines: Buffer[]; rest: Buffer } {
  const end = buf.indexOf('\r\n\r\n');
  const headEnd = end < 0 ? buf.length : end;
  const head = buf.subarray(0, headEnd);
  const lines: Buffer[] = [];
  let start = 0;
  for (;;) {
    const i = head.indexOf('\r\n', start);
    if (i < 0) {
      lines.push(head.subarray(start));
      break;
    }
    lines.push(head.subarray(start, i));
    start = i + 2;
  }
  return { lines, rest: buf.subarray(headEnd) };
}

function joinLines(lines: Buffer[], rest: Buffer): Buffer {
  const parts: Buffer[] = [];
  lines.forEach((l, i) => {
    if (i > 0) parts.push(Buffer.from('\r\n'));
    parts.push(l);
  });
  parts.push(rest);
  return Buffer.concat(parts);
}

function mutate(input: Buffer, rnd: () => number): Buffer {
  const int = (n: number): number => Math.floor(rnd() * n);
  let buf: Buffer = Buffer.from(input);
  const rounds = 1 + int(4);
  for (let r = 0; r < rounds; r++) {
    if (buf.length === 0) buf = Buffer.from(CORPUS[int(CORPUS.length)]!);
    switch (int(9)) {
      case 0: { // byte flips
        const n = 1 + int(4);
        for (let i = 0; i < n; i++) buf[int(buf.length)] = int(256);
        break;
      }
      case 1: { // bit flip
        const i = int(buf.length);
        buf[i] = buf[i]! ^ (1 << int(8));
        break;
      }
      case 2: // truncation
        buf = buf.subarray(0, int(buf.length + 1));
        break;
      case 3: { // duplicate a header line
        const { lines, rest } = headLines(buf);
        if (lines.length > 1) {
          const i = 1 + int(lines.length - 1);
          lines.splice(1 + int(lines.length - 1), 0, lines[i]!);
        }
        buf = joinLines(lines, rest);
        break;
      }
      case 4: { // insert a special character
        const i = int(buf.length + 1);
        const s = Buffer.from(SPECIAL[int(SPECIAL.length)]!, 'latin1');
        buf = Buffer.concat([buf.subarray(0, i), s, buf.subarray(i)]);
        break;
      }
      case 5: { // insert high bytes (often invalid UTF-8)
        const i = int(buf.length + 1);
        const n = 1 + int(3);
        const s = Buffer.from(Array.from({ length: n }, () => 0x80 + int(128)));
        buf = Buffer.concat([buf.subarray(0, i), s, buf.subarray(i)]);
        break;
      }
      case 6: { // shuffle header lines (keep the start line)
        const { lines, rest } = headLines(buf);
        for (let i = lines.length - 1; i > 1; i--) {
          const j = 1 + int(i);
          [lines[i], lines[j]] = [lines[j]!, lines[i]!];
        }
        buf = joinLines(lines, rest);
        break;
      }
      case 7: { // delete a range
        const i = int(buf.length);
        const n = 1 + int(12);
        buf = Buffer.concat([buf.subarray(0, i), buf.subarray(i + n)]);
        break;
      }
      default: { // splice a piece of another message in
        const other = CORPUS[int(CORPUS.length)]!;
        const a = int(other.length);
        const piece = other.subarray(a, a + 1 + int(40));
        const i = int(buf.length + 1);
        buf = Buffer.concat([buf.subarray(0, i), piece, buf.subarray(i)]);
        break;
      }
    }
  }
  return buf;
}

/** Reads a property; it may return anything or throw SipParseError, nothing else. */
function probe(m: SipMessage, name: string, read: () => unknown, input: Buffer): void {
  try {
    read();
  } catch (e) {
    if (!(e instanceof SipParseError)) {
      throw new Error(`${name} threw ${String(e)} (not SipParseError) for input ${JSON.stringify(input.toString('latin1'))}`);
    }
    if (typeof e.reason !== 'string' || e.reason === '') throw new Error(`${name} threw a SipParseError without a reason`);
  }
}

function probeAll(m: SipMessage, input: Buffer): void {
  probe(m, 'vias', () => m.vias, input);
  probe(m, 'topVia', () => m.topVia, input);
  probe(m, 'callId', () => m.callId, input);
  probe(m, 'cseq', () => m.cseq, input);
  probe(m, 'from', () => m.from, input);
  probe(m, 'to', () => m.to, input);
  probe(m, 'contact', () => m.contact, input);
  probe(m, 'contacts', () => m.contacts, input);
  probe(m, 'expires', () => m.expires, input);
  probe(m, 'event', () => m.event, input);
  probe(m, 'contentType', () => m.contentType, input);
  probe(m, 'routes', () => m.routes, input);
  probe(m, 'recordRoutes', () => m.recordRoutes, input);
  if (m instanceof SipRequest) {
    probe(m, 'uri', () => m.uri, input);
    probe(m, 'maxForwards', () => m.maxForwards, input);
  }
  for (const h of m.headers) probe(m, `getHeaders(${h.key})`, () => m.getHeaders(h.key), input);
}

const ITERATIONS = 10_000;

describe('sip/fuzz', function () {
  this.timeout(20_000);

  it('every corpus message parses cleanly before damage', () => {
    for (const buf of CORPUS) {
      const r = parseMessage(buf);
      if (!r.ok) throw new Error(`${r.error.reason}: ${buf.toString()}`);
      probeAll(r.message, buf);
    }
  });

  it(`parseMessage never throws on ${ITERATIONS} damaged messages, and accessors throw only SipParseError`, () => {
    const rnd = prng(0x5eed1234);
    let ok = 0;
    let failed = 0;
    let shells = 0;
    for (let n = 0; n < ITERATIONS; n++) {
      const input = mutate(CORPUS[Math.floor(rnd() * CORPUS.length)]!, rnd);
      let r: ReturnType<typeof parseMessage>;
      try {
        r = parseMessage(input);
      } catch (e) {
        throw new Error(`parseMessage threw ${String(e)} for ${JSON.stringify(input.toString('latin1'))}`);
      }
      if (r.ok) {
        ok++;
        // what parseMessage promised is readable: these must not throw at all
        const m = r.message;
        void m.vias, m.callId, m.cseq, m.from, m.to;
        if (m instanceof SipRequest) {
          void m.uri, m.maxForwards;
          if (m.cseq.method !== m.method) throw new Error(`CSeq method ${m.cseq.method} accepted for ${m.method}`);
        }
        probeAll(r.message, input);
      } else {
        failed++;
        if (!(r.error instanceof SipParseError) || !r.error.reason || ![400, 416, 505, 513].includes(r.error.status)) {
          throw new Error(`bad error ${String(r.error)} (${r.error.status}) for ${JSON.stringify(input.toString('latin1'))}`);
        }
        if (r.request) {
          shells++;
          void r.request.vias; // a shell always has readable Vias
          probeAll(r.request, input);
          const res = createResponse(r.request, r.error.status, r.error.reason, { toTag: 'fz' });
          expect(res.toBuffer().length).to.be.greaterThan(0);
        }
      }
    }
    // the damage must be varied enough to exercise both outcomes
    expect(ok, 'some damaged messages still parse').to.be.greaterThan(ITERATIONS / 20);
    expect(failed, 'most damage is refused').to.be.greaterThan(ITERATIONS / 20);
    expect(shells, 'some refusals carry a shell').to.be.greaterThan(0);
  });

  it('messages that parse survive toBuffer → parse with the same routing fields', () => {
    const rnd = prng(0xc0ffee);
    let checked = 0;
    for (let n = 0; n < 4_000; n++) {
      const input = mutate(CORPUS[Math.floor(rnd() * CORPUS.length)]!, rnd);
      const a = parseMessage(input);
      if (!a.ok) continue;
      checked++;
      const out = a.message.toBuffer();
      const b = parseMessage(out);
      if (!b.ok) {
        throw new Error(`re-parse failed (${b.error.reason}) for ${JSON.stringify(input.toString('latin1'))} → ${JSON.stringify(out.toString('latin1'))}`);
      }
      expect(b.message.startLine()).to.equal(a.message.startLine());
      expect(b.message.callId).to.equal(a.message.callId);
      expect(b.message.cseq).to.deep.equal(a.message.cseq);
      expect(b.message.vias.map((v) => v.branch)).to.deep.equal(a.message.vias.map((v) => v.branch));
      expect(b.message.from.tag).to.equal(a.message.from.tag);
      expect(b.message.to.tag).to.equal(a.message.to.tag);
      expect(b.message.body.equals(a.message.body)).to.equal(true);
      expect(b.message.headers.length).to.equal(
        a.message.headers.filter((h) => h.key !== 'content-length').length + 1,
      );
    }
    expect(checked).to.be.greaterThan(100);
  });

  it('the stream framer never throws on damaged streams, and frames only what the parser can read', () => {
    const rnd = prng(0xfeed);
    for (let n = 0; n < 1_500; n++) {
      const parts: Buffer[] = [];
      const count = 1 + Math.floor(rnd() * 4);
      for (let i = 0; i < count; i++) {
        const src = CORPUS[Math.floor(rnd() * CORPUS.length)]!;
        parts.push(rnd() < 0.5 ? mutate(src, rnd) : src);
        if (rnd() < 0.2) parts.push(Buffer.from(rnd() < 0.5 ? '\r\n\r\n' : '\r\n'));
      }
      const stream = Buffer.concat(parts);
      const f = new StreamFramer(rnd() < 0.2 ? 1024 : 65535);
      for (let i = 0; i < stream.length; ) {
        const size = 1 + Math.floor(rnd() * 300);
        const events = f.push(stream.subarray(i, i + size));
        for (const e of events) {
          if (e.kind === 'message') {
            expect(() => parseMessage(e.data)).to.not.throw();
            expect(e.data.length).to.be.at.most(65535);
          } else if (e.kind === 'error') {
            expect(['too-large', 'bad-content-length']).to.include(e.reason);
          }
        }
        i += size;
      }
      expect(f.buffered).to.be.at.most(65535);
    }
  });
});
