import type { LocalDomains } from '../core/local-domains.js';
import { canonicalAor } from '../registrar/aor.js';
import { addressOfRecord, tryParseUri } from '../sip/uri.js';
import { HttpError } from './router.js';

const USER_RE = /^[A-Za-z0-9._~!$&'()*+,;=%-]{1,64}$/;

/**
 * The address of record an API path or body names, as the services key it: a SIP URI
 * (`sip:alice@example.com`), `alice@example.com`, or a bare user of our domain (`alice`).
 * Our users come out canonical (RFC 3261 §10.3: scheme, user, host), others as written.
 */
export function resolveAddress(text: string, domains: LocalDomains): string {
  const t = text.trim();
  let uriText: string;
  if (/^sips?:/i.test(t)) uriText = t;
  else if (t.includes('@')) uriText = `sip:${t}`;
  else if (USER_RE.test(t)) uriText = `sip:${t}@${domains.primary}`;
  else throw new HttpError(400, `"${text}" is not a SIP address or user name`);
  const uri = tryParseUri(uriText);
  if (!uri || uri.scheme === 'tel' || !uri.user) throw new HttpError(400, `"${text}" is not a SIP address of a user`);
  return canonicalAor(uri, domains) ?? addressOfRecord(uri);
}
