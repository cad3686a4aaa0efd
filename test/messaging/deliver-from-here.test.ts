import { expect } from 'chai';
import type { BindingRelay } from '../../src/messaging/binding-relay.js';
import { InMemoryOfflineMessageStore } from '../../src/messaging/memory-offline-store.js';
import { MessagingService } from '../../src/messaging/messaging-service.js';
import type { StoredMessage } from '../../src/messaging/offline-message-store.js';
import { LocationService } from '../../src/registrar/location-service.js';
import { RegistrarService } from '../../src/registrar/registrar-service.js';
import { ManualTimers } from '../../src/util/timers.js';
import { domains, fakeContext, register, run, silent } from '../registrar/fakes.js';
import { FakeTransactions, type Answer } from './fake-transactions.js';

const EPOCH = Date.UTC(2026, 11, 7);
/** Contacts at this address are held by another node (the fake relay says so). */
const OTHER_NODE = '192.0.2.99';

/** MessagingService.deliverFromHere: a cluster node sends a streamed room copy to the contacts it holds only. */
describe('messaging: delivering a copy from this node only (rooms across a cluster)', () => {
  let location: LocationService;
  let registrar: RegistrarService;
  let tx: FakeTransactions;
  let store: InMemoryOfflineMessageStore;
  let messaging: MessagingService;
  let relayed: number;
  let answer: Answer;

  beforeEach(() => {
    const timers = new ManualTimers();
    const wallClock = { nowMs: () => EPOCH + timers.now() };
    location = new LocationService({ timers, wallClock });
    registrar = new RegistrarService({ location, domains: domains(), settings: { minExpires: 60, maxExpires: 3600, defaultExpires: 3600, maxContactsPerAor: 8 } });
    answer = 200;
    tx = new FakeTransactions(() => answer);
    store = new InMemoryOfflineMessageStore();
    relayed = 0;
    const relay: BindingRelay = {
      isRemote: (b) => b.contact.includes(OTHER_NODE),
      send: () => (relayed++, Promise.resolve({ outcome: 'response', status: 200, reason: 'OK' })),
    };
    messaging = new MessagingService({
      location,
      domains: domains(),
      transactions: tx,
      timers,
      wallClock,
      settings: { maxUdpMessageSize: 1300, offlineMaxMessages: 10, offlineMaxBytes: 10_000, offlineTtlSeconds: 3600 },
      maxMessageSize: 65535,
      store,
      relay,
      logger: silent,
    });
  });
  afterEach(() => messaging.close());

  const copy = (): StoredMessage => ({
    id: 'm1',
    recipient: 'sip:bob@example.com',
    sender: 'sip:lobby@example.com',
    from: '<sip:lobby@example.com>;tag=r1',
    to: '<sip:bob@example.com>',
    callId: 'copy-1@example.com',
    cseq: 1,
    contentType: 'text/plain',
    headers: [],
    body: Buffer.from('alice: hi'),
    receivedAt: EPOCH,
    expiresAt: EPOCH + 3600_000,
  });
  const stored = async (): Promise<number> => (await store.usage('sip:bob@example.com', EPOCH)).count;
  const registerBob = async (...contacts: string[]): Promise<void> => {
    expect((await run((c) => registrar.handle(c), fakeContext(register({ contacts, callId: 'reg-bob@test' })))).status).to.equal(200);
  };

  it('no contact anywhere: stored only by the node told to (the one that accepted the message)', async () => {
    expect(await messaging.deliverFromHere(copy(), { storeWhenNone: false })).to.equal('elsewhere');
    expect(await stored()).to.equal(0);
    expect(await messaging.deliverFromHere(copy(), { storeWhenNone: true })).to.equal('stored');
    expect(await stored()).to.equal(1);
  });

  it('contacts held by another node only: nothing sent nor stored from here', async () => {
    await registerBob(`<sip:bob@${OTHER_NODE}:5062>`);
    expect(await messaging.deliverFromHere(copy(), { storeWhenNone: true })).to.equal('elsewhere');
    expect([tx.sent.length, relayed, await stored()]).to.deep.equal([0, 0, 0]);
  });

  it('a contact here and one elsewhere: only ours is sent to, never relayed', async () => {
    await registerBob('<sip:bob@192.0.2.10:5062>', `<sip:bob@${OTHER_NODE}:5062>`);
    expect(await messaging.deliverFromHere(copy(), { storeWhenNone: false })).to.equal('delivered');
    expect(tx.sent.map((s) => s.destination.address)).to.deep.equal(['192.0.2.10']);
    expect(relayed).to.equal(0);
  });

  it('every contact is ours and none answered: stored here, as a plain delivery would', async () => {
    answer = 'timeout';
    await registerBob('<sip:bob@192.0.2.10:5062>');
    expect(await messaging.deliverFromHere(copy(), { storeWhenNone: false })).to.equal('stored');
    expect(await stored()).to.equal(1);
  });
});
