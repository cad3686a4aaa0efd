/**
 * Namespace URIs the presence documents are resolved by. Elements are matched by URI,
 * never by prefix: clients pick prefixes freely (`dm:`, `pdm:`, a default namespace...).
 */

/** RFC 3863 §4: the PIDF namespace. */
export const PIDF_NS = 'urn:ietf:params:xml:ns:pidf';
/** RFC 4479: the data model namespace (person, device, deviceID, timestamp, note). */
export const DATA_MODEL_NS = 'urn:ietf:params:xml:ns:pidf:data-model';
/** RFC 4480: rich presence (activities, mood, place-type, user-input...). */
export const RPID_NS = 'urn:ietf:params:xml:ns:pidf:rpid';
/** RFC 4482: contact information (display-name, icon, homepage...). */
export const CIPID_NS = 'urn:ietf:params:xml:ns:pidf:cipid';
/** RFC 5196: user agent capabilities. */
export const CAPS_NS = 'urn:ietf:params:xml:ns:pidf:caps';
/** RFC 4481: timed presence status. */
export const TIMED_STATUS_NS = 'urn:ietf:params:xml:ns:pidf:timed-status';
/** RFC 3862 / RFC 3863 §5: the instant messaging status extension. */
export const PIDF_IM_NS = 'urn:ietf:params:xml:ns:pidf:im';
/** RFC 3858 §5: watcher information. */
export const WATCHERINFO_NS = 'urn:ietf:params:xml:ns:watcherinfo';

/** Namespaces in XML §3: `xml:` is bound by definition and may not be rebound. */
export const XML_NS = 'http://www.w3.org/XML/1998/namespace';
/** Namespaces in XML §3: the namespace of the `xmlns` declarations themselves. */
export const XMLNS_NS = 'http://www.w3.org/2000/xmlns/';

/**
 * Prefixes we write for the namespaces we know, so that composed documents look like what
 * clients expect to read (Linphone and others use exactly these).
 */
export const PREFERRED_PREFIXES: ReadonlyMap<string, string> = new Map([
  [DATA_MODEL_NS, 'dm'],
  [RPID_NS, 'rpid'],
  [CIPID_NS, 'c'],
  [CAPS_NS, 'caps'],
  [TIMED_STATUS_NS, 'ts'],
  [PIDF_IM_NS, 'im'],
  // Only ever used for a PIDF-namespace attribute: PIDF elements go in the default namespace.
  [PIDF_NS, 'pidf'],
]);
