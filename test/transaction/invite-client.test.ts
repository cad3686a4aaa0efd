import { expect } from 'chai';
import { SipRequest, type SipResponse } from '../../src/sip/message.js';
import { ackForNon2xx } from '../../src/transaction/invite-client-transaction.js';
import { TransactionState } from '../../src/transaction/types.js';
import type { Destination } from '../../src/transport/types.js';
import { gaps, harness, responseTo, settle } from './helpers.js';

const UDP: Destination = { protocol: 'udp', address: '198.51.100.20', port: 5060 };
const TCP: Destination = { protocol: 'tcp', address: '198.51.100.20', port: 5060 };

function invite(): SipRequest {
  const req = new SipRequest('INVITE', 'sip:bob@198.51.100.20');
  req.addHeader('Max-Forwards', 70);
  req.addHeader('Route', '<sip:proxy.example.com;lr>');
  req.addHeader('From', '<sip:alice@example.com>;tag=a1');
  req.addHeader('To', '<sip:bob@example.com>');
  req.addHeader('Call-ID', 'inv-1@example.com');
  req.addHeader('CSeq', '314 INVITE');
  req.addHeader('Contact', '<sip:alice@192.0.2.1>');
  return req;
}

const isInvite = (m: unknown): boolean => m instanceof SipRequest && m.method === 'INVITE';
const isAck = (m: unknown): boolean => m instanceof SipRequest && m.method === 'ACK';

describe('transaction/INVITE client transaction (RFC 3261 §17.1.1, RFC 6026)', () => {
  it('Calling: Timer A retransmits with doubling intervals; Timer B (64*T1) gives a 408 and no ACK', async () => {
    const h = harness();
    const txn = h.layer.sendRequest(invite(), UDP);
    expect(txn.kind).to.equal('invite');
    expect(txn.state).to.equal(TransactionState.Calling);
    h.timers.advance(31_999);
    expect(gaps(h.sender.times(isInvite))).to.deep.equal([500, 1000, 2000, 4000, 8000, 16000]);
    h.timers.advance(1);
    const res = await txn.final;
    expect(res.status).to.equal(408);
    expect(res.reason).to.equal('Request Timeout');
    expect(txn.outcome).to.equal('timeout');
    expect(h.sender.times(isAck)).to.have.length(0);
    expect(h.layer.stats().client).to.equal(0);
    expect(h.timers.size).to.equal(0);
  });

  it('a 1xx moves to Proceeding: no more retransmissions, Timer B no longer applies', () => {
    const h = harness();
    const provisional: SipResponse[] = [];
    const txn = h.layer.sendRequest(invite(), UDP, { onProvisional: (r) => provisional.push(r) });
    h.deliver(responseTo(h.sender.requests()[0]!, 180));
    expect(txn.state).to.equal(TransactionState.Proceeding);
    expect(provisional.map((r) => r.status)).to.deep.equal([180]);
    h.timers.advance(60_000);
    expect(h.sender.sent).to.have.length(1);
    expect(txn.state).to.equal(TransactionState.Proceeding);
    expect(txn.outcome).to.equal(undefined);
    // Not forever: Proceeding is bounded by Timer C's value (181 s).
    h.timers.advance(121_000);
    expect(txn.outcome).to.equal('timeout');
    expect(h.layer.stats().client).to.equal(0);
    expect(h.timers.size).to.equal(0);
  });

  it('a 300-699 response: ACK built per §17.1.1.3 and sent, response passed up, retransmissions re-ACKed, Timer D 32 s', async () => {
    const h = harness();
    const txn = h.layer.sendRequest(invite(), UDP);
    const sent = h.sender.requests()[0]!;
    h.timers.advance(100);
    h.deliver(responseTo(sent, 486, 'busy-tag'));
    expect(txn.state).to.equal(TransactionState.Completed);
    const res = await txn.final;
    expect(res.status).to.equal(486);
    expect(txn.outcome).to.equal('response');

    const acks = h.sender.sent.filter((s) => isAck(s.message));
    expect(acks).to.have.length(1);
    expect(acks[0]!.dest).to.equal(UDP);
    const ack = acks[0]!.message as SipRequest;
    expect(ack.uriText).to.equal(sent.uriText);
    expect(ack.vias).to.have.length(1);
    expect(ack.getHeader('via')).to.equal(sent.getHeaders('via')[0]);
    expect(ack.cseq).to.deep.equal({ seq: 314, method: 'ACK' });
    expect(ack.to.tag).to.equal('busy-tag');
    expect(ack.from.tag).to.equal('a1');
    expect(ack.callId).to.equal('inv-1@example.com');
    expect(ack.getHeader('route')).to.equal('<sip:proxy.example.com;lr>');

    // A retransmitted 486 gets the ACK again and is not passed up.
    h.deliver(responseTo(sent, 486, 'busy-tag'));
    expect(h.sender.times(isAck)).to.have.length(2);
    expect(h.strayResponses).to.have.length(0);
    // No INVITE retransmission after the final response.
    h.timers.advance(31_999);
    expect(h.sender.times(isInvite)).to.deep.equal([0]);
    expect(txn.state).to.equal(TransactionState.Completed);
    h.timers.advance(1);
    expect(txn.state).to.equal(TransactionState.Terminated);
    expect(h.layer.stats().client).to.equal(0);
    expect(h.timers.size).to.equal(0);
  });

  it('a 2xx moves to Accepted without an ACK; more 2xx reach the user; Timer M ends it', async () => {
    const h = harness();
    const extra: SipResponse[] = [];
    const txn = h.layer.sendRequest(invite(), UDP, { onAdditional2xx: (r) => extra.push(r) });
    const sent = h.sender.requests()[0]!;
    h.deliver(responseTo(sent, 200, 'fork-1'));
    expect(txn.state).to.equal(TransactionState.Accepted);
    expect((await txn.final).to.tag).to.equal('fork-1');
    h.deliver(responseTo(sent, 200, 'fork-1'));
    h.deliver(responseTo(sent, 200, 'fork-2'));
    h.deliver(responseTo(sent, 486, 'fork-3'));
    expect(extra.map((r) => r.to.tag)).to.deep.equal(['fork-1', 'fork-2']);
    expect(h.sender.times(isAck)).to.have.length(0);
    h.timers.advance(32_000);
    expect(txn.state).to.equal(TransactionState.Terminated);
    expect(h.timers.size).to.equal(0);
  });

  it('on TCP: no Timer A; the ACK is still sent for a non-2xx and the transaction ends at once (D = 0)', async () => {
    const h = harness();
    const txn = h.layer.sendRequest(invite(), TCP);
    h.timers.advance(10_000);
    expect(h.sender.sent).to.have.length(1);
    h.deliver(responseTo(h.sender.requests()[0]!, 603, 'decline'));
    expect(h.sender.times(isAck)).to.have.length(1);
    expect(txn.state).to.equal(TransactionState.Terminated);
    expect((await txn.final).status).to.equal(603);
    expect(h.timers.size).to.equal(0);
  });

  it('a transport error in Calling gives a 503 transport-error', async () => {
    const h = harness();
    h.sender.fail = (_d, m) => (isInvite(m) ? new Error('refused') : undefined);
    const txn = h.layer.sendRequest(invite(), TCP);
    await settle();
    expect(txn.outcome).to.equal('transport-error');
    expect((await txn.final).reason).to.equal('Transport Error');
  });

  it('ackForNon2xx copies what §17.1.1.3 asks for', () => {
    const inv = invite();
    inv.addHeader('Via', 'SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKtop;rport');
    inv.addHeader('Via', 'SIP/2.0/UDP upstream.example.com;branch=z9hG4bKlow');
    const res = responseTo(inv, 404, 'nf');
    const ack = ackForNon2xx(inv, res);
    expect(ack.method).to.equal('ACK');
    expect(ack.vias.map((v) => v.branch)).to.deep.equal(['z9hG4bKtop']);
    expect(ack.to.tag).to.equal('nf');
    expect(ack.body.length).to.equal(0);
  });
});
