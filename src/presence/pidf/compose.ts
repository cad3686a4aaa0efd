import { neutralPresence, type Device, type Note, type Person, type PresenceDocument, type Tuple } from './presence-document.js';
import { dateTimeMs } from './rfc3339.js';
import type { XmlElement } from './xml-tree.js';

/** A live publication of the presentity (RFC 3903 §6) as composition sees it. */
export interface ComposablePublication {
  readonly document: PresenceDocument;
  /** When the publication's document was last set, in ms since the epoch (server clock). */
  readonly publishedAt: number;
}

/**
 * How conflicting publications are resolved. RFC 4479 (§2, §3.5) leaves composition to local
 * policy; the only one offered is "newest wins":
 *
 * - every tuple of every live publication is kept; when two publications carry a tuple
 *   with the same id, the one from the most recently published document wins;
 * - only one person is kept, the one from the most recently published document that has
 *   a person (when that document has several, the one with the latest timestamp): the
 *   person is the presentity's own state, so the latest word on it replaces the others;
 * - every device is kept, the newest publication winning on a shared id;
 * - every top-level note is kept, with its xml:lang, duplicates (same text and language)
 *   once; other top-level extension elements likewise;
 * - the composed document lists the newest publication's elements first, so clients that
 *   only look at the first tuple or note see the latest one.
 *
 * "Newest" is the server's publication time, not the publisher's own timestamps (client
 * clocks cannot be trusted); equal times go to the publication later in the list.
 * With no live publication the result is the neutral document, `<presence entity=".."/>`,
 * identical for every presentity that has nothing published, existing or not.
 */
export type CompositionPolicy = 'newest-wins';

/** RFC 4479 §3.5 composition: the presentity's document composed from its live publications. */
export function composePresence(
  entity: string,
  publications: readonly ComposablePublication[],
  policy: CompositionPolicy = 'newest-wins',
): PresenceDocument {
  void policy; // one policy for now; the parameter keeps call sites explicit
  const live = newestFirst(publications);
  if (live.length === 0) return neutralPresence(entity);

  // xs:ID (RFC 3863 §4.1.2, the RFC 4479 schema): ids stay unique across kinds in the result too.
  const ids = new Set<string>();
  const tuples: Tuple[] = [];
  for (const doc of live) {
    for (const t of doc.tuples) {
      if (ids.has(t.id)) continue; // an older publication's tuple of the same id loses
      ids.add(t.id);
      tuples.push(t);
    }
  }

  const persons: Person[] = [];
  const withPerson = live.find((d) => d.persons.length > 0);
  if (withPerson) persons.push(uniqueId(latestPerson(withPerson.persons), ids));

  const devices: Device[] = [];
  const deviceIds = new Set<string>();
  for (const doc of live) {
    for (const d of doc.devices) {
      if (deviceIds.has(d.id)) continue;
      deviceIds.add(d.id);
      devices.push(uniqueId(d, ids));
    }
  }

  const notes: Note[] = [];
  const noteKeys = new Set<string>();
  for (const doc of live) {
    for (const n of doc.notes) {
      const key = `${n.lang ?? ''}\u0000${n.text}`;
      if (noteKeys.has(key)) continue;
      noteKeys.add(key);
      notes.push(n);
    }
  }

  const extensions: XmlElement[] = [];
  const extensionKeys = new Set<string>();
  for (const doc of live) {
    for (const e of doc.extensions) {
      const key = canonicalKey(e);
      if (extensionKeys.has(key)) continue;
      extensionKeys.add(key);
      extensions.push(e);
    }
  }

  // Informational only (the writer chooses its own prefixes): the newest declaration of a prefix.
  const namespaces: Record<string, string> = {};
  for (const doc of live) {
    for (const [prefix, uri] of Object.entries(doc.namespaces)) if (!(prefix in namespaces)) namespaces[prefix] = uri;
  }
  return { entity, tuples, persons, devices, notes, extensions, namespaces };
}

/** The documents, most recently published first; ties go to the later one in the list. */
function newestFirst(publications: readonly ComposablePublication[]): PresenceDocument[] {
  const indexed: Array<{ readonly doc: PresenceDocument; readonly at: number; readonly i: number }> = [];
  publications.forEach((p, i) => {
    if (p?.document) indexed.push({ doc: p.document, at: Number.isFinite(p.publishedAt) ? p.publishedAt : Number.NEGATIVE_INFINITY, i });
  });
  indexed.sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : b.i - a.i));
  return indexed.map((x) => x.doc);
}

/** Of one document's persons, the one stamped latest (document order breaks ties). */
function latestPerson(persons: readonly Person[]): Person {
  let best = persons[0]!;
  let bestMs = best.timestamp !== undefined ? dateTimeMs(best.timestamp) : Number.NaN;
  for (const p of persons.slice(1)) {
    const ms = p.timestamp !== undefined ? dateTimeMs(p.timestamp) : Number.NaN;
    if (!Number.isNaN(ms) && (Number.isNaN(bestMs) || ms > bestMs)) {
      best = p;
      bestMs = ms;
    }
  }
  return best;
}

/**
 * A person or device whose id a kept element already has gets a fresh one: ids of
 * persons and devices are not referenced from elsewhere (tuples name devices by deviceID).
 */
function uniqueId<T extends { readonly id: string; readonly raw: XmlElement }>(item: T, ids: Set<string>): T {
  if (!ids.has(item.id)) {
    ids.add(item.id);
    return item;
  }
  let n = 2;
  while (ids.has(`${item.id}-${n}`)) n++;
  const id = `${item.id}-${n}`;
  ids.add(id);
  const attributes = item.raw.attributes.map((a) => (a.ns === '' && a.local === 'id' ? { ...a, value: id } : a));
  return { ...item, id, raw: { ...item.raw, attributes } };
}

const keyCache = new WeakMap<XmlElement, string>();

/** A prefix-independent rendering of an element, to recognise the same extension twice. */
function canonicalKey(el: XmlElement): string {
  let key = keyCache.get(el);
  if (key === undefined) {
    const attrs = el.attributes.map((a) => `{${a.ns}}${a.local}=${JSON.stringify(a.value)}`).sort();
    const children = el.children.map((c) => (c.kind === 'text' ? JSON.stringify(c.text) : canonicalKey(c)));
    key = `<{${el.ns}}${el.local} ${attrs.join(' ')}>${children.join('')}</>`;
    keyCache.set(el, key);
  }
  return key;
}
