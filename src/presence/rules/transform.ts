import { PIDF_NS } from '../pidf/namespaces.js';
import type { PresenceDocument, Tuple } from '../pidf/presence-document.js';
import type { XmlElement, XmlNode } from '../pidf/xml-tree.js';
import type { Transformations } from './rule-types.js';

/**
 * RFC 5025 §3.2.2 transformations on a composed document (a first subset): notes removed
 * everywhere, device elements removed, or every tuple cut down to its basic status with
 * nothing else of the presentity shown.
 */
export function applyTransformations(doc: PresenceDocument, t: Transformations): PresenceDocument {
  if (t.basicOnly) {
    return { ...doc, tuples: doc.tuples.map(basicTuple), persons: [], devices: [], notes: [], extensions: [] };
  }
  let out = doc;
  if (t.hideDevices) out = { ...out, devices: [] };
  if (t.hideNotes) {
    out = {
      ...out,
      notes: [],
      tuples: out.tuples.map((x) => ({ ...x, notes: [], raw: withoutNotes(x.raw) })),
      persons: out.persons.map((x) => ({ ...x, notes: [], raw: withoutNotes(x.raw) })),
      devices: out.devices.map((x) => ({ ...x, notes: [], raw: withoutNotes(x.raw) })),
      extensions: out.extensions.filter((e) => e.local !== 'note').map(withoutNotes),
    };
  }
  return out;
}

/** `<note>` of any namespace (PIDF, data model, RPID) at any depth. */
function withoutNotes(el: XmlElement): XmlElement {
  const children: XmlNode[] = [];
  for (const c of el.children) {
    if (c.kind === 'element') {
      if (c.local === 'note') continue;
      children.push(withoutNotes(c));
    } else children.push(c);
  }
  return { ...el, children };
}

/** RFC 3863 §4.1.2: `<tuple id>` with `<status><basic>` only. */
function basicTuple(t: Tuple): Tuple {
  const status = t.raw.children.find((c): c is XmlElement => c.kind === 'element' && c.ns === PIDF_NS && c.local === 'status');
  const basic = status?.children.find((c): c is XmlElement => c.kind === 'element' && c.ns === PIDF_NS && c.local === 'basic');
  const statusEl: XmlElement = { kind: 'element', ns: PIDF_NS, local: 'status', prefix: '', attributes: [], children: basic ? [basic] : [] };
  const raw: XmlElement = { ...t.raw, attributes: t.raw.attributes.filter((a) => a.local === 'id' && a.ns === ''), children: [statusEl] };
  return { id: t.id, ...(t.basic !== undefined ? { basic: t.basic } : {}), notes: [], timedStatus: [], raw };
}
