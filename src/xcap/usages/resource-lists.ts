import { AdminError, type ListInput } from '../../control/operations.js';
import { readXml } from '../../presence/pidf/read-xml.js';
import { attributeValue, elementChildren, type XmlElement } from '../../presence/pidf/xml-tree.js';
import {
  entryKey,
  flattenEntries,
  parseResourceLists,
  RESOURCE_LISTS_NS,
  RESOURCE_LISTS_TYPE,
  serializeResourceLists,
  type ResourceList,
  type ResourceListsDocument,
} from '../../lists/resource-lists.js';
import { LIST_NAME_RE, type StoredListEntry, type StoredListInfo } from '../../lists/stored-lists.js';
import type { XcapDocumentRepository } from '../../store/repositories/xcap-documents.js';
import type { ApplicationUsage, DocumentRef, DocumentSource } from '../application-usage.js';
import { requireUnique } from '../uniqueness.js';
import { elementAt, locate, resolveSelector } from '../document-tree.js';
import { SelectorError } from '../node-selector.js';
import { XcapConflict } from '../xcap-error.js';
import { canonicalXui } from '../xcap-server.js';
import { parseXcapUri, XcapUriError } from '../xcap-uri.js';
import { writeXml } from '../xml-writer.js';

/** RFC 4826 §3: the resource-lists application usage. */
export const RESOURCE_LISTS_AUID = 'resource-lists';
/** Members of one document, at most (each top-level list is also bounded by presence.maxListMembers). */
const MAX_DOCUMENT_MEMBERS = 10_000;
/** Top-level lists of one document, at most: each is a stored list and a NOTIFY to its subscribers. */
export const MAX_LISTS_PER_DOCUMENT = 100;

/** The stored lists as the admin API, CLI and /api/me manage them (src/control/operations.ts). */
export interface ListBackend {
  listLists(owner: string): Promise<StoredListInfo[]>;
  setList(input: ListInput): Promise<unknown>;
  deleteList(owner: string, name: string): Promise<unknown>;
}

/** A stored list as a document says it: its name, display name and (flattened) entries. */
export interface DocumentList {
  readonly name: string;
  readonly displayName?: string;
  readonly entries: readonly StoredListEntry[];
}

function refuse(kind: 'schema-validation-error' | 'constraint-failure', phrase: string): never {
  throw new XcapConflict({ kind, phrase });
}

/**
 * RFC 4826 §3.4.5 uniqueness, on the tree (the field is a node selector, §11.2): the names of
 * the `<list>`s of one parent differ, and so do the `<entry uri>`s of one list (compared as
 * the RLS subscribes to them: by address of record).
 */
function checkUniqueness(el: XmlElement, selector: string): void {
  const children = elementChildren(el).filter((c) => c.ns === RESOURCE_LISTS_NS);
  const lists = children.filter((c) => c.local === 'list');
  const entries = children.filter((c) => c.local === 'entry');
  requireUnique(lists, (l) => attributeValue(l, 'name'), (i) => `${selector}/rl:list[${i + 1}]/@name`);
  requireUnique(
    entries,
    (e) => {
      const uri = attributeValue(e, 'uri');
      return uri === undefined ? undefined : entryKey(uri.trim());
    },
    (i) => `${selector}/rl:entry[${i + 1}]/@uri`,
  );
  lists.forEach((l, i) => checkUniqueness(l, `${selector}/rl:list[${i + 1}]`));
}

/**
 * A resource-lists document to the user's stored lists (docs/xcap.md "resource-lists"): each
 * top-level `<list name>` is the stored list of that name (served at sip:<user>+<name>@<domain>),
 * its display name the list's, its entries those of the list and of the lists nested in it
 * (depth first, each resource once). Refused with 409: a top-level list without a name or with a
 * name a SIP user part cannot carry (constraint-failure), `<entry-ref>` and `<external>` (not
 * resolved: constraint-failure), a repeated list name or entry URI (uniqueness-failure).
 */
/** `<external>` hops followed from one list, at most (a chain of references, or a loop). */
const MAX_EXTERNAL_DEPTH = 4;

/**
 * The `<list>` an `<external anchor>` names in `owner`'s own resource-lists document, looked
 * up in `root` (the document being written, so a PUT may add a list and refer to it at once).
 * The anchor is an HTTP URI whatever root the client was given (RCS and OMA clients write
 * `…/resource-lists/users/<own uri>/index/~~/resource-lists/list[@name="rcs"]`).
 */
export function externalList(root: XmlElement, owner: string, anchor: string): XmlElement | undefined {
  let url: URL;
  try {
    url = new URL(anchor);
  } catch {
    return undefined;
  }
  const at = url.pathname.indexOf(`/${RESOURCE_LISTS_AUID}/users/`);
  if (at < 0) return undefined;
  try {
    const uri = parseXcapUri(url.pathname.slice(at), url.search.replace(/^\?/, ''));
    const domain = owner.slice(owner.indexOf('@') + 1);
    if (uri.scope !== 'users' || canonicalXui(uri.xui!, domain) !== owner || uri.documentPath.join('/') !== 'index' || !uri.node || uri.node.terminal) return undefined;
    const found = locate(root, resolveSelector(uri.node, uri.bindings, RESOURCE_LISTS_NS).steps);
    if (found.kind !== 'found') return undefined;
    const el = elementAt(root, found.path);
    return el.ns === RESOURCE_LISTS_NS && el.local === 'list' ? el : undefined;
  } catch (e) {
    if (e instanceof XcapUriError || e instanceof SelectorError) return undefined;
    throw e;
  }
}

/** The entries of a list, those of the lists its `<external>`s name (in `root`, of `owner`) after its own. */
function resolvedEntries(list: ResourceList | readonly ResourceList[], root: XmlElement | undefined, owner: string | undefined, label: string, depth = 0): StoredListEntry[] {
  const flat = flattenEntries(Array.isArray(list) ? list : [list as ResourceList]);
  if (flat.entryRefs.length > 0) refuse('constraint-failure', `${label}: <entry-ref> is not supported (write the entry)`);
  const out: StoredListEntry[] = flat.entries.map((e) => ({ uri: e.uri, ...(e.displayName !== undefined ? { displayName: e.displayName } : {}) }));
  for (const anchor of flat.externals) {
    const el = root && owner !== undefined ? externalList(root, owner, anchor) : undefined;
    if (!el) refuse('constraint-failure', `${label}: <external> ${anchor.slice(0, 200)} is not a <list> of this user's resource-lists document`);
    if (depth >= MAX_EXTERNAL_DEPTH) refuse('constraint-failure', `${label}: <external> lists nested more than ${MAX_EXTERNAL_DEPTH} deep (or in a loop)`);
    const parsed = parseResourceLists(writeXml(wrapList(el)), { maxBytes: 1 << 24, maxMembers: MAX_DOCUMENT_MEMBERS, duplicates: 'drop' });
    if (!parsed.ok) refuse('schema-validation-error', parsed.reason);
    out.push(...resolvedEntries(parsed.document.lists, root, owner, label, depth + 1));
  }
  // Each resource once (RFC 4826 §3.4.1), the first one kept.
  const seen = new Set<string>();
  return out.filter((e) => {
    const k = entryKey(e.uri);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** A `<list>` as the one list of a resource-lists document (its name dropped: it is read for its entries). */
function wrapList(list: XmlElement): XmlElement {
  return { kind: 'element', ns: RESOURCE_LISTS_NS, local: 'resource-lists', prefix: '', attributes: [], children: [{ ...list, attributes: list.attributes.filter((a) => a.local !== 'name' || a.ns !== '') }] };
}

export function listsOfDocument(root: XmlElement, owner?: string): DocumentList[] {
  if (root.ns !== RESOURCE_LISTS_NS || root.local !== 'resource-lists') refuse('schema-validation-error', `the root element must be <resource-lists> of ${RESOURCE_LISTS_NS}`);
  checkUniqueness(root, '/rl:resource-lists');
  const parsed = parseResourceLists(writeXml(root), { maxBytes: 1 << 24, maxMembers: MAX_DOCUMENT_MEMBERS, duplicates: 'drop' });
  if (!parsed.ok) refuse(parsed.tooLarge ? 'constraint-failure' : 'schema-validation-error', parsed.reason);
  const doc = parsed.document;
  if (doc.lists.length > MAX_LISTS_PER_DOCUMENT) refuse('constraint-failure', `more than ${MAX_LISTS_PER_DOCUMENT} lists`);
  return doc.lists.map((l, i) => {
    if (l.name === undefined || !LIST_NAME_RE.test(l.name)) refuse('constraint-failure', `list ${i + 1}: a top-level list needs a name of 1 to 64 letters, digits and . _ ~ - (it is served as sip:<user>+<name>)`);
    return { name: l.name, ...(l.displayName ? { displayName: l.displayName.text } : {}), entries: resolvedEntries(l, root, owner, `list "${l.name}"`) };
  });
}

/** The entries of a `<list>` element (its nested lists' included), for rls-services and references. */
export function entriesOfListElement(list: XmlElement, document?: { readonly root: XmlElement; readonly owner: string }): StoredListEntry[] {
  const parsed = parseResourceLists(writeXml(wrapList(list)), { maxBytes: 1 << 24, maxMembers: MAX_DOCUMENT_MEMBERS, duplicates: 'drop' });
  if (!parsed.ok) refuse('schema-validation-error', parsed.reason);
  return resolvedEntries(parsed.document.lists, document?.root, document?.owner, 'list');
}

/** Same name, display name and entries (in order): nothing to write. */
export function sameList(a: DocumentList, b: DocumentList): boolean {
  if (a.name !== b.name || (a.displayName ?? '') !== (b.displayName ?? '') || a.entries.length !== b.entries.length) return false;
  return a.entries.every((e, i) => entryKey(e.uri) === entryKey(b.entries[i]!.uri) && (e.displayName ?? '') === (b.entries[i]!.displayName ?? ''));
}

function sameLists(a: readonly DocumentList[], b: readonly DocumentList[]): boolean {
  if (a.length !== b.length) return false;
  const byName = new Map(b.map((l) => [l.name, l]));
  return a.every((l) => {
    const o = byName.get(l.name);
    return o !== undefined && sameList(l, o);
  });
}

/** The document of stored lists: one top-level `<list name>` each, in name order. */
export function renderLists(lists: readonly DocumentList[]): Buffer {
  const doc: ResourceListsDocument = {
    lists: [...lists]
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
      .map(
        (l): ResourceList => ({
          kind: 'list',
          name: l.name,
          ...(l.displayName !== undefined ? { displayName: { text: l.displayName } } : {}),
          members: l.entries.map((e) => ({ kind: 'entry' as const, uri: e.uri, ...(e.displayName !== undefined ? { displayName: { text: e.displayName } } : {}) })),
        }),
      ),
  };
  return serializeResourceLists(doc);
}

/** An AdminError of the list operations as the XCAP client sees it. */
export function asConflict(err: unknown): never {
  if (err instanceof AdminError) {
    if (err.code === 'unavailable') refuse('constraint-failure', `lists are not available: ${err.message}`);
    refuse('constraint-failure', err.message);
  }
  throw err;
}

/**
 * The resource-lists usage (RFC 4826 §3): ONE source of truth, the stored lists the RLS
 * serves. A GET renders the user's lists (or gives back the client's own last document, byte
 * for byte, while it still says exactly what the stored lists say: nesting and order kept);
 * a PUT (of the document, an element or an attribute) is applied through the same operations
 * as the admin API and the CLI, so live list subscriptions get a NOTIFY at once.
 */
export function resourceListsUsage(options: {
  readonly lists: () => ListBackend | undefined;
  readonly documents: () => XcapDocumentRepository | undefined;
  /**
   * The lists `owner`'s rls-services document supplies (inline, or copied from another list):
   * absent from a resource-lists PUT, they stay; absent from the client's copy, it still matches.
   */
  readonly supplied?: (owner: string) => Promise<ReadonlySet<string>>;
}): ApplicationUsage {
  const supplied = async (owner: string): Promise<ReadonlySet<string>> => (options.supplied ? options.supplied(owner) : new Set<string>());
  const backend = (): ListBackend => {
    const b = options.lists();
    if (!b) refuse('constraint-failure', 'lists are not available: the store is not open');
    return b;
  };
  const current = async (owner: string): Promise<DocumentList[]> => {
    try {
      return (await backend().listLists(owner)).map((l) => ({ name: l.name, ...(l.displayName !== undefined ? { displayName: l.displayName } : {}), entries: l.entries }));
    } catch (err) {
      return asConflict(err);
    }
  };
  const source: DocumentSource = {
    paths: () => ['index'],
    async read(doc: DocumentRef) {
      const lists = await current(doc.owner);
      const stored = await options.documents()?.get(RESOURCE_LISTS_AUID, doc.owner, doc.path);
      if (stored) {
        const parsed = readXml(stored.content, { maxBytes: 1 << 24, maxDepth: 64 });
        if (parsed.ok) {
          try {
            const mine = listsOfDocument(parsed.root, doc.owner);
            const services = await supplied(doc.owner);
            const compared = lists.filter((l) => !services.has(l.name) || mine.some((m) => m.name === l.name));
            if (sameLists(mine, compared)) return Buffer.from(stored.content, 'utf8');
          } catch {
            // a stored copy that no longer reads: rendered from the lists below
          }
        }
      }
      // No list and no document of the user's: nothing to GET (404), so If-None-Match: * works.
      if (lists.length === 0 && !stored) return undefined;
      return renderLists(lists);
    },
    async write(doc, bytes, root) {
      const wanted = listsOfDocument(root, doc.owner);
      const have = await current(doc.owner);
      const b = backend();
      const set = (l: DocumentList) => b.setList({ owner: doc.owner, name: l.name, ...(l.displayName !== undefined ? { displayName: l.displayName } : {}), entries: l.entries });
      // Lists written so far, with what they were: a list the operations refuse (a bad entry, too
      // many members) puts them back, so a refused PUT changes nothing.
      const done: Array<{ name: string; old: DocumentList | undefined }> = [];
      try {
        for (const l of wanted) {
          const old = have.find((h) => h.name === l.name);
          if (old && sameList(old, l)) continue;
          await set(l);
          done.push({ name: l.name, old });
        }
        const services = await supplied(doc.owner);
        for (const h of have) if (!wanted.some((l) => l.name === h.name) && !services.has(h.name)) await b.deleteList(doc.owner, h.name);
      } catch (err) {
        for (const d of done.reverse()) await (d.old ? set(d.old) : b.deleteList(doc.owner, d.name));
        asConflict(err);
      }
      await options.documents()?.put({ auid: RESOURCE_LISTS_AUID, owner: doc.owner, path: doc.path, content: bytes.toString('utf8'), etag: '' });
    },
    async remove(doc) {
      const have = await current(doc.owner);
      try {
        for (const h of have) await backend().deleteList(doc.owner, h.name);
      } catch (err) {
        asConflict(err);
      }
      await options.documents()?.delete(RESOURCE_LISTS_AUID, doc.owner, doc.path);
      return have.length > 0;
    },
  };
  return {
    auid: RESOURCE_LISTS_AUID,
    mimeType: RESOURCE_LISTS_TYPE,
    defaultNamespace: RESOURCE_LISTS_NS,
    namespaces: [RESOURCE_LISTS_NS],
    writable: true,
    // RFC 4826 §3.5: the document of a user is "index"; the global tree has none.
    acceptsPath: (scope, path) => scope === 'users' && path.length === 1 && path[0] === 'index',
    validate: (root, doc) => {
      listsOfDocument(root, doc.owner);
    },
    source,
  };
}
