import type { LocalDomains } from '../core/local-domains.js';
import { addressOfRecord, type SipUri } from '../sip/uri.js';

/**
 * The canonical address-of-record of a URI of our domain, or undefined when the URI is
 * not ours or names no user. Every host we answer for (the domain, `localhost`, our
 * addresses) is one domain, so `sip:bob@127.0.0.1` and `sip:bob@example.com` are one user;
 * the AoR is written with the configured domain (RFC 3261 §10.3 step 5: the AoR is
 * scheme, user and host, without port or parameters).
 */
export function canonicalAor(uri: SipUri, domains: LocalDomains): string | undefined {
  if (uri.scheme === 'tel' || !domains.has(uri.host)) return undefined;
  if (uri.user === undefined || uri.user === '') return undefined;
  return addressOfRecord({ ...uri, host: domains.primary.toLowerCase() });
}
