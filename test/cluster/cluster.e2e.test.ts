import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SipRequest, SipResponse } from '../../src/sip/message.js';
import { registerRequest } from '../registrar/ua-helpers.js';
import { adminQuery, DATABASE_URL } from '../store/helpers.js';
import { startNatsServer, type NatsServer } from '../support/nats-server.js';
import { freePort, runCli, startServerProcess, type ServerProcess } from '../support/server-process.js';
import { TestUa } from '../support/test-ua.js';
import { publishReq } from '../e2e/presence-support.js';

const PIDF = 'application/pidf+xml';
const DOMAIN = 'example.com';
const TOKEN = 'cluster-test-admin-token';
const pidf = (entity: string, basic: 'open' | 'closed', note: string): string =>
  `<?xml version="1.0" encoding="UTF-8"?>\n<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="${entity}">` +
  `<tuple id="t1"><status><basic>${basic}</basic></status><note>${note}</note></tuple></presence>`;

const notifyOf = (callId: string, has?: string) => (r: SipRequest) => r.method === 'NOTIFY' && r.callId === callId && (has === undefined || r.body.toString().includes(has));
const isMessage = (r: SipRequest) => r.method === 'MESSAGE';

/**
 * Issue 16 / DESIGN "Past one machine": three nodes, each its own process (the CLI), on
 * loopback ports, sharing a nats-server with JetStream that the test starts and a
 * PostgreSQL database of their own. Any node takes any request; dialogs and flows stay
 * where they were made. Needs DATABASE_URL (CI sets it) and nats-server (.ci/tools).
 */
describe('cluster: three nodes on NATS JetStream and PostgreSQL (real processes)', function () {
  this.timeout(60_000);
  let nats: NatsServer | undefined;
  let dir: string;
  let database: string | undefined;
  let dbUrl: string;
  const ports: number[] = [];
  const nodes: Array<ServerProcess | undefined> = [];
  const uas: TestUa[] = [];

  const config = (i: number) => ({
    sip: { hosts: ['127.0.0.1'], port: ports[i], domain: DOMAIN },
    http: { host: '127.0.0.1', port: 0 },
    admin: { token: TOKEN },
    store: { url: dbUrl, dataDir: join(dir, `node${i}`) },
    presence: { publishMinExpires: 1, subscribeMinExpires: 1 },
    cluster: { natsUrl: nats!.url, nodeName: `node${i}`, requestTimeoutMs: 1000, connectTimeoutMs: 20_000 },
    log: { level: 'info' },
  });
  const startNode = async (i: number): Promise<ServerProcess> => {
    const p = await startServerProcess(dir, config(i), { AUTH_REQUIRED: 'false' }, 120_000);
    nodes[i] = p;
    return p;
  };
  /** A UA of `user` talking to node `i` (1-based) over `protocol`. */
  const ua = async (user: string, i: number, protocol: 'udp' | 'tcp' = 'udp'): Promise<TestUa> => {
    const u = await TestUa.create({ port: ports[i]!, user, domain: DOMAIN, protocol });
    uas.push(u);
    return u;
  };
  const publish = (u: TestUa, opts: { body?: string; etag?: string; expires?: number } = {}): SipRequest => publishReq(u, u.aor, { expires: 600, ...opts });
  /** Subscribes `w` to `presentity`; resolves with the 200 and the first NOTIFY. */
  const subscribe = async (w: TestUa, presentity: string, callId: string, event = 'presence'): Promise<{ res: SipResponse; first: SipRequest }> => {
    w.autoAnswer('NOTIFY', 200);
    const first = w.waitRequest(notifyOf(callId), 10_000);
    const res = await w.transact(w.request('SUBSCRIBE', presentity, { callId, cseq: 1, headers: { Event: event, Expires: 600, Accept: event === 'presence' ? PIDF : 'application/watcherinfo+xml' } }), 10_000);
    return { res, first: await first };
  };

  before(async function () {
    this.timeout(240_000);
    if (!DATABASE_URL) return this.skip();
    dir = mkdtempSync(join(tmpdir(), 'sp-cluster-'));
    nats = await startNatsServer();
    database = `sp_cluster_${randomBytes(4).toString('hex')}`;
    await adminQuery(DATABASE_URL, `CREATE DATABASE ${database}`);
    const url = new URL(DATABASE_URL);
    url.pathname = `/${database}`;
    dbUrl = url.toString();
    for (let i = 1; i <= 3; i++) ports[i] = await freePort();
    // The first node applies the migrations; the others then start side by side.
    await startNode(1);
    await Promise.all([startNode(2), startNode(3)]);
  });

  after(async function () {
    this.timeout(60_000);
    for (const u of uas) await u.close();
    await Promise.all(nodes.map((n) => n?.stop('SIGKILL')));
    await nats?.close();
    if (DATABASE_URL && database) await adminQuery(DATABASE_URL, `DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('publish on node 1, watch on nodes 2 and 3: change, expiry and removal reach both', async () => {
    const alice = await ua('alice', 1);
    const w2 = await ua('bob', 2);
    const w3 = await ua('carol', 3);
    const s2 = await subscribe(w2, alice.aor, 'c2-alice@test');
    const s3 = await subscribe(w3, alice.aor, 'c3-alice@test');
    expect(s2.res.status).to.equal(200);
    expect(s3.res.status).to.equal(200);

    // Published on node 1: both other nodes' watchers hear of it.
    let n2 = w2.waitRequest(notifyOf('c2-alice@test', 'first'), 10_000);
    let n3 = w3.waitRequest(notifyOf('c3-alice@test', 'first'), 10_000);
    const pub = await alice.transact(publish(alice, { body: pidf(alice.aor, 'open', 'first') }));
    expect(pub.status).to.equal(200);
    await Promise.all([n2, n3]);

    // Changed at node 3 with node 1's entity-tag: any node takes any request.
    const at3 = await ua('alice', 3);
    n2 = w2.waitRequest(notifyOf('c2-alice@test', 'second'), 10_000);
    n3 = w3.waitRequest(notifyOf('c3-alice@test', 'second'), 10_000);
    const mod = await at3.transact(publish(at3, { etag: pub.getHeader('sip-etag')!, body: pidf(alice.aor, 'closed', 'second') }));
    expect(mod.status, `${mod.status} ${mod.reason}`).to.equal(200);
    await Promise.all([n2, n3]);

    // Removed at node 2 (Expires 0): both see the neutral document.
    const at2 = await ua('alice', 2);
    const neutral = (callId: string) => (r: SipRequest) => notifyOf(callId)(r) && !r.body.toString().includes('<tuple');
    n2 = w2.waitRequest(neutral('c2-alice@test'), 10_000);
    n3 = w3.waitRequest(neutral('c3-alice@test'), 10_000);
    expect((await at2.transact(publish(at2, { etag: mod.getHeader('sip-etag')!, expires: 0 }))).status).to.equal(200);
    await Promise.all([n2, n3]);

    // A publication of one second expires on every node from the time written in it.
    n2 = w2.waitRequest(notifyOf('c2-alice@test', 'brief'), 10_000);
    n3 = w3.waitRequest(notifyOf('c3-alice@test', 'brief'), 10_000);
    expect((await alice.transact(publish(alice, { expires: 1, body: pidf(alice.aor, 'open', 'brief') }))).status).to.equal(200);
    await Promise.all([n2, n3]);
    await Promise.all([w2.waitRequest(neutral('c2-alice@test'), 10_000), w3.waitRequest(neutral('c3-alice@test'), 10_000)]);
  });

  it('two conditional PUBLISHes racing on one entity-tag at two nodes: one 200, one 412', async () => {
    const d1 = await ua('racer', 1);
    const d2 = await ua('racer', 2);
    const d3 = await ua('racer', 3);
    const pub = await d1.transact(publish(d1, { body: pidf(d1.aor, 'open', 'race') }));
    expect(pub.status).to.equal(200);
    const etag = pub.getHeader('sip-etag')!;
    const [a, b] = await Promise.all([d2.transact(publish(d2, { etag }), 10_000), d3.transact(publish(d3, { etag }), 10_000)]);
    expect([a.status, b.status].sort()).to.deep.equal([200, 412]);
  });

  it('watcher information lists the watchers of every node; a new watcher elsewhere is told at once', async () => {
    const owner = await ua('wendy', 1);
    const early = await ua('walt', 3);
    expect((await subscribe(early, owner.aor, 'walt-wendy@test')).res.status).to.equal(200);
    const info = await subscribe(owner, owner.aor, 'wendy-winfo@test', 'presence.winfo');
    expect(info.res.status).to.equal(200);
    expect(info.first.body.toString()).to.contain('sip:walt@example.com');
    const late = await ua('wade', 2);
    const told = owner.waitRequest(notifyOf('wendy-winfo@test', 'sip:wade@example.com'), 10_000);
    expect((await subscribe(late, owner.aor, 'wade-wendy@test')).res.status).to.equal(200);
    expect((await told).body.toString()).to.contain('state="partial"');
  });

  it('approving a pending watcher at node 1 (CLI) activates it on node 3, which holds it', async () => {
    expect((await runCli(['rules', 'confirm', 'dave', '*', '--config', nodes[1]!.configFile])).code).to.equal(0);
    const carol = await ua('carol', 3);
    const s = await subscribe(carol, `sip:dave@${DOMAIN}`, 'carol-dave@test');
    expect(s.first.getHeader('subscription-state')).to.match(/^pending/);
    const active = carol.waitRequest((r) => notifyOf('carol-dave@test')(r) && /^active/.test(r.getHeader('subscription-state') ?? ''), 10_000);
    const cli = await runCli(['rules', 'allow', 'dave', 'carol', '--config', nodes[1]!.configFile]);
    expect(cli.code, cli.out).to.equal(0);
    await active;
  });

  it('a MESSAGE at node 3 for a user registered over TCP at node 1 goes down that connection; the 200 comes back', async () => {
    const bob = await ua('tcpbob', 1, 'tcp');
    bob.autoAnswer('MESSAGE', 200);
    expect((await bob.transact(registerRequest(bob, { expires: 600 }))).status).to.equal(200);
    const sender = await ua('sam', 3);
    const got = bob.waitRequest(isMessage, 10_000);
    const res = await sender.transact(sender.request('MESSAGE', bob.aor, { headers: { 'Content-Type': 'text/plain' }, body: 'across the cluster' }), 10_000);
    expect(res.status).to.equal(200);
    expect((await got).body.toString()).to.equal('across the cluster');
  });

  it('a MESSAGE for a user with no contact is stored, and delivered when the user registers at another node', async () => {
    const sender = await ua('sue', 1);
    const stored = await sender.transact(sender.request('MESSAGE', `sip:erin@${DOMAIN}`, { headers: { 'Content-Type': 'text/plain' }, body: 'kept for erin' }), 10_000);
    expect(stored.status).to.equal(202);
    const erin = await ua('erin', 2);
    erin.autoAnswer('MESSAGE', 200);
    const waiting = erin.waitRequest(isMessage, 10_000);
    expect((await erin.transact(registerRequest(erin, { expires: 600 }))).status).to.equal(200);
    expect((await waiting).body.toString()).to.equal('kept for erin');
  });

  it('SIGKILL of a node: its publications live on, its watchers refreshing elsewhere get 481, its users are stored for', async () => {
    // Node 3 holds a publication, a watcher and a TCP registration when it dies.
    const pat = await ua('pat', 3);
    expect((await pat.transact(publish(pat, { body: pidf(pat.aor, 'open', 'from node 3') }))).status).to.equal(200);
    const watcher = await ua('quinn', 3);
    const s = await subscribe(watcher, pat.aor, 'quinn-pat@test');
    const tcp = await ua('tcpzoe', 3, 'tcp');
    expect((await tcp.transact(registerRequest(tcp, { expires: 600 }))).status).to.equal(200);
    expect(await nodes[3]!.stop('SIGKILL')).to.equal('SIGKILL');
    nodes[3] = undefined;

    // Another node shows the dead node's publication.
    const other = await ua('quinn', 2);
    expect((await subscribe(other, pat.aor, 'quinn2-pat@test')).first.body.toString()).to.contain('from node 3');
    // The dialog lived on node 3: a refresh at node 2 is 481 (RFC 6665 §4.1.3: subscribe again).
    const refresh = other.request('SUBSCRIBE', pat.aor, { callId: 'quinn-pat@test', cseq: 2, fromTag: s.first.to.tag, toTag: s.first.from.tag, headers: { Event: 'presence', Expires: 600 } });
    expect((await other.transact(refresh, 10_000)).status).to.equal(481);
    // The TCP user's flow died with node 3: a MESSAGE is stored for it.
    const sender = await ua('sid', 1);
    expect((await sender.transact(sender.request('MESSAGE', tcp.aor, { headers: { 'Content-Type': 'text/plain' }, body: 'are you there?' }), 10_000)).status).to.equal(202);
  });

  it('NATS restarted: requests that need it get 503 with Retry-After meanwhile, then the nodes go on with the state kept', async () => {
    const amy = await ua('amy', 1);
    const pub = await amy.transact(publish(amy, { body: pidf(amy.aor, 'open', 'kept') }));
    expect(pub.status).to.equal(200);
    await nats!.stop();
    const refused = await amy.transact(publish(amy, { body: pidf(amy.aor, 'open', 'lost') }), 10_000);
    expect(refused.status).to.equal(503);
    expect(Number(refused.getHeader('retry-after'))).to.be.greaterThan(0);
    await nats!.start();
    // Back: the entity-tag from before the restart still refreshes (JetStream kept it on disk).
    let res: SipResponse | undefined;
    for (let i = 0; i < 40 && res?.status !== 200; i++) {
      res = await amy.transact(publish(amy, { etag: pub.getHeader('sip-etag')! }), 10_000);
      if (res.status === 503) await new Promise((r) => setTimeout(r, 500));
    }
    expect(res!.status, `${res!.status} ${res!.reason}`).to.equal(200);
    // status and /metrics show the nodes and the link.
    const base = httpBase(nodes[1]!);
    const status = (await (await fetch(`${base}/api/status`, { headers: { Authorization: `Bearer ${TOKEN}` } })).json()) as { cluster: { nats: { state: string }; nodes: Array<{ name: string }> } };
    expect(status.cluster.nats.state).to.equal('connected');
    expect(status.cluster.nodes.map((n) => n.name)).to.include.members(['node1', 'node2']);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).to.match(/^simple_presence_cluster_nats_connected 1$/m);
    expect(metrics).to.match(/^simple_presence_cluster_node_requests_per_second\{node="node2",host="[^"]+"\} \d+$/m);
  });
});

/** The HTTP side of a node (its port from its log line). */
function httpBase(node: ServerProcess): string {
  const line = node.lines.find((l) => l.includes('simple-presence listening'))!;
  const ws = (JSON.parse(line) as { listeners: string[] }).listeners.find((l) => l.startsWith('ws:'))!;
  return `http://${ws.slice(3)}`;
}
