import type { LocalDomains } from '../core/local-domains.js';
import { canonicalAor } from '../registrar/aor.js';
import { addressOfRecord, tryParseUri, type SipUri } from '../sip/uri.js';

/**
 * The presentity a Request-URI names: its user and host as the canonical address of
 * record, whatever port or URI parameters it carries (softphones such as baresip publish
 * to `sip:alice@example.com:5060` for `sip:alice@example.com`). Undefined when the URI is
 * not of our domain or names no user.
 */
export function presentityOf(uri: SipUri, domains: LocalDomains): string | undefined {
  return canonicalAor(uri, domains);
}

/**
 * The presentity a PIDF `entity` attribute names (RFC 3863 §4.1.1): a pres: URI (RFC 3859)
 * or a sip/sips URI, reduced the same way as a Request-URI.
 */
export function entityPresentity(entity: string, domains: LocalDomains): string | undefined {
  const text = entity.trim();
  const pres = /^pres:/i.test(text) ? `sip:${text.slice(5)}` : text;
  const uri = tryParseUri(pres);
  if (!uri) return undefined;
  return canonicalAor(uri, domains);
}

/**
 * The watcher a From URI names: the canonical AoR for our users, the plain address of
 * record for anyone else (a watcher of another domain is still one watcher).
 */
export function watcherOf(uri: SipUri, domains: LocalDomains): string {
  return canonicalAor(uri, domains) ?? addressOfRecord(uri);
}
