import type { Publication } from '../presence/publications.js';
import type { Binding } from '../registrar/binding.js';

/**
 * Entries as they are stored in the buckets. Publications: one JSON line of metadata,
 * then the documents' bytes one after the other (no base64 for the bodies that make up
 * most of the bytes). Bindings: JSON. Entries come from other nodes of our own cluster;
 * still, anything malformed is refused as a whole rather than half read.
 */

const NL = 0x0a;
const FORMAT = 1;

type PublicationHead = [etag: string, contentType: string, publishedAtMs: number, expiresAtMs: number, tupleIds: string[], origin: string | null, bytes: number];

export function encodePublications(pubs: readonly Publication[]): Buffer {
  const head: PublicationHead[] = pubs.map((p) => [p.etag, p.contentType, p.publishedAtMs, p.expiresAtMs, [...p.tupleIds], p.origin ?? null, p.body.length]);
  const meta = Buffer.from(JSON.stringify({ v: FORMAT, p: head }) + '\n', 'utf8');
  return Buffer.concat([meta, ...pubs.map((p) => p.body)]);
}

/** The publications of `presentity` in an entry; throws on anything malformed. */
export function decodePublications(presentity: string, data: Uint8Array): Publication[] {
  if (data.length === 0) return [];
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const nl = buf.indexOf(NL);
  if (nl < 0) throw new Error('publication entry without metadata');
  const meta = JSON.parse(buf.subarray(0, nl).toString('utf8')) as { v?: unknown; p?: unknown };
  if (meta.v !== FORMAT || !Array.isArray(meta.p)) throw new Error('publication entry of an unknown format');
  let at = nl + 1;
  const out: Publication[] = [];
  for (const h of meta.p as unknown[]) {
    if (!Array.isArray(h) || h.length !== 7) throw new Error('bad publication metadata');
    const [etag, contentType, publishedAtMs, expiresAtMs, tupleIds, origin, bytes] = h as PublicationHead;
    if (typeof etag !== 'string' || typeof contentType !== 'string' || !Number.isFinite(publishedAtMs) || !Number.isFinite(expiresAtMs)) throw new Error('bad publication metadata');
    if (!Array.isArray(tupleIds) || !tupleIds.every((t) => typeof t === 'string') || !Number.isInteger(bytes) || bytes < 0 || at + bytes > buf.length) throw new Error('bad publication metadata');
    // A copy of its own: the entry's buffer is not kept alive by one publication.
    const body = Buffer.from(buf.subarray(at, at + bytes));
    at += bytes;
    out.push({ etag, presentity, contentType, body, publishedAtMs, expiresAtMs, tupleIds, ...(typeof origin === 'string' ? { origin } : {}) });
  }
  return out;
}

export function encodeBindings(bindings: readonly Binding[]): Buffer {
  return Buffer.from(JSON.stringify({ v: FORMAT, b: bindings }), 'utf8');
}

/** The bindings of `aor` in an entry; throws on anything malformed. */
export function decodeBindings(aor: string, data: Uint8Array): Binding[] {
  if (data.length === 0) return [];
  const parsed = JSON.parse(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8')) as { v?: unknown; b?: unknown };
  if (parsed.v !== FORMAT || !Array.isArray(parsed.b)) throw new Error('binding entry of an unknown format');
  return (parsed.b as Binding[]).map((b) => {
    if (typeof b !== 'object' || b === null || b.aor !== aor || typeof b.key !== 'string' || typeof b.contact !== 'string' || !Number.isFinite(b.expiresAt) || typeof b.flow !== 'object') {
      throw new Error('bad binding');
    }
    return b;
  });
}
