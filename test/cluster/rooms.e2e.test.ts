import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createResponse } from '../../src/sip/response.js';
import type { SipRequest } from '../../src/sip/message.js';
import { parseConferenceInfo } from '../../src/presence/conference/conference-info-document.js';
import { registerRequest } from '../registrar/ua-helpers.js';
import { adminQuery, DATABASE_URL } from '../store/helpers.js';
import { startNatsServer, type NatsServer } from '../support/nats-server.js';
import { freePort, startServerProcess, type ServerProcess } from '../support/server-process.js';
import { TestUa } from '../support/test-ua.js';

const DOMAIN = 'example.com';
const ROOM = `sip:lobby@${DOMAIN}`;

/**
 * Issue 22 across a cluster: two nodes (real processes) sharing a nats-server with
 * JetStream and a PostgreSQL database; members held on either node are in one room.
 * Needs DATABASE_URL (CI sets it) and nats-server (.ci/tools).
 */
describe('cluster: one chat room across two nodes (issue 22, real processes)', function () {
  this.timeout(60_000);
  let nats: NatsServer | undefined;
  let dir: string;
  let database: string | undefined;
  let dbUrl: string;
  const ports: number[] = [];
  const nodes: Array<ServerProcess | undefined> = [];
  const uas: TestUa[] = [];
  /** Every room message each user received (Call-ID once: a UDP retransmission is not a copy). */
  const got = new Map<string, string[]>();
  /** Users whose UA answers no MESSAGE for now (a phone gone quiet). */
  const deaf = new Set<string>();

  const config = (i: number) => ({
    sip: { hosts: ['127.0.0.1'], port: ports[i], domain: DOMAIN },
    http: { host: '127.0.0.1', port: 0 },
    store: { url: dbUrl, dataDir: join(dir, `node${i}`) },
    cluster: { natsUrl: nats!.url, nodeName: `node${i}`, requestTimeoutMs: 2000, connectTimeoutMs: 20_000 },
    log: { level: 'info' },
  });

  /** A member of the room on node `i`: answers every MESSAGE 200 and records the room's. */
  const user = async (name: string, i: number, register = true): Promise<TestUa> => {
    const u = await TestUa.create({ port: ports[i]!, user: name, domain: DOMAIN });
    uas.push(u);
    const seen = new Set<string>();
    got.set(name, []);
    u.autoAnswer('MESSAGE', (r) => {
      if (deaf.has(name)) return undefined;
      const text = r.body.toString();
      if (r.getHeader('from')!.includes(`<${ROOM}>`) && /^\w+: /.test(text) && !seen.has(r.callId)) {
        seen.add(r.callId);
        got.get(name)!.push(text);
      }
      return createResponse(r, 200);
    });
    u.autoAnswer('NOTIFY', 200);
    if (register) expect((await u.transact(registerRequest(u, { expires: 600 }), 10_000)).status).to.equal(200);
    return u;
  };
  const say = async (from: TestUa, body: string): Promise<number> => {
    const req = from.request('MESSAGE', ROOM, { body, headers: { 'Content-Type': 'text/plain;charset=utf-8' } });
    req.removeHeader('contact');
    return (await from.transact(req, 10_000)).status;
  };
  /** Resolves once `name` received `count` room messages. */
  const receivedCount = async (u: TestUa, name: string, count: number): Promise<string[]> => {
    while (got.get(name)!.length < count) await u.waitRequest((r) => r.method === 'MESSAGE', 10_000);
    return got.get(name)!;
  };

  before(async function () {
    this.timeout(240_000);
    if (!DATABASE_URL) return this.skip();
    dir = mkdtempSync(join(tmpdir(), 'sp-cluster-rooms-'));
    nats = await startNatsServer();
    database = `sp_rooms_${randomBytes(4).toString('hex')}`;
    await adminQuery(DATABASE_URL, `CREATE DATABASE ${database}`);
    const url = new URL(DATABASE_URL);
    url.pathname = `/${database}`;
    dbUrl = url.toString();
    for (let i = 1; i <= 2; i++) ports[i] = await freePort();
    // The first node applies the migrations.
    nodes[1] = await startServerProcess(dir, config(1), { AUTH_REQUIRED: 'false' }, 120_000);
    nodes[2] = await startServerProcess(dir, config(2), { AUTH_REQUIRED: 'false' }, 120_000);
  });

  after(async function () {
    this.timeout(60_000);
    for (const u of uas) await u.close();
    await Promise.all(nodes.map((n) => n?.stop('SIGKILL')));
    await nats?.close();
    if (DATABASE_URL && database) await adminQuery(DATABASE_URL, `DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  let alice: TestUa, bob: TestUa, carol: TestUa, dave: TestUa, grace: TestUa;

  it('members on both nodes: each message reaches every other member once, all in one order; an offline member gets them stored once', async () => {
    alice = await user('alice', 1);
    carol = await user('carol', 1);
    bob = await user('bob', 2);
    dave = await user('dave', 2);
    // Grace joins without a registration: her copies are stored, by the node that took each message.
    grace = await user('grace', 2, false);
    expect(await say(alice, '#join')).to.equal(200);
    for (const u of [bob, carol, dave, grace]) expect(await say(u, '#join')).to.equal(200);

    const lines: Array<[TestUa, string, string]> = [
      [alice, 'alice', 'one'],
      [bob, 'bob', 'two'],
      [alice, 'alice', 'three'],
      [carol, 'carol', 'four'],
      [dave, 'dave', 'five'],
      [bob, 'bob', 'six'],
    ];
    for (const [u, , text] of lines) expect(await say(u, text)).to.equal(202);
    const all = lines.map(([, name, text]) => `${name}: ${text}`);
    for (const [u, name] of [[alice, 'alice'], [bob, 'bob'], [carol, 'carol'], [dave, 'dave']] as const) {
      const expected = all.filter((l) => !l.startsWith(`${name}: `));
      expect(await receivedCount(u, name, expected.length), name).to.deep.equal(expected);
    }

    // Grace registers at node 2: the six, stored by nodes 1 and 2, come once each.
    expect((await grace.transact(registerRequest(grace, { expires: 600 }), 10_000)).status).to.equal(200);
    expect([...(await receivedCount(grace, 'grace', all.length))].sort()).to.deep.equal([...all].sort());
  });

  it('a conference subscription held on node 1 hears of a member who joins on node 2', async () => {
    const callId = `conf-${randomBytes(4).toString('hex')}@test`;
    const first = alice.waitRequest((r) => r.method === 'NOTIFY' && r.callId === callId, 10_000);
    const sub = alice.request('SUBSCRIBE', ROOM, { callId, cseq: 1, headers: { Event: 'conference', Expires: 600, Accept: 'application/conference-info+xml' } });
    expect((await alice.transact(sub, 10_000)).status).to.equal(200);
    const full = parseConferenceInfo((await first).body);
    if (!full.ok) throw new Error(full.reason);
    expect(full.document.users.map((u) => u.entity)).to.include.members([alice.aor, bob.aor, dave.aor]);

    const frank = await user('frank', 2);
    const told = alice.waitRequest((r) => r.method === 'NOTIFY' && r.callId === callId && r.body.toString().includes(frank.aor), 10_000);
    expect(await say(frank, '#join')).to.equal(200);
    const partial = parseConferenceInfo((await told).body);
    if (!partial.ok) throw new Error(partial.reason);
    expect(partial.document.users.map((u) => [u.entity, u.state])).to.deep.equal([[frank.aor, 'full']]);
  });

  it('node 1 killed right after its 202: the members on node 2 still get the message; its own member gets it when it is back', async () => {
    const before = { bob: got.get('bob')!.length, dave: got.get('dave')!.length, carol: got.get('carol')!.length };
    // Carol does not answer node 1 before it dies: its copy is still unacknowledged in the stream.
    deaf.add('carol');
    expect(await say(alice, 'last words')).to.equal(202);
    expect(await nodes[1]!.stop('SIGKILL')).to.equal('SIGKILL');
    nodes[1] = undefined;
    deaf.delete('carol');
    expect((await receivedCount(bob, 'bob', before.bob + 1)).at(-1)).to.equal('alice: last words');
    expect((await receivedCount(dave, 'dave', before.dave + 1)).at(-1)).to.equal('alice: last words');
    // Carol's contact (UDP) was held by node 1: its consumer resumes where it was when it is back.
    expect(got.get('carol')!.length).to.equal(before.carol);
    nodes[1] = await startServerProcess(dir, config(1), { AUTH_REQUIRED: 'false' }, 120_000);
    expect((await receivedCount(carol, 'carol', before.carol + 1)).at(-1)).to.equal('alice: last words');
  });
});
