/**
 * One publication (RFC 3903 §2: a piece of event state with its entity-tag): one device's
 * PIDF document for a presentity. A plain record, replaced on every change; expiry is
 * wall-clock ms so that a stored copy means the same after a restart.
 */
export interface PublicationRecord {
  /** RFC 3903 §4.1 entity-tag: unguessable, unique, new on every refresh or modify. */
  readonly etag: string;
  /** The presentity's canonical URI. */
  readonly presentity: string;
  readonly contentType: string;
  /** The document as published (a store keeps the bytes; they are parsed again on restore). */
  readonly body: Buffer;
  /** Wall-clock ms of the initial publication or last modify (RFC 4479 composition order). */
  readonly publishedAtMs: number;
  readonly expiresAtMs: number;
}
