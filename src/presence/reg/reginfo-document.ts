import { createHash } from 'node:crypto';
import { escapeAttribute, escapeText } from '../pidf/xml-escape.js';

/** RFC 3680 §5: the registration information namespace and body type. */
export const REGINFO_NS = 'urn:ietf:params:xml:ns:reginfo';
export const REGINFO_CONTENT_TYPE = 'application/reginfo+xml';

/** RFC 3680 §5.1.2 contact events (those a registrar of ours can see). */
export type ContactEvent = 'registered' | 'created' | 'refreshed' | 'shortened' | 'expired' | 'deactivated' | 'probation' | 'unregistered' | 'rejected';

export interface ContactInfo {
  /** Stable per binding (RFC 3680 §5.1.2: the same id for the same contact through its life). */
  readonly id: string;
  readonly uri: string;
  readonly state: 'active' | 'terminated';
  readonly event: ContactEvent;
  /** Seconds left (active contacts). */
  readonly expires?: number;
  /** Seconds since the contact was first registered, when known. */
  readonly durationRegistered?: number;
  readonly q?: number;
  readonly callId?: string;
  readonly cseq?: number;
}

/** A short id that names nothing but stays the same for the same input. */
export function stableId(prefix: string, of: string): string {
  return prefix + createHash('sha256').update(of).digest('hex').slice(0, 16);
}

/** One `<contact>` element (RFC 3680 §5.1.2). */
export function serializeContact(c: ContactInfo): string {
  let s = `<contact id="${escapeAttribute(c.id)}" state="${c.state}" event="${c.event}"`;
  if (c.expires !== undefined) s += ` expires="${c.expires}"`;
  if (c.durationRegistered !== undefined) s += ` duration-registered="${c.durationRegistered}"`;
  if (c.q !== undefined) s += ` q="${c.q}"`;
  if (c.callId !== undefined) s += ` callid="${escapeAttribute(c.callId)}"`;
  if (c.cseq !== undefined) s += ` cseq="${c.cseq}"`;
  return `${s}><uri>${escapeText(c.uri)}</uri></contact>`;
}

/**
 * A whole reginfo document for one address of record (RFC 3680 §5.1): `registrationState`
 * is init (no contact yet), active (at least one) or terminated (the last one went).
 */
export function buildRegInfo(aor: string, version: number, state: 'full' | 'partial', registrationState: 'init' | 'active' | 'terminated', contacts: Iterable<string>): Buffer {
  let s =
    `<?xml version="1.0" encoding="UTF-8"?>\n<reginfo xmlns="${REGINFO_NS}" version="${version}" state="${state}">` +
    `<registration aor="${escapeAttribute(aor)}" id="${stableId('r', aor)}" state="${registrationState}">`;
  for (const c of contacts) s += c;
  return Buffer.from(`${s}</registration></reginfo>`);
}
