import { expect } from 'chai';
import { DATA_MODEL_NS, parsePidf, PIDF_NS, RPID_NS } from '../../../src/presence/pidf/index.js';
import { attributeValue, childElements, textContent } from '../../../src/presence/pidf/xml-tree.js';
import {
  BARESIP,
  DEFAULT_NAMESPACES,
  DOUBANGO,
  LINPHONE,
  pidf,
  RFC3863_EXTENDED,
  RFC3863_MINIMAL,
  RFC4479_EXAMPLE,
  RFC4480_EXAMPLE,
  RFC4481_EXAMPLE,
  SIPJS_APP,
  tuple,
  VALID_DOCUMENTS,
} from './fixtures.js';
import { mustParse, refusal } from './helpers.js';

describe('pidf: parsePidf', () => {
  describe('real documents', () => {
    for (const [name, doc] of Object.entries(VALID_DOCUMENTS)) {
      it(`accepts ${name} as a Buffer and as a string`, () => {
        expect(parsePidf(Buffer.from(doc, 'utf8')).ok).to.equal(true);
        expect(parsePidf(doc).ok).to.equal(true);
      });
    }

    it('RFC 3863 minimal example: the PIDF namespace under a prefix', () => {
      const d = mustParse(RFC3863_MINIMAL);
      expect(d.entity).to.equal('pres:someone@example.com');
      expect(d.tuples).to.have.length(1);
      const t = d.tuples[0]!;
      expect(t.id).to.equal('sg89ae');
      expect(t.basic).to.equal('open');
      expect(t.contact).to.deep.equal({ uri: 'tel:+09012345678', priority: 0.8 });
      expect(d.namespaces).to.deep.equal({ impp: PIDF_NS });
    });

    it('RFC 3863 extended example: notes with languages, timestamps, extensions kept', () => {
      const d = mustParse(RFC3863_EXTENDED);
      expect(d.tuples.map((t) => t.id)).to.deep.equal(['bs35r9', 'eg92n8']);
      const t = d.tuples[0]!;
      expect(t.notes).to.deep.equal([
        { text: "Don't Disturb Please!", lang: 'en' },
        { text: "Ne derangez pas, s'il vous plait", lang: 'fr' },
      ]);
      expect(t.timestamp).to.equal('2001-10-27T16:49:29Z');
      expect(d.tuples[1]!.contact).to.deep.equal({ uri: 'mailto:someone@example.com', priority: 1 });
      expect(d.notes).to.deep.equal([{ text: "I'll be in Tokyo next week" }]);
      // The status extensions stay in the tuple; the top-level one is an extension.
      const status = childElements(t.raw, PIDF_NS, 'status')[0]!;
      expect(textContent(childElements(status, 'urn:ietf:params:xml:ns:pidf:im', 'im')[0]!)).to.equal('busy');
      expect(textContent(childElements(status, 'http://id.example.com/presence/', 'location')[0]!)).to.equal('home');
      expect(d.extensions.map((e) => [e.ns, e.local])).to.deep.equal([['http://id.example.com/presence/', 'mood']]);
    });

    it('RFC 4479 example: person, device, deviceID binding a service to a device', () => {
      const d = mustParse(RFC4479_EXAMPLE);
      expect(d.tuples[0]!.deviceId).to.equal('mac:8asd7d7d70');
      expect(d.persons).to.have.length(1);
      expect(d.persons[0]!.activities).to.deep.equal(['on-the-phone']);
      expect(d.persons[0]!.timestamp).to.equal('2005-05-30T22:00:29Z');
      expect(d.devices).to.have.length(1);
      const dev = d.devices[0]!;
      expect(dev.id).to.equal('pc122');
      expect(dev.deviceId).to.equal('mac:8asd7d7d70');
      expect(dev.userInput).to.deep.equal({ state: 'idle' });
    });

    it('RFC 4480 example: the RPID elements of the person and the device', () => {
      const d = mustParse(RFC4480_EXAMPLE);
      const p = d.persons[0]!;
      expect(p.id).to.equal('p1');
      expect(p.activities).to.deep.equal(['away']);
      expect(p.mood).to.deep.equal(['angry', 'brooding']);
      expect(p.placeType).to.equal('residence');
      expect(p.privacy).to.deep.equal(['unknown']);
      expect(p.sphere).to.equal('bowling league');
      expect(p.timeOffset).to.deep.equal({ minutes: -240 });
      expect(p.notes).to.deep.equal([{ text: 'Scoring 120' }]);
      expect(p.timestamp).to.equal('2005-05-30T16:09:44+05:00');
      const dev = d.devices[0]!;
      expect(dev.userInput).to.deep.equal({ state: 'idle', idleThreshold: 600, lastInput: '2004-10-21T13:20:00.000-05:00' });
      expect(dev.notes).to.deep.equal([{ text: 'PC' }]);
      expect(d.tuples.map((t) => t.deviceId)).to.deep.equal(['urn:device:0003ba4811e3', undefined, 'urn:x-mac:0003ba4811e3']);
    });

    it('RFC 4481 timed status', () => {
      const d = mustParse(RFC4481_EXAMPLE);
      expect(d.tuples[0]!.timedStatus).to.deep.equal([
        {
          from: '2005-08-15T10:20:00.000-05:00',
          until: '2005-08-22T19:30:00.000-05:00',
          basic: 'closed',
          notes: [{ text: 'In Vienna, away from the phone', lang: 'en' }],
        },
      ]);
      // The timed basic is not the tuple's basic.
      expect(d.tuples[0]!.basic).to.equal('open');
    });

    it('baresip: CRLF line ends, person before tuple, empty activities', () => {
      const d = mustParse(BARESIP);
      expect(d.entity).to.equal('sip:alice@example.com');
      expect(d.tuples[0]).to.include({ id: 't4109', basic: 'open' });
      expect(d.tuples[0]!.contact).to.deep.equal({ uri: 'sip:alice@example.com' });
      expect(d.persons[0]!.activities).to.deep.equal([]);
    });

    it('Linphone: odd ids, rpid notes in activities, the PIDF timestamp in the person', () => {
      const d = mustParse(LINPHONE);
      expect(d.tuples[0]!.id).to.equal(':3kq9z');
      const p = d.persons[0]!;
      expect(p.activities).to.deep.equal(['meal']);
      expect(p.notes).to.deep.equal([{ text: 'Back at two', lang: 'en' }]);
      expect(p.timestamp).to.equal('2024-03-01T10:00:00Z');
    });

    it('a sip.js application: single quotes, IM status extension, tuple notes', () => {
      const d = mustParse(SIPJS_APP);
      expect(d.persons[0]!.activities).to.deep.equal(['busy']);
      expect(d.tuples[0]!.notes).to.deep.equal([{ text: 'In a meeting' }]);
      expect(d.tuples[0]!.contact!.uri).to.equal('sip:carol@example.com;transport=ws');
    });

    it('an IMS client: `pdm` prefix, a device without deviceID, OMA extensions', () => {
      const d = mustParse(DOUBANGO);
      expect(d.tuples).to.deep.equal([]);
      expect(d.persons[0]!.id).to.equal('RPVRYNJH');
      expect(d.persons[0]!.activities).to.deep.equal(['busy']);
      expect(d.persons[0]!.mood).to.deep.equal(['guilty']);
      expect(d.persons[0]!.notes).to.deep.equal([{ text: 'Come and chat' }]);
      expect(d.devices[0]!.id).to.equal('d0001');
      expect(d.devices[0]!.deviceId).to.equal(undefined);
    });

    it('default namespaces declared on inner elements are honoured', () => {
      const d = mustParse(DEFAULT_NAMESPACES);
      expect(d.entity).to.equal('sips:erin@example.com');
      expect(d.tuples[0]!.basic).to.equal('closed');
      expect(d.persons).to.have.length(1);
      expect(d.persons[0]!.activities).to.deep.equal(['vacation']);
      expect(d.persons[0]!.notes).to.deep.equal([{ text: 'Im Urlaub', lang: 'de' }]);
      expect(d.persons[0]!.timestamp).to.equal('2024-07-01T08:00:00+02:00');
    });
  });

  describe('namespaces are resolved by URI, not by prefix', () => {
    it('any prefix for the data model and RPID', () => {
      const d = mustParse(
        pidf(
          `${tuple('t1')}<x:person xmlns:x="${DATA_MODEL_NS}" id="p"><r:activities xmlns:r="${RPID_NS}"><r:sleeping/></r:activities></x:person>`,
        ),
      );
      expect(d.persons[0]!.activities).to.deep.equal(['sleeping']);
    });

    it('`dm:` bound to another namespace is not the data model', () => {
      const d = mustParse(pidf(`${tuple('t1')}<dm:person xmlns:dm="urn:example:not-dm" id="p"/>`));
      expect(d.persons).to.deep.equal([]);
      expect(d.extensions).to.have.length(1);
      expect(d.extensions[0]!.ns).to.equal('urn:example:not-dm');
    });

    it('the same prefix rebound in nested scopes', () => {
      const doc = pidf(
        `<tuple id="t1" xmlns:p="urn:example:one"><status><basic>open</basic><p:a/></status>` +
          `<p:b xmlns:p="urn:example:two"><p:c/></p:b></tuple>`,
      );
      const t = mustParse(doc).tuples[0]!;
      const status = childElements(t.raw, PIDF_NS, 'status')[0]!;
      expect(childElements(status, 'urn:example:one', 'a')).to.have.length(1);
      const b = childElements(t.raw, 'urn:example:two', 'b')[0]!;
      expect(childElements(b, 'urn:example:two', 'c')).to.have.length(1);
    });

    it('a PIDF element inside an extension that undeclared the default namespace', () => {
      const doc = pidf(`<tuple id="t1"><status><basic>open</basic></status><x xmlns=""><note xmlns="${PIDF_NS}">in</note></x></tuple>`);
      const t = mustParse(doc).tuples[0]!;
      expect(t.notes).to.deep.equal([]);
      const x = childElements(t.raw, '', 'x')[0]!;
      expect(childElements(x, PIDF_NS, 'note')).to.have.length(1);
    });

    it('xml:lang on the root applies to the notes below it, and stays on copied elements', () => {
      const d = mustParse(pidf(`${tuple('t1', 'open', '<note>Hallo</note>')}<note>Tschüss</note>`, 'pres:a@example.com', ' xml:lang="de"'));
      expect(d.tuples[0]!.notes).to.deep.equal([{ text: 'Hallo', lang: 'de' }]);
      expect(d.notes).to.deep.equal([{ text: 'Tschüss', lang: 'de' }]);
      expect(attributeValue(d.tuples[0]!.raw, 'lang', 'http://www.w3.org/XML/1998/namespace')).to.equal('de');
    });

    it('entities and character references are decoded, CDATA is literal', () => {
      const d = mustParse(pidf(`${tuple('t1', 'open', '<note>a &amp; b &lt;c&gt; &#169; &#x1F600; <![CDATA[<raw> & ]]>x</note>')}`));
      expect(d.tuples[0]!.notes[0]!.text).to.equal('a & b <c> © 😀 <raw> & x');
    });

    it('a UTF-8 byte order mark and a line end before the declaration are tolerated', () => {
      expect(parsePidf(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(RFC3863_MINIMAL)])).ok).to.equal(true);
      expect(parsePidf(`\uFEFF${RFC3863_MINIMAL}`).ok).to.equal(true);
      expect(parsePidf(`\r\n${RFC3863_MINIMAL}`).ok).to.equal(true);
    });

    it('names that are JavaScript object keys are ordinary extension names', () => {
      const d = mustParse(
        pidf(`${tuple('t1', 'open', '<__proto__ xmlns="urn:x" constructor="1" toString="2"><constructor/><prototype/><hasOwnProperty/></__proto__>')}`),
      );
      const ext = childElements(d.tuples[0]!.raw, 'urn:x', '__proto__')[0]!;
      expect(attributeValue(ext, 'constructor')).to.equal('1');
      expect(ext.children.map((c) => (c.kind === 'element' ? c.local : ''))).to.deep.equal(['constructor', 'prototype', 'hasOwnProperty']);
      expect(({} as Record<string, unknown>)['1']).to.equal(undefined);
    });
  });

  describe('refusals', () => {
    const cases: Array<[what: string, doc: string | Buffer, reason: string]> = [
      ['a root that is not presence', '<tuple xmlns="urn:ietf:params:xml:ns:pidf" id="t"/>', 'Invalid PIDF: root element is not presence'],
      [
        'presence in another namespace',
        '<presence xmlns="urn:ietf:params:xml:ns:cpim-pidf" entity="pres:a@example.com"/>',
        'Invalid PIDF: root element is not presence',
      ],
      ['presence in no namespace', '<presence entity="pres:a@example.com"/>', 'Invalid PIDF: root element is not presence'],
      ['no entity', '<presence xmlns="urn:ietf:params:xml:ns:pidf"/>', 'Invalid PIDF: missing entity'],
      ['an entity that is no presentity URI', pidf('', 'http://example.com/'), 'Invalid PIDF: entity is not a pres, sip or sips URI'],
      ['an empty entity', pidf('', ''), 'Invalid PIDF: entity is not a pres, sip or sips URI'],
      ['a duplicate tuple id', pidf(tuple('t1') + tuple('t1')), 'Invalid PIDF: duplicate tuple id t1'],
      [
        'a person reusing a tuple id',
        pidf(`${tuple('x1')}<dm:person xmlns:dm="${DATA_MODEL_NS}" id="x1"/>`),
        'Invalid PIDF: duplicate person id x1',
      ],
      [
        'a duplicate device id',
        pidf(`<dm:device xmlns:dm="${DATA_MODEL_NS}" id="d"/><dm:device xmlns:dm="${DATA_MODEL_NS}" id="d"/>`),
        'Invalid PIDF: duplicate device id d',
      ],
      ['a tuple without id', pidf('<tuple><status><basic>open</basic></status></tuple>'), 'Invalid PIDF: tuple without id'],
      ['a tuple with an empty id', pidf('<tuple id=" "><status/></tuple>'), 'Invalid PIDF: tuple without id'],
      ['a person without id', pidf(`<dm:person xmlns:dm="${DATA_MODEL_NS}"/>`), 'Invalid PIDF: person without id'],
      ['a device without id', pidf(`<dm:device xmlns:dm="${DATA_MODEL_NS}"/>`), 'Invalid PIDF: device without id'],
      ['a tuple without status', pidf('<tuple id="t1"><contact>sip:a@example.com</contact></tuple>'), 'Invalid PIDF: tuple t1 has no status'],
      ['basic "unknown" (old baresip)', pidf(tuple('t1', 'unknown')), 'Invalid PIDF: basic status must be open or closed'],
      ['basic "Open"', pidf(tuple('t1', 'Open')), 'Invalid PIDF: basic status must be open or closed'],
      [
        'a bad basic inside a device status',
        pidf(`<dm:device xmlns:dm="${DATA_MODEL_NS}" id="d"><status><basic>on</basic></status></dm:device>`),
        'Invalid PIDF: basic status must be open or closed',
      ],
      ['two basics', pidf('<tuple id="t1"><status><basic>open</basic><basic>closed</basic></status></tuple>'), 'Invalid PIDF: more than one basic in status'],
      ['a bad tuple timestamp', pidf(tuple('t1', 'open', '<timestamp>yesterday</timestamp>')), 'Invalid PIDF: bad timestamp'],
      ['February 30th', pidf(tuple('t1', 'open', '<timestamp>2024-02-30T10:00:00Z</timestamp>')), 'Invalid PIDF: bad timestamp'],
      ['a timestamp without zone', pidf(tuple('t1', 'open', '<timestamp>2024-02-03T10:00:00</timestamp>')), 'Invalid PIDF: bad timestamp'],
      [
        'a bad person timestamp',
        pidf(`<dm:person xmlns:dm="${DATA_MODEL_NS}" id="p"><dm:timestamp>2024-13-01T00:00:00Z</dm:timestamp></dm:person>`),
        'Invalid PIDF: bad timestamp',
      ],
      [
        'a bad RPID until',
        pidf(
          `<dm:person xmlns:dm="${DATA_MODEL_NS}" xmlns:rpid="${RPID_NS}" id="p"><rpid:activities until="soon"><rpid:away/></rpid:activities></dm:person>`,
        ),
        'Invalid PIDF: bad timestamp',
      ],
      ['a bad contact priority', pidf(tuple('t1', 'open', '<contact priority="2">sip:a@example.com</contact>')), 'Invalid PIDF: bad contact priority'],
      [
        'a bad user-input',
        pidf(`<dm:device xmlns:dm="${DATA_MODEL_NS}" xmlns:rpid="${RPID_NS}" id="d"><rpid:user-input>asleep</rpid:user-input></dm:device>`),
        'Invalid PIDF: bad user-input',
      ],
      [
        'a bad time-offset',
        pidf(`<dm:person xmlns:dm="${DATA_MODEL_NS}" xmlns:rpid="${RPID_NS}" id="p"><rpid:time-offset>UTC+2</rpid:time-offset></dm:person>`),
        'Invalid PIDF: bad time-offset',
      ],
      ['an unknown PIDF element', pidf('<status/>'), 'Invalid PIDF: unexpected element status in presence'],
      ['a DOCTYPE', `<?xml version="1.0"?><!DOCTYPE presence SYSTEM "pidf.dtd">${pidf('').slice(39)}`, 'Invalid PIDF: DOCTYPE not allowed'],
      ['an ENTITY declaration', `<!ENTITY x "y">${pidf('').slice(39)}`, 'Invalid PIDF: ENTITY not allowed'],
      ['an undefined entity', pidf('<note>&nbsp;</note>'), 'Invalid PIDF: not well-formed XML'],
      ['a character reference to NUL', pidf('<note>&#0;</note>'), 'Invalid PIDF: not well-formed XML'],
      ['an unclosed element', pidf('<tuple id="t1">'), 'Invalid PIDF: not well-formed XML'],
      ['mismatched tags', pidf('<tuple id="t1"></tupel>'), 'Invalid PIDF: not well-formed XML'],
      ['two root elements', `${pidf('')}<presence/>`, 'Invalid PIDF: not well-formed XML'],
      ['text after the root', `${pidf('')}junk`, 'Invalid PIDF: not well-formed XML'],
      ['a control character', pidf('<note>\u0007</note>'), 'Invalid PIDF: not well-formed XML'],
      ['"<" in an attribute', pidf('<tuple id="a<b"><status/></tuple>'), 'Invalid PIDF: not well-formed XML'],
      ['a repeated attribute', pidf('<tuple id="a" id="b"><status/></tuple>'), 'Invalid PIDF: not well-formed XML'],
      [
        'one attribute twice under two prefixes',
        pidf('<tuple id="t" xmlns:a="urn:x" xmlns:b="urn:x" a:z="1" b:z="2"><status/></tuple>'),
        'Invalid PIDF: not well-formed XML',
      ],
      ['an undeclared prefix', pidf(tuple('t1', 'open', '<foo:bar/>')), 'Invalid PIDF: undeclared namespace prefix foo'],
      ['an undeclared attribute prefix', pidf('<tuple id="t1" foo:x="1"><status/></tuple>'), 'Invalid PIDF: undeclared namespace prefix foo'],
      ['undeclaring a prefix', pidf('<tuple id="t1" xmlns:p=""><status/></tuple>'), 'Invalid PIDF: bad namespace declaration'],
      ['rebinding xml:', pidf('<tuple id="t1" xmlns:xml="urn:x"><status/></tuple>'), 'Invalid PIDF: bad namespace declaration'],
      ['a Latin-1 document', `<?xml version="1.0" encoding="ISO-8859-1"?>${pidf('').slice(39)}`, 'Invalid PIDF: encoding must be UTF-8'],
      ['bytes that are not UTF-8', Buffer.from([...Buffer.from(pidf('<note>')), 0xc3, 0x28, ...Buffer.from('</note></presence>')]), 'Invalid PIDF: not UTF-8'],
      ['an empty body', '', 'Invalid PIDF: not well-formed XML'],
      ['plain text', 'open', 'Invalid PIDF: not well-formed XML'],
    ];
    for (const [what, doc, reason] of cases) {
      it(`refuses ${what}: "${reason}"`, () => {
        expect(refusal(doc)).to.equal(reason);
      });
    }

    it('refuses documents over the size limit (64 KiB by default)', () => {
      const big = pidf(tuple('t1', 'open', `<note>${'x'.repeat(70_000)}</note>`));
      expect(refusal(big)).to.equal('Invalid PIDF: document too large');
      expect(refusal(Buffer.from(big))).to.equal('Invalid PIDF: document too large');
      expect(parsePidf(big, { maxBytes: 100_000 }).ok).to.equal(true);
      expect(refusal(RFC3863_MINIMAL, { maxBytes: 100 })).to.equal('Invalid PIDF: document too large');
    });

    it('counts the size in bytes, not characters', () => {
      const doc = pidf(tuple('t1', 'open', `<note>${'é'.repeat(40_000)}</note>`));
      expect(doc.length).to.be.below(64 * 1024);
      expect(refusal(doc)).to.equal('Invalid PIDF: document too large');
    });

    it('refuses nesting deeper than the limit (32 by default)', () => {
      const nest = (n: number) => pidf(tuple('t1', 'open', `${'<x xmlns="urn:x">'.repeat(n)}${'</x>'.repeat(n)}`));
      // presence > tuple > 29 levels = 31 deep: fine; 31 levels = 33: refused.
      expect(parsePidf(nest(29)).ok).to.equal(true);
      expect(refusal(nest(31))).to.equal('Invalid PIDF: too deeply nested');
      expect(refusal(nest(3), { maxDepth: 4 })).to.equal('Invalid PIDF: too deeply nested');
      expect(parsePidf(nest(3), { maxDepth: 5 }).ok).to.equal(true);
    });

    it('contact priority: 0 to 1; extra decimals forgiven', () => {
      const prio = (p: string) => parsePidf(pidf(tuple('t1', 'open', `<contact priority="${p}">sip:a@example.com</contact>`)));
      for (const ok of ['0', '1', '0.5', '1.000', '.25', '0.800000']) expect(prio(ok).ok, ok).to.equal(true);
      for (const bad of ['1.5', '-0.1', 'high', '', '0x1', '1e0']) expect(prio(bad), bad).to.deep.equal({ ok: false, reason: 'Invalid PIDF: bad contact priority' });
    });

    it('a depth limit raised past 1000 is capped', () => {
      const nest = (n: number) => pidf(tuple('t1', 'open', `${'<x xmlns="urn:x">'.repeat(n)}${'</x>'.repeat(n)}`));
      expect(parsePidf(nest(900), { maxDepth: 5000, maxBytes: 1e6 }).ok).to.equal(true);
      expect(refusal(nest(2000), { maxDepth: 5000, maxBytes: 1e6 })).to.equal('Invalid PIDF: too deeply nested');
    });

    it('ignores nonsense limits and keeps the defaults', () => {
      expect(parsePidf(RFC3863_MINIMAL, { maxBytes: Number.NaN, maxDepth: -1 }).ok).to.equal(true);
    });

    it('keeps peer-supplied text in reasons short and printable (a SIP reason phrase)', () => {
      const id = `a\r\nX-Injected: 1 ${'z'.repeat(200)}`;
      const reason = refusal(pidf(tuple('&#13;&#10;x') + tuple('&#13;&#10;x')) + '');
      expect(reason).to.match(/^[\x20-\x7e]+$/);
      const long = refusal(pidf(tuple(id.replace(/\r\n/g, '&#13;&#10;')) + tuple(id.replace(/\r\n/g, '&#13;&#10;'))));
      expect(long).to.match(/^[\x20-\x7e]+$/);
      expect(long.length).to.be.below(80);
    });

    it('never throws on input of the wrong type', () => {
      for (const bad of [undefined, null, 42, {}, [], Symbol('x')]) {
        const r = parsePidf(bad as unknown as string);
        expect(r.ok).to.equal(false);
      }
    });
  });
});
