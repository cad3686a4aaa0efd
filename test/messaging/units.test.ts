import { expect } from 'chai';
import { isComposingIndication } from '../../src/messaging/content-types.js';
import { KeyedQueue } from '../../src/util/keyed-queue.js';
import { InMemoryOfflineMessageStore } from '../../src/messaging/memory-offline-store.js';
import type { StoredMessage } from '../../src/messaging/offline-message-store.js';
import { chooseBest } from '../../src/messaging/response-choice.js';
import { parseMediaType } from '../../src/sip/header-values.js';

describe('messaging: response choice (RFC 3261 §16.7 step 6)', () => {
  const s = (...codes: number[]): Array<{ status: number }> => codes.map((status) => ({ status }));
  it('prefers 6xx, then the lowest class, then 4xx that tell how to resubmit', () => {
    expect(chooseBest(s(404, 603, 302))!.status).to.equal(603);
    expect(chooseBest(s(500, 404, 486))!.status).to.equal(404);
    expect(chooseBest(s(404, 401, 486))!.status).to.equal(401);
    expect(chooseBest(s(500, 513))!.status).to.equal(500);
    expect(chooseBest([])).to.equal(undefined);
  });
});

describe('messaging: typing indications', () => {
  it('recognises isComposing bare or inside CPIM, and nothing else', () => {
    const t = (ct: string): ReturnType<typeof parseMediaType> => parseMediaType(ct);
    expect(isComposingIndication(t('application/im-iscomposing+xml'), Buffer.alloc(0))).to.equal(true);
    const cpim = 'From: <sip:a@x>\r\n\r\nContent-Type: Application/IM-isComposing+xml; charset=utf-8\r\n\r\n<x/>';
    expect(isComposingIndication(t('message/CPIM'), Buffer.from(cpim))).to.equal(true);
    expect(isComposingIndication(t('message/cpim'), Buffer.from('From: <sip:a@x>\r\n\r\nContent-Type: text/plain\r\n\r\nhi'))).to.equal(false);
    expect(isComposingIndication(t('message/cpim'), Buffer.from('garbage'))).to.equal(false);
    expect(isComposingIndication(t('text/plain'), Buffer.from('application/im-iscomposing+xml'))).to.equal(false);
    expect(isComposingIndication(undefined, Buffer.alloc(0))).to.equal(false);
  });
});

describe('messaging: keyed serializer', () => {
  it('runs work for one key one at a time, other keys freely, and survives failures', async () => {
    const k = new KeyedQueue(100);
    const log: string[] = [];
    const step = (name: string, ms: number, fail = false) => async (): Promise<string> => {
      log.push(`${name}>`);
      await new Promise((r) => setTimeout(r, ms));
      log.push(`<${name}`);
      if (fail) throw new Error(name);
      return name;
    };
    const results = await Promise.allSettled([k.run('a', step('a1', 10, true)), k.run('a', step('a2', 1)), k.run('b', step('b1', 1))]);
    expect(results.map((r) => r.status)).to.deep.equal(['rejected', 'fulfilled', 'fulfilled']);
    expect(log.indexOf('a2>')).to.be.greaterThan(log.indexOf('<a1'));
    expect(log.indexOf('b1>')).to.be.lessThan(log.indexOf('<a1'));
  });
});

describe('messaging: in-memory offline store', () => {
  const msg = (id: string, receivedAt: number, body = 'x', recipient = 'sip:bob@example.com'): StoredMessage => ({
    id, recipient, from: '<sip:alice@example.com>;tag=1', to: `<${recipient}>`, callId: id, cseq: 1,
    headers: [], body: Buffer.from(body), receivedAt, expiresAt: receivedAt + 1000,
  });

  it('lists oldest first, counts, removes, and hides then purges expired messages', async () => {
    const s = new InMemoryOfflineMessageStore();
    await s.add(msg('b', 20, 'bb'));
    await s.add(msg('a', 10, 'a'));
    await s.add(msg('c', 20, 'ccc'));
    expect((await s.listFor('sip:bob@example.com', 0)).map((m) => m.id)).to.deep.equal(['a', 'b', 'c']);
    expect(await s.usage('sip:bob@example.com', 0)).to.deep.equal({ count: 3, bytes: 6 });
    expect(await s.remove('b')).to.equal(true);
    expect(await s.remove('b')).to.equal(false);
    expect((await s.listFor('sip:bob@example.com', 1010)).map((m) => m.id)).to.deep.equal(['c']);
    expect(await s.usage('sip:bob@example.com', 1010)).to.deep.equal({ count: 1, bytes: 3 });
    expect(await s.purgeExpired(1010)).to.equal(1);
    expect(s.size).to.equal(1);
    expect(await s.purgeExpired(2000)).to.equal(1);
    expect(await s.summary(2000)).to.deep.equal([]);
  });

  it('refuses past its total size and duplicate ids', async () => {
    const s = new InMemoryOfflineMessageStore(4);
    await s.add(msg('a', 1, 'abc'));
    let err: unknown;
    await s.add(msg('b', 1, 'de')).catch((e: unknown) => (err = e));
    expect(err).to.be.instanceOf(Error);
    err = undefined;
    await s.add(msg('a', 1, 'z')).catch((e: unknown) => (err = e));
    expect(err).to.be.instanceOf(Error);
  });
});
