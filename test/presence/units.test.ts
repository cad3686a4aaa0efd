import { expect } from 'chai';
import { negotiateType } from '../../src/presence/accept.js';
import { DefaultPresenceAuthorizer } from '../../src/presence/authorizer.js';
import { grantExpires } from '../../src/presence/expires.js';
import { PresenceDocuments } from '../../src/presence/presence-documents.js';
import type { Publication } from '../../src/presence/publications.js';
import { KeyedQueue } from '../../src/util/keyed-queue.js';
import { entityPresentity, presentityOf, watcherOf } from '../../src/presence/presentity.js';
import { parseUri } from '../../src/sip/uri.js';
import { subscribe, testDomains } from './helpers.js';

describe('presence: small parts', () => {
  describe('presentity names', () => {
    const domains = testDomains();
    it('is the Request-URI user and host, whatever port or parameters', () => {
      expect(presentityOf(parseUri('sip:alice@example.com:5060;transport=tcp'), domains)).to.equal('sip:alice@example.com');
      expect(presentityOf(parseUri('sips:alice@EXAMPLE.com'), domains)).to.equal('sip:alice@example.com');
      expect(presentityOf(parseUri('sip:alice@127.0.0.1:5070'), domains)).to.equal('sip:alice@example.com');
      expect(presentityOf(parseUri('sip:alice@other.example.org'), domains)).to.equal(undefined);
      expect(presentityOf(parseUri('sip:example.com'), domains)).to.equal(undefined);
    });
    it('reads pres: and sip: entities the same way (RFC 3859, RFC 3863 §4.1.1)', () => {
      expect(entityPresentity('pres:alice@example.com', domains)).to.equal('sip:alice@example.com');
      expect(entityPresentity('sip:alice@127.0.0.1', domains)).to.equal('sip:alice@example.com');
      expect(entityPresentity('pres:bob@example.com', domains)).to.equal('sip:bob@example.com');
      expect(entityPresentity('not a uri', domains)).to.equal(undefined);
    });
    it('names foreign watchers by their plain address of record', () => {
      expect(watcherOf(parseUri('sip:carol@other.example.org:5080;transport=tcp'), domains)).to.equal('sip:carol@other.example.org');
      expect(watcherOf(parseUri('sip:bob@127.0.0.1'), domains)).to.equal('sip:bob@example.com');
    });
  });

  describe('Expires', () => {
    const b = { min: 60, max: 3600, fallback: 3600 };
    it('clamps, refuses below the minimum, defaults, keeps zero', () => {
      expect(grantExpires(7200, b)).to.deep.equal({ ok: true, seconds: 3600 });
      expect(grantExpires(59, b)).to.deep.equal({ ok: false, minExpires: 60 });
      expect(grantExpires(60, b)).to.deep.equal({ ok: true, seconds: 60 });
      expect(grantExpires(undefined, b)).to.deep.equal({ ok: true, seconds: 3600 });
      expect(grantExpires(undefined, { ...b, max: 600 })).to.deep.equal({ ok: true, seconds: 600 });
      expect(grantExpires(0, b)).to.deep.equal({ ok: true, seconds: 0 });
    });
  });

  describe('Accept negotiation', () => {
    const offered = ['application/pidf+xml', 'application/xpidf+xml'];
    it('defaults without Accept, honours q and wildcards, and finds none acceptable', () => {
      expect(negotiateType(subscribe(), offered)).to.equal('application/pidf+xml');
      expect(negotiateType(subscribe({ accept: '' }), offered)).to.equal('application/pidf+xml');
      expect(negotiateType(subscribe({ accept: 'application/pidf+xml;q=0.2, application/xpidf+xml' }), offered)).to.equal('application/xpidf+xml');
      expect(negotiateType(subscribe({ accept: '*/*' }), offered)).to.equal('application/pidf+xml');
      expect(negotiateType(subscribe({ accept: 'application/pidf+xml;q=0, text/*' }), offered)).to.equal(undefined);
      expect(negotiateType(subscribe({ accept: 'multipart/related, application/rlmi+xml' }), offered)).to.equal(undefined);
      expect(negotiateType(subscribe({ accept: 'APPLICATION/PIDF+XML' }), offered)).to.equal('application/pidf+xml');
    });
  });

  describe('keyed queue', () => {
    it('runs one key at a time in arrival order, other keys alongside', async () => {
      const q = new KeyedQueue(10);
      const log: string[] = [];
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      const a1 = q.run('a', async () => {
        log.push('a1 start');
        await gate;
        log.push('a1 end');
      })!;
      const a2 = q.run('a', async () => {
        log.push('a2');
      })!;
      const b1 = q.run('b', async () => {
        log.push('b1');
      })!;
      await b1;
      expect(log).to.deep.equal(['a1 start', 'b1']);
      release();
      await Promise.all([a1, a2]);
      expect(log).to.deep.equal(['a1 start', 'b1', 'a1 end', 'a2']);
    });
    it('bounds the backlog of a key and goes on after a failure', async () => {
      const q = new KeyedQueue(2);
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      const p1 = q.run('k', () => gate)!;
      const p2 = q.run('k', async () => {
        throw new Error('boom');
      })!;
      expect(q.run('k', async () => {})).to.equal(undefined);
      release();
      await p1;
      await p2.then(
        () => expect.fail('should reject'),
        (e: Error) => expect(e.message).to.equal('boom'),
      );
      let ran = false;
      await q.run('k', async () => {
        ran = true;
      });
      expect(ran).to.equal(true);
    });
  });

  describe('composed documents', () => {
    const ALICE = 'sip:alice@example.com';
    function publication(docs: PresenceDocuments, tuple: string, publishedAtMs: number, noteBytes: number): Publication {
      const body = Buffer.from(
        `<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="${ALICE}"><tuple id="${tuple}"><status><basic>open</basic></status><note>${'n'.repeat(noteBytes)}</note></tuple></presence>`,
      );
      const parsed = docs.parse(body);
      if (!parsed.ok) throw new Error(parsed.reason);
      return { etag: tuple, presentity: ALICE, contentType: 'application/pidf+xml', body, document: parsed.document, tupleIds: [tuple], publishedAtMs, expiresAtMs: publishedAtMs + 60_000 };
    }
    const tuples = (bytes: Buffer) => [...bytes.toString().matchAll(/<tuple id="(\w+)"/g)].map((m) => m[1]);

    it('leaves the oldest publications out when together they outgrow the bound, never the newest', () => {
      const docs = new PresenceDocuments(undefined, { maxComposedBytes: 2500 });
      const pubs = [publication(docs, 'a', 1, 1000), publication(docs, 'b', 2, 1000), publication(docs, 'c', 3, 1000)];
      expect(docs.recompose(ALICE, pubs)).to.equal(true);
      expect(tuples(docs.full(ALICE))).to.deep.equal(['c', 'b']);
      expect(docs.full(ALICE).length).to.be.at.most(2500);
      // One document alone larger than the bound is still sent: it was accepted at PUBLISH.
      expect(docs.recompose(ALICE, [publication(docs, 'd', 4, 4000)])).to.equal(true);
      expect(tuples(docs.full(ALICE))).to.deep.equal(['d']);
      // Without a bound everything is composed.
      const all = new PresenceDocuments();
      all.recompose(ALICE, pubs);
      expect(tuples(all.full(ALICE))).to.deep.equal(['c', 'b', 'a']);
    });

    it('composes a presentity nobody watches at its first read, from its publications then', () => {
      let live: Publication[] = [];
      let reads = 0;
      const docs = new PresenceDocuments(undefined, { publicationsOf: () => (reads++, live) });
      live = [publication(docs, 'a', 1, 10)];
      docs.invalidate(ALICE, live);
      live = [...live, publication(docs, 'b', 2, 10)];
      docs.invalidate(ALICE, live);
      expect(reads).to.equal(0);
      expect(tuples(docs.full(ALICE))).to.deep.equal(['b', 'a']);
      expect(docs.version(ALICE)).to.equal(1);
      expect(reads).to.equal(1);
      // Read again without a change: nothing is composed again.
      docs.full(ALICE);
      expect(reads).to.equal(1);
      // The last publication gone: neutral at once, nothing left waiting.
      docs.invalidate(ALICE, []);
      expect(docs.version(ALICE)).to.equal(0);
      expect(docs.full(ALICE).toString()).to.not.include('<tuple id="a"');
      expect(reads).to.equal(1);
    });
  });

  describe('default authorizer', () => {
    it('follows presence.defaultPolicy, lets a presentity see itself, remembers decisions', () => {
      const open = new DefaultPresenceAuthorizer('open');
      expect(open.decideSubscription('sip:bob@example.com', 'sip:alice@example.com')).to.equal('allow');
      const confirm = new DefaultPresenceAuthorizer('confirm');
      expect(confirm.decideSubscription('sip:bob@example.com', 'sip:alice@example.com')).to.equal('confirm');
      expect(confirm.decideSubscription('sip:alice@example.com', 'sip:alice@example.com')).to.equal('allow');
      confirm.recordDecision('sip:bob@example.com', 'sip:alice@example.com', 'polite-block');
      expect(confirm.decideSubscription('sip:bob@example.com', 'sip:alice@example.com')).to.equal('polite-block');
      expect(confirm.authorizePublish()).to.equal(true);
    });
  });
});
