import { mediaTypeParams, parseMultipart } from './multipart.js';
import { parseRlmi, RLMI_TYPE, type RlmiList } from './rlmi-document.js';

/**
 * Reads a list NOTIFY body (RFC 4662 §5.2) as a subscriber does: a multipart/related whose
 * root is the RLMI document, and the parts it points at by Content-ID. For our client
 * library and tests; never throws.
 */

export interface ListNotifyPart {
  readonly contentType: string;
  readonly body: Buffer;
}

export interface ListNotify {
  readonly rlmi: RlmiList;
  /** Body parts by Content-ID (without angle brackets): what RLMI `cid` attributes name. */
  readonly parts: ReadonlyMap<string, ListNotifyPart>;
}

export type ParseListNotifyResult = { readonly ok: true; readonly notify: ListNotify } | { readonly ok: false; readonly reason: string };

export function parseListNotify(contentType: string, body: Buffer, maxParts = 10_000): ParseListNotifyResult {
  const essence = contentType.split(';')[0]!.trim().toLowerCase();
  if (essence !== 'multipart/related') return { ok: false, reason: 'not multipart/related' };
  const params = mediaTypeParams(contentType);
  if ((params.get('type') ?? '').toLowerCase() !== RLMI_TYPE) return { ok: false, reason: 'root type is not application/rlmi+xml' };
  const mp = parseMultipart(contentType, body, maxParts);
  if (!mp.ok) return { ok: false, reason: mp.reason };
  // RFC 2387 §3.2: the root is the `start` part, or else the first.
  const root = mp.start !== undefined ? mp.parts.find((p) => p.contentId === mp.start) : mp.parts[0];
  if (!root) return { ok: false, reason: 'no root part' };
  const rlmi = parseRlmi(root.body);
  if (!rlmi.ok) return { ok: false, reason: rlmi.reason };
  const parts = new Map<string, ListNotifyPart>();
  for (const p of mp.parts) {
    if (p === root || p.contentId === undefined) continue;
    parts.set(p.contentId, { contentType: p.contentType ?? 'text/plain', body: p.body });
  }
  return { ok: true, notify: { rlmi: rlmi.list, parts } };
}
