import { readXml, type XmlLimits } from '../presence/pidf/read-xml.js';
import { escapeAttribute, escapeText, forReason } from '../presence/pidf/xml-escape.js';
import { attributeValue, childElements, collapseWhitespace, textContent, type XmlElement } from '../presence/pidf/xml-tree.js';

/**
 * Resource List Meta-Information (RFC 4662 §5.3), application/rlmi+xml: the first part of
 * every list NOTIFY, saying which resources the list has, the state of each one's
 * subscription, and which body part (by Content-ID) carries its state. Written by the RLS,
 * read by our client library and tests through the same hardened XML reader as PIDF.
 */

/** RFC 4662 §5.3: the RLMI namespace. */
export const RLMI_NS = 'urn:ietf:params:xml:ns:rlmi';
export const RLMI_TYPE = 'application/rlmi+xml';

/** RFC 4662 §5.3: the state of the RLS's back-end subscription to one resource. */
export type InstanceState = 'active' | 'pending' | 'terminated';

/** RFC 4662 §5.3 / RFC 6665 §4.1.3: why a back-end subscription is terminated. */
export type InstanceReason = 'deactivated' | 'probation' | 'rejected' | 'timeout' | 'giveup' | 'noresource' | 'invariant';

/** RFC 4662 §5.3 `<instance>`: one back-end subscription of a resource. */
export interface RlmiInstance {
  readonly id: string;
  readonly state: InstanceState;
  readonly reason?: InstanceReason | (string & NonNullable<unknown>);
  /** Content-ID (without angle brackets) of the body part carrying the resource's state. */
  readonly cid?: string;
}

/** RFC 4662 §5.3 `<resource>`: one member of the list. */
export interface RlmiResource {
  readonly uri: string;
  readonly name?: string;
  readonly instances: readonly RlmiInstance[];
}

/** RFC 4662 §5.3 `<list>`: the root. */
export interface RlmiList {
  /** The list's URI (what the subscriber subscribed to). */
  readonly uri: string;
  /** Starts at 0, one more for every NOTIFY of the subscription. */
  readonly version: number;
  /** True: every resource is listed; false: only those that changed. */
  readonly fullState: boolean;
  readonly name?: string;
  readonly resources: readonly RlmiResource[];
}

/** Writes an RLMI document as UTF-8 bytes. */
export function buildRlmi(list: RlmiList): Buffer {
  const out: string[] = [
    '<?xml version="1.0" encoding="UTF-8"?>\n<list xmlns="',
    RLMI_NS,
    '" uri="',
    escapeAttribute(list.uri),
    '" version="',
    String(list.version),
    '" fullState="',
    list.fullState ? 'true' : 'false',
    '">\n',
  ];
  if (list.name !== undefined) out.push(' <name>', escapeText(list.name), '</name>\n');
  for (const r of list.resources) {
    out.push(' <resource uri="', escapeAttribute(r.uri), '">\n');
    if (r.name !== undefined) out.push('  <name>', escapeText(r.name), '</name>\n');
    for (const i of r.instances) {
      out.push('  <instance id="', escapeAttribute(i.id), '" state="', i.state, '"');
      if (i.reason !== undefined) out.push(' reason="', escapeAttribute(i.reason), '"');
      if (i.cid !== undefined) out.push(' cid="', escapeAttribute(i.cid), '"');
      out.push('/>\n');
    }
    out.push(' </resource>\n');
  }
  out.push('</list>\n');
  return Buffer.from(out.join(''), 'utf8');
}

export type ParseRlmiResult = { readonly ok: true; readonly list: RlmiList } | { readonly ok: false; readonly reason: string };

class RlmiRefusal extends Error {
  constructor(readonly detail: string) {
    super(detail);
  }
}

const STATES: ReadonlySet<string> = new Set<InstanceState>(['active', 'pending', 'terminated']);

/** Reads an RLMI document (RFC 4662 §5.3 schema rules); never throws. */
export function parseRlmi(bytes: Buffer | string, limits?: XmlLimits): ParseRlmiResult {
  try {
    const read = readXml(bytes, { maxBytes: limits?.maxBytes ?? 1024 * 1024, maxDepth: limits?.maxDepth ?? 8 });
    if (!read.ok) return { ok: false, reason: `Invalid rlmi: ${read.reason}` };
    return { ok: true, list: readList(read.root) };
  } catch (e) {
    return { ok: false, reason: `Invalid rlmi: ${e instanceof RlmiRefusal ? e.detail : 'unreadable document'}` };
  }
}

function required(el: XmlElement, name: string): string {
  const v = attributeValue(el, name);
  if (v === undefined || collapseWhitespace(v) === '') throw new RlmiRefusal(`missing ${name}`);
  return collapseWhitespace(v);
}

function firstName(el: XmlElement): string | undefined {
  const names = childElements(el, RLMI_NS, 'name');
  // Several names in different xml:lang are allowed; the first one is kept.
  return names.length > 0 ? textContent(names[0]!) : undefined;
}

function readList(root: XmlElement): RlmiList {
  if (root.ns !== RLMI_NS || root.local !== 'list') throw new RlmiRefusal('root element is not list');
  const uri = required(root, 'uri');
  const v = required(root, 'version');
  if (!/^\d{1,15}$/.test(v)) throw new RlmiRefusal('bad version');
  const fs = required(root, 'fullState');
  if (fs !== 'true' && fs !== 'false' && fs !== '1' && fs !== '0') throw new RlmiRefusal('bad fullState');
  const name = firstName(root);
  const resources = childElements(root, RLMI_NS, 'resource').map((r): RlmiResource => {
    const rname = firstName(r);
    const instances = childElements(r, RLMI_NS, 'instance').map((i): RlmiInstance => {
      const state = required(i, 'state');
      if (!STATES.has(state)) throw new RlmiRefusal(`bad state ${forReason(state)}`);
      const reason = attributeValue(i, 'reason');
      const cid = attributeValue(i, 'cid');
      return {
        id: required(i, 'id'),
        state: state as InstanceState,
        ...(reason !== undefined ? { reason: collapseWhitespace(reason) } : {}),
        ...(cid !== undefined ? { cid: collapseWhitespace(cid) } : {}),
      };
    });
    return { uri: required(r, 'uri'), ...(rname !== undefined ? { name: rname } : {}), instances };
  });
  return { uri, version: Number(v), fullState: fs === 'true' || fs === '1', ...(name !== undefined ? { name } : {}), resources };
}
