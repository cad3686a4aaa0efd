import { expect } from 'chai';
import { SipParseError } from '../../src/sip/errors.js';
import { canonicalHeaderName, headerKey, LIST_HEADERS, SINGLE_HEADERS } from '../../src/sip/header-names.js';
import {
  closingQuote, parseCSeq, parseDeltaSeconds, parseEvent, parseHeaderParams, parseMediaType, parseNameAddr,
  parseVia, quote, splitList, unquote,
} from '../../src/sip/header-values.js';

function refuses(fn: () => unknown, reason?: RegExp | string, status = 400): SipParseError {
  try {
    fn();
  } catch (e) {
    expect(e).to.be.instanceOf(SipParseError);
    const err = e as SipParseError;
    expect(err.status).to.equal(status);
    if (typeof reason === 'string') expect(err.reason).to.equal(reason);
    else if (reason) expect(err.reason).to.match(reason);
    return err;
  }
  throw new Error('expected a SipParseError');
}

describe('sip/header-values', () => {
  describe('header names', () => {
    it('maps compact and mixed-case names to lower-case long keys', () => {
      const pairs: Array<[string, string]> = [
        ['i', 'call-id'], ['m', 'contact'], ['e', 'content-encoding'], ['l', 'content-length'], ['c', 'content-type'],
        ['f', 'from'], ['t', 'to'], ['v', 'via'], ['k', 'supported'], ['s', 'subject'], ['o', 'event'],
        ['u', 'allow-events'], ['r', 'refer-to'], ['b', 'referred-by'], ['x', 'session-expires'], ['y', 'identity'],
        ['I', 'call-id'], ['V', 'via'], ['CALL-ID', 'call-id'], ['X-Foo', 'x-foo'], ['a', 'a'],
      ];
      for (const [name, key] of pairs) expect(headerKey(name), name).to.equal(key);
    });

    it('writes known headers canonically and keeps unknown names', () => {
      expect(canonicalHeaderName('call-id')).to.equal('Call-ID');
      expect(canonicalHeaderName('cseq')).to.equal('CSeq');
      expect(canonicalHeaderName('www-authenticate')).to.equal('WWW-Authenticate');
      expect(canonicalHeaderName('sip-etag', 'sip-etag')).to.equal('SIP-ETag');
      expect(canonicalHeaderName('x-my-header', 'X-my-HEADER')).to.equal('X-my-HEADER');
      expect(canonicalHeaderName('x-my-header')).to.equal('X-My-Header');
    });

    it('lists headers that are lists and those that are single', () => {
      for (const k of ['via', 'contact', 'route', 'record-route', 'allow', 'supported']) expect(LIST_HEADERS.has(k), k).to.equal(true);
      for (const k of ['call-id', 'cseq', 'from', 'to', 'max-forwards']) expect(SINGLE_HEADERS.has(k), k).to.equal(true);
      for (const k of ['date', 'www-authenticate', 'subject']) expect(LIST_HEADERS.has(k), k).to.equal(false);
    });
  });

  describe('splitList', () => {
    it('returns one trimmed element when there is no comma', () => {
      expect(splitList('  a  ')).to.deep.equal(['a']);
    });

    it('splits at commas and trims', () => {
      expect(splitList('INVITE, ACK ,BYE')).to.deep.equal(['INVITE', 'ACK', 'BYE']);
    });

    it('does not split inside quotes', () => {
      expect(splitList('"Doe, John" <sip:j@example.com>, <sip:k@example.com>')).to.deep.equal([
        '"Doe, John" <sip:j@example.com>',
        '<sip:k@example.com>',
      ]);
    });

    it('honours quoted-pairs: an escaped quote does not close the string', () => {
      expect(splitList('"a\\", b" <sip:x@y>, <sip:z@w>')).to.deep.equal(['"a\\", b" <sip:x@y>', '<sip:z@w>']);
      expect(splitList('"a\\\\", <sip:z@w>')).to.deep.equal(['"a\\\\"', '<sip:z@w>']);
    });

    it('does not split inside angle brackets', () => {
      expect(splitList('<sip:a@b;x=1,2>;q=1, <sip:c@d>')).to.deep.equal(['<sip:a@b;x=1,2>;q=1', '<sip:c@d>']);
    });

    it('keeps empty elements for callers to refuse', () => {
      expect(splitList('a,,b')).to.deep.equal(['a', '', 'b']);
      expect(splitList('a,')).to.deep.equal(['a', '']);
    });
  });

  describe('parseHeaderParams, quote, unquote', () => {
    it('reads flags, tokens, hosts and quoted values', () => {
      const p = parseHeaderParams(' ; Tag = abc ;lr; received=[2001:db8::1];reason="a \\"b\\"; c"', 'X');
      expect(p.get('tag')).to.equal('abc');
      expect(p.get('lr')).to.equal(null);
      expect(p.get('received')).to.equal('[2001:db8::1]');
      expect(p.get('reason')).to.equal('a "b"; c');
    });

    it('refuses junk', () => {
      refuses(() => parseHeaderParams('x', 'X'), 'Bad X');
      refuses(() => parseHeaderParams(';=1', 'X'), 'Bad X parameter');
      refuses(() => parseHeaderParams(';a=', 'X'), 'Bad X parameter');
      refuses(() => parseHeaderParams(';a=<b>', 'X'), 'Bad X parameter');
      refuses(() => parseHeaderParams(';a="open', 'X'), 'Bad X: unbalanced quotes');
    });

    it('quote and unquote are inverse', () => {
      for (const s of ['', 'plain', 'with "quotes"', 'back\\slash', '"\\"']) {
        expect(unquote(quote(s))).to.equal(s);
        expect(closingQuote(quote(s), 0)).to.equal(quote(s).length - 1);
      }
      expect(closingQuote('"abc', 0)).to.equal(-1);
    });
  });

  describe('parseNameAddr', () => {
    it('parses a name-addr with a quoted display name and header params', () => {
      const a = parseNameAddr('"Alice \\"A\\" Smith" <sip:alice@example.com;transport=tcp>;tag=88sja8x;expires=60');
      expect(a.displayName).to.equal('Alice "A" Smith');
      expect(a.uri.user).to.equal('alice');
      expect(a.uri.params.get('transport')).to.equal('tcp');
      expect(a.uri.params.has('tag')).to.equal(false);
      expect(a.params.get('tag')).to.equal('88sja8x');
      expect(a.params.get('expires')).to.equal('60');
      expect(a.params.has('transport')).to.equal(false);
      expect(a.tag).to.equal('88sja8x');
    });

    it('gives every ;param of an addr-spec to the header, not the URI (§20.10)', () => {
      const a = parseNameAddr('sip:alice@example.com;tag=abc;transport=tcp');
      expect(a.displayName).to.equal(undefined);
      expect(a.uri.params.size).to.equal(0);
      expect(a.uri.raw).to.equal('sip:alice@example.com');
      expect(a.tag).to.equal('abc');
      expect(a.params.get('transport')).to.equal('tcp');
    });

    it('gives URI params inside <> to the URI', () => {
      const a = parseNameAddr('<sip:alice@example.com;tag=uri-tag;lr>;tag=hdr');
      expect(a.uri.params.get('tag')).to.equal('uri-tag');
      expect(a.uri.params.get('lr')).to.equal(null);
      expect(a.tag).to.equal('hdr');
    });

    it('reads token display names, collapsing whitespace', () => {
      const a = parseNameAddr('Alice   B.\tSmith <sip:alice@example.com>');
      expect(a.displayName).to.equal('Alice B. Smith');
      expect(parseNameAddr('<sip:alice@example.com>').displayName).to.equal(undefined);
      expect(parseNameAddr('  Bob<sip:bob@example.com>  ').displayName).to.equal('Bob');
    });

    it('keeps the raw text, trimmed', () => {
      expect(parseNameAddr('  <sip:a@example.com> ;tag=1 ').raw).to.equal('<sip:a@example.com> ;tag=1');
    });

    it('accepts LWS between the quoted name and <, and around params', () => {
      const a = parseNameAddr('"Bob"   <sip:bob@example.com> ; tag = 1 ');
      expect(a.displayName).to.equal('Bob');
      expect(a.tag).to.equal('1');
    });

    it('accepts tel and sips URIs', () => {
      expect(parseNameAddr('<tel:+1-555-0100>;tag=1').uri.user).to.equal('+15550100');
      expect(parseNameAddr('sips:bob@example.com').uri.scheme).to.equal('sips');
    });

    it('refuses an addr-spec that would need <> (comma, ?, space)', () => {
      refuses(() => parseNameAddr('sip:alice@example.com?subject=x', 'From'), 'Bad From');
      refuses(() => parseNameAddr('sip:alice@example.com,x', 'From'), 'Bad From');
      refuses(() => parseNameAddr('Alice sip:alice@example.com', 'From'), 'Bad From');
    });

    it('refuses broken name-addrs', () => {
      refuses(() => parseNameAddr('"Alice <sip:alice@example.com>', 'To'), 'Bad To: unbalanced quotes');
      refuses(() => parseNameAddr('"Alice" sip:alice@example.com', 'To'), 'Bad To');
      refuses(() => parseNameAddr('<sip:alice@example.com', 'To'), 'Bad To: missing >');
      refuses(() => parseNameAddr('Al@ice <sip:alice@example.com>', 'To'), 'Bad To display name');
      refuses(() => parseNameAddr('<sip:alice@>', 'To'), 'Bad To URI');
      refuses(() => parseNameAddr('', 'To'), 'Bad To URI');
      refuses(() => parseNameAddr('<sip:a@example.com>junk', 'To'), 'Bad To');
    });

    it('refuses an empty or valueless tag', () => {
      refuses(() => parseNameAddr('<sip:a@example.com>;tag', 'From'), 'Bad From tag');
      refuses(() => parseNameAddr('<sip:a@example.com>;tag=', 'From'), 'Bad From parameter');
    });

    it('reads an absoluteURI of another scheme as an opaque URI, not as 416 (RFC 4475 §3.3.4)', () => {
      // 416 Unsupported URI Scheme is about the Request-URI (RFC 3261 §8.2.2.1); From, To
      // and Contact may hold any absoluteURI (§25.1 addr-spec).
      const http = parseNameAddr('<http://www.example.com>;tag=3234233', 'From');
      expect(http.uri).to.deep.include({ scheme: 'http', host: '', user: '//www.example.com', raw: 'http://www.example.com' });
      expect(http.uri.params.size).to.equal(0);
      expect(http.tag).to.equal('3234233');
      const isbn = parseNameAddr('isbn:2983792873', 'To');
      expect(isbn.uri).to.deep.include({ scheme: 'isbn', raw: 'isbn:2983792873' });
      expect(isbn.tag).to.equal(undefined);
      // In an addr-spec the ;params still belong to the header.
      const mailto = parseNameAddr('MailTo:a@example.com;tag=7', 'To');
      expect(mailto.uri.scheme).to.equal('mailto');
      expect(mailto.uri.raw).to.equal('MailTo:a@example.com');
      expect(mailto.tag).to.equal('7');
      expect(parseNameAddr('"John" <name:John_Smith>', 'Contact').uri.scheme).to.equal('name');
    });

    it('refuses text that is no absoluteURI with 400', () => {
      refuses(() => parseNameAddr('<1http://example.com/>', 'To'), 'Bad To URI');
      refuses(() => parseNameAddr('<http:>', 'To'), 'Bad To URI');
      refuses(() => parseNameAddr('<http://exa mple.com/>', 'To'), 'Bad To URI');
      refuses(() => parseNameAddr('<urn:a%zz>', 'To'), 'Bad To URI');
      refuses(() => parseNameAddr('<:nothing>', 'To'), 'Bad To URI');
    });

    it('accepts LWS between an addr-spec and its first parameter (SEMI = SWS ";" SWS)', () => {
      // RFC 4475 §3.1.1.1 wsinv: "sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n"
      const a = parseNameAddr('sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n', 'To');
      expect(a.uri.host).to.equal('chair-dnrc.example.com');
      expect(a.uri.user).to.equal('vivekg');
      expect(a.tag).to.equal('1918181833n');
      const tab = parseNameAddr('sip:bob@example.com\t;tag=1', 'To');
      expect(tab.uri.raw).to.equal('sip:bob@example.com');
      expect(tab.tag).to.equal('1');
      // Still no LWS inside the URI itself.
      refuses(() => parseNameAddr('sip:bob @example.com ;tag=1', 'To'), 'Bad To');
    });

    it('treats only SP and HTAB as white space around an address', () => {
      // U+00A0 and U+FEFF are not LWS: they stay, and the URI with them is no URI.
      refuses(() => parseNameAddr('\u00a0<sip:a@example.com>', 'To'), 'Bad To display name');
      refuses(() => parseNameAddr('sip:a@example.com\ufeff', 'To'), /^Bad To/);
      refuses(() => parseNameAddr('<sip:a@example.com\ufeff>', 'To'), 'Bad To URI');
    });
  });

  describe('parseVia', () => {
    it('parses a plain UDP Via', () => {
      const v = parseVia('SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds');
      expect(v).to.deep.include({ protocol: 'SIP', version: '2.0', transport: 'UDP', host: 'pc33.atlanta.example.com', port: undefined, branch: 'z9hG4bK776asdhds' });
    });

    it('parses port, IPv6, and every known parameter', () => {
      const v = parseVia('SIP/2.0/WSS [2001:db8::1]:443;received=[2001:db8::2];rport=5061;maddr=[ff02::1];ttl=0;branch=z9hG4bKx;alias');
      expect(v.transport).to.equal('WSS');
      expect(v.host).to.equal('[2001:db8::1]');
      expect(v.port).to.equal(443);
      expect(v.params.get('received')).to.equal('[2001:db8::2]');
      expect(v.params.get('rport')).to.equal('5061');
      expect(v.params.get('maddr')).to.equal('[ff02::1]');
      expect(v.params.get('ttl')).to.equal('0');
      expect(v.params.get('alias')).to.equal(null);
      expect(v.branch).to.equal('z9hG4bKx');
    });

    it('accepts rport without a value and ttl 255', () => {
      const v = parseVia('SIP/2.0/UDP 10.0.0.1;rport;ttl=255');
      expect(v.params.get('rport')).to.equal(null);
      expect(v.params.get('ttl')).to.equal('255');
      expect(v.branch).to.equal(undefined);
    });

    it('accepts LWS in sent-protocol and before params', () => {
      const v = parseVia('  SIP /2.0/ udp   host.example.com : 5060  ;  branch=z9hG4bKl ');
      expect(v.transport).to.equal('UDP');
      expect(v.port).to.equal(5060);
      expect(v.branch).to.equal('z9hG4bKl');
    });

    it('refuses bad Vias', () => {
      refuses(() => parseVia(''), 'Bad Via');
      refuses(() => parseVia('SIP/2.0/UDP'), 'Bad Via');
      refuses(() => parseVia('SIP/2.0 host'), 'Bad Via');
      refuses(() => parseVia('SIP/2.0/UDP bad_host'), 'Bad Via sent-by');
      refuses(() => parseVia('SIP/2.0/UDP host:70000'), 'Bad Via sent-by');
      refuses(() => parseVia('SIP/2.0/UDP host;branch'), 'Bad Via branch');
      refuses(() => parseVia('SIP/2.0/UDP host;ttl=256'), 'Bad Via ttl');
      refuses(() => parseVia('SIP/2.0/UDP host;ttl=-1'), 'Bad Via ttl');
      refuses(() => parseVia('SIP/2.0/UDP host;ttl'), 'Bad Via ttl');
      refuses(() => parseVia('SIP/2.0/UDP host;rport=65536'), 'Bad Via rport');
      refuses(() => parseVia('SIP/2.0/UDP host;rport=x'), 'Bad Via rport');
      refuses(() => parseVia('SIP/2.0/UDP host;branch="quoted;x"junk'), /Bad Via/);
    });
  });

  describe('parseCSeq', () => {
    it('parses number and method', () => {
      expect(parseCSeq('4711 INVITE')).to.deep.equal({ seq: 4711, method: 'INVITE' });
      expect(parseCSeq('  1   REGISTER  ')).to.deep.equal({ seq: 1, method: 'REGISTER' });
      expect(parseCSeq('0 X-EXT.1')).to.deep.equal({ seq: 0, method: 'X-EXT.1' });
      expect(parseCSeq(`${2 ** 31 - 1} ACK`).seq).to.equal(2 ** 31 - 1);
    });

    it('refuses 2**31 and above, and junk', () => {
      for (const t of [`${2 ** 31} ACK`, '9999999999 ACK', '12345678901 ACK', '', 'ACK', '1', '1ACK', '-1 ACK', '1 AC K', '1 AC@K', '0x10 ACK']) {
        refuses(() => parseCSeq(t), 'Bad CSeq');
      }
    });
  });

  describe('parseMediaType', () => {
    it('parses type, subtype and params; lower-cases the essence', () => {
      const t = parseMediaType('Application/PIDF+XML ; charset=UTF-8;q="a b"');
      expect(t.type).to.equal('application');
      expect(t.subtype).to.equal('pidf+xml');
      expect(t.essence).to.equal('application/pidf+xml');
      expect(t.params.get('charset')).to.equal('UTF-8');
      expect(t.params.get('q')).to.equal('a b');
      expect(parseMediaType('text/plain').params.size).to.equal(0);
      expect(parseMediaType(' multipart/related;type="application/rlmi+xml";boundary=x ').params.get('type')).to.equal('application/rlmi+xml');
    });

    it('allows LWS around the slash', () => {
      expect(parseMediaType('text / plain').essence).to.equal('text/plain');
    });

    it('refuses bad media types', () => {
      for (const t of ['', 'text', '/plain', 'text/', 'te xt/plain', 'text/pl@in', 'text/plain;', 'text/plain;=x', 'text/plain charset=x']) {
        refuses(() => parseMediaType(t), /^Bad Content-Type/);
      }
    });
  });

  describe('parseEvent', () => {
    it('parses a package with id and params, lower-casing the package', () => {
      const e = parseEvent('Presence;id=abc;Foo=Bar;flag');
      expect(e.package).to.equal('presence');
      expect(e.id).to.equal('abc');
      expect(e.params.get('foo')).to.equal('Bar');
      expect(e.params.get('flag')).to.equal(null);
      expect(parseEvent('presence.winfo').package).to.equal('presence.winfo');
      expect(parseEvent(' message-summary ').id).to.equal(undefined);
    });

    it('refuses bad events', () => {
      for (const t of ['', 'pres ence', 'pres@nce', ';id=1', 'presence;', 'presence;id=']) refuses(() => parseEvent(t), /^Bad Event/);
    });
  });

  describe('parseDeltaSeconds', () => {
    it('parses non-negative integers, trimming LWS', () => {
      expect(parseDeltaSeconds('0', 'Expires')).to.equal(0);
      expect(parseDeltaSeconds(' 3600 ', 'Expires')).to.equal(3600);
      expect(parseDeltaSeconds('0007', 'Expires')).to.equal(7);
    });

    it('caps values above the maximum (2**32-1 by default)', () => {
      expect(parseDeltaSeconds('4294967295', 'Expires')).to.equal(2 ** 32 - 1);
      expect(parseDeltaSeconds('9999999999', 'Expires')).to.equal(2 ** 32 - 1);
      expect(parseDeltaSeconds('300', 'Max-Forwards', 255)).to.equal(255);
    });

    it('refuses junk with the header named in the reason', () => {
      for (const t of ['', '-1', '1.5', 'abc', '1 2', '12345678901', '+1']) refuses(() => parseDeltaSeconds(t, 'Expires'), 'Bad Expires');
      refuses(() => parseDeltaSeconds('x', 'Min-Expires'), 'Bad Min-Expires');
    });
  });
});
