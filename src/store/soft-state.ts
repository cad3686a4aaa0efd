import type { Database } from './database.js';
import type { PublicationRecord, RegistrationKey, RegistrationRecord, SubscriptionRecord } from './records.js';
import { PUBLICATIONS_TABLE } from './repositories/publications.js';
import { REGISTRATIONS_TABLE } from './repositories/registrations.js';
import { SUBSCRIPTIONS_TABLE } from './repositories/subscriptions.js';
import { WriteBehind, type TableSpecs, type WriteBehindOptions } from './write-behind.js';

/** The soft state written behind, by kind. */
export interface SoftStateKinds {
  publication: { key: string; record: PublicationRecord };
  subscription: { key: string; record: SubscriptionRecord };
  registration: { key: RegistrationKey; record: RegistrationRecord };
}

export const SOFT_STATE_TABLES: TableSpecs<SoftStateKinds> = {
  publication: PUBLICATIONS_TABLE,
  subscription: SUBSCRIPTIONS_TABLE,
  registration: REGISTRATIONS_TABLE,
};

/** One queue for all soft state, so a flush is one transaction whatever changed. */
export function createSoftStateWriter(db: Database, options: WriteBehindOptions = {}): WriteBehind<SoftStateKinds> {
  return new WriteBehind<SoftStateKinds>(db, SOFT_STATE_TABLES, options);
}
