import { expect } from 'chai';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { adminCommand, type AdminIo } from '../../src/cli/admin-commands.js';
import { randomToken } from '../../src/sip/response.js';
import type { SipRequest } from '../../src/sip/message.js';
import { openStore, type Store } from '../../src/store/index.js';
import { authedTransact, authorization, challengesOf } from '../auth/digest-client.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { TestUa } from '../support/test-ua.js';
import type { LocationService } from '../../src/registrar/location-service.js';

const PIDF = 'application/pidf+xml';
const PASSWORD = 'correct horse battery staple';

function pidf(entity: string, basic: 'open' | 'closed', note?: string): string {
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="${entity}">` +
    `<tuple id="t1"><status><basic>${basic}</basic></status>${note ? `<note>${note}</note>` : ''}</tuple>` +
    (note ? `<note>${note}</note>` : '') +
    '</presence>'
  );
}

/** Captures what the CLI prints. */
function captureIo(): AdminIo & { lines: string[]; errors: string[] } {
  const lines: string[] = [];
  const errors: string[] = [];
  return { lines, errors, out: (l) => lines.push(l), err: (l) => errors.push(l), readPassword: async () => PASSWORD };
}

describe('security e2e: digest authentication, identities and presence rules (real sockets)', function () {
  this.timeout(20_000);
  let store: Store;
  let srv: TestServer;
  let dir: string;
  let configFile: string;
  const uas: TestUa[] = [];
  let n = 0;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sp-sec-'));
    store = await openStore({ logger: pino({ level: 'silent' }) });
    srv = await startTestServer({ auth: { required: true, maxFailedUsersPerSource: 1000 } }, { store, controlSocket: join(dir, 'control.sock') });
    // What the CLI reads to find the control socket.
    configFile = join(dir, 'config.json');
    writeFileSync(configFile, JSON.stringify({ sip: { domain: 'example.com' }, store: { dataDir: dir } }));
  });

  after(async () => {
    for (const u of uas) await u.close();
    await srv?.stop();
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A fresh account and a UA logged in as it. */
  async function user(base: string): Promise<TestUa> {
    const name = `${base}${++n}`;
    await srv.server.security.admin!.addUser({ username: name, password: PASSWORD });
    const ua = await TestUa.create({ port: srv.port, user: name, domain: 'example.com' });
    uas.push(ua);
    return ua;
  }

  const creds = (ua: TestUa) => ({ username: ua.user, password: PASSWORD });

  function register(ua: TestUa, callId: string, auth?: string): SipRequest {
    return ua.request('REGISTER', 'sip:example.com', { to: `<${ua.aor}>`, callId, headers: { Expires: 300, ...(auth ? { Authorization: auth } : {}) } });
  }

  function publish(ua: TestUa, presentity: string, body: string, auth?: string): SipRequest {
    const req = ua.request('PUBLISH', presentity, { to: `<${presentity}>`, headers: { Event: 'presence', Expires: 300, 'Content-Type': PIDF, ...(auth ? { Authorization: auth } : {}) }, body });
    req.removeHeader('contact');
    return req;
  }

  function subscribe(ua: TestUa, presentity: string, callId: string, fromTag: string, auth?: string, event = 'presence'): SipRequest {
    return ua.request('SUBSCRIBE', presentity, { callId, fromTag, headers: { Event: event, Expires: 600, ...(auth ? { Authorization: auth } : {}) } });
  }

  it('challenges REGISTER with SHA-256 then MD5, qop=auth, and accepts either answer', async () => {
    const alice = await user('alice');
    const callId = randomToken();
    const first = await alice.transact(register(alice, callId));
    expect(first.status).to.equal(401);
    const cs = challengesOf(first);
    expect(cs.map((c) => c.algorithm)).to.deep.equal(['SHA-256', 'MD5']);
    expect(cs.every((c) => c.qop === 'auth' && c.realm === 'example.com' && !c.stale)).to.equal(true);
    const sha = await authedTransact(alice, (a) => register(alice, callId, a), creds(alice), 'SHA-256');
    expect(sha.res.status).to.equal(200);
    const md5 = await authedTransact(alice, (a) => register(alice, callId, a), creds(alice), 'MD5');
    expect(md5.res.status).to.equal(200);
  });

  it('refuses a wrong password and an unknown user with a new challenge', async () => {
    const bob = await user('bob');
    const wrong = await authedTransact(bob, (a) => register(bob, randomToken(), a), { username: bob.user, password: 'nope' });
    expect(wrong.res.status).to.equal(401);
    const ghost = await authedTransact(bob, (a) => register(bob, randomToken(), a), { username: 'ghost', password: PASSWORD });
    expect(ghost.res.status).to.equal(401);
  });

  it('refuses a replayed Authorization (same nonce-count), accepts the next count', async () => {
    const carol = await user('carol');
    const callId = randomToken();
    const ok = await authedTransact(carol, (a) => register(carol, callId, a), creds(carol));
    expect(ok.res.status).to.equal(200);
    // The captured request sent again as a new transaction: same Authorization.
    const replay = await carol.transact(register(carol, callId, ok.authorization));
    expect(replay.status).to.equal(401);
    // The real client counts on: nc=2 on the same nonce is fine.
    const c = challengesOf(ok.challenge).find((x) => x.algorithm === 'SHA-256')!;
    const next = authorization(c, { ...creds(carol), method: 'REGISTER', uri: 'sip:example.com', nc: 2 });
    expect((await carol.transact(register(carol, callId, next))).status).to.equal(200);
  });

  it('refuses credentials computed for another Request-URI with 400 (RFC 2617 §3.2.2.5)', async () => {
    const ivan = await user('ivan');
    const first = await ivan.transact(publish(ivan, ivan.aor, pidf(ivan.aor, 'open')));
    expect(first.status).to.equal(401);
    const c = challengesOf(first)[0]!;
    // Right password and nonce, but the digest names another resource than the Request-Line.
    const forOther = authorization(c, { ...creds(ivan), method: 'PUBLISH', uri: 'sip:someone-else@example.com' });
    const res = await ivan.transact(publish(ivan, ivan.aor, pidf(ivan.aor, 'open'), forOther));
    expect(res.status).to.equal(400);
    expect(res.reason).to.equal('Digest URI Does Not Match Request-URI');
    const right = authorization(c, { ...creds(ivan), method: 'PUBLISH', uri: ivan.aor });
    expect((await ivan.transact(publish(ivan, ivan.aor, pidf(ivan.aor, 'open'), right))).status).to.equal(200);
  });

  it('answers an expired nonce with stale=true, and the retry with a new nonce succeeds', async () => {
    const dave = await user('dave');
    const callId = randomToken();
    const first = await dave.transact(register(dave, callId));
    const c = challengesOf(first)[0]!;
    const security = srv.server.security;
    const real = security.clock;
    security.clock = { nowMs: () => real.nowMs() + 301_000 };
    try {
      const late = await dave.transact(register(dave, callId, authorization(c, { ...creds(dave), method: 'REGISTER', uri: 'sip:example.com' })));
      expect(late.status).to.equal(401);
      const again = challengesOf(late);
      expect(again[0]!.stale).to.equal(true);
      const retry = await dave.transact(register(dave, callId, authorization(again[0]!, { ...creds(dave), method: 'REGISTER', uri: 'sip:example.com' })));
      expect(retry.status).to.equal(200);
    } finally {
      security.clock = real;
    }
  });

  it('forbids PUBLISH for another user (403) and allows the own presentity', async () => {
    const eve = await user('eve');
    const frank = await user('frank');
    const other = await authedTransact(eve, (a) => publish(eve, frank.aor, pidf(frank.aor, 'open'), a), creds(eve));
    expect(other.res.status).to.equal(403);
    const own = await authedTransact(eve, (a) => publish(eve, eve.aor, pidf(eve.aor, 'open'), a), creds(eve));
    expect(own.res.status).to.equal(200);
  });

  it('forbids MESSAGE and SUBSCRIBE whose From is not the authenticated user (403)', async () => {
    const gina = await user('gina');
    const hank = await user('hank');
    const msg = await authedTransact(
      gina,
      (a) => gina.request('MESSAGE', hank.aor, { from: `<${hank.aor}>`, headers: { 'Content-Type': 'text/plain', ...(a ? { Authorization: a } : {}) }, body: 'hi' }),
      creds(gina),
    );
    expect(msg.res.status).to.equal(403);
    const sub = await authedTransact(
      gina,
      (a) => gina.request('SUBSCRIBE', gina.aor, { from: `<${hank.aor}>`, headers: { Event: 'presence.winfo', Expires: 600, ...(a ? { Authorization: a } : {}) } }),
      creds(gina),
    );
    expect(sub.res.status).to.equal(403);
    // winfo of someone else's URI, as oneself: refused too (RFC 3857 §5.3).
    const winfo = await authedTransact(gina, (a) => subscribe(gina, hank.aor, randomToken(), randomToken(), a, 'presence.winfo'), creds(gina));
    expect(winfo.res.status).to.equal(403);
  });

  it('confirm policy: pending (the owner sees it in winfo), then `rules allow` via the CLI: NOTIFY active with the document', async () => {
    const owner = await user('olga');
    const watcher = await user('walt');
    owner.autoAnswer('NOTIFY', 200);
    watcher.autoAnswer('NOTIFY', 200);
    expect((await authedTransact(owner, (a) => publish(owner, owner.aor, pidf(owner.aor, 'open', 'at lunch'), a), creds(owner))).res.status).to.equal(200);
    // The owner watches its watchers.
    const winfoCall = randomToken();
    const winfo = await authedTransact(owner, (a) => subscribe(owner, owner.aor, winfoCall, randomToken(), a, 'presence.winfo'), creds(owner));
    expect(winfo.res.status).to.equal(200);
    await owner.waitRequest((r) => r.method === 'NOTIFY' && r.callId === winfoCall);

    const callId = randomToken();
    const sub = await authedTransact(watcher, (a) => subscribe(watcher, owner.aor, callId, randomToken(), a), creds(watcher));
    expect(sub.res.status).to.equal(200);
    const pending = await watcher.waitRequest((r) => r.method === 'NOTIFY' && r.callId === callId);
    expect(pending.getHeader('subscription-state')).to.match(/^pending/);
    expect(pending.body.length).to.equal(0);
    const told = await owner.waitRequest((r) => r.method === 'NOTIFY' && r.callId === winfoCall && r.body.toString().includes(watcher.aor));
    expect(told.body.toString()).to.match(/status="pending"/);

    const io = captureIo();
    expect(await adminCommand('rules', ['allow', owner.user, watcher.user, '--config', configFile], io)).to.equal(0);
    expect(io.lines.join('\n')).to.contain('1 subscription changed');
    const active = await watcher.waitRequest((r) => r.method === 'NOTIFY' && r.callId === callId && /^active/.test(r.getHeader('subscription-state') ?? ''));
    expect(active.body.toString()).to.contain('<basic>open</basic>').and.to.contain('at lunch');
    // The decision is stored: a later subscription is active at once.
    const list = captureIo();
    expect(await adminCommand('rules', ['list', owner.user, '--config', configFile], list)).to.equal(0);
    expect(list.lines).to.deep.equal([`${owner.aor}  ${watcher.aor}  allow`]);
  });

  it('polite-block: active, with a document indistinguishable from an offline user', async () => {
    const owner = await user('paula');
    const offline = await user('otto');
    const watcher = await user('pete');
    watcher.autoAnswer('NOTIFY', 200);
    await srv.server.security.admin!.setRule({ presentity: owner.user, watcher: watcher.aor, action: 'polite-block' });
    await srv.server.security.admin!.setRule({ presentity: offline.user, watcher: watcher.aor, action: 'allow' });
    expect((await authedTransact(owner, (a) => publish(owner, owner.aor, pidf(owner.aor, 'open', 'secret plans'), a), creds(owner))).res.status).to.equal(200);

    const blockedCall = randomToken();
    const offlineCall = randomToken();
    expect((await authedTransact(watcher, (a) => subscribe(watcher, owner.aor, blockedCall, randomToken(), a), creds(watcher))).res.status).to.equal(200);
    expect((await authedTransact(watcher, (a) => subscribe(watcher, offline.aor, offlineCall, randomToken(), a), creds(watcher))).res.status).to.equal(200);
    const blocked = await watcher.waitRequest((r) => r.method === 'NOTIFY' && r.callId === blockedCall);
    const off = await watcher.waitRequest((r) => r.method === 'NOTIFY' && r.callId === offlineCall);
    expect(blocked.getHeader('subscription-state')).to.match(/^active/);
    expect(blocked.getHeader('subscription-state')).to.equal(off.getHeader('subscription-state'));
    expect(blocked.body.toString()).to.not.contain('secret plans');
    // Same bytes but for the entity.
    expect(blocked.body.toString().replace(owner.aor, 'X')).to.equal(off.body.toString().replace(offline.aor, 'X'));
  });

  it('block: a new SUBSCRIBE gets 403; blocking a live one ends it with reason=rejected', async () => {
    const owner = await user('bella');
    const watcher = await user('boris');
    watcher.autoAnswer('NOTIFY', 200);
    await srv.server.security.admin!.setRule({ presentity: owner.user, watcher: '*@example.com', action: 'allow' });
    const callId = randomToken();
    expect((await authedTransact(watcher, (a) => subscribe(watcher, owner.aor, callId, randomToken(), a), creds(watcher))).res.status).to.equal(200);
    await watcher.waitRequest((r) => r.method === 'NOTIFY' && r.callId === callId);
    const io = captureIo();
    expect(await adminCommand('rules', ['block', owner.user, watcher.aor, '--config', configFile], io)).to.equal(0);
    const end = await watcher.waitRequest((r) => r.method === 'NOTIFY' && r.callId === callId && /terminated/.test(r.getHeader('subscription-state') ?? ''));
    expect(end.getHeader('subscription-state')).to.match(/reason=rejected/);
    const again = await authedTransact(watcher, (a) => subscribe(watcher, owner.aor, randomToken(), randomToken(), a), creds(watcher));
    expect(again.res.status).to.equal(403);
  });

  it('a refresh inside a trusted subscription dialog needs no new challenge', async () => {
    const owner = await user('rita');
    const watcher = await user('rick');
    watcher.autoAnswer('NOTIFY', 200);
    await srv.server.security.admin!.setRule({ presentity: owner.user, watcher: watcher.user, action: 'allow' });
    const callId = randomToken();
    const fromTag = randomToken();
    const sub = await authedTransact(watcher, (a) => subscribe(watcher, owner.aor, callId, fromTag, a), creds(watcher));
    expect(sub.res.status).to.equal(200);
    const refresh = watcher.request('SUBSCRIBE', owner.aor, { callId, fromTag, toTag: sub.res.to.tag!, headers: { Event: 'presence', Expires: 600 } });
    expect((await watcher.transact(refresh)).status).to.equal(200);
  });

  it('transformations per rule: hide notes', async () => {
    const owner = await user('tina');
    const watcher = await user('tom');
    watcher.autoAnswer('NOTIFY', 200);
    await srv.server.security.admin!.setRule({ presentity: owner.user, watcher: watcher.user, action: 'allow', transformations: { hideNotes: true } });
    expect((await authedTransact(owner, (a) => publish(owner, owner.aor, pidf(owner.aor, 'open', 'dentist at 3'), a), creds(owner))).res.status).to.equal(200);
    const callId = randomToken();
    expect((await authedTransact(watcher, (a) => subscribe(watcher, owner.aor, callId, randomToken(), a), creds(watcher))).res.status).to.equal(200);
    const first = await watcher.waitRequest((r) => r.method === 'NOTIFY' && r.callId === callId);
    expect(first.body.toString()).to.contain('<basic>open</basic>').and.not.to.contain('dentist');
  });

  it('`user del` ends the account at once: its subscriptions (rejected), those to it (noresource), its registrations and the rules about it', async () => {
    const owner = await user('uma');
    const gone = await user('gus');
    owner.autoAnswer('NOTIFY', 200);
    gone.autoAnswer('NOTIFY', 200);
    await srv.server.security.admin!.setRule({ presentity: owner.user, watcher: gone.user, action: 'allow' });
    await srv.server.security.admin!.setRule({ presentity: gone.user, watcher: owner.user, action: 'allow' });
    expect((await authedTransact(gone, (a) => register(gone, randomToken(), a), creds(gone))).res.status).to.equal(200);
    const watching = randomToken();
    const watched = randomToken();
    expect((await authedTransact(gone, (a) => subscribe(gone, owner.aor, watching, randomToken(), a), creds(gone))).res.status).to.equal(200);
    expect((await authedTransact(owner, (a) => subscribe(owner, gone.aor, watched, randomToken(), a), creds(owner))).res.status).to.equal(200);
    await gone.waitRequest((r) => r.method === 'NOTIFY' && r.callId === watching);
    await owner.waitRequest((r) => r.method === 'NOTIFY' && r.callId === watched);
    expect((srv.server.location as LocationService).bindings(gone.aor)).to.have.length(1);

    const io = captureIo();
    expect(await adminCommand('user', ['del', gone.user, '--config', configFile], io)).to.equal(0);
    const rejected = await gone.waitRequest((r) => r.method === 'NOTIFY' && r.callId === watching && /terminated/.test(r.getHeader('subscription-state') ?? ''));
    expect(rejected.getHeader('subscription-state')).to.match(/reason=rejected/);
    const noresource = await owner.waitRequest((r) => r.method === 'NOTIFY' && r.callId === watched && /terminated/.test(r.getHeader('subscription-state') ?? ''));
    expect(noresource.getHeader('subscription-state')).to.match(/reason=noresource/);
    expect((srv.server.location as LocationService).bindings(gone.aor)).to.have.length(0);
    expect(await srv.server.security.admin!.listRules(owner.user)).to.deep.equal([]);
    // Its password opens nothing any more.
    const after = await authedTransact(gone, (a) => register(gone, randomToken(), a), creds(gone));
    expect(after.res.status).to.equal(401);
  });

  it('keeps the control socket owner-only (0600)', () => {
    expect(statSync(join(dir, 'control.sock')).mode & 0o777).to.equal(0o600);
  });
});
