import { expect } from 'chai';
import type { Binding } from '../../src/registrar/binding.js';
import { targetOf } from '../../src/registrar/binding-route.js';
import { uriDestination } from '../../src/transport/uri-destination.js';
import { parseUri } from '../../src/sip/uri.js';

function binding(over: Partial<Binding>): Binding {
  return {
    aor: 'sip:bob@example.com',
    key: 'k',
    contact: 'sip:bob@192.0.2.10:5062',
    params: [],
    callId: 'c1',
    cseq: 1,
    expiresAt: 1e15,
    updatedAt: 0,
    path: [],
    flow: { protocol: 'udp', remoteAddress: '192.0.2.10', remotePort: 5062, localAddress: '127.0.0.1', localPort: 5060 },
    reachable: true,
    ...over,
  };
}

describe('registrar: routing a request to a binding', () => {
  it('resolves a URI as RFC 3263 does without DNS', () => {
    expect(uriDestination(parseUri('sip:bob@192.0.2.1'))).to.deep.equal({ protocol: 'udp', address: '192.0.2.1', port: 5060 });
    expect(uriDestination(parseUri('sip:bob@[2001:db8::1]:5080;transport=TCP'))).to.deep.equal({ protocol: 'tcp', address: '2001:db8::1', port: 5080 });
    expect(uriDestination(parseUri('sips:bob@host.example.com'))).to.deep.equal({ protocol: 'tls', address: 'host.example.com', port: 5061 });
    expect(uriDestination(parseUri('sip:bob@host.example.com;maddr=192.0.2.9'))).to.deep.equal({ protocol: 'udp', address: '192.0.2.9', port: 5060 });
    expect(uriDestination(parseUri('sip:bob@h;transport=sctp'))).to.equal(undefined);
  });

  it('sends to the contact of a UDP binding', () => {
    const t = targetOf(binding({ contact: 'sip:bob@192.0.2.77:5070' }))!;
    expect(t.requestUri).to.equal('sip:bob@192.0.2.77:5070');
    expect(t.destination).to.deep.equal({ protocol: 'udp', address: '192.0.2.77', port: 5070 });
  });

  it('sends to the source address of a UDP client behind a NAT, an outbound client, or a .invalid contact', () => {
    const flowDest = { protocol: 'udp', address: '192.0.2.10', port: 5062 };
    expect(targetOf(binding({ contact: 'sip:bob@10.1.1.1:5060' }))!.destination).to.deep.equal(flowDest);
    expect(targetOf(binding({ contact: 'sip:bob@198.51.100.1', regId: 1, instanceId: '<urn:x>' }))!.destination).to.deep.equal(flowDest);
    expect(targetOf(binding({ contact: 'sip:bob@abc.invalid' }))!.destination).to.deep.equal(flowDest);
  });

  it('sends down the connection of a stream binding, and only there', () => {
    const flow = { protocol: 'ws' as const, remoteAddress: '192.0.2.10', remotePort: 50000, localAddress: '127.0.0.1', localPort: 8080, connectionId: 12 };
    const t = targetOf(binding({ contact: 'sip:x@df7jal23ls0d.invalid;transport=ws', flow }))!;
    expect(t.destination).to.deep.equal({ protocol: 'ws', address: '192.0.2.10', port: 50000, connectionId: 12, connectionOnly: true });
  });

  it('routes through the Path (RFC 3327), using the edge connection when it is the same transport', () => {
    const flow = { protocol: 'tcp' as const, remoteAddress: '192.0.2.50', remotePort: 5060, localAddress: '127.0.0.1', localPort: 5060, connectionId: 4 };
    const t = targetOf(binding({ path: ['<sip:edge.example.com;transport=tcp;lr;ob>', '<sip:edge2.example.com;lr>'], flow }))!;
    expect(t.requestUri).to.equal('sip:bob@192.0.2.10:5062');
    expect(t.routeSet).to.deep.equal(['<sip:edge.example.com;transport=tcp;lr;ob>', '<sip:edge2.example.com;lr>']);
    expect(t.destination).to.deep.equal({ protocol: 'tcp', address: 'edge.example.com', port: 5060, connectionId: 4 });
  });
});
