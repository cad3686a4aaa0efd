import type { SipRequest } from '../../src/sip/message.js';
import type { TestUa } from '../support/test-ua.js';

/** REGISTER for the UA's own AoR; `contact` replaces the UA's Contact when given. */
export function registerRequest(ua: TestUa, opts: { expires?: number; contact?: string; headers?: Record<string, string | number> } = {}): SipRequest {
  const headers: Record<string, string | number> = { ...opts.headers };
  if (opts.expires !== undefined) headers.Expires = opts.expires;
  if (opts.contact !== undefined) headers.Contact = opts.contact;
  // RFC 3261 §10.2: one Call-ID for all registrations of a UA, CSeq going up.
  return ua.request('REGISTER', `sip:${ua.domain}`, { to: `<${ua.aor}>`, callId: `reg-${ua.user}-${ua.localPort}@test`, headers });
}
