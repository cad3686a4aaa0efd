import { expect } from 'chai';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dbCommand } from '../../src/cli/db-commands.js';
import { ControlClient } from '../../src/control/control-client.js';
import { ControlServer } from '../../src/control/control-server.js';
import { StoreAdminOperations, type AdminError } from '../../src/control/operations.js';
import { PresenceRuleStore } from '../../src/presence/rules/rule-store.js';
import { migrate } from '../../src/store/migrations.js';
import { openStore, type Store } from '../../src/store/open-store.js';
import { openPglite } from '../../src/store/pglite-driver.js';
import { AccountRepository } from '../../src/store/repositories/accounts.js';
import { PresenceRuleRepository } from '../../src/store/repositories/presence-rules.js';
import { PublicationRepository } from '../../src/store/repositories/publications.js';
import { RegistrationRepository } from '../../src/store/repositories/registrations.js';
import { StoredMessageRepository } from '../../src/store/repositories/stored-messages.js';
import { RoomRepository } from '../../src/store/repositories/rooms.js';
import { SubscriptionRepository } from '../../src/store/repositories/subscriptions.js';
import { createSoftStateWriter } from '../../src/store/soft-state.js';
import { SQLITE_FILE, openSqlite } from '../../src/store/sqlite-driver.js';
import { TransferError, exportToFile, importStore } from '../../src/store/transfer.js';
import { XcapDocumentRepository } from '../../src/store/repositories/xcap-documents.js';
import type { Database } from '../../src/store/database.js';
import { EPOCH, publication, registration, storedMessage, subscription } from './fixtures.js';
import { TARGETS, rowCount, silentLogger, type TestDb } from './helpers.js';

const MD5 = 'a'.repeat(32);
const SHA = 'b'.repeat(64);

/** One row or more of every table, through the repositories. */
async function fill(db: Database): Promise<void> {
  const accounts = new AccountRepository(db);
  await accounts.create({ domain: 'example.com', username: 'alice', displayName: 'Alice', ha1Md5: MD5, ha1Sha256: SHA });
  await accounts.create({ domain: 'example.com', username: 'bob' });
  await new PresenceRuleRepository(db).set({ presentity: 'sip:alice@example.com', watcher: 'sip:bob@example.com', action: 'allow' });
  await new PresenceRuleStore(db).set({
    presentity: 'sip:bob@example.com',
    watcher: '*@example.org',
    action: 'polite-block',
    transformations: { hideNotes: true, hideDevices: false, basicOnly: true },
  });
  const xcap = new XcapDocumentRepository(db);
  await xcap.put({ auid: 'pidf-manipulation', owner: 'sip:alice@example.com', path: 'index', content: '<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:alice@example.com"/>', etag: '"e1"' });
  await xcap.put({ auid: 'pres-rules', owner: 'sip:bob@example.com', path: 'index', content: '<ruleset xmlns="urn:ietf:params:xml:ns:common-policy"/>\n', etag: '"e2"' });
  const messages = new StoredMessageRepository(db);
  for (let i = 0; i < 3; i++) await messages.insert(storedMessage(i));
  const rooms = new RoomRepository(db);
  await rooms.insertRoom({ uri: 'sip:lobby@example.com', owner: 'sip:alice@example.com', topic: 'café', persistent: true, membersOnly: false, createdAt: EPOCH });
  await rooms.upsertMember('sip:lobby@example.com', { member: 'sip:alice@example.com', cpim: true, joinedAt: EPOCH + 1 });
  await rooms.upsertMember('sip:lobby@example.com', { member: 'sip:bob@example.com', cpim: false, joinedAt: EPOCH + 2 });
  await rooms.insertBan('sip:lobby@example.com', { member: 'sip:eve@example.com', bannedBy: 'sip:alice@example.com', bannedAt: EPOCH + 3 });
  for (let i = 0; i < 3; i++) await rooms.appendHistory('sip:lobby@example.com', { sender: 'sip:bob@example.com', contentType: 'text/plain', body: Buffer.from([0, 255, i]), receivedAt: EPOCH + 10 + i }, 10);
  const wb = createSoftStateWriter(db, { schedule: () => () => undefined });
  // More than a page of the export (1000) and of an import statement (100).
  for (let i = 0; i < 1100; i++) wb.put('subscription', `sub-${i}`, subscription(i));
  for (let i = 0; i < 5; i++) wb.put('publication', `etag-${i}`, publication(i));
  for (let i = 0; i < 12; i++) wb.put('registration', { aor: registration(i).aor, key: registration(i).key }, registration(i));
  await wb.flush();
}

function sortedBy<T>(items: T[], key: (item: T) => string): T[] {
  return items.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

/** What the repositories read back: equal across drivers when the transfer kept everything. */
async function contents(db: Database): Promise<unknown> {
  const wb = createSoftStateWriter(db, { schedule: () => () => undefined });
  return {
    accounts: (await new AccountRepository(db).list()).map((a) => ({ ...a, createdAtMs: typeof a.createdAtMs })),
    rules: [...(await new PresenceRuleStore(db).listFor('sip:alice@example.com')), ...(await new PresenceRuleStore(db).listFor('sip:bob@example.com'))],
    messages: await new StoredMessageRepository(db).listFor('sip:bob@example.com', EPOCH),
    rooms: await new RoomRepository(db).loadAll(10),
    xcap: [...(await new XcapDocumentRepository(db).listByAuid('pidf-manipulation', 10)), ...(await new XcapDocumentRepository(db).listByAuid('pres-rules', 10))],
    // Soft state comes back in no particular order (SQLite: its rowids, which an import renumbers).
    publications: sortedBy(await new PublicationRepository(db, wb.queue('publication')).loadLive(EPOCH), (p) => p.etag),
    subscriptions: sortedBy(await new SubscriptionRepository(db, wb.queue('subscription')).loadLive(EPOCH), (s) => s.id),
    registrations: sortedBy(await new RegistrationRepository(db, wb.queue('registration')).loadLive(EPOCH), (r) => `${r.aor} ${r.key}`),
  };
}

describe('store: db export and import', function () {
  this.timeout(60_000);
  let dir: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'sp-transfer-'));
  });

  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  for (const from of TARGETS) {
    for (const to of TARGETS) {
      it(`moves every row from ${from.name} to ${to.name}, the repositories reading back the same`, async () => {
        const file = join(dir, `${from.name}-${to.name}.jsonl`);
        let a: TestDb | undefined;
        let b: TestDb | undefined;
        try {
          a = await from.open();
          await migrate(a.db);
          await fill(a.db);
          expect(await exportToFile(a.db, file)).to.equal(2 + 2 + 2 + 3 + 1 + 2 + 1 + 3 + 5 + 1100 + 12);
          const lines = readFileSync(file, 'utf8').trim().split('\n');
          expect(JSON.parse(lines[0]!)).to.include({ format: 'simple-presence-export', version: 1 });
          expect(JSON.parse(lines.at(-1)!)).to.deep.equal({ end: true, rows: 1133 });
          b = await to.open();
          await migrate(b.db);
          expect(await importStore(b.db, file)).to.equal(1133);
          expect(await contents(b.db)).to.deep.equal(await contents(a.db));
          // A new stored message after the import gets a fresh id (the sequence moved on).
          await new StoredMessageRepository(b.db).insert(storedMessage(9));
          expect(await rowCount(b.db, 'stored_messages')).to.equal(4);
          // Never into a store that has rows.
          const err = await importStore(b.db, file).catch((e: unknown) => e);
          expect(err).to.be.instanceOf(TransferError);
          expect((err as Error).message).to.match(/not empty/);
        } finally {
          await a?.cleanup();
          await b?.cleanup();
        }
      });
    }
  }

  it('refuses a file cut short, or not an export, and leaves the store empty', async () => {
    const src = await openSqlite();
    const dst = await openSqlite();
    try {
      await migrate(src);
      await fill(src);
      const whole = join(dir, 'whole.jsonl');
      await exportToFile(src, whole);
      const lines = readFileSync(whole, 'utf8').trim().split('\n');
      await migrate(dst);
      const cut = join(dir, 'cut.jsonl');
      writeFileSync(cut, `${lines.slice(0, -1).join('\n')}\n`);
      expect(((await importStore(dst, cut).catch((e: unknown) => e)) as Error).message).to.match(/without its end line/);
      writeFileSync(cut, `${lines.slice(0, -2).join('\n')}\n${lines.at(-1)}\n`);
      expect(((await importStore(dst, cut).catch((e: unknown) => e)) as Error).message).to.match(/says 1133 rows, the file has 1132/);
      writeFileSync(cut, '{"hello":1}\n');
      expect(((await importStore(dst, cut).catch((e: unknown) => e)) as Error).message).to.match(/not a simple-presence-export/);
      expect(await rowCount(dst, 'subscriptions')).to.equal(0);
      expect(await rowCount(dst, 'accounts')).to.equal(0);
      // An export never overwrites a file.
      expect(((await exportToFile(src, whole).catch((e: unknown) => e)) as NodeJS.ErrnoException).code).to.equal('EEXIST');
    } finally {
      await src.close();
      await dst.close();
    }
  });
});

describe('store: db backup of the embedded store while it runs', function () {
  this.timeout(60_000);
  let dir: string;
  let store: Store;
  let server: ControlServer;
  const env = { DATA_DIR: process.env.DATA_DIR, DATABASE_URL: process.env.DATABASE_URL };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sp-backup-'));
    store = await openStore({ dataDir: join(dir, 'data'), logger: silentLogger() });
    const ops = new StoreAdminOperations({ accounts: store.accounts, rules: new PresenceRuleStore(store.db), domain: 'example.com', realm: 'example.com', database: store.db });
    server = new ControlServer(join(dir, 'data', 'control.sock'), ops, silentLogger());
    await server.start();
  });

  after(async () => {
    await server?.stop();
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
    for (const [k, v] of Object.entries(env)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });

  it('copies a consistent store through the control socket while writes go on; the copy opens as a data directory', async () => {
    await store.accounts.create({ domain: 'example.com', username: 'alice' });
    for (let i = 0; i < 200; i++) store.subscriptions.upsert(subscription(i));
    await store.softState.flush();
    // Writes racing the backup: each lands wholly before or after it.
    for (let i = 200; i < 400; i++) store.subscriptions.upsert(subscription(i));
    const flushing = store.softState.flush();
    const client = await ControlClient.connect(join(dir, 'data', 'control.sock'));
    const file = join(dir, 'copy.db');
    try {
      const [b] = await Promise.all([client.backup(file), flushing]);
      expect(b.file).to.equal(file);
      expect(b.bytes).to.be.greaterThan(0);
      // Never over an existing file; only absolute paths (the server's working directory is not the CLI's).
      expect(await client.backup(file).catch((e: unknown) => (e as AdminError).code)).to.equal('invalid');
      expect(await client.backup('relative.db').catch((e: unknown) => (e as AdminError).message)).to.match(/absolute path/);
    } finally {
      client.close();
    }
    const restored = join(dir, 'restored');
    mkdirSync(restored);
    copyFileSync(file, join(restored, SQLITE_FILE));
    const copy = await openStore({ dataDir: restored, logger: silentLogger() });
    try {
      expect(copy.migrated).to.deep.equal([]);
      expect(await copy.accounts.get('example.com', 'alice')).to.include({ username: 'alice' });
      expect([200, 400]).to.include(await rowCount(copy.db, 'subscriptions'));
    } finally {
      await copy.close();
    }
  });

  it('`simple-presence db backup FILE` and `db export FILE` go through the running server', async () => {
    process.env.DATA_DIR = join(dir, 'data');
    delete process.env.DATABASE_URL;
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      // Relative to the CLI's working directory.
      expect(await dbCommand(['backup', 'cli-copy.db'])).to.equal(0);
      expect(existsSync(join(dir, 'cli-copy.db'))).to.equal(true);
      expect(await dbCommand(['export', 'cli-export.jsonl'])).to.equal(0);
      expect(readFileSync(join(dir, 'cli-export.jsonl'), 'utf8')).to.contain('"username":"alice"');
      expect(await dbCommand(['backup'])).to.equal(2);
    } finally {
      process.chdir(cwd);
    }
  });
});

describe('store: db convert-pglite', function () {
  // PGlite's initdb takes seconds, more on a loaded machine.
  this.timeout(180_000);
  const env = { DATA_DIR: process.env.DATA_DIR, DATABASE_URL: process.env.DATABASE_URL };
  let dir: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'sp-convert-'));
  });

  after(() => {
    rmSync(dir, { recursive: true, force: true });
    for (const [k, v] of Object.entries(env)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });

  it("turns an earlier release's PGlite data directory into SQLite, keeping every row and PGlite's files aside", async () => {
    const data = join(dir, 'data');
    const old = await openPglite({ dataDir: data, logger: silentLogger() });
    try {
      await migrate(old);
      await fill(old);
    } finally {
      await old.close();
    }
    writeFileSync(join(data, 'auth-secret'), 'kept\n');
    const before = await (async () => {
      const p = await openPglite({ dataDir: data, logger: silentLogger() });
      try {
        return await contents(p);
      } finally {
        await p.close();
      }
    })();
    // The server refuses it until converted.
    const refused = await openStore({ dataDir: data, logger: silentLogger() }).catch((e: unknown) => e as Error);
    expect((refused as Error).message).to.match(/simple-presence db convert-pglite/);

    process.env.DATA_DIR = data;
    delete process.env.DATABASE_URL;
    expect(await dbCommand(['convert-pglite'])).to.equal(0);
    expect(readdirSync(data).sort()).to.include.members(['auth-secret', 'pglite-old', SQLITE_FILE]);
    expect(existsSync(join(data, 'PG_VERSION'))).to.equal(false);
    expect(existsSync(join(data, 'pglite-old', 'PG_VERSION'))).to.equal(true);
    const now = await openStore({ dataDir: data, logger: silentLogger() });
    try {
      expect(now.db.driver).to.equal('sqlite');
      expect(await contents(now.db)).to.deep.equal(before);
    } finally {
      await now.close();
    }
    // Nothing left to convert.
    expect(await dbCommand(['convert-pglite'])).to.equal(1);
  });
});

