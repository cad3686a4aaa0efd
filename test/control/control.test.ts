import { expect } from 'chai';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { adminCommand, type AdminIo } from '../../src/cli/admin-commands.js';
import { ControlClient, NoServerError } from '../../src/control/control-client.js';
import { ControlServer } from '../../src/control/control-server.js';
import { AdminError, StoreAdminOperations } from '../../src/control/operations.js';
import { PresenceRuleStore } from '../../src/presence/rules/rule-store.js';
import { openStore, type Store } from '../../src/store/index.js';

const log = pino({ level: 'silent' });

async function rejection(p: Promise<unknown>): Promise<AdminError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof AdminError) return err;
    throw err;
  }
  throw new Error('expected a rejection');
}

describe('control channel and admin operations', function () {
  this.timeout(30_000);
  let store: Store;
  let dir: string;
  let server: ControlServer;
  let client: ControlClient;
  const changed: Array<[string, string]> = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sp-ctl-'));
    store = await openStore({ logger: log });
    const ops = new StoreAdminOperations({
      accounts: store.accounts,
      rules: new PresenceRuleStore(store.db),
      domain: 'Example.com',
      realm: 'example.com',
      effects: { rulesChanged: (p, w) => (changed.push([p, w]), 1) },
    });
    server = new ControlServer(join(dir, 'control.sock'), ops, log);
    await server.start();
    client = await ControlClient.connect(join(dir, 'control.sock'));
  });

  after(async () => {
    client?.close();
    await server?.stop();
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('creates the socket owner-only and refuses a second server on it', async () => {
    expect(statSync(join(dir, 'control.sock')).mode & 0o777).to.equal(0o600);
    const second = new ControlServer(join(dir, 'control.sock'), {} as never, log);
    let failed = false;
    await second.start().catch(() => (failed = true));
    expect(failed).to.equal(true);
  });

  it('adds, lists, re-keys and deletes users; stores HA1 digests, never the password', async () => {
    const u = await client.addUser({ username: 'alice', password: 'secret', displayName: 'Alice' });
    expect(u).to.include({ aor: 'sip:alice@example.com', hasPassword: true, displayName: 'Alice' });
    expect((await rejection(client.addUser({ username: 'alice', password: 'x' }))).code).to.equal('exists');
    expect((await rejection(client.addUser({ username: 'bad name', password: 'x' }))).code).to.equal('invalid');
    expect((await rejection(client.addUser({ username: 'bob', password: '' }))).code).to.equal('invalid');
    expect((await client.listUsers()).map((x) => x.username)).to.deep.equal(['alice']);
    const before = await store.accounts.get('example.com', 'alice');
    await client.setPassword('sip:alice@example.com', 'other');
    const after = await store.accounts.get('example.com', 'alice');
    expect(after!.ha1Sha256).to.match(/^[0-9a-f]{64}$/).and.not.equal(before!.ha1Sha256);
    const row = await store.db.query<Record<string, unknown>>('SELECT * FROM accounts');
    expect(JSON.stringify(row.rows)).to.not.contain('other').and.not.contain('secret');
    expect((await rejection(client.setPassword('nobody', 'x'))).code).to.equal('not-found');
    await client.deleteUser('alice');
    expect((await rejection(client.deleteUser('alice'))).code).to.equal('not-found');
  });

  it('sets, lists and deletes rules with canonical watchers and transformations, telling live state', async () => {
    changed.length = 0;
    const r = await client.setRule({ presentity: 'carol', watcher: 'Dan@Other.org', action: 'polite-block' });
    expect(r.rule).to.deep.include({ presentity: 'sip:carol@example.com', watcher: 'sip:Dan@other.org', action: 'polite-block' });
    await client.setRule({ presentity: 'carol', watcher: '*@Other.org', action: 'allow', transformations: { basicOnly: true } });
    await client.setRule({ presentity: 'carol', watcher: '*', action: 'block' });
    const rules = await client.listRules('carol@example.com');
    expect(rules.map((x) => [x.watcher, x.action, x.transformations.basicOnly])).to.deep.equal([
      ['*', 'block', false],
      ['*@other.org', 'allow', true],
      ['sip:Dan@other.org', 'polite-block', false],
    ]);
    expect(changed).to.deep.equal([
      ['sip:carol@example.com', 'sip:Dan@other.org'],
      ['sip:carol@example.com', '*@other.org'],
      ['sip:carol@example.com', '*'],
    ]);
    expect((await rejection(client.setRule({ presentity: 'carol', watcher: 'x', action: 'maybe' as never }))).code).to.equal('invalid');
    expect((await rejection(client.setRule({ presentity: 'carol@elsewhere.net', watcher: 'x', action: 'allow' }))).code).to.equal('invalid');
    await client.deleteRule('carol', '*');
    expect((await rejection(client.deleteRule('carol', '*'))).code).to.equal('not-found');
  });

  it('answers a line that is not JSON or names no operation with an error, and stays up', async () => {
    const s = net.connect(join(dir, 'control.sock'));
    const lines: string[] = [];
    await new Promise<void>((resolve) => {
      s.setEncoding('utf8');
      s.on('data', (d: string) => {
        lines.push(...d.split('\n').filter(Boolean));
        if (lines.length >= 2) resolve();
      });
      s.write('not json\n{"id":7,"op":"users.explode"}\n');
    });
    s.destroy();
    expect(lines.map((l) => JSON.parse(l) as { ok: boolean })).to.deep.equal([
      { id: 0, ok: false, error: { code: 'invalid', message: 'not JSON' } },
      { id: 7, ok: false, error: { code: 'invalid', message: 'unknown operation "users.explode"' } },
    ]);
    expect((await client.listUsers()).length).to.be.a('number');
  });

  it('closes a connection whose request line is over the bound, even when its end comes in the same write', async () => {
    const s = net.connect(join(dir, 'control.sock'));
    const answered: string[] = [];
    s.setEncoding('utf8');
    s.on('data', (d: string) => answered.push(d));
    await new Promise<void>((resolve) => {
      s.on('close', () => resolve());
      s.on('error', () => undefined);
      s.write(`{"id":1,"op":"users.list","pad":"${'x'.repeat(70 * 1024)}"}\n`);
    });
    expect(answered).to.deep.equal([]);
    expect((await client.listUsers()).length).to.be.a('number');
  });

  it('NoServerError when nobody listens', async () => {
    let err: unknown;
    await ControlClient.connect(join(dir, 'nothing.sock')).catch((e: unknown) => (err = e));
    expect(err).to.be.instanceOf(NoServerError);
  });

  it('the CLI opens the store itself when no server runs', async () => {
    const data = mkdtempSync(join(tmpdir(), 'sp-cli-'));
    // The embedded store of the config file, not the PostgreSQL server CI names in the environment.
    const databaseUrl = process.env.DATABASE_URL;
    delete process.env.DATABASE_URL;
    try {
      const cfg = join(data, 'config.json');
      writeFileSync(cfg, JSON.stringify({ sip: { domain: 'example.com' }, store: { dataDir: join(data, 'db') } }));
      const out: string[] = [];
      const errs: string[] = [];
      const io: AdminIo = { out: (l) => out.push(l), err: (l) => errs.push(l), readPassword: async () => 'typed' };
      expect(await adminCommand('user', ['add', 'zed', '--config', cfg], io)).to.equal(0);
      expect(await adminCommand('user', ['list', '--config', cfg], io)).to.equal(0);
      expect(await adminCommand('user', ['del', 'nobody', '--config', cfg], io)).to.equal(3);
      expect(await adminCommand('rules', ['confirm', 'zed', '*@example.com', '--hide-notes', '--config', cfg], io)).to.equal(0);
      expect(out).to.deep.equal(['added sip:zed@example.com', 'sip:zed@example.com  -  password', 'sip:zed@example.com  *@example.com  confirm  [hide-notes]']);
      expect(errs.join('\n')).to.contain('no user nobody');
    } finally {
      if (databaseUrl !== undefined) process.env.DATABASE_URL = databaseUrl;
      rmSync(data, { recursive: true, force: true });
    }
  });
});
