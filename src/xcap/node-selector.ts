/**
 * RFC 4825 §6.3 node selectors: the part of an XCAP URI after `~~`, percent-decoded,
 * parsed into steps, and evaluated on a document tree. Hostile input: bounded in length
 * and steps, every fault a `SelectorError` (answered 400), never a throw of another kind.
 *
 *   node-selector      = element-selector ["/" terminal-selector]
 *   element-selector   = step *( "/" step )
 *   step               = by-name / by-pos / by-attr / by-pos-attr
 *   by-pos             = NameorAny "[" position "]"
 *   by-attr            = NameorAny "[" attr-test "]"
 *   by-pos-attr        = NameorAny "[" position "]" "[" attr-test "]"
 *   attr-test          = "@" att-name "=" AttValue
 *   terminal-selector  = attribute-selector / namespace-selector
 *   attribute-selector = "@" QName
 *   namespace-selector = "namespace::*"
 */

/** A name as written: a prefix ('' for none) and a local part; `*` matches any element. */
export interface QName {
  readonly prefix: string;
  readonly local: string;
}

export interface AttrTest {
  readonly name: QName;
  readonly value: string;
}

export interface Step {
  /** undefined: `*`, any element. */
  readonly name: QName | undefined;
  /** 1-based position among the siblings the name matches. */
  readonly position?: number;
  readonly attr?: AttrTest;
}

export type Terminal = { readonly kind: 'attribute'; readonly name: QName } | { readonly kind: 'namespace' };

export interface NodeSelector {
  readonly steps: readonly Step[];
  readonly terminal?: Terminal;
}

export class SelectorError extends Error {
  override name = 'SelectorError';
}

/** Longest node selector read, in characters (after percent-decoding). */
export const MAX_SELECTOR_CHARS = 4096;
/** Most element steps in one selector. */
export const MAX_STEPS = 32;
/** Largest position accepted: more siblings than a bounded document can hold. */
const MAX_POSITION = 1_000_000;

// XML 1.0 NameStartChar / NameChar without the colon (NCName), the common ranges.
const NC_START = 'A-Za-z_\\u00C0-\\u00D6\\u00D8-\\u00F6\\u00F8-\\u02FF\\u0370-\\u037D\\u037F-\\u1FFF\\u200C-\\u200D\\u2070-\\u218F\\u2C00-\\u2FEF\\u3001-\\uD7FF\\uF900-\\uFDCF\\uFDF0-\\uFFFD';
const NC_CHAR = `${NC_START}\\-.0-9\\u00B7\\u0300-\\u036F\\u203F-\\u2040`;
const NCNAME = new RegExp(`^[${NC_START}][${NC_CHAR}]*$`);

/** Parses a decoded node selector (it starts with "/", the root element's step following). */
export function parseNodeSelector(text: string): NodeSelector {
  if (text.length > MAX_SELECTOR_CHARS) throw new SelectorError('node selector too long');
  if (!text.startsWith('/')) throw new SelectorError('node selector must start with "/"');
  const parts = splitSteps(text.slice(1));
  if (parts.length === 0 || parts.length > MAX_STEPS + 1) throw new SelectorError(parts.length === 0 ? 'empty node selector' : 'too many steps');
  const steps: Step[] = [];
  let terminal: Terminal | undefined;
  parts.forEach((part, i) => {
    const last = i === parts.length - 1;
    if (part === 'namespace::*') {
      if (!last || steps.length === 0) throw new SelectorError('namespace::* must be the last step, after an element');
      terminal = { kind: 'namespace' };
    } else if (part.startsWith('@')) {
      if (!last || steps.length === 0) throw new SelectorError('an attribute selector must be the last step, after an element');
      terminal = { kind: 'attribute', name: parseQName(part.slice(1)) };
    } else steps.push(parseStep(part));
  });
  if (steps.length > MAX_STEPS) throw new SelectorError('too many steps');
  return terminal ? { steps, terminal } : { steps };
}

/** Splits on "/" outside quoted attribute values (which may hold "/"). */
export function splitSteps(text: string): string[] {
  const out: string[] = [];
  let quote = '';
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote) {
      if (c === quote) quote = '';
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '/') {
      out.push(text.slice(start, i));
      start = i + 1;
    }
  }
  if (quote) throw new SelectorError('unterminated attribute value');
  out.push(text.slice(start));
  for (const p of out) if (p.length === 0) throw new SelectorError('empty step');
  return out;
}

function parseQName(text: string): QName {
  const colon = text.indexOf(':');
  const prefix = colon >= 0 ? text.slice(0, colon) : '';
  const local = colon >= 0 ? text.slice(colon + 1) : text;
  if ((colon >= 0 && !NCNAME.test(prefix)) || !NCNAME.test(local)) throw new SelectorError(`bad name "${text.slice(0, 64)}"`);
  return { prefix, local };
}

function parseStep(text: string): Step {
  const bracket = text.indexOf('[');
  const head = bracket >= 0 ? text.slice(0, bracket) : text;
  const name = head === '*' ? undefined : parseQName(head);
  let rest = bracket >= 0 ? text.slice(bracket) : '';
  let position: number | undefined;
  let attr: AttrTest | undefined;
  const pos = /^\[([0-9]{1,7})\]/.exec(rest);
  if (pos) {
    position = Number(pos[1]);
    if (position < 1 || position > MAX_POSITION) throw new SelectorError(`bad position ${pos[1]!}`);
    rest = rest.slice(pos[0].length);
  }
  if (rest.length > 0) {
    // "[@" att-name "=" AttValue "]"; AttValue in double or single quotes (XML 1.0 §2.3).
    const m = /^\[@([^=\]\s]+)=("([^"<&]*)"|'([^'<&]*)')\]$/.exec(rest);
    if (!m) throw new SelectorError(`bad predicate in step "${text.slice(0, 64)}"`);
    attr = { name: parseQName(m[1]!), value: m[3] ?? m[4] ?? '' };
    rest = '';
  }
  return { name, ...(position !== undefined ? { position } : {}), ...(attr ? { attr } : {}) };
}

/** Prints a selector back (for error bodies and logs). */
export function selectorText(sel: NodeSelector): string {
  const q = (n: QName) => (n.prefix ? `${n.prefix}:${n.local}` : n.local);
  const steps = sel.steps.map((s) => {
    let t = s.name ? q(s.name) : '*';
    if (s.position !== undefined) t += `[${s.position}]`;
    // AttValue in whichever quote the value does not hold (it cannot hold both).
    if (s.attr) t += s.attr.value.includes('"') ? `[@${q(s.attr.name)}='${s.attr.value}']` : `[@${q(s.attr.name)}="${s.attr.value}"]`;
    return t;
  });
  if (sel.terminal?.kind === 'attribute') steps.push(`@${q(sel.terminal.name)}`);
  else if (sel.terminal?.kind === 'namespace') steps.push('namespace::*');
  return '/' + steps.join('/');
}
