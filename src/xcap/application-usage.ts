import type { XmlElement } from '../presence/pidf/xml-tree.js';

/**
 * An XCAP application usage (RFC 4825 §5): what the engine needs to serve one kind of
 * document. The engine does the protocol (URIs, selectors, entity-tags, errors); a usage
 * says what a valid document is and what happens when one changes. A usage whose documents
 * are a view of other state (pres-rules over the presence rules) also says where the
 * document comes from and where a write goes (`source`).
 */
export interface ApplicationUsage {
  /** §5.1 Application Unique ID: the first path segment. */
  readonly auid: string;
  /** §5 (MIME Type) the MIME type of its documents (a document GET answers with it, a PUT must carry it). */
  readonly mimeType: string;
  /** §5.2 Default document namespace: the namespace of unprefixed names in node selectors. */
  readonly defaultNamespace: string;
  /** The namespaces its documents use, for xcap-caps (RFC 4825 §12). */
  readonly namespaces: readonly string[];
  /** §5.5 naming conventions: may a document have this path (in users/ or global/)? */
  acceptsPath(scope: 'users' | 'global', documentPath: readonly string[]): boolean;
  /** Its global documents are made of users' data (rls-services' index): the admin token only reads them (403 for users). */
  readonly privateGlobal?: boolean;
  /** Clients may write (false: read-only, e.g. xcap-caps; PUT and DELETE get 405). */
  readonly writable: boolean;
  /**
   * §5.3 data validation (schema) and §5.4 data semantics (uniqueness, constraints) of a
   * whole candidate document, after the request's change was made to it. Throws XcapConflict.
   */
  validate(root: XmlElement, doc: DocumentRef): void | Promise<void>;
  /** Where documents live; absent: stored as they are by the engine (the xcap_documents table). */
  readonly source?: DocumentSource;
  /**
   * §5.6 resource interdependencies, side effects: a document was stored (bytes) or
   * deleted (undefined). Called once per committed change, in order per document.
   */
  changed?(doc: DocumentRef, bytes: Buffer | undefined): void | Promise<void>;
}

/** Which document a request is about. */
export interface DocumentRef {
  readonly auid: string;
  readonly scope: 'users' | 'global';
  /** The owner's SIP URI (canonical, `sip:alice@example.com`) in the users tree; '' in global. */
  readonly owner: string;
  /** The document path under the owner's (or the global) tree, "/"-joined. */
  readonly path: string;
}

/**
 * Documents that are views of other state. `read` gives the current bytes (undefined: there
 * is none); `write` makes the state match a validated document, `remove` clears it.
 */
export interface DocumentSource {
  read(doc: DocumentRef): Promise<Buffer | undefined>;
  /** The document paths `owner` may have in this usage (xcap-diff lists those that exist). */
  paths?(owner: string): readonly string[];
  write(doc: DocumentRef, bytes: Buffer, root: XmlElement): Promise<void>;
  remove(doc: DocumentRef): Promise<boolean>;
}
