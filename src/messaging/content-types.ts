import type { MediaType } from '../sip/header-values.js';

/** RFC 3994: typing indications. */
export const IS_COMPOSING = 'application/im-iscomposing+xml';
/** RFC 3862: Common Presence and Instant Messaging message format. */
export const CPIM = 'message/cpim';

/** Bodies we name in Accept; any other type is still passed through untouched. */
export const MESSAGE_ACCEPT: readonly string[] = ['text/plain', 'text/html', CPIM, IS_COMPOSING];

/** How far into a CPIM body we look for the inner Content-Type (bounded work on hostile input). */
const CPIM_SCAN_BYTES = 4096;

/**
 * Is this MESSAGE a typing indication (RFC 3994), bare or wrapped in CPIM (RFC 3862 §3:
 * the MIME headers of the encapsulated body follow the message headers)? Such a state is
 * transient: it is forwarded to an online user and never stored for later.
 */
export function isComposingIndication(type: MediaType | undefined, body: Buffer): boolean {
  if (!type) return false;
  if (type.essence === IS_COMPOSING) return true;
  if (type.essence !== CPIM) return false;
  const head = body.subarray(0, CPIM_SCAN_BYTES).toString('latin1');
  const sep = head.indexOf('\r\n\r\n');
  if (sep < 0) return false;
  const mimeHeaders = head.slice(sep + 4);
  const end = mimeHeaders.indexOf('\r\n\r\n');
  const block = end >= 0 ? mimeHeaders.slice(0, end) : mimeHeaders;
  const m = /^content-type[ \t]*:[ \t]*([^;\r\n]+)/im.exec(block);
  return m !== null && m[1]!.trim().toLowerCase() === IS_COMPOSING;
}
