import { expect } from 'chai';
import { parsePidf, type PresenceDocument } from '../../../src/presence/pidf/index.js';

/** Parses a document the test expects to be valid. */
export function mustParse(doc: Buffer | string): PresenceDocument {
  const r = parsePidf(doc);
  if (!r.ok) expect.fail(`expected a valid document, got "${r.reason}"`);
  return r.document;
}

/** The reason a document the test expects to be refused is refused with. */
export function refusal(doc: Buffer | string, limits?: Parameters<typeof parsePidf>[1]): string {
  const r = parsePidf(doc, limits);
  if (r.ok) expect.fail('expected the document to be refused');
  return r.reason;
}

/** Deterministic PRNG (mulberry32) so a failing randomized case can be replayed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
