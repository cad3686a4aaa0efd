import { escapeAttribute, escapeText } from '../presence/pidf/xml-escape.js';

/** RFC 4825 §11.1: the namespace and MIME type of error bodies. */
export const XCAP_ERROR_NS = 'urn:ietf:params:xml:ns:xcap-error';
export const XCAP_ERROR_TYPE = 'application/xcap-error+xml';

/** RFC 4825 §11.2 error conditions (the element names of `<xcap-error>`'s one child). */
export type XcapErrorCondition =
  | { readonly kind: 'not-well-formed'; readonly phrase?: string }
  | { readonly kind: 'not-xml-frag'; readonly phrase?: string }
  | { readonly kind: 'not-xml-att-value'; readonly phrase?: string }
  | { readonly kind: 'not-utf-8'; readonly phrase?: string }
  | { readonly kind: 'schema-validation-error'; readonly phrase?: string }
  | { readonly kind: 'cannot-insert'; readonly phrase?: string }
  | { readonly kind: 'cannot-delete'; readonly phrase?: string }
  | { readonly kind: 'constraint-failure'; readonly phrase?: string }
  /** `ancestor`: the closest existing ancestor, as an HTTP URI (§11.2). */
  | { readonly kind: 'no-parent'; readonly phrase?: string; readonly ancestor?: string }
  /** `field`: the node selector of the duplicate; `altValues`: values that would be unique. */
  | { readonly kind: 'uniqueness-failure'; readonly phrase?: string; readonly field: string; readonly altValues?: readonly string[] };

/** A 409 the engine or an application usage answers with an error body. */
export class XcapConflict extends Error {
  override name = 'XcapConflict';
  constructor(readonly condition: XcapErrorCondition) {
    super(condition.phrase ?? condition.kind);
  }
}

/** The `application/xcap-error+xml` document of `c`. */
export function xcapErrorBody(c: XcapErrorCondition): string {
  const phrase = c.phrase ? ` phrase="${escapeAttribute(c.phrase.slice(0, 256))}"` : '';
  let inner: string;
  switch (c.kind) {
    case 'no-parent':
      inner = c.ancestor !== undefined ? `<no-parent${phrase}><ancestor>${escapeText(c.ancestor)}</ancestor></no-parent>` : `<no-parent${phrase}/>`;
      break;
    case 'uniqueness-failure': {
      const alts = (c.altValues ?? []).map((v) => `<alt-value>${escapeText(v)}</alt-value>`).join('');
      inner = `<uniqueness-failure${phrase}><exists field="${escapeAttribute(c.field)}">${alts}</exists></uniqueness-failure>`;
      break;
    }
    default:
      inner = `<${c.kind}${phrase}/>`;
  }
  return `<?xml version="1.0" encoding="UTF-8"?>\n<xcap-error xmlns="${XCAP_ERROR_NS}">${inner}</xcap-error>\n`;
}
