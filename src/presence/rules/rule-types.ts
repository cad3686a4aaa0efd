import type { SubscriptionDecision } from '../event-package.js';

/** RFC 5025 §3.2.1 sub-handling, by name. */
export type RuleAction = SubscriptionDecision;
export const RULE_ACTIONS: readonly RuleAction[] = ['allow', 'block', 'polite-block', 'confirm'];

/**
 * RFC 5025 §3.2.2 transformations, a first useful subset: what a watcher is shown of the
 * presentity's document.
 */
export interface Transformations {
  /** Drop every `<note>` (RFC 3863 §4.1.6, RFC 4479 notes). */
  readonly hideNotes: boolean;
  /** Drop every `<dm:device>` element (RFC 4479 §3.3). */
  readonly hideDevices: boolean;
  /** Keep only `<basic>` status of each tuple (RFC 3863 §4.1.4): no RPID extensions, contacts or notes. */
  readonly basicOnly: boolean;
}

export const NO_TRANSFORMATIONS: Transformations = { hideNotes: false, hideDevices: false, basicOnly: false };

export function isIdentity(t: Transformations): boolean {
  return !t.hideNotes && !t.hideDevices && !t.basicOnly;
}

export function sameTransformations(a: Transformations, b: Transformations): boolean {
  return a.hideNotes === b.hideNotes && a.hideDevices === b.hideDevices && a.basicOnly === b.basicOnly;
}

/**
 * One stored rule: a presentity's decision about a watcher URI (`sip:bob@example.com`), a
 * whole domain (`*@example.com`), or everyone (`*`, the presentity's own default).
 */
export interface PresenceRule {
  readonly presentity: string;
  readonly watcher: string;
  readonly action: RuleAction;
  readonly transformations: Transformations;
}
