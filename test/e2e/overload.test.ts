import dgram from 'node:dgram';
import { expect } from 'chai';
import type { RequestContext, SipService } from '../../src/core/services.js';
import { SipResponse } from '../../src/sip/message.js';
import { parseMessage } from '../../src/sip/parser.js';
import type { ReceiveDelay, ReceiveDelayReading } from '../../src/transport/receive-delay.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { TestUa } from '../support/test-ua.js';
import { until } from '../support/wait.js';
import { inDialog, isNotify, pidf, publishReq, watch } from './presence-support.js';

/** Readings the test sets (in place of the server's own probe). */
class ScriptedDelay implements ReceiveDelay {
  private next: ReceiveDelayReading = { queueDelayMs: 0, measured: true, eventLoopLagMs: 0, cpuWaitMs: 0 };
  read(): ReceiveDelayReading {
    return this.next;
  }
  set(queueDelayMs: number): void {
    this.next = { queueDelayMs, measured: true, eventLoopLagMs: 1, cpuWaitMs: 0 };
  }
}

function retryAfter(res: SipResponse): number {
  return Number(res.getHeader('retry-after'));
}

async function metricValue(srv: TestServer, series: string): Promise<number | undefined> {
  const { body } = await srv.server.httpSide.metrics.render();
  const line = body.split('\n').find((l) => l.startsWith(series + ' '));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('e2e: overload control (503 with Retry-After past capacity)', function () {
  this.timeout(20_000);

  describe('driven by injected readings', () => {
    const delay = new ScriptedDelay();
    let srv: TestServer;
    const uas: TestUa[] = [];
    before(async () => {
      // random 0.999: a share of 1 refuses, any share under it serves (decisions the test can predict).
      srv = await startTestServer({ overload: { enabled: true, intervalMs: 10 } }, { overload: { delay, random: () => 0.999 } });
    });
    after(async () => {
      for (const u of uas) await u.close();
      await srv.stop();
    });
    const ua = async (user: string): Promise<TestUa> => {
      const u = await TestUa.create({ port: srv.port, user });
      uas.push(u);
      return u;
    };

    it('refuses new requests at once, serves the dialogs and publications that exist, and serves everything again once the delay falls', async () => {
      const pua = await ua('alice');
      const watcher = await ua('bob');
      const alice = pua.aor;
      const published = await pua.transact(publishReq(pua, alice, { body: pidf(alice, 'open'), expires: 600 }));
      expect(published.status).to.equal(200);
      const etag = published.getHeader('sip-etag')!;
      const w = await watch(watcher, alice);

      // Past capacity: every new request refused (level 1 and held there: the delay at the target).
      delay.set(300);
      await until(() => srv.server.overload!.level >= 1, 'overload level 1');
      delay.set(50);
      await until(() => srv.server.overload!.stats().queueDelayMs === 50, 'the control reading the delay at the target');
      const level = srv.server.overload!.level;
      expect(level).to.be.within(1, 1.99);

      const refused = [
        await watcher.transact(watcher.request('SUBSCRIBE', `sip:carol@example.com`, { headers: { Event: 'presence', Expires: 600 } })),
        await pua.transact(publishReq(pua, 'sip:dave@example.com', { body: pidf('sip:dave@example.com', 'open') })),
        await pua.transact(pua.request('MESSAGE', watcher.aor, { headers: { 'Content-Type': 'text/plain' }, body: 'hi' })),
        await pua.transact(pua.request('OPTIONS', 'sip:example.com')),
      ];
      for (const res of refused) {
        expect(res.status, res.cseq.method).to.equal(503);
        expect(res.reason).to.equal('Service Unavailable');
        // RFC 3261 §21.5.4: without Retry-After the client acts as on a 500.
        expect(retryAfter(res)).to.be.within(2, 4);
      }

      // What keeps existing state alive is served: the subscription's refresh (with its NOTIFY,
      // whose 200 is a response and never refused) and the publication's refresh.
      const notified = watcher.waitRequest(isNotify(w.callId));
      const refreshed = await watcher.transact(inDialog(w, 600));
      expect(refreshed.status).to.equal(200);
      await notified;
      const republished = await pua.transact(publishReq(pua, alice, { etag, expires: 600 }));
      expect(republished.status).to.equal(200);

      expect(await metricValue(srv, 'simple_presence_sip_overload_shed_total{class="new"}')).to.equal(4);
      expect(await metricValue(srv, 'simple_presence_sip_overload_shed_total{class="ongoing"}')).to.equal(0);
      expect(await metricValue(srv, 'simple_presence_overload_level')).to.equal(level);
      expect(await metricValue(srv, 'simple_presence_receive_delay_seconds')).to.equal(0.05);

      // The load falls: back to serving every request.
      delay.set(0);
      await until(() => srv.server.overload!.level === 0, 'overload level 0');
      const served = await watcher.transact(watcher.request('SUBSCRIBE', `sip:carol@example.com`, { headers: { Event: 'presence', Expires: 0 } }));
      expect(served.status).to.equal(200);
    });
  });

  describe('driven by a real backlog', () => {
    /** INFO costs 2 ms of the SIP thread: a burst of them is more work than the loop keeps up with. */
    const slow: SipService = {
      name: 'slow',
      methods: ['INFO'],
      handle(ctx: RequestContext) {
        const end = performance.now() + 2;
        while (performance.now() < end) {
          // the work
        }
        ctx.reply(200, 'OK');
      },
    };
    let srv: TestServer;
    let client: dgram.Socket;
    before(async () => {
      // The shipped settings (config/default.json) and the server's own probe.
      srv = await startTestServer({ overload: { enabled: true } }, { services: [slow] });
      client = dgram.createSocket('udp4');
      await new Promise<void>((r) => client.bind(0, '127.0.0.1', () => r()));
    });
    after(async () => {
      client.close();
      await srv.stop();
    });

    function info(n: number): Buffer {
      const port = client.address().port;
      return Buffer.from(
        `INFO sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:${port};branch=z9hG4bKburst${n};rport\r\nMax-Forwards: 70\r\n` +
          `From: <sip:burst@example.com>;tag=b${n}\r\nTo: <sip:example.com>\r\nCall-ID: burst-${n}@test\r\nCSeq: 1 INFO\r\nContent-Length: 0\r\n\r\n`,
      );
    }

    it('answers a burst it cannot serve in time partly with 503 at once, and serves every request again after it', async () => {
      const answers = new Map<string, SipResponse>();
      client.on('message', (data) => {
        const parsed = parseMessage(data);
        if (parsed.ok && parsed.message instanceof SipResponse) answers.set(parsed.message.callId, parsed.message);
      });
      // 300 × 2 ms: a backlog of 600 ms, waiting in the UDP receive queue.
      const burst = 300;
      for (let n = 0; n < burst; n++) client.send(info(n), srv.port, '127.0.0.1');
      await until(() => answers.size === burst, 'every request of the burst answered', 15_000);
      const statuses = [...answers.values()].map((r) => r.status);
      const refused = [...answers.values()].filter((r) => r.status === 503);
      expect(statuses.filter((s) => s !== 200 && s !== 503)).to.deep.equal([]);
      expect(refused.length).to.be.greaterThan(0);
      expect(statuses.filter((s) => s === 200).length).to.be.greaterThan(0);
      for (const r of refused) expect(retryAfter(r)).to.be.within(2, 4);
      expect(await metricValue(srv, 'simple_presence_sip_overload_shed_total{class="new"}')).to.equal(refused.length);

      await until(() => srv.server.overload!.level === 0, 'overload level back to 0', 15_000);
      answers.clear();
      client.send(info(burst), srv.port, '127.0.0.1');
      await until(() => answers.size === 1, 'the request after the burst answered');
      expect(answers.get(`burst-${burst}@test`)!.status).to.equal(200);
    });
  });
});
