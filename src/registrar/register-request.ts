import { SipParseError } from '../sip/errors.js';
import { parseDeltaSeconds, parseNameAddr } from '../sip/header-values.js';
import type { SipRequest } from '../sip/message.js';
import { isSipUri, type SipUri } from '../sip/uri.js';
import { bindingKey } from './binding.js';

/** One Contact of a REGISTER, read and checked. */
export interface RequestedContact {
  readonly uri: SipUri;
  readonly key: string;
  /** Seconds asked for (Contact expires, else Expires, else the default): not yet bounded. */
  readonly expires: number;
  readonly q?: number;
  readonly instanceId?: string;
  readonly regId?: number;
  /** Parameters to keep and echo (all but expires and q). */
  readonly params: ReadonlyArray<readonly [string, string | null]>;
}

/** What a REGISTER asks for (RFC 3261 §10.2). */
export type RegisterAction =
  | { readonly kind: 'query' }
  | { readonly kind: 'remove-all' }
  | { readonly kind: 'update'; readonly contacts: readonly RequestedContact[] };

/** Bounds on what one REGISTER may carry (DESIGN: bounded everything). */
const MAX_PATH_ENTRIES = 8;
const MAX_USER_AGENT = 256;
const MAX_PARAMS = 16;

// RFC 3261 §25.1: qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )
const QVALUE_RE = /^(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$/;
// RFC 5626 §4.2: reg-id = 1 to 2**31-1
const REG_ID_RE = /^[1-9]\d{0,9}$/;

/**
 * Reads the Contact and Expires headers of a REGISTER (RFC 3261 §10.3 step 6). Syntax
 * faults throw SipParseError (the core answers 400 with its reason). Several Contacts
 * with one key: the last one wins, so one request never conflicts with itself.
 */
export function readRegister(req: SipRequest, defaultExpires: number, maxContacts: number): RegisterAction {
  const contact = req.contact;
  const headerExpires = req.expires;
  if (!contact) return { kind: 'query' };
  if (contact.star) {
    // §10.3 step 6: "*" is only valid with Expires 0 and no other Contact.
    if (headerExpires !== 0) throw new SipParseError('Invalid Request: Contact * needs Expires 0');
    return { kind: 'remove-all' };
  }
  if (contact.addresses.length > maxContacts) throw new SipParseError('Too Many Contacts', 403);
  const byKey = new Map<string, RequestedContact>();
  for (const na of contact.addresses) {
    const uri = na.uri;
    if (!isSipUri(uri)) throw new SipParseError('Bad Contact: not a SIP URI');
    if (na.params.size > MAX_PARAMS) throw new SipParseError('Bad Contact: too many parameters');
    let expires = headerExpires ?? defaultExpires;
    let q: number | undefined;
    let instanceId: string | undefined;
    let regIdText: string | undefined;
    const params: Array<readonly [string, string | null]> = [];
    for (const [name, value] of na.params) {
      if (name === 'expires') {
        // §10.2.1.1: the Contact parameter wins over the Expires header.
        if (value === null) throw new SipParseError('Bad Contact expires');
        expires = parseDeltaSeconds(value, 'Contact expires');
      } else if (name === 'q') {
        if (value === null || !QVALUE_RE.test(value)) throw new SipParseError('Bad Contact q');
        q = Number(value);
      } else {
        if (name === '+sip.instance') {
          if (value === null || !/^<.+>$/.test(value)) throw new SipParseError('Bad Contact +sip.instance');
          instanceId = value;
        } else if (name === 'reg-id') {
          if (value === null || !REG_ID_RE.test(value) || Number(value) >= 2 ** 31) throw new SipParseError('Bad Contact reg-id');
          regIdText = value;
        }
        params.push([name, value]);
      }
    }
    // RFC 5626 §6: reg-id means nothing without an instance.
    const regId = instanceId !== undefined && regIdText !== undefined ? Number(regIdText) : undefined;
    const key = bindingKey(uri, instanceId, regId);
    byKey.delete(key);
    byKey.set(key, { uri, key, expires, q, instanceId, regId, params });
  }
  return { kind: 'update', contacts: [...byKey.values()] };
}

/** RFC 3327 §5.3: the Path header values, top first, each checked as a name-addr. */
export function readPath(req: SipRequest): string[] {
  const values = req.getHeaders('path');
  if (values.length > MAX_PATH_ENTRIES) throw new SipParseError('Bad Path: too many entries');
  for (const v of values) {
    const na = parseNameAddr(v, 'Path');
    if (!isSipUri(na.uri)) throw new SipParseError('Bad Path');
  }
  return values;
}

export function readUserAgent(req: SipRequest): string | undefined {
  const ua = req.getHeader('user-agent');
  return ua === undefined ? undefined : ua.slice(0, MAX_USER_AGENT);
}
