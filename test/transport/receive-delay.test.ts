import dgram from 'node:dgram';
import { expect } from 'chai';
import { pino } from 'pino';
import { ReceiveDelayMonitor, threadCpuWaitMs, type ProbedQueue } from '../../src/transport/receive-delay.js';
import { TransportLayer } from '../../src/transport/transport-layer.js';

/** A queue the test delivers by hand: what was sent, in order. */
class HandQueue implements ProbedQueue {
  readonly sent: number[] = [];
  arrived: (stamp: number) => void = () => {};
  sendProbe(stamp: number): void {
    this.sent.push(stamp);
  }
}

function monitor(queues = 1) {
  const clock = { t: 1000, cpuWait: 0 };
  const m = new ReceiveDelayMonitor({ intervalMs: 20, now: () => clock.t, cpuWait: () => clock.cpuWait });
  const qs = Array.from({ length: queues }, () => {
    const q = new HandQueue();
    q.arrived = m.attach(q);
    return q;
  });
  return { m, clock, qs };
}

/** Blocks the event loop (a stand-in for a long synchronous piece of work). */
function blockFor(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // busy
  }
}

describe('transport: receive delay (event-loop lag and UDP receive queue)', () => {
  it('reads the smallest sojourn of the probes that came back in the window', () => {
    const { m, clock, qs } = monitor();
    const q = qs[0]!;
    for (const wait of [30, 8, 50]) {
      m.probe(clock.t);
      clock.t += wait;
      q.arrived(q.sent.at(-1)!);
    }
    expect(m.read()).to.deep.equal({ queueDelayMs: 8, measured: true, eventLoopLagMs: 0, cpuWaitMs: 0 });
    // The window starts again: nothing sent, nothing queued.
    expect(m.read()).to.deep.equal({ queueDelayMs: 0, measured: true, eventLoopLagMs: 0, cpuWaitMs: 0 });
  });

  it('counts a probe still queued at its age, as a lower bound, and forgets probes the queue dropped', () => {
    const { m, clock, qs } = monitor();
    const q = qs[0]!;
    m.probe(clock.t); // dropped by a full buffer: never comes back
    clock.t += 20;
    m.probe(clock.t);
    clock.t += 300;
    expect(m.read()).to.deep.equal({ queueDelayMs: 320, measured: false, eventLoopLagMs: 0, cpuWaitMs: 0 });
    // The second one comes back: the first is given up on, not counted as still queued.
    q.arrived(q.sent[1]!);
    clock.t += 10;
    expect(m.read()).to.deep.equal({ queueDelayMs: 300, measured: true, eventLoopLagMs: 0, cpuWaitMs: 0 });
    expect(m.read().queueDelayMs).to.equal(0);
    // A stamp it no longer waits for changes nothing.
    q.arrived(q.sent[0]!);
    expect(m.read().queueDelayMs).to.equal(0);
  });

  it('takes the slowest queue, and a standing event-loop lag when it is longer', () => {
    const { m, clock, qs } = monitor(2);
    m.probe(clock.t - 12); // a round that ran 12 ms late
    clock.t += 40;
    qs[0]!.arrived(qs[0]!.sent[0]!);
    clock.t += 5;
    qs[1]!.arrived(qs[1]!.sent[0]!);
    expect(m.read()).to.deep.equal({ queueDelayMs: 45, measured: true, eventLoopLagMs: 12, cpuWaitMs: 0 });
    const { m: bare, clock: c2 } = monitor(0);
    bare.probe(c2.t - 30);
    bare.probe(c2.t - 25);
    expect(bare.read()).to.deep.equal({ queueDelayMs: 25, measured: true, eventLoopLagMs: 30, cpuWaitMs: 0 });
  });

  it('reports how long the thread waited for a CPU in the window', () => {
    const { m, clock } = monitor(0);
    clock.cpuWait += 35;
    expect(m.read().cpuWaitMs).to.equal(35);
    expect(m.read().cpuWaitMs).to.equal(0);
  });

  it('reads the thread\'s run-queue wait where the kernel offers it', function () {
    const wait = threadCpuWaitMs();
    if (wait === undefined) this.skip();
    expect(wait).to.be.a('number').and.at.least(0);
  });

  it('sees datagrams wait in a real UDP receive queue while the loop is blocked, and hands none of its probes up', async () => {
    const messages: Buffer[] = [];
    const layer = new TransportLayer(
      { listen: [{ protocol: 'udp', host: '127.0.0.1', port: 0 }], logger: pino({ level: 'silent' }) },
      { onMessage: (data) => void messages.push(data), onFramingError: () => {}, onConnectionClosed: () => {} },
    );
    const [listener] = await layer.start();
    const m = new ReceiveDelayMonitor({ intervalMs: 20 });
    await layer.probeReceiveQueues(m);
    const client = dgram.createSocket('udp4');
    try {
      m.probe();
      // An 8-byte datagram from anyone else is not a probe: it goes up like any other.
      client.send(Buffer.alloc(8), listener!.port, '127.0.0.1');
      blockFor(120);
      // The client's datagram went in after the probe: once it is up, the probe was read.
      const deadline = Date.now() + 5000;
      while (messages.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      const reading = m.read();
      expect(messages).to.have.length(1);
      expect(messages[0]!.length).to.equal(8);
      expect(reading.measured).to.equal(true);
      // It waited in the queue for as long as the loop was blocked, at least.
      expect(reading.queueDelayMs).to.be.at.least(120);
    } finally {
      client.close();
      await layer.stop();
    }
  });
});
