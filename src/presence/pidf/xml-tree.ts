/**
 * The XML tree the presence documents are kept as: every element carries the namespace
 * URI it resolved to where it was read, so that it can be written out again under any
 * prefixes (extension elements from different publications meet in one document).
 * Text and attribute values are stored decoded; the writer escapes them again.
 */

export interface XmlAttribute {
  /** The attribute's namespace URI; '' for an unprefixed attribute (Namespaces in XML §6.3). */
  readonly ns: string;
  readonly local: string;
  /** The prefix it was written with ('' for none), a hint for the writer. */
  readonly prefix: string;
  readonly value: string;
}

export interface XmlText {
  readonly kind: 'text';
  readonly text: string;
}

export interface XmlElement {
  readonly kind: 'element';
  /** The element's namespace URI; '' for no namespace. */
  readonly ns: string;
  readonly local: string;
  /** The prefix it was written with ('' for the default namespace), a hint for the writer. */
  readonly prefix: string;
  /** Attributes other than namespace declarations, in document order. */
  readonly attributes: readonly XmlAttribute[];
  readonly children: readonly XmlNode[];
}

export type XmlNode = XmlElement | XmlText;

/** The child elements of `el` in namespace `ns` named `local` (any name when omitted). */
export function childElements(el: XmlElement, ns: string, local?: string): XmlElement[] {
  const out: XmlElement[] = [];
  for (const c of el.children) {
    if (c.kind === 'element' && c.ns === ns && (local === undefined || c.local === local)) out.push(c);
  }
  return out;
}

/** All child elements of `el`. */
export function elementChildren(el: XmlElement): XmlElement[] {
  const out: XmlElement[] = [];
  for (const c of el.children) if (c.kind === 'element') out.push(c);
  return out;
}

/** The value of the attribute `local` in namespace `ns` ('' for unprefixed). */
export function attributeValue(el: XmlElement, local: string, ns = ''): string | undefined {
  for (const a of el.attributes) if (a.local === local && a.ns === ns) return a.value;
  return undefined;
}

/** The concatenated text of `el` and its descendants. */
export function textContent(el: XmlElement): string {
  let s = '';
  for (const c of el.children) s += c.kind === 'text' ? c.text : textContent(c);
  return s;
}

/** XML 1.0 §2.3 S: the whitespace characters. */
export function collapseWhitespace(s: string): string {
  return s.replace(/[ \t\r\n]+/g, ' ').trim();
}
