import { expect } from 'chai';
import type { Binding, BindingRef } from '../../src/registrar/binding.js';
import { LocationService } from '../../src/registrar/location-service.js';
import type { RegistrationSink } from '../../src/registrar/registration-sink.js';
import { ManualTimers } from '../../src/util/timers.js';

const EPOCH = Date.UTC(2024, 0, 1);

function binding(over: Partial<Binding> = {}): Binding {
  return {
    aor: 'sip:bob@example.com',
    key: 'uri sip:bob@192.0.2.10:5062',
    contact: 'sip:bob@192.0.2.10:5062',
    params: [],
    callId: 'c1',
    cseq: 1,
    expiresAt: EPOCH + 60_000,
    updatedAt: EPOCH,
    path: [],
    flow: { protocol: 'udp', remoteAddress: '192.0.2.10', remotePort: 5062, localAddress: '127.0.0.1', localPort: 5060 },
    reachable: true,
    ...over,
  };
}

class RecordingSink implements RegistrationSink {
  readonly changed: Binding[] = [];
  readonly removed: BindingRef[] = [];
  bindingChanged(b: Binding): void {
    this.changed.push(b);
  }
  bindingRemoved(ref: BindingRef): void {
    this.removed.push(ref);
  }
}

describe('registrar: location service', () => {
  let timers: ManualTimers;
  let sink: RecordingSink;
  let open: Set<number>;
  let location: LocationService;

  beforeEach(() => {
    timers = new ManualTimers();
    sink = new RecordingSink();
    open = new Set();
    location = new LocationService({ timers, sink, wallClock: { nowMs: () => EPOCH + timers.now() }, isOpen: (id) => open.has(id) });
  });

  it('reports additions, refreshes and expiry to the sink', () => {
    const b = binding();
    location.update(b.aor, [b], []);
    const refreshed = { ...b, cseq: 2, expiresAt: EPOCH + 120_000 };
    location.update(b.aor, [refreshed], []);
    expect(sink.changed).to.deep.equal([b, refreshed]);
    timers.advance(60_000);
    expect(location.size).to.equal(1);
    timers.advance(60_000);
    expect(location.size).to.equal(0);
    expect(sink.removed).to.deep.equal([{ aor: b.aor, key: b.key }]);
  });

  it('marks a binding unreachable only while it is the current one', () => {
    const b = binding();
    location.update(b.aor, [b], []);
    const newer = { ...b, cseq: 2 };
    location.update(b.aor, [newer], []);
    expect(location.markUnreachable(b)).to.equal(false);
    expect(location.lookup(b.aor)).to.have.length(1);
    expect(location.markUnreachable(newer)).to.equal(true);
    expect(location.lookup(b.aor)).to.have.length(0);
    expect(sink.changed.at(-1)!.reachable).to.equal(false);
  });

  it('marks every binding of a closed connection unreachable, and skips connections already closed', () => {
    open.add(3);
    const flow = { protocol: 'tcp' as const, remoteAddress: '192.0.2.20', remotePort: 40000, localAddress: '127.0.0.1', localPort: 5060, connectionId: 3 };
    location.update('sip:bob@example.com', [binding({ flow })], []);
    location.update('sip:carol@example.com', [binding({ aor: 'sip:carol@example.com', flow })], []);
    location.update('sip:dave@example.com', [binding({ aor: 'sip:dave@example.com', flow: { ...flow, connectionId: 4 } })], []);
    expect(location.lookup('sip:bob@example.com')).to.have.length(1);
    // Connection 4 is not open: lookup does not offer it even before the close event.
    expect(location.lookup('sip:dave@example.com')).to.have.length(0);
    open.delete(3);
    location.connectionClosed(3);
    expect(location.lookup('sip:bob@example.com')).to.have.length(0);
    expect(location.lookup('sip:carol@example.com')).to.have.length(0);
    expect(location.bindings('sip:bob@example.com')[0]!.reachable).to.equal(false);
  });

  it('restores saved bindings: drops expired ones, forgets old connection ids', () => {
    const udp = binding();
    const tcp = binding({
      key: 'uri tcp',
      contact: 'sip:bob@10.0.0.5;transport=tcp',
      flow: { protocol: 'tcp', remoteAddress: '192.0.2.20', remotePort: 40000, localAddress: '127.0.0.1', localPort: 5060, connectionId: 9 },
    });
    const viaEdge = binding({ key: 'uri edge', path: ['<sip:edge.example.com;lr>'], flow: { ...tcp.flow } });
    const old = binding({ key: 'uri old', expiresAt: EPOCH - 1 });
    expect(location.restore([udp, tcp, viaEdge, old])).to.equal(3);
    expect(sink.changed).to.have.length(0);
    const all = location.bindings('sip:bob@example.com');
    expect(all.every((b) => b.flow.connectionId === undefined)).to.equal(true);
    expect(location.lookup('sip:bob@example.com').map((b) => b.key).sort()).to.deep.equal(['uri edge', udp.key].sort());
    timers.advance(60_000);
    expect(location.size).to.equal(0);
  });

  it('orders lookup by q, then by the latest refresh', () => {
    location.update('sip:bob@example.com', [
      binding({ key: 'a', q: 0.5, updatedAt: EPOCH }),
      binding({ key: 'b', updatedAt: EPOCH }),
      binding({ key: 'c', q: 0.5, updatedAt: EPOCH + 5 }),
    ], []);
    expect(location.lookup('sip:bob@example.com').map((b) => b.key)).to.deep.equal(['b', 'c', 'a']);
  });

  it('sends changes to a sink set later (the store opens after the services)', () => {
    const later = new RecordingSink();
    location.setSink(later);
    location.update('sip:bob@example.com', [binding()], ['nothing']);
    expect(later.changed).to.have.length(1);
    expect(sink.changed).to.have.length(0);
  });

  it('lists registrations for the admin API', () => {
    location.update('sip:bob@example.com', [binding()], []);
    timers.advance(10_000);
    const [r] = location.registrations();
    expect(r).to.include({ aor: 'sip:bob@example.com', contact: 'sip:bob@192.0.2.10:5062', expires: 50, reachable: true, transport: 'udp', source: '192.0.2.10:5062' });
    expect(location.registrations({ aor: 'sip:nobody@example.com' })).to.deep.equal([]);
  });
});
