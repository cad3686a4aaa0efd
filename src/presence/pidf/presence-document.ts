import type { XmlElement } from './xml-tree.js';

/**
 * The typed model of a PIDF document (RFC 3863) read through the RFC 4479 data model:
 * services (tuples), the person, devices, and the presentity's notes. Each tuple, person
 * and device keeps its element as read (`raw`) so that the extensions we do not model
 * go out again untouched when documents are composed and written.
 */

/** RFC 3863 §4.1.4: the basic status of a tuple. */
export type BasicStatus = 'open' | 'closed';

/** RFC 3863 §4.1.6: a human-readable comment, with its language when given. */
export interface Note {
  readonly text: string;
  /** The xml:lang in force on the note (its own or inherited). */
  readonly lang?: string;
}

/** RFC 3863 §4.1.5: where the service can be reached, with its relative priority. */
export interface Contact {
  readonly uri: string;
  /** 0 to 1 (RFC 3863 §4.1.5 qvalue); absent when the publisher gave none. */
  readonly priority?: number;
}

/** RFC 4481: a status that held or will hold in a time interval. */
export interface TimedStatus {
  readonly from: string;
  readonly until?: string;
  readonly basic?: BasicStatus;
  readonly notes: readonly Note[];
}

/** RFC 3863 §4.1.2 / RFC 4479 §3.3: a service of the presentity. */
export interface Tuple {
  readonly id: string;
  readonly basic?: BasicStatus;
  readonly contact?: Contact;
  readonly notes: readonly Note[];
  /** RFC 3863 §4.1.7: when the publisher last changed the tuple (RFC 3339). */
  readonly timestamp?: string;
  /** RFC 4479 §3.4: the device the service runs on (dm:deviceID). */
  readonly deviceId?: string;
  /** RFC 4481: statuses over time intervals (`ts:timed-status`). */
  readonly timedStatus: readonly TimedStatus[];
  readonly raw: XmlElement;
}

/** RFC 4480 §3: the presentity's idle/active state on a device. */
export interface UserInput {
  readonly state: 'active' | 'idle';
  /** Seconds of no input before `idle` is reported. */
  readonly idleThreshold?: number;
  /** RFC 3339 date-time of the last input. */
  readonly lastInput?: string;
}

/** RFC 4480 §3: the presentity's offset from UTC, in minutes. */
export interface TimeOffset {
  readonly minutes: number;
  readonly description?: string;
}

/** RFC 4479 §3.2: the human behind the presentity, with the RPID (RFC 4480) we read. */
export interface Person {
  readonly id: string;
  /** RFC 4480 §3: activity tokens (`away`, `on-the-phone`...); `other` gives its text when it has one. */
  readonly activities: readonly string[];
  /** RFC 4480 §3: mood tokens, `other` as for activities. */
  readonly mood: readonly string[];
  /** RFC 4480 §3: the kind of place (a location type token or `other` text). */
  readonly placeType?: string;
  /** RFC 4480 §3: who may overhear: `audio`, `text`, `video`, `unknown`. */
  readonly privacy: readonly string[];
  /** RFC 4480 §3: `home`, `work`, `unknown` or free text. */
  readonly sphere?: string;
  readonly timeOffset?: TimeOffset;
  readonly userInput?: UserInput;
  readonly notes: readonly Note[];
  readonly timestamp?: string;
  readonly raw: XmlElement;
}

/** RFC 4479 §3.4: a physical device the services run on. */
export interface Device {
  readonly id: string;
  /**
   * RFC 4479 §3.4: the device's URN (dm:deviceID). Required by the RFC, but some clients
   * (IMS/OMA ones) leave it out, so it may be missing.
   */
  readonly deviceId?: string;
  readonly userInput?: UserInput;
  readonly notes: readonly Note[];
  readonly timestamp?: string;
  readonly raw: XmlElement;
}

/** A parsed, validated PIDF document, or a composed one. */
export interface PresenceDocument {
  /** RFC 3863 §4.1.1: the presentity URI (pres:, sip: or sips:). */
  readonly entity: string;
  readonly tuples: readonly Tuple[];
  readonly persons: readonly Person[];
  readonly devices: readonly Device[];
  /** RFC 3863 §4.1.6: notes about the presentity as a whole (children of `presence`). */
  readonly notes: readonly Note[];
  /** Other children of `presence` (RFC 3863 §4.3 extensions), kept as read. */
  readonly extensions: readonly XmlElement[];
  /** Namespace declarations of the root element as read, prefix ('' for default) to URI. */
  readonly namespaces: Readonly<Record<string, string>>;
}

/**
 * The document of a presentity nobody publishes for: the bare `presence` element. It is
 * the same whether the user exists or not (RFC 3856 §6.6 / RFC 5025 §3.2.1 ideas), so it
 * reveals nothing; RFC 4479 §3.6: an absent element says nothing is known, not "offline".
 */
export function neutralPresence(entity: string): PresenceDocument {
  return { entity, tuples: [], persons: [], devices: [], notes: [], extensions: [], namespaces: {} };
}
