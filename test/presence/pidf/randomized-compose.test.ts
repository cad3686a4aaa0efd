import { expect } from 'chai';
import { composePresence, DATA_MODEL_NS, RPID_NS, serializePidf, type PresenceDocument } from '../../../src/presence/pidf/index.js';
import type { XmlElement } from '../../../src/presence/pidf/xml-tree.js';
import { mustParse, prng } from './helpers.js';

/** The element with every name by namespace URI: what must survive whatever prefixes are used. */
function clark(el: XmlElement): string {
  const attrs = el.attributes
    .filter((a) => !(a.ns === 'http://www.w3.org/XML/1998/namespace' && a.local === 'lang'))
    .map((a) => `{${a.ns}}${a.local}=${JSON.stringify(a.value)}`)
    .sort()
    .join(' ');
  return `<{${el.ns}}${el.local} ${attrs}>${el.children.map((c) => (c.kind === 'text' ? JSON.stringify(c.text) : clark(c))).join('')}</>`;
}

const NAMESPACES = ['urn:example:a', 'urn:example:b', 'urn:example:c', DATA_MODEL_NS, RPID_NS, ''];
const PREFIXES = ['a', 'b', 'x', 'dm', 'rpid', 'ns1', 'p'];
const TEXTS = ['plain', 'a & b', '<tag>', '"quoted"', "it's", 'é', '😀', ' spaced ', 'x]]>y'];

function escape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** A random document of tuples carrying random extension trees under random prefixes. */
function randomDocument(rnd: () => number): string {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const rootBindings = new Map<string, string>();
  for (const p of PREFIXES) if (rnd() < 0.4) rootBindings.set(p, pick(NAMESPACES.filter((n) => n !== '')));

  function extension(scope: Map<string, string>, depth: number): string {
    const local = pick(['thing', 'item', 'value', 'x']);
    const decls: string[] = [];
    const inner = new Map(scope);
    let name: string;
    const how = rnd();
    if (how < 0.3 && inner.size > 0) {
      name = `${pick([...inner.keys()])}:${local}`;
    } else if (how < 0.6) {
      const p = pick(PREFIXES);
      const ns = pick(NAMESPACES.filter((n) => n !== ''));
      decls.push(`xmlns:${p}="${ns}"`);
      inner.set(p, ns);
      name = `${p}:${local}`;
    } else {
      // A default namespace of its own (possibly none at all).
      decls.push(`xmlns="${pick(NAMESPACES)}"`);
      name = local;
    }
    const attrs: string[] = [];
    if (rnd() < 0.5) attrs.push(`plain="${escape(pick(TEXTS))}"`);
    if (rnd() < 0.5 && inner.size > 0) {
      const p = pick([...inner.keys()]);
      attrs.push(`${p}:q="${escape(pick(TEXTS))}"`);
    }
    let content = '';
    const n = depth < 4 ? Math.floor(rnd() * 3) : 0;
    for (let i = 0; i < n; i++) content += rnd() < 0.5 ? escape(pick(TEXTS).trim() || 'y') : extension(inner, depth + 1);
    return `<${[name, ...decls, ...attrs].join(' ')}>${content}</${name}>`;
  }

  const ids = ['t1', 't2', 't3', 't4'].filter(() => rnd() < 0.6);
  const tuples = ids.map((id) => {
    const exts = Array.from({ length: 1 + Math.floor(rnd() * 2) }, () => extension(rootBindings, 1)).join('');
    return `<tuple id="${id}"><status><basic>${rnd() < 0.5 ? 'open' : 'closed'}</basic></status>${exts}</tuple>`;
  });
  const decls = [...rootBindings].map(([p, ns]) => `xmlns:${p}="${ns}"`).join(' ');
  return `<presence xmlns="urn:ietf:params:xml:ns:pidf" ${decls} entity="pres:r@example.com">${tuples.join('')}</presence>`;
}

describe('pidf: randomized composition with clashing prefixes', () => {
  it('300 compositions of 3 random publications: every kept tuple comes back identical by namespace', () => {
    const rnd = prng(20240229);
    for (let round = 0; round < 300; round++) {
      const docs: PresenceDocument[] = [];
      const texts: string[] = [];
      for (let k = 0; k < 3; k++) {
        const text = randomDocument(rnd);
        texts.push(text);
        docs.push(mustParse(text));
      }
      // Newest wins: publication k is published at time k.
      const expected = new Map<string, string>();
      for (const d of docs) for (const t of d.tuples) expected.set(t.id, clark(t.raw));
      const bytes = serializePidf(
        composePresence(
          'sip:r@example.com',
          docs.map((document, k) => ({ document, publishedAt: k })),
        ),
      );
      let back: PresenceDocument;
      try {
        back = mustParse(bytes);
      } catch (e) {
        throw new Error(`round ${round}: ${String(e)}\n${texts.join('\n')}\n---\n${bytes.toString('utf8')}`);
      }
      const got = new Map(back.tuples.map((t) => [t.id, clark(t.raw)]));
      expect(got, `round ${round}\n${texts.join('\n')}\n---\n${bytes.toString('utf8')}`).to.deep.equal(expected);
    }
  });
});
