import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { packageRoot } from '../../src/config/config.js';
import { openStore, type Store } from '../../src/store/index.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { call, httpBase, TOKEN } from '../http/http-support.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARTIFACTS = join(packageRoot(), 'test-artifacts', 'web');

/**
 * The web client end to end in headless Chromium (issue 9): two users in two browser
 * contexts over SIP/WebSocket with digest authentication, a pending watcher approved
 * through /api/me/rules, presence changes seen live, messages and typing both ways.
 */
describe('web client in headless Chromium (sip.js over WebSocket)', function () {
  this.timeout(60000);
  let store: Store;
  let srv: TestServer;
  let base: string;
  let browser: Browser;
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
    srv = await startTestServer({ admin: { token: TOKEN }, auth: { required: true } }, { store });
    base = httpBase(srv.server);
    for (const [username, password] of [['alice', 'alice-secret'], ['bob', 'bob-secret']]) {
      const r = await call(base, 'POST', '/api/users', { body: { username, password } });
      expect(r.status, JSON.stringify(r.json)).to.equal(201);
    }
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  });

  after(async () => {
    for (const c of contexts) await c.close().catch(() => undefined);
    await browser?.close().catch(() => undefined);
    await srv?.stop();
    await store?.close();
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
    const alice = await login('alice', 'alice-secret');
    const bob = await login('bob', 'bob-secret');

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

    // Bob comes back: Alice sees it within a second.
    await bob.fill('#my-note', 'back at my desk');
    const started = Date.now();
    await bob.selectOption('#my-status', 'available');
    await alice.waitForSelector(`${bobOnAlice}[data-status="available"]`, { timeout: 1000 });
    const seenAfterMs = Date.now() - started;
    expect(seenAfterMs).to.be.below(1000);
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
    expect(metrics.text).to.match(/^sip_connections\{transport="ws"\} 2$/m);

    console.log(`      (presence change seen by the other browser after ${seenAfterMs} ms)`);
  });
});
