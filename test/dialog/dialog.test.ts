import { expect } from 'chai';
import { acceptRemoteSeq, createUasDialog, dialogKey, keyOf, recordRouteHeaders, refreshTarget, requestDialogKey, snapshotDialog } from '../../src/dialog/dialog.js';
import { dialogDestination } from '../../src/dialog/dialog-destination.js';
import { uriDestination } from '../../src/transport/uri-destination.js';
import { buildInDialogRequest } from '../../src/dialog/in-dialog-request.js';
import { SipParseError } from '../../src/sip/errors.js';
import { parseUri } from '../../src/sip/uri.js';
import { subscribe, tcpFlow, UDP_FLOW } from '../presence/helpers.js';

describe('dialog: RFC 3261 §12 as the UAS of a SUBSCRIBE', () => {
  it('takes route set, remote target, tags and CSeq from the request (§12.1.1)', () => {
    const req = subscribe({
      from: 'sip:bob@example.com',
      fromTag: 'ft',
      cseq: 7,
      contact: 'sip:bob@192.0.2.10:5062;transport=udp',
      extra: ['Record-Route: <sip:p1.example.net;lr>, <sip:p2.example.net;lr>'],
    });
    const d = createUasDialog(req, UDP_FLOW, 'lt', 'sip:127.0.0.1:5060');
    expect(d.callId).to.equal('sub-1@test');
    expect(d.localTag).to.equal('lt');
    expect(d.remoteTag).to.equal('ft');
    expect(d.remoteSeq).to.equal(7);
    expect(d.localSeq).to.equal(0);
    expect(d.routeSet).to.deep.equal(['<sip:p1.example.net;lr>', '<sip:p2.example.net;lr>']);
    expect(d.remoteTarget).to.equal('sip:bob@192.0.2.10:5062;transport=udp');
    expect(d.localUri).to.equal('<sip:alice@example.com>');
    expect(d.remoteUri).to.equal('<sip:bob@example.com>');
    expect(keyOf(d)).to.equal(dialogKey('sub-1@test', 'lt', 'ft'));
  });

  it('copies every Record-Route value into the dialog-creating response, in order, parameters kept (§12.1.1)', () => {
    const req = subscribe({ extra: ['Record-Route: <sip:p1.example.net;lr;ftag=a>;x=1, <sip:p2.example.net;lr>', 'Record-Route: <sip:p3.example.net;lr>'] });
    expect(recordRouteHeaders(req)).to.deep.equal([
      ['Record-Route', '<sip:p1.example.net;lr;ftag=a>;x=1'],
      ['Record-Route', '<sip:p2.example.net;lr>'],
      ['Record-Route', '<sip:p3.example.net;lr>'],
    ]);
    expect(recordRouteHeaders(subscribe())).to.deep.equal([]);
  });

  it('refuses a request without Contact or From tag (no dialog can be formed)', () => {
    expect(() => createUasDialog(subscribe({ contact: null }), UDP_FLOW, 'lt', 'sip:x')).to.throw(SipParseError, 'Missing Contact');
    const noTag = subscribe();
    noTag.setHeader('From', '<sip:bob@example.com>');
    expect(() => createUasDialog(noTag, UDP_FLOW, 'lt', 'sip:x')).to.throw(SipParseError, 'Missing From tag');
  });

  it('names the dialog of an in-dialog request from its tags', () => {
    expect(requestDialogKey(subscribe({ toTag: 'lt', fromTag: 'ft' }))).to.equal(dialogKey('sub-1@test', 'lt', 'ft'));
    expect(requestDialogKey(subscribe())).to.equal(undefined);
  });

  it('takes CSeq in order only, and refreshes the target (§12.2.2)', () => {
    const d = createUasDialog(subscribe({ cseq: 5 }), UDP_FLOW, 'lt', 'sip:x');
    expect(acceptRemoteSeq(d, subscribe({ cseq: 5 }))).to.equal(false);
    expect(acceptRemoteSeq(d, subscribe({ cseq: 4 }))).to.equal(false);
    expect(acceptRemoteSeq(d, subscribe({ cseq: 6 }))).to.equal(true);
    expect(d.remoteSeq).to.equal(6);
    refreshTarget(d, subscribe({ contact: 'sip:bob@192.0.2.99:6000' }), tcpFlow(3));
    expect(d.remoteTarget).to.equal('sip:bob@192.0.2.99:6000');
    expect(d.flow.connectionId).to.equal(3);
  });

  it('builds a request in the dialog with loose routing (§12.2.1.1)', () => {
    const d = createUasDialog(subscribe({ extra: ['Record-Route: <sip:p1.example.net;lr>'] }), UDP_FLOW, 'lt', 'sip:127.0.0.1:5060');
    const built = buildInDialogRequest(d, 'NOTIFY', { headers: [['Event', 'presence']], body: Buffer.from('x'), contentType: 'text/plain' })!;
    const r = built.request;
    expect(r.uriText).to.equal('sip:bob@192.0.2.10:5062');
    expect(r.getHeaders('route')).to.deep.equal(['<sip:p1.example.net;lr>']);
    expect(built.nextHop.host).to.equal('p1.example.net');
    expect(r.from.tag).to.equal('lt');
    expect(r.from.uri.raw).to.equal('sip:alice@example.com');
    expect(r.to.tag).to.equal('wtag');
    expect(r.to.uri.raw).to.equal('sip:bob@example.com');
    expect(r.cseq).to.deep.equal({ seq: 1, method: 'NOTIFY' });
    expect(r.getHeader('contact')).to.equal('<sip:127.0.0.1:5060>');
    expect(r.maxForwards).to.equal(70);
    expect(r.getHeader('content-type')).to.equal('text/plain');
    expect(buildInDialogRequest(d, 'NOTIFY')!.request.cseq.seq).to.equal(2);
  });

  it('builds a request through a strict router (§12.2.1.1)', () => {
    const d = createUasDialog(subscribe({ extra: ['Record-Route: <sip:strict.example.net;method=INVITE>, <sip:p2.example.net;lr>'] }), UDP_FLOW, 'lt', 'sip:x');
    const built = buildInDialogRequest(d, 'NOTIFY')!;
    expect(built.request.uriText).to.equal('sip:strict.example.net');
    expect(built.request.getHeaders('route')).to.deep.equal(['<sip:p2.example.net;lr>', '<sip:bob@192.0.2.10:5062>']);
    expect(built.nextHop.host).to.equal('strict.example.net');
  });

  it('keeps a snapshot apart from the live dialog', () => {
    const d = createUasDialog(subscribe(), UDP_FLOW, 'lt', 'sip:x');
    const s = snapshotDialog(d);
    d.localSeq = 9;
    expect(s.localSeq).to.equal(0);
    expect(JSON.parse(JSON.stringify(s))).to.deep.equal(s);
  });
});

describe('dialog: where requests in a dialog go', () => {
  it('resolves a URI like RFC 3263 without DNS', () => {
    expect(uriDestination(parseUri('sip:a@192.0.2.1'))).to.deep.equal({ protocol: 'udp', address: '192.0.2.1', port: 5060 });
    expect(uriDestination(parseUri('sip:a@192.0.2.1:7000;transport=tcp'))).to.deep.equal({ protocol: 'tcp', address: '192.0.2.1', port: 7000 });
    expect(uriDestination(parseUri('sips:a@[2001:db8::1]'))).to.deep.equal({ protocol: 'tls', address: '2001:db8::1', port: 5061 });
  });

  it('sends down the connection the dialog came on, falling back to the next hop', () => {
    const flow = tcpFlow(7);
    const dest = dialogDestination(parseUri('sip:bob@192.0.2.20:5080;transport=tcp'), flow)!;
    expect(dest).to.deep.equal({ protocol: 'tcp', address: '192.0.2.20', port: 5080, connectionId: 7, connectionOnly: false });
  });

  it('sends to a WebSocket or .invalid contact only down its connection (RFC 7118 §5)', () => {
    const flow = { ...tcpFlow(8), protocol: 'ws' as const };
    const dest = dialogDestination(parseUri('sip:x@df7jal23ls0d.invalid;transport=ws'), flow)!;
    expect(dest.connectionId).to.equal(8);
    expect(dest.connectionOnly).to.equal(true);
    expect(dest.address).to.equal('192.0.2.20');
  });

  it('over UDP sends to the contact, or to the source when the contact is unreachable', () => {
    expect(dialogDestination(parseUri('sip:bob@192.0.2.10:5062'), UDP_FLOW)).to.deep.equal({ protocol: 'udp', address: '192.0.2.10', port: 5062 });
    const natFlow = { ...UDP_FLOW, remoteAddress: '198.51.100.7', remotePort: 34000 };
    expect(dialogDestination(parseUri('sip:bob@10.0.0.5:5062'), natFlow)).to.deep.equal({ protocol: 'udp', address: '198.51.100.7', port: 34000 });
    expect(dialogDestination(parseUri('sip:bob@abc.invalid'), natFlow)).to.deep.equal({ protocol: 'udp', address: '198.51.100.7', port: 34000 });
  });

  it('after a restart (no connection id) goes to the next hop', () => {
    const { connectionId: _c, ...flow } = tcpFlow(9);
    expect(dialogDestination(parseUri('sip:bob@192.0.2.20:5080;transport=tcp'), flow)).to.deep.equal({ protocol: 'tcp', address: '192.0.2.20', port: 5080 });
    expect(dialogDestination(parseUri('sip:bob@x.invalid;transport=tcp'), flow)).to.equal(undefined);
  });
});
