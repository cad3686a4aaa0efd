import { expect } from 'chai';
import { InMemoryOfflineMessageStore } from '../../src/messaging/memory-offline-store.js';
import { RepositoryOfflineMessageStore, type StoredMessageRepositoryLike } from '../../src/messaging/repository-offline-store.js';
import type { StoredMessage } from '../../src/messaging/offline-message-store.js';
import { storeRegistrationSink } from '../../src/registrar/store-registration-sink.js';
import type { Binding, BindingRef } from '../../src/registrar/binding.js';

describe('store adapters', () => {
  it('maps the offline store onto the stored-message repository', async () => {
    const mem = new InMemoryOfflineMessageStore();
    const calls: string[] = [];
    const repo: StoredMessageRepositoryLike = {
      insert: (m) => (calls.push('insert'), mem.add(m)),
      listFor: (r, now) => (calls.push('listFor'), mem.listFor(r, now)),
      recipientsWithMessages: (rs, now) => (calls.push('recipientsWithMessages'), mem.recipientsWithMessages(rs, now)),
      delete: (id) => (calls.push('delete'), mem.remove(id)),
      countAndBytesFor: (r, now) => (calls.push('countAndBytesFor'), mem.usage(r, now)),
      deleteExpired: (now) => (calls.push('deleteExpired'), mem.purgeExpired(now)),
    };
    const store = new RepositoryOfflineMessageStore(repo);
    const m: StoredMessage = { id: 'x', recipient: 'sip:bob@example.com', from: '<sip:a@example.com>;tag=1', to: '<sip:bob@example.com>', callId: 'c', cseq: 1, headers: [], body: Buffer.from('hi'), receivedAt: 0, expiresAt: 10 };
    await store.add(m);
    expect(await store.usage(m.recipient, 0)).to.deep.equal({ count: 1, bytes: 2 });
    expect(await store.listFor(m.recipient, 0)).to.have.length(1);
    expect(await store.recipientsWithMessages(['sip:alice@example.com', m.recipient], 0)).to.deep.equal([m.recipient]);
    expect(await store.remove('x')).to.equal(true);
    expect(await store.purgeExpired(100)).to.equal(0);
    expect(await store.summary(0)).to.deep.equal([]);
    expect(calls).to.deep.equal(['insert', 'countAndBytesFor', 'listFor', 'recipientsWithMessages', 'delete', 'deleteExpired']);
  });

  it('queues registration changes and survives a full queue', () => {
    const put: Binding[] = [];
    const removed: BindingRef[] = [];
    let full = false;
    const sink = storeRegistrationSink({ upsert: (b) => (full ? false : (put.push(b), true)), delete: (r) => (full ? false : (removed.push(r), true)) });
    const b = { aor: 'sip:bob@example.com', key: 'k' } as Binding;
    sink.bindingChanged(b);
    sink.bindingRemoved({ aor: b.aor, key: b.key });
    full = true;
    sink.bindingChanged(b);
    expect(put).to.have.length(1);
    expect(removed).to.deep.equal([{ aor: b.aor, key: 'k' }]);
  });
});
