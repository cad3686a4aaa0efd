import { expect } from 'chai';
import { readXml } from '../../src/presence/pidf/read-xml.js';
import type { XmlElement } from '../../src/presence/pidf/xml-tree.js';
import { elementAt, insertionIndex, locate, rebuild, resolveSelector } from '../../src/xcap/document-tree.js';
import { parseNodeSelector, SelectorError, selectorText } from '../../src/xcap/node-selector.js';
import { parseBindings, parseXcapUri, XcapUriError } from '../../src/xcap/xcap-uri.js';
import { writeXml } from '../../src/xcap/xml-writer.js';

const RL = 'urn:ietf:params:xml:ns:resource-lists';
const DOC = `<?xml version="1.0" encoding="UTF-8"?>
<resource-lists xmlns="${RL}" xmlns:x="urn:example:ext">
  <list name="friends">
    <entry uri="sip:bob@example.com"><display-name>Bob</display-name></entry>
    <entry uri="sip:carol@example.com" x:tag="c"/>
    <x:note>first</x:note>
    <entry uri="sip:dave@example.com"/>
  </list>
  <list name="work"/>
</resource-lists>`;

function tree(): XmlElement {
  const r = readXml(DOC);
  if (!r.ok) throw new Error(r.reason);
  return r.root;
}

function select(sel: string, bindings: Record<string, string> = { x: 'urn:example:ext' }): ReturnType<typeof locate> {
  const resolved = resolveSelector(parseNodeSelector(sel), new Map(Object.entries(bindings)), RL);
  return locate(tree(), resolved.steps);
}

function textAt(sel: string): string {
  const r = select(sel);
  if (r.kind !== 'found') throw new Error(`${sel}: ${r.kind}`);
  return writeXml(elementAt(tree(), r.path), { declaration: false });
}

describe('xcap: URIs and node selectors (RFC 4825 §6)', () => {
  describe('parseXcapUri', () => {
    it('splits auid, tree, XUI, document path and node selector, decoding each part once', () => {
      const u = parseXcapUri('/resource-lists/users/sip:alice@example.com/index/~~/resource-lists/list%5b@name=%22a%2Fb%22%5d', 'xmlns(x=urn:example:ext)');
      expect(u).to.deep.include({ auid: 'resource-lists', scope: 'users', xui: 'sip:alice@example.com', documentPath: ['index'], nodeText: '/resource-lists/list[@name="a/b"]' });
      expect(u.bindings.get('x')).to.equal('urn:example:ext');
      expect(u.node!.steps[1]!.attr).to.deep.equal({ name: { prefix: '', local: 'name' }, value: 'a/b' });
      const g = parseXcapUri('/xcap-caps/global/index', '');
      expect(g).to.deep.include({ auid: 'xcap-caps', scope: 'global', documentPath: ['index'] });
      expect(g.xui).to.equal(undefined);
      // An encoded "/" stays inside its segment: a document name, not a folder.
      expect(parseXcapUri('/a/users/sip:u@h/dir%2Fdoc', '').documentPath).to.deep.equal(['dir/doc']);
    });

    it('refuses dot segments, empty segments, directories and bad escapes', () => {
      const bad: Array<[string, number]> = [
        ['/a/users/sip:u@h/%2e%2e', 404],
        ['/a/users/sip:u@h/./index', 404],
        ['/a/users/sip:u@h//index', 404],
        ['/a/users/sip:u@h/', 404],
        ['/a/users/', 404],
        ['/a/other/index', 404],
        ['/a/users/sip:u@h/%zz', 400],
        ['/a/users/sip:u@h/%00', 400],
        ['/a/users/sip:u@h/index/~~/list[', 400],
        ['/' + 'a/'.repeat(40) + 'x', 400],
      ];
      for (const [path, status] of bad) {
        try {
          parseXcapUri(path, '');
          expect.fail(`${path} parsed`);
        } catch (e) {
          expect(e, path).to.be.instanceOf(XcapUriError);
          expect((e as XcapUriError).status, path).to.equal(status);
        }
      }
    });

    it('reads xmlns() bindings (§6.4) and refuses anything else in the query', () => {
      expect([...parseBindings('xmlns(a=urn:a)xmlns(b=urn:b)')]).to.deep.equal([['a', 'urn:a'], ['b', 'urn:b']]);
      expect([...parseBindings('xmlns(a%3Durn:a)')]).to.deep.equal([['a', 'urn:a']]);
      expect(() => parseBindings('foo=bar')).to.throw(XcapUriError);
    });
  });

  describe('parseNodeSelector', () => {
    it('reads every step form and the terminal selectors, and prints them back', () => {
      for (const s of ['/a', '/*', '/a/b[2]', '/a/b[@c="d"]', `/a/b[@c='say "hi"']`, "/a/b[3][@p:c='d e']", '/a/p:b/@c', '/a/@p:c', '/a/b/namespace::*']) {
        const parsed = parseNodeSelector(s);
        expect(parseNodeSelector(selectorText(parsed)), s).to.deep.equal(parsed);
      }
      expect(parseNodeSelector('/a/b[2][@c="d"]/@e')).to.deep.equal({
        steps: [{ name: { prefix: '', local: 'a' } }, { name: { prefix: '', local: 'b' }, position: 2, attr: { name: { prefix: '', local: 'c' }, value: 'd' } }],
        terminal: { kind: 'attribute', name: { prefix: '', local: 'e' } },
      });
    });

    it('refuses malformed selectors with SelectorError', () => {
      for (const s of ['', 'a', '/', '//a', '/a//b', '/a[', '/a[0]', '/a[@b=c]', '/a[@b="c"', '/a/@b/c', '/@b', '/namespace::*', '/a/namespace::*/b', '/1a', '/a:b:c', '/a[1][2]', '/a[@b="c"][1]', `/${'a/'.repeat(40)}a`, '/' + 'a'.repeat(5000)]) {
        expect(() => parseNodeSelector(s), JSON.stringify(s)).to.throw(SelectorError);
      }
    });

    it('needs a binding for every prefix (§6.4)', () => {
      expect(() => resolveSelector(parseNodeSelector('/p:a'), new Map(), RL)).to.throw(SelectorError, /prefix "p"/);
    });
  });

  describe('evaluation (XPath subset)', () => {
    it('unprefixed names are the usage default namespace; positions count the siblings of that name', () => {
      expect(textAt('/resource-lists/list[@name="friends"]/entry[2]')).to.contain('carol');
      expect(textAt('/resource-lists/list[1]/*[3]')).to.contain('first');
      expect(textAt('/resource-lists/list[1]/entry[3]')).to.contain('dave');
      expect(textAt('/resource-lists/list[1]/x:note')).to.contain('first');
      expect(textAt('/resource-lists/*[2]')).to.contain('work');
    });

    it('a position then an attribute test: the nth of the name, if it has the attribute', () => {
      expect(select('/resource-lists/list[1]/entry[2][@uri="sip:carol@example.com"]').kind).to.equal('found');
      expect(select('/resource-lists/list[1]/entry[2][@uri="sip:bob@example.com"]').kind).to.equal('none');
    });

    it('more than one match is "many", none is "none"', () => {
      expect(select('/resource-lists/list[1]/entry').kind).to.equal('many');
      expect(select('/resource-lists/list[@name="nope"]').kind).to.equal('none');
      expect(select('/other').kind).to.equal('none');
    });

    it('insertion (§8.2.3): after the (n-1)th sibling of the name, or after the last element', () => {
      const list = elementAt(tree(), (select('/resource-lists/list[1]') as { path: readonly number[] }).path);
      const step = (s: string) => resolveSelector(parseNodeSelector(s), new Map(), RL).steps[0]!;
      const names = (at: number) => list.children.slice(0, at).filter((c) => c.kind === 'element').length;
      expect(names(insertionIndex(list.children, step('/entry[2]')))).to.equal(1);
      expect(names(insertionIndex(list.children, step('/entry')))).to.equal(4);
      expect(names(insertionIndex(list.children, step('/entry[1]')))).to.equal(0);
      expect(insertionIndex(list.children, step('/entry[9]'))).to.equal(-1);
    });
  });

  describe('writeXml', () => {
    it('writes the tree back with its prefixes, order and text, and reads back the same', () => {
      const out = writeXml(tree());
      const again = readXml(out);
      expect(again.ok && again.root).to.deep.equal(tree());
      expect(out).to.contain('x:tag="c"');
    });

    it('an element fragment declares what it uses; a changed tree stays namespace-well-formed', () => {
      const root = tree();
      const found = select('/resource-lists/list[1]/entry[2]') as { kind: 'found'; path: readonly number[] };
      expect(writeXml(elementAt(root, found.path), { declaration: false })).to.equal(`<entry xmlns="${RL}" xmlns:x="urn:example:ext" uri="sip:carol@example.com" x:tag="c"/>`);
      const noNs: XmlElement = { kind: 'element', ns: '', local: 'plain', prefix: '', attributes: [], children: [] };
      const changed = rebuild(root, found.path, (e) => ({ ...e, children: [noNs] }))!;
      const back = readXml(writeXml(changed));
      expect(back.ok && back.root).to.deep.equal(changed);
    });
  });
});
