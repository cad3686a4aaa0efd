import { expect } from 'chai';
import { SipParseError } from '../../src/sip/errors.js';
import { isRequest, SipRequest, SipResponse, type HeaderField } from '../../src/sip/message.js';
import { parseMessage } from '../../src/sip/parser.js';

function request(lines: string[], body = ''): SipRequest {
  const r = parseMessage(Buffer.from(lines.join('\r\n') + '\r\n\r\n' + body));
  if (!r.ok) throw new Error(r.error.reason);
  return r.message as SipRequest;
}

function register(extra: string[] = []): SipRequest {
  return request([
    'REGISTER sip:example.com SIP/2.0',
    'Via: SIP/2.0/UDP a.example.com;branch=z9hG4bKa, SIP/2.0/UDP b.example.com;branch=z9hG4bKb',
    'Max-Forwards: 70',
    'To: <sip:alice@example.com>',
    'From: <sip:alice@example.com>;tag=456',
    'Call-ID: msg-1',
    'CSeq: 1 REGISTER',
    'Via: SIP/2.0/UDP c.example.com;branch=z9hG4bKc',
    'Expires: 60',
    ...extra,
  ]);
}

function throwsParse(fn: () => unknown, reason?: RegExp): void {
  try {
    fn();
  } catch (e) {
    expect(e).to.be.instanceOf(SipParseError);
    if (reason) expect((e as SipParseError).reason).to.match(reason);
    return;
  }
  throw new Error('expected SipParseError');
}

describe('sip/message', () => {
  describe('header access', () => {
    it('getHeader returns the first value; getHeaders splits list headers', () => {
      const m = register();
      expect(m.getHeader('via')).to.equal('SIP/2.0/UDP a.example.com;branch=z9hG4bKa, SIP/2.0/UDP b.example.com;branch=z9hG4bKb');
      expect(m.getHeaders('v')).to.have.length(3);
      expect(m.countHeader('Via')).to.equal(2);
      expect(m.hasHeader('Route')).to.equal(false);
      expect(m.getHeader('Route')).to.equal(undefined);
    });

    it('builds a request from scratch, writing canonical names', () => {
      const m = new SipRequest('OPTIONS', 'sip:bob@example.com');
      m.addHeader('via', 'SIP/2.0/UDP h.example.com;branch=z9hG4bK1')
        .addHeader('CALL-ID', 'scratch-1')
        .addHeader('cseq', '1 OPTIONS')
        .addHeader('f', '<sip:a@example.com>;tag=1')
        .addHeader('t', '<sip:bob@example.com>')
        .addHeader('max-forwards', 70)
        .addHeader('X-Thing', 'yes');
      expect(m.headers.map((h) => h.name)).to.deep.equal(['Via', 'Call-ID', 'CSeq', 'From', 'To', 'Max-Forwards', 'X-Thing']);
      expect(m.headers.map((h) => h.key)).to.deep.equal(['via', 'call-id', 'cseq', 'from', 'to', 'max-forwards', 'x-thing']);
      expect(m.maxForwards).to.equal(70);
      const text = m.toString();
      expect(text).to.equal(
        'OPTIONS sip:bob@example.com SIP/2.0\r\n' +
          'Via: SIP/2.0/UDP h.example.com;branch=z9hG4bK1\r\n' +
          'Call-ID: scratch-1\r\n' +
          'CSeq: 1 OPTIONS\r\n' +
          'From: <sip:a@example.com>;tag=1\r\n' +
          'To: <sip:bob@example.com>\r\n' +
          'Max-Forwards: 70\r\n' +
          'X-Thing: yes\r\n' +
          'Content-Length: 0\r\n\r\n',
      );
      const back = parseMessage(m.toBuffer());
      expect(back.ok).to.equal(true);
    });

    it('isRequest tells requests from responses', () => {
      expect(isRequest(new SipRequest('OPTIONS', 'sip:x'))).to.equal(true);
      expect(isRequest(new SipResponse(200, 'OK'))).to.equal(false);
      expect(new SipResponse(404, 'Not Found').startLine()).to.equal('SIP/2.0 404 Not Found');
    });
  });

  describe('setHeader', () => {
    it('replaces every instance with one value at the place of the first', () => {
      const m = register();
      m.setHeader('v', 'SIP/2.0/TCP new.example.com;branch=z9hG4bKnew');
      expect(m.countHeader('via')).to.equal(1);
      expect(m.headers[0]!.key).to.equal('via');
      expect(m.headers[0]!.name).to.equal('Via');
      expect(m.vias.map((v) => v.host)).to.deep.equal(['new.example.com']);
    });

    it('appends a header that was absent and stringifies numbers', () => {
      const m = register();
      m.setHeader('Min-Expires', 120);
      expect(m.headers[m.headers.length - 1]).to.deep.equal({ key: 'min-expires', name: 'Min-Expires', value: '120' });
    });

    it('removes a header when the value is undefined (removeHeader)', () => {
      const m = register();
      m.setHeader('Expires', undefined);
      expect(m.hasHeader('expires')).to.equal(false);
      expect(m.expires).to.equal(undefined);
      m.removeHeader('Via');
      expect(m.hasHeader('via')).to.equal(false);
      throwsParse(() => m.vias, /^Missing Via$/);
    });

    it('invalidates the cached parsed value', () => {
      const m = register();
      expect(m.expires).to.equal(60);
      m.setHeader('Expires', 3600);
      expect(m.expires).to.equal(3600);
      expect(m.callId).to.equal('msg-1');
      m.setHeader('i', 'msg-2');
      expect(m.callId).to.equal('msg-2');
      expect(m.cseq.seq).to.equal(1);
      m.setHeader('CSeq', '2 REGISTER');
      expect(m.cseq.seq).to.equal(2);
      expect(m.to.tag).to.equal(undefined);
      m.setHeader('To', '<sip:alice@example.com>;tag=x');
      expect(m.to.tag).to.equal('x');
      expect(m.from.tag).to.equal('456');
      m.setHeader('f', '<sip:alice@example.com>;tag=y');
      expect(m.from.tag).to.equal('y');
      expect(m.maxForwards).to.equal(70);
      m.setHeader('Max-Forwards', 69);
      expect(m.maxForwards).to.equal(69);
      expect(m.event).to.equal(undefined);
      m.setHeader('o', 'presence');
      expect(m.event!.package).to.equal('presence');
      expect(m.contentType).to.equal(undefined);
      m.setHeader('c', 'text/plain');
      expect(m.contentType!.essence).to.equal('text/plain');
      expect(m.vias).to.have.length(3);
      m.setHeader('Via', 'SIP/2.0/UDP only.example.com');
      expect(m.vias).to.have.length(1);
    });

    it('a setHeader that breaks a header makes the accessor throw', () => {
      const m = register();
      expect(m.expires).to.equal(60);
      m.setHeader('Expires', 'soon');
      throwsParse(() => m.expires, /^Bad Expires$/);
    });
  });

  describe('addHeader and prependHeader', () => {
    it('addHeader appends and invalidates the cache', () => {
      const m = register();
      expect(m.vias).to.have.length(3);
      m.addHeader('Via', 'SIP/2.0/UDP d.example.com;branch=z9hG4bKd');
      expect(m.vias.map((v) => v.host)).to.deep.equal(['a.example.com', 'b.example.com', 'c.example.com', 'd.example.com']);
      expect(m.routes).to.have.length(0);
      m.addHeader('Route', '<sip:p1.example.com;lr>');
      expect(m.routes).to.have.length(1);
      expect(m.recordRoutes).to.have.length(0);
      m.addHeader('Record-Route', '<sip:rr.example.com;lr>');
      expect(m.recordRoutes[0]!.uri.host).to.equal('rr.example.com');
    });

    it('prependHeader puts the new value before every other instance', () => {
      const m = register();
      expect(m.topVia.host).to.equal('a.example.com');
      m.prependHeader('Via', 'SIP/2.0/UDP proxy.example.com;branch=z9hG4bKp');
      expect(m.topVia.host).to.equal('proxy.example.com');
      expect(m.vias.map((v) => v.host)).to.deep.equal(['proxy.example.com', 'a.example.com', 'b.example.com', 'c.example.com']);
      // placed where the first Via was, not at the top of the message
      expect(m.headers.findIndex((h) => h.key === 'via')).to.equal(0);
      const i = m.headers.findIndex((h) => h.key === 'via' && h.value.startsWith('SIP/2.0/UDP proxy'));
      expect(m.headers[i + 1]!.value).to.match(/^SIP\/2\.0\/UDP a\.example\.com/);
    });

    it('prependHeader of an absent header puts it first', () => {
      const m = register();
      m.prependHeader('Route', '<sip:p.example.com;lr>');
      expect(m.headers[0]).to.deep.equal({ key: 'route', name: 'Route', value: '<sip:p.example.com;lr>' });
      m.prependHeader('Route', '<sip:q.example.com;lr>');
      expect(m.routes.map((r) => r.uri.host)).to.deep.equal(['q.example.com', 'p.example.com']);
    });

    it('prependHeader keeps its place in the middle of the message', () => {
      const m = new SipRequest('OPTIONS', 'sip:x@example.com', [
        { key: 'from', name: 'From', value: '<sip:a@example.com>' },
        { key: 'route', name: 'Route', value: '<sip:r1.example.com;lr>' },
        { key: 'to', name: 'To', value: '<sip:x@example.com>' },
      ]);
      m.prependHeader('route', '<sip:r0.example.com;lr>');
      expect(m.headers.map((h) => h.key)).to.deep.equal(['from', 'route', 'route', 'to']);
      expect(m.headers[1]!.value).to.equal('<sip:r0.example.com;lr>');
    });
  });

  describe('removeFirstListValue', () => {
    it('removes the first element of a comma list and then whole lines', () => {
      const m = register();
      expect(m.vias).to.have.length(3);
      m.removeFirstListValue('Via');
      expect(m.vias.map((v) => v.host)).to.deep.equal(['b.example.com', 'c.example.com']);
      expect(m.countHeader('via')).to.equal(2);
      m.removeFirstListValue('v');
      expect(m.vias.map((v) => v.host)).to.deep.equal(['c.example.com']);
      expect(m.countHeader('via')).to.equal(1);
      m.removeFirstListValue('Via');
      expect(m.hasHeader('via')).to.equal(false);
      throwsParse(() => m.vias, /Missing Via/);
      // nothing left: no-op
      m.removeFirstListValue('Via');
      expect(m.hasHeader('via')).to.equal(false);
    });

    it('does not split inside quotes or brackets', () => {
      const m = new SipRequest('OPTIONS', 'sip:x@example.com', [
        { key: 'route', name: 'Route', value: '"a, b" <sip:r1.example.com;lr>, <sip:r2.example.com;lr>,<sip:r3.example.com;lr>' },
      ]);
      expect(m.routes).to.have.length(3);
      m.removeFirstListValue('Route');
      expect(m.getHeader('Route')).to.equal('<sip:r2.example.com;lr>, <sip:r3.example.com;lr>');
      expect(m.routes.map((r) => r.uri.host)).to.deep.equal(['r2.example.com', 'r3.example.com']);
    });
  });

  describe('structured accessors', () => {
    it('reads Contact * as star, and contacts as empty', () => {
      const m = register(['Contact: *']);
      expect(m.contact).to.deep.equal({ star: true });
      expect(m.contacts).to.deep.equal([]);
    });

    it('refuses * mixed with addresses', () => {
      throwsParse(() => register(['Contact: *, <sip:a@example.com>']).contact, /\*/);
      throwsParse(() => register(['Contact: <sip:a@example.com>', 'Contact: *']).contact, /\*/);
    });

    it('returns undefined without Contact and a list of addresses with several', () => {
      expect(register().contact).to.equal(undefined);
      expect(register().contacts).to.deep.equal([]);
      const m = register(['Contact: <sip:a@192.0.2.1>;expires=10', 'm: sip:b@192.0.2.2;q=0.1']);
      const c = m.contact!;
      expect(c.star).to.equal(false);
      if (!c.star) {
        expect(c.addresses.map((a) => a.uri.host)).to.deep.equal(['192.0.2.1', '192.0.2.2']);
        expect(c.addresses[1]!.params.get('q')).to.equal('0.1');
      }
    });

    it('refuses an empty element in a Contact or Via list', () => {
      throwsParse(() => register(['Contact: <sip:a@example.com>,,<sip:b@example.com>']).contact);
      const m = register();
      m.setHeader('Via', 'SIP/2.0/UDP a.example.com;branch=z9hG4bKa,');
      throwsParse(() => m.vias, /Via/);
    });

    it('caches parsed values (same object on each access)', () => {
      const m = register(['Contact: <sip:a@192.0.2.1>']);
      expect(m.vias).to.equal(m.vias);
      expect(m.from).to.equal(m.from);
      expect(m.contact).to.equal(m.contact);
      expect(m.uri).to.equal(m.uri);
    });

    it('setUri re-parses the Request-URI', () => {
      const m = register();
      expect(m.uri.host).to.equal('example.com');
      m.setUri('sip:alice@192.0.2.9:5070');
      expect(m.uri.host).to.equal('192.0.2.9');
      expect(m.uri.port).to.equal(5070);
      expect(m.startLine()).to.equal('REGISTER sip:alice@192.0.2.9:5070 SIP/2.0');
    });

    it('Max-Forwards above 255 is capped; junk refused', () => {
      const m = register();
      m.setHeader('Max-Forwards', '300');
      expect(m.maxForwards).to.equal(255);
      m.setHeader('Max-Forwards', '-1');
      throwsParse(() => m.maxForwards, /Bad Max-Forwards/);
    });

    it('missing single headers throw Missing X', () => {
      const m = new SipRequest('OPTIONS', 'sip:x@example.com');
      throwsParse(() => m.callId, /^Missing Call-ID$/);
      throwsParse(() => m.cseq, /^Missing CSeq$/);
      throwsParse(() => m.from, /^Missing From$/);
      throwsParse(() => m.to, /^Missing To$/);
      throwsParse(() => m.vias, /^Missing Via$/);
      expect(m.expires).to.equal(undefined);
      expect(m.event).to.equal(undefined);
      expect(m.contentType).to.equal(undefined);
      expect(m.maxForwards).to.equal(undefined);
    });
  });

  describe('clone and serialization', () => {
    it('clone copies headers so edits do not leak back', () => {
      const m = register();
      const c = m.clone();
      c.prependHeader('Via', 'SIP/2.0/UDP p.example.com;branch=z9hG4bKp');
      c.setUri('sip:elsewhere.example.com');
      expect(m.vias).to.have.length(3);
      expect(c.vias).to.have.length(4);
      expect(m.uriText).to.equal('sip:example.com');
      expect(c.callId).to.equal(m.callId);
    });

    it('toBuffer drops every Content-Length and writes the real one', () => {
      const headers: HeaderField[] = [
        { key: 'content-length', name: 'l', value: '999' },
        { key: 'call-id', name: 'i', value: 'x' },
        { key: 'content-length', name: 'Content-Length', value: '5' },
      ];
      const r = new SipResponse(200, 'OK', headers, Buffer.from('héllo'));
      const text = r.toString();
      expect(text).to.equal('SIP/2.0 200 OK\r\ni: x\r\nContent-Length: 6\r\n\r\nhéllo');
    });

    it('toBuffer keeps binary bodies byte-exact', () => {
      const body = Buffer.from([0, 255, 13, 10, 13, 10, 128, 1]);
      const r = new SipResponse(200, 'OK', [], body);
      const out = r.toBuffer();
      expect(out.subarray(out.length - body.length).equals(body)).to.equal(true);
      expect(out.toString('latin1')).to.contain('Content-Length: 8\r\n\r\n');
    });
  });
});
