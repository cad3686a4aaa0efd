import { expect } from 'chai';
import { SipRequest } from '../../src/sip/message.js';
import { createResponse } from '../../src/sip/response.js';
import { TransactionState } from '../../src/transaction/types.js';
import type { Destination } from '../../src/transport/types.js';
import { harness, request, responseTo, streamFlow, udpFlow } from './helpers.js';

const UDP: Destination = { protocol: 'udp', address: '198.51.100.20', port: 5060 };

describe('transaction/matching (RFC 3261 §17.2.3, §17.1.3)', () => {
  describe('server side', () => {
    it('same branch, different sent-by: a new transaction', () => {
      const h = harness();
      h.deliver(request({ sentBy: '198.51.100.7:5060' }));
      h.deliver(request({ sentBy: '198.51.100.8:5060' }), udpFlow('198.51.100.8'));
      h.deliver(request({ sentBy: '198.51.100.7:5062' }));
      expect(h.requests).to.have.length(3);
      // An absent port is the default port: the same sent-by as :5060.
      h.deliver(request({ sentBy: '198.51.100.7' }));
      expect(h.requests).to.have.length(3);
    });

    it('same branch and sent-by, different method: a new transaction', () => {
      const h = harness();
      h.deliver(request({ method: 'SUBSCRIBE' }));
      h.deliver(request({ method: 'PUBLISH' }));
      expect(h.requests.map((t) => t.request.method)).to.deep.equal(['SUBSCRIBE', 'PUBLISH']);
    });

    it('a retransmission from another source port still matches (sent-by is what counts)', () => {
      const h = harness();
      h.deliver(request({ viaParams: ';rport' }), udpFlow('198.51.100.7', 40000));
      h.deliver(request({ viaParams: ';rport' }), udpFlow('198.51.100.7', 40001));
      expect(h.requests).to.have.length(1);
    });

    it('the ACK for a non-2xx matches its INVITE (method taken as INVITE) and never reaches the TU', () => {
      const h = harness({ answer: (txn) => txn.request.method === 'INVITE' && txn.respond(createResponse(txn.request, 405, undefined, { toTag: 't405' })) });
      h.deliver(request({ method: 'INVITE', branch: 'z9hG4bKi' }));
      h.deliver(request({ method: 'ACK', branch: 'z9hG4bKi', toTag: 't405' }));
      expect(h.requests).to.have.length(1);
      expect(h.strayAcks).to.have.length(0);
      expect(h.requests[0]!.state).to.equal(TransactionState.Confirmed);
      // An ACK with another branch, or another sent-by, is not this transaction's.
      h.deliver(request({ method: 'ACK', branch: 'z9hG4bKother', toTag: 't405' }));
      h.deliver(request({ method: 'ACK', branch: 'z9hG4bKi', sentBy: '198.51.100.9:5060', toTag: 't405' }), udpFlow('198.51.100.9'));
      expect(h.strayAcks).to.have.length(2);
      expect(h.requests).to.have.length(1);
    });

    it('CANCEL is its own transaction, offered to the TU with the INVITE it matches', () => {
      const h = harness();
      h.deliver(request({ method: 'INVITE', branch: 'z9hG4bKc' }));
      h.deliver(request({ method: 'CANCEL', branch: 'z9hG4bKc' }));
      expect(h.requests).to.have.length(2);
      const [inv, cancel] = h.requests as [(typeof h.requests)[0], (typeof h.requests)[0]];
      expect(cancel.kind).to.equal('non-invite');
      expect(cancel.id).to.not.equal(inv.id);
      expect(cancel.cancelTarget).to.equal(inv);
      // A CANCEL retransmission stays in its own transaction.
      h.deliver(request({ method: 'CANCEL', branch: 'z9hG4bKc' }));
      expect(h.requests).to.have.length(2);
      // The TU answers both; they are independent.
      cancel.respond(createResponse(cancel.request, 200));
      inv.respond(createResponse(inv.request, 487));
      expect(h.sender.responses().map((r) => `${r.status} ${r.cseq.method}`)).to.deep.equal(['200 CANCEL', '487 INVITE']);
    });

    it('a CANCEL matching nothing has no target', () => {
      const h = harness();
      h.deliver(request({ method: 'CANCEL', branch: 'z9hG4bKnothing' }));
      expect(h.requests[0]!.cancelTarget).to.equal(undefined);
    });

    describe('RFC 2543 peers (no magic cookie)', () => {
      it('a request without a branch opens a transaction and its retransmission matches it', () => {
        const h = harness();
        h.deliver(request({ branch: null }));
        h.deliver(request({ branch: null }));
        expect(h.requests).to.have.length(1);
        const txn = h.requests[0]!;
        txn.respond(createResponse(txn.request, 200));
        h.deliver(request({ branch: null }));
        expect(h.sender.responses().map((r) => r.status)).to.deep.equal([200, 200]);
      });

      it('a branch without the cookie is matched on Request-URI, tags, Call-ID, CSeq and top Via', () => {
        const h = harness();
        const base = { branch: '1a2b3c' } as const;
        h.deliver(request(base));
        h.deliver(request(base));
        h.deliver(request({ ...base, cseq: 2 }));
        h.deliver(request({ ...base, callId: 'other-call' }));
        h.deliver(request({ ...base, fromTag: 'other' }));
        h.deliver(request({ ...base, toTag: 'dialog' }));
        h.deliver(request({ ...base, uri: 'sip:carol@example.com' }));
        h.deliver(request({ ...base, sentBy: '198.51.100.7:5070' }));
        expect(h.requests).to.have.length(7);
      });

      it('the ACK for a non-2xx matches when its To tag is the one of the response sent', () => {
        const h = harness({ answer: (txn) => txn.respond(createResponse(txn.request, 486, undefined, { toTag: 'busy' })) });
        h.deliver(request({ method: 'INVITE', branch: null, fromTag: null }));
        const inv = h.requests[0]!;
        h.deliver(request({ method: 'ACK', branch: null, fromTag: null, toTag: 'wrong' }));
        expect(h.strayAcks).to.have.length(1);
        expect(inv.state).to.equal(TransactionState.Completed);
        h.deliver(request({ method: 'ACK', branch: null, fromTag: null, toTag: 'busy' }));
        expect(inv.state).to.equal(TransactionState.Confirmed);
        expect(h.strayAcks).to.have.length(1);
        h.timers.advance(5000);
        expect(h.layer.stats().server).to.equal(0);
      });

      it('CANCEL of an RFC 2543 INVITE finds it', () => {
        const h = harness();
        h.deliver(request({ method: 'INVITE', branch: null }));
        h.deliver(request({ method: 'CANCEL', branch: null }));
        expect(h.requests[1]!.cancelTarget).to.equal(h.requests[0]);
      });
    });

    it('never throws on what it cannot match', () => {
      const h = harness();
      const noVia = new SipRequest('MESSAGE', 'sip:bob@example.com');
      expect(() => h.deliver(noVia)).to.not.throw();
      const badVia = request();
      badVia.setHeader('Via', 'not a via');
      expect(() => h.deliver(badVia)).to.not.throw();
      const badCSeq = request({ branch: null });
      badCSeq.setHeader('CSeq', 'x');
      expect(() => h.deliver(badCSeq)).to.not.throw();
      const badResponse = createResponse(request(), 200);
      badResponse.setHeader('CSeq', 'garbage');
      expect(() => h.deliver(badResponse)).to.not.throw();
      expect(h.layer.stats().client).to.equal(0);
    });
  });

  describe('client side', () => {
    function notify(): SipRequest {
      const req = new SipRequest('NOTIFY', 'sip:w@198.51.100.20');
      req.addHeader('From', '<sip:a@example.com>;tag=1');
      req.addHeader('To', '<sip:w@example.com>;tag=2');
      req.addHeader('Call-ID', 'c@example.com');
      req.addHeader('CSeq', '1 NOTIFY');
      req.addHeader('Max-Forwards', 70);
      return req;
    }

    it('matches responses by top Via branch and CSeq method', async () => {
      const h = harness();
      const a = h.layer.sendRequest(notify(), UDP);
      const b = h.layer.sendRequest(notify(), UDP);
      const [sa, sb] = h.sender.requests() as [SipRequest, SipRequest];
      h.deliver(responseTo(sb, 481));
      h.deliver(responseTo(sa, 200));
      expect((await a.final).status).to.equal(200);
      expect((await b.final).status).to.equal(481);
    });

    it('a response with the right branch but another CSeq method is stray', () => {
      const h = harness();
      const txn = h.layer.sendRequest(notify(), UDP);
      const res = responseTo(h.sender.requests()[0]!, 200);
      res.setHeader('CSeq', '1 SUBSCRIBE');
      h.deliver(res);
      expect(h.strayResponses).to.have.length(1);
      expect(txn.outcome).to.equal(undefined);
    });

    it('responses matching nothing go to the stray handler (or are dropped without one)', () => {
      const h = harness();
      const res = createResponse(request({ branch: 'z9hG4bKnobody' }), 200);
      h.deliver(res);
      expect(h.strayResponses).to.have.length(1);
      const quiet = harness({ onStrayResponse: undefined, onStrayAck: undefined });
      expect(() => quiet.deliver(res)).to.not.throw();
      expect(() => quiet.deliver(request({ method: 'ACK' }))).to.not.throw();
    });
  });

  describe('maxTransactions', () => {
    it('answers new requests over the limit with a stateless 503 + Retry-After and stores nothing', () => {
      const h = harness({ maxTransactions: 2 });
      h.deliver(request({ branch: 'z9hG4bK1' }));
      h.deliver(request({ branch: 'z9hG4bK2' }));
      h.deliver(request({ branch: 'z9hG4bK3', viaParams: ';rport' }), udpFlow('198.51.100.7', 41000));
      expect(h.requests).to.have.length(2);
      expect(h.layer.stats()).to.include({ server: 2, refused: 1 });
      const res = h.sender.responses();
      expect(res).to.have.length(1);
      expect(res[0]!.status).to.equal(503);
      expect(res[0]!.getHeader('retry-after')).to.equal('5');
      expect(h.sender.sent[0]!.dest).to.deep.equal({ protocol: 'udp', address: '198.51.100.7', port: 41000 });
      // Retransmissions of a stored one still reach their transaction; an ACK is never answered.
      h.deliver(request({ branch: 'z9hG4bK1' }));
      h.deliver(request({ method: 'ACK', branch: 'z9hG4bK9' }));
      expect(h.sender.responses()).to.have.length(1);
      // Once one ends, there is room again.
      h.requests[0]!.respond(createResponse(h.requests[0]!.request, 200));
      h.timers.advance(32_000);
      h.deliver(request({ branch: 'z9hG4bK3' }));
      expect(h.requests).to.have.length(3);
    });

    it('counts client transactions too', () => {
      const h = harness({ maxTransactions: 1 });
      const req = new SipRequest('OPTIONS', 'sip:x@198.51.100.20');
      req.addHeader('From', '<sip:a@example.com>;tag=1');
      req.addHeader('To', '<sip:x@example.com>');
      req.addHeader('Call-ID', 'o@example.com');
      req.addHeader('CSeq', '1 OPTIONS');
      h.layer.sendRequest(req, UDP);
      h.deliver(request(), streamFlow('tcp', 1));
      expect(h.requests).to.have.length(0);
      expect(h.layer.stats().refused).to.equal(1);
    });
  });

  describe('admit (overload control)', () => {
    it('is asked only about new requests, after retransmissions found their transaction, and its 503 stores nothing', () => {
      const asked: string[] = [];
      let refuse = false;
      const h = harness({
        admit: (req) => {
          asked.push(`${req.method} ${req.topVia.branch}`);
          return refuse ? 7 : 0;
        },
      });
      h.deliver(request({ branch: 'z9hG4bKkept' }));
      refuse = true;
      // A retransmission of a request in a transaction goes to it: refusing it would answer 503
      // to a request the service is already working on.
      h.deliver(request({ branch: 'z9hG4bKkept' }));
      h.deliver(request({ method: 'ACK', branch: 'z9hG4bKack' }));
      h.deliver(request({ branch: 'z9hG4bKnew', viaParams: ';rport' }), udpFlow('198.51.100.7', 41000));
      expect(asked).to.deep.equal(['MESSAGE z9hG4bKkept', 'MESSAGE z9hG4bKnew']);
      expect(h.requests).to.have.length(1);
      expect(h.layer.stats()).to.include({ server: 1, refused: 0 });
      const res = h.sender.responses();
      expect(res).to.have.length(1);
      expect(res[0]!.status).to.equal(503);
      expect(res[0]!.reason).to.equal('Service Unavailable');
      expect(res[0]!.getHeader('retry-after')).to.equal('7');
      expect(res[0]!.to.tag).to.be.a('string');
      expect(h.sender.sent[0]!.dest).to.deep.equal({ protocol: 'udp', address: '198.51.100.7', port: 41000 });
      // The refused request left nothing behind: its retransmission is asked about again.
      h.deliver(request({ branch: 'z9hG4bKnew' }));
      expect(asked).to.have.length(3);
      expect(h.layer.stats().server).to.equal(1);
      expect(h.sender.responses()).to.have.length(2);
    });
  });

  it('close() cancels every timer and forgets every transaction', () => {
    const h = harness({ answer: (txn) => txn.respond(createResponse(txn.request, 486)) });
    h.deliver(request({ method: 'INVITE' }));
    h.deliver(request({ branch: 'z9hG4bKm' }));
    h.layer.sendRequest(request({ method: 'OPTIONS', branch: 'z9hG4bKo' }), UDP);
    expect(h.timers.size).to.be.greaterThan(0);
    h.layer.close();
    expect(h.timers.size).to.equal(0);
    expect(h.layer.stats()).to.include({ server: 0, client: 0 });
    const before = h.sender.sent.length;
    h.timers.advance(60_000);
    h.deliver(request({ branch: 'z9hG4bKafter' }));
    expect(h.sender.sent.length).to.equal(before);
    expect(h.requests).to.have.length(2);
  });
});
