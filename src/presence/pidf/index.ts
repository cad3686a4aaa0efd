/**
 * PIDF presence documents (RFC 3863) read through the RFC 4479 data model with RPID
 * (RFC 4480) and timed status (RFC 4481): parsing with validation, composition of a
 * presentity's publications, writing, and a summary for clients.
 */
export { parsePidf, verdictOf, type ParsePidfResult, type PidfLimits, type PidfVerdict } from './parse-pidf.js';
export { composePresence, type ComposablePublication, type CompositionPolicy } from './compose.js';
export { serializePidf } from './serialize-pidf.js';
export { summarizePresence, type PresenceSummary } from './summarize.js';
export {
  neutralPresence,
  type BasicStatus,
  type Contact,
  type Device,
  type Note,
  type Person,
  type PresenceDocument,
  type TimedStatus,
  type TimeOffset,
  type Tuple,
  type UserInput,
} from './presence-document.js';
export type { XmlAttribute, XmlElement, XmlNode, XmlText } from './xml-tree.js';
export { DATA_MODEL_NS, PIDF_NS, RPID_NS, CIPID_NS, TIMED_STATUS_NS } from './namespaces.js';
export { DEFAULT_MAX_BYTES, DEFAULT_MAX_DEPTH } from './read-xml.js';
