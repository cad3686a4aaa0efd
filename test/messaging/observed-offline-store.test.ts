import { expect } from 'chai';
import { InMemoryOfflineMessageStore } from '../../src/messaging/memory-offline-store.js';
import { ObservedOfflineStore } from '../../src/messaging/observed-offline-store.js';
import type { StoredMessage } from '../../src/messaging/offline-message-store.js';

const message = (id: string, recipient: string): StoredMessage => ({
  id,
  recipient,
  from: '<sip:alice@example.com>;tag=a',
  to: `<${recipient}>`,
  callId: `${id}@test`,
  cseq: 1,
  headers: [],
  body: Buffer.from('hi'),
  receivedAt: 0,
  expiresAt: 60_000,
});

describe('messaging: the observed offline store (message waiting, RFC 3842)', () => {
  it('tells the recipient on store and on each removal that removed something, never twice for one message', async () => {
    const told: string[] = [];
    const store = new ObservedOfflineStore(new InMemoryOfflineMessageStore(), (r) => told.push(r));
    await store.add(message('m1', 'sip:bob@example.com'));
    await store.add(message('m2', 'sip:carol@example.com'));
    expect(told).to.deep.equal(['sip:bob@example.com', 'sip:carol@example.com']);
    expect(await store.remove('m1')).to.equal(true);
    // Delivered, then withdrawn after a late 2xx: the second removal finds nothing and tells nobody.
    expect(await store.remove('m1')).to.equal(false);
    expect(told).to.deep.equal(['sip:bob@example.com', 'sip:carol@example.com', 'sip:bob@example.com']);
    expect((await store.usage('sip:bob@example.com', 0)).count).to.equal(0);
  });

  it('knows the recipient of a message it only listed (stored before a restart)', async () => {
    const inner = new InMemoryOfflineMessageStore();
    await inner.add(message('m3', 'sip:dave@example.com'));
    const told: string[] = [];
    const store = new ObservedOfflineStore(inner, (r) => told.push(r));
    const [m] = await store.listFor('sip:dave@example.com', 0);
    expect(await store.remove(m!.id)).to.equal(true);
    expect(told).to.deep.equal(['sip:dave@example.com']);
  });
});
