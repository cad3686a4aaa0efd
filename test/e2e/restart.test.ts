import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SipRequest, SipResponse } from '../../src/sip/message.js';
import { createResponse } from '../../src/sip/response.js';
import { registerRequest } from '../registrar/ua-helpers.js';
import { freePort, runCli, startServerProcess, type ServerProcess } from '../support/server-process.js';
import { TestUa } from '../support/test-ua.js';
import { parseDialogInfo } from '../../src/presence/dialog-info/dialog-info-document.js';

const DIALOG_INFO = 'application/dialog-info+xml';
const SUMMARY = 'application/simple-message-summary';

const PIDF = 'application/pidf+xml';
const pidf = (entity: string, basic: 'open' | 'closed', note: string): string =>
  `<?xml version="1.0" encoding="UTF-8"?>\n<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="${entity}">` +
  `<tuple id="t1"><status><basic>${basic}</basic></status><note>${note}</note></tuple></presence>`;

const isNotify = (callId: string) => (r: SipRequest) => r.method === 'NOTIFY' && r.callId === callId;
const isMessage = (r: SipRequest) => r.method === 'MESSAGE';

/**
 * DESIGN (State) and the persistence issue: what the server promised before a stop is kept
 * after it. The server runs as its own process (the CLI), stopped by signals as an operator
 * or a crash would stop it, on an embedded store in a temporary data directory.
 */
describe('e2e: state survives a restart (SIGTERM and SIGKILL)', function () {
  this.timeout(180_000);
  let dir: string;
  let port: number;
  let proc: ServerProcess | undefined;
  let uas: TestUa[] = [];

  const config = () => ({
    sip: { hosts: ['127.0.0.1'], port, domain: 'example.com' },
    http: { host: '127.0.0.1', port: 0 },
    store: { dataDir: join(dir, 'data'), flushWindowMs: 200 },
    log: { level: 'info' },
  });
  const start = async () => {
    // Up to a minute: on a loaded machine, loading the sources and opening the store take long.
    proc = await startServerProcess(dir, config(), { AUTH_REQUIRED: 'false' }, 60_000);
    return proc;
  };
  const ua = async (user: string) => {
    const u = await TestUa.create({ port, user, domain: 'example.com' });
    uas.push(u);
    return u;
  };

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sp-restart-'));
    port = await freePort();
  });
  afterEach(async () => {
    for (const u of uas) await u.close();
    uas = [];
    await proc?.stop('SIGKILL');
    proc = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  function publish(u: TestUa, opts: { body?: string; etag?: string; expires?: number; event?: string; contentType?: string } = {}): SipRequest {
    const headers: Record<string, string | number> = { Event: opts.event ?? 'presence', Expires: opts.expires ?? 600 };
    if (opts.etag) headers['SIP-If-Match'] = opts.etag;
    if (opts.body) headers['Content-Type'] = opts.contentType ?? PIDF;
    const req = u.request('PUBLISH', u.aor, { to: `<${u.aor}>`, headers, body: opts.body });
    req.removeHeader('contact');
    return req;
  }

  it('after SIGTERM: the old entity-tag refreshes, the watcher is notified in its old dialog, registrations route, stored messages are delivered', async () => {
    await start();
    const alice = await ua('alice');
    const bob = await ua('bob');
    const carol = await ua('carol');

    // alice publishes; bob watches her; carol registers; a MESSAGE waits for dave (offline).
    const pub = await alice.transact(publish(alice, { body: pidf(alice.aor, 'open', 'before') }));
    expect(pub.status).to.equal(200);
    const etag = pub.getHeader('sip-etag')!;
    bob.autoAnswer('NOTIFY', 200);
    const callId = 'restart-watch@test';
    const firstNotify = bob.waitRequest(isNotify(callId));
    const sub: SipResponse = await bob.transact(bob.request('SUBSCRIBE', alice.aor, { callId, cseq: 1, headers: { Event: 'presence', Expires: 600, Accept: PIDF } }));
    expect(sub.status).to.equal(200);
    const before = await firstNotify;
    expect(before.body.toString()).to.contain('before');
    carol.autoAnswer('MESSAGE', 200);
    expect((await carol.transact(registerRequest(carol, { expires: 600 }))).status).to.equal(200);
    const stored = alice.request('MESSAGE', 'sip:dave@example.com', { headers: { 'Content-Type': 'text/plain' }, body: 'kept for dave' });
    expect((await alice.transact(stored)).status).to.equal(202);

    expect(await proc!.stop('SIGTERM')).to.equal(0);
    await start();

    // Restored watchers hear the current state in their old dialog, CSeq going on.
    const resent = await bob.waitRequest((r) => isNotify(callId)(r) && r.cseq.seq > before.cseq.seq, 10_000);
    expect(resent.to.tag).to.equal(before.to.tag);
    expect(resent.from.tag).to.equal(before.from.tag);
    expect(resent.getHeader('subscription-state')).to.match(/^active/);

    // The entity-tag handed out before the stop still refreshes (no 412).
    const refresh = await alice.transact(publish(alice, { etag }));
    expect(refresh.status, `${refresh.status} ${refresh.reason}`).to.equal(200);
    const etag2 = refresh.getHeader('sip-etag')!;

    // A change reaches bob in the same dialog.
    const changed = bob.waitRequest((r) => isNotify(callId)(r) && r.body.toString().includes('after'));
    expect((await alice.transact(publish(alice, { etag: etag2, body: pidf(alice.aor, 'closed', 'after') }))).status).to.equal(200);
    const after = await changed;
    expect(after.cseq.seq).to.be.greaterThan(resent.cseq.seq);

    // carol's binding still routes a MESSAGE.
    const toCarol = alice.request('MESSAGE', carol.aor, { headers: { 'Content-Type': 'text/plain' }, body: 'still there?' });
    const got = carol.waitRequest(isMessage);
    expect((await alice.transact(toCarol)).status).to.equal(200);
    expect((await got).body.toString()).to.equal('still there?');

    // dave registers and gets the message stored before the stop.
    const dave = await ua('dave');
    dave.autoAnswer('MESSAGE', 200);
    const waiting = dave.waitRequest(isMessage, 5000);
    expect((await dave.transact(registerRequest(dave, { expires: 600 }))).status).to.equal(200);
    expect((await waiting).body.toString()).to.equal('kept for dave');
  });

  it('after SIGKILL: loses at most the flush window of soft state, and no durable message', async () => {
    await start();
    const alice = await ua('alice');
    const erin = await ua('erin');
    const pub = await alice.transact(publish(alice, { body: pidf(alice.aor, 'open', 'old enough') }));
    expect(pub.status).to.equal(200);
    // Older than the flush window (200 ms): written behind before the crash.
    await new Promise((r) => setTimeout(r, 700));
    // Committed before its 202: survives a crash that follows at once.
    const m = erin.request('MESSAGE', 'sip:frank@example.com', { headers: { 'Content-Type': 'text/plain' }, body: 'durable' });
    expect((await erin.transact(m)).status).to.equal(202);
    expect(await proc!.stop('SIGKILL')).to.equal('SIGKILL');

    await start();
    const refresh = await alice.transact(publish(alice, { etag: pub.getHeader('sip-etag')! }));
    expect(refresh.status, `${refresh.status} ${refresh.reason}`).to.equal(200);
    const frank = await ua('frank');
    frank.autoAnswer('MESSAGE', 200);
    const waiting = frank.waitRequest(isMessage, 5000);
    expect((await frank.transact(registerRequest(frank, { expires: 600 }))).status).to.equal(200);
    expect((await waiting).body.toString()).to.equal('durable');
  });

  it('after SIGKILL: a restored watcher dialog goes on above every CSeq and version sent, even those the crash left unwritten', async () => {
    await start();
    const alice = await ua('alice');
    const bob = await ua('bob');
    // Every NOTIFY each one got, in order (waits take theirs out of the UA's mailbox).
    const heard: SipRequest[] = [];
    const answer = (req: SipRequest) => {
      heard.push(req);
      return createResponse(req, 200);
    };
    bob.autoAnswer('NOTIFY', answer);
    alice.autoAnswer('NOTIFY', answer);
    const inDialog = (callId: string) => heard.filter(isNotify(callId));
    const version = (r: SipRequest): number => Number(/<watcherinfo\b[^>]*\sversion="(\d+)"/.exec(r.body.toString())![1]);
    // alice watches her watchers (RFC 3857: winfo documents carry a version); bob watches her.
    const winfoId = 'crash-winfo@test';
    const firstWinfo = alice.waitRequest(isNotify(winfoId));
    expect((await alice.transact(alice.request('SUBSCRIBE', alice.aor, { callId: winfoId, cseq: 1, headers: { Event: 'presence.winfo', Expires: 600, Accept: 'application/watcherinfo+xml' } }))).status).to.equal(200);
    await firstWinfo;
    const callId = 'crash-watch@test';
    const first = bob.waitRequest(isNotify(callId));
    const winfoOfBob = alice.waitRequest((r) => isNotify(winfoId)(r) && r.body.toString().includes('bob@example.com'));
    expect((await bob.transact(bob.request('SUBSCRIBE', alice.aor, { callId, cseq: 1, headers: { Event: 'presence', Expires: 600, Accept: PIDF } }))).status).to.equal(200);
    await Promise.all([first, winfoOfBob]);
    // Older than the flush window (200 ms): these rows are written.
    await new Promise((r) => setTimeout(r, 700));
    // Then NOTIFYs in both dialogs (a fetch of bob's, Expires: 0, shows in winfo), and the kill before the
    // next flush writes their CSeqs.
    const late = bob.waitRequest((r) => isNotify(callId)(r) && r.body.toString().includes('late'));
    expect((await alice.transact(publish(alice, { body: pidf(alice.aor, 'open', 'late') }))).status).to.equal(200);
    await late;
    const ended = alice.waitRequest((r) => isNotify(winfoId)(r) && r.body.toString().includes('terminated'));
    expect((await bob.transact(bob.request('SUBSCRIBE', alice.aor, { callId: 'crash-watch-2@test', cseq: 1, headers: { Event: 'presence', Expires: 0, Accept: PIDF } }))).status).to.equal(200);
    await ended;
    expect(await proc!.stop('SIGKILL')).to.equal('SIGKILL');
    const sentPresence = Math.max(...inDialog(callId).map((r) => r.cseq.seq));
    const sentWinfo = Math.max(...inDialog(winfoId).map((r) => r.cseq.seq));
    const sentVersion = Math.max(...inDialog(winfoId).map(version));
    const before = heard.length;

    await start();
    const after = (id: string) => (r: SipRequest) => isNotify(id)(r) && heard.indexOf(r) >= before;
    // RFC 3261 §12.2.2: a CSeq at or below one already seen would be refused as out of order.
    const resent = await bob.waitRequest(after(callId), 10_000);
    expect(resent.cseq.seq).to.be.greaterThan(sentPresence);
    const winfoResent = await alice.waitRequest(after(winfoId), 10_000);
    expect(winfoResent.cseq.seq).to.be.greaterThan(sentWinfo);
    // RFC 3857 §4.4: the version goes on above every one sent.
    expect(version(winfoResent)).to.be.greaterThan(sentVersion);

    // Killed again at once, before a flush could write what the restored NOTIFYs moved:
    // the skip was written before they went out, so the next start skips past them too.
    expect(await proc!.stop('SIGKILL')).to.equal('SIGKILL');
    const beforeSecond = heard.length;
    await start();
    const again = (id: string) => (r: SipRequest) => isNotify(id)(r) && heard.indexOf(r) >= beforeSecond;
    expect((await bob.waitRequest(again(callId), 10_000)).cseq.seq).to.be.greaterThan(resent.cseq.seq);
    const winfoAgain = await alice.waitRequest(again(winfoId), 10_000);
    expect(winfoAgain.cseq.seq).to.be.greaterThan(winfoResent.cseq.seq);
    expect(version(winfoAgain)).to.be.greaterThan(version(winfoResent));
  });

  it("keeps a rule's transformations for watchers restored after a restart (hide notes)", async () => {
    await start();
    const alice = await ua('alice');
    const bob = await ua('bob');
    expect((await alice.transact(publish(alice, { body: pidf(alice.aor, 'open', 'private words') }))).status).to.equal(200);
    const rule = await runCli(['rules', 'allow', 'alice@example.com', 'bob@example.com', '--hide-notes', '--config', proc!.configFile]);
    expect(rule.code, rule.out).to.equal(0);
    bob.autoAnswer('NOTIFY', 200);
    const callId = 'restart-hidden@test';
    const first = bob.waitRequest(isNotify(callId));
    expect((await bob.transact(bob.request('SUBSCRIBE', alice.aor, { callId, cseq: 1, headers: { Event: 'presence', Expires: 600, Accept: PIDF } }))).status).to.equal(200);
    const before = await first;
    expect(before.body.toString()).to.contain('<basic>open</basic>').and.not.contain('private words');

    expect(await proc!.stop('SIGTERM')).to.equal(0);
    await start();
    const resent = await bob.waitRequest((r) => isNotify(callId)(r) && r.cseq.seq > before.cseq.seq, 10_000);
    expect(resent.body.toString()).to.contain('<basic>open</basic>').and.not.contain('private words');
  });

  const dialogs = (entity: string, state: string) =>
    `<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="0" state="full" entity="${entity}"><dialog id="call-1"><state>${state}</state></dialog></dialog-info>`;

  it('after SIGTERM, the other event packages: dialog and message-summary entity-tags still refresh, busy-lamp and reg watchers go on in their dialogs', async () => {
    await start();
    const alice = await ua('alice');
    const bob = await ua('bob');
    const pub = await alice.transact(publish(alice, { event: 'dialog', contentType: DIALOG_INFO, body: dialogs(alice.aor, 'early') }));
    expect(pub.status).to.equal(200);
    const vm = await alice.transact(publish(alice, { event: 'message-summary', contentType: SUMMARY, body: 'Messages-Waiting: yes\r\nVoice-Message: 1/0\r\n' }));
    expect(vm.status).to.equal(200);
    bob.autoAnswer('NOTIFY', 200);
    const callId = 'restart-lamp@test';
    const first = bob.waitRequest(isNotify(callId));
    const sub = await bob.transact(bob.request('SUBSCRIBE', alice.aor, { callId, cseq: 1, headers: { Event: 'dialog', Expires: 600, Accept: DIALOG_INFO } }));
    expect(sub.status).to.equal(200);
    const before = parseDialogInfo((await first).body);
    if (!before.ok) throw new Error(before.reason);
    expect([before.document.version, before.document.dialogs.map((d) => d.state)]).to.deep.equal([0, ['early']]);
    // A message waits for alice; she watches her own message waiting.
    const stored = bob.request('MESSAGE', alice.aor, { headers: { 'Content-Type': 'text/plain' }, body: 'call me' });
    expect((await bob.transact(stored)).status).to.equal(202);
    alice.autoAnswer('NOTIFY', 200);
    const mwiFirst = alice.waitRequest(isNotify('restart-mwi@test'));
    expect((await alice.transact(alice.request('SUBSCRIBE', alice.aor, { callId: 'restart-mwi@test', cseq: 1, headers: { Event: 'message-summary', Expires: 600, Accept: SUMMARY } }))).status).to.equal(200);
    expect((await mwiFirst).body.toString()).to.contain('Voice-Message: 1/0').and.to.contain('Text-Message: 1/0');
    // carol watches her own registrations (RFC 3680) from another socket.
    const carol = await ua('carol');
    const carolWatch = await ua('carol');
    expect((await carol.transact(registerRequest(carol, { expires: 600 }))).status).to.equal(200);
    carolWatch.autoAnswer('NOTIFY', 200);
    const regFirst = carolWatch.waitRequest(isNotify('restart-reg@test'));
    expect((await carolWatch.transact(carolWatch.request('SUBSCRIBE', carol.aor, { callId: 'restart-reg@test', cseq: 1, headers: { Event: 'reg', Expires: 600, Accept: 'application/reginfo+xml' } }))).status).to.equal(200);
    expect((await regFirst).body.toString()).to.contain('event="registered"');

    expect(await proc!.stop('SIGTERM')).to.equal(0);
    await start();

    const mwiResent = alice.waitRequest((n) => isNotify('restart-mwi@test')(n) && n.body.toString().includes('Text-Message: 1/0'), 10_000);
    // The watcher's subscription is back: a NOTIFY in the old dialog, the full state, the version going on.
    const resent = await bob.waitRequest(isNotify(callId), 10_000);
    const r = parseDialogInfo(resent.body);
    if (!r.ok) throw new Error(r.reason);
    expect([r.document.version, r.document.state, r.document.dialogs.map((d) => d.state)]).to.deep.equal([1, 'full', ['early']]);

    // carol's reg subscription is back with her restored binding; a refresh of it is told as refreshed.
    const regResent = await carolWatch.waitRequest(isNotify('restart-reg@test'), 10_000);
    expect(regResent.body.toString()).to.match(/version="1" state="full"/).and.to.contain('state="active" event="registered"');
    const refreshed = carolWatch.waitRequest((n) => isNotify('restart-reg@test')(n) && n.body.toString().includes('event="refreshed"'));
    expect((await carol.transact(registerRequest(carol, { expires: 600 }))).status).to.equal(200);
    expect((await refreshed).body.toString()).to.match(/version="2" state="partial"/);

    // The dialog publication's entity-tag still modifies it; the watcher hears of it.
    const changed = bob.waitRequest((n) => isNotify(callId)(n) && n.body.toString().includes('confirmed'));
    expect((await alice.transact(publish(alice, { event: 'dialog', contentType: DIALOG_INFO, etag: pub.getHeader('sip-etag')!, body: dialogs(alice.aor, 'confirmed') }))).status).to.equal(200);
    const p = parseDialogInfo((await changed).body);
    if (!p.ok) throw new Error(p.reason);
    expect([p.document.version, p.document.state]).to.deep.equal([2, 'partial']);

    // alice's message waiting is back: the voicemail summary, and the message stored for her before the stop.
    const mwi = await mwiResent;
    expect(mwi.body.toString()).to.contain('Voice-Message: 1/0');
    expect((await alice.transact(publish(alice, { event: 'message-summary', contentType: SUMMARY, etag: vm.getHeader('sip-etag')! }))).status).to.equal(200);
  });
});
