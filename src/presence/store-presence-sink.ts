import type { Logger } from 'pino';
import type { PresenceStateSink } from './presence-state-sink.js';
import type { PublicationRecord } from './publication.js';
import type { SubscriptionRecord } from './subscription.js';

/**
 * The parts of the store's repositories the sink needs (write-behind queues: false when
 * full). Structural, so presence needs no store import.
 */
export interface PresenceStateWriter {
  readonly publications: { upsert(p: PublicationRecord): boolean; delete(etag: string): boolean };
  readonly subscriptions: { upsert(s: SubscriptionRecord): boolean; delete(id: string): boolean };
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
      if (!writer.publications.upsert(p)) full('publication', p.etag);
    },
    publicationRemoved: (etag) => {
      if (!writer.publications.delete(etag)) full('publication', etag);
    },
    subscriptionChanged: (s) => {
      if (!writer.subscriptions.upsert(s)) full('subscription', s.id);
    },
    subscriptionRemoved: (id) => {
      if (!writer.subscriptions.delete(id)) full('subscription', id);
    },
  };
}
