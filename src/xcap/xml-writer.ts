import { XML_NS } from '../presence/pidf/namespaces.js';
import { escapeAttribute, escapeText } from '../presence/pidf/xml-escape.js';
import type { XmlElement } from '../presence/pidf/xml-tree.js';

/**
 * Writes a namespace-resolved tree back out (a whole document, or an element fragment for
 * an XCAP element GET): the prefixes it was read with are kept where they do not clash,
 * every namespace is declared once on the top element, element order and text are kept.
 */
export function writeXml(top: XmlElement, options: { readonly declaration?: boolean; readonly hints?: ReadonlyMap<string, string> } = {}): string {
  const prefixes = assignPrefixes(top, options.hints);
  const out: string[] = [];
  if (options.declaration !== false) out.push('<?xml version="1.0" encoding="UTF-8"?>\n');
  const defaultNs = prefixes.get(top.ns) === '' ? top.ns : '';
  writeElement(out, top, prefixes, defaultNs, true);
  return out.join('');
}

/** Namespace URI to prefix ('' for the default namespace, the top element's when it had none). */
export function assignPrefixes(top: XmlElement, hints?: ReadonlyMap<string, string>): Map<string, string> {
  const wanted = new Map<string, string>();
  const attrNs = new Set<string>();
  const walk = (el: XmlElement) => {
    if (el.ns !== '' && !wanted.has(el.ns)) wanted.set(el.ns, el.prefix);
    for (const a of el.attributes) {
      if (a.ns === '' || a.ns === XML_NS) continue;
      attrNs.add(a.ns);
      if (!wanted.has(a.ns) || wanted.get(a.ns) === '') wanted.set(a.ns, a.prefix);
    }
    for (const c of el.children) if (c.kind === 'element') walk(c);
  };
  walk(top);
  const out = new Map<string, string>();
  const taken = new Set<string>();
  // The top element's namespace is the default one when it was written so (or had no prefix hint).
  if (top.ns !== '' && top.prefix === '' && !attrNs.has(top.ns)) {
    out.set(top.ns, '');
    taken.add('');
  }
  let n = 0;
  for (const [uri, hint] of wanted) {
    if (out.has(uri)) continue;
    let p = hint || hints?.get(uri) || '';
    if (p === '' || p === 'xml' || p === 'xmlns' || taken.has(p)) {
      const fromHints = hints?.get(uri);
      p = fromHints && !taken.has(fromHints) ? fromHints : '';
      while (p === '' || taken.has(p)) p = `ns${++n}`;
    }
    out.set(uri, p);
    taken.add(p);
  }
  return out;
}

function writeElement(out: string[], el: XmlElement, prefixes: ReadonlyMap<string, string>, inScopeDefault: string, top: boolean): void {
  const p = el.ns === '' ? '' : prefixes.get(el.ns)!;
  const name = p ? `${p}:${el.local}` : el.local;
  out.push('<', name);
  let scopeDefault = inScopeDefault;
  if (top) {
    for (const [uri, prefix] of prefixes) out.push(prefix ? ` xmlns:${prefix}="` : ' xmlns="', escapeAttribute(uri), '"');
  }
  // An unprefixed element takes the default namespace in scope: set it where it differs.
  if (p === '' && el.ns !== scopeDefault) {
    out.push(' xmlns="', escapeAttribute(el.ns), '"');
    scopeDefault = el.ns;
  }
  for (const a of el.attributes) {
    const ap = a.ns === '' ? '' : a.ns === XML_NS ? 'xml' : prefixes.get(a.ns)!;
    out.push(' ', ap ? `${ap}:${a.local}` : a.local, '="', escapeAttribute(a.value), '"');
  }
  if (el.children.length === 0) {
    out.push('/>');
    return;
  }
  out.push('>');
  for (const c of el.children) {
    if (c.kind === 'text') out.push(escapeText(c.text));
    else writeElement(out, c, prefixes, scopeDefault, false);
  }
  out.push('</', name, '>');
}
