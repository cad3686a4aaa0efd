import { expect } from 'chai';
import { composePresence, neutralPresence, serializePidf, type PresenceDocument } from '../../../src/presence/pidf/index.js';
import { VALID_DOCUMENTS, pidf, tuple } from './fixtures.js';
import { mustParse } from './helpers.js';

/** The model without the preserved elements, to compare documents before and after writing. */
function model(doc: PresenceDocument): unknown {
  return JSON.parse(JSON.stringify({ ...doc, namespaces: undefined }, (k, v: unknown) => (k === 'raw' || k === 'extensions' ? undefined : v)));
}

describe('pidf: serializePidf', () => {
  for (const [name, text] of Object.entries(VALID_DOCUMENTS)) {
    it(`${name}: written and read back, the model is unchanged`, () => {
      const doc = mustParse(text);
      const again = mustParse(serializePidf(doc));
      expect(model(again)).to.deep.equal(model(doc));
      expect(again.extensions.length).to.equal(doc.extensions.length);
      // Writing is stable: the second generation is byte-identical.
      expect(serializePidf(again).equals(serializePidf(doc))).to.equal(true);
    });
  }

  it('writes UTF-8 with the declaration, PIDF as the default namespace', () => {
    const bytes = serializePidf(mustParse(pidf(tuple('t', 'open', '<note xml:lang="ja">会議中 😀</note>'))));
    const text = bytes.toString('utf8');
    expect(text.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n<presence xmlns="urn:ietf:params:xml:ns:pidf"')).to.equal(true);
    expect(Buffer.from(text, 'utf8').equals(bytes)).to.equal(true);
    expect(text).to.include('<note xml:lang="ja">会議中 😀</note>');
  });

  it('declares only the namespaces the content needs', () => {
    const text = serializePidf(mustParse(pidf(tuple('t')))).toString('utf8');
    expect(text).to.not.include('xmlns:');
  });

  it('escapes hostile values and drops what XML cannot carry', () => {
    const hostileEntity = serializePidf(neutralPresence('sip:"evil"&<x>@example.com\u0000\u0001')).toString('utf8');
    expect(hostileEntity).to.include('entity="sip:&quot;evil&quot;&amp;&lt;x&gt;@example.com"');
    const doc: PresenceDocument = {
      ...neutralPresence('sip:alice@example.com'),
      notes: [{ text: 'a < b && c > d ]]> \u0007\uFFFE!', lang: 'en"><script>' }],
    };
    expect(mustParse(serializePidf(doc)).notes).to.deep.equal([{ text: 'a < b && c > d ]]> !', lang: 'en"><script>' }]);
  });

  it('keeps text and attribute whitespace through escaping', () => {
    const doc = mustParse(pidf(tuple('t', 'open', '<x xmlns="urn:x" a="line&#10;two&#9;tab">keep\n  this&#13;</x>')));
    const again = mustParse(serializePidf(doc));
    const x = again.tuples[0]!.raw.children.find((c) => c.kind === 'element' && c.local === 'x');
    expect(x && x.kind === 'element' && x.attributes[0]!.value).to.equal('line\ntwo\ttab');
    expect(x && x.kind === 'element' && x.children[0]).to.deep.equal({ kind: 'text', text: 'keep\n  this\r' });
  });

  it('a composed document and its neutral form are both valid PIDF', () => {
    expect(mustParse(serializePidf(neutralPresence('pres:x@example.com'))).tuples).to.deep.equal([]);
    const doc = composePresence('pres:x@example.com', [{ document: mustParse(pidf(tuple('t'))), publishedAt: 1 }]);
    expect(mustParse(serializePidf(doc)).tuples[0]!.id).to.equal('t');
  });
});
