import { expect } from 'chai';
import type { StoredMessage } from '../../src/messaging/offline-message-store.js';
import type { StoredMessageRepositoryLike } from '../../src/messaging/repository-offline-store.js';
import type { PublicationRecord as PresencePublication } from '../../src/presence/publication.js';
import type { SubscriptionRecord as PresenceSubscription } from '../../src/presence/subscription.js';
import type { Binding } from '../../src/registrar/binding.js';
import type { RegistrationWriter } from '../../src/registrar/store-registration-sink.js';
import type { PublicationRecord, RegistrationRecord, StoredMessageRecord, SubscriptionRecord } from '../../src/store/records.js';
import type { RegistrationRepository } from '../../src/store/repositories/registrations.js';
import type { StoredMessageRepository } from '../../src/store/repositories/stored-messages.js';

/*
 * The store's records follow the services' own records field for field, so a service
 * hands its record to the store and takes back what loadLive gives without mapping.
 * These conversions are checked by `npm run typecheck`: if a service record changes,
 * this file stops compiling and the store's record (and schema) must follow.
 */
const both = {
  publication: [(r: PresencePublication): PublicationRecord => r, (r: PublicationRecord): PresencePublication => r],
  subscription: [(r: PresenceSubscription): SubscriptionRecord => r, (r: SubscriptionRecord): PresenceSubscription => r],
  registration: [(r: Binding): RegistrationRecord => r, (r: RegistrationRecord): Binding => r],
  storedMessage: [(r: StoredMessage): StoredMessageRecord => r, (r: StoredMessageRecord): StoredMessage => r],
} as const;

/** The services' structural views of the repositories are met by the repositories themselves. */
const repositories = [(r: StoredMessageRepository): StoredMessageRepositoryLike => r, (r: RegistrationRepository): RegistrationWriter => r] as const;

describe('store: records match the services’ records', () => {
  it('converts both ways without mapping (checked at compile time)', () => {
    expect(Object.keys(both)).to.have.length(4);
    expect(repositories).to.have.length(2);
  });
});
