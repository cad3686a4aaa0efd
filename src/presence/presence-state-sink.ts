import type { PublicationRecord } from './publication.js';
import type { SubscriptionRecord } from './subscription.js';

/**
 * Where the presence service reports every change of its soft state, so the store can
 * write it behind in batches (DESIGN: publications and subscriptions survive a restart).
 * Calls are synchronous and must not block: an implementation queues them.
 */
export interface PresenceStateSink {
  /** A publication was added, refreshed (new entity-tag: `replaces` is the old one) or modified. */
  publicationChanged(publication: PublicationRecord, replaces?: string): void;
  /** A publication was removed or expired. */
  publicationRemoved(etag: string): void;
  /**
   * A subscription was created (`created`: a store has never seen it), refreshed, changed
   * state, or sent a NOTIFY (its CSeq moved).
   */
  subscriptionChanged(subscription: SubscriptionRecord, created?: boolean): void;
  /** A subscription ended. */
  subscriptionRemoved(id: string): void;
}

/** The default: presence state lives in memory only. */
export const NO_PRESENCE_STATE_SINK: PresenceStateSink = {
  publicationChanged: () => {},
  publicationRemoved: () => {},
  subscriptionChanged: () => {},
  subscriptionRemoved: () => {},
};
