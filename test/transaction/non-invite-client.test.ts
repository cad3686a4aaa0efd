import { expect } from 'chai';
import { SipRequest, type SipResponse } from '../../src/sip/message.js';
import { TransactionState } from '../../src/transaction/types.js';
import type { Destination } from '../../src/transport/types.js';
import { gaps, harness, responseTo, settle } from './helpers.js';

const UDP: Destination = { protocol: 'udp', address: '198.51.100.20', port: 5060 };
const TCP: Destination = { protocol: 'tcp', address: '198.51.100.20', port: 5060 };

function notify(): SipRequest {
  const req = new SipRequest('NOTIFY', 'sip:watcher@198.51.100.20');
  req.addHeader('Max-Forwards', 70);
  req.addHeader('From', '<sip:alice@example.com>;tag=n1');
  req.addHeader('To', '<sip:watcher@example.com>;tag=w1');
  req.addHeader('Call-ID', 'sub-1@example.com');
  req.addHeader('CSeq', '7 NOTIFY');
  req.addHeader('Event', 'presence');
  req.addHeader('Subscription-State', 'active;expires=600');
  return req;
}

describe('transaction/non-INVITE client transaction (RFC 3261 §17.1.2)', () => {
  it('puts our Via on top and sends the request to the destination', () => {
    const h = harness();
    const txn = h.layer.sendRequest(notify(), UDP);
    expect(h.sender.sent).to.have.length(1);
    expect(h.sender.sent[0]!.dest).to.equal(UDP);
    const sent = h.sender.requests()[0]!;
    const via = sent.topVia;
    expect(via.transport).to.equal('UDP');
    expect(`${via.host}:${via.port}`).to.equal('192.0.2.1:5060');
    expect(via.branch).to.match(/^z9hG4bK.+/);
    expect(via.params.has('rport')).to.equal(true);
    expect(txn.id).to.equal(`${via.branch}|NOTIFY`);
    expect(txn.state).to.equal(TransactionState.Trying);
    expect(h.layer.stats()).to.include({ client: 1, server: 0 });
  });

  it('keeps the upstream Vias of a forwarded request below ours', () => {
    const h = harness();
    const req = notify();
    req.addHeader('Via', 'SIP/2.0/UDP upstream.example.com;branch=z9hG4bKup');
    h.layer.sendRequest(req, UDP);
    const vias = h.sender.requests()[0]!.vias;
    expect(vias).to.have.length(2);
    expect(vias[0]!.host).to.equal('192.0.2.1');
    expect(vias[1]!.branch).to.equal('z9hG4bKup');
  });

  it('Timer E retransmits doubling up to T2; Timer F gives a local 408 "Request Timeout"', async () => {
    const h = harness();
    const txn = h.layer.sendRequest(notify(), UDP);
    h.timers.advance(31_999);
    expect(gaps(h.sender.times())).to.deep.equal([500, 1000, 2000, 4000, 4000, 4000, 4000, 4000, 4000, 4000]);
    expect(txn.outcome).to.equal(undefined);
    h.timers.advance(1);
    const res = await txn.final;
    expect(res.status).to.equal(408);
    expect(res.reason).to.equal('Request Timeout');
    expect(res.to.tag).to.equal('w1');
    expect(txn.outcome).to.equal('timeout');
    expect(txn.state).to.equal(TransactionState.Terminated);
    expect(h.layer.stats().client).to.equal(0);
    expect(h.timers.size).to.equal(0);
  });

  it('over UDP retransmits every byte of a body that is not UTF-8, and holds no Buffer between sends', () => {
    const h = harness();
    const req = notify();
    req.setHeader('Content-Type', 'application/octet-stream');
    req.body = Buffer.from([0xff, 0x00, 0xc3, 0x28, 0x80]);
    const txn = h.layer.sendRequest(req, UDP);
    const held = Object.values(txn as unknown as Record<string, unknown>).filter((v) => Buffer.isBuffer(v));
    expect(held, 'a Buffer held while waiting for Timer E').to.have.length(0);
    h.timers.advance(1500);
    expect(h.sender.sent).to.have.length(3);
    expect(h.sender.sent[2]!.data.equals(h.sender.sent[0]!.data)).to.equal(true);
    expect(h.sender.sent[0]!.data.subarray(-5).equals(req.body)).to.equal(true);
  });

  it('a 1xx moves to Proceeding, reaches the user, and Timer E then runs at T2', async () => {
    const h = harness();
    const provisional: SipResponse[] = [];
    const txn = h.layer.sendRequest(notify(), UDP, { onProvisional: (r) => provisional.push(r) });
    const sent = h.sender.requests()[0]!;
    h.timers.advance(600); // retransmitted at 500, next E due at 1500
    h.deliver(responseTo(sent, 100));
    expect(txn.state).to.equal(TransactionState.Proceeding);
    expect(provisional.map((r) => r.status)).to.deep.equal([100]);
    h.timers.advance(20_000);
    // 0, 500, 1500 (the E already set), then every T2 up to 20 600 ms: 5500, 9500, 13500, 17500
    expect(gaps(h.sender.times())).to.deep.equal([500, 1000, 4000, 4000, 4000, 4000]);
    h.deliver(responseTo(sent, 200));
    const res = await txn.final;
    expect(res.status).to.equal(200);
    expect(txn.outcome).to.equal('response');
  });

  it('a final response resolves `final`; Completed absorbs retransmissions until Timer K (T4)', async () => {
    const h = harness();
    const provisional: SipResponse[] = [];
    const txn = h.layer.sendRequest(notify(), UDP, { onProvisional: (r) => provisional.push(r) });
    const sent = h.sender.requests()[0]!;
    h.deliver(responseTo(sent, 200));
    expect(txn.state).to.equal(TransactionState.Completed);
    expect((await txn.final).status).to.equal(200);
    h.deliver(responseTo(sent, 200));
    h.deliver(responseTo(sent, 100));
    expect(h.strayResponses).to.have.length(0);
    expect(provisional).to.have.length(0);
    h.timers.advance(10_000);
    expect(h.sender.sent).to.have.length(1); // no retransmission after the final
    expect(txn.state).to.equal(TransactionState.Terminated);
    expect(h.layer.stats().client).to.equal(0);
    // After K, a late copy is stray.
    h.deliver(responseTo(sent, 200));
    expect(h.strayResponses).to.have.length(1);
  });

  it('K fires at T4', () => {
    const h = harness();
    const txn = h.layer.sendRequest(notify(), UDP);
    h.deliver(responseTo(h.sender.requests()[0]!, 481));
    h.timers.advance(4_999);
    expect(txn.state).to.equal(TransactionState.Completed);
    h.timers.advance(1);
    expect(txn.state).to.equal(TransactionState.Terminated);
  });

  it('on TCP: no retransmissions, F still times out, a final ends it at once (K = 0)', async () => {
    const h = harness();
    const a = h.layer.sendRequest(notify(), TCP);
    h.timers.advance(31_999);
    expect(h.sender.sent).to.have.length(1);
    h.timers.advance(1);
    expect((await a.final).status).to.equal(408);

    const b = h.layer.sendRequest(notify(), TCP);
    h.deliver(responseTo(h.sender.requests()[1]!, 200));
    expect(b.state).to.equal(TransactionState.Terminated);
    expect(b.outcome).to.equal('response');
    expect(h.layer.stats().client).to.equal(0);
    expect(h.timers.size).to.equal(0);
  });

  it('a transport error gives a local 503 "Transport Error" with outcome transport-error', async () => {
    const h = harness();
    h.sender.fail = () => new Error('connection refused');
    const txn = h.layer.sendRequest(notify(), TCP);
    const res = await txn.final;
    expect(res.status).to.equal(503);
    expect(res.reason).to.equal('Transport Error');
    expect(txn.outcome).to.equal('transport-error');
    expect(txn.state).to.equal(TransactionState.Terminated);
    expect(h.layer.stats().client).to.equal(0);
    expect(h.timers.size).to.equal(0);
  });

  it('fails at once (503) when the connection it went down closes, leaving others alone (§17.1.4)', async () => {
    const h = harness();
    const onConn = h.layer.sendRequest(notify(), { ...TCP, connectionId: 7 });
    const other = h.layer.sendRequest(notify(), { ...TCP, connectionId: 8 });
    await settle();
    h.layer.connectionClosed(7);
    const res = await onConn.final;
    expect(res.status).to.equal(503);
    expect(onConn.outcome).to.equal('transport-error');
    expect(other.state).to.equal(TransactionState.Trying);
  });

  it('a transport error on a retransmission ends it the same way', async () => {
    const h = harness();
    const txn = h.layer.sendRequest(notify(), UDP);
    h.sender.fail = () => new Error('network unreachable');
    h.timers.advance(500);
    await settle();
    expect(txn.outcome).to.equal('transport-error');
    expect((await txn.final).status).to.equal(503);
  });

  it('a throwing onProvisional does not break the machine', async () => {
    const h = harness();
    const txn = h.layer.sendRequest(notify(), UDP, {
      onProvisional: () => {
        throw new Error('user bug');
      },
    });
    const sent = h.sender.requests()[0]!;
    expect(() => h.deliver(responseTo(sent, 100))).to.not.throw();
    h.deliver(responseTo(sent, 202));
    expect((await txn.final).status).to.equal(202);
  });

  it('keepTopVia: a caller-built Via with an RFC 3261 branch is used as is', () => {
    const h = harness();
    const req = notify();
    req.addHeader('Via', 'SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKmine;rport');
    const txn = h.layer.sendRequest(req, UDP, { keepTopVia: true });
    expect(txn.id).to.equal('z9hG4bKmine|NOTIFY');
    expect(h.sender.requests()[0]!.vias).to.have.length(1);
    // The same branch again for the same method is taken: the layer adds its own Via.
    const again = notify();
    again.addHeader('Via', 'SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKmine;rport');
    const second = h.layer.sendRequest(again, UDP, { keepTopVia: true });
    expect(second.id).to.not.equal(txn.id);
    expect(h.sender.requests()[1]!.vias).to.have.length(2);
  });

  it('after close(), sendRequest resolves at once with a 503 and sends nothing', async () => {
    const h = harness();
    h.layer.sendRequest(notify(), UDP);
    h.layer.close();
    expect(h.timers.size).to.equal(0);
    expect(h.layer.stats()).to.include({ client: 0, server: 0 });
    const txn = h.layer.sendRequest(notify(), UDP);
    expect((await txn.final).status).to.equal(503);
    expect(h.sender.sent).to.have.length(1);
  });
});
