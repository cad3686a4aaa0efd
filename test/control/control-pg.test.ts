import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { adminCommand, type AdminIo } from '../../src/cli/admin-commands.js';
import { randomToken } from '../../src/sip/response.js';
import { authedTransact } from '../auth/digest-client.js';
import { adminQuery, DATABASE_URL } from '../store/helpers.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { TestUa } from '../support/test-ua.js';

function io(): AdminIo & { lines: string[]; errors: string[] } {
  const lines: string[] = [];
  const errors: string[] = [];
  return { lines, errors, out: (l) => lines.push(l), err: (l) => errors.push(l), readPassword: async () => 'unused' };
}

/**
 * A server on PostgreSQL (store.url) keeps accounts in a read-through cache, like on the embedded store:
 * the CLI must reach it through the control socket in store.dataDir, or a changed password
 * or a deleted user would go on working until a restart. Needs DATABASE_URL (CI sets it);
 * the server gets a database of its own, dropped afterwards.
 */
describe('control channel with the PostgreSQL store: CLI changes reach the running server at once', function () {
  this.timeout(30_000);
  let dir: string;
  let configFile: string;
  let database: string;
  let srv: TestServer | undefined;
  let ua: TestUa | undefined;

  before(async function () {
    if (!DATABASE_URL) return this.skip();
    database = `sp_ctl_${randomBytes(4).toString('hex')}`;
    await adminQuery(DATABASE_URL, `CREATE DATABASE ${database}`);
    const url = new URL(DATABASE_URL);
    url.pathname = `/${database}`;
    dir = mkdtempSync(join(tmpdir(), 'sp-ctl-pg-'));
    const store = { enabled: true, url: url.toString(), dataDir: join(dir, 'data') };
    srv = await startTestServer({ auth: { required: true, maxFailedUsersPerSource: 1000 }, store }, { store: 'config' });
    configFile = join(dir, 'config.json');
    writeFileSync(configFile, JSON.stringify({ sip: { domain: 'example.com' }, store }));
  });

  after(async () => {
    await ua?.close();
    await srv?.stop();
    if (DATABASE_URL && database) await adminQuery(DATABASE_URL, `DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('listens on the control socket in store.dataDir; passwd and del take effect on the next request', async () => {
    expect(existsSync(join(dir, 'data', 'control.sock'))).to.equal(true);
    expect(await adminCommand('user', ['add', 'pat', '--password', 'first pw', '--config', configFile], io())).to.equal(0);
    ua = await TestUa.create({ port: srv!.port, user: 'pat', domain: 'example.com' });
    const u = ua;
    const register = (a?: string) => u.request('REGISTER', 'sip:example.com', { to: `<${u.aor}>`, callId: randomToken(), headers: { Expires: 60, ...(a ? { Authorization: a } : {}) } });
    expect((await authedTransact(u, register, { username: 'pat', password: 'first pw' })).res.status).to.equal(200);

    expect(await adminCommand('user', ['passwd', 'pat', '--password', 'second pw', '--config', configFile], io())).to.equal(0);
    expect((await authedTransact(u, register, { username: 'pat', password: 'first pw' })).res.status).to.equal(401);
    expect((await authedTransact(u, register, { username: 'pat', password: 'second pw' })).res.status).to.equal(200);

    expect(await adminCommand('user', ['del', 'pat', '--config', configFile], io())).to.equal(0);
    expect((await authedTransact(u, register, { username: 'pat', password: 'second pw' })).res.status).to.equal(401);
  });
});
