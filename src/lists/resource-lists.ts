import { XML_NS } from '../presence/pidf/namespaces.js';
import { readXml } from '../presence/pidf/read-xml.js';
import { escapeAttribute, escapeText, forReason } from '../presence/pidf/xml-escape.js';
import { attributeValue, collapseWhitespace, textContent, type XmlElement } from '../presence/pidf/xml-tree.js';
import { addressOfRecord, isSipUri, tryParseUri } from '../sip/uri.js';

/**
 * Resource lists (RFC 4826 §3), application/resource-lists+xml: the buddy lists of the
 * RLS (RFC 4662), request-contained lists (RFC 5367) and the URI lists of multiple-recipient
 * MESSAGE (RFC 5365), with the copy control attributes of RFC 5364 kept on entries. Bodies are
 * hostile: they go through the hardened XML reader (size, depth, no DTD) and then this
 * module's own bounds (members, list nesting, URI length, RFC 4826 §3.4.1 uniqueness).
 */

/** RFC 4826 §3.2: the resource-lists namespace. */
export const RESOURCE_LISTS_NS = 'urn:ietf:params:xml:ns:resource-lists';
/** RFC 5364 §4: the copy control extension namespace. */
export const COPY_CONTROL_NS = 'urn:ietf:params:xml:ns:copycontrol';
/** RFC 4826 §3.2 / RFC 5367: the media type of these documents. */
export const RESOURCE_LISTS_TYPE = 'application/resource-lists+xml';

/** RFC 4826 §3.2: a display-name element, with its xml:lang when one was given. */
export interface DisplayName {
  readonly text: string;
  readonly lang?: string;
}

/** RFC 5364 §4: the copy control level of a recipient ('to' when absent). */
export type CopyControl = 'to' | 'cc' | 'bcc';

/** RFC 4826 §3.2 `<entry uri>`: one resource. */
export interface ListEntry {
  readonly kind: 'entry';
  /** The URI as written (whitespace collapsed). */
  readonly uri: string;
  readonly displayName?: DisplayName;
  /** RFC 5364 §4 `cp:copyControl`. */
  readonly copyControl?: CopyControl;
  /** RFC 5364 §4 `cp:anonymize`: hide this recipient's URI from the others. */
  readonly anonymize?: boolean;
}

/** RFC 4826 §3.2 `<entry-ref ref>`: an entry of another document, by relative XCAP URI. */
export interface EntryRef {
  readonly kind: 'entry-ref';
  readonly ref: string;
  readonly displayName?: DisplayName;
}

/** RFC 4826 §3.2 `<external anchor>`: a whole list elsewhere, by absolute HTTP URI. */
export interface ExternalList {
  readonly kind: 'external';
  readonly anchor: string;
  readonly displayName?: DisplayName;
}

/** RFC 4826 §3.2 `<list name>`: entries, references and nested lists, in document order. */
export interface ResourceList {
  readonly kind: 'list';
  readonly name?: string;
  readonly displayName?: DisplayName;
  readonly members: readonly ListMember[];
}

export type ListMember = ListEntry | EntryRef | ExternalList | ResourceList;

/** RFC 4826 §3.2 `<resource-lists>`: the document, zero or more top-level lists. */
export interface ResourceListsDocument {
  readonly lists: readonly ResourceList[];
}

export interface ResourceListsLimits {
  /** Largest document, in bytes (default 256 KiB). */
  readonly maxBytes?: number;
  /** Deepest nesting of `<list>` elements, the top-level lists counting as 1 (default 8). */
  readonly maxListDepth?: number;
  /** Most members (entries, references, externals and lists) in the whole document (default 1000). */
  readonly maxMembers?: number;
  /**
   * RFC 4826 §3.4.1 makes two entries of one list with the same URI an error: 'refuse' (the
   * default) answers that, 'drop' keeps the first and drops the others (lenient clients).
   */
  readonly duplicates?: 'refuse' | 'drop';
}

export const DEFAULT_MAX_LIST_BYTES = 256 * 1024;
export const DEFAULT_MAX_LIST_DEPTH = 8;
export const DEFAULT_MAX_LIST_MEMBERS = 1000;
/** Longest URI, name or reference accepted (RFC 3261 has no limit; a presence list does not need more). */
const MAX_URI_LENGTH = 1024;
const MAX_NAME_LENGTH = 256;

export type ParseResourceListsResult =
  | { readonly ok: true; readonly document: ResourceListsDocument }
  | {
      readonly ok: false;
      /** Short, printable: fit for a SIP reason phrase after "Bad resource list: ". */
      readonly reason: string;
      /** True when the refusal is about size: bytes or members (answer 413); false for a malformed document (400). */
      readonly tooLarge: boolean;
    };

/** Thrown inside this module only. */
class ListRefusal extends Error {
  constructor(
    readonly detail: string,
    readonly tooLarge = false,
  ) {
    super(detail);
  }
}

function limitOf(v: number | undefined, fallback: number): number {
  return typeof v === 'number' && Number.isFinite(v) && v > 0 ? Math.floor(v) : fallback;
}

/** Reads an application/resource-lists+xml document; never throws. */
export function parseResourceLists(body: Buffer | Uint8Array | string, limits?: ResourceListsLimits): ParseResourceListsResult {
  const maxBytes = limitOf(limits?.maxBytes, DEFAULT_MAX_LIST_BYTES);
  const maxListDepth = limitOf(limits?.maxListDepth, DEFAULT_MAX_LIST_DEPTH);
  const size = typeof body === 'string' ? Buffer.byteLength(body, 'utf8') : body.byteLength;
  if (size > maxBytes) return { ok: false, reason: 'document too large', tooLarge: true };
  try {
    // XML depth: resource-lists, then the lists, then an entry's display-name.
    const read = readXml(body, { maxBytes, maxDepth: maxListDepth + 3 });
    if (!read.ok) return { ok: false, reason: read.reason, tooLarge: read.reason === 'document too large' };
    const walk = new Walk(limitOf(limits?.maxMembers, DEFAULT_MAX_LIST_MEMBERS), maxListDepth, limits?.duplicates ?? 'refuse');
    return { ok: true, document: walk.document(read.root) };
  } catch (e) {
    if (e instanceof ListRefusal) return { ok: false, reason: e.detail, tooLarge: e.tooLarge };
    return { ok: false, reason: 'unreadable document', tooLarge: false };
  }
}

/**
 * The key two entry URIs are the same resource by: a SIP or tel URI's address of record
 * (a list member is subscribed to as an AOR), anything else as written.
 */
export function entryKey(uri: string): string {
  const parsed = tryParseUri(uri);
  if (parsed === undefined) return uri;
  return isSipUri(parsed) || parsed.scheme === 'tel' ? addressOfRecord(parsed) : uri;
}

class Walk {
  private members = 0;

  constructor(
    private readonly maxMembers: number,
    private readonly maxListDepth: number,
    private readonly duplicates: 'refuse' | 'drop',
  ) {}

  document(root: XmlElement): ResourceListsDocument {
    if (root.ns !== RESOURCE_LISTS_NS || root.local !== 'resource-lists') throw new ListRefusal('root element is not resource-lists');
    const lists: ResourceList[] = [];
    const names = new Set<string>();
    for (const c of root.children) {
      if (c.kind !== 'element') continue;
      // RFC 4826 §3.2: other namespaces' elements are extensions, ignored here.
      if (c.ns !== RESOURCE_LISTS_NS) continue;
      if (c.local !== 'list') throw new ListRefusal(`unexpected element ${forReason(c.local)}`);
      const list = this.list(c, 1);
      if (list.name !== undefined) {
        // RFC 4826 §3.4.1: list names are unique among siblings.
        if (names.has(list.name)) throw new ListRefusal('duplicate list name');
        names.add(list.name);
      }
      lists.push(list);
    }
    return { lists };
  }

  private count(): void {
    if (++this.members > this.maxMembers) throw new ListRefusal('too many members', true);
  }

  private list(el: XmlElement, depth: number): ResourceList {
    if (depth > this.maxListDepth) throw new ListRefusal('lists nested too deeply');
    const name = optionalName(el, 'name');
    let displayName: DisplayName | undefined;
    const members: ListMember[] = [];
    const seen = { entry: new Set<string>(), ref: new Set<string>(), anchor: new Set<string>(), list: new Set<string>() };
    for (const c of el.children) {
      if (c.kind !== 'element' || c.ns !== RESOURCE_LISTS_NS) continue;
      switch (c.local) {
        case 'display-name':
          // RFC 4826 §3.2: at most one, before the members.
          if (displayName !== undefined || members.length > 0) throw new ListRefusal('misplaced display-name');
          displayName = readDisplayName(c);
          break;
        case 'entry': {
          this.count();
          const entry = readEntry(c);
          const key = entryKey(entry.uri);
          if (seen.entry.has(key)) {
            if (this.duplicates === 'refuse') throw new ListRefusal('duplicate entry uri');
            break;
          }
          seen.entry.add(key);
          members.push(entry);
          break;
        }
        case 'entry-ref': {
          this.count();
          const ref = requiredText(c, 'ref');
          if (seen.ref.has(ref)) throw new ListRefusal('duplicate entry-ref');
          seen.ref.add(ref);
          const dn = firstDisplayName(c);
          members.push({ kind: 'entry-ref', ref, ...(dn ? { displayName: dn } : {}) });
          break;
        }
        case 'external': {
          this.count();
          const anchor = requiredText(c, 'anchor');
          if (seen.anchor.has(anchor)) throw new ListRefusal('duplicate external anchor');
          seen.anchor.add(anchor);
          const dn = firstDisplayName(c);
          members.push({ kind: 'external', anchor, ...(dn ? { displayName: dn } : {}) });
          break;
        }
        case 'list': {
          this.count();
          const nested = this.list(c, depth + 1);
          if (nested.name !== undefined) {
            if (seen.list.has(nested.name)) throw new ListRefusal('duplicate list name');
            seen.list.add(nested.name);
          }
          members.push(nested);
          break;
        }
        default:
          throw new ListRefusal(`unexpected element ${forReason(c.local)}`);
      }
    }
    return { kind: 'list', ...(name !== undefined ? { name } : {}), ...(displayName ? { displayName } : {}), members };
  }
}

function checkUriText(v: string, what: string): string {
  const s = collapseWhitespace(v);
  if (s === '') throw new ListRefusal(`empty ${what}`);
  if (s.length > MAX_URI_LENGTH) throw new ListRefusal(`${what} too long`);
  if (/\s/.test(s)) throw new ListRefusal(`bad ${what}`);
  return s;
}

function requiredText(el: XmlElement, attr: string): string {
  const v = attributeValue(el, attr);
  if (v === undefined) throw new ListRefusal(`${el.local} without ${attr}`);
  return checkUriText(v, attr);
}

function optionalName(el: XmlElement, attr: string): string | undefined {
  const v = attributeValue(el, attr);
  if (v === undefined) return undefined;
  if (v.length > MAX_NAME_LENGTH) throw new ListRefusal(`${attr} too long`);
  return v;
}

function readDisplayName(el: XmlElement): DisplayName {
  const text = textContent(el);
  if (text.length > MAX_NAME_LENGTH) throw new ListRefusal('display-name too long');
  const lang = attributeValue(el, 'lang', XML_NS);
  return lang !== undefined ? { text, lang } : { text };
}

function firstDisplayName(el: XmlElement): DisplayName | undefined {
  let found: DisplayName | undefined;
  for (const c of el.children) {
    if (c.kind !== 'element' || c.ns !== RESOURCE_LISTS_NS) continue;
    if (c.local !== 'display-name' || found !== undefined) throw new ListRefusal(`unexpected element in ${el.local}`);
    found = readDisplayName(c);
  }
  return found;
}

function readEntry(el: XmlElement): ListEntry {
  const uri = requiredText(el, 'uri');
  const dn = firstDisplayName(el);
  const cc = attributeValue(el, 'copyControl', COPY_CONTROL_NS);
  let copyControl: CopyControl | undefined;
  if (cc !== undefined) {
    const v = collapseWhitespace(cc);
    if (v !== 'to' && v !== 'cc' && v !== 'bcc') throw new ListRefusal('bad copyControl');
    copyControl = v;
  }
  const an = attributeValue(el, 'anonymize', COPY_CONTROL_NS);
  let anonymize: boolean | undefined;
  if (an !== undefined) {
    // XML Schema boolean: true, false, 1, 0.
    const v = collapseWhitespace(an);
    if (v === 'true' || v === '1') anonymize = true;
    else if (v === 'false' || v === '0') anonymize = false;
    else throw new ListRefusal('bad anonymize');
  }
  return {
    kind: 'entry',
    uri,
    ...(dn ? { displayName: dn } : {}),
    ...(copyControl !== undefined ? { copyControl } : {}),
    ...(anonymize !== undefined ? { anonymize } : {}),
  };
}

/** Writes a resource-lists document (RFC 4826 §3), as UTF-8 bytes. */
export function serializeResourceLists(doc: ResourceListsDocument): Buffer {
  const usesCopyControl = doc.lists.some(hasCopyControl);
  const out: string[] = ['<?xml version="1.0" encoding="UTF-8"?>\n<resource-lists xmlns="', RESOURCE_LISTS_NS, '"'];
  if (usesCopyControl) out.push(' xmlns:cp="', COPY_CONTROL_NS, '"');
  out.push('>\n');
  for (const l of doc.lists) writeList(out, l, ' ');
  out.push('</resource-lists>\n');
  return Buffer.from(out.join(''), 'utf8');
}

function hasCopyControl(m: ListMember): boolean {
  if (m.kind === 'entry') return m.copyControl !== undefined || m.anonymize !== undefined;
  return m.kind === 'list' && m.members.some(hasCopyControl);
}

function writeDisplayName(out: string[], dn: DisplayName | undefined, indent: string): void {
  if (dn === undefined) return;
  out.push(indent, '<display-name');
  if (dn.lang !== undefined) out.push(' xml:lang="', escapeAttribute(dn.lang), '"');
  out.push('>', escapeText(dn.text), '</display-name>\n');
}

function writeList(out: string[], list: ResourceList, indent: string): void {
  out.push(indent, '<list');
  if (list.name !== undefined) out.push(' name="', escapeAttribute(list.name), '"');
  if (list.displayName === undefined && list.members.length === 0) {
    out.push('/>\n');
    return;
  }
  out.push('>\n');
  const inner = indent + ' ';
  writeDisplayName(out, list.displayName, inner);
  for (const m of list.members) {
    switch (m.kind) {
      case 'list':
        writeList(out, m, inner);
        break;
      case 'entry':
        out.push(inner, '<entry uri="', escapeAttribute(m.uri), '"');
        if (m.copyControl !== undefined) out.push(' cp:copyControl="', m.copyControl, '"');
        if (m.anonymize !== undefined) out.push(' cp:anonymize="', m.anonymize ? 'true' : 'false', '"');
        writeLeafEnd(out, m.displayName, inner, 'entry');
        break;
      case 'entry-ref':
        out.push(inner, '<entry-ref ref="', escapeAttribute(m.ref), '"');
        writeLeafEnd(out, m.displayName, inner, 'entry-ref');
        break;
      case 'external':
        out.push(inner, '<external anchor="', escapeAttribute(m.anchor), '"');
        writeLeafEnd(out, m.displayName, inner, 'external');
        break;
    }
  }
  out.push(indent, '</list>\n');
}

function writeLeafEnd(out: string[], dn: DisplayName | undefined, indent: string, tag: string): void {
  if (dn === undefined) {
    out.push('/>\n');
    return;
  }
  out.push('>\n');
  writeDisplayName(out, dn, indent + ' ');
  out.push(indent, '</', tag, '>\n');
}

/** A resource as a flattened list serves it: the entry, and the display name it is known by. */
export interface FlatEntry {
  readonly uri: string;
  readonly displayName?: string;
  readonly copyControl?: CopyControl;
  readonly anonymize?: boolean;
}

/** What flattening left aside: references the caller may resolve (RFC 4826 §3.2) or refuse. */
export interface FlattenResult {
  readonly entries: readonly FlatEntry[];
  readonly entryRefs: readonly string[];
  readonly externals: readonly string[];
  /** Entries beyond `maxEntries`, dropped (the rule: document order, first ones kept). */
  readonly truncated: number;
}

/**
 * The entries of every list of a document, depth first in document order, each resource once
 * (by `entryKey`): the set of URIs an RLS subscribes to or an exploder sends to (RFC 4662 §4.1,
 * RFC 5365 §4). At most `maxEntries` are kept, the first ones.
 */
export function flattenEntries(doc: ResourceListsDocument | readonly ResourceList[], maxEntries = Infinity): FlattenResult {
  const entries: FlatEntry[] = [];
  const entryRefs: string[] = [];
  const externals: string[] = [];
  const seen = new Set<string>();
  let truncated = 0;
  const visit = (list: ResourceList): void => {
    for (const m of list.members) {
      if (m.kind === 'list') visit(m);
      else if (m.kind === 'entry-ref') entryRefs.push(m.ref);
      else if (m.kind === 'external') externals.push(m.anchor);
      else {
        const key = entryKey(m.uri);
        if (seen.has(key)) continue;
        seen.add(key);
        if (entries.length >= maxEntries) {
          truncated++;
          continue;
        }
        entries.push({
          uri: m.uri,
          ...(m.displayName ? { displayName: m.displayName.text } : {}),
          ...(m.copyControl !== undefined ? { copyControl: m.copyControl } : {}),
          ...(m.anonymize !== undefined ? { anonymize: m.anonymize } : {}),
        });
      }
    }
  };
  const lists = 'lists' in doc ? doc.lists : doc;
  for (const l of lists) visit(l);
  return { entries, entryRefs, externals, truncated };
}
