import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { XML_NS, XMLNS_NS } from './namespaces.js';
import type { XmlAttribute, XmlElement, XmlNode } from './xml-tree.js';

/**
 * The hardened XML reader every body from the network goes through (PIDF, watcherinfo).
 * Bodies are hostile: size and nesting are bounded before any parsing, markup
 * declarations (DOCTYPE, ENTITY: the billion-laughs family) are refused outright, only
 * the five predefined entities and character references are decoded, and namespaces are
 * resolved here so that callers match elements by URI. fast-xml-parser does the
 * tokenising; what it lets through (undefined entities, several roots, undeclared
 * prefixes...) is checked here. Nothing is thrown out of `readXml`.
 */

export interface XmlLimits {
  /** Largest body accepted, in bytes (default 64 KiB). */
  readonly maxBytes?: number;
  /** Deepest element nesting accepted, the root counting as 1 (default 32). */
  readonly maxDepth?: number;
}

export const DEFAULT_MAX_BYTES = 64 * 1024;
export const DEFAULT_MAX_DEPTH = 32;
/** A caller may raise the depth limit, but not past what the tree walk can recurse through. */
const MAX_DEPTH_CAP = 1000;

export type XmlReadResult =
  | {
      readonly ok: true;
      readonly root: XmlElement;
      /** Namespace declarations on the root element, prefix ('' for default) to URI. */
      readonly rootDeclarations: Readonly<Record<string, string>>;
    }
  | { readonly ok: false; readonly reason: string };

/** Thrown inside this module only; `readXml` turns it into a result. */
class Refusal extends Error {
  constructor(readonly reason: string) {
    super(reason);
  }
}

const NOT_WELL_FORMED = 'not well-formed XML';

/** XML 1.0 §2.3 S: nothing but whitespace (a no-break space is not XML whitespace). */
const XML_SPACE = /^[ \t\n\r]*$/;

/** XML 1.0 §2.2: a character outside Char makes the document not well-formed. */
const ILLEGAL_CHAR = /[^\t\n\r\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;

/**
 * Tag and attribute names get a marker that XML names cannot contain, so that no name
 * ever meets the parser's object keys (`#text`, `:@`) or the prototype-pollution
 * guard, which refuses `constructor` and friends by throwing.
 */
const NAME_MARK = '=';

const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: '',
  // Entities are decoded here (predefined and character references only): the parser's
  // own expansion is off so no DOCTYPE-defined entity can ever be expanded.
  processEntities: false,
  htmlEntities: false,
  trimValues: false,
  parseTagValue: false,
  parseAttributeValue: false,
  allowBooleanAttributes: false,
  cdataPropName: '#cdata',
  ignoreDeclaration: true,
  ignorePiTags: true,
  // No callback needs the path as a string; building it costs a quarter of the parse.
  jPath: false,
  // The prescan bounds the nesting (at most MAX_DEPTH_CAP); the parser's own limit sits above it.
  maxNestedTags: MAX_DEPTH_CAP + 1,
  transformTagName: (name) => NAME_MARK + name,
  transformAttributeName: (name) => NAME_MARK + name,
});

function limitOf(value: number | undefined, fallback: number): number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? Math.floor(value) : fallback;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Reads `input` into a namespace-resolved tree, or says in a few words why not. */
export function readXml(input: Buffer | Uint8Array | string, limits?: XmlLimits): XmlReadResult {
  try {
    const maxDepth = Math.min(limitOf(limits?.maxDepth, DEFAULT_MAX_DEPTH), MAX_DEPTH_CAP);
    return read(input, limitOf(limits?.maxBytes, DEFAULT_MAX_BYTES), maxDepth);
  } catch (e) {
    if (e instanceof Refusal) return { ok: false, reason: e.reason };
    // The parser's own complaints (and anything unforeseen) mean the same to a peer.
    return { ok: false, reason: NOT_WELL_FORMED };
  }
}

function read(input: Buffer | Uint8Array | string, maxBytes: number, maxDepth: number): XmlReadResult {
  let text: string;
  if (typeof input === 'string') {
    if (Buffer.byteLength(input, 'utf8') > maxBytes) throw new Refusal('document too large');
    text = input.charCodeAt(0) === 0xfeff ? input.slice(1) : input;
  } else if (input instanceof Uint8Array) {
    if (input.byteLength > maxBytes) throw new Refusal('document too large');
    try {
      // The decoder drops a UTF-8 byte order mark.
      text = utf8.decode(input);
    } catch {
      throw new Refusal('not UTF-8');
    }
  } else {
    throw new Refusal('no document');
  }
  if (ILLEGAL_CHAR.test(text)) throw new Refusal(NOT_WELL_FORMED);
  // XML 1.0 §2.11: line ends are normalised to LF before parsing.
  text = text.replace(/\r\n?/g, '\n');
  // Strictly the declaration comes first; a stray line end before it is forgiven.
  if (/^[ \t\n]+<\?xml[ \t\n?]/.test(text)) text = text.trimStart();
  checkDeclaration(text);
  prescan(text, maxDepth);
  let valid: true | object;
  try {
    valid = XMLValidator.validate(text, { allowBooleanAttributes: false });
  } catch {
    throw new Refusal(NOT_WELL_FORMED);
  }
  if (valid !== true) throw new Refusal(NOT_WELL_FORMED);
  const parsed: unknown = parser.parse(text);
  if (!Array.isArray(parsed)) throw new Refusal(NOT_WELL_FORMED);
  let rootNode: FxpNode | undefined;
  for (const n of parsed) {
    if (!isNode(n)) throw new Refusal(NOT_WELL_FORMED);
    const t = n['#text'];
    if (t !== undefined) {
      // XML 1.0 §2.1: nothing but markup and whitespace around the root element.
      if (typeof t !== 'string' || !XML_SPACE.test(t)) throw new Refusal(NOT_WELL_FORMED);
      continue;
    }
    if (rootNode) throw new Refusal(NOT_WELL_FORMED); // a second root element
    rootNode = n;
  }
  if (!rootNode) throw new Refusal(NOT_WELL_FORMED);
  const rootScope: Scope = new Map([['xml', XML_NS]]);
  const declared: Record<string, string> = {};
  const root = convert(rootNode, rootScope, 1, maxDepth, declared);
  return { ok: true, root, rootDeclarations: declared };
}

/** XML 1.0 §4.3.3: we read UTF-8 only (US-ASCII is a subset of it). */
function checkDeclaration(text: string): void {
  if (!text.startsWith('<?xml')) return;
  const end = text.indexOf('?>');
  if (end < 0) throw new Refusal(NOT_WELL_FORMED);
  const decl = text.slice(5, end);
  if (decl !== '' && !/^[ \t\n]/.test(decl)) return; // a processing instruction such as <?xml-stylesheet?>
  const version = /version\s*=\s*(["'])([^"']*)\1/.exec(decl);
  if (!version || version[2] !== '1.0') throw new Refusal(NOT_WELL_FORMED);
  const encoding = /encoding\s*=\s*(["'])([^"']*)\1/.exec(decl);
  if (encoding && !/^(utf-?8|us-ascii)$/i.test(encoding[2]!)) throw new Refusal('encoding must be UTF-8');
}

/**
 * One pass over the markup before any real parsing: refuses markup declarations and
 * bounds the nesting, so neither the validator nor the parser ever sees an XML bomb or
 * a ten-thousand-deep document.
 */
function prescan(s: string, maxDepth: number): void {
  let depth = 0;
  let i = 0;
  const n = s.length;
  for (;;) {
    const lt = s.indexOf('<', i);
    if (lt < 0) return;
    if (s.startsWith('<!--', lt)) {
      const end = s.indexOf('-->', lt + 4);
      if (end < 0) throw new Refusal(NOT_WELL_FORMED);
      i = end + 3;
      continue;
    }
    if (s.startsWith('<![CDATA[', lt)) {
      const end = s.indexOf(']]>', lt + 9);
      if (end < 0) throw new Refusal(NOT_WELL_FORMED);
      i = end + 3;
      continue;
    }
    if (s.startsWith('<?', lt)) {
      const end = s.indexOf('?>', lt + 2);
      if (end < 0) throw new Refusal(NOT_WELL_FORMED);
      i = end + 2;
      continue;
    }
    if (s.startsWith('<!', lt)) {
      // XML 1.0 §2.8 / §4.2: DTDs and entity declarations are never accepted.
      const head = s.slice(lt + 2, lt + 9).toUpperCase();
      if (head.startsWith('DOCTYPE')) throw new Refusal('DOCTYPE not allowed');
      if (head.startsWith('ENTITY')) throw new Refusal('ENTITY not allowed');
      throw new Refusal(NOT_WELL_FORMED);
    }
    if (s.charCodeAt(lt + 1) === 0x2f /* / */) {
      const end = s.indexOf('>', lt);
      if (end < 0) throw new Refusal(NOT_WELL_FORMED);
      depth--;
      i = end + 1;
      continue;
    }
    // A start tag: find its end outside attribute quotes.
    let j = lt + 1;
    let quote = 0;
    for (; j < n; j++) {
      const c = s.charCodeAt(j);
      if (quote !== 0) {
        if (c === quote) quote = 0;
      } else if (c === 0x22 || c === 0x27) {
        quote = c;
      } else if (c === 0x3e /* > */) {
        break;
      }
    }
    if (j >= n) throw new Refusal(NOT_WELL_FORMED);
    if (depth + 1 > maxDepth) throw new Refusal('too deeply nested');
    if (s.charCodeAt(j - 1) !== 0x2f) depth++;
    i = j + 1;
  }
}

/** A node of the parser's ordered output: one name key (plus ':@'), '#text' or '#cdata'. */
type FxpNode = { readonly [key: string]: unknown };

function isNode(v: unknown): v is FxpNode {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

type Scope = ReadonlyMap<string, string>;

function stripMark(name: string): string {
  let k = 0;
  while (name.charCodeAt(k) === 0x3d /* = */) k++;
  return name.slice(k);
}

/** Namespaces in XML §3: a QName is NCName or NCName ':' NCName. */
function splitQName(qname: string): [prefix: string, local: string] {
  const colon = qname.indexOf(':');
  if (colon < 0) return ['', qname];
  const prefix = qname.slice(0, colon);
  const local = qname.slice(colon + 1);
  if (prefix === '' || local === '' || local.includes(':')) throw new Refusal('bad XML name');
  return [prefix, local];
}

function convert(node: FxpNode, scope: Scope, depth: number, maxDepth: number, declared?: Record<string, string>): XmlElement {
  if (depth > maxDepth) throw new Refusal('too deeply nested');
  let tag: string | undefined;
  for (const k of Object.keys(node)) {
    if (k === ':@') continue;
    if (tag !== undefined || !k.startsWith(NAME_MARK)) throw new Refusal(NOT_WELL_FORMED);
    tag = k;
  }
  if (tag === undefined) throw new Refusal(NOT_WELL_FORMED);
  const rawChildren = node[tag];
  if (!Array.isArray(rawChildren)) throw new Refusal(NOT_WELL_FORMED);

  // Namespace declarations first: they apply to the element's own name and attributes.
  const rawAttrs = node[':@'];
  const plain: Array<[qname: string, value: string]> = [];
  let inner: Map<string, string> | undefined;
  if (rawAttrs !== undefined) {
    if (!isNode(rawAttrs)) throw new Refusal(NOT_WELL_FORMED);
    for (const [k, v] of Object.entries(rawAttrs)) {
      if (typeof v !== 'string') throw new Refusal(NOT_WELL_FORMED);
      const qname = stripMark(k);
      const value = decodeAttribute(v);
      if (qname === 'xmlns' || qname.startsWith('xmlns:')) {
        const prefix = qname === 'xmlns' ? '' : qname.slice(6);
        checkNamespaceDeclaration(prefix, value);
        inner ??= new Map(scope);
        inner.set(prefix, value);
        if (declared) declared[prefix] = value;
      } else {
        plain.push([qname, value]);
      }
    }
  }
  const here: Scope = inner ?? scope;

  const [prefix, local] = splitQName(stripMark(tag));
  const ns = resolve(here, prefix, true);
  const attributes: XmlAttribute[] = [];
  const seen = plain.length > 1 ? new Set<string>() : undefined;
  for (const [qname, value] of plain) {
    const [p, l] = splitQName(qname);
    // Namespaces in XML §6.3: unprefixed attributes are in no namespace.
    const ans = p === '' ? '' : resolve(here, p, false);
    if (seen) {
      // Namespaces in XML §6.3: no two attributes with the same expanded name.
      const key = `${ans} ${l}`;
      if (seen.has(key)) throw new Refusal(NOT_WELL_FORMED);
      seen.add(key);
    }
    attributes.push({ ns: ans, local: l, prefix: p, value });
  }

  const children: XmlNode[] = [];
  let pendingText = '';
  let hasElements = false;
  for (const c of rawChildren) {
    if (!isNode(c)) throw new Refusal(NOT_WELL_FORMED);
    const t = c['#text'];
    if (t !== undefined) {
      if (typeof t !== 'string') throw new Refusal(NOT_WELL_FORMED);
      // XML 1.0 §2.4: ']]>' may not appear in character data.
      if (t.includes(']]>')) throw new Refusal(NOT_WELL_FORMED);
      pendingText += decodeText(t);
      continue;
    }
    const cdata = c['#cdata'];
    if (cdata !== undefined) {
      // CDATA is literal text.
      if (!Array.isArray(cdata)) throw new Refusal(NOT_WELL_FORMED);
      for (const part of cdata) {
        if (!isNode(part) || typeof part['#text'] !== 'string') throw new Refusal(NOT_WELL_FORMED);
        pendingText += part['#text'];
      }
      continue;
    }
    if (pendingText !== '') children.push({ kind: 'text', text: pendingText });
    pendingText = '';
    hasElements = true;
    children.push(convert(c, here, depth + 1, maxDepth));
  }
  if (pendingText !== '') children.push({ kind: 'text', text: pendingText });

  // Whitespace between child elements is layout, not content; text in mixed content stays.
  const kept = hasElements ? children.filter((c) => c.kind === 'element' || !XML_SPACE.test(c.text)) : children;
  return { kind: 'element', ns, local, prefix, attributes, children: kept };
}

/** Namespaces in XML §3: what may and may not be declared. */
function checkNamespaceDeclaration(prefix: string, uri: string): void {
  if (prefix === 'xmlns') throw new Refusal('bad namespace declaration');
  if (prefix === 'xml' ? uri !== XML_NS : uri === XML_NS) throw new Refusal('bad namespace declaration');
  if (uri === XMLNS_NS) throw new Refusal('bad namespace declaration');
  // Namespaces in XML 1.0 §5: a prefix cannot be undeclared (only the default can).
  if (prefix !== '' && uri === '') throw new Refusal('bad namespace declaration');
  if (prefix !== '') splitQName(prefix); // rejects a colon in the prefix
}

function resolve(scope: Scope, prefix: string, forElement: boolean): string {
  if (prefix === '') return forElement ? (scope.get('') ?? '') : '';
  if (prefix === 'xmlns') throw new Refusal(NOT_WELL_FORMED);
  const uri = scope.get(prefix);
  if (uri === undefined) throw new Refusal(`undeclared namespace prefix ${prefix.replace(/[^\x21-\x7e]/g, '?').slice(0, 32)}`);
  return uri;
}

/** XML 1.0 §4.6: the predefined entities; everything else needs a DTD, which we refuse. */
const PREDEFINED: Readonly<Record<string, string>> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

function isXmlChar(cp: number): boolean {
  return (
    cp === 0x9 || cp === 0xa || cp === 0xd || (cp >= 0x20 && cp <= 0xd7ff) || (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff)
  );
}

function decodeReferences(raw: string): string {
  if (!raw.includes('&')) return raw;
  let out = '';
  let i = 0;
  for (;;) {
    const amp = raw.indexOf('&', i);
    if (amp < 0) return out + raw.slice(i);
    const semi = raw.indexOf(';', amp + 1);
    if (semi < 0 || semi - amp > 12) throw new Refusal(NOT_WELL_FORMED);
    const name = raw.slice(amp + 1, semi);
    let replacement: string | undefined;
    if (name.startsWith('#x')) {
      // XML 1.0 §4.1: character references must name a legal character.
      if (!/^#x[0-9a-fA-F]+$/.test(name)) throw new Refusal(NOT_WELL_FORMED);
      const cp = Number.parseInt(name.slice(2), 16);
      if (!isXmlChar(cp)) throw new Refusal(NOT_WELL_FORMED);
      replacement = String.fromCodePoint(cp);
    } else if (name.startsWith('#')) {
      if (!/^#[0-9]+$/.test(name)) throw new Refusal(NOT_WELL_FORMED);
      const cp = Number.parseInt(name.slice(1), 10);
      if (!isXmlChar(cp)) throw new Refusal(NOT_WELL_FORMED);
      replacement = String.fromCodePoint(cp);
    } else {
      replacement = PREDEFINED[name];
      if (replacement === undefined) throw new Refusal(NOT_WELL_FORMED);
    }
    out += raw.slice(i, amp) + replacement;
    i = semi + 1;
  }
}

function decodeText(raw: string): string {
  return decodeReferences(raw);
}

/** XML 1.0 §3.3.3: literal whitespace in an attribute value becomes a space; '<' is forbidden. */
function decodeAttribute(raw: string): string {
  if (raw.includes('<')) throw new Refusal(NOT_WELL_FORMED);
  return decodeReferences(raw.replace(/[\t\n]/g, ' '));
}
