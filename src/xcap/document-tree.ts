import type { XmlAttribute, XmlElement, XmlNode } from '../presence/pidf/xml-tree.js';
import { SelectorError, type NodeSelector, type QName, type Step } from './node-selector.js';

/**
 * RFC 4825 §6.3 evaluation of an element selector on a document, and the edits of §8.2
 * (replace, insert, remove an element; set, remove an attribute) as copies of the tree
 * along the changed path: the stored tree is never mutated, so a refused edit leaves
 * nothing behind.
 */

/** A step with its names resolved to namespace URIs (`undefined`: `*`). */
export interface ResolvedStep {
  readonly ns?: string;
  readonly local?: string;
  readonly position?: number;
  readonly attr?: { readonly ns: string; readonly local: string; readonly value: string };
}

export interface ResolvedSelector {
  readonly steps: readonly ResolvedStep[];
  readonly terminal?: { readonly kind: 'attribute'; readonly ns: string; readonly local: string } | { readonly kind: 'namespace' };
}

/**
 * RFC 4825 §6.3: a prefix is bound by the URI's query (`xmlns(p=urn:...)`, §6.4); an element
 * name without one is in the application usage's default document namespace; an attribute
 * name without one is in no namespace.
 */
export function resolveSelector(sel: NodeSelector, bindings: ReadonlyMap<string, string>, defaultNs: string): ResolvedSelector {
  const elementNs = (q: QName) => (q.prefix === '' ? defaultNs : bound(q.prefix));
  const attrNs = (q: QName) => (q.prefix === '' ? '' : bound(q.prefix));
  const bound = (prefix: string): string => {
    const uri = bindings.get(prefix);
    if (uri === undefined) throw new SelectorError(`prefix "${prefix}" has no xmlns() binding in the query`);
    return uri;
  };
  const steps = sel.steps.map((s: Step): ResolvedStep => ({
    ...(s.name ? { ns: elementNs(s.name), local: s.name.local } : {}),
    ...(s.position !== undefined ? { position: s.position } : {}),
    ...(s.attr ? { attr: { ns: attrNs(s.attr.name), local: s.attr.name.local, value: s.attr.value } } : {}),
  }));
  const t = sel.terminal;
  if (!t) return { steps };
  return { steps, terminal: t.kind === 'namespace' ? t : { kind: 'attribute', ns: attrNs(t.name), local: t.name.local } };
}

/** Child indexes from the root down (the root itself is index 0 of the document). */
export type ElementPath = readonly number[];

export type Location = { readonly kind: 'found'; readonly path: ElementPath } | { readonly kind: 'none' } | { readonly kind: 'many' };

function nameMatches(el: XmlElement, step: ResolvedStep): boolean {
  return (step.local === undefined || (el.local === step.local && el.ns === step.ns));
}

function attrMatches(el: XmlElement, step: ResolvedStep): boolean {
  const a = step.attr;
  return !a || el.attributes.some((x) => x.local === a.local && x.ns === a.ns && x.value === a.value);
}

/** Indexes (into `children`) of the elements one step selects among siblings. */
function selectAmong(children: readonly XmlNode[], step: ResolvedStep): number[] {
  const named: number[] = [];
  children.forEach((c, i) => {
    if (c.kind === 'element' && nameMatches(c, step)) named.push(i);
  });
  // XPath: the position counts the siblings the name matches, then the attribute test applies.
  const byPos = step.position !== undefined ? (named[step.position - 1] !== undefined ? [named[step.position - 1]!] : []) : named;
  return byPos.filter((i) => attrMatches(children[i] as XmlElement, step));
}

/** Finds the one element `steps` select; more than one is "many" (RFC 4825 §8.3: 404 for a read). */
export function locate(root: XmlElement, steps: readonly ResolvedStep[]): Location {
  let level: readonly XmlNode[] = [root];
  const path: number[] = [];
  for (const step of steps) {
    const hits = selectAmong(level, step);
    if (hits.length === 0) return { kind: 'none' };
    if (hits.length > 1) return { kind: 'many' };
    path.push(hits[0]!);
    level = (level[hits[0]!] as XmlElement).children;
  }
  return { kind: 'found', path };
}

export function elementAt(root: XmlElement, path: ElementPath): XmlElement {
  let el = root;
  for (let i = 1; i < path.length; i++) el = el.children[path[i]!] as XmlElement;
  return el;
}

/** The element chain from the root to `path` (for in-scope namespace hints). */
export function ancestorsOf(root: XmlElement, path: ElementPath): XmlElement[] {
  const out: XmlElement[] = [root];
  let el = root;
  for (let i = 1; i < path.length; i++) {
    el = el.children[path[i]!] as XmlElement;
    out.push(el);
  }
  return out;
}

/** A copy of `root` with the element at `path` rebuilt by `change` (undefined removes it). */
export function rebuild(root: XmlElement, path: ElementPath, change: (el: XmlElement) => XmlElement | undefined): XmlElement | undefined {
  const go = (el: XmlElement, depth: number): XmlElement | undefined => {
    if (depth === path.length) return change(el);
    const idx = path[depth]!;
    const child = go(el.children[idx] as XmlElement, depth + 1);
    const children = [...el.children];
    if (child) children[idx] = child;
    else children.splice(idx, 1);
    return { ...el, children };
  };
  return go(root, 1);
}

/**
 * Where a new element goes among `children` (RFC 4825 §8.2.3): with a position n, right after
 * the (n-1)th sibling the name matches (first among them for n = 1); without one, after the
 * last element child. The caller checks afterwards that the selector finds it there.
 */
export function insertionIndex(children: readonly XmlNode[], step: ResolvedStep): number {
  const named: number[] = [];
  const elements: number[] = [];
  children.forEach((c, i) => {
    if (c.kind !== 'element') return;
    elements.push(i);
    if (nameMatches(c, step)) named.push(i);
  });
  if (step.position !== undefined) {
    if (step.position === 1) return named.length > 0 ? named[0]! : elements.length > 0 ? elements[elements.length - 1]! + 1 : children.length;
    const before = named[step.position - 2];
    if (before !== undefined) return before + 1;
    return -1; // fewer siblings than position - 1: nowhere to put it
  }
  return elements.length > 0 ? elements[elements.length - 1]! + 1 : children.length;
}

export function withAttribute(el: XmlElement, attr: XmlAttribute): XmlElement {
  const i = el.attributes.findIndex((a) => a.local === attr.local && a.ns === attr.ns);
  const attributes = [...el.attributes];
  if (i >= 0) attributes[i] = { ...attributes[i]!, value: attr.value };
  else attributes.push(attr);
  return { ...el, attributes };
}

export function withoutAttribute(el: XmlElement, ns: string, local: string): XmlElement {
  return { ...el, attributes: el.attributes.filter((a) => !(a.local === local && a.ns === ns)) };
}

/** Element depth of a tree (the root counts 1). */
export function depthOf(el: XmlElement): number {
  let d = 0;
  for (const c of el.children) if (c.kind === 'element') d = Math.max(d, depthOf(c));
  return d + 1;
}
