import { expect } from 'chai';
import { createResponse } from '../../src/sip/response.js';
import type { SipResponse } from '../../src/sip/message.js';
import { TransactionState, type ServerTransaction } from '../../src/transaction/types.js';
import { gaps, harness, request, settle, streamFlow } from './helpers.js';

const INVITE = { method: 'INVITE', branch: 'z9hG4bKinv1' } as const;
/** The ACK for a non-2xx: same branch as the INVITE (§17.1.1.3), To tag of the response. */
const ACK = { method: 'ACK', branch: 'z9hG4bKinv1', toTag: 'reject-tag' } as const;

function reject(txn: ServerTransaction, status = 486): void {
  txn.respond(createResponse(txn.request, status, undefined, { toTag: 'reject-tag' }));
}

describe('transaction/INVITE server transaction (RFC 3261 §17.2.1, RFC 6026)', () => {
  it('sends 100 Trying after 200 ms when the TU has said nothing', () => {
    const h = harness();
    h.deliver(request(INVITE));
    const txn = h.requests[0]!;
    expect(txn.kind).to.equal('invite');
    expect(txn.state).to.equal(TransactionState.Proceeding);
    h.timers.advance(199);
    expect(h.sender.sent).to.have.length(0);
    h.timers.advance(1);
    const res = h.sender.responses();
    expect(res.map((r) => r.status)).to.deep.equal([100]);
    expect(res[0]!.to.tag).to.equal(undefined);
  });

  it('sends no 100 when the TU answers at once', () => {
    const h = harness({ answer: (txn) => reject(txn, 405) });
    h.deliver(request(INVITE));
    h.timers.advance(1000);
    expect(h.sender.responses()[0]!.status).to.equal(405);
    expect(h.sender.responses().filter((r) => r.status === 100)).to.have.length(0);
  });

  it('answers an INVITE retransmission before any response with 100 at once, then the last provisional', () => {
    const h = harness();
    h.deliver(request({ ...INVITE, extraHeaders: ['Timestamp: 54'] }));
    h.timers.advance(50);
    h.deliver(request(INVITE));
    expect(h.sender.responses().map((r) => r.status)).to.deep.equal([100]);
    expect(h.sender.responses()[0]!.getHeader('timestamp')).to.equal('54');
    h.timers.advance(500);
    expect(h.sender.sent).to.have.length(1);
    const txn = h.requests[0]!;
    txn.respond(createResponse(txn.request, 180, undefined, { toTag: 't' }));
    h.deliver(request(INVITE));
    expect(h.sender.responses().map((r) => r.status)).to.deep.equal([100, 180, 180]);
    expect(h.requests).to.have.length(1);
  });

  it('Completed: Timer G retransmits the final response doubling up to T2 until Timer H (64*T1), then tells the TU', () => {
    const h = harness({ answer: (txn) => reject(txn) });
    h.deliver(request(INVITE));
    const txn = h.requests[0]!;
    expect(txn.state).to.equal(TransactionState.Completed);
    h.timers.advance(31_999);
    const times = h.sender.times((m) => (m as SipResponse).status === 486);
    // sent at 0, then G at 500, 1000, 2000, 4000, 4000, ...
    expect(gaps(times).slice(0, 6)).to.deep.equal([500, 1000, 2000, 4000, 4000, 4000]);
    expect(gaps(times).every((g) => g <= 4000)).to.equal(true);
    expect(txn.state).to.equal(TransactionState.Completed);
    expect(h.failures).to.have.length(0);
    h.timers.advance(1);
    expect(txn.state).to.equal(TransactionState.Terminated);
    expect(h.failures.map((f) => f.reason)).to.deep.equal(['timeout']);
    expect(h.layer.stats().server).to.equal(0);
    expect(h.timers.size).to.equal(0);
  });

  it('resends the final response on an INVITE retransmission in Completed', () => {
    const h = harness({ answer: (txn) => reject(txn) });
    h.deliver(request(INVITE));
    h.timers.advance(100);
    h.deliver(request(INVITE));
    expect(h.sender.times()).to.deep.equal([0, 100]);
    expect(h.requests).to.have.length(1);
  });

  it('the ACK matches the transaction, is absorbed, stops Timer G; Timer I (T4) then ends it', () => {
    const h = harness({ answer: (txn) => reject(txn) });
    h.deliver(request(INVITE));
    const txn = h.requests[0]!;
    h.timers.advance(600); // one retransmission at 500
    expect(h.sender.sent).to.have.length(2);
    h.deliver(request(ACK));
    expect(txn.state).to.equal(TransactionState.Confirmed);
    expect(h.strayAcks).to.have.length(0);
    expect(h.requests).to.have.length(1);
    h.deliver(request(ACK)); // absorbed in Confirmed
    expect(h.strayAcks).to.have.length(0);
    h.timers.advance(4_999);
    expect(h.sender.sent).to.have.length(2);
    expect(txn.state).to.equal(TransactionState.Confirmed);
    h.timers.advance(1);
    expect(txn.state).to.equal(TransactionState.Terminated);
    expect(h.failures).to.have.length(0);
    expect(h.layer.stats().server).to.equal(0);
    expect(h.timers.size).to.equal(0);
  });

  it('on TCP: no Timer G, the ACK ends it at once (Timer I = 0), Timer H still bounds it', () => {
    const h = harness({ answer: (txn) => reject(txn) });
    h.sender.open.add(2);
    h.deliver(request({ ...INVITE, transport: 'TCP' }), streamFlow('tcp', 2));
    const txn = h.requests[0]!;
    h.timers.advance(10_000);
    expect(h.sender.sent).to.have.length(1);
    h.deliver(request({ ...ACK, transport: 'TCP' }), streamFlow('tcp', 2));
    expect(txn.state).to.equal(TransactionState.Terminated);
    expect(h.layer.stats().server).to.equal(0);

    h.deliver(request({ ...INVITE, transport: 'TCP', branch: 'z9hG4bKinv2' }), streamFlow('tcp', 2));
    const second = h.requests[1]!;
    h.timers.advance(32_000);
    expect(second.state).to.equal(TransactionState.Terminated);
    expect(h.sender.sent).to.have.length(2);
    expect(h.failures.map((f) => f.reason)).to.deep.equal(['timeout']);
  });

  it('a 2xx moves to Accepted: INVITE retransmissions absorbed, the 2xx ACK goes to the TU, Timer L ends it', () => {
    const h = harness({ answer: (txn) => txn.respond(createResponse(txn.request, 200, undefined, { toTag: 'ok-tag' })) });
    h.deliver(request(INVITE));
    const txn = h.requests[0]!;
    expect(txn.state).to.equal(TransactionState.Accepted);
    h.deliver(request(INVITE));
    expect(h.sender.sent).to.have.length(1);
    expect(h.requests).to.have.length(1);
    // The ACK for a 2xx has its own branch (§13.2.2.4): not part of the transaction.
    h.deliver(request({ method: 'ACK', branch: 'z9hG4bKack2xx', toTag: 'ok-tag' }));
    expect(h.strayAcks).to.have.length(1);
    // The TU's own 2xx retransmission passes through.
    txn.respond(createResponse(txn.request, 200, undefined, { toTag: 'ok-tag' }));
    txn.respond(createResponse(txn.request, 486, undefined, { toTag: 'ok-tag' }));
    expect(h.sender.responses().map((r) => r.status)).to.deep.equal([200, 200]);
    h.timers.advance(31_999);
    expect(txn.state).to.equal(TransactionState.Accepted);
    h.timers.advance(1);
    expect(txn.state).to.equal(TransactionState.Terminated);
    expect(h.timers.size).to.equal(0);
  });

  it('an ACK before any final response is absorbed, nothing sent', () => {
    const h = harness();
    h.deliver(request(INVITE));
    h.deliver(request({ method: 'ACK', branch: 'z9hG4bKinv1' }));
    expect(h.requests[0]!.state).to.equal(TransactionState.Proceeding);
    expect(h.strayAcks).to.have.length(0);
  });

  it('a transport error on the final response tells the TU and terminates', async () => {
    const h = harness({ answer: (txn) => reject(txn) });
    h.sender.fail = () => new Error('no route');
    h.deliver(request(INVITE));
    await settle();
    expect(h.requests[0]!.state).to.equal(TransactionState.Terminated);
    expect(h.failures.map((f) => f.reason)).to.deep.equal(['transport-error']);
    expect(h.timers.size).to.equal(0);
  });
});
