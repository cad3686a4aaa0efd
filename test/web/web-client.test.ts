import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { adminCommand } from '../../src/cli/admin-commands.js';
import { packageRoot } from '../../src/config/config.js';
import { openStore, type Store } from '../../src/store/index.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { call, httpBase, TOKEN } from '../http/http-support.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARTIFACTS = join(packageRoot(), 'test-artifacts', 'web');

/**
 * The web client end to end in headless Chromium (issue 9): accounts made with the CLI
 * (`user add`, through the control socket), two users in two browser contexts over
 * SIP/WebSocket with digest authentication, a pending watcher approved through
 * /api/me/rules, presence changes seen live, messages and typing both ways; then what a
 * user meets later: a message stored (202) or refused (404), a subscription the server
 * ends, a server restart, a block.
 */
describe('web client in headless Chromium (sip.js over WebSocket)', function () {
  this.timeout(60000);
  let store: Store;
  let srv: TestServer;
  let base: string;
  let browser: Browser;
  let alice: Page;
  let bob: Page;
  let dataDir: string | undefined;
  const contexts: BrowserContext[] = [];
  let shot = 0;

  const screenshot = async (page: Page, name: string): Promise<void> => {
    await page.screenshot({ path: join(ARTIFACTS, `${String(++shot).padStart(2, '0')}-${name}.png`), fullPage: true });
  };

  before(async function () {
    if (!existsSync(CHROMIUM)) {
      // .ci/run installs it; without it this suite cannot say anything.
      throw new Error(`no Chromium at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)`);
    }
    mkdirSync(ARTIFACTS, { recursive: true });
    // The page as `npm run build` makes it (bundle of web/src with sip.js, into dist/web).
    execFileSync(process.execPath, [join(packageRoot(), 'web', 'build.mjs')], { stdio: 'pipe' });
    store = await openStore({ logger: pino({ level: 'silent' }) });
    // As the README has it: accounts made with `simple-presence user add`, which goes through
    // the running server's control socket in store.dataDir.
    dataDir = mkdtempSync(join(tmpdir(), 'sp-web-'));
    srv = await startTestServer({ admin: { token: TOKEN }, auth: { required: true } }, { store, controlSocket: join(dataDir, 'control.sock') });
    base = httpBase(srv.server);
    const cliConfig = join(dataDir, 'config.json');
    writeFileSync(cliConfig, JSON.stringify({ sip: { domain: 'example.com' }, store: { dataDir } }));
    const said: string[] = [];
    const io = { out: (l: string) => said.push(l), err: (l: string) => said.push(l), readPassword: () => Promise.reject(new Error('no terminal')) };
    for (const [username, password] of [['alice', 'alice-secret'], ['bob', 'bob-secret'], ['carol', 'carol-secret']]) {
      expect(await adminCommand('user', ['add', username!, '--password', password!, '--config', cliConfig], io), said.join('\n')).to.equal(0);
    }
    expect(said).to.deep.equal(['added sip:alice@example.com', 'added sip:bob@example.com', 'added sip:carol@example.com']);
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  });

  after(async () => {
    for (const c of contexts) await c.close().catch(() => undefined);
    await browser?.close().catch(() => undefined);
    await srv?.stop();
    await store?.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  async function login(user: string, password: string): Promise<Page> {
    const context = await browser.newContext({ viewport: { width: 1100, height: 720 } });
    contexts.push(context);
    const page = await context.newPage();
    page.on('pageerror', (err) => console.error(`[${user} page error] ${err.message}`));
    await page.goto(base + '/');
    await expectText(page, '#login-domain', 'example.com', 'value');
    await page.fill('#login-user', user);
    await page.fill('#login-password', password);
    await page.click('#login-button');
    await page.waitForSelector('body[data-logged-in="true"]', { timeout: 10000 });
    await page.waitForSelector('body[data-published="available"]', { timeout: 10000 });
    return page;
  }

  async function expectText(page: Page, selector: string, text: string, what: 'text' | 'value' = 'text'): Promise<void> {
    await page.waitForFunction(
      ([sel, want, kind]) => {
        const e = document.querySelector(sel!);
        if (!e) return false;
        return (kind === 'value' ? (e as HTMLInputElement).value : e.textContent ?? '').includes(want!);
      },
      [selector, text, what],
      { timeout: 10000 },
    );
  }

  it('rejects a wrong password', async () => {
    const context = await browser.newContext();
    contexts.push(context);
    const page = await context.newPage();
    await page.goto(base + '/');
    await page.fill('#login-user', 'alice');
    await page.fill('#login-password', 'not-her-password');
    await page.click('#login-button');
    await expectText(page, '#login-error', 'Login failed');
    await screenshot(page, 'login-refused');
    await context.close();
  });

  it('alice and bob: approval, live presence, messages and typing both ways', async () => {
    alice = await login('alice', 'alice-secret');
    bob = await login('bob', 'bob-secret');

    // Bob goes away with a note.
    await bob.fill('#my-note', 'out for lunch');
    await bob.selectOption('#my-status', 'away');
    await bob.waitForSelector('body[data-published="away"]');

    // Alice adds Bob: her subscription waits for Bob's approval (auth.defaultPolicy confirm).
    await alice.fill('#add-buddy-input', 'bob');
    await alice.click('#add-buddy button');
    await alice.waitForSelector('li.buddy[data-aor="sip:bob@example.com"][data-status="pending"]');
    await screenshot(alice, 'alice-waits-for-bob');

    // Bob sees Alice among his watchers (presence.winfo) and approves her.
    const pending = 'li.watcher[data-uri="sip:alice@example.com"][data-status="pending"]';
    await bob.waitForSelector(pending);
    await screenshot(bob, 'bob-sees-pending-alice');
    await bob.click(`${pending} button.approve`);
    await bob.waitForSelector('li.watcher[data-uri="sip:alice@example.com"][data-status="active"]');

    // Alice now sees Bob away, with his note.
    const bobOnAlice = 'li.buddy[data-aor="sip:bob@example.com"]';
    await alice.waitForSelector(`${bobOnAlice}[data-status="away"]`);
    await expectText(alice, `${bobOnAlice} .buddy-note`, 'out for lunch');
    await screenshot(alice, 'alice-sees-bob-away');

    // Bob comes back: Alice sees it (how fast is printed, not asserted: speed is the bench's).
    await bob.fill('#my-note', 'back at my desk');
    const started = Date.now();
    await bob.selectOption('#my-status', 'available');
    await alice.waitForSelector(`${bobOnAlice}[data-status="available"]`);
    const seenAfterMs = Date.now() - started;
    await expectText(alice, `${bobOnAlice} .buddy-note`, 'back at my desk');
    await screenshot(alice, 'alice-sees-bob-available');

    // Alice writes to Bob; Bob sees her typing, then the message.
    await alice.click(`${bobOnAlice} .buddy-open`);
    await alice.type('#compose-text', 'Hello Bob', { delay: 10 });
    await bob.waitForSelector('li.buddy[data-aor="sip:alice@example.com"] .typing-mark');
    await alice.click('#compose button');
    const aliceOnBob = 'li.buddy[data-aor="sip:alice@example.com"]';
    await bob.waitForSelector(`${aliceOnBob} .badge`);
    await bob.click(`${aliceOnBob} .buddy-open`);
    await expectText(bob, '#messages', 'Hello Bob');
    // RFC 3994 §3.3: the message itself ends the typing indication.
    expect(await bob.isVisible('#typing')).to.equal(false);

    // Bob answers; Alice sees him typing in her open chat, then the answer.
    await bob.type('#compose-text', 'Hi Alice', { delay: 10 });
    await expectText(alice, '#typing', 'bob@example.com is typing');
    await screenshot(alice, 'alice-sees-bob-typing');
    await bob.click('#compose button');
    await expectText(alice, '#messages li.line.them', 'Hi Alice');
    expect(await alice.isVisible('#typing')).to.equal(false);
    await expectText(bob, '#messages li.line.me', 'Hi Alice');
    await screenshot(alice, 'alice-chat');
    await screenshot(bob, 'bob-chat');
    // Narrow screens get one column (responsive layout).
    await alice.setViewportSize({ width: 390, height: 844 });
    await screenshot(alice, 'alice-chat-phone');

    // Both browsers hold one SIP-over-WebSocket connection each.
    const metrics = await call(base, 'GET', '/metrics', { token: null });
    expect(metrics.text).to.match(/^simple_presence_connections\{transport="ws"\} 2$/m);
    // The server said 200 to both messages.
    expect(await alice.getAttribute('#messages li.line.me', 'data-delivery')).to.equal('delivered');

    console.log(`      (presence change seen by the other browser after ${seenAfterMs} ms)`);
  });

  it('says whether a message was delivered, stored for later (202) or refused', async () => {
    // Carol has an account but is not logged in: RFC 3428 store-and-forward answers 202.
    await alice.fill('#add-buddy-input', 'carol');
    await alice.click('#add-buddy button');
    await alice.click('li.buddy[data-aor="sip:carol@example.com"] .buddy-open');
    await alice.fill('#compose-text', 'see you tomorrow');
    await alice.click('#compose button');
    await alice.waitForSelector('#messages li.line.me[data-delivery="stored"]');
    await expectText(alice, '#messages li.line.me .delivery', 'will be delivered when carol@example.com is online');
    expect((await call(base, 'GET', '/api/messages/carol')).json).to.include({ count: 1 });
    // Nobody of that name: 404, shown as not delivered.
    await alice.fill('#add-buddy-input', 'nobody');
    await alice.click('#add-buddy button');
    await alice.click('li.buddy[data-aor="sip:nobody@example.com"] .buddy-open');
    await alice.fill('#compose-text', 'hello?');
    await alice.click('#compose button');
    await alice.waitForSelector('#messages li.line.me[data-delivery="failed"]');
    await expectText(alice, '#messages li.line.me .delivery', 'not delivered: 404');
    await screenshot(alice, 'alice-not-delivered');
    await alice.click('li.buddy[data-aor="sip:nobody@example.com"] .remove');
    await alice.click('li.buddy[data-aor="sip:carol@example.com"] .remove');
  });

  it('the buddy list is on the server: one list subscription (RFC 4662), the same list in another browser', async () => {
    // Alice's buddies are her stored list sip:alice+presence@example.com, not this browser's.
    const mine = await call(base, 'GET', '/api/me/lists', { token: null, headers: { Authorization: `Basic ${Buffer.from('alice:alice-secret').toString('base64')}` } });
    expect(mine.json).to.deep.equal([{ owner: 'sip:alice@example.com', name: 'presence', uri: 'sip:alice+presence@example.com', entries: [{ uri: 'sip:bob@example.com' }] }]);
    expect(await alice.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith('simple-presence:buddies:')))).to.deep.equal([]);
    // One subscription for the list, none to Bob himself.
    const subs = (await call(base, 'GET', '/api/subscriptions?watcher=alice&event=presence')).json as Array<{ presentity: string; state: string }>;
    expect(subs.map((s) => `${s.presentity} ${s.state}`)).to.deep.equal(['sip:alice+presence@example.com active']);
    // Alice on a second device sees Bob, with his status, without adding him there.
    const other = await login('alice', 'alice-secret');
    await other.waitForSelector('li.buddy[data-aor="sip:bob@example.com"][data-status="available"]');
    await screenshot(other, 'alice-second-browser');
    await other.click('#logout');
  });

  it('subscribes again when the server ends a subscription with reason=deactivated (RFC 6665 §4.1.3)', async () => {
    const list = async (): Promise<Array<{ id: string; state: string }>> => (await call(base, 'GET', '/api/subscriptions?presentity=alice%2Bpresence&watcher=alice&event=presence')).json;
    const [old] = await list();
    expect(old?.state).to.equal('active');
    expect((await call(base, 'DELETE', `/api/subscriptions/${old!.id}?reason=deactivated`)).status).to.equal(204);
    let now: Array<{ id: string; state: string }> = [];
    for (let i = 0; i < 100; i++) {
      now = await list();
      if (now.length === 1 && now[0]!.id !== old!.id && now[0]!.state === 'active') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(now).to.have.length(1);
    expect(now[0]!.id).not.to.equal(old!.id);
    const bobOnAlice = 'li.buddy[data-aor="sip:bob@example.com"]';
    await bob.selectOption('#my-status', 'busy');
    await alice.waitForSelector(`${bobOnAlice}[data-status="busy"]`);
  });

  it('after a server restart both pages reconnect, register, publish and subscribe again', async () => {
    const port = Number(new URL(base).port);
    await srv.stop();
    await alice.waitForSelector('body[data-connection="disconnected"], body[data-connection="reconnecting"]');
    await bob.waitForSelector('body[data-connection="disconnected"], body[data-connection="reconnecting"]');
    // Bob changes his status while the server is down: the page says it is not published...
    await bob.fill('#my-note', 'after the restart');
    await bob.selectOption('#my-status', 'away');
    await expectText(bob, '#status-feedback', 'not published');
    expect(await bob.evaluate(() => document.body.dataset.published)).to.equal(undefined);
    // The same store and HTTP port: soft state comes back; the WebSocket contacts do not (RFC 7118 §5).
    srv = await startTestServer({ admin: { token: TOKEN }, auth: { required: true }, http: { port } }, { store });
    const started = Date.now();
    await alice.waitForSelector('body[data-connection="connected"]', { timeout: 15000 });
    await bob.waitForSelector('body[data-connection="connected"]', { timeout: 15000 });
    // ...and publishes it by itself once it is back; Alice, subscribed again, sees it.
    await bob.waitForSelector('body[data-published="away"]', { timeout: 10000 });
    const bobOnAlice = 'li.buddy[data-aor="sip:bob@example.com"]';
    await alice.waitForSelector(`${bobOnAlice}[data-status="away"]`, { timeout: 10000 });
    await expectText(alice, `${bobOnAlice} .buddy-note`, 'after the restart');
    await alice.click(`${bobOnAlice} .buddy-open`);
    await bob.click('li.buddy[data-aor="sip:alice@example.com"] .buddy-open');
    await bob.fill('#compose-text', 'still here');
    await bob.click('#compose button');
    await expectText(alice, '#messages li.line.them:last-child', 'still here');
    await screenshot(alice, 'alice-after-restart');
    console.log(`      (pages back and working ${Date.now() - started} ms after the server)`);
  });

  it('bob blocks alice: on her list he is terminated;reason=rejected (refused), and nothing asks him again', async () => {
    const watcher = 'li.watcher[data-uri="sip:alice@example.com"]';
    await bob.waitForSelector(`${watcher}[data-status="active"]`);
    await bob.click(`${watcher} button.block`);
    await alice.waitForSelector('li.buddy[data-aor="sip:bob@example.com"][data-status="refused"]');
    await expectText(alice, 'li.buddy[data-aor="sip:bob@example.com"] .buddy-status', 'Does not share a status with you');
    // Her open chat with him no longer shows his last status.
    await expectText(alice, '#chat-status', 'Does not share a status with you');
    await screenshot(alice, 'alice-refused');
    // Her list subscription goes on (Bob is one member of it); nothing asks Bob directly.
    await new Promise((r) => setTimeout(r, 300));
    const subs = (await call(base, 'GET', '/api/subscriptions?watcher=alice&event=presence')).json as Array<{ presentity: string; state: string }>;
    expect(subs.map((s) => `${s.presentity} ${s.state}`)).to.deep.equal(['sip:alice+presence@example.com active']);
  });
  it('rooms (issue 22): carol and bob join a room from the page, chat in it with nick prefixes, see the members, and leave', async () => {
    const carol = await login('carol', 'carol-secret');
    await carol.fill('#join-room-input', 'lobby');
    await carol.click('#join-room button');
    const lobby = 'li.room[data-room="sip:lobby@example.com"]';
    await carol.waitForSelector(lobby);
    await expectText(carol, '#chat-title', '#lobby');
    await bob.fill('#join-room-input', 'lobby');
    await bob.click('#join-room button');
    await bob.waitForSelector(lobby);
    await expectText(bob, '#chat-status', 'members: carol, bob');
    // Carol hears of bob (a notice from the room), and her member list follows.
    await expectText(carol, '#messages', '*** bob joined');
    await expectText(carol, '#chat-status', 'members: carol, bob');
    await carol.fill('#compose-text', 'welcome to the lobby');
    await carol.click('#compose button');
    await carol.waitForSelector('#messages li.me[data-delivery="delivered"]');
    await expectText(bob, '#messages', 'carol: welcome to the lobby');
    await bob.fill('#compose-text', 'thanks');
    await bob.click('#compose button');
    await expectText(carol, '#messages', 'bob: thanks');
    await screenshot(carol, 'carol-in-lobby');
    expect(srv.server.rooms.get('sip:lobby@example.com')!.members).to.deep.equal(['sip:carol@example.com', 'sip:bob@example.com']);
    await bob.click(`${lobby} button.remove`);
    await bob.waitForSelector(lobby, { state: 'detached' });
    expect(srv.server.rooms.get('sip:lobby@example.com')!.members).to.deep.equal(['sip:carol@example.com']);
  });
});
