/**
 * A list NOTIFY (RFC 4662 §5) as the page reads it: a multipart/related body (RFC 2387)
 * whose root is the RLMI document, which names each resource, the state of the server's
 * subscription to it, and the part (by Content-ID) that carries its PIDF document.
 */

const RLMI_NS = 'urn:ietf:params:xml:ns:rlmi';

export interface ListResource {
  readonly uri: string;
  readonly state: 'active' | 'pending' | 'terminated';
  readonly reason?: string;
  /** The resource's PIDF document, when the NOTIFY carries one. */
  readonly pidf?: string;
}

export interface ListNotify {
  readonly version: number;
  /** Every resource of the list (true), or only those that changed. */
  readonly fullState: boolean;
  readonly resources: readonly ListResource[];
}

function param(contentType: string, name: string): string | undefined {
  const m = new RegExp(`;\\s*${name}\\s*=\\s*(?:"([^"]*)"|([^;\\s]*))`, 'i').exec(contentType);
  return m ? (m[1] ?? m[2]) : undefined;
}

const bare = (id: string): string => id.trim().replace(/^<(.*)>$/, '$1');

/** Reads a list NOTIFY body; undefined when it is not one. */
export function readListNotify(contentType: string, body: string): ListNotify | undefined {
  if (!/^\s*multipart\/related/i.test(contentType)) return undefined;
  const boundary = param(contentType, 'boundary');
  if (!boundary) return undefined;
  const start = param(contentType, 'start');
  const parts = new Map<string, { type: string; body: string }>();
  let root: string | undefined;
  const chunks = body.split(`--${boundary}`).slice(1);
  for (const chunk of chunks) {
    if (chunk.startsWith('--')) break;
    const text = chunk.replace(/^[ \t]*\r?\n/, '');
    const end = text.search(/\r?\n\r?\n/);
    if (end < 0) continue;
    const headers = new Map<string, string>();
    for (const line of text.slice(0, end).split(/\r?\n/)) {
      const colon = line.indexOf(':');
      if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
    const partBody = text.slice(end).replace(/^\r?\n\r?\n/, '').replace(/\r?\n$/, '');
    const id = bare(headers.get('content-id') ?? `part${parts.size}`);
    parts.set(id, { type: headers.get('content-type') ?? '', body: partBody });
    if (root === undefined && (start === undefined || bare(start) === id)) root = id;
  }
  const rlmi = root !== undefined ? parts.get(root) : undefined;
  if (!rlmi) return undefined;
  const doc = new DOMParser().parseFromString(rlmi.body, 'application/xml');
  const list = doc.documentElement;
  if (doc.getElementsByTagName('parsererror').length > 0 || list.namespaceURI !== RLMI_NS || list.localName !== 'list') return undefined;
  const resources: ListResource[] = [];
  for (const r of doc.getElementsByTagNameNS(RLMI_NS, 'resource')) {
    const uri = r.getAttribute('uri');
    const instance = r.getElementsByTagNameNS(RLMI_NS, 'instance')[0];
    if (!uri || !instance) continue;
    const state = instance.getAttribute('state');
    if (state !== 'active' && state !== 'pending' && state !== 'terminated') continue;
    const reason = instance.getAttribute('reason') ?? undefined;
    const cid = instance.getAttribute('cid');
    const part = cid ? parts.get(bare(cid)) : undefined;
    resources.push({ uri, state, ...(reason ? { reason } : {}), ...(part ? { pidf: part.body } : {}) });
  }
  const fullState = list.getAttribute('fullState');
  return { version: Number(list.getAttribute('version') ?? 0), fullState: fullState === 'true' || fullState === '1', resources };
}
