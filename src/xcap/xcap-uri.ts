import { parseNodeSelector, SelectorError, type NodeSelector } from './node-selector.js';

/**
 * RFC 4825 §6 XCAP URIs below the XCAP root:
 *
 *   doc-selector  = auid "/" ("global" / "users" "/" xui) "/" document-path
 *   XCAP-URI      = xcap-root "/" doc-selector [ "/~~" node-selector ] [ "?" xmlns() bindings ]
 *
 * Each path segment of the document selector is percent-decoded on its own (so an encoded
 * "/" stays inside its segment); the node selector is decoded as a whole (its quoted values
 * may hold "/"). "." and ".." segments and empty segments are refused: no path escapes the
 * document tree.
 */
export interface XcapUri {
  readonly auid: string;
  /** 'users': a user's tree (`xui` set); 'global': the usage's global tree. */
  readonly scope: 'users' | 'global';
  /** The XCAP User Identifier, a SIP URI as written (decoded). */
  readonly xui?: string;
  /** Segments of the document path inside the user's or global tree (`index`, `dir/doc`). */
  readonly documentPath: readonly string[];
  /** undefined: the request is for the whole document. */
  readonly node?: NodeSelector;
  /** The node selector as it came (decoded), for error bodies. */
  readonly nodeText?: string;
  /** RFC 4825 §6.4 prefix bindings from the query. */
  readonly bindings: ReadonlyMap<string, string>;
}

/** A path under the root with no document in it: `auid/`, `auid/users/xui/` (a directory: 404). */
export class XcapUriError extends Error {
  override name = 'XcapUriError';
  constructor(
    readonly status: 400 | 404,
    message: string,
  ) {
    super(message);
  }
}

const MAX_PATH_CHARS = 8192;
const MAX_SEGMENTS = 16;
const AUID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

function decodeSegment(s: string): string {
  let d: string;
  try {
    d = decodeURIComponent(s);
  } catch {
    throw new XcapUriError(400, `malformed percent-encoding in "${s.slice(0, 64)}"`);
  }
  if (d.includes('\0')) throw new XcapUriError(400, 'NUL in path');
  return d;
}

/**
 * Parses `path` (what follows the XCAP root, starting with "/", still percent-encoded)
 * and `query` (without "?", still encoded).
 */
export function parseXcapUri(path: string, query: string): XcapUri {
  if (path.length > MAX_PATH_CHARS || query.length > MAX_PATH_CHARS) throw new XcapUriError(400, 'XCAP URI too long');
  if (!path.startsWith('/')) throw new XcapUriError(404, 'no document selector');
  let docPart = path.slice(1);
  let nodeRaw: string | undefined;
  const sep = docPart.indexOf('/~~');
  if (sep >= 0) {
    nodeRaw = docPart.slice(sep + 3);
    docPart = docPart.slice(0, sep);
  }
  const raw = docPart.split('/');
  if (raw.length > MAX_SEGMENTS + 3) throw new XcapUriError(400, 'too many path segments');
  const segs = raw.map(decodeSegment);
  const [auid, scope, ...rest] = segs;
  if (!auid || !AUID_RE.test(auid)) throw new XcapUriError(404, 'no such application usage');
  if (scope !== 'users' && scope !== 'global') throw new XcapUriError(404, 'the tree must be "users" or "global"');
  let xui: string | undefined;
  let docPath = rest;
  if (scope === 'users') {
    xui = rest[0];
    if (!xui) throw new XcapUriError(404, 'no XCAP user identifier');
    docPath = rest.slice(1);
  }
  // A trailing "/" names a directory: there are none to list (RFC 4825 §6.2).
  if (docPath.length === 0 || docPath.some((s) => s === '' || s === '.' || s === '..')) {
    throw new XcapUriError(404, 'no document named');
  }
  let node: NodeSelector | undefined;
  let nodeText: string | undefined;
  if (nodeRaw !== undefined) {
    nodeText = decodeSegment(nodeRaw);
    try {
      node = parseNodeSelector(nodeText);
    } catch (e) {
      if (e instanceof SelectorError) throw new XcapUriError(400, e.message);
      throw e;
    }
  }
  return {
    auid,
    scope,
    ...(xui !== undefined ? { xui } : {}),
    documentPath: docPath,
    ...(node ? { node, nodeText: nodeText! } : {}),
    bindings: parseBindings(query),
  };
}

/** RFC 4825 §6.4: `xmlns(prefix=namespace-uri)` repeated, percent-encoded in the query. */
export function parseBindings(query: string): Map<string, string> {
  const out = new Map<string, string>();
  if (query === '') return out;
  const text = decodeSegment(query);
  let rest = text;
  while (rest.length > 0) {
    const m = /^xmlns\(\s*([A-Za-z_][A-Za-z0-9._-]{0,63})\s*=\s*([^()\s]{1,1024})\s*\)/.exec(rest);
    if (!m) throw new XcapUriError(400, 'the query must be xmlns(prefix=namespace) bindings');
    out.set(m[1]!, m[2]!);
    rest = rest.slice(m[0].length).replace(/^[&\s]+/, '');
    if (out.size > 32) throw new XcapUriError(400, 'too many xmlns() bindings');
  }
  return out;
}
