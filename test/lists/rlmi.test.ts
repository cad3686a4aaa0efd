import { expect } from 'chai';
import { deflateRawSync, deflateSync } from 'node:zlib';
import { parseListNotify } from '../../src/lists/list-notify.js';
import { buildMultipartRelated, mediaTypeParams, parseMultipart } from '../../src/lists/multipart.js';
import { inflateCapped } from '../../src/lists/resource-list-server.js';
import { buildRlmi, parseRlmi, type RlmiList } from '../../src/lists/rlmi-document.js';

/** RFC 4662 §5.3 shape: a named list, an active resource with a part, a pending and a rejected one. */
const RFC4662_STYLE = `<?xml version="1.0" encoding="UTF-8"?>
<list xmlns="urn:ietf:params:xml:ns:rlmi" uri="sip:adam-friends@pres.example.com" version="1" fullState="true">
  <name xml:lang="en">Buddy List at COM</name>
  <name xml:lang="de">Liste der Freunde an COM</name>
  <resource uri="sip:bob@example.com">
    <name>Bob Smith</name>
    <instance id="juwigmtboe" state="active" cid="bUZBsM@pres.example.com"/>
  </resource>
  <resource uri="sip:dave@example.com">
    <instance id="hqzsuxtfyq" state="pending"/>
  </resource>
  <resource uri="sip:ed@example.net">
    <instance id="ptjnsdfs" state="terminated" reason="rejected"/>
  </resource>
</list>`;

describe('lists: RLMI documents (RFC 4662 §5.3)', () => {
  it('reads the RFC 4662 style example: list attributes, names, instances with state, reason and cid', () => {
    const r = parseRlmi(RFC4662_STYLE);
    if (!r.ok) expect.fail(r.reason);
    expect(r.list).to.deep.equal({
      uri: 'sip:adam-friends@pres.example.com',
      version: 1,
      fullState: true,
      name: 'Buddy List at COM',
      resources: [
        { uri: 'sip:bob@example.com', name: 'Bob Smith', instances: [{ id: 'juwigmtboe', state: 'active', cid: 'bUZBsM@pres.example.com' }] },
        { uri: 'sip:dave@example.com', instances: [{ id: 'hqzsuxtfyq', state: 'pending' }] },
        { uri: 'sip:ed@example.net', instances: [{ id: 'ptjnsdfs', state: 'terminated', reason: 'rejected' }] },
      ],
    });
  });

  it('writes documents that read back the same, escaping hostile names and URIs', () => {
    const list: RlmiList = {
      uri: 'sip:a+presence@example.com',
      version: 7,
      fullState: false,
      name: '<Friends> & "family"',
      resources: [{ uri: 'sip:x@example.com?h="1"&b=<2>', name: '</name><evil/>', instances: [{ id: 'i"1', state: 'active', cid: 'c1@example.com' }] }],
    };
    const r = parseRlmi(buildRlmi(list));
    if (!r.ok) expect.fail(r.reason);
    expect(r.list).to.deep.equal(list);
  });

  it('refuses what is not RLMI, with a reason', () => {
    const cases: Array<[string, string]> = [
      ['<list xmlns="urn:ietf:params:xml:ns:rlmi" version="0" fullState="true"/>', 'Invalid rlmi: missing uri'],
      ['<list xmlns="urn:ietf:params:xml:ns:rlmi" uri="sip:l@x" version="-1" fullState="true"/>', 'Invalid rlmi: bad version'],
      ['<list xmlns="urn:ietf:params:xml:ns:rlmi" uri="sip:l@x" version="0" fullState="maybe"/>', 'Invalid rlmi: bad fullState'],
      ['<list xmlns="urn:ietf:params:xml:ns:rlmi" uri="sip:l@x" version="0" fullState="1"><resource uri="sip:a@x"><instance id="i" state="gone"/></resource></list>', 'Invalid rlmi: bad state gone'],
      ['<list uri="sip:l@x" version="0" fullState="true"/>', 'Invalid rlmi: root element is not list'],
      ['<!DOCTYPE list []><list/>', 'Invalid rlmi: DOCTYPE not allowed'],
    ];
    for (const [body, reason] of cases) {
      const r = parseRlmi(body);
      expect(r.ok ? 'accepted' : r.reason, body).to.equal(reason);
    }
  });
});

describe('lists: multipart/related bodies (RFC 2387) and list NOTIFYs', () => {
  const rlmi = buildRlmi({ uri: 'sip:rls@example.com', version: 0, fullState: true, resources: [{ uri: 'sip:bob@example.com', instances: [{ id: 'i1', state: 'active', cid: 'p1@example.com' }] }] });
  const pidf = Buffer.from('<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:bob@example.com"/>\r\n--not-the-boundary\r\n');

  it('builds a body whose Content-Type names the root type, the start part and a boundary found in no part', () => {
    const mp = buildMultipartRelated([{ contentId: 'r@example.com', contentType: 'application/rlmi+xml', body: rlmi }, { contentId: 'p1@example.com', contentType: 'application/pidf+xml', body: pidf }], 'application/rlmi+xml');
    const params = mediaTypeParams(mp.contentType);
    expect(mp.contentType.startsWith('multipart/related;')).to.equal(true);
    expect(params.get('type')).to.equal('application/rlmi+xml');
    expect(params.get('start')).to.equal('<r@example.com>');
    const boundary = params.get('boundary')!;
    expect(rlmi.includes(boundary) || pidf.includes(boundary)).to.equal(false);
    const parsed = parseMultipart(mp.contentType, mp.body);
    if (!parsed.ok) expect.fail(parsed.reason);
    expect(parsed.parts.map((p) => [p.contentId, p.contentType, p.headers.get('content-transfer-encoding')])).to.deep.equal([
      ['r@example.com', 'application/rlmi+xml', 'binary'],
      ['p1@example.com', 'application/pidf+xml', 'binary'],
    ]);
    expect(parsed.parts[1]!.body.equals(pidf)).to.equal(true);
    expect(parsed.start).to.equal('r@example.com');
  });

  it('writes Content-IDs bare when asked (liblinphone), and reads both forms', () => {
    for (const bare of [false, true]) {
      const mp = buildMultipartRelated([{ contentId: 'r@example.com', contentType: 'application/rlmi+xml', body: rlmi }, { contentId: 'p1@example.com', contentType: 'application/pidf+xml', body: pidf }], 'application/rlmi+xml', bare);
      expect(mp.body.toString()).to.include(bare ? 'Content-ID: p1@example.com\r\n' : 'Content-ID: <p1@example.com>\r\n');
      const n = parseListNotify(mp.contentType, mp.body);
      if (!n.ok) expect.fail(n.reason);
      expect(n.notify.rlmi.resources[0]!.instances[0]!.cid).to.equal('p1@example.com');
      expect(n.notify.parts.get('p1@example.com')?.body.equals(pidf)).to.equal(true);
    }
  });

  it('refuses bodies that are not list NOTIFYs', () => {
    const mp = buildMultipartRelated([{ contentId: 'r@x', contentType: 'application/rlmi+xml', body: rlmi }], 'application/rlmi+xml');
    const cases: Array<[string, Buffer, string]> = [
      ['application/pidf+xml', mp.body, 'not multipart/related'],
      ['multipart/related;type="application/pidf+xml";boundary=b', mp.body, 'root type is not application/rlmi+xml'],
      ['multipart/related;type="application/rlmi+xml"', mp.body, 'bad boundary'],
      ['multipart/related;type="application/rlmi+xml";boundary=zz', Buffer.from('--zz\r\nContent-ID: <a>\r\n\r\nx'), 'no close delimiter'],
      [mp.contentType.replace(/start="[^"]*"/, 'start="<nope>"'), mp.body, 'no root part'],
    ];
    for (const [type, body, reason] of cases) {
      const r = parseListNotify(type, body);
      expect(r.ok ? 'accepted' : r.reason, type).to.equal(reason);
    }
    const many = Buffer.from(Array.from({ length: 5 }, (_, i) => `--b\r\nContent-ID: <p${i}>\r\n\r\nx\r\n`).join('') + '--b--\r\n');
    expect(parseMultipart('multipart/related;boundary=b', many, 4)).to.deep.equal({ ok: false, reason: 'too many parts' });
  });
});

describe('lists: multipart part headers (RFC 2046, RFC 5322 §2.2)', () => {
  it('refuses a part header whose name is not a field name (a lone CR before the colon: found by the multipart-mixed fuzz target)', () => {
    const body = (name: string): Buffer => Buffer.from(`--b\r\nContent-Type: text/plain\r\n${name}: x\r\n\r\nhello\r\n--b--\r\n`, 'latin1');
    expect(parseMultipart('multipart/mixed;boundary=b', body('\r')).ok).to.equal(false);
    expect(parseMultipart('multipart/mixed;boundary=b', body(' ')).ok).to.equal(false);
    const ok = parseMultipart('multipart/mixed;boundary=b', body('X-Extra'));
    expect(ok.ok && ok.parts[0]!.headers.get('x-extra')).to.equal('x');
  });
});

describe('lists: deflate bodies (RFC 5367 Content-Encoding)', () => {
  it('inflates zlib and raw deflate under a cap; a bomb stops at the cap; junk is refused', () => {
    const list = Buffer.from('<resource-lists/>'.repeat(10));
    expect(inflateCapped(deflateSync(list), 1024)).to.deep.equal(list);
    expect(inflateCapped(deflateRawSync(list), 1024)).to.deep.equal(list);
    const bomb = deflateSync(Buffer.alloc(16 * 1024 * 1024, 0x20));
    expect(bomb.length).to.be.below(20_000);
    expect(inflateCapped(bomb, 64 * 1024)).to.equal('too-large');
    expect(inflateCapped(Buffer.from('not deflate at all'), 1024)).to.equal(undefined);
  });
});
