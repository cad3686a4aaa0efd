import { expect } from 'chai';
import { migrate } from '../../src/store/migrations.js';
import { AccountExistsError, AccountRepository } from '../../src/store/repositories/accounts.js';
import { PresenceRuleRepository } from '../../src/store/repositories/presence-rules.js';
import { PublicationRepository } from '../../src/store/repositories/publications.js';
import { ResourceListRepository } from '../../src/store/repositories/resource-lists.js';
import { RegistrationRepository } from '../../src/store/repositories/registrations.js';
import { StoredMessageExistsError, StoredMessageRepository } from '../../src/store/repositories/stored-messages.js';
import { SubscriptionRepository } from '../../src/store/repositories/subscriptions.js';
import { createSoftStateWriter, type SoftStateKinds } from '../../src/store/soft-state.js';
import type { WriteBehind } from '../../src/store/write-behind.js';
import { EPOCH, publication, registration, storedMessage, subscription } from './fixtures.js';
import type { WholeTableReader } from '../../src/store/database.js';
import { PAGE_ROWS } from '../../src/store/sql-values.js';
import { SQLITE_DATA_DIR_TARGET, TARGETS, type TestDb } from './helpers.js';

const MD5 = 'a'.repeat(32);
const SHA = 'b'.repeat(64);

for (const [target, where] of [...TARGETS.map((t) => [t, ''] as const), [SQLITE_DATA_DIR_TARGET, ' in a data directory'] as const]) {
  describe(`store: repositories on ${target.name}${where}`, function () {
    this.timeout(30_000);
    let t: TestDb;
    let wb: WriteBehind<SoftStateKinds>;

    before(async () => {
      t = await target.open();
      await migrate(t.db);
      // Never fires in these tests: they flush by hand.
      wb = createSoftStateWriter(t.db, { schedule: () => () => undefined });
    });

    after(async () => {
      await t?.cleanup();
    });

    describe('accounts', () => {
      let accounts: AccountRepository;
      before(() => {
        accounts = new AccountRepository(t.db);
      });

      it('creates, gets, lists and deletes', async () => {
        const a = await accounts.create({ domain: 'example.com', username: 'alice', displayName: 'Alice', ha1Md5: MD5.toUpperCase(), ha1Sha256: SHA });
        expect(a).to.include({ domain: 'example.com', username: 'alice', displayName: 'Alice', ha1Md5: MD5, ha1Sha256: SHA });
        expect(a.createdAtMs).to.be.a('number');
        await accounts.create({ domain: 'example.com', username: 'bob' });
        await accounts.create({ domain: 'example.org', username: 'carol' });

        expect(await accounts.get('example.com', 'alice')).to.deep.equal(a);
        const bob = await accounts.get('example.com', 'bob');
        expect(bob).to.not.have.property('ha1Md5');
        expect(bob).to.not.have.property('displayName');
        expect(await accounts.get('example.com', 'nobody')).to.equal(undefined);

        expect((await accounts.list()).map((x) => `${x.username}@${x.domain}`)).to.deep.equal(['alice@example.com', 'bob@example.com', 'carol@example.org']);
        expect((await accounts.list({ domain: 'example.com' })).map((x) => x.username)).to.deep.equal(['alice', 'bob']);
        expect((await accounts.list({ limit: 1, after: { domain: 'example.com', username: 'alice' } })).map((x) => x.username)).to.deep.equal(['bob']);

        expect(await accounts.delete('example.org', 'carol')).to.equal(true);
        expect(await accounts.delete('example.org', 'carol')).to.equal(false);
      });

      it('refuses a second account with the same domain and username', async () => {
        let failed: unknown;
        try {
          await accounts.create({ domain: 'example.com', username: 'alice' });
        } catch (err) {
          failed = err;
        }
        expect(failed).to.be.instanceOf(AccountExistsError);
      });

      it('sets password hashes, and refuses what is not a hex digest', async () => {
        expect(await accounts.setPasswordHashes('example.com', 'bob', { ha1Md5: MD5, ha1Sha256: SHA })).to.equal(true);
        expect(await accounts.get('example.com', 'bob')).to.include({ ha1Md5: MD5, ha1Sha256: SHA });
        expect(await accounts.setPasswordHashes('example.com', 'nobody', { ha1Md5: MD5, ha1Sha256: SHA })).to.equal(false);
        let failed: unknown;
        try {
          await accounts.setPasswordHashes('example.com', 'bob', { ha1Md5: 'secret', ha1Sha256: SHA });
        } catch (err) {
          failed = err;
        }
        expect(failed).to.be.instanceOf(Error);
      });
    });

    describe('presence rules', () => {
      it('sets, replaces, lists and deletes', async () => {
        const rules = new PresenceRuleRepository(t.db);
        await rules.set({ presentity: 'sip:alice@example.com', watcher: 'sip:bob@example.com', action: 'confirm' });
        await rules.set({ presentity: 'sip:alice@example.com', watcher: '*@spam.example', action: 'block' });
        await rules.set({ presentity: 'sip:carol@example.com', watcher: 'sip:bob@example.com', action: 'allow' });
        await rules.set({ presentity: 'sip:alice@example.com', watcher: 'sip:bob@example.com', action: 'polite-block' });
        expect(await rules.listFor('sip:alice@example.com')).to.deep.equal([
          { presentity: 'sip:alice@example.com', watcher: '*@spam.example', action: 'block' },
          { presentity: 'sip:alice@example.com', watcher: 'sip:bob@example.com', action: 'polite-block' },
        ]);
        expect(await rules.delete('sip:alice@example.com', '*@spam.example')).to.equal(true);
        expect(await rules.delete('sip:alice@example.com', '*@spam.example')).to.equal(false);
        expect(await rules.listFor('sip:alice@example.com')).to.have.length(1);
        expect(await rules.listFor('sip:nobody@example.com')).to.deep.equal([]);
      });
    });

    describe('resource lists (schemas/sql/004)', () => {
      it('sets, replaces, gets, lists and deletes; refuses a name the list URI could not carry', async () => {
        const lists = new ResourceListRepository(t.db);
        await lists.set({ owner: 'sip:alice@example.com', name: 'presence', document: '<resource-lists/>' });
        await lists.set({ owner: 'sip:alice@example.com', name: 'work', displayName: 'Work', document: '<a/>' });
        await lists.set({ owner: 'sip:alice@example.com', name: 'work', displayName: 'Office', document: '<b/>' });
        await lists.set({ owner: 'sip:bob@example.com', name: 'presence', document: '<c/>' });
        const mine = await lists.listFor('sip:alice@example.com');
        expect(mine.map((l) => [l.name, l.displayName, l.document])).to.deep.equal([['presence', undefined, '<resource-lists/>'], ['work', 'Office', '<b/>']]);
        expect(mine[0]!.updatedAtMs).to.be.a('number');
        expect((await lists.get('sip:bob@example.com', 'presence'))?.document).to.equal('<c/>');
        expect(await lists.get('sip:bob@example.com', 'work')).to.equal(undefined);
        let refused = false;
        await lists.set({ owner: 'sip:alice@example.com', name: 'bad name', document: '<d/>' }).catch(() => (refused = true));
        expect(refused).to.equal(true);
        expect(await lists.delete('sip:alice@example.com', 'work')).to.equal(true);
        expect(await lists.delete('sip:alice@example.com', 'work')).to.equal(false);
        expect(await lists.deleteOwner('sip:alice@example.com')).to.equal(1);
        expect(await lists.listFor('sip:alice@example.com')).to.deep.equal([]);
      });
    });

    if (where) {
      it('reads whole tables on this thread, through a connection of its own', () => {
        expect((t.db as Partial<WholeTableReader>).readWholeTable).to.be.a('function');
      });
    }

    describe('publications', () => {
      it('gives back any bytes of a body, UTF-8 or not', async () => {
        const pubs = new PublicationRepository(t.db, wb.queue('publication'));
        const odd = publication(40, { etag: 'bytes-40', body: Buffer.from([0xff, 0x00, 0xfe, 0xe2, 0x82, 0x3c, 0x61]) });
        const empty = publication(41, { etag: 'bytes-41', body: Buffer.alloc(0) });
        const text = publication(42, { etag: 'bytes-42', body: Buffer.from('<note>Grüße \u{1F600}</note>') });
        for (const p of [odd, empty, text]) pubs.upsert(p);
        await wb.flush();
        const back = new Map((await pubs.loadLive(EPOCH)).map((p) => [p.etag, p]));
        for (const p of [odd, empty, text]) {
          expect(Buffer.isBuffer(back.get(p.etag)!.body)).to.equal(true);
          expect(back.get(p.etag)!.body.equals(p.body)).to.equal(true);
        }
        for (const p of [odd, empty, text]) pubs.delete(p.etag);
        await wb.flush();
      });

      it('round-trips through the write-behind, live ones only', async () => {
        const pubs = new PublicationRepository(t.db, wb.queue('publication'));
        const p1 = publication(1);
        const p2 = publication(2, { version: 4 });
        const gone = publication(3, { expiresAtMs: EPOCH - 1000 });
        expect(pubs.upsert(p1)).to.equal(true);
        expect(pubs.upsert(p2)).to.equal(true);
        expect(pubs.upsert(gone)).to.equal(true);
        await wb.flush();
        const live = await pubs.loadLive(EPOCH);
        expect(live).to.have.length(2);
        const byEtag = new Map(live.map((p) => [p.etag, p]));
        expect(byEtag.get('etag-1')).to.deep.equal(p1);
        expect(byEtag.get('etag-2')).to.deep.equal(p2);
        expect(Buffer.isBuffer(byEtag.get('etag-1')!.body)).to.equal(true);

        // A refresh replaces the entity-tag: new row, old one removed.
        const refreshed = { ...p1, etag: 'etag-1b', expiresAtMs: EPOCH + 7_200_000 };
        pubs.upsert(refreshed);
        pubs.delete('etag-1');
        await wb.flush();
        expect((await pubs.loadLive(EPOCH)).map((p) => p.etag).sort()).to.deep.equal(['etag-1b', 'etag-2']);
        expect(await pubs.deleteExpired(EPOCH)).to.equal(1);
        expect(await pubs.loadLive(EPOCH + 3_600_000)).to.deep.equal([{ ...refreshed, version: 1 }]);
      });

      it('reads back every live row once over several pages, updated and expired rows among them', async () => {
        const pubs = new PublicationRepository(t.db, wb.queue('publication'));
        const n = PAGE_ROWS * 2 + 37;
        // Inserted in an order unlike the keys' (PostgreSQL pages by primary key, SQLite by rowid).
        const paged = (k: number, over: Parameters<typeof publication>[1] = {}) => publication(k, { etag: `paged-${k}`, ...over });
        for (let i = 0; i < n; i++) pubs.upsert(paged((i * 7919) % n, { expiresAtMs: i % 10 === 0 ? EPOCH - 1 : EPOCH + 60_000 }));
        await wb.flush();
        // An update rewrites a row in place (its rowid stays).
        pubs.upsert(paged(5, { version: 9, expiresAtMs: EPOCH + 60_000 }));
        await wb.flush();
        const live = (await pubs.loadLive(EPOCH)).filter((p) => p.etag.startsWith('paged-'));
        const expired = new Set(Array.from({ length: n }, (_, i) => i).filter((i) => i % 10 === 0).map((i) => `paged-${(i * 7919) % n}`));
        expired.delete('paged-5');
        expect(new Set(live.map((p) => p.etag)).size).to.equal(live.length);
        expect(live.length).to.equal(n - expired.size);
        expect(live.find((p) => p.etag === 'paged-5')?.version).to.equal(9);
        expect(live.some((p) => expired.has(p.etag))).to.equal(false);
      });
    });

    describe('subscriptions', () => {
      it('round-trips every field of the record and its dialog', async () => {
        const subs = new SubscriptionRepository(t.db, wb.queue('subscription'));
        const s1 = subscription(1, { eventId: 'x1', watcherDisplayName: 'Watcher One', status: 'pending', view: 'polite-block', lastEvent: 'approved', authorized: false });
        const s2 = subscription(2, { eventPackage: 'presence.winfo' });
        const noConn = subscription(3);
        const s3 = { ...noConn, dialog: { ...noConn.dialog, routeSet: [], secure: true, flow: { protocol: 'udp' as const, remoteAddress: '::1', remotePort: 5062, localAddress: '::1', localPort: 5060 } } };
        for (const s of [s1, s2, s3]) expect(subs.upsert(s)).to.equal(true);
        await wb.flush();
        const live = await subs.loadLive(EPOCH);
        expect(live).to.deep.equal([s1, s2, s3].sort((a, b) => a.resource.localeCompare(b.resource) || a.createdAtMs - b.createdAtMs));

        // A NOTIFY moved the local CSeq: the newest state is what is stored.
        subs.upsert({ ...s2, documentVersion: 9, dialog: { ...s2.dialog, localSeq: 77 } });
        subs.delete('sub-1');
        await wb.flush();
        const after = await subs.loadLive(EPOCH);
        expect(after.map((s) => s.id).sort()).to.deep.equal(['sub-2', 'sub-3']);
        const s2b = after.find((s) => s.id === 'sub-2')!;
        expect(s2b.documentVersion).to.equal(9);
        expect(s2b.dialog.localSeq).to.equal(77);
        expect(await subs.loadLive(EPOCH + 3_600_000)).to.deep.equal([]);
        expect(await subs.deleteExpired(EPOCH + 3_600_000)).to.equal(2);
      });
    });

    describe('registrations', () => {
      it('round-trips bindings keyed by AoR and binding key', async () => {
        const regs = new RegistrationRepository(t.db, wb.queue('registration'));
        const r1 = registration(1);
        const r2 = registration(11); // same AoR as r1, another binding
        const bare = registration(2);
        const r3 = {
          aor: bare.aor,
          key: bare.key,
          contact: bare.contact,
          params: [],
          callId: bare.callId,
          cseq: bare.cseq,
          expiresAt: bare.expiresAt,
          updatedAt: bare.updatedAt,
          path: [],
          flow: { ...bare.flow, protocol: 'ws' as const, connectionId: 12 },
          reachable: false,
        };
        for (const r of [r1, r2, r3]) expect(regs.upsert(r)).to.equal(true);
        await wb.flush();
        const live = await regs.loadLive(EPOCH);
        const byKey = new Map(live.map((r) => [`${r.aor} ${r.key}`, r]));
        expect(live).to.have.length(3);
        expect(byKey.get(`${r1.aor} ${r1.key}`)).to.deep.equal(r1);
        expect(byKey.get(`${r2.aor} ${r2.key}`)).to.deep.equal(r2);
        expect(byKey.get(`${r3.aor} ${r3.key}`)).to.deep.equal(r3);

        // Deleting one binding of an AoR leaves the other (the composite key matters).
        regs.delete({ aor: r1.aor, key: r1.key });
        await wb.flush();
        expect((await regs.loadLive(EPOCH)).map((r) => r.key).sort()).to.deep.equal([r2.key, r3.key].sort());
        expect(await regs.deleteExpired(EPOCH + 3_600_000)).to.equal(2);
      });
    });

    describe('stored messages', () => {
      let msgs: StoredMessageRepository;
      before(() => {
        msgs = new StoredMessageRepository(t.db);
      });

      it('inserts durably and lists a recipient’s messages oldest first', async () => {
        // Same received time for 2 and 3: stored order breaks the tie.
        const m3 = storedMessage(3, { receivedAt: EPOCH + 2000 });
        const m1 = storedMessage(1);
        const m2 = storedMessage(2, { receivedAt: EPOCH + 2000 });
        const other = storedMessage(4, { recipient: 'sip:carol@example.com' });
        const bare = storedMessage(5);
        const m5 = {
          id: bare.id,
          recipient: bare.recipient,
          from: bare.from,
          to: bare.to,
          callId: bare.callId,
          cseq: bare.cseq,
          headers: [],
          body: Buffer.alloc(0),
          receivedAt: EPOCH + 9000,
          expiresAt: bare.expiresAt,
        };
        for (const m of [m1, m2, m3, other, m5]) await msgs.insert(m);
        const list = await msgs.listFor('sip:bob@example.com', EPOCH);
        expect(list.map((m) => m.id)).to.deep.equal(['msg-1', 'msg-2', 'msg-3', 'msg-5']);
        expect(list[0]).to.deep.equal(m1);
        expect(list[3]).to.deep.equal(m5);
        expect(Buffer.isBuffer(list[0]!.body)).to.equal(true);
        expect(list[0]!.body.equals(m1.body)).to.equal(true);
      });

      it('refuses a duplicate id', async () => {
        let failed: unknown;
        try {
          await msgs.insert(storedMessage(1));
        } catch (err) {
          failed = err;
        }
        expect(failed).to.be.instanceOf(StoredMessageExistsError);
      });

      it('counts messages and bytes, leaves out expired ones, deletes', async () => {
        const before = await msgs.countAndBytesFor('sip:bob@example.com', EPOCH);
        const bodies = [1, 2, 3].map((i) => storedMessage(i).body.length).reduce((a, b) => a + b, 0);
        expect(before).to.deep.equal({ count: 4, bytes: bodies });
        expect(await msgs.countAndBytesFor('sip:nobody@example.com', EPOCH)).to.deep.equal({ count: 0, bytes: 0 });
        const asked = ['sip:nobody@example.com', 'sip:carol@example.com', 'sip:bob@example.com'];
        expect((await msgs.recipientsWithMessages(asked, EPOCH)).sort()).to.deep.equal(['sip:bob@example.com', 'sip:carol@example.com']);
        // Many recipients take more than one statement; an expired message does not count.
        const many = Array.from({ length: 1200 }, (_, i) => `sip:u${i}@example.com`).concat('sip:carol@example.com');
        expect(await msgs.recipientsWithMessages(many, EPOCH)).to.deep.equal(['sip:carol@example.com']);
        expect(await msgs.recipientsWithMessages(['sip:carol@example.com'], storedMessage(4).expiresAt)).to.deep.equal([]);
        expect(await msgs.recipientsWithMessages([], EPOCH)).to.deep.equal([]);

        await msgs.insert(storedMessage(6, { expiresAt: EPOCH + 500 }));
        expect((await msgs.listFor('sip:bob@example.com', EPOCH + 500)).map((m) => m.id)).to.not.include('msg-6');
        expect((await msgs.countAndBytesFor('sip:bob@example.com', EPOCH + 500)).count).to.equal(4);
        expect(await msgs.summary(EPOCH)).to.deep.equal([
          { recipient: 'sip:bob@example.com', count: 5, bytes: bodies + storedMessage(6).body.length },
          { recipient: 'sip:carol@example.com', count: 1, bytes: storedMessage(4).body.length },
        ]);
        expect(await msgs.deleteExpired(EPOCH + 500)).to.equal(1);

        expect(await msgs.delete('msg-2')).to.equal(true);
        expect(await msgs.delete('msg-2')).to.equal(false);
        expect((await msgs.listFor('sip:bob@example.com', EPOCH)).map((m) => m.id)).to.deep.equal(['msg-1', 'msg-3', 'msg-5']);
      });
    });
  });
}
