import { expect } from 'chai';
import { CompletedClients } from '../../src/transaction/held-keys.js';
import { ManualTimers } from '../../src/util/timers.js';
import { harness, request, responseTo } from './helpers.js';
import { TransactionState } from '../../src/transaction/types.js';

const K = 5_000;

describe('transaction/held-keys: Completed non-INVITE client transactions over UDP (RFC 3261 §17.1.2.2)', () => {
  it('holds each key for Timer K from when it came, in order, with one timer for all', () => {
    const timers = new ManualTimers();
    const t = new CompletedClients(timers, K);
    t.add('a');
    timers.advance(1_000);
    t.add('b');
    t.add('c');
    expect(t.size).to.equal(3);
    expect(timers.size).to.equal(1);
    timers.advance(K - 1_000 - 1);
    expect([t.has('a'), t.has('b'), t.has('c')]).to.deep.equal([true, true, true]);
    timers.advance(1);
    expect([t.has('a'), t.has('b'), t.has('c')]).to.deep.equal([false, true, true]);
    // A key that comes again is held afresh.
    t.add('b');
    timers.advance(1_000);
    expect([t.has('b'), t.has('c')]).to.deep.equal([true, false]);
    t.delete('b');
    expect(t.size).to.equal(0);
    expect(timers.size).to.equal(0);
  });

  it('lets go of a long front in one move and keeps the rest in order', () => {
    const timers = new ManualTimers();
    const t = new CompletedClients(timers, K);
    for (let i = 0; i < 3_000; i++) t.add(`k${i}`);
    timers.advance(1);
    for (let i = 3_000; i < 3_100; i++) t.add(`k${i}`);
    timers.advance(K - 1);
    expect(t.size).to.equal(100);
    expect(t.has('k2999')).to.equal(false);
    expect(t.has('k3000')).to.equal(true);
    timers.advance(1);
    expect(t.size).to.equal(0);
  });

  it('the layer lets a Completed client transaction go at once and absorbs its response retransmissions by key until K', async () => {
    const h = harness();
    const udp = { protocol: 'udp' as const, address: '198.51.100.7', port: 5060 };
    const txn = h.layer.sendRequest(request({ method: 'NOTIFY', toTag: 'd1' }), udp);
    const sent = h.sender.requests()[0]!;
    h.deliver(responseTo(sent, 200));
    expect((await txn.final).status).to.equal(200);
    expect(txn.state).to.equal(TransactionState.Completed);
    // Nothing in the layer points at the transaction (its request, its user's callbacks) any more.
    expect((h.layer as unknown as { clients: Map<string, unknown> }).clients.size).to.equal(0);
    expect(h.layer.stats().client).to.equal(1);
    h.deliver(responseTo(sent, 200));
    expect(h.strayResponses).to.have.length(0);
    h.timers.advance(K);
    expect(txn.state).to.equal(TransactionState.Terminated);
    expect(h.layer.stats().client).to.equal(0);
    h.deliver(responseTo(sent, 200));
    expect(h.strayResponses).to.have.length(1);
  });
});
