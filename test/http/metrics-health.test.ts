import { expect } from 'chai';
import { pino } from 'pino';
import { openStore, type Store } from '../../src/store/index.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { TestUa } from '../support/test-ua.js';
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
      expect(sample(m, 'sip_requests_received_total', { method: 'REGISTER' })).to.equal(1);
      expect(sample(m, 'sip_requests_received_total', { method: 'other' })).to.equal(1);
      expect(sample(m, 'sip_responses_sent_total', { method: 'OPTIONS', status: '200' })).to.equal(1);
      expect(sample(m, 'sip_responses_sent_total', { method: 'other', status: '501' })).to.equal(1);
      expect(sample(m, 'sip_request_duration_seconds_count', { method: 'PUBLISH' })).to.equal(1);
      expect(sample(m, 'sip_request_duration_seconds_bucket', { method: 'PUBLISH', le: '+Inf' })).to.equal(1);
      expect(sample(m, 'sip_registrations')).to.equal(1);
      expect(sample(m, 'presence_publications')).to.equal(1);
      expect(sample(m, 'presence_subscriptions', { event: 'presence', state: 'active' })).to.equal(1);
      expect(sample(m, 'sip_notify_total', { outcome: 'sent' })).to.equal(1);
      expect(sample(m, 'sip_notify_total', { outcome: 'ok' })).to.equal(1);
      expect(sample(m, 'sip_connections', { transport: 'tcp' })).to.equal(0);
      expect(sample(m, 'store_write_queue_length')).to.equal(0);
      expect(m).to.contain('simple_presence_process_resident_memory_bytes');
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
      expect(sample(m, 'sip_notify_total', { outcome: 'failed' })).to.equal(1);
    });

    it('counts open TCP connections', async () => {
      const ua = await TestUa.create({ protocol: 'tcp', port: srv.port, user: 'olga' });
      uas.push(ua);
      expect((await ua.transact(ua.request('OPTIONS', 'sip:example.com'))).status).to.equal(200);
      const m = (await call(base, 'GET', '/metrics', { token: null })).text;
      expect(sample(m, 'sip_connections', { transport: 'tcp' })).to.equal(1);
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
      expect(r.json.checks.store).to.deep.equal({ ok: true, detail: 'pglite' });
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
      expect(sample(m, 'store_write_queue_length')).to.equal(0);
      expect(sample(m, 'store_flush_duration_seconds_count')).to.be.at.least(1);
    });

    it('GET /readyz answers 503 naming the store when it is unreachable', async () => {
      const real = store.db.query.bind(store.db);
      (store.db as { query: typeof real }).query = () => Promise.reject(new Error('connection refused'));
      try {
        const r = await call(base, 'GET', '/readyz', { token: null });
        expect(r.status).to.equal(503);
        expect(r.json.checks.store).to.deep.equal({ ok: false, detail: 'pglite: connection refused' });
      } finally {
        (store.db as { query: typeof real }).query = real;
      }
    });
  });
});
