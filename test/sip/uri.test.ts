import { expect } from 'chai';
import { SipParseError } from '../../src/sip/errors.js';
import {
  addressOfRecord, formatSipUri, isSipUri, isValidHost, parseAddrSpecUri, parseHostPort, parseParams, parseUri, tryParseUri,
} from '../../src/sip/uri.js';

function parseError(raw: string): SipParseError {
  try {
    parseUri(raw);
  } catch (e) {
    expect(e, raw).to.be.instanceOf(SipParseError);
    return e as SipParseError;
  }
  throw new Error(`expected ${raw} to be refused`);
}

describe('sip/uri', () => {
  describe('parseUri: sip and sips', () => {
    it('parses user and host', () => {
      const u = parseUri('sip:alice@atlanta.example.com');
      expect(u.scheme).to.equal('sip');
      expect(u.user).to.equal('alice');
      expect(u.password).to.equal(undefined);
      expect(u.host).to.equal('atlanta.example.com');
      expect(u.port).to.equal(undefined);
      expect(u.params.size).to.equal(0);
      expect(u.headers).to.equal(undefined);
      expect(u.raw).to.equal('sip:alice@atlanta.example.com');
    });

    it('parses a host-only URI and sips', () => {
      const u = parseUri('sips:proxy.example.com:5061');
      expect(u.scheme).to.equal('sips');
      expect(u.user).to.equal(undefined);
      expect(u.host).to.equal('proxy.example.com');
      expect(u.port).to.equal(5061);
    });

    it('lower-cases scheme and host but keeps the user', () => {
      const u = parseUri('SIP:Alice@Atlanta.EXAMPLE.com');
      expect(u.scheme).to.equal('sip');
      expect(u.user).to.equal('Alice');
      expect(u.host).to.equal('atlanta.example.com');
    });

    it('decodes escapes in the user', () => {
      expect(parseUri('sip:al%20ice@example.com').user).to.equal('al ice');
      expect(parseUri('sip:%61lice@example.com').user).to.equal('alice');
      expect(parseUri('sip:%C3%A9mile@example.com').user).to.equal('émile');
      expect(parseUri('sip:a%00b@example.com').user).to.equal('a\u0000b');
      // user-unreserved characters are allowed as-is
      expect(parseUri("sip:+1-(555)&=$,;?/!~*'.x@example.com").user).to.equal("+1-(555)&=$,;?/!~*'.x");
    });

    it('parses a password, decoding escapes', () => {
      const u = parseUri('sip:alice:se%63ret@example.com');
      expect(u.user).to.equal('alice');
      expect(u.password).to.equal('secret');
      expect(parseUri('sip:alice:@example.com').password).to.equal('');
    });

    it('parses IPv4 and IPv6 hosts with ports', () => {
      const v4 = parseUri('sip:bob@192.0.2.4:5070');
      expect(v4.host).to.equal('192.0.2.4');
      expect(v4.port).to.equal(5070);
      const v6 = parseUri('sip:bob@[2001:DB8::10]:5070;transport=tcp');
      expect(v6.host).to.equal('[2001:db8::10]');
      expect(v6.port).to.equal(5070);
      expect(v6.params.get('transport')).to.equal('tcp');
      const v6np = parseUri('sip:[::1]');
      expect(v6np.host).to.equal('[::1]');
      expect(v6np.port).to.equal(undefined);
      const mapped = parseUri('sip:[::ffff:192.0.2.1]:5060');
      expect(mapped.host).to.equal('[::ffff:192.0.2.1]');
    });

    it('accepts port 0 and 65535', () => {
      expect(parseUri('sip:h.example.com:0').port).to.equal(0);
      expect(parseUri('sip:h.example.com:65535').port).to.equal(65535);
    });

    it('parses params with and without values, names lower-cased', () => {
      const u = parseUri('sip:alice@example.com;Transport=TCP;lr;maddr=239.255.255.1;ttl=15;x=');
      expect(u.params.get('transport')).to.equal('TCP');
      expect(u.params.has('lr')).to.equal(true);
      expect(u.params.get('lr')).to.equal(null);
      expect(u.params.get('maddr')).to.equal('239.255.255.1');
      expect(u.params.get('ttl')).to.equal('15');
      expect(u.params.get('x')).to.equal('');
      expect([...u.params.keys()]).to.deep.equal(['transport', 'lr', 'maddr', 'ttl', 'x']);
    });

    it('decodes %-escapes in parameter names and values, once (RFC 4475 §3.1.1.3)', () => {
      const u = parseUri('sip:caller@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31');
      expect([...u.params]).to.deep.equal([['lr', null], ['name', 'value%41']]);
      // Escaped and plain parameters are the same parameter (RFC 3261 §19.1.4).
      expect(parseUri('sip:a@example.com;TR%61NSPORT=%54CP').params.get('transport')).to.equal('TCP');
      expect(parseUri('sip:a@example.com;maddr=%31%30.0.0.1').params.get('maddr')).to.equal('10.0.0.1');
      // The text stays as it came.
      expect(u.raw).to.equal('sip:caller@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31');
      expect(parseError('sip:a@example.com;n%6=1').reason).to.equal('Bad URI parameters');
    });

    it('keeps headers after ? raw, and the params before them', () => {
      const u = parseUri('sip:bob@example.com;method=REGISTER?to=alice%40example.com&subject=hi%20there');
      expect(u.params.get('method')).to.equal('REGISTER');
      expect(u.headers).to.equal('to=alice%40example.com&subject=hi%20there');
      expect(u.host).to.equal('example.com');
      const bare = parseUri('sip:example.com?x=1');
      expect(bare.headers).to.equal('x=1');
      expect(bare.params.size).to.equal(0);
    });

    it('accepts a fully qualified host with a trailing dot', () => {
      expect(parseUri('sip:alice@example.com.').host).to.equal('example.com.');
    });
  });

  describe('parseUri: refusals', () => {
    it('refuses bad hosts', () => {
      for (const raw of [
        'sip:alice@',
        'sip:',
        'sip:alice@exa_mple.com',
        'sip:alice@-example.com',
        'sip:alice@example-.com',
        'sip:alice@example..com',
        'sip:alice@256.1.1.1',
        'sip:alice@[::1',
        'sip:alice@[zz::1]',
        'sip:alice@[1.2.3.4]',
        'sip:alice@ex ample.com',
        'sip:alice@<example.com>',
        `sip:alice@${'a'.repeat(250)}.example.com`,
      ]) {
        const e = parseError(raw);
        expect(e.status, raw).to.equal(400);
        expect(e.reason, raw).to.match(/URI/);
      }
    });

    it('refuses bad ports', () => {
      for (const raw of ['sip:alice@example.com:', 'sip:alice@example.com:65536', 'sip:alice@example.com:123456', 'sip:alice@example.com:5o60', 'sip:alice@[::1]5060', 'sip:alice@[::1]:', 'sip:alice@example.com:-1']) {
        expect(parseError(raw).reason, raw).to.equal('Bad URI host');
      }
    });

    it('refuses bad users, passwords and params', () => {
      expect(parseError('sip:al%zzice@example.com').reason).to.equal('Bad URI user');
      expect(parseError('sip:al%2@example.com').reason).to.equal('Bad URI user');
      expect(parseError('sip:@example.com').reason).to.equal('Bad URI user');
      expect(parseError('sip:al[ice@example.com').reason).to.equal('Bad URI user');
      expect(parseError('sip:alice:pa;ss@example.com').reason).to.equal('Bad URI password');
      expect(parseError('sip:alice@example.com;lr;;x').reason).to.equal('Bad URI parameters');
      expect(parseError('sip:alice@example.com;a{b}=1').reason).to.equal('Bad URI parameters');
    });

    it('refuses text without a scheme', () => {
      for (const raw of ['', 'alice@example.com', ':alice@example.com']) {
        const e = parseError(raw);
        expect(e.reason).to.equal('Bad URI');
        expect(e.status).to.equal(400);
      }
    });

    it('answers an unknown scheme with 416 Unsupported URI Scheme', () => {
      for (const raw of ['http://example.com/', 'mailto:alice@example.com', 'im:alice@example.com', 'pres:alice@example.com', 'sipx:alice@example.com']) {
        const e = parseError(raw);
        expect(e.status, raw).to.equal(416);
        expect(e.reason).to.equal('Unsupported URI Scheme');
      }
    });

    it('answers text that is no URI at all with 400, not 416 (RFC 4475 §3.1.2.7)', () => {
      for (const raw of ['<sip:user@example.com>', '<sip:user@example.com', '"sip":x', 'si p:x', '1sip:x@example.com', 'http:', 'http://exa mple.com/', 'urn:%zz']) {
        const e = parseError(raw);
        expect(e.status, raw).to.equal(400);
        expect(e.reason, raw).to.equal('Bad URI');
      }
    });

    it('tryParseUri returns undefined instead of throwing', () => {
      expect(tryParseUri('sip:alice@example.com')!.user).to.equal('alice');
      expect(tryParseUri('sip:alice@')).to.equal(undefined);
      expect(tryParseUri('http://x')).to.equal(undefined);
    });
  });

  describe('parseUri: tel', () => {
    it('parses a global number, dropping visual separators', () => {
      const u = parseUri('tel:+1-201-555-0123');
      expect(u.scheme).to.equal('tel');
      expect(u.user).to.equal('+12015550123');
      expect(u.host).to.equal('');
      expect(u.raw).to.equal('tel:+1-201-555-0123');
    });

    it('parses a local number with phone-context', () => {
      const u = parseUri('tel:7042;phone-context=example.com');
      expect(u.user).to.equal('7042');
      expect(u.params.get('phone-context')).to.equal('example.com');
      expect(parseUri('TEL:(555)123.4567;ext=12').user).to.equal('5551234567');
    });

    it('refuses bad tel numbers', () => {
      for (const raw of ['tel:', 'tel:+1 201', 'tel:abc@x', 'tel:+1;a;;x']) {
        expect(parseError(raw).reason, raw).to.equal('Bad tel URI');
      }
    });
  });

  describe('helpers', () => {
    it('isValidHost', () => {
      expect(isValidHost('example.com')).to.equal(true);
      expect(isValidHost('a')).to.equal(true);
      expect(isValidHost('1.2.3.4')).to.equal(true);
      expect(isValidHost('255.255.255.255')).to.equal(true);
      expect(isValidHost('[::]')).to.equal(true);
      expect(isValidHost('')).to.equal(false);
      expect(isValidHost('1.2.3.256')).to.equal(false);
      expect(isValidHost('[]')).to.equal(false);
      expect(isValidHost('::1')).to.equal(false);
      expect(isValidHost('a_b')).to.equal(false);
    });

    it('parseHostPort', () => {
      expect(parseHostPort('Example.COM:5060')).to.deep.equal({ host: 'example.com', port: 5060 });
      expect(parseHostPort('example.com')).to.deep.equal({ host: 'example.com', port: undefined });
      expect(parseHostPort('[2001:db8::1]:1')).to.deep.equal({ host: '[2001:db8::1]', port: 1 });
      expect(parseHostPort('[2001:db8::1]x')).to.equal(undefined);
      expect(parseHostPort('2001:db8::1')).to.equal(undefined);
      expect(parseHostPort('host:99999')).to.equal(undefined);
      expect(parseHostPort('host:')).to.equal(undefined);
    });

    it('parseParams', () => {
      expect([...parseParams(';a=1;B;c=')!]).to.deep.equal([['a', '1'], ['b', null], ['c', '']]);
      expect([...parseParams('a=1')!]).to.deep.equal([['a', '1']]);
      expect(parseParams('')!.size).to.equal(0);
      expect(parseParams('a;;b')).to.equal(undefined);
      expect(parseParams('a=<x>')).to.equal(undefined);
    });
  });

  describe('parseAddrSpecUri', () => {
    it('parses sip, sips and tel as parseUri does', () => {
      expect(parseAddrSpecUri('sip:alice@Example.com;lr')).to.deep.equal(parseUri('sip:alice@Example.com;lr'));
      expect(parseAddrSpecUri('SIPS:bob@example.com').scheme).to.equal('sips');
      expect(parseAddrSpecUri('tel:+1-555-0100').user).to.equal('+15550100');
      expect(() => parseAddrSpecUri('sip:alice@')).to.throw(SipParseError, 'Bad URI host');
    });

    it('keeps any other absoluteURI opaque: scheme lower-cased, no host, no parameters', () => {
      const u = parseAddrSpecUri('HTTP://www.example.com/a;b?c=d');
      expect(u).to.deep.include({ scheme: 'http', user: '//www.example.com/a;b?c=d', host: '', raw: 'HTTP://www.example.com/a;b?c=d' });
      expect(u.params.size).to.equal(0);
      expect(u.port).to.equal(undefined);
      for (const raw of ['isbn:2983792873', 'name:John_Smith', 'urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6', 'mailto:a%40b@example.com', 'soap.beep://192.0.2.103:3002']) {
        expect(parseAddrSpecUri(raw).raw, raw).to.equal(raw);
      }
    });

    it('refuses what is no absoluteURI with 400', () => {
      for (const raw of ['', 'nothing', ':x', '1x:y', 'x:', 'x:a b', 'x:a"b', 'x:<a>', 'x:%4']) {
        let err: unknown;
        try {
          parseAddrSpecUri(raw);
        } catch (e) {
          err = e;
        }
        expect(err, raw).to.be.instanceOf(SipParseError);
        expect((err as SipParseError).status, raw).to.equal(400);
      }
    });

    it('isSipUri is true for sip and sips only', () => {
      expect(isSipUri(parseUri('sip:a@example.com'))).to.equal(true);
      expect(isSipUri(parseUri('sips:a@example.com'))).to.equal(true);
      expect(isSipUri(parseUri('tel:+15550100'))).to.equal(false);
      expect(isSipUri(parseAddrSpecUri('http://example.com/'))).to.equal(false);
    });
  });

  describe('addressOfRecord', () => {
    it('names an opaque absoluteURI by its text', () => {
      expect(addressOfRecord(parseAddrSpecUri('http://www.example.com'))).to.equal('http://www.example.com');
    });

    it('strips port, params and headers and lower-cases the host', () => {
      expect(addressOfRecord(parseUri('sip:alice@Example.COM:5060;transport=tcp?subject=x'))).to.equal('sip:alice@example.com');
    });

    it('keeps the user as written and folds sips into sip', () => {
      expect(addressOfRecord(parseUri('sips:Alice@example.com:5061'))).to.equal('sip:Alice@example.com');
    });

    it('drops the password', () => {
      expect(addressOfRecord(parseUri('sip:alice:secret@example.com'))).to.equal('sip:alice@example.com');
    });

    it('normalizes escapes in the user: needless escapes decoded, needed ones kept', () => {
      expect(addressOfRecord(parseUri('sip:%61lice@example.com'))).to.equal('sip:alice@example.com');
      expect(addressOfRecord(parseUri('sip:al%20ice@example.com'))).to.equal('sip:al%20ice@example.com');
      expect(addressOfRecord(parseUri('sip:al%20ice@example.com'))).to.equal(addressOfRecord(parseUri('sip:al%20ice@EXAMPLE.com;lr')));
    });

    it('handles host-only URIs, IPv6 and tel', () => {
      expect(addressOfRecord(parseUri('sip:Example.com:5060'))).to.equal('sip:example.com');
      expect(addressOfRecord(parseUri('sip:bob@[2001:DB8::1]:5060'))).to.equal('sip:bob@[2001:db8::1]');
      expect(addressOfRecord(parseUri('tel:+1-201-555-0123;ext=1'))).to.equal('tel:+12015550123');
    });

    it('gives an AOR that parses back to itself', () => {
      for (const raw of ['sip:a%40b@example.com', 'sip:é@example.com'.replace('é', '%C3%A9'), 'sips:x@[::1]:5', 'sip:h.example.com']) {
        const aor = addressOfRecord(parseUri(raw));
        expect(addressOfRecord(parseUri(aor)), raw).to.equal(aor);
      }
    });
  });

  describe('formatSipUri', () => {
    it('builds plain sip and sips URIs', () => {
      expect(formatSipUri({ user: 'alice', host: 'example.com' })).to.equal('sip:alice@example.com');
      expect(formatSipUri({ scheme: 'sips', host: 'example.com', port: 5061 })).to.equal('sips:example.com:5061');
      expect(formatSipUri({ user: '', host: 'example.com' })).to.equal('sip:example.com');
    });

    it('brackets bare IPv6 hosts, and not bracketed ones twice', () => {
      expect(formatSipUri({ host: '2001:db8::1', port: 5060 })).to.equal('sip:[2001:db8::1]:5060');
      expect(formatSipUri({ host: '[2001:db8::1]' })).to.equal('sip:[2001:db8::1]');
    });

    it('escapes the user and appends params', () => {
      const s = formatSipUri({ user: 'al ice@home', host: 'example.com', params: [['transport', 'tcp'], ['lr', null]] });
      expect(s).to.equal('sip:al%20ice%40home@example.com;transport=tcp;lr');
      const u = parseUri(s);
      expect(u.user).to.equal('al ice@home');
      expect(u.params.get('transport')).to.equal('tcp');
      expect(u.params.get('lr')).to.equal(null);
      expect(formatSipUri({ user: 'é', host: 'x.example' })).to.equal('sip:%C3%A9@x.example');
    });
  });
});
