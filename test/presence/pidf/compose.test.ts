import { expect } from 'chai';
import {
  composePresence,
  DATA_MODEL_NS,
  neutralPresence,
  PIDF_NS,
  RPID_NS,
  serializePidf,
  type PresenceDocument,
} from '../../../src/presence/pidf/index.js';
import { attributeValue, childElements, textContent, type XmlElement } from '../../../src/presence/pidf/xml-tree.js';
import { BARESIP, DOUBANGO, LINPHONE, pidf, RFC3863_EXTENDED, RFC4480_EXAMPLE, SIPJS_APP, tuple } from './fixtures.js';
import { mustParse } from './helpers.js';

const ENTITY = 'sip:alice@example.com';
const DM = `xmlns:dm="${DATA_MODEL_NS}"`;
const RPID = `xmlns:rpid="${RPID_NS}"`;

/** Composes, writes, and reads back: what a watcher receives. */
function roundTrip(pubs: Array<[doc: PresenceDocument, at: number]>): PresenceDocument {
  return mustParse(serializePidf(composePresence(ENTITY, pubs.map(([document, publishedAt]) => ({ document, publishedAt })))));
}

function descendants(el: XmlElement, ns: string, local: string): XmlElement[] {
  const out: XmlElement[] = [];
  for (const c of el.children) {
    if (c.kind !== 'element') continue;
    if (c.ns === ns && c.local === local) out.push(c);
    out.push(...descendants(c, ns, local));
  }
  return out;
}

describe('pidf: composePresence (RFC 4479 composition, newest wins)', () => {
  it('keeps the tuples of every publication, the newest first', () => {
    const a = mustParse(pidf(tuple('ta', 'closed')));
    const b = mustParse(pidf(tuple('tb', 'open')));
    const doc = composePresence(ENTITY, [
      { document: a, publishedAt: 1000 },
      { document: b, publishedAt: 2000 },
    ]);
    expect(doc.entity).to.equal(ENTITY);
    expect(doc.tuples.map((t) => t.id)).to.deep.equal(['tb', 'ta']);
  });

  it('a tuple id in two publications: the newest publication wins', () => {
    const older = mustParse(pidf(tuple('shared', 'open', '<note>old</note>')));
    const newer = mustParse(pidf(tuple('shared', 'closed', '<note>new</note>')));
    for (const order of [
      [
        { document: older, publishedAt: 1 },
        { document: newer, publishedAt: 2 },
      ],
      [
        { document: newer, publishedAt: 2 },
        { document: older, publishedAt: 1 },
      ],
    ]) {
      const doc = composePresence(ENTITY, order);
      expect(doc.tuples).to.have.length(1);
      expect(doc.tuples[0]).to.include({ id: 'shared', basic: 'closed' });
      expect(doc.tuples[0]!.notes).to.deep.equal([{ text: 'new' }]);
    }
  });

  it('equal publication times: the later one in the list is the newer', () => {
    const first = mustParse(pidf(tuple('t', 'open')));
    const second = mustParse(pidf(tuple('t', 'closed')));
    const doc = composePresence(ENTITY, [
      { document: first, publishedAt: 5 },
      { document: second, publishedAt: 5 },
    ]);
    expect(doc.tuples[0]!.basic).to.equal('closed');
  });

  it('keeps only the person of the newest publication that has one', () => {
    const person = (id: string, activity: string) =>
      `<dm:person ${DM} ${RPID} id="${id}"><rpid:activities><rpid:${activity}/></rpid:activities></dm:person>`;
    const oldest = mustParse(pidf(tuple('t1') + person('p-old', 'away')));
    const middle = mustParse(pidf(tuple('t2') + person('p-mid', 'meeting')));
    const newest = mustParse(pidf(tuple('t3')));
    const doc = roundTrip([
      [oldest, 100],
      [middle, 200],
      [newest, 300],
    ]);
    expect(doc.persons).to.have.length(1);
    expect(doc.persons[0]!.id).to.equal('p-mid');
    expect(doc.persons[0]!.activities).to.deep.equal(['meeting']);
    expect(doc.tuples.map((t) => t.id)).to.deep.equal(['t3', 't2', 't1']);
  });

  it('of several persons in one document, the latest stamped', () => {
    const doc = mustParse(
      pidf(
        `<dm:person ${DM} id="a"><dm:timestamp>2024-01-01T10:00:00Z</dm:timestamp></dm:person>` +
          `<dm:person ${DM} id="b"><dm:timestamp>2024-01-01T10:45:00+01:00</dm:timestamp></dm:person>` +
          `<dm:person ${DM} id="c"><dm:timestamp>2024-01-01T10:30:00Z</dm:timestamp></dm:person>`,
      ),
    );
    expect(composePresence(ENTITY, [{ document: doc, publishedAt: 1 }]).persons.map((p) => p.id)).to.deep.equal(['c']);
  });

  it('two devices from two publications are both kept; a shared device id goes to the newest', () => {
    const device = (id: string, urn: string, ui: string) =>
      `<dm:device ${DM} ${RPID} id="${id}"><rpid:user-input>${ui}</rpid:user-input><dm:deviceID>${urn}</dm:deviceID></dm:device>`;
    const phone = mustParse(pidf(tuple('tp', 'open', `<dm:deviceID ${DM}>urn:uuid:phone</dm:deviceID>`) + device('phone', 'urn:uuid:phone', 'active')));
    const laptop = mustParse(pidf(tuple('tl', 'open', `<dm:deviceID ${DM}>urn:uuid:laptop</dm:deviceID>`) + device('laptop', 'urn:uuid:laptop', 'idle')));
    const phoneLater = mustParse(pidf(device('phone', 'urn:uuid:phone', 'idle')));
    const doc = roundTrip([
      [phone, 1],
      [laptop, 2],
    ]);
    expect(doc.devices.map((d) => [d.id, d.deviceId, d.userInput?.state])).to.deep.equal([
      ['laptop', 'urn:uuid:laptop', 'idle'],
      ['phone', 'urn:uuid:phone', 'active'],
    ]);
    expect(doc.tuples.map((t) => [t.id, t.deviceId])).to.deep.equal([
      ['tl', 'urn:uuid:laptop'],
      ['tp', 'urn:uuid:phone'],
    ]);
    const later = roundTrip([
      [phone, 1],
      [laptop, 2],
      [phoneLater, 3],
    ]);
    expect(later.devices.map((d) => [d.id, d.userInput?.state])).to.deep.equal([
      ['phone', 'idle'],
      ['laptop', 'idle'],
    ]);
  });

  it('keeps every top-level note with its xml:lang, each once', () => {
    const a = mustParse(pidf(`${tuple('a')}<note xml:lang="en">Away</note><note xml:lang="fr">Absent</note><note>plain</note>`));
    const b = mustParse(pidf(`${tuple('b')}<note xml:lang="en">Away</note><note xml:lang="de">Weg</note><note xml:lang="fr">Away</note>`));
    const doc = roundTrip([
      [a, 1],
      [b, 2],
    ]);
    expect(doc.notes).to.deep.equal([
      { text: 'Away', lang: 'en' },
      { text: 'Weg', lang: 'de' },
      { text: 'Away', lang: 'fr' },
      { text: 'Absent', lang: 'fr' },
      { text: 'plain' },
    ]);
  });

  it('with no publication: the neutral document, never an error, the same for anyone', () => {
    const doc = composePresence(ENTITY, []);
    expect(doc).to.deep.equal(neutralPresence(ENTITY));
    const bytes = serializePidf(doc).toString('utf8');
    expect(bytes).to.equal(
      `<?xml version="1.0" encoding="UTF-8"?>\n<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="${ENTITY}"/>\n`,
    );
    // Whether or not the user exists, only the entity differs.
    const other = serializePidf(composePresence('sip:nobody-at-all@example.com', [])).toString('utf8');
    expect(other.replace('sip:nobody-at-all@example.com', ENTITY)).to.equal(bytes);
    expect(mustParse(bytes).tuples).to.deep.equal([]);
  });

  it('the entity is the presentity, whatever the publications said', () => {
    const doc = roundTrip([[mustParse(pidf(tuple('t'), 'pres:alice@example.com')), 1]]);
    expect(doc.entity).to.equal(ENTITY);
  });

  it('person and device ids that collide with a kept tuple id are renamed', () => {
    const a = mustParse(pidf(tuple('x')));
    const b = mustParse(pidf(`<dm:person ${DM} id="x"/>`));
    const c = mustParse(pidf(`<dm:device ${DM} id="x"><dm:deviceID>urn:d</dm:deviceID></dm:device>`));
    const doc = roundTrip([
      [a, 3],
      [b, 2],
      [c, 1],
    ]);
    expect(doc.tuples.map((t) => t.id)).to.deep.equal(['x']);
    expect(doc.persons.map((p) => p.id)).to.deep.equal(['x-2']);
    expect(doc.devices.map((d) => d.id)).to.deep.equal(['x-3']);
  });

  it('ignores publications without a document and non-finite times', () => {
    const a = mustParse(pidf(tuple('a')));
    const pubs = [{ document: a, publishedAt: Number.NaN }, undefined, { document: undefined, publishedAt: 3 }] as unknown as Parameters<
      typeof composePresence
    >[1];
    expect(composePresence(ENTITY, pubs).tuples.map((t) => t.id)).to.deep.equal(['a']);
  });

  describe('extension elements survive parse → compose → serialize → parse', () => {
    it('RFC 3863 status and top-level extensions, RPID, IMS/OMA extensions', () => {
      const doc = roundTrip([
        [mustParse(RFC3863_EXTENDED), 1],
        [mustParse(DOUBANGO), 2],
        [mustParse(RFC4480_EXAMPLE.replace(/bs35r9|ty4658|eg92n8/g, (m) => `${m}-2`)), 3],
      ]);
      const byId = new Map(doc.tuples.map((t) => [t.id, t]));
      const status = childElements(byId.get('bs35r9')!.raw, PIDF_NS, 'status')[0]!;
      expect(textContent(childElements(status, 'urn:ietf:params:xml:ns:pidf:im', 'im')[0]!)).to.equal('busy');
      expect(textContent(childElements(status, 'http://id.example.com/presence/', 'location')[0]!)).to.equal('home');
      expect(doc.extensions.map((e) => `{${e.ns}}${e.local}`)).to.deep.equal(['{http://id.example.com/presence/}mood']);
      // The newest person (RFC 4480) is the one kept, with all its RPID.
      expect(doc.persons[0]!.mood).to.deep.equal(['angry', 'brooding']);
      const placeIs = childElements(doc.persons[0]!.raw, RPID_NS, 'place-is')[0]!;
      expect(descendants(placeIs, RPID_NS, 'noisy')).to.have.length(1);
      expect(descendants(doc.persons[0]!.raw, 'urn:ietf:params:xml:ns:location-type', 'residence')).to.have.length(1);
      // The IMS device keeps its capabilities and OMA network element.
      const d0001 = doc.devices.find((d) => d.id === 'd0001')!;
      expect(descendants(d0001.raw, 'urn:ietf:params:xml:ns:pidf:caps', 'fixed')).to.have.length(1);
      const network = descendants(d0001.raw, 'urn:oma:xml:prs:pidf:oma-pres', 'network')[0]!;
      expect(attributeValue(network, 'id')).to.equal('IMS');
      // The RFC 4480 tuple extensions too.
      expect(descendants(byId.get('ty4658-2')!.raw, RPID_NS, 'assistant')).to.have.length(1);
      expect(byId.get('bs35r9-2')!.deviceId).to.equal('urn:device:0003ba4811e3');
    });

    it('one prefix for two namespaces, two prefixes for one namespace', () => {
      const a = mustParse(pidf(tuple('a', 'open', '<x:thing xmlns:x="urn:example:one" x:level="1">one</x:thing>')));
      const b = mustParse(pidf(tuple('b', 'open', '<x:thing xmlns:x="urn:example:two" x:level="2">two</x:thing>')));
      const c = mustParse(pidf(tuple('c', 'open', '<y:thing xmlns:y="urn:example:one" y:level="3">three</y:thing>')));
      const dmUnderOtherPrefix = mustParse(
        `<presence xmlns="${PIDF_NS}" xmlns:dm="urn:example:not-the-data-model" xmlns:pdm="${DATA_MODEL_NS}" entity="${ENTITY}">` +
          `${tuple('d', 'open', '<dm:x>not dm</dm:x>')}<pdm:person id="p"><pdm:note>hi</pdm:note></pdm:person></presence>`,
      );
      const text = serializePidf(
        composePresence(ENTITY, [
          { document: a, publishedAt: 1 },
          { document: b, publishedAt: 2 },
          { document: c, publishedAt: 3 },
          { document: dmUnderOtherPrefix, publishedAt: 4 },
        ]),
      ).toString('utf8');
      // The data model gets `dm:` and the stranger that used `dm:` gets another prefix.
      expect(text).to.include(`xmlns:dm="${DATA_MODEL_NS}"`);
      expect(text).to.include('<dm:person id="p">');
      const doc = mustParse(text);
      const byId = new Map(doc.tuples.map((t) => [t.id, t.raw]));
      const thing = (id: string, ns: string) => childElements(byId.get(id)!, ns, 'thing')[0]!;
      expect(textContent(thing('a', 'urn:example:one'))).to.equal('one');
      expect(attributeValue(thing('a', 'urn:example:one'), 'level', 'urn:example:one')).to.equal('1');
      expect(textContent(thing('b', 'urn:example:two'))).to.equal('two');
      expect(attributeValue(thing('b', 'urn:example:two'), 'level', 'urn:example:two')).to.equal('2');
      expect(textContent(thing('c', 'urn:example:one'))).to.equal('three');
      expect(textContent(childElements(byId.get('d')!, 'urn:example:not-the-data-model', 'x')[0]!)).to.equal('not dm');
      expect(doc.persons[0]!.notes).to.deep.equal([{ text: 'hi' }]);
    });

    it('default namespaces on inner elements, and elements in no namespace', () => {
      const src = mustParse(
        pidf(
          tuple('t', 'open', '<ext xmlns="urn:example:dflt"><inner a="1">v</inner></ext><bare xmlns=""><sub/></bare>') +
            `<person xmlns="${DATA_MODEL_NS}" id="p"><activities xmlns="${RPID_NS}"><steering/></activities></person>`,
        ),
      );
      const doc = roundTrip([[src, 1]]);
      const raw = doc.tuples[0]!.raw;
      const ext = childElements(raw, 'urn:example:dflt', 'ext')[0]!;
      expect(attributeValue(childElements(ext, 'urn:example:dflt', 'inner')[0]!, 'a')).to.equal('1');
      const bare = childElements(raw, '', 'bare')[0]!;
      expect(childElements(bare, '', 'sub')).to.have.length(1);
      expect(doc.persons[0]!.activities).to.deep.equal(['steering']);
    });

    it('real client documents compose into one valid document', () => {
      const doc = roundTrip([
        [mustParse(BARESIP), 1],
        [mustParse(LINPHONE), 2],
        [mustParse(SIPJS_APP), 3],
      ]);
      expect(doc.tuples.map((t) => t.id)).to.deep.equal(['tc3a1', ':3kq9z', 't4109']);
      expect(doc.persons.map((p) => p.id)).to.deep.equal(['pc3a1']);
    });
  });
});
