import { expect } from 'chai';
import {
  flattenEntries,
  parseResourceLists,
  serializeResourceLists,
  type ResourceListsDocument,
  type ResourceListsLimits,
} from '../../src/lists/resource-lists.js';

/** RFC 4826 §3.3 shape: nested lists, entry-ref, external, display names. */
const RFC4826_EXAMPLE = `<?xml version="1.0" encoding="UTF-8"?>
<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"
 xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <list name="friends">
   <entry uri="sip:bill@example.com">
    <display-name>Bill Doe</display-name>
   </entry>
   <entry-ref ref="resource-lists/users/sip:bill@example.com/index/~~/resource-lists/list%5b@name=%22list1%22%5d/entry%5b@uri=%22sip:petri@example.com%22%5d"/>
   <list name="close-friends">
    <display-name>Close Friends</display-name>
    <entry uri="sip:joe@example.com">
     <display-name>Joe Smith</display-name>
    </entry>
    <entry uri="sip:nancy@example.com">
     <display-name xml:lang="en">Nancy Gross</display-name>
    </entry>
    <external anchor="http://xcap.example.org/resource-lists/users/sip:a@example.org/index/~~/resource-lists/list%5b@name=%22mkting%22%5d">
      <display-name>Marketing</display-name>
    </external>
   </list>
  </list>
</resource-lists>
`;

/** As liblinphone sends a friend list (RFC 5367 body), with the RFC 5364 copy control extension. */
const LINPHONE_STYLE = `<?xml version="1.0" encoding="UTF-8"?>
<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists" xmlns:cp="urn:ietf:params:xml:ns:copycontrol">
<list>
<entry uri="sip:alice@example.com" cp:copyControl="to"/>
<entry uri="sip:bob@example.com;transport=tcp" cp:copyControl="bcc" cp:anonymize="true"/>
</list>
</resource-lists>
`;

function mustParse(body: string | Buffer, limits?: ResourceListsLimits): ResourceListsDocument {
  const r = parseResourceLists(body, limits);
  if (!r.ok) expect.fail(`expected a valid resource-lists document, got "${r.reason}"`);
  return r.document;
}

function refusal(body: string | Buffer, limits?: ResourceListsLimits): { reason: string; tooLarge: boolean } {
  const r = parseResourceLists(body, limits);
  if (r.ok) expect.fail('expected a refusal');
  return { reason: r.reason, tooLarge: r.tooLarge };
}

const doc = (inner: string, extraNs = ''): string =>
  `<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"${extraNs}>${inner}</resource-lists>`;

describe('lists: resource-lists documents (RFC 4826 §3, RFC 5364)', () => {
  it('reads the RFC 4826 example: nested lists, entry-ref, external, display names with xml:lang', () => {
    const d = mustParse(RFC4826_EXAMPLE);
    expect(d.lists).to.have.length(1);
    const friends = d.lists[0]!;
    expect(friends.name).to.equal('friends');
    expect(friends.members.map((m) => m.kind)).to.deep.equal(['entry', 'entry-ref', 'list']);
    expect(friends.members[0]).to.deep.equal({ kind: 'entry', uri: 'sip:bill@example.com', displayName: { text: 'Bill Doe' } });
    const close = friends.members[2]!;
    if (close.kind !== 'list') expect.fail('nested list expected');
    expect(close.name).to.equal('close-friends');
    expect(close.displayName).to.deep.equal({ text: 'Close Friends' });
    expect(close.members[1]).to.deep.equal({ kind: 'entry', uri: 'sip:nancy@example.com', displayName: { text: 'Nancy Gross', lang: 'en' } });
    expect(close.members[2]).to.include({ kind: 'external' });
  });

  it('keeps RFC 5364 copyControl and anonymize on entries', () => {
    const d = mustParse(LINPHONE_STYLE);
    expect(d.lists[0]!.members).to.deep.equal([
      { kind: 'entry', uri: 'sip:alice@example.com', copyControl: 'to' },
      { kind: 'entry', uri: 'sip:bob@example.com;transport=tcp', copyControl: 'bcc', anonymize: true },
    ]);
  });

  it('writes documents that read back the same (both examples)', () => {
    for (const text of [RFC4826_EXAMPLE, LINPHONE_STYLE]) {
      const d = mustParse(text);
      expect(mustParse(serializeResourceLists(d))).to.deep.equal(d);
    }
  });

  it('escapes hostile display names and URIs when writing', () => {
    const d: ResourceListsDocument = {
      lists: [{ kind: 'list', name: 'a"<b', members: [{ kind: 'entry', uri: 'sip:x@example.com?h=a&b=<c>', displayName: { text: '</display-name><x>&\u0001' } }] }],
    };
    const again = mustParse(serializeResourceLists(d));
    expect(again.lists[0]!.name).to.equal('a"<b');
    expect(again.lists[0]!.members[0]).to.deep.equal({ kind: 'entry', uri: 'sip:x@example.com?h=a&b=<c>', displayName: { text: '</display-name><x>&' } });
  });

  it('flattens nested lists into unique resources in document order, references aside', () => {
    const d = mustParse(
      doc(`<list><entry uri="sip:a@example.com"/><list><entry uri="sip:B@Example.COM"/><entry uri="sip:a@EXAMPLE.com;transport=tcp"/></list>
        <entry-ref ref="r1"/></list><list><external anchor="http://x.example/l"/><entry uri="sip:c@example.com"><display-name>C</display-name></entry></list>`),
    );
    const f = flattenEntries(d);
    expect(f.entries).to.deep.equal([{ uri: 'sip:a@example.com' }, { uri: 'sip:B@Example.COM' }, { uri: 'sip:c@example.com', displayName: 'C' }]);
    expect(f.entryRefs).to.deep.equal(['r1']);
    expect(f.externals).to.deep.equal(['http://x.example/l']);
    expect(f.truncated).to.equal(0);
    const cut = flattenEntries(d, 2);
    expect(cut.entries.map((e) => e.uri)).to.deep.equal(['sip:a@example.com', 'sip:B@Example.COM']);
    expect(cut.truncated).to.equal(1);
  });

  it('refuses duplicate URIs in one list (RFC 4826 §3.4.1) unless asked to drop them', () => {
    const body = doc('<list><entry uri="sip:a@example.com"/><entry uri="sip:a@example.com;transport=udp"/></list>');
    expect(refusal(body)).to.deep.equal({ reason: 'duplicate entry uri', tooLarge: false });
    expect(mustParse(body, { duplicates: 'drop' }).lists[0]!.members).to.deep.equal([{ kind: 'entry', uri: 'sip:a@example.com' }]);
    expect(refusal(doc('<list name="x"/><list name="x"/>')).reason).to.equal('duplicate list name');
    expect(refusal(doc('<list><entry-ref ref="a"/><entry-ref ref="a"/></list>')).reason).to.equal('duplicate entry-ref');
    // The same URI in two different lists is fine.
    expect(mustParse(doc('<list><entry uri="sip:a@example.com"/></list><list><entry uri="sip:a@example.com"/></list>')).lists).to.have.length(2);
  });

  it('bounds members, nesting and size: 413-class refusals for size, 400-class for shape', () => {
    const many = doc(`<list>${Array.from({ length: 11 }, (_, i) => `<entry uri="sip:u${i}@example.com"/>`).join('')}</list>`);
    expect(refusal(many, { maxMembers: 10 })).to.deep.equal({ reason: 'too many members', tooLarge: true });
    expect(mustParse(many, { maxMembers: 11 }).lists[0]!.members).to.have.length(11);
    const deep = (n: number): string => doc('<list>'.repeat(n) + '</list>'.repeat(n));
    expect(mustParse(deep(4), { maxListDepth: 4 }).lists).to.have.length(1);
    expect(refusal(deep(5), { maxListDepth: 4 }).tooLarge).to.equal(false);
    expect(refusal(deep(5000)).tooLarge).to.equal(false);
    expect(refusal(many, { maxBytes: 100 })).to.deep.equal({ reason: 'document too large', tooLarge: true });
  });

  it('refuses what is not a resource-lists document, with a short reason', () => {
    const cases: Array<[string, string]> = [
      ['<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@b"/>', 'root element is not resource-lists'],
      [doc('<entry uri="sip:a@example.com"/>'), 'unexpected element entry'],
      [doc('<list><entry/></list>'), 'entry without uri'],
      [doc('<list><entry uri="  "/></list>'), 'empty uri'],
      [doc('<list><entry uri="sip:a b@example.com"/></list>'), 'bad uri'],
      [doc(`<list><entry uri="sip:${'a'.repeat(2000)}@example.com"/></list>`), 'uri too long'],
      [doc('<list><entry uri="sip:a@example.com" cp:copyControl="from"/></list>', ' xmlns:cp="urn:ietf:params:xml:ns:copycontrol"'), 'bad copyControl'],
      [doc('<list><entry uri="sip:a@example.com"/><display-name>late</display-name></list>'), 'misplaced display-name'],
      [doc('<list><entry uri="sip:a@example.com"><entry uri="sip:b@example.com"/></entry></list>'), 'unexpected element in entry'],
      ['<!DOCTYPE x [<!ENTITY a "b">]>' + doc('<list/>'), 'DOCTYPE not allowed'],
      [doc('<list>'), 'not well-formed XML'],
    ];
    for (const [body, reason] of cases) expect(refusal(body).reason, body.slice(0, 80)).to.equal(reason);
  });

  it('ignores extension elements of other namespaces (RFC 4826 §3.2 extensibility)', () => {
    const d = mustParse(doc('<x:meta xmlns:x="urn:example:x"/><list><x:tag xmlns:x="urn:example:x"/><entry uri="sip:a@example.com"/></list>'));
    expect(flattenEntries(d).entries).to.deep.equal([{ uri: 'sip:a@example.com' }]);
  });
});
