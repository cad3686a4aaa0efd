import { expect } from 'chai';
import { createResponse } from '../../src/sip/response.js';
import { TransactionState } from '../../src/transaction/types.js';
import { harness, request, settle, streamFlow } from './helpers.js';

describe('transaction/non-invite server transaction (RFC 3261 §17.2.2)', () => {
  it('opens a transaction for a new request and hands it to the TU once', () => {
    const h = harness();
    h.deliver(request());
    expect(h.requests).to.have.length(1);
    const txn = h.requests[0]!;
    expect(txn.kind).to.equal('non-invite');
    expect(txn.state).to.equal(TransactionState.Trying);
    expect(txn.flow.remotePort).to.equal(5060);
    expect(h.layer.stats()).to.include({ server: 1, client: 0 });
  });

  it('absorbs a retransmission in Trying: nothing sent, the TU not called again', () => {
    const h = harness();
    h.deliver(request());
    h.deliver(request());
    h.deliver(request());
    expect(h.requests).to.have.length(1);
    expect(h.sender.sent).to.have.length(0);
    expect(h.layer.stats().server).to.equal(1);
  });

  it('resends the last provisional in Proceeding', () => {
    const h = harness();
    h.deliver(request());
    const txn = h.requests[0]!;
    txn.respond(createResponse(txn.request, 100));
    expect(txn.state).to.equal(TransactionState.Proceeding);
    h.deliver(request());
    expect(h.sender.responses().map((r) => r.status)).to.deep.equal([100, 100]);
    expect(h.requests).to.have.length(1);
  });

  it('resends the final response in Completed and discards a second final', () => {
    const h = harness();
    h.deliver(request());
    const txn = h.requests[0]!;
    txn.respond(createResponse(txn.request, 100));
    txn.respond(createResponse(txn.request, 200, undefined, { toTag: 'x1' }));
    expect(txn.state).to.equal(TransactionState.Completed);
    txn.respond(createResponse(txn.request, 500, undefined, { toTag: 'x2' }));
    txn.respond(createResponse(txn.request, 180));
    h.deliver(request());
    h.deliver(request());
    const sent = h.sender.responses();
    expect(sent.map((r) => r.status)).to.deep.equal([100, 200, 200, 200]);
    expect(sent[3]!.to.tag).to.equal('x1');
    expect(txn.lastResponse?.status).to.equal(200);
  });

  it('sends the response to received/rport of the stamped top Via', () => {
    const h = harness({ answer: (txn) => txn.respond(createResponse(txn.request, 200)) });
    h.deliver(request({ sentBy: '10.0.0.5:5070', viaParams: ';rport' }), { protocol: 'udp', remoteAddress: '203.0.113.9', remotePort: 40000, localAddress: '192.0.2.1', localPort: 5060 });
    expect(h.sender.sent[0]!.dest).to.deep.equal({ protocol: 'udp', address: '203.0.113.9', port: 40000 });
    const via = h.sender.responses()[0]!.topVia;
    expect(via.params.get('received')).to.equal('203.0.113.9');
    expect(via.params.get('rport')).to.equal('40000');
  });

  it('Timer J (64*T1 on UDP) frees it; a later copy of the request is then a new transaction', () => {
    const h = harness({ answer: (txn) => txn.respond(createResponse(txn.request, 200)) });
    h.deliver(request());
    const txn = h.requests[0]!;
    h.timers.advance(31_999);
    expect(txn.state).to.equal(TransactionState.Completed);
    expect(h.layer.stats().server).to.equal(1);
    h.deliver(request());
    expect(h.sender.responses()).to.have.length(2);
    h.timers.advance(1);
    expect(txn.state).to.equal(TransactionState.Terminated);
    expect(h.layer.stats().server).to.equal(0);
    expect(h.timers.size).to.equal(0);
    h.deliver(request());
    expect(h.requests).to.have.length(2);
  });

  it('Timer J is zero on a reliable transport: terminated at once', () => {
    const h = harness({ answer: (txn) => txn.respond(createResponse(txn.request, 200)) });
    h.sender.open.add(4);
    h.deliver(request({ transport: 'TCP' }), streamFlow('tcp', 4, '198.51.100.7', 40000));
    const txn = h.requests[0]!;
    expect(txn.state).to.equal(TransactionState.Terminated);
    expect(h.layer.stats().server).to.equal(0);
    expect(h.timers.size).to.equal(0);
    expect(h.sender.sent[0]!.dest).to.include({ protocol: 'tcp', connectionId: 4 });
  });

  it('answers over TCP down a new connection when the request\'s one has closed', () => {
    const h = harness();
    h.deliver(request({ transport: 'TCP', sentBy: '10.0.0.5:5070' }), streamFlow('tcp', 4, '203.0.113.9', 40000));
    const txn = h.requests[0]!;
    // connection 4 is not open in the fake sender
    txn.respond(createResponse(txn.request, 200));
    expect(h.sender.sent[0]!.dest).to.deep.equal({ protocol: 'tcp', address: '203.0.113.9', port: 5070 });
  });

  it('a transport error on the response tells the TU and terminates (§17.2.4)', async () => {
    const h = harness();
    h.sender.fail = () => new Error('host unreachable');
    h.deliver(request());
    const txn = h.requests[0]!;
    txn.respond(createResponse(txn.request, 200));
    await settle();
    expect(txn.state).to.equal(TransactionState.Terminated);
    expect(h.failures.map((f) => f.reason)).to.deep.equal(['transport-error']);
    expect(h.layer.stats().server).to.equal(0);
    expect(h.timers.size).to.equal(0);
  });

  it('gives up a transaction whose TU never answers, after 64*T1', () => {
    const h = harness();
    h.deliver(request());
    h.timers.advance(32_000);
    expect(h.requests[0]!.state).to.equal(TransactionState.Terminated);
    expect(h.failures.map((f) => f.reason)).to.deep.equal(['no-answer']);
    expect(h.layer.stats().server).to.equal(0);
    // A late answer is dropped without a throw.
    h.requests[0]!.respond(createResponse(h.requests[0]!.request, 200));
    expect(h.sender.sent).to.have.length(0);
  });

  it('drops a response with an impossible status code', () => {
    const h = harness();
    h.deliver(request());
    const txn = h.requests[0]!;
    const bad = createResponse(txn.request, 200);
    bad.status = 99;
    txn.respond(bad);
    expect(h.sender.sent).to.have.length(0);
    expect(txn.state).to.equal(TransactionState.Trying);
  });

  it('a TU that throws does not break the layer', () => {
    const h = harness({
      answer: () => {
        throw new Error('boom');
      },
    });
    expect(() => h.deliver(request())).to.not.throw();
    h.deliver(request());
    expect(h.requests).to.have.length(1);
  });
});
