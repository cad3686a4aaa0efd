import { PIDF_NS, PREFERRED_PREFIXES, XML_NS } from './namespaces.js';
import type { Note, PresenceDocument } from './presence-document.js';
import { escapeAttribute, escapeText } from './xml-escape.js';
import type { XmlElement } from './xml-tree.js';
import { ownedBytes } from '../owned-bytes.js';

/**
 * Writes a PIDF document (RFC 3863 §4) as UTF-8 bytes.
 *
 * The elements copied into a composed document come from different publications, which
 * may have used different prefixes for one namespace or one prefix for different
 * namespaces. Prefixes are therefore normalised: every element and attribute carries
 * its namespace URI, the writer picks one prefix per URI for the whole document (the
 * usual `dm`, `rpid`... for the namespaces we know, the publisher's own prefix when it is
 * free, `ns1`, `ns2`... otherwise), declares them all on `presence`, and PIDF elements go
 * in the default namespace. (A prefix quoted inside text or attribute content, which no
 * presence extension we know does, keeps its meaning only when the publisher's prefix
 * could be kept.)
 */
export function serializePidf(doc: PresenceDocument): Buffer {
  // Composed and neutral documents are cached per presentity: bytes of their own (owned-bytes.ts).
  return ownedBytes(pidfText(doc));
}

/** The same document as a string (what `serializePidf` encodes). */
export function pidfText(doc: PresenceDocument): string {
  const elements: XmlElement[] = [];
  for (const t of doc.tuples) elements.push(t.raw);
  for (const p of doc.persons) elements.push(p.raw);
  for (const d of doc.devices) elements.push(d.raw);
  for (const e of doc.extensions) elements.push(e);
  const prefixes = assignPrefixes(elements);

  const out: string[] = ['<?xml version="1.0" encoding="UTF-8"?>\n<presence xmlns="', PIDF_NS, '"'];
  for (const [uri, prefix] of prefixes) out.push(' xmlns:', prefix, '="', escapeAttribute(uri), '"');
  out.push(' entity="', escapeAttribute(doc.entity), '"');
  const empty = elements.length === 0 && doc.notes.length === 0;
  if (empty) {
    out.push('/>\n');
    return out.join('');
  }
  out.push('>\n');
  // RFC 3863 §4.1: tuples, then notes, then the extensions (person and device among them).
  for (const t of doc.tuples) writeTop(out, t.raw, prefixes);
  for (const n of doc.notes) writeNote(out, n);
  for (const p of doc.persons) writeTop(out, p.raw, prefixes);
  for (const d of doc.devices) writeTop(out, d.raw, prefixes);
  for (const e of doc.extensions) writeTop(out, e, prefixes);
  out.push('</presence>\n');
  return out.join('');
}

function writeTop(out: string[], el: XmlElement, prefixes: ReadonlyMap<string, string>): void {
  out.push(' ');
  writeElement(out, el, prefixes, PIDF_NS);
  out.push('\n');
}

function writeNote(out: string[], note: Note): void {
  out.push(' <note');
  if (note.lang !== undefined) out.push(' xml:lang="', escapeAttribute(note.lang), '"');
  out.push('>', escapeText(note.text), '</note>\n');
}

/** Namespaces needing a prefix in an element's subtree, with the prefix it was written with. */
type NamespaceUse = ReadonlyArray<readonly [uri: string, hint: string]>;

// Elements are immutable once read, so what each subtree uses is worked out once.
const usesCache = new WeakMap<XmlElement, NamespaceUse>();

function namespaceUse(el: XmlElement): NamespaceUse {
  let use = usesCache.get(el);
  if (!use) {
    const found = new Map<string, string>();
    collect(el, found);
    use = [...found];
    usesCache.set(el, use);
  }
  return use;
}

function collect(el: XmlElement, found: Map<string, string>): void {
  // PIDF elements and unqualified ones are written without a prefix.
  if (el.ns !== PIDF_NS && el.ns !== '' && el.ns !== XML_NS && !found.has(el.ns)) found.set(el.ns, el.prefix);
  for (const a of el.attributes) {
    if (a.ns !== '' && a.ns !== XML_NS && !found.has(a.ns)) found.set(a.ns, a.prefix);
  }
  for (const c of el.children) if (c.kind === 'element') collect(c, found);
}

/** Namespaces in XML §3: prefixes starting with "xml" are reserved. */
const RESERVED = /^xml/i;

/** One prefix per namespace URI for the whole document. */
function assignPrefixes(elements: readonly XmlElement[]): Map<string, string> {
  const uses: Array<readonly [string, string]> = [];
  const seen = new Set<string>();
  for (const el of elements) {
    for (const u of namespaceUse(el)) {
      if (!seen.has(u[0])) {
        seen.add(u[0]);
        uses.push(u);
      }
    }
  }
  const byUri = new Map<string, string>();
  const taken = new Set<string>();
  // The namespaces we know keep their usual prefixes first, so no stranger takes them.
  for (const [uri] of uses) {
    const preferred = PREFERRED_PREFIXES.get(uri);
    if (preferred !== undefined && !taken.has(preferred)) {
      byUri.set(uri, preferred);
      taken.add(preferred);
    }
  }
  let n = 0;
  for (const [uri, hint] of uses) {
    if (byUri.has(uri)) continue;
    let prefix = hint;
    if (prefix === '' || RESERVED.test(prefix) || taken.has(prefix)) {
      do prefix = `ns${++n}`;
      while (taken.has(prefix));
    }
    byUri.set(uri, prefix);
    taken.add(prefix);
  }
  return byUri;
}

function writeElement(out: string[], el: XmlElement, prefixes: ReadonlyMap<string, string>, defaultNs: string): void {
  let name: string;
  let inScope = defaultNs;
  out.push('<');
  if (el.ns === PIDF_NS || el.ns === '') {
    name = el.local;
    out.push(name);
    // Only the default namespace can hold PIDF and unqualified elements: switch it when needed.
    if (el.ns !== defaultNs) {
      out.push(' xmlns="', escapeAttribute(el.ns), '"');
      inScope = el.ns;
    }
  } else {
    // Namespaces in XML §3: the XML namespace is always `xml:` and never declared.
    name = el.ns === XML_NS ? `xml:${el.local}` : `${prefixes.get(el.ns)}:${el.local}`;
    out.push(name);
  }
  for (const a of el.attributes) {
    out.push(' ');
    if (a.ns === '') out.push(a.local);
    else if (a.ns === XML_NS) out.push('xml:', a.local);
    else out.push(prefixes.get(a.ns)!, ':', a.local);
    out.push('="', escapeAttribute(a.value), '"');
  }
  if (el.children.length === 0) {
    out.push('/>');
    return;
  }
  out.push('>');
  for (const c of el.children) {
    if (c.kind === 'text') out.push(escapeText(c.text));
    else writeElement(out, c, prefixes, inScope);
  }
  out.push('</', name, '>');
}
