import { expect } from 'chai';
import { readXml } from '../../src/presence/pidf/read-xml.js';
import type { XmlElement } from '../../src/presence/pidf/xml-tree.js';
import { entriesOfListElement, listsOfDocument, renderLists, sameList } from '../../src/xcap/usages/resource-lists.js';
import { composeGlobal, servicesOfDocument } from '../../src/xcap/usages/rls-services.js';
import { XcapConflict, type XcapErrorCondition } from '../../src/xcap/xcap-error.js';

const RL = 'urn:ietf:params:xml:ns:resource-lists';
const RS = 'urn:ietf:params:xml:ns:rls-services';
const ALICE = 'sip:alice@example.com';

function root(xml: string): XmlElement {
  const r = readXml(xml);
  if (!r.ok) throw new Error(r.reason);
  return r.root;
}

function refusal(f: () => unknown): XcapErrorCondition {
  try {
    f();
  } catch (e) {
    if (e instanceof XcapConflict) return e.condition;
    throw e;
  }
  throw new Error('accepted');
}

const rl = (body: string) => `<resource-lists xmlns="${RL}">${body}</resource-lists>`;
const rs = (body: string) => `<rls-services xmlns="${RS}" xmlns:rl="${RL}">${body}</rls-services>`;

describe('xcap: resource-lists documents and the stored lists (RFC 4826 §3)', () => {
  it('maps each top-level list to a stored list: name, display name, entries of nested lists flattened in document order, each once', () => {
    const lists = listsOfDocument(
      root(rl('<list name="presence"><display-name>Buddies</display-name><entry uri="sip:bob@example.com"><display-name>Bob</display-name></entry><list name="w"><entry uri="sip:carol@example.com"/><entry uri="sip:bob@example.com"/></list></list><list name="empty"/>')),
    );
    expect(lists).to.deep.equal([
      { name: 'presence', displayName: 'Buddies', entries: [{ uri: 'sip:bob@example.com', displayName: 'Bob' }, { uri: 'sip:carol@example.com' }] },
      { name: 'empty', entries: [] },
    ]);
  });

  it('refuses repeated names among siblings and repeated entries in one list with a node selector and an alt-value (RFC 4825 §11.2)', () => {
    expect(refusal(() => listsOfDocument(root(rl('<list name="a"/><list name="b"/><list name="a"/>'))))).to.deep.equal({ kind: 'uniqueness-failure', field: '/rl:resource-lists/rl:list[3]/@name', altValues: ['a-2'] });
    const nested = refusal(() => listsOfDocument(root(rl('<list name="a"><list name="x"/><list name="x"/></list>'))));
    expect(nested).to.include({ kind: 'uniqueness-failure', field: '/rl:resource-lists/rl:list[1]/rl:list[2]/@name' });
    // Entries are compared as the RLS subscribes to them: sip:bob@EXAMPLE.com is sip:bob@example.com.
    const entries = refusal(() => listsOfDocument(root(rl('<list name="a"><entry uri="sip:bob@example.com"/><entry uri="sip:bob@EXAMPLE.com"/></list>'))));
    expect(entries).to.include({ kind: 'uniqueness-failure', field: '/rl:resource-lists/rl:list[1]/rl:entry[2]/@uri' });
    // The same name in different parents is fine (§3.4.5: unique within a parent).
    expect(listsOfDocument(root(rl('<list name="a"><list name="x"/></list><list name="x"/>'))).map((l) => l.name)).to.deep.equal(['a', 'x']);
  });

  it('refuses what a stored list cannot be: unnamed or badly named top-level lists, entry-ref and external, another root', () => {
    expect(refusal(() => listsOfDocument(root(rl('<list/>'))))).to.include({ kind: 'constraint-failure' });
    expect(refusal(() => listsOfDocument(root(rl('<list name="a b"/>'))))).to.include({ kind: 'constraint-failure' });
    expect(refusal(() => listsOfDocument(root(rl('<list name="a"><entry-ref ref="resource-lists/users/sip:x@y/index/~~/resource-lists/list%5b1%5d/entry%5b1%5d"/></list>'))))).to.include({ kind: 'constraint-failure' });
    expect(refusal(() => listsOfDocument(root(rl('<list name="a"><external anchor="http://example.org/l"/></list>'))))).to.include({ kind: 'constraint-failure' });
    expect(refusal(() => listsOfDocument(root(`<lists xmlns="${RL}"/>`)))).to.include({ kind: 'schema-validation-error' });
    expect(refusal(() => listsOfDocument(root(rl('<list name="a"><entry/></list>'))))).to.include({ kind: 'schema-validation-error' });
  });

  it("follows <external> to a list of the owner's own document (RCS/OMA oma_buddylist), refusing others and loops", () => {
    const anchor = (owner: string, name: string) => `http://xcap.example.com/services/resource-lists/users/${owner}/index/~~/resource-lists/list%5b@name=%22${name}%22%5d`;
    const doc = rl(`<list name="rcs"><entry uri="sip:bob@example.com"/><entry uri="sip:carol@example.com"/></list><list name="oma_buddylist"><entry uri="sip:bob@example.com"/><external anchor="${anchor(ALICE, 'rcs')}"/></list>`);
    expect(listsOfDocument(root(doc), ALICE).find((l) => l.name === 'oma_buddylist')!.entries).to.deep.equal([{ uri: 'sip:bob@example.com' }, { uri: 'sip:carol@example.com' }]);
    // Without an owner, or into another user's document, or to a list that is not there: refused.
    expect(refusal(() => listsOfDocument(root(doc)))).to.include({ kind: 'constraint-failure' });
    expect(refusal(() => listsOfDocument(root(doc.replace(anchor(ALICE, 'rcs'), anchor('sip:bob@example.com', 'rcs'))), ALICE))).to.include({ kind: 'constraint-failure' });
    expect(refusal(() => listsOfDocument(root(doc.replace(anchor(ALICE, 'rcs'), anchor(ALICE, 'nope'))), ALICE))).to.include({ kind: 'constraint-failure' });
    const loop = rl(`<list name="a"><external anchor="${anchor(ALICE, 'b')}"/></list><list name="b"><external anchor="${anchor(ALICE, 'a')}"/></list>`);
    expect(refusal(() => listsOfDocument(root(loop), ALICE)).phrase).to.match(/nested more than 4 deep/);
  });

  it('renders stored lists as a document that reads back to the same lists', () => {
    const lists = [
      { name: 'presence', displayName: 'B & co', entries: [{ uri: 'sip:bob@example.com', displayName: 'Bob <b>' }] },
      { name: 'family', entries: [] },
    ];
    const doc = renderLists(lists).toString('utf8');
    expect(doc.indexOf('name="family"')).to.be.lessThan(doc.indexOf('name="presence"'));
    const back = listsOfDocument(root(doc));
    for (const l of lists) expect(sameList(back.find((b) => b.name === l.name)!, l), l.name).to.equal(true);
    expect(sameList(lists[0]!, { ...lists[0]!, entries: [] })).to.equal(false);
  });
});

describe('xcap: rls-services documents (RFC 4826 §4)', () => {
  it('reads services: the list they are, a resource-list reference or an inline list, presence only', () => {
    const services = servicesOfDocument(
      root(rs('<service uri="sip:alice+presence@example.com"><resource-list>http://x/xcap-root/resource-lists/users/sip:alice@example.com/index/~~/resource-lists/list%5b@name=%22oma_buddylist%22%5d</resource-list><packages><package>presence</package></packages></service><service uri="sip:alice+team@EXAMPLE.com"><rl:list><rl:entry uri="sip:bob@example.com"/></rl:list></service>')),
      ALICE,
    );
    expect(services.map((s) => `${s.name} ${s.resourceList !== undefined ? 'ref' : 'inline'}`)).to.deep.equal(['presence ref', 'team inline']);
    // SIP SIMPLE asks for presence and dialog: accepted (presence is served).
    expect(servicesOfDocument(root(rs('<service uri="sip:alice+b@example.com"><rl:list/><packages><package>presence</package><package>dialog</package></packages></service>')), ALICE)).to.have.length(1);
    expect(entriesOfListElement(services[1]!.list!)).to.deep.equal([{ uri: 'sip:bob@example.com' }]);
  });

  it('refuses services of other users, other domains, plain URIs, other packages, no list, two lists, repeated URIs', () => {
    const cases: Array<[string, string]> = [
      ['<service uri="sip:bob+x@example.com"><rl:list/></service>', 'constraint-failure'],
      ['<service uri="sip:alice+x@example.org"><rl:list/></service>', 'constraint-failure'],
      ['<service uri="sip:alice@example.com"><rl:list/></service>', 'constraint-failure'],
      ['<service uri="sip:alice+x@example.com"><rl:list/><packages><package>dialog</package></packages></service>', 'constraint-failure'],
      ['<service uri="sip:alice+x@example.com"><packages><package>presence</package></packages></service>', 'schema-validation-error'],
      ['<service uri="sip:alice+x@example.com"><rl:list/><packages/></service>', 'constraint-failure'],
      ['<service uri="sip:alice+x@example.com"><rl:list/><rl:list/></service>', 'schema-validation-error'],
      ['<service><rl:list/></service>', 'schema-validation-error'],
      ['<other/>', 'schema-validation-error'],
      ['<service uri="sip:alice+x@example.com"><rl:list/></service><service uri="sip:alice+x@example.com"><rl:list/></service>', 'uniqueness-failure'],
    ];
    for (const [body, kind] of cases) expect(refusal(() => servicesOfDocument(root(rs(body)), ALICE)).kind, body).to.equal(kind);
  });

  it('composes the global index of the users documents, skipping what does not read', () => {
    const g = composeGlobal([rs('<service uri="sip:alice+a@example.com"><rl:list/></service>'), 'not xml', rs('<service uri="sip:bob+b@example.com"><rl:list/></service>')]).toString('utf8');
    const services = root(g).children.filter((c) => c.kind === 'element');
    expect(services.map((s) => (s as XmlElement).attributes[0]!.value)).to.deep.equal(['sip:alice+a@example.com', 'sip:bob+b@example.com']);
  });
});
