import { expect } from 'chai';
import { SipParseError } from '../../src/sip/errors.js';
import { SipRequest, SipResponse } from '../../src/sip/message.js';
import { findHeaderEnd, parseMessage, readHead } from '../../src/sip/parser.js';

/** Joins lines with CRLF and ends the head with a blank line; appends the body. */
function wire(lines: string[], body: string | Buffer = '', eol = '\r\n'): Buffer {
  const head = Buffer.from(lines.join(eol) + eol + eol, 'utf8');
  return Buffer.concat([head, typeof body === 'string' ? Buffer.from(body, 'utf8') : body]);
}

const BASE_HEADERS = [
  'Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds',
  'Max-Forwards: 70',
  'To: Bob <sip:bob@biloxi.example.com>',
  'From: Alice <sip:alice@atlanta.example.com>;tag=1928301774',
  'Call-ID: a84b4c76e66710@pc33.atlanta.example.com',
  'CSeq: 314159 INVITE',
  'Contact: <sip:alice@pc33.atlanta.example.com>',
];

function invite(extra: string[] = [], body = ''): Buffer {
  const lines = ['INVITE sip:bob@biloxi.example.com SIP/2.0', ...BASE_HEADERS, ...extra];
  if (body.length > 0) lines.push(`Content-Length: ${Buffer.byteLength(body)}`);
  return wire(lines, body);
}

function okRequest(buf: Buffer): SipRequest {
  const r = parseMessage(buf);
  if (!r.ok) throw new Error(`expected ok, got ${r.error.reason}`);
  expect(r.message).to.be.instanceOf(SipRequest);
  return r.message as SipRequest;
}

function okResponse(buf: Buffer): SipResponse {
  const r = parseMessage(buf);
  if (!r.ok) throw new Error(`expected ok, got ${r.error.reason}`);
  expect(r.message).to.be.instanceOf(SipResponse);
  return r.message as SipResponse;
}

function failed(buf: Buffer): Extract<ReturnType<typeof parseMessage>, { ok: false }> {
  const r = parseMessage(buf);
  if (r.ok) throw new Error('expected a parse failure');
  expect(r.error).to.be.instanceOf(SipParseError);
  return r;
}

describe('sip/parser', () => {
  describe('requests', () => {
    it('parses a basic INVITE with its routing headers', () => {
      const m = okRequest(invite());
      expect(m.method).to.equal('INVITE');
      expect(m.uriText).to.equal('sip:bob@biloxi.example.com');
      expect(m.uri.scheme).to.equal('sip');
      expect(m.uri.user).to.equal('bob');
      expect(m.uri.host).to.equal('biloxi.example.com');
      expect(m.vias).to.have.length(1);
      expect(m.topVia.transport).to.equal('UDP');
      expect(m.topVia.host).to.equal('pc33.atlanta.example.com');
      expect(m.topVia.branch).to.equal('z9hG4bK776asdhds');
      expect(m.maxForwards).to.equal(70);
      expect(m.to.displayName).to.equal('Bob');
      expect(m.to.tag).to.equal(undefined);
      expect(m.from.displayName).to.equal('Alice');
      expect(m.from.tag).to.equal('1928301774');
      expect(m.from.uri.user).to.equal('alice');
      expect(m.callId).to.equal('a84b4c76e66710@pc33.atlanta.example.com');
      expect(m.cseq).to.deep.equal({ seq: 314159, method: 'INVITE' });
      expect(m.contacts).to.have.length(1);
      expect(m.contacts[0]!.uri.host).to.equal('pc33.atlanta.example.com');
      expect(m.body.length).to.equal(0);
    });

    it('parses a request with a body and Content-Type', () => {
      const body = '<?xml version="1.0"?><presence/>';
      const m = okRequest(
        wire(
          [
            'PUBLISH sip:alice@example.com SIP/2.0',
            'Via: SIP/2.0/TCP 192.0.2.1:5060;branch=z9hG4bKpub1',
            'To: <sip:alice@example.com>',
            'From: <sip:alice@example.com>;tag=p1',
            'Call-ID: pub1',
            'CSeq: 1 PUBLISH',
            'Event: presence',
            'Expires: 3600',
            'Content-Type: application/pidf+xml',
            `Content-Length: ${body.length}`,
          ],
          body,
        ),
      );
      expect(m.method).to.equal('PUBLISH');
      expect(m.body.toString()).to.equal(body);
      expect(m.contentType!.essence).to.equal('application/pidf+xml');
      expect(m.event!.package).to.equal('presence');
      expect(m.expires).to.equal(3600);
      expect(m.topVia.port).to.equal(5060);
    });

    it('accepts extension methods and lower-case SIP version', () => {
      const lines = [
        'FOOBAR sip:bob@example.com sip/2.0',
        'Via: SIP/2.0/UDP host.example.com;branch=z9hG4bKx',
        'To: <sip:bob@example.com>',
        'From: <sip:a@example.com>;tag=1',
        'Call-ID: x1',
        'CSeq: 7 FOOBAR',
      ];
      const m = okRequest(wire(lines));
      expect(m.method).to.equal('FOOBAR');
      expect(m.cseq.seq).to.equal(7);
    });

    it('parses requests whose Request-URI is sips or tel', () => {
      const sips = okRequest(
        wire([
          'MESSAGE sips:bob@example.com SIP/2.0',
          'Via: SIP/2.0/TLS h.example.com;branch=z9hG4bK1',
          'To: <sips:bob@example.com>',
          'From: <sips:a@example.com>;tag=1',
          'Call-ID: s1',
          'CSeq: 1 MESSAGE',
        ]),
      );
      expect(sips.uri.scheme).to.equal('sips');
      const tel = okRequest(
        wire([
          'MESSAGE tel:+1-201-555-0123 SIP/2.0',
          'Via: SIP/2.0/UDP h.example.com;branch=z9hG4bK1',
          'To: <tel:+1-201-555-0123>',
          'From: <sip:a@example.com>;tag=1',
          'Call-ID: t1',
          'CSeq: 1 MESSAGE',
        ]),
      );
      expect(tel.uri.scheme).to.equal('tel');
      expect(tel.uri.user).to.equal('+12015550123');
    });
  });

  describe('responses', () => {
    const respLines = [
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
    ];

    it('parses a 200 OK with three Vias in order', () => {
      const m = okResponse(wire(respLines));
      expect(m.status).to.equal(200);
      expect(m.reason).to.equal('OK');
      expect(m.vias.map((v) => v.host)).to.deep.equal([
        'server10.biloxi.example.com',
        'bigbox3.site3.atlanta.example.com',
        'pc33.atlanta.example.com',
      ]);
      expect(m.vias[0]!.params.get('received')).to.equal('192.0.2.3');
      expect(m.to.tag).to.equal('a6c85cf');
      expect(m.cseq.method).to.equal('INVITE');
    });

    it('keeps a multi-word reason phrase and allows an empty one', () => {
      const lines = [...respLines];
      lines[0] = 'SIP/2.0 481 Call/Transaction Does Not Exist';
      expect(okResponse(wire(lines)).reason).to.equal('Call/Transaction Does Not Exist');
      lines[0] = 'SIP/2.0 180';
      const m = okResponse(wire(lines));
      expect(m.status).to.equal(180);
      expect(m.reason).to.equal('');
    });

    it('does not check the CSeq method against anything in a response', () => {
      const lines = [...respLines];
      lines[7] = 'CSeq: 2 BYE';
      expect(okResponse(wire(lines)).cseq.method).to.equal('BYE');
    });

    it('refuses a malformed Status-Line without a request shell', () => {
      for (const sl of ['SIP/2.0 20 OK', 'SIP/2.0 2000 OK', 'SIP/2.0  200 OK', 'SIP/2.0 abc OK', 'SIP/20 200 OK']) {
        const lines = [...respLines];
        lines[0] = sl;
        const r = failed(wire(lines));
        expect(r.error.reason, sl).to.equal('Bad Status-Line');
        expect(r.request, sl).to.equal(undefined);
      }
    });

    it('answers an unsupported response version with status 505 and no shell', () => {
      const lines = [...respLines];
      lines[0] = 'SIP/3.0 200 OK';
      const r = failed(wire(lines));
      expect(r.error.status).to.equal(505);
      expect(r.request).to.equal(undefined);
    });

    it('never answers a response with a lower-case SIP version as if it were a request', () => {
      // RFC 3261 §7.1: the SIP-Version string is case-insensitive. Whatever the parser makes
      // of "sip/2.0 200 OK", it must not hand back a request shell: the core would answer
      // a response with a 400.
      for (const sl of ['sip/2.0 200 OK', 'Sip/2.0 180 Ringing']) {
        const lines = [...respLines];
        lines[0] = sl;
        const r = parseMessage(wire(lines));
        expect(r.ok || r.request === undefined, `${sl}: request shell returned for a response`).to.equal(true);
      }
    });

    it('parses a Status-Line whose version is written in lower case', () => {
      const lines = [...respLines];
      lines[0] = 'sip/2.0 200 OK';
      const m = okResponse(wire(lines));
      expect(m.status).to.equal(200);
      expect(m.startLine()).to.equal('SIP/2.0 200 OK');
    });

    it('does not accept a status code it cannot write back (000-099)', () => {
      for (const code of ['000', '023', '099']) {
        const lines = [...respLines];
        lines[0] = `SIP/2.0 ${code} Odd`;
        const r = parseMessage(wire(lines));
        if (!r.ok) continue; // refusing it is fine
        const back = parseMessage(r.message.toBuffer());
        expect(back.ok, `${code}: toBuffer wrote "${r.message.startLine()}", which does not parse`).to.equal(true);
        if (back.ok) expect((back.message as SipResponse).status).to.equal((r.message as SipResponse).status);
      }
    });

    it('refuses status codes outside 100-699 without a shell', () => {
      // RFC 3261 §21: six classes, 1xx to 6xx; 7xx-9xx are no SIP status (RFC 4475 §3.1.2.19).
      for (const code of ['700', '999', '000', '099']) {
        const lines = [...respLines];
        lines[0] = `SIP/2.0 ${code} Odd`;
        const r = failed(wire(lines));
        expect(r.error.reason, code).to.equal('Bad Status-Line');
        expect(r.error.status, code).to.equal(400);
        expect(r.request, code).to.equal(undefined);
      }
      for (const code of [100, 699]) {
        const lines = [...respLines];
        lines[0] = `SIP/2.0 ${code} Edge`;
        expect(okResponse(wire(lines)).status).to.equal(code);
      }
    });

    it('treats a lower-case "sip/" start line with a bad rest as a bad Status-Line, never a request', () => {
      for (const sl of ['sip/2.0 2000 OK', 'sIp/2.0 abc', 'sip/3.0 200 OK']) {
        const lines = [...respLines];
        lines[0] = sl;
        const r = failed(wire(lines));
        expect(r.request, sl).to.equal(undefined);
        expect([400, 505], sl).to.include(r.error.status);
      }
    });

    it('carries no shell for response header errors', () => {
      const lines = [...respLines];
      lines[7] = 'CSeq: banana';
      const r = failed(wire(lines));
      expect(r.error.reason).to.equal('Bad CSeq');
      expect(r.request).to.equal(undefined);
      const short = failed(wire(respLines.filter((l) => !l.startsWith('Content-Length')).concat('Content-Length: 10'), 'abc'));
      expect(short.error.reason).to.equal('Content-Length larger than body');
      expect(short.request).to.equal(undefined);
    });

    it('requires the mandatory headers in responses too', () => {
      for (const name of ['Via', 'To', 'From', 'Call-ID', 'CSeq']) {
        const r = failed(wire(respLines.filter((l) => !l.startsWith(name + ':'))));
        expect(r.error.reason, name).to.match(/^Missing /);
        expect(r.request).to.equal(undefined);
      }
    });
  });

  describe('header names', () => {
    it('understands every compact form', () => {
      const m = okRequest(
        wire(
          [
            'SUBSCRIBE sip:bob@example.com SIP/2.0',
            'v: SIP/2.0/UDP h.example.com;branch=z9hG4bKc1',
            'Max-Forwards: 70',
            't: <sip:bob@example.com>',
            'f: <sip:alice@example.com>;tag=1',
            'i: compact-1',
            'CSeq: 1 SUBSCRIBE',
            'm: <sip:alice@192.0.2.1>',
            'e: gzip',
            'c: application/pidf+xml',
            'k: eventlist',
            's: hello',
            'o: presence;id=7',
            'u: presence, message-summary',
            'r: <sip:carol@example.com>',
            'b: <sip:dave@example.com>',
            'x: 1800',
            'y: abcdef',
            'l: 3',
          ],
          'xyz',
        ),
      );
      expect(m.getHeader('Via')).to.equal('SIP/2.0/UDP h.example.com;branch=z9hG4bKc1');
      expect(m.getHeader('Call-ID')).to.equal('compact-1');
      expect(m.callId).to.equal('compact-1');
      expect(m.to.uri.user).to.equal('bob');
      expect(m.from.tag).to.equal('1');
      expect(m.contacts[0]!.uri.host).to.equal('192.0.2.1');
      expect(m.getHeader('Content-Encoding')).to.equal('gzip');
      expect(m.contentType!.essence).to.equal('application/pidf+xml');
      expect(m.getHeader('Supported')).to.equal('eventlist');
      expect(m.getHeader('Subject')).to.equal('hello');
      expect(m.event).to.deep.include({ package: 'presence', id: '7' });
      expect(m.getHeaders('Allow-Events')).to.deep.equal(['presence', 'message-summary']);
      expect(m.getHeader('Refer-To')).to.equal('<sip:carol@example.com>');
      expect(m.getHeader('Referred-By')).to.equal('<sip:dave@example.com>');
      expect(m.getHeader('Session-Expires')).to.equal('1800');
      expect(m.getHeader('Identity')).to.equal('abcdef');
      expect(m.getHeader('Content-Length')).to.equal('3');
      expect(m.body.toString()).to.equal('xyz');
      // the compact and the long names find the same header
      expect(m.getHeader('i')).to.equal(m.getHeader('call-id'));
      expect(m.headers.find((h) => h.key === 'call-id')!.name).to.equal('i');
    });

    it('treats header names case-insensitively', () => {
      const m = okRequest(
        wire([
          'OPTIONS sip:bob@example.com SIP/2.0',
          'VIA: SIP/2.0/UDP h.example.com;branch=z9hG4bKci',
          'tO: <sip:bob@example.com>',
          'FROM: <sip:alice@example.com>;tag=1',
          'cAlL-iD: case-1',
          'cseq: 1 OPTIONS',
          'MAX-FORWARDS: 10',
          'X-Custom-Thing: yes',
        ]),
      );
      expect(m.callId).to.equal('case-1');
      expect(m.maxForwards).to.equal(10);
      expect(m.getHeader('x-custom-thing')).to.equal('yes');
      expect(m.getHeader('X-CUSTOM-THING')).to.equal('yes');
      expect(m.hasHeader('call-id')).to.equal(true);
      expect(m.countHeader('VIA')).to.equal(1);
    });

    it('allows whitespace before and after the colon', () => {
      const m = okRequest(
        wire([
          'OPTIONS sip:bob@example.com SIP/2.0',
          'Via   :    SIP/2.0/UDP h.example.com;branch=z9hG4bKws',
          'To\t: <sip:bob@example.com>',
          'From:<sip:alice@example.com>;tag=1',
          'Call-ID:ws-1   ',
          'CSeq: 1 OPTIONS',
        ]),
      );
      expect(m.callId).to.equal('ws-1');
      expect(m.topVia.branch).to.equal('z9hG4bKws');
    });

    it('collects repeated headers and comma lists alike', () => {
      const m = okRequest(
        invite([
          'Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>',
          'Route: <sip:p3.example.com;lr>',
          'Allow: INVITE, ACK',
          'allow: BYE,CANCEL',
          'Supported: path',
          'Subject: one, two',
          'Subject: three',
        ]),
      );
      expect(m.getHeaders('route')).to.deep.equal([
        '<sip:p1.example.com;lr>',
        '<sip:p2.example.com;lr>',
        '<sip:p3.example.com;lr>',
      ]);
      expect(m.routes.map((r) => r.uri.host)).to.deep.equal(['p1.example.com', 'p2.example.com', 'p3.example.com']);
      expect(m.routes[0]!.uri.params.has('lr')).to.equal(true);
      expect(m.getHeaders('Allow')).to.deep.equal(['INVITE', 'ACK', 'BYE', 'CANCEL']);
      expect(m.getHeader('Allow')).to.equal('INVITE, ACK');
      // Subject is not a list header: commas stay inside the value
      expect(m.getHeaders('Subject')).to.deep.equal(['one, two', 'three']);
      expect(m.getHeaders('X-None')).to.deep.equal([]);
    });

    it('splits Via and Contact lists at commas outside quotes and brackets', () => {
      const m = okRequest(
        wire([
          'REGISTER sip:example.com SIP/2.0',
          'Via: SIP/2.0/UDP a.example.com;branch=z9hG4bK1, SIP/2.0/TCP b.example.com:5070;branch=z9hG4bK2',
          'Via: SIP/2.0/UDP c.example.com;branch=z9hG4bK3',
          'To: <sip:alice@example.com>',
          'From: <sip:alice@example.com>;tag=r1',
          'Call-ID: reg-1',
          'CSeq: 1 REGISTER',
          'Contact: "Alice, at work" <sip:alice@192.0.2.1;transport=tcp>;expires=60, <sip:alice@192.0.2.2>;q=0.5',
        ]),
      );
      expect(m.vias.map((v) => v.branch)).to.deep.equal(['z9hG4bK1', 'z9hG4bK2', 'z9hG4bK3']);
      expect(m.vias[1]!.transport).to.equal('TCP');
      expect(m.vias[1]!.port).to.equal(5070);
      expect(m.contacts).to.have.length(2);
      expect(m.contacts[0]!.displayName).to.equal('Alice, at work');
      expect(m.contacts[0]!.params.get('expires')).to.equal('60');
      expect(m.contacts[0]!.uri.params.get('transport')).to.equal('tcp');
      expect(m.contacts[1]!.params.get('q')).to.equal('0.5');
    });

    it('unfolds continuation lines (space and tab)', () => {
      const m = okRequest(
        wire([
          'OPTIONS sip:bob@example.com SIP/2.0',
          'Via: SIP/2.0/UDP h.example.com',
          '   ;branch=z9hG4bKfold',
          'To:',
          '\t<sip:bob@example.com>',
          'From: <sip:alice@example.com>',
          ' ;tag=folded',
          'Call-ID: fold-1',
          'CSeq: 1',
          '  OPTIONS',
          'Subject: I know you\'re there,',
          '         pick up the phone',
          '\t and talk to me!',
        ]),
      );
      expect(m.topVia.branch).to.equal('z9hG4bKfold');
      expect(m.to.uri.user).to.equal('bob');
      expect(m.from.tag).to.equal('folded');
      expect(m.cseq).to.deep.equal({ seq: 1, method: 'OPTIONS' });
      expect(m.getHeader('Subject')).to.equal("I know you're there, pick up the phone and talk to me!");
    });

    it('strips only SP and HTAB around values, keeping a leading BOM or NBSP (RFC 4475 §3.1.1.2)', () => {
      const m = okRequest(invite(['X-Bom: \ufeff\u5927\u505c\u96fb', 'X-Nbsp:\t\u00a0x\u00a0 ', 'X-Folded: a', ' \u00a0b\t']));
      expect(m.getHeader('X-Bom')).to.equal('\ufeff\u5927\u505c\u96fb');
      expect(m.getHeader('X-Nbsp')).to.equal('\u00a0x\u00a0');
      expect(m.getHeader('X-Folded')).to.equal('a \u00a0b');
    });

    it('does not take U+00A0 for white space between a header name and its colon', () => {
      const r = failed(invite(['X-Odd\u00a0: v']));
      expect(r.error.reason).to.equal('Bad header line');
    });

    it('readHead splits the head without interpreting it', () => {
      const buf = wire(['sip/2.0 200 OK', 'CSeq: abc OPTIONS', 'X-A: a', ' b', 'broken line', 'Content-Length: 2'], 'hi');
      const head = readHead(buf);
      expect(head.startLine).to.equal('sip/2.0 200 OK');
      expect(head.headers.map((h) => [h.key, h.value])).to.deep.equal([['cseq', 'abc OPTIONS'], ['x-a', 'a b'], ['content-length', '2']]);
      expect(head.headerError?.reason).to.equal('Bad header line');
      expect(buf.subarray(head.bodyStart).toString()).to.equal('hi');
    });

    it('refuses a header line without a colon or with a bad name, keeping a shell', () => {
      for (const bad of ['NoColonHere', ': empty-name', 'Bad Name: x', 'Bad@Name: x']) {
        const r = failed(invite([bad]));
        expect(r.error.reason, bad).to.equal('Bad header line');
        expect(r.request, bad).to.be.instanceOf(SipRequest);
        expect(r.request!.callId).to.equal('a84b4c76e66710@pc33.atlanta.example.com');
      }
    });
  });

  describe('display names', () => {
    it('decodes quoted display names with escapes', () => {
      const m = okRequest(
        wire([
          'MESSAGE sip:bob@example.com SIP/2.0',
          'Via: SIP/2.0/UDP h.example.com;branch=z9hG4bKdn',
          'To: "Bob \\"the\\" Builder \\\\ jr" <sip:bob@example.com>',
          'From: "<sip:fake@x>; tag=no" <sip:alice@example.com>;tag=real',
          'Call-ID: dn-1',
          'CSeq: 1 MESSAGE',
        ]),
      );
      expect(m.to.displayName).to.equal('Bob "the" Builder \\ jr');
      expect(m.from.displayName).to.equal('<sip:fake@x>; tag=no');
      expect(m.from.uri.user).to.equal('alice');
      expect(m.from.tag).to.equal('real');
    });

    it('keeps an empty quoted display name and UTF-8 text', () => {
      const m = okRequest(
        wire([
          'MESSAGE sip:bob@example.com SIP/2.0',
          'Via: SIP/2.0/UDP h.example.com;branch=z9hG4bKdn2',
          'To: "" <sip:bob@example.com>',
          'From: "Zoë 日本" <sip:alice@example.com>;tag=1',
          'Call-ID: dn-2',
          'CSeq: 1 MESSAGE',
        ]),
      );
      expect(m.to.displayName).to.equal('');
      expect(m.from.displayName).to.equal('Zoë 日本');
    });
  });

  describe('Via', () => {
    function viaOf(value: string) {
      return okRequest(
        wire([
          'OPTIONS sip:bob@example.com SIP/2.0',
          `Via: ${value}`,
          'To: <sip:bob@example.com>',
          'From: <sip:alice@example.com>;tag=1',
          'Call-ID: via-1',
          'CSeq: 1 OPTIONS',
        ]),
      ).topVia;
    }

    it('reads IPv6 sent-by with and without port, and IPv6 received', () => {
      const v = viaOf('SIP/2.0/UDP [2001:db8::9:1]:5070;branch=z9hG4bKv6;received=[2001:db8::9:255]');
      expect(v.host).to.equal('[2001:db8::9:1]');
      expect(v.port).to.equal(5070);
      expect(v.params.get('received')).to.equal('[2001:db8::9:255]');
      const w = viaOf('SIP/2.0/TCP [::1];branch=z9hG4bKv6b');
      expect(w.host).to.equal('[::1]');
      expect(w.port).to.equal(undefined);
    });

    it('reads branch, received, maddr, ttl and rport (empty and valued)', () => {
      const v = viaOf('SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKabc;received=198.51.100.7;rport;maddr=224.2.0.1;ttl=16');
      expect(v.branch).to.equal('z9hG4bKabc');
      expect(v.params.get('received')).to.equal('198.51.100.7');
      expect(v.params.has('rport')).to.equal(true);
      expect(v.params.get('rport')).to.equal(null);
      expect(v.params.get('maddr')).to.equal('224.2.0.1');
      expect(v.params.get('ttl')).to.equal('16');
      const w = viaOf('SIP/2.0/UDP 192.0.2.1;rport=40123;branch=z9hG4bKdef');
      expect(w.params.get('rport')).to.equal('40123');
      expect(w.branch).to.equal('z9hG4bKdef');
    });

    it('normalizes protocol and transport to upper case and allows LWS in sent-protocol', () => {
      const v = viaOf('sip / 2.0 / tcp Host.Example.COM : 5080 ;BRANCH=z9hG4bKMiXeD');
      expect(v.protocol).to.equal('SIP');
      expect(v.version).to.equal('2.0');
      expect(v.transport).to.equal('TCP');
      expect(v.host).to.equal('host.example.com');
      expect(v.port).to.equal(5080);
      expect(v.branch).to.equal('z9hG4bKMiXeD');
    });

    it('refuses bad Via parameters, without a shell', () => {
      for (const bad of [
        'SIP/2.0/UDP h.example.com;ttl=256',
        'SIP/2.0/UDP h.example.com;ttl',
        'SIP/2.0/UDP h.example.com;rport=65536',
        'SIP/2.0/UDP h.example.com;rport=abc',
        'SIP/2.0/UDP h.example.com;branch',
        'SIP/2.0/UDP h.example.com:99999',
        'SIP/2.0/UDP',
        'SIP/2.0 h.example.com',
        'SIP/2.0/UDP [2001:db8::1:5060',
      ]) {
        const r = failed(
          wire([
            'OPTIONS sip:bob@example.com SIP/2.0',
            `Via: ${bad}`,
            'To: <sip:bob@example.com>',
            'From: <sip:alice@example.com>;tag=1',
            'Call-ID: via-1',
            'CSeq: 1 OPTIONS',
          ]),
        );
        expect(r.error.reason, bad).to.match(/Via/);
        expect(r.request, bad).to.equal(undefined);
      }
    });
  });

  describe('CSeq', () => {
    function withCSeq(value: string, method = 'OPTIONS') {
      return parseMessage(
        wire([
          `${method} sip:bob@example.com SIP/2.0`,
          'Via: SIP/2.0/UDP h.example.com;branch=z9hG4bKcs',
          'To: <sip:bob@example.com>',
          'From: <sip:alice@example.com>;tag=1',
          'Call-ID: cs-1',
          `CSeq: ${value}`,
        ]),
      );
    }

    it('accepts 0 and 2**31 - 1', () => {
      for (const seq of [0, 2 ** 31 - 1]) {
        const r = withCSeq(`${seq} OPTIONS`);
        expect(r.ok).to.equal(true);
        if (r.ok) expect(r.message.cseq.seq).to.equal(seq);
      }
    });

    it('refuses 2**31 and longer numbers', () => {
      for (const v of [`${2 ** 31} OPTIONS`, '99999999999 OPTIONS', '4294967296 OPTIONS']) {
        const r = withCSeq(v);
        expect(r.ok, v).to.equal(false);
        if (!r.ok) {
          expect(r.error.reason).to.equal('Bad CSeq');
          expect(r.request, 'Via is readable, so a shell comes back').to.be.instanceOf(SipRequest);
        }
      }
    });

    it('refuses a missing method, a negative number and junk', () => {
      for (const v of ['1', 'OPTIONS', '-1 OPTIONS', '1 OPTIONS extra', '1.5 OPTIONS', '']) {
        const r = withCSeq(v);
        expect(r.ok, v).to.equal(false);
      }
    });

    it('refuses a CSeq method that differs from the request method', () => {
      const r = withCSeq('1 REGISTER', 'OPTIONS');
      expect(r.ok).to.equal(false);
      if (!r.ok) {
        expect(r.error.reason).to.equal('CSeq method mismatch');
        expect(r.request!.method).to.equal('OPTIONS');
      }
      // method names are case-sensitive (RFC 3261 §7.1)
      expect(withCSeq('1 options', 'OPTIONS').ok).to.equal(false);
    });
  });

  describe('Content-Length and body', () => {
    it('ignores bytes past Content-Length', () => {
      const buf = wire(
        [
          'MESSAGE sip:bob@example.com SIP/2.0',
          'Via: SIP/2.0/UDP h.example.com;branch=z9hG4bKcl',
          'To: <sip:bob@example.com>',
          'From: <sip:alice@example.com>;tag=1',
          'Call-ID: cl-1',
          'CSeq: 1 MESSAGE',
          'Content-Type: text/plain',
          'Content-Length: 5',
        ],
        'hello world, more than five bytes',
      );
      expect(okRequest(buf).body.toString()).to.equal('hello');
    });

    it('refuses Content-Length larger than the body, with a shell for requests', () => {
      const r = failed(
        wire(
          [
            'MESSAGE sip:bob@example.com SIP/2.0',
            'Via: SIP/2.0/UDP h.example.com;branch=z9hG4bKcl',
            'To: <sip:bob@example.com>',
            'From: <sip:alice@example.com>;tag=1',
            'Call-ID: cl-2',
            'CSeq: 1 MESSAGE',
            'Content-Length: 50',
          ],
          'short',
        ),
      );
      expect(r.error.reason).to.equal('Content-Length larger than body');
      expect(r.error.status).to.equal(400);
      expect(r.request).to.be.instanceOf(SipRequest);
      expect(r.request!.callId).to.equal('cl-2');
    });

    it('takes the whole rest as body when Content-Length is absent', () => {
      const m = okRequest(
        wire(
          [
            'MESSAGE sip:bob@example.com SIP/2.0',
            'Via: SIP/2.0/UDP h.example.com;branch=z9hG4bKnl',
            'To: <sip:bob@example.com>',
            'From: <sip:alice@example.com>;tag=1',
            'Call-ID: cl-3',
            'CSeq: 1 MESSAGE',
          ],
          'all of this',
        ),
      );
      expect(m.body.toString()).to.equal('all of this');
    });

    it('refuses bad or conflicting Content-Length values and accepts equal repeats', () => {
      const base = [
        'MESSAGE sip:bob@example.com SIP/2.0',
        'Via: SIP/2.0/UDP h.example.com;branch=z9hG4bKbl',
        'To: <sip:bob@example.com>',
        'From: <sip:alice@example.com>;tag=1',
        'Call-ID: cl-4',
        'CSeq: 1 MESSAGE',
      ];
      for (const cl of [['Content-Length: abc'], ['Content-Length: -1'], ['Content-Length: '], ['Content-Length: 2', 'l: 3'], ['Content-Length: 3', 'l: 3', 'Content-Length: 4'], ['Content-Length: 12345678901']]) {
        const r = failed(wire([...base, ...cl], 'abc'));
        expect(r.error.reason, cl.join('|')).to.equal('Bad Content-Length');
      }
      const same = okRequest(wire([...base, 'Content-Length: 3', 'l: 3', 'Content-Length:  3 '], 'abc'));
      expect(same.body.toString()).to.equal('abc');
    });

    it('keeps binary body bytes exactly, including CRLF CRLF and NULs', () => {
      const body = Buffer.alloc(256);
      for (let i = 0; i < 256; i++) body[i] = i;
      const withBreaks = Buffer.concat([body, Buffer.from('\r\n\r\n\n\n', 'latin1'), body]);
      const m = okRequest(
        wire(
          [
            'MESSAGE sip:bob@example.com SIP/2.0',
            'Via: SIP/2.0/UDP h.example.com;branch=z9hG4bKbin',
            'To: <sip:bob@example.com>',
            'From: <sip:alice@example.com>;tag=1',
            'Call-ID: bin-1',
            'CSeq: 1 MESSAGE',
            'Content-Type: application/octet-stream',
            `Content-Length: ${withBreaks.length}`,
          ],
          withBreaks,
        ),
      );
      expect(m.body.equals(withBreaks)).to.equal(true);
    });

    it('reads Content-Length 0 with trailing garbage as an empty body', () => {
      const buf = Buffer.concat([invite(['Content-Length: 0']), Buffer.from('garbage')]);
      expect(okRequest(buf).body.length).to.equal(0);
    });
  });

  describe('line endings', () => {
    it('ignores CRLFs before the start line', () => {
      const buf = Buffer.concat([Buffer.from('\r\n\r\n\n\r\n'), invite()]);
      expect(okRequest(buf).method).to.equal('INVITE');
    });

    it('accepts LF-only line endings', () => {
      const buf = wire(['INVITE sip:bob@biloxi.example.com SIP/2.0', ...BASE_HEADERS, 'Content-Length: 4'], 'body', '\n');
      const m = okRequest(buf);
      expect(m.callId).to.equal('a84b4c76e66710@pc33.atlanta.example.com');
      expect(m.body.toString()).to.equal('body');
    });

    it('accepts LF-only line endings with folding', () => {
      const buf = wire(
        ['OPTIONS sip:bob@example.com SIP/2.0', 'Via: SIP/2.0/UDP h.example.com', ' ;branch=z9hG4bKlf', 'To: <sip:bob@example.com>', 'From: <sip:a@example.com>;tag=1', 'Call-ID: lf-1', 'CSeq: 2 OPTIONS'],
        '',
        '\n',
      );
      expect(okRequest(buf).topVia.branch).to.equal('z9hG4bKlf');
    });

    it('parses a message with no blank line at all (no body)', () => {
      const buf = Buffer.from(['OPTIONS sip:bob@example.com SIP/2.0', 'Via: SIP/2.0/UDP h.example.com;branch=z9hG4bKnb', 'To: <sip:bob@example.com>', 'From: <sip:a@example.com>;tag=1', 'Call-ID: nb-1', 'CSeq: 2 OPTIONS'].join('\r\n'));
      const m = okRequest(buf);
      expect(m.callId).to.equal('nb-1');
      expect(m.body.length).to.equal(0);
    });

    it('finds the end of headers for CRLF and LF-only heads', () => {
      expect(findHeaderEnd(Buffer.from('A\r\nB\r\n\r\nbody'))).to.deep.equal({ headEnd: 4, bodyStart: 8 });
      expect(findHeaderEnd(Buffer.from('A\nB\n\nbody'))).to.deep.equal({ headEnd: 3, bodyStart: 5 });
      expect(findHeaderEnd(Buffer.from('A\r\nB\r\n'))).to.equal(undefined);
      // the earlier terminator wins
      expect(findHeaderEnd(Buffer.from('A\r\n\r\nx\n\n'))!.headEnd).to.equal(1);
      expect(findHeaderEnd(Buffer.from('A\n\nx\r\n\r\n'))!.headEnd).to.equal(1);
    });
  });

  describe('request errors and shells', () => {
    it('refuses bad Request-Lines with a reason and a shell when Via is readable', () => {
      for (const rl of [
        'INVITE  sip:bob@example.com SIP/2.0',
        'INVITE sip:bob@example.com',
        'INVITE sip:bob@example.com SIP/2.0 extra',
        'INV@TE sip:bob@example.com SIP/2.0',
        'INVITE sip:bob@example.com HTTP/1.1',
        'INVITE sip:bob@example.com SIP/2',
        'garbage',
      ]) {
        const buf = wire([rl, ...BASE_HEADERS]);
        const r = failed(buf);
        expect(r.error.reason, rl).to.equal('Bad Request-Line');
        expect(r.error.status, rl).to.equal(400);
        expect(r.request, rl).to.be.instanceOf(SipRequest);
        expect(r.request!.topVia.branch).to.equal('z9hG4bK776asdhds');
        expect(r.request!.callId).to.equal('a84b4c76e66710@pc33.atlanta.example.com');
      }
    });

    it('names a bad method UNKNOWN in the shell', () => {
      const r = failed(wire(['INV@TE sip:bob@example.com SIP/2.0', ...BASE_HEADERS]));
      expect(r.request!.method).to.equal('UNKNOWN');
    });

    it('returns no shell when the Via cannot be read', () => {
      const noVia = BASE_HEADERS.filter((h) => !h.startsWith('Via'));
      expect(failed(wire(['INVITE  sip:bob@example.com SIP/2.0', ...noVia])).request).to.equal(undefined);
      expect(failed(wire(['INVITE  sip:bob@example.com SIP/2.0', 'Via: not a via', ...noVia])).request).to.equal(undefined);
      const r = failed(wire(['INVITE sip:bob@example.com SIP/2.0', ...noVia]));
      expect(r.error.reason).to.equal('Missing Via');
      expect(r.request).to.equal(undefined);
    });

    it('answers an unsupported request version with 505 and a shell', () => {
      const r = failed(wire(['INVITE sip:bob@example.com SIP/3.0', ...BASE_HEADERS]));
      expect(r.error.status).to.equal(505);
      expect(r.error.reason).to.equal('Version Not Supported');
      expect(r.request).to.be.instanceOf(SipRequest);
      expect(r.request!.method).to.equal('INVITE');
    });

    it('refuses multiple Call-ID headers (long and compact forms)', () => {
      const r = failed(invite(['i: another-call-id']));
      expect(r.error.reason).to.match(/^Multiple Call-ID headers$/i);
      expect(r.request).to.be.instanceOf(SipRequest);
      const r2 = failed(invite(['Call-ID: a84b4c76e66710@pc33.atlanta.example.com']));
      expect(r2.error.reason).to.match(/multiple call-id/i);
    });

    it('names the header in its canonical form in a Multiple reason (RFC 4475 §3.3.8)', () => {
      expect(failed(invite(['i: another-call-id'])).error.reason).to.equal('Multiple Call-ID headers');
      expect(failed(invite(['f: <sip:x@example.com>;tag=2'])).error.reason).to.equal('Multiple From headers');
      expect(failed(invite(['max-forwards: 1'])).error.reason).to.equal('Multiple Max-Forwards headers');
      expect(failed(invite(['c: text/plain', 'Content-Type: text/plain'])).error.reason).to.equal('Multiple Content-Type headers');
    });

    it('refuses other repeated single headers', () => {
      expect(failed(invite(['CSeq: 314159 INVITE'])).error.reason).to.equal('Multiple CSeq headers');
      expect(failed(invite(['f: <sip:x@example.com>;tag=2'])).error.reason).to.match(/multiple from/i);
      expect(failed(invite(['To: <sip:x@example.com>'])).error.reason).to.match(/multiple to/i);
      expect(failed(invite(['Max-Forwards: 1'])).error.reason).to.match(/multiple max-forwards/i);
      expect(failed(invite(['Expires: 1', 'Expires: 2'])).error.reason).to.match(/multiple expires/i);
      expect(failed(invite(['Event: a', 'o: b'])).error.reason).to.match(/multiple event/i);
    });

    it('refuses missing mandatory request headers with a Missing reason', () => {
      for (const name of ['To', 'From', 'Call-ID', 'CSeq']) {
        const r = failed(wire(['INVITE sip:bob@biloxi.example.com SIP/2.0', ...BASE_HEADERS.filter((h) => !h.startsWith(name + ':'))]));
        expect(r.error.reason, name).to.equal(`Missing ${name}`);
        expect(r.request, name).to.be.instanceOf(SipRequest);
      }
    });

    it('refuses a Request-URI in <> with 400, not 416, keeping a shell (RFC 4475 §3.1.2.7)', () => {
      const r = failed(wire(['INVITE <sip:bob@biloxi.example.com> SIP/2.0', ...BASE_HEADERS]));
      expect(r.error.status).to.equal(400);
      expect(r.error.reason).to.equal('Bad URI');
      expect(r.request).to.be.instanceOf(SipRequest);
    });

    it('accepts From, To and Contact of any absoluteURI scheme; 416 stays for the Request-URI', () => {
      // RFC 4475 §3.3.4: syntactically valid, so the parser must not fail; refusing
      // them is the element's choice.
      const h = BASE_HEADERS.map((x) =>
        x.startsWith('To:') ? 'To: isbn:2983792873' : x.startsWith('From:') ? 'From: <http://www.example.com>;tag=3234233' : x.startsWith('Contact:') ? 'Contact: <name:John_Smith>' : x);
      const m = okRequest(wire(['INVITE sip:bob@biloxi.example.com SIP/2.0', ...h]));
      expect(m.to.uri.scheme).to.equal('isbn');
      expect(m.from.uri.scheme).to.equal('http');
      expect(m.from.tag).to.equal('3234233');
      expect(m.contacts[0]!.uri.scheme).to.equal('name');
      const r = failed(wire(['INVITE isbn:2983792873 SIP/2.0', ...h]));
      expect(r.error.status).to.equal(416);
    });

    it('refuses a bad Request-URI, an unknown scheme with 416', () => {
      const bad = failed(wire(['INVITE sip:bob@exa_mple.com SIP/2.0', ...BASE_HEADERS]));
      expect(bad.error.reason).to.match(/URI/);
      const scheme = failed(wire(['INVITE http://example.com/ SIP/2.0', ...BASE_HEADERS]));
      expect(scheme.error.status).to.equal(416);
      expect(scheme.request).to.be.instanceOf(SipRequest);
    });

    it('refuses bad Max-Forwards, Call-ID, From and To', () => {
      const replace = (prefix: string, line: string) => {
        const h = BASE_HEADERS.map((x) => (x.startsWith(prefix) ? line : x));
        return failed(wire(['INVITE sip:bob@biloxi.example.com SIP/2.0', ...h]));
      };
      expect(replace('Max-Forwards', 'Max-Forwards: seventy').error.reason).to.equal('Bad Max-Forwards');
      expect(replace('Call-ID', 'Call-ID: has space').error.reason).to.equal('Bad Call-ID');
      expect(replace('Call-ID', 'Call-ID:   ').error.reason).to.equal('Bad Call-ID');
      expect(replace('From', 'From: <sip:alice@atlanta.example.com').error.reason).to.match(/^Bad From/);
      expect(replace('To', 'To: Bob sip:bob@biloxi.example.com>').error.reason).to.match(/^Bad To/);
    });

    it('never throws on empty or trivial input', () => {
      for (const s of ['', '\r\n', '\r\n\r\n', 'SIP/2.0', ' ', '\0\0\0', 'SIP/2.0 200 OK\r\n\r\n']) {
        const r = parseMessage(Buffer.from(s, 'latin1'));
        expect(r.ok, JSON.stringify(s)).to.equal(false);
      }
    });
  });

  describe('serialization round-trip', () => {
    function fields(m: SipRequest | SipResponse) {
      return {
        start: m.startLine(),
        vias: m.vias.map((v) => ({ host: v.host, port: v.port, transport: v.transport, branch: v.branch, params: [...v.params] })),
        callId: m.callId,
        cseq: m.cseq,
        from: { dn: m.from.displayName, uri: m.from.uri.raw, tag: m.from.tag },
        to: { dn: m.to.displayName, uri: m.to.uri.raw, tag: m.to.tag },
        contacts: m.contacts.map((c) => [c.displayName, c.uri.raw, [...c.params]]),
        expires: m.expires,
        event: m.event && { package: m.event.package, id: m.event.id },
        contentType: m.contentType?.essence,
        headers: m.headers.filter((h) => h.key !== 'content-length').map((h) => [h.key, h.value]),
        body: m.body.toString('base64'),
      };
    }

    const samples: Array<[string, Buffer]> = [
      ['INVITE with folding, compact forms and a body', wire(
        [
          'INVITE sip:bob@biloxi.example.com;transport=tcp SIP/2.0',
          'v: SIP/2.0/TCP [2001:db8::1]:5070;branch=z9hG4bK1;rport',
          'Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK2;received=192.0.2.9',
          'Max-Forwards: 70',
          't: "Bob \\"B\\"" <sip:bob@biloxi.example.com>',
          'f: Alice <sip:alice@atlanta.example.com>',
          '  ;tag=abc',
          'i: rt-1@host',
          'CSeq: 9 INVITE',
          'm: <sip:alice@[2001:db8::1]:5070>;expires=30',
          'c: application/sdp',
          'X-Extra: a, b',
          'l: 11',
        ],
        'v=0\r\no=x\r\nTRAILING-IGNORED',
      )],
      ['response with three Vias', wire([
        'SIP/2.0 202 Accepted',
        'Via: SIP/2.0/UDP a.example.com;branch=z9hG4bKa, SIP/2.0/UDP b.example.com;branch=z9hG4bKb',
        'Via: SIP/2.0/UDP c.example.com;branch=z9hG4bKc',
        'To: <sip:bob@example.com>;tag=t',
        'From: <sip:alice@example.com>;tag=f',
        'Call-ID: rt-2',
        'CSeq: 3 SUBSCRIBE',
        'Expires: 600',
        'Event: presence;id=1',
      ])],
      ['LF-only MESSAGE with leading CRLF', Buffer.concat([Buffer.from('\r\n'), wire([
        'MESSAGE sip:bob@example.com SIP/2.0',
        'Via: SIP/2.0/UDP h.example.com;branch=z9hG4bKlf',
        'To: <sip:bob@example.com>',
        'From: <sip:alice@example.com>;tag=1',
        'Call-ID: rt-3',
        'CSeq: 4 MESSAGE',
        'Content-Type: text/plain;charset=utf-8',
      ], 'héllo\n\nworld', '\n')])],
    ];

    for (const [name, buf] of samples) {
      it(`round-trips: ${name}`, () => {
        const a = parseMessage(buf);
        if (!a.ok) throw new Error(a.error.reason);
        const out = a.message.toBuffer();
        const b = parseMessage(out);
        if (!b.ok) throw new Error(b.error.reason);
        expect(fields(b.message)).to.deep.equal(fields(a.message));
        expect(b.message.getHeader('Content-Length')).to.equal(String(a.message.body.length));
        expect(b.message.countHeader('Content-Length')).to.equal(1);
        // a second round gives the same bytes
        expect(b.message.toBuffer().equals(out)).to.equal(true);
      });
    }

    it('recomputes Content-Length from the body', () => {
      const a = parseMessage(
        wire(
          [
            'MESSAGE sip:bob@example.com SIP/2.0',
            'Via: SIP/2.0/UDP h.example.com;branch=z9hG4bKre',
            'To: <sip:bob@example.com>',
            'From: <sip:alice@example.com>;tag=1',
            'Call-ID: rt-4',
            'CSeq: 4 MESSAGE',
            'Content-Length: 2',
          ],
          'hi there',
        ),
      );
      if (!a.ok) throw new Error(a.error.reason);
      a.message.body = Buffer.from('a longer body');
      const text = a.message.toString();
      expect(text).to.match(/\r\nContent-Length: 13\r\n\r\na longer body$/);
      expect(text.match(/Content-Length/g)).to.have.length(1);
      expect(text.startsWith('MESSAGE sip:bob@example.com SIP/2.0\r\n')).to.equal(true);
    });
  });
});
