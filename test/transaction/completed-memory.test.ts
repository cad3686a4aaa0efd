import { expect } from 'chai';
import { createResponse } from '../../src/sip/response.js';
import { detached, requestFromResponse } from '../../src/transaction/completed-request.js';
import { TransactionState } from '../../src/transaction/types.js';
import { harness, request, streamFlow } from './helpers.js';

describe('transaction/non-invite server: what Completed keeps (memory)', () => {
  const extra = ['Event: presence', 'Expires: 600', 'Contact: <sip:alice@198.51.100.7:5060>', 'Content-Type: text/plain'];

  it('keeps the whole request until the final response', () => {
    const h = harness();
    const req = request({ method: 'SUBSCRIBE', extraHeaders: extra });
    h.deliver(req);
    const txn = h.requests[0]!;
    expect(txn.request).to.equal(req);
    txn.respond(createResponse(txn.request, 100));
    expect(txn.request).to.equal(req);
  });

  it('over UDP, lets the request go once Completed, and still answers retransmissions byte for byte', () => {
    const h = harness();
    const flow = { protocol: 'udp' as const, remoteAddress: '203.0.113.9', remotePort: 40000, localAddress: '192.0.2.1', localPort: 5060 };
    h.deliver(request({ method: 'SUBSCRIBE', viaParams: ';rport', extraHeaders: extra }), flow);
    const txn = h.requests[0]!;
    txn.respond(createResponse(txn.request, 200, undefined, { toTag: 'x1' }));
    expect(txn.state).to.equal(TransactionState.Completed);
    // Nothing of the request is held: what `request` shows now is read back from the response.
    expect((txn as unknown as { req?: unknown }).req).to.equal(undefined);
    expect(txn.request.headers.map((x) => x.key)).to.deep.equal(['via', 'from', 'to', 'call-id', 'cseq']);
    expect(txn.request.to.tag).to.equal('x1');
    expect(txn.request.method).to.equal('SUBSCRIBE');
    expect(txn.request.topVia.params.get('rport')).to.equal('40000');
    expect(txn.request.body.length).to.equal(0);
    h.deliver(request({ method: 'SUBSCRIBE', viaParams: ';rport', extraHeaders: extra }), flow);
    expect(h.sender.sent).to.have.length(2);
    expect(h.sender.sent[1]!.data.equals(h.sender.sent[0]!.data)).to.equal(true);
    expect(h.sender.sent[1]!.dest).to.deep.equal({ protocol: 'udp', address: '203.0.113.9', port: 40000 });
    expect(txn.lastResponse?.status).to.equal(200);
    expect(txn.lastResponse?.to.tag).to.equal('x1');
    h.timers.advance(32_000);
    expect(txn.state).to.equal(TransactionState.Terminated);
  });

  it('keeps no Buffer once Completed (no slab of the buffer pool pinned for Timer J), and resends every byte of a body that is not UTF-8', () => {
    const h = harness();
    const flow = { protocol: 'udp' as const, remoteAddress: '203.0.113.9', remotePort: 40000, localAddress: '192.0.2.1', localPort: 5060 };
    h.deliver(request({ method: 'MESSAGE', extraHeaders: extra }), flow);
    const txn = h.requests[0]!;
    const res = createResponse(txn.request, 200, undefined, { toTag: 'x2' });
    res.setHeader('Content-Type', 'application/octet-stream');
    res.body = Buffer.from([0xff, 0x00, 0xc3, 0x28, 0x80, 0x0d, 0x0a]);
    txn.respond(res);
    expect(txn.state).to.equal(TransactionState.Completed);
    const kept = Object.values(txn as unknown as Record<string, unknown>);
    expect(kept.some((v) => Buffer.isBuffer(v) || (typeof v === 'object' && v !== null && Object.values(v).some((w) => Buffer.isBuffer(w)))), 'a Buffer held').to.equal(false);
    h.deliver(request({ method: 'MESSAGE', extraHeaders: extra }), flow);
    expect(h.sender.sent).to.have.length(2);
    expect(h.sender.sent[1]!.data.equals(h.sender.sent[0]!.data)).to.equal(true);
    expect(txn.lastResponse?.body.equals(res.body)).to.equal(true);
  });

  it('over UDP, Completed transactions are a table of the layer: one timer for all of them, still counted as live', () => {
    const h = harness();
    const flow = { protocol: 'udp' as const, remoteAddress: '203.0.113.9', remotePort: 40000, localAddress: '192.0.2.1', localPort: 5060 };
    for (let i = 0; i < 100; i++) {
      h.deliver(request({ method: 'PUBLISH', branch: `z9hG4bKtable${i}`, extraHeaders: extra }), flow);
      const txn = h.requests[i]!;
      txn.respond(createResponse(txn.request, 200, undefined, { toTag: `t${i}` }));
    }
    expect(h.layer.stats().server).to.equal(100);
    expect(h.timers.size).to.equal(1);
    h.deliver(request({ method: 'PUBLISH', branch: 'z9hG4bKtable42', extraHeaders: extra }), flow);
    expect(h.requests).to.have.length(100);
    expect((h.sender.sent.at(-1)!.message as { to: { tag?: string } }).to.tag).to.equal('t42');
    h.timers.advance(32_000);
    expect(h.layer.stats().server).to.equal(0);
    expect(h.timers.size).to.equal(0);
    expect(h.requests[0]!.state).to.equal(TransactionState.Terminated);
  });

  it('over TCP ends at once (Timer J is zero), so there is nothing to keep', () => {
    const h = harness();
    h.deliver(request({ transport: 'TCP', extraHeaders: extra }), streamFlow('tcp', 4));
    const txn = h.requests[0]!;
    txn.respond(createResponse(txn.request, 200));
    expect(txn.state).to.equal(TransactionState.Terminated);
    expect(h.layer.stats().server).to.equal(0);
  });

  it('requestFromResponse reads Via (every one, in order), From, To, Call-ID and CSeq back from the response', () => {
    const req = request({ method: 'PUBLISH', uri: 'sip:carol@example.com', extraHeaders: ['Via: SIP/2.0/UDP 192.0.2.2:5060;branch=z9hG4bKsecond', ...extra] });
    const res = createResponse(req, 200, undefined, { toTag: 't9' });
    const s = requestFromResponse('PUBLISH', 'sip:carol@example.com', res.toBuffer())!;
    expect(s.method).to.equal('PUBLISH');
    expect(s.uriText).to.equal('sip:carol@example.com');
    expect(s.vias.map((v) => v.branch)).to.deep.equal(['z9hG4bKabc123', 'z9hG4bKsecond']);
    expect(s.callId).to.equal(req.callId);
    expect(s.cseq).to.deep.equal(req.cseq);
    expect(s.from.tag).to.equal('fromtag1');
    expect(s.to.tag).to.equal('t9');
    expect(s.getHeader('event')).to.equal(undefined);
    expect(requestFromResponse('PUBLISH', 'sip:x@y', Buffer.from('garbage'))).to.equal(undefined);
  });

  it('detached gives back the same text (a copy of its own, which V8 does not let a test see)', () => {
    const head = `SUBSCRIBE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK${'x'.repeat(40)}\r\n`;
    const branch = head.slice(head.indexOf('z9'), head.lastIndexOf('\r\n'));
    expect(detached(branch)).to.equal(branch);
    expect(detached('ünïcode')).to.equal('ünïcode');
  });
});
