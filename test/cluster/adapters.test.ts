import { expect } from 'chai';
import { pino } from 'pino';
import { decodeBindings, decodePublications, encodeBindings, encodePublications } from '../../src/cluster/codec.js';
import { ClusterNode } from '../../src/cluster/cluster-node.js';
import { loadConfig } from '../../src/config/config.js';
import { ServiceUnavailableError } from '../../src/core/services.js';
import type { AppliedDecision, PublicationDecision, PublicationStore, PublicationView } from '../../src/presence/publication-store.js';
import type { Publication } from '../../src/presence/publications.js';
import type { Binding } from '../../src/registrar/binding.js';
import { timersWallClock } from '../../src/registrar/wall-clock.js';
import { ManualTimers, TimerHeap } from '../../src/util/timers.js';
import { startNatsServer, type NatsServer } from '../support/nats-server.js';
import { until } from '../support/wait.js';

const ALICE = 'sip:alice@example.com';

const pub = (etag: string, expiresAtMs: number, note = 'x'): Publication => ({
  etag,
  presentity: ALICE,
  contentType: 'application/pidf+xml',
  body: Buffer.from(`<presence entity="${ALICE}"><tuple id="t"><note>${note}</note></tuple></presence>`),
  publishedAtMs: Date.now(),
  expiresAtMs,
  tupleIds: ['t'],
});

/** Counts a node's socket writes to NATS: each send() of nats.js's transport (internal) is one. */
function countSends(n: ClusterNode): { readonly count: number; stop(): void } {
  const transport = (n.link.nc as unknown as { protocol: { transport: { send(frame: Uint8Array): void } } }).protocol.transport;
  const send = transport.send.bind(transport);
  const counter = { count: 0, stop: () => void (transport.send = send) };
  transport.send = (frame) => {
    counter.count++;
    send(frame);
  };
  return counter;
}

/** RFC 3903 §6 step 4 and 7 in small: refresh `etag` (new entity-tag) or 412. */
const refresh =
  (etag: string, next: string) =>
  (view: PublicationView): PublicationDecision<number> => {
    const existing = view.get(etag);
    if (!existing) return { result: 412, needsCurrentState: true };
    return { result: 200, put: { ...existing, etag: next }, replaces: etag };
  };

describe('cluster adapters on a real nats-server (in process)', function () {
  this.timeout(30_000);
  let nats: NatsServer;
  const nodes: ClusterNode[] = [];
  const stores: PublicationStore[] = [];

  const node = async (name: string): Promise<ClusterNode> => {
    const config = loadConfig({ env: {}, overrides: { store: { url: 'postgres://unused/db' }, cluster: { natsUrl: nats.url, nodeName: name, requestTimeoutMs: 1000 } } });
    const n = new ClusterNode(config, pino({ level: 'silent' }));
    await n.connect();
    nodes.push(n);
    return n;
  };
  const store = (n: ClusterNode, timers = new TimerHeap(), hooks: { changed?: string[]; expired?: string[] } = {}): PublicationStore => {
    const s = n.publicationStore({
      timers,
      wallClock: timersWallClock(timers),
      maxPerPresentity: 4,
      onExpired: (p) => hooks.expired?.push(p.etag),
      onChanged: (p) => hooks.changed?.push(p),
      watched: () => true,
    });
    stores.push(s);
    return s;
  };

  before(async () => {
    nats = await startNatsServer();
  });
  after(async () => {
    for (const s of stores) s.close();
    for (const n of nodes) await n.stop();
    await nats.close();
  });

  it('encodes publications and bindings so that they read back the same, and refuses a malformed entry', () => {
    const p = pub('e1', 123, 'ü and <xml/>');
    const [back] = decodePublications(ALICE, encodePublications([p, pub('e2', 456)]));
    expect(back!.etag).to.equal('e1');
    expect(back!.body.equals(p.body)).to.equal(true);
    expect(back!.tupleIds).to.deep.equal(['t']);
    expect(() => decodePublications(ALICE, Buffer.from('{"v":1,"p":[["e",1,2,3,[],null,999]]}\n'))).to.throw();
    const b = { aor: ALICE, key: 'k', contact: 'sip:a@h', params: [], callId: 'c', cseq: 1, expiresAt: 9, updatedAt: 1, path: [], flow: { protocol: 'udp', remoteAddress: 'h', remotePort: 1, localAddress: 'l', localPort: 2 }, reachable: true } as Binding;
    expect(decodeBindings(ALICE, encodeBindings([b]))).to.deep.equal([b]);
    expect(() => decodeBindings('sip:other@example.com', encodeBindings([b]))).to.throw();
  });

  it('starts the bucket writes asked for in one turn of the loop together: they leave in one socket write', async () => {
    const n = await node('batch');
    const s = store(n);
    const sends = countSends(n);
    try {
      // One callback each, as datagrams are read in one turn (microtasks run between them).
      const decided = Array.from(
        { length: 50 },
        (_, i) =>
          new Promise<AppliedDecision<number>>((resolve, reject) =>
            setImmediate(() => Promise.resolve(s.decide(`sip:batch${i}@example.com`, () => ({ result: 200, put: pub(`b${i}`, Date.now() + 60_000) }))).then(resolve, reject)),
          ),
      );
      expect((await Promise.all(decided)).map((d) => d.result)).to.deep.equal(Array(50).fill(200));
      // The 50 compare-and-set publishes leave together (a write each before).
      expect(sends.count).to.be.within(1, 2);
    } finally {
      sends.stop();
    }
  });

  it('starts the follows and watcher news asked for in one turn together, in order: one socket write, and the news still arrive', async () => {
    const teller = await node('teller');
    const hearer = await node('hearer');
    const s = store(teller);
    const told = teller.watchers(() => [], () => false);
    const heard = hearer.watchers(() => [], () => true);
    told.start();
    heard.start();
    const resource = 'sip:watched@example.com';
    await heard.follow(resource);
    const arrived: string[] = [];
    heard.listen((r, w) => arrived.push(`${r} ${w.id} ${w.event}`));
    const sends = countSends(teller);
    const watcher = (i: number, event: 'subscribe' | 'timeout') =>
      ({ id: `w${i}`, uri: `sip:w${i}@example.com`, status: event === 'subscribe' ? 'active' : 'terminated', event, createdAtMs: Date.now(), expiresAtMs: Date.now() + 60_000 }) as const;
    try {
      // One callback each, as datagrams are read in one turn: a SUBSCRIBE's follow (subscription
      // and read) and its watcher news, then the unsubscribe's news.
      const followed = Array.from(
        { length: 30 },
        (_, i) =>
          new Promise<void>((resolve, reject) =>
            setImmediate(() => {
              s.follow!(`sip:followed${i}@example.com`).then(resolve, reject);
              told.tell(resource, watcher(i, 'subscribe'));
              told.tell(resource, watcher(i, 'timeout'));
            }),
          ),
      );
      await Promise.all(followed);
      // 30 subscriptions, 30 reads and 60 news: one write for the turn (a write each before), and
      // the reads' answers may let a second one go.
      expect(sends.count).to.be.within(1, 2);
    } finally {
      sends.stop();
    }
    await until(() => arrived.length === 60, `60 news, got ${arrived.length}`, 5000);
    // Each watcher's news in the order they were told.
    for (let i = 0; i < 30; i++) expect(arrived.indexOf(`${resource} w${i} subscribe`)).to.be.lessThan(arrived.indexOf(`${resource} w${i} timeout`));
  });

  it("lists a bucket's keys in one request, deleted ones too, while other writers keep writing (no consumer to hang)", async () => {
    const n = await node('lister');
    const kv = await n.link.bucket('list_test', { history: 1 });
    for (const k of ['a', 'b', 'c']) await kv.put(k, 'x');
    await kv.delete('b');
    let writing = true;
    const writer = (async () => {
      for (let i = 0; writing; i++) await kv.put(`w${i % 5}`, String(i));
    })();
    try {
      for (let round = 0; round < 20; round++) {
        const keys = await n.link.keys('list_test');
        expect(keys).to.include.members(['a', 'b', 'c']);
        expect(new Set(keys).size).to.equal(keys.length);
      }
    } finally {
      writing = false;
      await writer;
    }
    const live: string[] = [];
    for (const k of await n.link.keys('list_test')) if ((await kv.get(k))?.operation === 'PUT') live.push(k);
    expect(live.sort()).to.deep.equal(['a', 'c', 'w0', 'w1', 'w2', 'w3', 'w4']);
  });

  it('decides on the shared entry: of two refreshes of one entity-tag racing at two nodes, one stands and one is 412', async () => {
    const [a, b, c] = [store(await node('n1')), store(await node('n2')), store(await node('n3'))];
    const first = await a.decide(ALICE, () => ({ result: 200, put: pub('e1', Date.now() + 60_000) }));
    expect(first.result).to.equal(200);
    // Nodes 2 and 3 never saw e1: each reads the entry before it could answer 412.
    const results = await Promise.all([b.decide(ALICE, refresh('e1', 'e2')), c.decide(ALICE, refresh('e1', 'e3'))]);
    expect(results.map((r) => r.result).sort()).to.deep.equal([200, 412]);
    // Node 1's copy is behind, and its write loses to the newer revision: decided again, 412.
    expect((await a.decide(ALICE, refresh('e1', 'e4'))).result).to.equal(412);
  });

  it('a follower gets each committed change, and expires a publication at the time written in it without any message', async () => {
    const timers = new ManualTimers();
    const seen = { changed: [] as string[], expired: [] as string[] };
    const follower = store(await node('f1'), timers, seen);
    const writer = store(await node('w1'));
    const bob = 'sip:bob@example.com';
    await follower.follow!(bob);
    await writer.decide(bob, () => ({ result: 0, put: { ...pub('b1', Date.now() + 5000), presentity: bob } }));
    for (let i = 0; i < 100 && follower.count(bob) === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(follower.of(bob).map((p) => p.etag)).to.deep.equal(['b1']);
    expect(seen.changed).to.include(bob);
    timers.advance(6000);
    expect(seen.expired).to.deep.equal(['b1']);
    expect(follower.count(bob)).to.equal(0);
  });

  it('shares bindings with the node that holds their flow; a REGISTER elsewhere is decided on all of them', async () => {
    const n1 = await node('r1');
    const n2 = await node('r2');
    const timers = new TimerHeap();
    const l1 = n1.locations({ wallClock: timersWallClock(timers), isOpen: () => true });
    const l2 = n2.locations({ wallClock: timersWallClock(timers), isOpen: () => true });
    const b: Binding = { aor: 'sip:carol@example.com', key: 'k1', contact: 'sip:carol@10.0.0.1', params: [], callId: 'c', cseq: 1, expiresAt: Date.now() + 60_000, updatedAt: Date.now(), path: [], flow: { protocol: 'tcp', remoteAddress: '10.0.0.1', remotePort: 5, localAddress: '127.0.0.1', localPort: 5060, connectionId: 7 }, reachable: true };
    await l1.decide(b.aor, () => ({ result: undefined, put: [b] }));
    const seen = await l2.lookup(b.aor);
    expect(seen.map((x) => x.node?.name)).to.deep.equal(['r1']);
    expect(seen[0]!.flow.connectionId).to.equal(7);
    // Node 2 sees node 1's binding when it decides (a second contact is added beside it).
    const count = await l2.decide(b.aor, (current) => ({ result: current.length, put: [{ ...b, key: 'k2', contact: 'sip:carol@10.0.0.2' }] }));
    expect(count).to.equal(1);
    expect((await l1.bindings(b.aor)).map((x) => `${x.key}@${x.node?.name}`).sort()).to.deep.equal(['k1@r1', 'k2@r2']);
    l1.close();
    l2.close();
  });

  it('answers 503 at once while NATS is away, and goes on once it is back', async () => {
    const s = store(await node('down1'));
    await nats.stop();
    for (let i = 0; i < 100 && nodes.at(-1)!.status().nats.state === 'connected'; i++) await new Promise((r) => setTimeout(r, 20));
    let error: unknown;
    try {
      await s.decide('sip:dan@example.com', () => ({ result: 0, put: { ...pub('d1', Date.now() + 60_000), presentity: 'sip:dan@example.com' } }));
    } catch (err) {
      error = err;
    }
    expect(error).to.be.instanceOf(ServiceUnavailableError);
    expect((error as ServiceUnavailableError).retryAfterSeconds).to.be.greaterThan(0);
    await nats.start();
    for (let i = 0; i < 200 && nodes.at(-1)!.status().nats.state !== 'connected'; i++) await new Promise((r) => setTimeout(r, 50));
    expect((await s.decide('sip:dan@example.com', () => ({ result: 1, put: { ...pub('d2', Date.now() + 60_000), presentity: 'sip:dan@example.com' } }))).result).to.equal(1);
  });
});
