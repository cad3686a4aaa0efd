import { expect } from 'chai';
import { runConnections } from '../../bench/connections.js';

// The short form of the held-connections bench (`node dist/bench/connections.js`, docs/performance.md,
// "Held connections"): a few hundred connections, TCP, TLS and WebSocket from many loopback
// source addresses, against a spawned server. What it checks is that every one was registered,
// subscribed and notified, that keep-alives were answered and that server memory was read;
// how fast and how many bytes are the full run's business.
describe('bench: held connections (short form)', function () {
  this.timeout(60_000);

  it('holds 300 mixed connections from many sources, each registered and subscribed, keep-alives answered', async () => {
    const lines: string[] = [];
    const r = await runConnections({
      connections: 300,
      workers: 1,
      transports: ['tcp', 'tls', 'ws'],
      // 10 a source: 30 source addresses, each under limits.maxConnectionsPerSource.
      perSource: 10,
      holdSeconds: 2,
      keepAliveMs: 500,
      serverPingMs: 1000,
      probeRate: 50,
      probeSeconds: 1,
      log: (l) => lines.push(l),
    });
    const info = `${lines.join('\n')}\n${JSON.stringify(r.counts)}`;
    expect(r.held, info).to.deep.equal({ tcp: 100, tls: 100, ws: 100 });
    for (const t of ['tcp', 'tls', 'ws'] as const) {
      expect(r.counts.registered[t], info).to.equal(100);
      expect(r.counts.subscribed[t], info).to.equal(100);
      expect(r.counts.keepAlivesSent[t], info).to.be.above(0);
      // Every keep-alive sent more than a moment before the count was taken got its answer.
      expect(r.counts.keepAlivesAnswered[t], info).to.be.at.least(r.counts.keepAlivesSent[t] - 100);
    }
    expect(r.counts.serverPings, info).to.be.above(0);
    expect(r.memory.before.rssKb).to.be.above(0);
    expect(r.memory.after.pssKb).to.be.above(0);
    expect(r.latency.during.answered, info).to.equal(r.latency.during.sent);
  });
});
