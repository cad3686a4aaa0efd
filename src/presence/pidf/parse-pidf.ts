import { DATA_MODEL_NS, PIDF_NS, RPID_NS, TIMED_STATUS_NS, XML_NS } from './namespaces.js';
import { PidfRefusal, pidfReason } from './pidf-refusal.js';
import type { BasicStatus, Contact, Device, Note, Person, PresenceDocument, TimedStatus, Tuple } from './presence-document.js';
import { readXml, type XmlLimits } from './read-xml.js';
import { isDateTime } from './rfc3339.js';
import { langOf, readDevice, readNotes, readPerson } from './rpid.js';
import { forReason } from './xml-escape.js';
import { attributeValue, childElements, collapseWhitespace, elementChildren, textContent, type XmlElement } from './xml-tree.js';

export type PidfLimits = XmlLimits;

export type ParsePidfResult = { readonly ok: true; readonly document: PresenceDocument } | { readonly ok: false; readonly reason: string };

/**
 * What a PUBLISH needs of its document when nobody watches the presentity: whether it is
 * acceptable, its entity and its tuples' ids. The document itself is read again from the
 * body at the first composition (a tree crossing from the reader thread costs the SIP
 * thread more to receive than this does).
 */
export type PidfVerdict = { readonly ok: true; readonly entity: string; readonly tupleIds: readonly string[] } | { readonly ok: false; readonly reason: string };

export function verdictOf(r: ParsePidfResult): PidfVerdict {
  return r.ok ? { ok: true, entity: r.document.entity, tupleIds: r.document.tuples.map((t) => t.id) } : r;
}

/**
 * Reads and validates a PIDF document (RFC 3863 §4, RFC 4479, RFC 4480). Never throws:
 * a bad body gives a short reason usable as a SIP reason phrase.
 */
export function parsePidf(bytes: Buffer | string, limits?: PidfLimits): ParsePidfResult {
  try {
    const read = readXml(bytes, limits);
    if (!read.ok) return { ok: false, reason: pidfReason(read.reason) };
    return { ok: true, document: readPresence(read.root, read.rootDeclarations) };
  } catch (e) {
    if (e instanceof PidfRefusal) return { ok: false, reason: pidfReason(e.detail) };
    return { ok: false, reason: pidfReason('unreadable document') };
  }
}

/** RFC 3863 §4.1.1: the presentity URI; we serve SIP presentities, so pres:, sip: or sips:. */
const ENTITY = /^(?:pres|sips?):[^\s"<>]+$/i;
const MAX_ID = 256;
const MAX_URI = 2048;

function readPresence(root: XmlElement, declarations: Readonly<Record<string, string>>): PresenceDocument {
  // RFC 3863 §4.1: the root is `presence` in the PIDF namespace, whatever its prefix.
  if (root.ns !== PIDF_NS || root.local !== 'presence') throw new PidfRefusal('root element is not presence');
  const entityAttr = attributeValue(root, 'entity');
  if (entityAttr === undefined) throw new PidfRefusal('missing entity');
  const entity = collapseWhitespace(entityAttr);
  if (entity.length > MAX_URI || !ENTITY.test(entity)) throw new PidfRefusal('entity is not a pres, sip or sips URI');
  checkTypedValues(root);

  const rootLang = langOf(root, undefined);
  const ids = new Set<string>();
  const tuples: Tuple[] = [];
  const persons: Person[] = [];
  const devices: Device[] = [];
  const extensions: XmlElement[] = [];
  for (const child of elementChildren(root)) {
    // XML 1.0 §2.12: a language on the root must still apply once the element is copied out.
    const el = rootLang !== undefined ? withLang(child, rootLang) : child;
    if (el.ns === PIDF_NS) {
      if (el.local === 'tuple') tuples.push(readTuple(el, takeId(el, 'tuple', ids), rootLang));
      else if (el.local !== 'note') throw new PidfRefusal(`unexpected element ${forReason(el.local)} in presence`);
    } else if (el.ns === DATA_MODEL_NS && el.local === 'person') {
      persons.push(readPerson(el, takeId(el, 'person', ids), rootLang));
    } else if (el.ns === DATA_MODEL_NS && el.local === 'device') {
      devices.push(readDevice(el, takeId(el, 'device', ids), rootLang));
    } else {
      // RFC 3863 §4.3: extensions in other namespaces are carried along.
      extensions.push(el);
    }
  }
  const notes: Note[] = readNotes(root, PIDF_NS, rootLang);
  return { entity, tuples, persons, devices, notes, extensions, namespaces: { ...declarations } };
}

function withLang(el: XmlElement, lang: string): XmlElement {
  if (attributeValue(el, 'lang', XML_NS) !== undefined) return el;
  return { ...el, attributes: [...el.attributes, { ns: XML_NS, local: 'lang', prefix: 'xml', value: lang }] };
}

/**
 * RFC 3863 §4.1.2 / RFC 4479 (xs:ID in its schema): tuple, person and device ids are present and, being
 * xs:ID, unique within the document.
 */
function takeId(el: XmlElement, kind: string, ids: Set<string>): string {
  const raw = attributeValue(el, 'id');
  const id = raw === undefined ? '' : collapseWhitespace(raw);
  if (id === '') throw new PidfRefusal(`${kind} without id`);
  if (id.length > MAX_ID) throw new PidfRefusal(`${kind} id too long`);
  if (ids.has(id)) throw new PidfRefusal(`duplicate ${kind} id ${forReason(id)}`);
  ids.add(id);
  return id;
}

/** RFC 3863 §4.1.4: `basic` is `open` or `closed` and nothing else. */
function readBasic(el: XmlElement): BasicStatus {
  const v = textContent(el).trim();
  if (v !== 'open' && v !== 'closed') throw new PidfRefusal('basic status must be open or closed');
  return v;
}

/**
 * RFC 3863 §4.1.5: a decimal from 0 to 1. The RFC allows three decimals; more digits
 * are forgiven (some stacks print floats), a value outside [0, 1] is not.
 */
const PRIORITY = /^(?:\d{1,3}(?:\.\d{0,12})?|\.\d{1,12})$/;

function priorityOf(raw: string): number {
  const v = raw.trim();
  const n = PRIORITY.test(v) ? Number(v) : Number.NaN;
  if (!(n >= 0 && n <= 1)) throw new PidfRefusal('bad contact priority');
  return n;
}

/** At most one child `ns:local` of `el`. */
function single(el: XmlElement, ns: string, local: string, where: string): XmlElement | undefined {
  const found = childElements(el, ns, local);
  if (found.length > 1) throw new PidfRefusal(`more than one ${local} in ${where}`);
  return found[0];
}

const TUPLE_CHILDREN = new Set(['status', 'contact', 'note', 'timestamp']);

/** RFC 3863 §4.1.2: status, contact?, note*, timestamp?, and extensions in other namespaces. */
function readTuple(el: XmlElement, id: string, inheritedLang: string | undefined): Tuple {
  for (const c of childElements(el, PIDF_NS)) {
    if (!TUPLE_CHILDREN.has(c.local)) throw new PidfRefusal(`unexpected element ${forReason(c.local)} in tuple`);
  }
  const lang = langOf(el, inheritedLang);
  // RFC 3863 §4.1.3: the status element is mandatory; `basic` in it is optional.
  const status = single(el, PIDF_NS, 'status', 'tuple');
  if (!status) throw new PidfRefusal(`tuple ${forReason(id)} has no status`);
  for (const c of childElements(status, PIDF_NS)) {
    if (c.local !== 'basic') throw new PidfRefusal(`unexpected element ${forReason(c.local)} in status`);
  }
  const basicEl = single(status, PIDF_NS, 'basic', 'status');
  const basic = basicEl ? readBasic(basicEl) : undefined;

  let contact: Contact | undefined;
  const contactEl = single(el, PIDF_NS, 'contact', 'tuple');
  if (contactEl) {
    const uri = collapseWhitespace(textContent(contactEl));
    const p = attributeValue(contactEl, 'priority');
    let priority: number | undefined;
    if (p !== undefined) priority = priorityOf(p);
    if (uri.length > MAX_URI) throw new PidfRefusal('contact too long');
    if (uri !== '') contact = priority !== undefined ? { uri, priority } : { uri };
  }
  const timestampEl = single(el, PIDF_NS, 'timestamp', 'tuple');
  const deviceIdEl = childElements(el, DATA_MODEL_NS, 'deviceID')[0];
  const deviceId = deviceIdEl ? collapseWhitespace(textContent(deviceIdEl)) : '';
  return {
    id,
    ...(basic !== undefined ? { basic } : {}),
    ...(contact ? { contact } : {}),
    notes: readNotes(el, PIDF_NS, lang),
    ...(timestampEl ? { timestamp: textContent(timestampEl).trim() } : {}),
    ...(deviceId !== '' ? { deviceId } : {}),
    timedStatus: childElements(el, TIMED_STATUS_NS, 'timed-status').map((t) => readTimedStatus(t, lang)),
    raw: el,
  };
}

/** RFC 4481: `from` is required, `until` optional, with a basic status and notes. */
function readTimedStatus(el: XmlElement, inheritedLang: string | undefined): TimedStatus {
  const from = attributeValue(el, 'from')?.trim();
  if (from === undefined) throw new PidfRefusal('timed-status without from');
  const until = attributeValue(el, 'until')?.trim();
  const basicEl = single(el, PIDF_NS, 'basic', 'timed-status');
  const basic = basicEl ? readBasic(basicEl) : undefined;
  return {
    from,
    ...(until !== undefined ? { until } : {}),
    ...(basic !== undefined ? { basic } : {}),
    notes: readNotes(el, PIDF_NS, langOf(el, inheritedLang)),
  };
}

/**
 * One walk over the whole document for the typed values we understand wherever they
 * appear (RFC 3863 §4.1.4 basic, §4.1.7 timestamps, RFC 4479 dm:timestamp, RFC 4480
 * from/until/last-input, RFC 4481 from/until): a status inside a device or a timed
 * status is as binding as one in a tuple.
 */
function checkTypedValues(el: XmlElement): void {
  if (el.ns === PIDF_NS) {
    if (el.local === 'basic') readBasic(el);
    else if (el.local === 'timestamp') checkDateTime(textContent(el));
  } else if (el.ns === DATA_MODEL_NS) {
    if (el.local === 'timestamp') checkDateTime(textContent(el));
  } else if (el.ns === RPID_NS || el.ns === TIMED_STATUS_NS) {
    for (const a of el.attributes) {
      if (a.ns === '' && (a.local === 'from' || a.local === 'until' || a.local === 'last-input')) checkDateTime(a.value);
    }
  }
  for (const c of el.children) if (c.kind === 'element') checkTypedValues(c);
}

function checkDateTime(s: string): void {
  if (!isDateTime(s.trim())) throw new PidfRefusal('bad timestamp');
}
