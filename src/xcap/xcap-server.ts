import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { readXml } from '../presence/pidf/read-xml.js';
import type { XmlElement } from '../presence/pidf/xml-tree.js';
import type { XcapDocumentRepository } from '../store/repositories/xcap-documents.js';
import { KeyedQueue } from '../util/keyed-queue.js';
import type { ApplicationUsage, DocumentRef } from './application-usage.js';
import {
  ancestorsOf,
  depthOf,
  elementAt,
  insertionIndex,
  locate,
  rebuild,
  resolveSelector,
  withAttribute,
  withoutAttribute,
  type ResolvedSelector,
} from './document-tree.js';
import { SelectorError, splitSteps } from './node-selector.js';
import type { XcapAuthenticator, XcapIdentity } from './xcap-auth.js';
import { XCAP_ERROR_TYPE, XcapConflict, xcapErrorBody, type XcapErrorCondition } from './xcap-error.js';
import { parseXcapUri, XcapUriError, type XcapUri } from './xcap-uri.js';
import { writeXml } from './xml-writer.js';

/** RFC 4825 §15.2: the MIME types of element, attribute and namespace resources. */
export const XCAP_EL_TYPE = 'application/xcap-el+xml';
export const XCAP_ATT_TYPE = 'application/xcap-att+xml';
export const XCAP_NS_TYPE = 'application/xcap-ns+xml';

export interface XcapServerOptions {
  /** The XCAP root's path on this HTTP server (xcap.root, `/xcap-root` by default). */
  readonly root: string;
  readonly usages: readonly ApplicationUsage[];
  /** The stored documents; undefined while the store is not open (503). */
  readonly documents: () => XcapDocumentRepository | undefined;
  readonly auth: XcapAuthenticator;
  /** sip.domain: the domain of every user tree. */
  readonly domain: () => string;
  /** Largest document (and request body) in bytes. */
  readonly maxDocumentBytes: number;
  /** Deepest element nesting of a document. */
  readonly maxDepth: number;
  readonly logger: Logger;
  /** A document of a user's tree changed (written or deleted): xcap-diff tells its watchers. */
  readonly onChanged?: (owner: string, auid: string) => void | Promise<void>;
}

/** Documents of one user listed for xcap-diff, at most. */
const MAX_DOCUMENTS_LISTED = 1000;

/** A document as the engine handles it: its bytes and entity-tag. */
interface Current {
  readonly bytes: Buffer;
  readonly etag: string;
}

/** Requests of one document waiting their turn, at most. */
const MAX_QUEUED_PER_DOCUMENT = 32;

/** An answer, before it is sent. */
interface Answer {
  readonly status: number;
  readonly body?: Buffer | string;
  readonly contentType?: string;
  readonly etag?: string;
  readonly headers?: ReadonlyArray<readonly [string, string]>;
}

class Refusal extends Error {
  constructor(readonly answer: Answer) {
    super(String(answer.status));
  }
}

function plain(status: number, text: string, headers?: ReadonlyArray<readonly [string, string]>): Refusal {
  return new Refusal({ status, body: text + '\n', contentType: 'text/plain; charset=utf-8', ...(headers ? { headers } : {}) });
}

function conflict(c: XcapErrorCondition): XcapConflict {
  return new XcapConflict(c);
}

/** Strong entity-tag of a document's bytes (RFC 4825 §7.11: it changes whenever the document does). */
export function entityTag(bytes: Buffer | string): string {
  return `"${createHash('sha256').update(bytes).digest('base64url').slice(0, 27)}"`;
}

/**
 * The XCAP server (RFC 4825) on the HTTP side: URIs under the XCAP root, documents,
 * elements and attributes read, written and deleted, entity-tags and conditional
 * requests, the §11 error bodies; requests of one document run one at a time, so two PUTs
 * racing on one entity-tag are decided in order (the second gets 412).
 */
export class XcapServer {
  private readonly usages = new Map<string, ApplicationUsage>();
  private readonly queue = new KeyedQueue(MAX_QUEUED_PER_DOCUMENT);
  private readonly root: string;
  /** Owners whose documents a request is writing now (their rule changes are told once, after it). */
  readonly writing = new Map<string, number>();

  constructor(private readonly options: XcapServerOptions) {
    this.root = options.root.replace(/\/+$/, '');
    for (const u of options.usages) this.usages.set(u.auid, u);
  }

  /** Adds an application usage (resource-lists, rls-services...): served from now on, listed in xcap-caps. */
  register(usage: ApplicationUsage): void {
    if (this.usages.has(usage.auid)) throw new Error(`application usage ${usage.auid} registered twice`);
    this.usages.set(usage.auid, usage);
  }

  get applicationUsages(): readonly ApplicationUsage[] {
    return [...this.usages.values()];
  }

  /** The request is under the XCAP root (this server answers it). */
  owns(pathname: string): boolean {
    return pathname === this.root || pathname.startsWith(this.root + '/');
  }

  /** Answers a request under the root. Never throws. */
  async handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const log = this.options.logger;
    let answer: Answer;
    try {
      answer = await this.answer(req, url);
    } catch (err) {
      if (err instanceof Refusal) answer = err.answer;
      else if (err instanceof XcapConflict) answer = { status: 409, body: xcapErrorBody(err.condition), contentType: XCAP_ERROR_TYPE };
      else {
        log.error({ err, method: req.method, path: url.pathname }, 'xcap: request failed');
        answer = { status: 500, body: 'internal error\n', contentType: 'text/plain; charset=utf-8' };
      }
    }
    log.debug({ method: req.method, path: url.pathname, status: answer.status }, 'xcap request');
    sendAnswer(res, answer, req.method === 'HEAD');
  }

  private async answer(req: IncomingMessage, url: URL): Promise<Answer> {
    const method = req.method ?? 'GET';
    if (!['GET', 'HEAD', 'PUT', 'DELETE'].includes(method)) throw plain(405, `method ${method} not allowed`, [['Allow', 'GET, PUT, DELETE']]);
    // RFC 4825 §13: nobody learns anything of the tree before authenticating.
    const auth = await this.options.auth.authenticate(req);
    if (!auth.ok) throw plain(auth.status, auth.reason, auth.headers);
    // The path as it came (URL keeps percent-escapes): §6 decodes each part itself.
    const rawPath = url.pathname.slice(this.root.length);
    let uri: XcapUri;
    try {
      uri = parseXcapUri(rawPath, url.search.replace(/^\?/, ''));
    } catch (e) {
      if (e instanceof XcapUriError) throw plain(e.status, e.message);
      throw e;
    }
    const usage = this.usages.get(uri.auid);
    if (!usage) throw plain(404, `no application usage "${uri.auid}"`);
    const doc = this.documentRef(uri, auth.identity, method);
    if (doc.scope === 'global' && usage.privateGlobal && auth.identity.kind !== 'admin') throw plain(403, `the global ${uri.auid} documents are the users' data: the admin token reads them`);
    if (!usage.acceptsPath(uri.scope, uri.documentPath)) throw plain(404, `no document "${doc.path}" in ${uri.auid}`);
    if (method !== 'GET' && method !== 'HEAD' && !usage.writable) throw plain(405, `${uri.auid} documents are read-only`, [['Allow', 'GET']]);
    let selector: ResolvedSelector | undefined;
    try {
      selector = uri.node ? resolveSelector(uri.node, uri.bindings, usage.defaultNamespace) : undefined;
    } catch (e) {
      if (e instanceof SelectorError) throw plain(400, e.message);
      throw e;
    }
    const key = `${doc.auid}\0${doc.owner}\0${doc.path}`;
    const body = method === 'PUT' ? await this.readBody(req) : undefined;
    const run = this.queue.run(key, async () => {
      const writes = method === 'PUT' || method === 'DELETE';
      if (writes) this.writing.set(doc.owner, (this.writing.get(doc.owner) ?? 0) + 1);
      try {
        return await this.perform(method, req, usage, doc, uri, selector, body);
      } finally {
        if (writes) {
          const n = (this.writing.get(doc.owner) ?? 1) - 1;
          if (n > 0) this.writing.set(doc.owner, n);
          else this.writing.delete(doc.owner);
        }
      }
    });
    if (!run) throw plain(503, 'too many requests for this document', [['Retry-After', '1']]);
    return run;
  }

  /** §6.2: the document a request names; a user reaches its own tree only (RFC 4825 §13: authorization). */
  private documentRef(uri: XcapUri, who: XcapIdentity, method: string): DocumentRef {
    const path = uri.documentPath.join('/');
    if (uri.scope === 'global') {
      if (who.kind !== 'admin' && method !== 'GET' && method !== 'HEAD') throw plain(403, 'the global tree is read-only for users');
      return { auid: uri.auid, scope: 'global', owner: '', path };
    }
    const owner = canonicalXui(uri.xui!, this.options.domain());
    if (!owner) throw plain(404, `no such user "${uri.xui!.slice(0, 128)}"`);
    if (who.kind === 'user' && who.aor !== owner) throw plain(403, 'a user reaches its own documents only');
    return { auid: uri.auid, scope: 'users', owner, path };
  }

  private async readBody(req: IncomingMessage): Promise<Buffer> {
    const max = this.options.maxDocumentBytes;
    const declared = Number(req.headers['content-length'] ?? NaN);
    if (declared > max) throw plain(413, `request body over ${max} bytes`, [['Connection', 'close']]);
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size > max) throw plain(413, `request body over ${max} bytes`, [['Connection', 'close']]);
      chunks.push(chunk as Buffer);
    }
    return Buffer.concat(chunks);
  }

  private async load(usage: ApplicationUsage, doc: DocumentRef): Promise<Current | undefined> {
    if (usage.source) {
      const bytes = await usage.source.read(doc);
      return bytes ? { bytes, etag: entityTag(bytes) } : undefined;
    }
    const rec = await this.repository().get(doc.auid, doc.owner, doc.path);
    return rec ? { bytes: Buffer.from(rec.content, 'utf8'), etag: rec.etag } : undefined;
  }

  private repository(): XcapDocumentRepository {
    const r = this.options.documents();
    if (!r) throw plain(503, 'documents are not available: the store is not open', [['Retry-After', '5']]);
    return r;
  }

  private async perform(
    method: string,
    req: IncomingMessage,
    usage: ApplicationUsage,
    doc: DocumentRef,
    uri: XcapUri,
    selector: ResolvedSelector | undefined,
    body: Buffer | undefined,
  ): Promise<Answer> {
    const current = await this.load(usage, doc);
    const pre = preconditions(req, current, method);
    if (pre) return pre;
    if (method === 'GET' || method === 'HEAD') {
      if (!current) throw plain(404, 'no such document');
      if (!selector) return { status: 200, body: current.bytes, contentType: usage.mimeType, etag: current.etag };
      return this.readNode(current, selector);
    }
    if (method === 'DELETE') {
      if (!current) throw plain(404, 'no such document');
      if (!selector) {
        await this.remove(usage, doc, current.etag);
        return { status: 200 };
      }
      const root = this.parseStored(current);
      return this.commit(usage, doc, current, deleteNode(root, selector), 200);
    }
    // PUT
    if (!selector) {
      const type = mediaType(req);
      if (type !== usage.mimeType) throw plain(415, `a ${usage.auid} document is ${usage.mimeType}`);
      const root = this.parseDocument(body!);
      await this.validate(usage, doc, root);
      const etag = await this.store(usage, doc, body!, root, current?.etag);
      return { status: current ? 200 : 201, etag };
    }
    if (!current) throw conflict({ kind: 'no-parent', phrase: 'the document does not exist', ancestor: this.ancestorUri(req, doc) });
    const root = this.parseStored(current);
    const changed = putNode(root, selector, body!, mediaType(req), uri, this.options, (steps) => this.ancestorUri(req, doc, steps));
    return this.commit(usage, doc, current, changed.root, changed.created ? 201 : 200);
  }

  private async commit(usage: ApplicationUsage, doc: DocumentRef, current: Current, root: XmlElement, status: number): Promise<Answer> {
    if (depthOf(root) > this.options.maxDepth) throw conflict({ kind: 'constraint-failure', phrase: 'document nested too deeply' });
    await this.validate(usage, doc, root);
    const bytes = Buffer.from(writeXml(root), 'utf8');
    if (bytes.length > this.options.maxDocumentBytes) throw conflict({ kind: 'constraint-failure', phrase: 'document too large' });
    const etag = await this.store(usage, doc, bytes, root, current.etag);
    return { status, etag };
  }

  private async validate(usage: ApplicationUsage, doc: DocumentRef, root: XmlElement): Promise<void> {
    await usage.validate(root, doc);
  }

  /**
   * Writes the document; `before` is the entity-tag it was read with (undefined: it did not
   * exist). Stored documents are written compare-and-set on it, so two servers sharing the
   * database serialise PUTs by entity-tag as one process does with its queue.
   */
  private async store(usage: ApplicationUsage, doc: DocumentRef, bytes: Buffer, root: XmlElement, before: string | undefined): Promise<string> {
    if (usage.source) await usage.source.write(doc, bytes, root);
    else {
      const etag = entityTag(bytes);
      const done = await this.repository().putIf({ auid: doc.auid, owner: doc.owner, path: doc.path, content: bytes.toString('utf8'), etag }, before);
      if (!done) throw plain(412, 'precondition failed: the document changed meanwhile');
    }
    await this.notify(usage, doc, bytes);
    // A view may store what it read differently (pres-rules): the tag is of what a GET gives now.
    const now = await this.load(usage, doc);
    return now?.etag ?? entityTag(bytes);
  }

  private async remove(usage: ApplicationUsage, doc: DocumentRef, before: string): Promise<void> {
    if (usage.source) await usage.source.remove(doc);
    else if (!(await this.repository().delete(doc.auid, doc.owner, doc.path, before))) throw plain(412, 'precondition failed: the document changed meanwhile');
    await this.notify(usage, doc, undefined);
  }

  /**
   * The element an absolute or root-relative XCAP URI names in `owner`'s own tree (another
   * document referring to it: an OMA external list), undefined when it names nothing there.
   */
  async elementAt(owner: string, reference: string): Promise<XmlElement | undefined> {
    let url: URL;
    try {
      url = new URL(reference, 'http://localhost');
    } catch {
      return undefined;
    }
    if (!this.owns(url.pathname)) return undefined;
    let uri: XcapUri;
    try {
      uri = parseXcapUri(url.pathname.slice(this.root.length), url.search.replace(/^\?/, ''));
    } catch {
      return undefined;
    }
    const usage = this.usages.get(uri.auid);
    if (!usage || uri.scope !== 'users' || canonicalXui(uri.xui!, this.options.domain()) !== owner || !uri.node || uri.node.terminal) return undefined;
    let selector: ResolvedSelector;
    try {
      selector = resolveSelector(uri.node, uri.bindings, usage.defaultNamespace);
    } catch {
      return undefined;
    }
    const current = await this.load(usage, { auid: uri.auid, scope: 'users', owner, path: uri.documentPath.join('/') });
    if (!current) return undefined;
    const parsed = readXml(current.bytes, { maxBytes: Math.max(this.options.maxDocumentBytes, current.bytes.length), maxDepth: this.options.maxDepth });
    if (!parsed.ok) return undefined;
    const found = locate(parsed.root, selector.steps);
    return found.kind === 'found' ? elementAt(parsed.root, found.path) : undefined;
  }

  /** Every document of `owner` with its entity-tag, by selector relative to the root (`auid/users/xui/path`). */
  async documentsOf(owner: string): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    const sel = (auid: string, path: string) => `${auid}/users/${owner}/${path}`;
    for (const u of this.usages.values()) {
      const paths = u.source?.paths?.(owner) ?? [];
      for (const path of paths) {
        const doc: DocumentRef = { auid: u.auid, scope: 'users', owner, path };
        const cur = await this.load(u, doc);
        if (cur) out.set(sel(u.auid, path), cur.etag);
      }
    }
    const repo = this.options.documents();
    if (repo) {
      for (const d of await repo.listByOwner(owner, MAX_DOCUMENTS_LISTED)) {
        const u = this.usages.get(d.auid);
        if (u && !u.source) out.set(sel(d.auid, d.path), d.etag);
      }
    }
    return out;
  }

  private async notify(usage: ApplicationUsage, doc: DocumentRef, bytes: Buffer | undefined): Promise<void> {
    // Stored already: the change stands; what fails to follow from it is logged.
    try {
      await usage.changed?.(doc, bytes);
    } catch (err) {
      this.options.logger.error({ err, auid: doc.auid, owner: doc.owner, path: doc.path }, 'xcap: change not applied everywhere');
    }
    try {
      if (doc.scope === 'users') await this.options.onChanged?.(doc.owner, doc.auid);
    } catch (err) {
      this.options.logger.error({ err, auid: doc.auid, owner: doc.owner, path: doc.path }, 'xcap: documents depending on the change not updated');
    }
  }

  private parseDocument(bytes: Buffer): XmlElement {
    const r = readXml(bytes, { maxBytes: this.options.maxDocumentBytes, maxDepth: this.options.maxDepth });
    if (!r.ok) throw conflict(r.reason === 'not UTF-8' ? { kind: 'not-utf-8' } : { kind: 'not-well-formed', phrase: r.reason });
    return r.root;
  }

  /** A stored document parses (it was checked when written); if not, nothing can be edited in it. */
  private parseStored(current: Current): XmlElement {
    const r = readXml(current.bytes, { maxBytes: Math.max(this.options.maxDocumentBytes, current.bytes.length), maxDepth: this.options.maxDepth });
    if (!r.ok) throw plain(500, 'stored document does not parse');
    return r.root;
  }

  private readNode(current: Current, selector: ResolvedSelector): Answer {
    const parsed = readXml(current.bytes, { maxBytes: Math.max(this.options.maxDocumentBytes, current.bytes.length), maxDepth: this.options.maxDepth });
    if (!parsed.ok) throw plain(500, 'stored document does not parse');
    const found = locate(parsed.root, selector.steps);
    if (found.kind !== 'found') throw plain(404, found.kind === 'many' ? 'the node selector selects more than one element' : 'no such element');
    const el = elementAt(parsed.root, found.path);
    const t = selector.terminal;
    if (!t) {
      return { status: 200, body: writeXml(el, { declaration: false, hints: hintsOf(parsed.rootDeclarations) }), contentType: XCAP_EL_TYPE, etag: current.etag };
    }
    if (t.kind === 'attribute') {
      const a = el.attributes.find((x) => x.local === t.local && x.ns === t.ns);
      if (!a) throw plain(404, 'no such attribute');
      return { status: 200, body: escapeAttValue(a.value), contentType: XCAP_ATT_TYPE, etag: current.etag };
    }
    // §6.3 namespace selector: the element, empty, with the namespace bindings in scope on it
    // (the root's declarations, and the prefixes the elements down to it were written with).
    const scope = new Map(Object.entries(parsed.rootDeclarations));
    for (const e of ancestorsOf(parsed.root, found.path)) if (e.ns !== '' && !scope.has(e.prefix)) scope.set(e.prefix, e.ns);
    const decls = [...scope].map(([p, uri]) => ` ${p ? `xmlns:${p}` : 'xmlns'}="${escapeAttValue(uri)}"`);
    const name = el.prefix ? `${el.prefix}:${el.local}` : el.local;
    return { status: 200, body: `<${name}${decls.join('')}/>`, contentType: XCAP_NS_TYPE, etag: current.etag };
  }

  /**
   * §11.2 <ancestor>: the HTTP URI of the closest existing ancestor: the user's tree when the
   * document does not exist (`steps` undefined), else the document with the steps that exist.
   */
  private ancestorUri(req: IncomingMessage, doc: DocumentRef, steps?: readonly string[]): string {
    const host = (req.headers.host ?? 'localhost').slice(0, 255);
    const scheme = (req.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http';
    const base = `${scheme}://${host}${this.root}/${doc.auid}/${doc.scope === 'users' ? `users/${doc.owner}` : 'global'}`;
    if (steps === undefined) return base;
    const docUri = `${base}/${doc.path}`;
    // The selector's characters that may not stand in a URI are percent-encoded (§6).
    const encoded = steps.join('/').replace(/["[\] <>%]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
    return steps.length === 0 ? docUri : `${docUri}/~~/${encoded}`;
  }
}

/** Namespace URI to the prefix the document declared it with. */
function hintsOf(decls: Readonly<Record<string, string>>): Map<string, string> {
  const m = new Map<string, string>();
  for (const [p, uri] of Object.entries(decls)) if (p && !m.has(uri)) m.set(uri, p);
  return m;
}

function mediaType(req: IncomingMessage): string {
  return (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
}

/** An attribute value as it would stand between double quotes (RFC 4825 §7.9, §8.3). */
function escapeAttValue(v: string): string {
  return v.replace(/[&<"]/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : '&quot;'));
}

/** RFC 4825 §7.11 / RFC 9110 §13: If-Match and If-None-Match against the document's tag. */
function preconditions(req: IncomingMessage, current: Current | undefined, method: string): Answer | undefined {
  const ifMatch = req.headers['if-match'];
  const ifNoneMatch = req.headers['if-none-match'];
  const tags = (v: string) => v.split(',').map((t) => t.trim()).filter((t) => t.length > 0);
  if (ifMatch !== undefined) {
    const list = tags(ifMatch);
    const ok = current !== undefined && (list.includes('*') || list.includes(current.etag));
    if (!ok) return { status: 412, body: 'precondition failed: the document is not the one named by If-Match\n', contentType: 'text/plain; charset=utf-8' };
  }
  if (ifNoneMatch !== undefined) {
    const list = tags(ifNoneMatch).map((t) => t.replace(/^W\//, ''));
    const hit = current !== undefined && (list.includes('*') || list.includes(current.etag));
    if (hit) {
      if (method === 'GET' || method === 'HEAD') return { status: 304, etag: current.etag };
      return { status: 412, body: 'precondition failed: If-None-Match\n', contentType: 'text/plain; charset=utf-8' };
    }
  }
  return undefined;
}

/** RFC 4825 §6.2 XUI: `sip:user@domain` of our domain, canonical; undefined for anything else. */
export function canonicalXui(xui: string, domain: string): string | undefined {
  const m = /^sips?:([A-Za-z0-9][A-Za-z0-9._~+-]{0,63})@([A-Za-z0-9.-]{1,253})$/i.exec(xui);
  if (!m || m[2]!.toLowerCase() !== domain.toLowerCase()) return undefined;
  return `sip:${m[1]!}@${m[2]!.toLowerCase()}`;
}

/** The selector's own text, cut into steps outside quotes, for <ancestor> URIs (it parsed already). */
function stepTexts(uri: XcapUri): string[] {
  return splitSteps((uri.nodeText ?? '').slice(1));
}

/** §8.4 DELETE of an element or attribute, and its idempotency check. */
function deleteNode(root: XmlElement, selector: ResolvedSelector): XmlElement {
  const found = locate(root, selector.steps);
  if (found.kind !== 'found') throw plain(404, found.kind === 'many' ? 'the node selector selects more than one element' : 'no such element');
  const t = selector.terminal;
  if (t?.kind === 'namespace') throw plain(405, 'namespace bindings cannot be deleted', [['Allow', 'GET']]);
  if (t?.kind === 'attribute') {
    const el = elementAt(root, found.path);
    if (!el.attributes.some((a) => a.local === t.local && a.ns === t.ns)) throw plain(404, 'no such attribute');
    return rebuild(root, found.path, (e) => withoutAttribute(e, t.ns, t.local))!;
  }
  if (found.path.length === 1) throw conflict({ kind: 'cannot-delete', phrase: 'the root element cannot be deleted (delete the document)' });
  const out = rebuild(root, found.path, () => undefined)!;
  // §8.4: after the delete, the same URI must select nothing (else a retry would delete another).
  if (locate(out, selector.steps).kind !== 'none') throw conflict({ kind: 'cannot-delete', phrase: 'the node selector would select another element after the delete' });
  return out;
}

/** §8.2.3, §8.2.4: PUT of an element (create or replace) or of an attribute. */
function putNode(
  root: XmlElement,
  selector: ResolvedSelector,
  body: Buffer,
  type: string,
  uri: XcapUri,
  limits: { readonly maxDocumentBytes: number; readonly maxDepth: number },
  ancestorOf: (steps: readonly string[]) => string,
): { root: XmlElement; created: boolean } {
  const t = selector.terminal;
  const texts = stepTexts(uri);
  if (t?.kind === 'namespace') throw plain(405, 'namespace bindings cannot be written', [['Allow', 'GET']]);
  if (t?.kind === 'attribute') {
    if (type !== XCAP_ATT_TYPE) throw plain(415, `an attribute is ${XCAP_ATT_TYPE}`);
    const value = attValue(body);
    const found = locate(root, selector.steps);
    if (found.kind === 'many') throw conflict({ kind: 'cannot-insert', phrase: 'the node selector selects more than one element' });
    if (found.kind === 'none') throw conflict({ kind: 'no-parent', ancestor: ancestorOf(closestExisting(root, selector, texts)) });
    const existed = elementAt(root, found.path).attributes.some((a) => a.local === t.local && a.ns === t.ns);
    const out = rebuild(root, found.path, (e) => withAttribute(e, { ns: t.ns, local: t.local, prefix: '', value }))!;
    // The attribute may be the one the selector's own predicate tests: it must still select the element.
    const again = locate(out, selector.steps);
    if (again.kind !== 'found' || again.path.join() !== found.path.join()) throw conflict({ kind: 'cannot-insert', phrase: 'the URI would no longer select this attribute' });
    return { root: out, created: !existed };
  }
  if (type !== XCAP_EL_TYPE) throw plain(415, `an element is ${XCAP_EL_TYPE}`);
  const found = locate(root, selector.steps);
  if (found.kind === 'many') throw conflict({ kind: 'cannot-insert', phrase: 'the node selector selects more than one element' });
  const contextPath = found.kind === 'found' ? found.path : undefined;
  const el = parseFragment(body, root, limits);
  const steps = selector.steps;
  const last = steps[steps.length - 1]!;
  let out: XmlElement;
  let created = false;
  if (found.kind === 'found') {
    out = contextPath!.length === 1 ? el : rebuild(root, contextPath!, () => el)!;
  } else {
    const parent = steps.length === 1 ? undefined : locate(root, steps.slice(0, -1));
    if (!parent || parent.kind !== 'found') {
      if (steps.length === 1) throw conflict({ kind: 'cannot-insert', phrase: 'a document has one root element' });
      throw conflict({ kind: 'no-parent', ancestor: ancestorOf(closestExisting(root, selector, texts)) });
    }
    const parentEl = elementAt(root, parent.path);
    const at = insertionIndex(parentEl.children, last);
    if (at < 0) throw conflict({ kind: 'cannot-insert', phrase: 'fewer siblings than the position asks' });
    out = rebuild(root, parent.path, (p) => ({ ...p, children: [...p.children.slice(0, at), el, ...p.children.slice(at)] }))!;
    created = true;
  }
  // §8.2.3: the URI must select exactly the element just written (a GET gives it back).
  const again = locate(out, steps);
  if (again.kind !== 'found' || elementAt(out, again.path) !== el) {
    throw conflict({ kind: 'cannot-insert', phrase: 'the element written would not be the one the URI selects' });
  }
  return { root: out, created };
}

/** The steps (as text) of the deepest element of the selector that exists. */
function closestExisting(root: XmlElement, selector: ResolvedSelector, texts: readonly string[]): string[] {
  for (let n = selector.steps.length - 1; n >= 1; n--) {
    if (locate(root, selector.steps.slice(0, n)).kind === 'found') return texts.slice(0, n) as string[];
  }
  return [];
}

/**
 * §8.2.3: the body is one element, namespace-well-formed where it goes: prefixes the document
 * declares on its root may be used without declaring them again.
 */
function parseFragment(body: Buffer, root: XmlElement, limits: { readonly maxDocumentBytes: number; readonly maxDepth: number }): XmlElement {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(body);
  } catch {
    throw conflict({ kind: 'not-utf-8' });
  }
  text = text.replace(/^\uFEFF?\s*<\?xml[^>]*\?>/, '');
  if (/<!DOCTYPE|<!ENTITY/i.test(text)) throw conflict({ kind: 'not-xml-frag', phrase: 'markup declarations are refused' });
  const decls = collectRootNamespaces(root);
  const WRAP = 'urn:x-simple-presence:xcap-fragment';
  const attrs = [...decls].map(([p, uri]) => ` ${p ? `xmlns:${p}` : 'xmlns'}="${escapeAttValue(uri)}"`).join('');
  const wrapped = `<xcapfragment:w xmlns:xcapfragment="${WRAP}"${attrs}>${text}</xcapfragment:w>`;
  const r = readXml(wrapped, { maxBytes: limits.maxDocumentBytes + 4096, maxDepth: limits.maxDepth + 1 });
  if (!r.ok) throw conflict(r.reason === 'not UTF-8' ? { kind: 'not-utf-8' } : { kind: 'not-xml-frag', phrase: r.reason });
  const elements = r.root.children.filter((c) => c.kind === 'element');
  const texts = r.root.children.filter((c) => c.kind === 'text' && c.text.trim() !== '');
  if (elements.length !== 1 || texts.length > 0) throw conflict({ kind: 'not-xml-frag', phrase: 'the body must be exactly one element' });
  return elements[0] as XmlElement;
}

/** The root's namespaces (prefix hint to URI), the default one included. */
function collectRootNamespaces(root: XmlElement): Map<string, string> {
  const m = new Map<string, string>();
  const walk = (el: XmlElement, depth: number) => {
    if (el.ns !== '' && !m.has(el.prefix)) m.set(el.prefix, el.ns);
    if (depth < 3) for (const c of el.children) if (c.kind === 'element') walk(c, depth + 1);
  };
  walk(root, 1);
  return m;
}

/** §8.2.4: the body is an attribute value as written between quotes (entities decoded). */
function attValue(body: Buffer): string {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(body);
  } catch {
    throw conflict({ kind: 'not-utf-8' });
  }
  if (text.length > 4096 || /[<"]/.test(text)) throw conflict({ kind: 'not-xml-att-value' });
  const r = readXml(`<a v="${text}"/>`, { maxBytes: 8192 });
  if (!r.ok) throw conflict({ kind: 'not-xml-att-value' });
  return r.root.attributes[0]?.value ?? '';
}

function sendAnswer(res: ServerResponse, a: Answer, headOnly: boolean): void {
  if (res.headersSent) return;
  const headers: Array<[string, string]> = [['Cache-Control', 'no-store']];
  for (const [k, v] of a.headers ?? []) headers.push([k, v]);
  if (a.etag) headers.push(['ETag', a.etag]);
  const body = a.body === undefined ? undefined : typeof a.body === 'string' ? Buffer.from(a.body, 'utf8') : a.body;
  if (a.contentType && body) headers.push(['Content-Type', a.contentType]);
  if (a.status !== 204 && a.status !== 304) headers.push(['Content-Length', String(body?.length ?? 0)]);
  const flat: string[] = [];
  for (const [k, v] of headers) flat.push(k, v);
  res.writeHead(a.status, flat);
  res.end(headOnly || a.status === 304 ? undefined : body);
}
