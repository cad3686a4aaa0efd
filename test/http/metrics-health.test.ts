import { expect } from 'chai';
import { pino } from 'pino';
import { openStore, type Store } from '../../src/store/index.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { TestUa } from '../support/test-ua.js';
import { METRIC_PREFIX } from '../../src/http/metrics.js';
import { call, httpBase } from './http-support.js';

const PIDF = 'application/pidf+xml';

/** The value of one sample line of the text exposition format, or undefined. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = (m[2] ?? '').split(',').filter(Boolean);
    if (want.every((w) => have.includes(w)) && have.length === want.length) return Number(m[3]);
  }
  return undefined;
}

describe('http: /metrics (Prometheus), /healthz, /readyz', function () {
  this.timeout(20000);

  describe('memory-only server', () => {
    let srv: TestServer;
    let base: string;
    const uas: TestUa[] = [];
    before(async () => {
      srv = await startTestServer();
      base = httpBase(srv.server);
    });
    after(async () => {
      for (const u of uas) await u.close();
      await srv.stop();
    });

    it('GET /healthz answers 200 while the process runs', async () => {
      const r = await call(base, 'GET', '/healthz', { token: null });
      expect(r.status).to.equal(200);
      expect(r.json).to.deep.equal({ status: 'ok' });
    });

    it('GET /readyz answers 200 with the transports listening, then 503 once stopping', async () => {
      const r = await call(base, 'GET', '/readyz', { token: null });
      expect(r.status).to.equal(200);
      expect(r.json.checks.transports.ok).to.equal(true);
      expect(r.json.checks.transports.detail).to.contain('udp:127.0.0.1');
      expect(r.json.checks.store).to.deep.equal({ ok: true, detail: 'no store (state in memory)' });
      srv.server.httpSide.markStopping();
      try {
        const down = await call(base, 'GET', '/readyz', { token: null });
        expect(down.status).to.equal(503);
        expect(down.json.status).to.equal('not ready');
        expect(down.json.checks.transports).to.deep.equal({ ok: false, detail: 'stopping' });
      } finally {
        (srv.server.httpSide as unknown as { stopping: boolean }).stopping = false;
      }
    });

    it('counts requests and responses by method and status, the latency, registrations, publications, subscriptions and NOTIFYs', async () => {
      const ua = await TestUa.create({ port: srv.port, user: 'mia' });
      uas.push(ua);
      ua.autoAnswer('NOTIFY', 200);
      expect((await ua.transact(ua.request('REGISTER', 'sip:example.com', { to: `<${ua.aor}>`, headers: { Expires: 600 } }))).status).to.equal(200);
      expect((await ua.transact(ua.request('OPTIONS', 'sip:example.com'))).status).to.equal(200);
      expect((await ua.transact(ua.request('FOO', 'sip:example.com'))).status).to.equal(501);
      const body = `<?xml version="1.0"?><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:mia@example.com"><tuple id="a"><status><basic>open</basic></status></tuple></presence>`;
      const pub = ua.request('PUBLISH', 'sip:mia@example.com', { headers: { Event: 'presence', Expires: 600, 'Content-Type': PIDF }, body });
      expect((await ua.transact(pub)).status).to.equal(200);
      const callId = 'metrics-sub@test';
      const notified = ua.waitRequest((r) => r.method === 'NOTIFY' && r.callId === callId);
      expect((await ua.transact(ua.request('SUBSCRIBE', 'sip:mia@example.com', { callId, headers: { Event: 'presence', Expires: 600, Accept: PIDF } }))).status).to.equal(200);
      await notified;
      // The 200 to the NOTIFY is on its way back: wait until the server has it.
      for (let i = 0; i < 100 && srv.server.presence.subscriptions.notifier.inFlight > 0; i++) await new Promise((r) => setTimeout(r, 5));

      const r = await call(base, 'GET', '/metrics', { token: null });
      expect(r.status).to.equal(200);
      expect(r.headers.get('content-type')).to.match(/^text\/plain; version=0\.0\.4/);
      const m = r.text;
      expect(sample(m, 'simple_presence_sip_requests_received_total', { method: 'REGISTER' })).to.equal(1);
      expect(sample(m, 'simple_presence_sip_requests_received_total', { method: 'other' })).to.equal(1);
      expect(sample(m, 'simple_presence_sip_responses_sent_total', { method: 'OPTIONS', status: '200' })).to.equal(1);
      expect(sample(m, 'simple_presence_sip_responses_sent_total', { method: 'other', status: '501' })).to.equal(1);
      expect(sample(m, 'simple_presence_sip_request_duration_seconds_count', { method: 'PUBLISH' })).to.equal(1);
      expect(sample(m, 'simple_presence_sip_request_duration_seconds_bucket', { method: 'PUBLISH', le: '+Inf' })).to.equal(1);
      expect(sample(m, 'simple_presence_registrations')).to.equal(1);
      expect(sample(m, 'simple_presence_registered_aors')).to.equal(1);
      expect(sample(m, 'simple_presence_publications', { event: 'presence' })).to.equal(1);
      expect(sample(m, 'simple_presence_publications', { event: 'dialog' })).to.equal(0);
      expect(sample(m, 'simple_presence_publications', { event: 'message-summary' })).to.equal(0);
      expect(sample(m, 'simple_presence_subscriptions', { event: 'reg', state: 'active' })).to.equal(0);
      expect(sample(m, 'simple_presence_subscriptions', { event: 'presence', state: 'active' })).to.equal(1);
      // States with no subscription are reported as 0, not left out.
      expect(sample(m, 'simple_presence_subscriptions', { event: 'presence', state: 'pending' })).to.equal(0);
      expect(sample(m, 'simple_presence_subscriptions', { event: 'presence.winfo', state: 'active' })).to.equal(0);
      expect(sample(m, 'simple_presence_notifies_sent_total')).to.equal(1);
      expect(sample(m, 'simple_presence_notifies_failed_total')).to.equal(0);
      expect(sample(m, 'simple_presence_connections', { transport: 'tcp' })).to.equal(0);
      expect(sample(m, 'simple_presence_connections', { transport: 'ws' })).to.equal(0);
      expect(sample(m, 'simple_presence_store_write_queue_length')).to.equal(0);
      // Node's own metrics keep their standard names.
      expect(sample(m, 'process_resident_memory_bytes')).to.be.above(0);
      expect(m).to.match(/^nodejs_eventloop_lag_seconds /m);
    });

    it('counts a NOTIFY the watcher refuses as failed', async () => {
      const ua = await TestUa.create({ port: srv.port, user: 'nick' });
      uas.push(ua);
      ua.autoAnswer('NOTIFY', 481);
      const callId = 'metrics-fail@test';
      const notified = ua.waitRequest((r) => r.method === 'NOTIFY' && r.callId === callId);
      expect((await ua.transact(ua.request('SUBSCRIBE', 'sip:mia@example.com', { callId, headers: { Event: 'presence', Expires: 600, Accept: PIDF } }))).status).to.equal(200);
      await notified;
      for (let i = 0; i < 100 && srv.server.presence.subscriptions.notifier.inFlight > 0; i++) await new Promise((r) => setTimeout(r, 5));
      const m = (await call(base, 'GET', '/metrics', { token: null })).text;
      expect(sample(m, 'simple_presence_notifies_sent_total')).to.equal(2);
      expect(sample(m, 'simple_presence_notifies_failed_total')).to.equal(1);
    });

    it('counts open TCP connections', async () => {
      const ua = await TestUa.create({ protocol: 'tcp', port: srv.port, user: 'olga' });
      uas.push(ua);
      expect((await ua.transact(ua.request('OPTIONS', 'sip:example.com'))).status).to.equal(200);
      const m = (await call(base, 'GET', '/metrics', { token: null })).text;
      expect(sample(m, 'simple_presence_connections', { transport: 'tcp' })).to.equal(1);
    });

    it('names every metric the Prometheus way: one namespace, base units, _total only on counters', async () => {
      const r = await call(base, 'GET', '/metrics', { token: null });
      const families = new Map<string, string>();
      for (const line of r.text.split('\n')) {
        const m = /^# TYPE (\S+) (\S+)$/.exec(line);
        if (m) families.set(m[1]!, m[2]!);
      }
      const ours = [...families].filter(([name]) => !name.startsWith('process_') && !name.startsWith('nodejs_'));
      expect(ours.length).to.be.above(10);
      for (const [name, type] of ours) {
        expect(name, name).to.match(new RegExp(`^${METRIC_PREFIX}[a-z][a-z0-9_]*[a-z0-9]$`));
        if (type === 'counter') expect(name, `${name} is a counter`).to.match(/_total$/);
        else expect(name, `${name} is a ${type}`).not.to.match(/_total$/);
        // Base units only (seconds, bytes), never milliseconds.
        expect(name, name).not.to.match(/_(ms|milliseconds|kb|mb)(_|$)/);
      }
      expect(families.get('simple_presence_sip_request_duration_seconds')).to.equal('histogram');
    });
  });

  describe('with a store', () => {
    let store: Store;
    let srv: TestServer;
    let base: string;
    before(async () => {
      store = await openStore({ logger: pino({ level: 'silent' }), flushWindowMs: 5 });
      srv = await startTestServer({}, { store });
      base = httpBase(srv.server);
    });
    after(async () => {
      await srv.stop();
      await store.close();
    });

    it('GET /readyz runs SELECT 1 on the store', async () => {
      const r = await call(base, 'GET', '/readyz', { token: null });
      expect(r.status).to.equal(200);
      expect(r.json.checks.store).to.deep.equal({ ok: true, detail: 'sqlite' });
    });

    it('reports the write queue and the flush latency', async () => {
      const ua = await TestUa.create({ port: srv.port, user: 'pia' });
      try {
        expect((await ua.transact(ua.request('REGISTER', 'sip:example.com', { to: `<${ua.aor}>`, headers: { Expires: 600 } }))).status).to.equal(200);
        await store.softState.flush();
      } finally {
        await ua.close();
      }
      const m = (await call(base, 'GET', '/metrics', { token: null })).text;
      expect(sample(m, 'simple_presence_store_write_queue_length')).to.equal(0);
      expect(sample(m, 'simple_presence_store_flush_duration_seconds_count')).to.be.at.least(1);
      expect(sample(m, 'simple_presence_store_flushes_total')).to.be.at.least(1);
      expect(sample(m, 'simple_presence_store_last_flush_duration_seconds')).to.be.above(0);
    });

    it('GET /readyz answers 503 naming the store when it is unreachable', async () => {
      const real = store.db.query.bind(store.db);
      (store.db as { query: typeof real }).query = () => Promise.reject(new Error('connection refused'));
      try {
        const r = await call(base, 'GET', '/readyz', { token: null });
        expect(r.status).to.equal(503);
        expect(r.json.checks.store).to.deep.equal({ ok: false, detail: 'sqlite: connection refused' });
      } finally {
        (store.db as { query: typeof real }).query = real;
      }
    });
  });
});
