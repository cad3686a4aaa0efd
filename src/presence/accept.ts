import type { SipRequest } from '../sip/message.js';

/** At most this many Accept elements are looked at (network input is bounded). */
const MAX_ACCEPT_ELEMENTS = 32;

interface MediaRange {
  readonly type: string;
  readonly subtype: string;
  readonly q: number;
}

function parseRange(text: string): MediaRange | undefined {
  const parts = text.split(';');
  const main = parts[0]!.trim().toLowerCase();
  const slash = main.indexOf('/');
  if (slash <= 0 || slash === main.length - 1) return undefined;
  let q = 1;
  for (const p of parts.slice(1)) {
    const [name, value] = p.split('=').map((s) => s.trim().toLowerCase());
    if (name === 'q' && value !== undefined) {
      const n = Number(value);
      if (Number.isFinite(n)) q = Math.max(0, Math.min(1, n));
    }
  }
  return { type: main.slice(0, slash), subtype: main.slice(slash + 1), q };
}

function quality(ranges: readonly MediaRange[], essence: string): number {
  const [type, subtype] = essence.split('/') as [string, string];
  let best = -1;
  let bestSpecificity = -1;
  for (const r of ranges) {
    const specificity = r.type === type && r.subtype === subtype ? 2 : r.type === type && r.subtype === '*' ? 1 : r.type === '*' && r.subtype === '*' ? 0 : -1;
    if (specificity > bestSpecificity) {
      bestSpecificity = specificity;
      best = r.q;
    }
  }
  return bestSpecificity < 0 ? 0 : best;
}

/**
 * RFC 6665 §4.2.1.1 / RFC 3261 §20.1: picks the body type for NOTIFYs from the types an
 * event package offers (its first is its default) and the SUBSCRIBE's Accept. No Accept
 * (or an empty one, which sloppy clients send) means the package default. Undefined when
 * none is acceptable: the caller answers 406.
 */
export function negotiateType(req: SipRequest, offered: readonly string[]): string | undefined {
  const values = req.getHeaders('accept').filter((v) => v.trim() !== '');
  if (values.length === 0) return offered[0];
  const ranges = values.slice(0, MAX_ACCEPT_ELEMENTS).map(parseRange).filter((r): r is MediaRange => r !== undefined);
  let chosen: string | undefined;
  let chosenQ = 0;
  for (const type of offered) {
    const q = quality(ranges, type);
    if (q > chosenQ) {
      chosen = type;
      chosenQ = q;
    }
  }
  return chosen;
}
