import type { Publication } from './publications.js';

/** What a published body says of itself once read. */
export type PublishedBodyCheck =
  | {
      readonly ok: true;
      /** The entity the document is about, when its format names one (compared with the presentity). */
      readonly entity?: string;
    }
  | { readonly ok: false; readonly reason: string };

/**
 * An event package that takes PUBLISH (RFC 3903 §6 step 2) besides presence: dialog,
 * message-summary. The event state compositor keeps its publications next to the
 * presentity's presence ones (same store, same entity-tag rules, same limits), told apart
 * by their content type; the package composes them and notifies its watchers.
 */
export interface PublishedPackage {
  /** The Event header token. */
  readonly name: string;
  /** The one body type a PUBLISH of this package carries. */
  readonly contentType: string;
  /** How reason phrases name the body ("Missing dialog-info body"). */
  readonly bodyName: string;
  /** RFC 3903 §6 step 6: is the (hostile) body a valid document of the package? */
  check(body: Buffer): PublishedBodyCheck;
  /** The presentity's publications of this package changed (also after a restart): compose, notify. */
  publicationsChanged(presentity: string, publications: readonly Publication[]): void;
}
