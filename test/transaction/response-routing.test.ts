import { expect } from 'chai';
import { createResponse } from '../../src/sip/response.js';
import { parseMessage } from '../../src/sip/parser.js';
import type { SipResponse } from '../../src/sip/message.js';
import { responseDestination, stampReceived } from '../../src/transaction/response-routing.js';
import { request, streamFlow, udpFlow } from './helpers.js';

describe('transaction/response-routing', () => {
  describe('stampReceived (RFC 3261 §18.2.1, RFC 3581 §4)', () => {
    it('adds received when the sent-by address differs from the source', () => {
      const req = request({ sentBy: '10.0.0.5:5060' });
      stampReceived(req, udpFlow('203.0.113.9', 5060));
      expect(req.topVia.params.get('received')).to.equal('203.0.113.9');
      expect(req.topVia.params.has('rport')).to.equal(false);
    });

    it('adds nothing when the sent-by address is the source and there is no rport', () => {
      const req = request({ sentBy: '198.51.100.7:5060' });
      const before = req.toString();
      stampReceived(req, udpFlow('198.51.100.7', 5060));
      expect(req.toString()).to.equal(before);
    });

    it('adds received for a sent-by host name', () => {
      const req = request({ sentBy: 'pc33.example.com' });
      stampReceived(req, udpFlow('198.51.100.7', 5060));
      expect(req.topVia.params.get('received')).to.equal('198.51.100.7');
    });

    it('fills an empty rport with the source port, and adds received even for the same address', () => {
      const req = request({ sentBy: '198.51.100.7:5060', viaParams: ';rport' });
      stampReceived(req, udpFlow('198.51.100.7', 61234));
      expect(req.topVia.params.get('rport')).to.equal('61234');
      expect(req.topVia.params.get('received')).to.equal('198.51.100.7');
      expect(req.topVia.branch).to.equal('z9hG4bKabc123');
    });

    it('leaves an rport that already has a value', () => {
      const req = request({ sentBy: '198.51.100.7:5060', viaParams: ';rport=5999' });
      stampReceived(req, udpFlow('198.51.100.7', 61234));
      expect(req.topVia.params.get('rport')).to.equal('5999');
    });

    it('is idempotent', () => {
      const req = request({ sentBy: '10.0.0.5', viaParams: ';rport' });
      stampReceived(req, udpFlow('203.0.113.9', 1234));
      const once = req.toString();
      stampReceived(req, udpFlow('203.0.113.9', 1234));
      expect(req.toString()).to.equal(once);
    });

    it('drops a received the sender wrote that is not its source address', () => {
      const req = request({ sentBy: '198.51.100.7:5060', viaParams: ';received=192.0.2.200' });
      stampReceived(req, udpFlow('198.51.100.7', 5060));
      expect(req.topVia.params.has('received')).to.equal(false);
    });

    it('handles IPv6 sent-by and IPv4-mapped sources', () => {
      const v6 = request({ sentBy: '[2001:db8::1]:5060', viaParams: ';rport' });
      stampReceived(v6, udpFlow('2001:db8:0:0:0:0:0:1', 5070));
      expect(v6.topVia.params.get('received')).to.equal('2001:db8:0:0:0:0:0:1');
      expect(v6.topVia.params.get('rport')).to.equal('5070');
      const mapped = request({ sentBy: '198.51.100.7:5060' });
      const before = mapped.toString();
      stampReceived(mapped, udpFlow('::ffff:198.51.100.7', 5060));
      expect(mapped.toString()).to.equal(before);
    });

    it('touches only the top Via, and a response copying the Vias carries the stamps', () => {
      const req = request({ sentBy: '10.0.0.5:5070', viaParams: ';rport', extraHeaders: ['Via: SIP/2.0/UDP proxy.example.com;branch=z9hG4bKproxy'] });
      // the second Via line came after the first in the request
      stampReceived(req, udpFlow('203.0.113.9', 40000));
      expect(req.vias).to.have.length(2);
      expect(req.vias[1]!.host).to.equal('proxy.example.com');
      expect(req.vias[1]!.params.has('received')).to.equal(false);
      const res = parseMessage(createResponse(req, 200).toBuffer());
      expect(res.ok).to.equal(true);
      const top = (res.ok ? (res.message as SipResponse) : undefined)!.topVia;
      expect(top.params.get('received')).to.equal('203.0.113.9');
      expect(top.params.get('rport')).to.equal('40000');
    });

    it('returns false for a message without a readable Via', () => {
      const req = request();
      req.setHeader('Via', 'garbage');
      expect(stampReceived(req, udpFlow())).to.equal(false);
    });
  });

  describe('responseDestination (RFC 3261 §18.2.2, RFC 3581)', () => {
    function via(text: string) {
      const req = request();
      req.setHeader('Via', text);
      return req.topVia;
    }

    it('UDP with rport: received address and rport port', () => {
      const d = responseDestination(via('SIP/2.0/UDP 10.0.0.5:5070;branch=z9hG4bKx;rport=40000;received=203.0.113.9'), udpFlow('203.0.113.9', 40000));
      expect(d).to.deep.equal({ protocol: 'udp', address: '203.0.113.9', port: 40000 });
    });

    it('UDP with received and no rport: received address, sent-by port', () => {
      const d = responseDestination(via('SIP/2.0/UDP 10.0.0.5:5070;branch=z9hG4bKx;received=203.0.113.9'), udpFlow('203.0.113.9', 40000));
      expect(d).to.deep.equal({ protocol: 'udp', address: '203.0.113.9', port: 5070 });
    });

    it('UDP without received: sent-by, port 5060 by default', () => {
      expect(responseDestination(via('SIP/2.0/UDP 198.51.100.7;branch=z9hG4bKx'), udpFlow())).to.deep.equal({ protocol: 'udp', address: '198.51.100.7', port: 5060 });
      expect(responseDestination(via('SIP/2.0/UDP [2001:db8::1]:5080;branch=z9hG4bKx'), udpFlow())).to.deep.equal({ protocol: 'udp', address: '2001:db8::1', port: 5080 });
    });

    it('UDP with maddr: to maddr, port from sent-by or 5060', () => {
      expect(responseDestination(via('SIP/2.0/UDP 10.0.0.5:5070;branch=z9hG4bKx;maddr=239.255.255.1;received=203.0.113.9;rport=4000'), udpFlow()))
        .to.deep.equal({ protocol: 'udp', address: '239.255.255.1', port: 5070 });
      expect(responseDestination(via('SIP/2.0/UDP 10.0.0.5;branch=z9hG4bKx;maddr=239.255.255.1'), udpFlow()).port).to.equal(5060);
    });

    it('TCP: the connection the request came on while it is open', () => {
      const d = responseDestination(via('SIP/2.0/TCP 10.0.0.5:5070;branch=z9hG4bKx;received=203.0.113.9;rport=40000'), streamFlow('tcp', 7, '203.0.113.9', 40000), (id) => id === 7);
      expect(d).to.deep.equal({ protocol: 'tcp', address: '203.0.113.9', port: 5070, connectionId: 7 });
    });

    it('TCP with the connection closed: a new one to received and the sent-by port (not rport)', () => {
      const d = responseDestination(via('SIP/2.0/TCP 10.0.0.5:5070;branch=z9hG4bKx;received=203.0.113.9;rport=40000'), streamFlow('tcp', 7, '203.0.113.9', 40000), () => false);
      expect(d).to.deep.equal({ protocol: 'tcp', address: '203.0.113.9', port: 5070 });
    });

    it('TLS default port is 5061', () => {
      const d = responseDestination(via('SIP/2.0/TLS client.example.com;branch=z9hG4bKx;received=203.0.113.9'), streamFlow('tls', 3), () => false);
      expect(d).to.deep.equal({ protocol: 'tls', address: '203.0.113.9', port: 5061 });
    });

    it('a Via naming UDP on a request that came over TCP: the connection while open, the Via rules once closed', () => {
      const v = via('SIP/2.0/UDP 10.0.0.5:5070;branch=z9hG4bKx;received=203.0.113.9;rport=40000');
      const flow = streamFlow('tcp', 7, '203.0.113.9', 40000);
      expect(responseDestination(v, flow, (id) => id === 7)).to.deep.equal({ protocol: 'tcp', address: '203.0.113.9', port: 40000, connectionId: 7 });
      expect(responseDestination(v, flow, () => false)).to.deep.equal({ protocol: 'udp', address: '203.0.113.9', port: 40000 });
      const ws = responseDestination(via('SIP/2.0/TCP abc.invalid;branch=z9hG4bKx'), streamFlow('ws', 9, '203.0.113.9', 40001), () => true);
      expect(ws).to.deep.equal({ protocol: 'ws', address: '203.0.113.9', port: 40001, connectionId: 9, connectionOnly: true });
    });

    it('WebSocket: connection only (RFC 7118)', () => {
      const d = responseDestination(via('SIP/2.0/WS abc.invalid;branch=z9hG4bKx;received=203.0.113.9'), streamFlow('ws', 9), () => false);
      expect(d).to.include({ protocol: 'ws', connectionId: 9, connectionOnly: true });
    });
  });
});
