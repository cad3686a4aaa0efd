import type { Logger } from 'pino';
import type { PresenceStateSink } from './presence-state-sink.js';
import type { PublicationRecord } from './publication.js';
import type { SubscriptionRecord } from './subscription.js';

/**
 * The parts of the store's repositories the sink needs (write-behind queues: false when
 * full). Structural, so presence needs no store import.
 */
export interface PresenceStateWriter {
  readonly publications: { upsert(p: PublicationRecord, fresh?: boolean): boolean; delete(etag: string): boolean };
  readonly subscriptions: { upsert(s: SubscriptionRecord, fresh?: boolean): boolean; delete(id: string): boolean };
}

/**
 * Reports presence soft-state changes to the store's write-behind queue (DESIGN: soft
 * state, never waiting on the database). A full queue loses the change; the client's next
 * refresh repairs it, so it is logged and not fatal.
 */
export function storePresenceSink(writer: PresenceStateWriter, log?: Logger): PresenceStateSink {
  const full = (what: string, key: string): void => log?.warn({ [what]: key }, `${what} write-behind queue full; change not saved`);
  return {
    publicationChanged: (p, replaces) => {
      if (replaces !== undefined && replaces !== p.etag && !writer.publications.delete(replaces)) full('publication', replaces);
      // Every change of a publication has a new entity-tag (RFC 3903 §4.3): never written
      // before, so a refresh or removal within the flush window writes nothing for it.
      if (!writer.publications.upsert(p, true)) full('publication', p.etag);
    },
    publicationRemoved: (etag) => {
      if (!writer.publications.delete(etag)) full('publication', etag);
    },
    subscriptionChanged: (s, created) => {
      if (!writer.subscriptions.upsert(s, created === true)) full('subscription', s.id);
    },
    subscriptionRemoved: (id) => {
      if (!writer.subscriptions.delete(id)) full('subscription', id);
    },
  };
}
