import { readXml } from '../../presence/pidf/read-xml.js';
import { attributeValue, elementChildren, textContent, type XmlElement } from '../../presence/pidf/xml-tree.js';
import { RESOURCE_LISTS_NS } from '../../lists/resource-lists.js';
import { splitListUri, type StoredListEntry, type StoredListInfo } from '../../lists/stored-lists.js';
import type { XcapDocumentRepository } from '../../store/repositories/xcap-documents.js';
import type { ApplicationUsage, DocumentRef, DocumentSource } from '../application-usage.js';
import { requireUnique } from '../uniqueness.js';
import { XcapConflict } from '../xcap-error.js';
import { writeXml } from '../xml-writer.js';
import { asConflict, entriesOfListElement, sameList, type ListBackend } from './resource-lists.js';

/** RFC 4826 §4: the rls-services application usage. */
export const RLS_SERVICES_AUID = 'rls-services';
export const RLS_SERVICES_NS = 'urn:ietf:params:xml:ns:rls-services';
export const RLS_SERVICES_TYPE = 'application/rls-services+xml';
/** Services of one document, at most: each is a stored list. */
export const MAX_SERVICES_PER_DOCUMENT = 100;
/** Users' documents the global index is composed of, at most. */
const MAX_GLOBAL_DOCUMENTS = 10_000;

/** One `<service>`, read: the list it serves and where its members come from. */
export interface RlsService {
  /** The service URI as written. */
  readonly uri: string;
  /** The stored list it is (the `<name>` of sip:<user>+<name>@<domain>). */
  readonly name: string;
  /** `<resource-list>`: the XCAP URI of a `<list>` in the user's resource-lists document. */
  readonly resourceList?: string;
  /** An inline `<list>`. */
  readonly list?: XmlElement;
}

function refuse(kind: 'schema-validation-error' | 'constraint-failure', phrase: string): never {
  throw new XcapConflict({ kind, phrase });
}

/**
 * An rls-services document of `owner` (canonical sip:user@domain) to its services
 * (docs/xcap.md "rls-services"): each `<service uri>` must be a list URI of the owner's,
 * sip:<user>+<name>@<domain> in our domain; it has a `<resource-list>` or an inline `<list>`;
 * `<packages>`, when given, names `presence` only (the one event package our RLS serves).
 */
export function servicesOfDocument(root: XmlElement, owner: string): RlsService[] {
  if (root.ns !== RLS_SERVICES_NS || root.local !== 'rls-services') refuse('schema-validation-error', `the root element must be <rls-services> of ${RLS_SERVICES_NS}`);
  const services = elementChildren(root);
  if (services.length > MAX_SERVICES_PER_DOCUMENT) refuse('constraint-failure', `more than ${MAX_SERVICES_PER_DOCUMENT} services`);
  for (const s of services) if (s.ns !== RLS_SERVICES_NS || s.local !== 'service') refuse('schema-validation-error', `<${s.local}> is not allowed in <rls-services>`);
  // RFC 4826 §4.3: service URIs are unique (across users too: ours carry the owner's user part).
  requireUnique(services, (s) => attributeValue(s, 'uri')?.trim().toLowerCase(), (i) => `/rls:rls-services/rls:service[${i + 1}]/@uri`);
  return services.map((s, i) => {
    const uri = attributeValue(s, 'uri')?.trim();
    if (uri === undefined || uri === '') refuse('schema-validation-error', `service ${i + 1} needs a uri`);
    const parts = splitListUri(uri.replace(/^sip:([^@]+)@(.+)$/i, (_m, u: string, d: string) => `sip:${u}@${d.toLowerCase()}`));
    if (!parts || parts.owner !== owner) refuse('constraint-failure', `service ${uri.slice(0, 200)}: a service URI is sip:<user>+<name>@<domain> of the document's owner (${owner})`);
    let resourceList: string | undefined;
    let list: XmlElement | undefined;
    let packages = 0;
    const names: string[] = [];
    for (const c of elementChildren(s)) {
      if (c.ns === RLS_SERVICES_NS && c.local === 'resource-list' && resourceList === undefined && list === undefined) resourceList = textContent(c).trim();
      else if (c.ns === RESOURCE_LISTS_NS && c.local === 'list' && resourceList === undefined && list === undefined) list = c;
      else if (c.ns === RLS_SERVICES_NS && c.local === 'packages' && packages++ === 0) {
        for (const p of elementChildren(c)) {
          if (p.ns !== RLS_SERVICES_NS || p.local !== 'package') refuse('schema-validation-error', `<${p.local}> is not allowed in <packages>`);
          names.push(textContent(p).trim());
        }
        // SIP SIMPLE clients ask for presence and dialog: presence is served, the others are not (docs/xcap.md).
        if (!names.includes('presence')) refuse('constraint-failure', `service ${uri.slice(0, 200)}: presence is the one package served, and it is not among the service's packages`);
      } else refuse('schema-validation-error', `service ${uri.slice(0, 200)}: <${c.local}> is not allowed here (one <resource-list> or <list>, then <packages>)`);
    }
    if (resourceList === undefined && list === undefined) refuse('schema-validation-error', `service ${uri.slice(0, 200)} needs a <resource-list> or a <list>`);
    if (resourceList === '') refuse('schema-validation-error', `service ${uri.slice(0, 200)}: empty <resource-list>`);
    return { uri, name: parts.name, ...(resourceList !== undefined ? { resourceList } : {}), ...(list !== undefined ? { list } : {}) };
  });
}

/** The global index (RFC 4826 §4.3.2): every user's services in one document. */
export function composeGlobal(documents: readonly string[]): Buffer {
  const services: string[] = [];
  for (const d of documents) {
    const r = readXml(d, { maxBytes: 1 << 24, maxDepth: 64 });
    if (!r.ok || r.root.ns !== RLS_SERVICES_NS || r.root.local !== 'rls-services') continue;
    for (const s of elementChildren(r.root)) services.push(`  ${writeXml(s, { declaration: false })}\n`);
  }
  return Buffer.from(`<?xml version="1.0" encoding="UTF-8"?>\n<rls-services xmlns="${RLS_SERVICES_NS}" xmlns:rl="${RESOURCE_LISTS_NS}">\n${services.join('')}</rls-services>\n`, 'utf8');
}

export interface RlsServicesUsage extends ApplicationUsage {
  /** `owner`'s resource lists changed: services that take their members from one follow. */
  listsChanged(owner: string): Promise<void>;
  /** The stored lists `owner`'s services supply: inline lists and copies of another list. */
  suppliedLists(owner: string): Promise<ReadonlySet<string>>;
}

/**
 * The rls-services usage (RFC 4826 §4): a user's `index` names the list URIs the RLS serves
 * and their members. Each service is applied to the stored list it names through the same
 * operations as the admin API (live list subscriptions get a NOTIFY): a `<resource-list>`
 * reference copies the members of that list of the user's resource-lists document (and keeps
 * following it), an inline `<list>` gives them. The document itself is kept as written; the
 * global `index` is composed of all users' documents, read-only.
 */
export function rlsServicesUsage(options: {
  readonly lists: () => ListBackend | undefined;
  readonly documents: () => XcapDocumentRepository | undefined;
  /** The `<list>` element an XCAP URI names in `owner`'s own tree (undefined: none). */
  readonly elementAt: (owner: string, reference: string) => Promise<XmlElement | undefined>;
  /** The root element of `owner`'s resource-lists document (undefined: none). */
  readonly resourceListsRoot: (owner: string) => Promise<XmlElement | undefined>;
}): RlsServicesUsage {
  const backend = (): ListBackend => {
    const b = options.lists();
    if (!b) refuse('constraint-failure', 'lists are not available: the store is not open');
    return b;
  };
  const entriesOf = async (owner: string, s: RlsService): Promise<StoredListEntry[]> => {
    if (s.list) {
      // Its <external>s name lists of the user's resource-lists document (sipsimple's own service does that).
      const root = await options.resourceListsRoot(owner);
      return entriesOfListElement(s.list, root ? { root, owner } : undefined);
    }
    const el = await options.elementAt(owner, s.resourceList!);
    if (!el || el.ns !== RESOURCE_LISTS_NS || el.local !== 'list') {
      refuse('constraint-failure', `service ${s.uri.slice(0, 200)}: <resource-list> ${s.resourceList!.slice(0, 200)} is not a <list> of this user's resource-lists`);
    }
    // Its <external>s are read in the same document (the one the reference is into).
    const root = await options.resourceListsRoot(owner);
    return entriesOfListElement(el, root ? { root, owner } : undefined);
  };
  const apply = async (owner: string, services: readonly RlsService[], only?: (s: RlsService) => boolean): Promise<void> => {
    const resolved: Array<{ s: RlsService; entries: StoredListEntry[] }> = [];
    // Every reference resolved before anything is written: a refused document changes nothing.
    for (const s of services) if (!only || only(s)) resolved.push({ s, entries: await entriesOf(owner, s) });
    const b = backend();
    // Lists written so far, with what they were: one the operations refuse puts them back.
    const done: Array<{ name: string; old: StoredListInfo | undefined }> = [];
    try {
      const have = await b.listLists(owner);
      try {
        for (const { s, entries } of resolved) {
          const old = have.find((h) => h.name === s.name);
          const next = { name: s.name, ...(old?.displayName !== undefined ? { displayName: old.displayName } : {}), entries };
          if (old && sameList(old, next)) continue;
          await b.setList({ owner, ...next });
          done.push({ name: s.name, old });
        }
      } catch (err) {
        for (const d of done.reverse()) {
          if (d.old) await b.setList({ owner, name: d.name, ...(d.old.displayName !== undefined ? { displayName: d.old.displayName } : {}), entries: d.old.entries });
          else await b.deleteList(owner, d.name);
        }
        throw err;
      }
    } catch (err) {
      asConflict(err);
    }
  };
  const source: DocumentSource = {
    paths: () => ['index'],
    async read(doc: DocumentRef) {
      const repo = options.documents();
      if (doc.scope === 'global') return composeGlobal(((await repo?.listByAuid(RLS_SERVICES_AUID, MAX_GLOBAL_DOCUMENTS)) ?? []).map((d) => d.content));
      const stored = await repo?.get(RLS_SERVICES_AUID, doc.owner, doc.path);
      return stored ? Buffer.from(stored.content, 'utf8') : undefined;
    },
    async write(doc, bytes, root) {
      await apply(doc.owner, servicesOfDocument(root, doc.owner));
      await options.documents()?.put({ auid: RLS_SERVICES_AUID, owner: doc.owner, path: doc.path, content: bytes.toString('utf8'), etag: '' });
    },
    async remove(doc) {
      // The stored lists stay (they are the resource-lists document's too); the services document goes.
      return (await options.documents()?.delete(RLS_SERVICES_AUID, doc.owner, doc.path)) ?? false;
    },
  };
  return {
    auid: RLS_SERVICES_AUID,
    mimeType: RLS_SERVICES_TYPE,
    defaultNamespace: RLS_SERVICES_NS,
    namespaces: [RLS_SERVICES_NS, RESOURCE_LISTS_NS],
    writable: true,
    // Every user's list URIs and inline members: not for other users to read (RFC 4826 §4.4.8 keeps XCAP's own-documents-only policy).
    privateGlobal: true,
    // RFC 4826 §4.5: "index" per user, and the global "index" composed of them.
    acceptsPath: (_scope, path) => path.length === 1 && path[0] === 'index',
    validate: async (root, doc) => {
      if (doc.scope === 'global') refuse('constraint-failure', 'the global index is composed of the users\' documents: write those');
      const services = servicesOfDocument(root, doc.owner);
      for (const s of services) await entriesOf(doc.owner, s);
    },
    source,
    async suppliedLists(owner) {
      const stored = await options.documents()?.get(RLS_SERVICES_AUID, owner, 'index');
      const parsed = stored ? readXml(stored.content, { maxBytes: 1 << 24, maxDepth: 64 }) : undefined;
      if (!parsed?.ok) return new Set<string>();
      try {
        return new Set(servicesOfDocument(parsed.root, owner).filter((s) => s.resourceList === undefined || !refersTo(s.resourceList, s.name)).map((s) => s.name));
      } catch {
        return new Set<string>();
      }
    },
    async listsChanged(owner) {
      const stored = await options.documents()?.get(RLS_SERVICES_AUID, owner, 'index');
      if (!stored) return;
      const parsed = readXml(stored.content, { maxBytes: 1 << 24, maxDepth: 64 });
      if (!parsed.ok) return;
      try {
        // Only services that copy another list: one referring to its own list has nothing to follow.
        await apply(owner, servicesOfDocument(parsed.root, owner), (s) => s.resourceList !== undefined && !refersTo(s.resourceList, s.name));
      } catch (err) {
        // A referenced list gone: the served list stays as it was.
        if (!(err instanceof XcapConflict)) throw err;
      }
    },
  };
}

/** The reference names the top-level list `name` (`.../list[@name="name"]`): the service's own list. */
function refersTo(reference: string, name: string): boolean {
  let text: string;
  try {
    text = decodeURIComponent(reference);
  } catch {
    return false;
  }
  const m = /\/~~\/(?:[A-Za-z0-9_-]+:)?resource-lists\/(?:[A-Za-z0-9_-]+:)?list\[@name=(["'])([^"']*)\1\]$/.exec(text);
  return m !== null && m[2] === name;
}
