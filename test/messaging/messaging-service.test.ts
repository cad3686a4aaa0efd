import { expect } from 'chai';
import { InMemoryOfflineMessageStore } from '../../src/messaging/memory-offline-store.js';
import { MessagingService, type MessagingSettings } from '../../src/messaging/messaging-service.js';
import { LocationService } from '../../src/registrar/location-service.js';
import { RegistrarService } from '../../src/registrar/registrar-service.js';
import type { UserDirectory } from '../../src/registrar/user-directory.js';
import type { SipRequest, SipResponse } from '../../src/sip/message.js';
import type { Flow } from '../../src/transport/types.js';
import { ManualTimers } from '../../src/util/timers.js';
import { createResponse } from '../../src/sip/response.js';
import { domains, fakeContext, message, register, run, silent, tcpFlow, UDP_FLOW } from '../registrar/fakes.js';
import { FakeTransactions, settle, type Answer } from './fake-transactions.js';

const EPOCH = Date.UTC(2024, 0, 1);
const SETTINGS: MessagingSettings = { maxUdpMessageSize: 1300, offlineMaxMessages: 3, offlineMaxBytes: 1000, offlineTtlSeconds: 3600 };

describe('messaging: MESSAGE (RFC 3428)', () => {
  let timers: ManualTimers;
  let location: LocationService;
  let registrar: RegistrarService;
  let tx: FakeTransactions;
  let store: InMemoryOfflineMessageStore;
  let messaging: MessagingService;
  let cseq: number;

  function setup(opts: { settings?: Partial<MessagingSettings>; users?: UserDirectory; answerer?: (req: SipRequest) => Answer | undefined; listeners?: Array<{ protocol: string; port: number }> } = {}): void {
    timers = new ManualTimers();
    const wallClock = { nowMs: () => EPOCH + timers.now() };
    location = new LocationService({ timers, wallClock });
    registrar = new RegistrarService({ location, domains: domains(), settings: { minExpires: 60, maxExpires: 3600, defaultExpires: 3600, maxContactsPerAor: 8 } });
    tx = new FakeTransactions(opts.answerer ? (req) => opts.answerer!(req) : undefined);
    store = new InMemoryOfflineMessageStore();
    messaging = new MessagingService({
      location,
      domains: domains(),
      transactions: tx,
      timers,
      wallClock,
      settings: { ...SETTINGS, ...opts.settings },
      maxMessageSize: 65535,
      store,
      users: opts.users,
      ...(opts.listeners ? { listeners: () => opts.listeners! } : {}),
      logger: silent,
    });
    registrar.onRegistered((aor) => messaging.registered(aor));
    cseq = 1;
  }

  beforeEach(() => setup());
  afterEach(() => messaging.close());

  async function registerBob(contact = '<sip:bob@192.0.2.10:5062>', flow: Flow = UDP_FLOW, callId = 'reg-1@test'): Promise<void> {
    const res = await run((c) => registrar.handle(c), fakeContext(register({ contacts: [contact], callId, cseq: cseq++ }), flow));
    expect(res.status).to.equal(200);
  }

  /** Sends a MESSAGE and resolves with the sender's final response. */
  function send(req: SipRequest = message()): Promise<SipResponse> {
    return run((c) => messaging.handle(c), fakeContext(req));
  }

  it('forwards to the registered contact as a proxy and relays its 200', async () => {
    setup({ answerer: () => 200 });
    await registerBob();
    const req = message({ body: 'hi bob' });
    const res = await send(req);
    expect(res.status).to.equal(200);
    expect(res.to.tag).to.equal('uas-tag');
    expect(res.getHeader('via')).to.equal(req.getHeader('via'));
    expect(tx.sent).to.have.length(1);
    const fwd = tx.sent[0]!.request;
    expect(fwd.uriText).to.equal('sip:bob@192.0.2.10:5062');
    expect(fwd.maxForwards).to.equal(69);
    expect(fwd.getHeader('from')).to.equal(req.getHeader('from'));
    expect(fwd.getHeader('to')).to.equal(req.getHeader('to'));
    expect(fwd.body.toString()).to.equal('hi bob');
    expect(fwd.hasHeader('route')).to.equal(false);
    expect(tx.sent[0]!.destination).to.deep.equal({ protocol: 'udp', address: '192.0.2.10', port: 5062 });
    // The original request is not changed by forwarding.
    expect(req.uriText).to.equal('sip:bob@example.com');
  });

  it('forks to every contact in parallel; the first 2xx goes to the sender at once', async () => {
    await registerBob('<sip:bob@192.0.2.10:5062>');
    await registerBob('<sip:bob@192.0.2.11:5062>', { ...UDP_FLOW, remoteAddress: '192.0.2.11' }, 'reg-2@test');
    const fc = fakeContext(message());
    const done = messaging.handle(fc.ctx);
    await tx.waitSent(2);
    expect(tx.sent.map((s) => s.request.uriText).sort()).to.deep.equal(['sip:bob@192.0.2.10:5062', 'sip:bob@192.0.2.11:5062']);
    tx.sent[1]!.answer(200);
    await settle();
    expect(fc.responses.map((r) => r.status)).to.deep.equal([200]);
    tx.sent[0]!.answer(486);
    await done;
    expect(fc.responses.map((r) => r.status)).to.deep.equal([200]);
  });

  for (const [answers, expected] of [
    [[486, 404], 486],
    [[404, 603], 603],
    [[503, 503], 500],
    [[500, 415], 415],
    [['timeout', 404], 404],
    [[430, 408], 480],
  ] as Array<[Answer[], number]>) {
    it(`answers the best final response: ${answers.join(' + ')} → ${expected} (RFC 3261 §16.7)`, async () => {
      await registerBob('<sip:bob@192.0.2.10:5062>');
      await registerBob('<sip:bob@192.0.2.11:5062>', { ...UDP_FLOW, remoteAddress: '192.0.2.11' }, 'reg-2@test');
      const byHost: Record<string, Answer> = { '192.0.2.10': answers[0]!, '192.0.2.11': answers[1]! };
      tx.answerer = (_req, dest) => byHost[dest.address];
      const res = await send();
      expect(res.status).to.equal(expected);
      expect(store.size).to.equal(0);
    });
  }

  it('marks a binding unreachable when a request to it times out, and stores the message (202)', async () => {
    setup({ answerer: () => 'timeout' });
    await registerBob();
    expect((await send(message({ body: 'one' }))).status).to.equal(202);
    expect(location.lookup('sip:bob@example.com')).to.have.length(0);
    // Now the user counts as offline: the next message is stored without trying the contact.
    expect((await send(message({ body: 'two' }))).status).to.equal(202);
    expect(tx.sent).to.have.length(1);
    expect(store.size).to.equal(2);
  });

  it('answers the sender within the answer window when a contact stays silent, storing the message (RFC 3261 §17.1.2.2 Timer F)', async () => {
    await registerBob();
    const fc = fakeContext(message({ body: 'anyone there?' }));
    const done = messaging.handle(fc.ctx);
    await tx.waitSent(1);
    timers.advance(29_999);
    await settle();
    expect(fc.responses).to.have.length(0);
    // 30 s: before the sender's own Timer F (64*T1 = 32 s) gives up on us.
    timers.advance(1);
    await done;
    expect(fc.responses.map((r) => r.status)).to.deep.equal([202]);
    expect(location.lookup('sip:bob@example.com')).to.have.length(0);
    expect(store.size).to.equal(1);
    // The phone comes back: it gets the message.
    tx.answerer = () => 200;
    await registerBob('<sip:bob@192.0.2.10:5062>', UDP_FLOW, 'reg-new@test');
    await settle();
    expect(tx.sent.map((s) => s.request.body.toString())).to.deep.equal(['anyone there?', 'anyone there?']);
    // Its Date is when the server received it, not when it gave up on the silent phone.
    expect(tx.sent[1]!.request.getHeader('date')).to.equal(new Date(EPOCH).toUTCString());
    expect(store.size).to.equal(0);
  });

  it('withdraws the stored copy when the silent contact answers 2xx late, so it is not delivered twice', async () => {
    await registerBob();
    const fc = fakeContext(message({ body: 'late' }));
    const done = messaging.handle(fc.ctx);
    await tx.waitSent(1);
    timers.advance(30_000);
    await done;
    expect(fc.responses.map((r) => r.status)).to.deep.equal([202]);
    expect(store.size).to.equal(1);
    tx.sent[0]!.answer(200);
    await settle();
    expect(store.size).to.equal(0);
    expect(fc.responses).to.have.length(1);
  });

  it('does not store when a silent contact is beside one that answered (best response instead)', async () => {
    await registerBob('<sip:bob@192.0.2.10:5062>');
    await registerBob('<sip:bob@192.0.2.11:5062>', { ...UDP_FLOW, remoteAddress: '192.0.2.11' }, 'reg-2@test');
    const fc = fakeContext(message());
    const done = messaging.handle(fc.ctx);
    await tx.waitSent(2);
    tx.sent[0]!.answer(486);
    await settle();
    timers.advance(30_000);
    await done;
    expect(fc.responses.map((r) => r.status)).to.deep.equal([486]);
    expect(store.size).to.equal(0);
  });

  it('keeps the answering UA\'s Server header on a relayed response (RFC 3261 §16.7 step 9)', async () => {
    setup({
      answerer: () => (req) => {
        const res = createResponse(req, 200, undefined, { toTag: 'uas-tag' });
        res.setHeader('Server', 'bob-phone/1.0');
        res.addHeader('X-Extra', 'kept');
        return res;
      },
    });
    await registerBob();
    const res = await send();
    expect(res.status).to.equal(200);
    expect(res.getHeaders('server')).to.deep.equal(['bob-phone/1.0']);
    expect(res.getHeader('x-extra')).to.equal('kept');
  });

  it('stores the message when every contact fails at the transport (known undelivered)', async () => {
    setup({ answerer: () => 'transport-error' });
    await registerBob('<sip:bob@10.0.0.5;transport=tcp>', tcpFlow(5));
    expect((await send()).status).to.equal(202);
    expect(store.size).to.equal(1);
  });

  it('stores for an offline user (202) and delivers on the next REGISTER, with the original sender and a Date', async () => {
    setup({ answerer: () => 200 });
    const req = message({ body: 'while you were out', contentType: 'text/html;charset=utf-8', extra: ['Subject: news'] });
    expect((await send(req)).status).to.equal(202);
    expect(tx.sent).to.have.length(0);
    expect(await messaging.storedMessages('sip:bob@example.com')).to.deep.equal({ count: 1, bytes: 18 });
    expect((await store.listFor('sip:bob@example.com', EPOCH))[0]!.sender).to.equal('sip:alice@example.com');
    timers.advance(5000);
    await registerBob();
    await settle();
    expect(tx.sent).to.have.length(1);
    const d = tx.sent[0]!.request;
    expect(d.method).to.equal('MESSAGE');
    expect(d.uriText).to.equal('sip:bob@192.0.2.10:5062');
    expect(d.getHeader('from')).to.equal(req.getHeader('from'));
    expect(d.getHeader('to')).to.equal(req.getHeader('to'));
    expect(d.getHeader('content-type')).to.equal('text/html;charset=utf-8');
    expect(d.getHeader('subject')).to.equal('news');
    expect(d.getHeader('date')).to.equal(new Date(EPOCH).toUTCString());
    expect(d.body.toString()).to.equal('while you were out');
    expect(store.size).to.equal(0);
  });

  it('delivers stored messages oldest first, one after the other, keeping those not answered 2xx', async () => {
    for (const body of ['one', 'two', 'three']) {
      expect((await send(message({ body }))).status).to.equal(202);
      timers.advance(1000);
    }
    await registerBob();
    await tx.waitSent(1);
    expect(tx.sent[0]!.request.body.toString()).to.equal('one');
    tx.sent[0]!.answer(200);
    await tx.waitSent(2);
    expect(tx.sent[1]!.request.body.toString()).to.equal('two');
    tx.sent[1]!.answer(415);
    await tx.waitSent(3);
    tx.sent[2]!.answer(200);
    await settle();
    expect((await store.listFor('sip:bob@example.com', EPOCH + timers.now())).map((m) => m.body.toString())).to.deep.equal(['two']);
  });

  it('removes a stored message whose delivery was answered 2xx only after the answer window', async () => {
    expect((await send(message({ body: 'slow' }))).status).to.equal(202);
    await registerBob();
    await tx.waitSent(1);
    timers.advance(30_000);
    await settle();
    expect(store.size).to.equal(1);
    tx.sent[0]!.answer(200);
    await settle();
    expect(store.size).to.equal(0);
  });

  it('stops delivering when the contact is unreachable again, and goes on at the next REGISTER', async () => {
    await send(message({ body: 'a' }));
    await send(message({ body: 'b' }));
    tx.answerer = () => 'timeout';
    await registerBob();
    await settle();
    expect(tx.sent).to.have.length(1);
    expect(store.size).to.equal(2);
    tx.answerer = () => 200;
    await registerBob();
    await settle();
    expect(tx.sent.slice(1).map((s) => s.request.body.toString())).to.deep.equal(['a', 'b']);
    expect(store.size).to.equal(0);
  });

  it('refuses with 480 over the per-user count or byte limit, storing nothing half-way', async () => {
    setup({ settings: { offlineMaxMessages: 2, offlineMaxBytes: 100 } });
    expect((await send(message({ body: 'x'.repeat(40) }))).status).to.equal(202);
    expect((await send(message({ body: 'x'.repeat(61) }))).status).to.equal(480);
    expect((await send(message({ body: 'x'.repeat(60) }))).status).to.equal(202);
    expect((await send(message({ body: 'y' }))).status).to.equal(480);
    expect(await messaging.storedMessages('sip:bob@example.com')).to.deep.equal({ count: 2, bytes: 100 });
    // Another user has their own quota.
    expect((await send(message({ to: 'sip:carol@example.com' }))).status).to.equal(202);
    expect(await messaging.storedMessageSummary()).to.deep.equal([
      { recipient: 'sip:bob@example.com', count: 2, bytes: 100 },
      { recipient: 'sip:carol@example.com', count: 1, bytes: 5 },
    ]);
  });

  it('keeps the limit under concurrent MESSAGEs to one user', async () => {
    setup({ settings: { offlineMaxMessages: 2 } });
    const results = await Promise.all([1, 2, 3, 4].map(() => send()));
    expect(results.map((r) => r.status).sort()).to.deep.equal([202, 202, 480, 480]);
    expect(store.size).to.equal(2);
  });

  it('answers 503 with Retry-After when too many MESSAGEs for one offline user wait to be stored', async () => {
    // A store that answers nothing until released: every MESSAGE waits in the user's line.
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    class SlowStore extends InMemoryOfflineMessageStore {
      override async usage(aor: string, nowMs: number) {
        await gate;
        return super.usage(aor, nowMs);
      }
    }
    const slow = new SlowStore();
    setup({ settings: { offlineMaxMessages: 100, offlineMaxBytes: 100_000 } });
    messaging.useStore(slow);
    const waiting = Array.from({ length: 64 }, () => send());
    const refused = await send();
    expect(refused.status).to.equal(503);
    expect(refused.getHeader('retry-after')).to.equal('5');
    release();
    const statuses = await Promise.all(waiting);
    expect(statuses.every((r) => r.status === 202)).to.equal(true);
    expect(slow.size).to.equal(64);
  });

  it('forwards typing indications to an online user but never stores them (RFC 3994)', async () => {
    const xml = '<?xml version="1.0"?><isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing"><state>active</state></isComposing>';
    expect((await send(message({ contentType: 'application/im-iscomposing+xml', body: xml }))).status).to.equal(480);
    const cpim = `From: <sip:alice@example.com>\r\nTo: <sip:bob@example.com>\r\n\r\nContent-Type: application/im-iscomposing+xml\r\n\r\n${xml}`;
    expect((await send(message({ contentType: 'message/cpim', body: cpim }))).status).to.equal(480);
    expect(store.size).to.equal(0);
    tx.answerer = () => 200;
    await registerBob();
    expect((await send(message({ contentType: 'application/im-iscomposing+xml', body: xml }))).status).to.equal(200);
    expect(tx.sent[0]!.request.getHeader('content-type')).to.equal('application/im-iscomposing+xml');
  });

  it('passes CPIM and unknown body types through untouched', async () => {
    setup({ answerer: () => 200 });
    await registerBob();
    const body = 'From: <sip:alice@example.com>\r\nTo: <sip:bob@example.com>\r\n\r\nContent-Type: text/plain\r\n\r\nhello';
    await send(message({ contentType: 'message/cpim', body }));
    await send(message({ contentType: 'application/x-custom+json', body: '{"a":1}' }));
    expect(tx.sent.map((s) => [s.request.getHeader('content-type'), s.request.body.toString()])).to.deep.equal([
      ['message/cpim', body],
      ['application/x-custom+json', '{"a":1}'],
    ]);
  });

  it('refuses with 513 a MESSAGE too large for UDP, but sends it over TCP (RFC 3428 §7)', async () => {
    setup({ answerer: () => 200 });
    await registerBob();
    const big = message({ body: 'x'.repeat(1400) });
    expect((await send(big)).status).to.equal(513);
    expect(tx.sent).to.have.length(0);
    await registerBob('<sip:bob@10.0.0.5;transport=tcp>', tcpFlow(5), 'reg-tcp');
    expect((await send(message({ body: 'x'.repeat(1400) }))).status).to.equal(200);
    expect(tx.sent).to.have.length(1);
    expect(tx.sent[0]!.destination.protocol).to.equal('tcp');
    // A small one goes to both.
    expect((await send(message({ body: 'small' }))).status).to.equal(200);
    expect(tx.sent).to.have.length(3);
  });

  it('answers 404 for a user the directory does not know, 404 for no user, 403 for another domain', async () => {
    setup({ users: { exists: (aor) => aor !== 'sip:ghost@example.com' } });
    expect((await send(message({ to: 'sip:ghost@example.com' }))).status).to.equal(404);
    expect((await send(message({ to: 'sip:example.com' }))).status).to.equal(404);
    expect((await send(message({ to: 'sip:bob@elsewhere.org' }))).status).to.equal(403);
    expect(store.size).to.equal(0);
  });

  it('removes a Route naming us and refuses one naming another hop', async () => {
    setup({ answerer: () => 200 });
    await registerBob();
    expect((await send(message({ extra: ['Route: <sip:example.com;lr>'] }))).status).to.equal(200);
    expect(tx.sent[0]!.request.hasHeader('route')).to.equal(false);
    expect((await send(message({ extra: ['Route: <sip:127.0.0.1;lr>, <sip:proxy.elsewhere.org;lr>'] }))).status).to.equal(403);
  });

  it('answers 420 to a Proxy-Require it cannot honour, and 400 to a bad From', async () => {
    const res = await send(message({ extra: ['Proxy-Require: foo'] }));
    expect(res.status).to.equal(420);
    expect(res.getHeader('unsupported')).to.equal('foo');
    const bad = message();
    bad.setHeader('From', '<sip:alice@example.com');
    expect((await send(bad)).status).to.equal(400);
    expect(store.size).to.equal(0);
  });

  it('answers 482 Loop Detected for a contact that is this server, sending nothing (RFC 3261 §16.3 step 4)', async () => {
    setup({ answerer: () => 200, listeners: [{ protocol: 'udp', port: 5060 }, { protocol: 'tcp', port: 5060 }] });
    await registerBob('<sip:bob@127.0.0.1:5060>');
    const res = await send();
    expect(res.status).to.equal(482);
    expect(res.reason).to.equal('Loop Detected');
    expect(tx.sent).to.have.length(0);
    expect(store.size).to.equal(0);
    // Our domain name on our port is us too; another port on our host is a UA beside us.
    await registerBob('<sip:bob@example.com;transport=tcp>', UDP_FLOW, 'reg-2@test');
    await registerBob('<sip:bob@127.0.0.1:5070>', UDP_FLOW, 'reg-3@test');
    const res2 = await send();
    expect(res2.status).to.equal(200);
    expect(tx.sent.map((x) => x.request.uriText)).to.deep.equal(['sip:bob@127.0.0.1:5070']);
  });

  it('forwards a SIPS request only to contacts reached over TLS; with none, 480 with Warning 380 and nothing stored (RFC 5630)', async () => {
    setup({ answerer: () => 200 });
    await registerBob();
    const plain = await send(message({ to: 'sips:bob@example.com' }));
    expect(plain.status).to.equal(480);
    expect(plain.getHeader('warning')).to.equal('380 example.com "SIPS Not Allowed"');
    expect(tx.sent).to.have.length(0);
    expect(store.size).to.equal(0);
    // Unknown or offline users the same: a stored copy would go out later in plain text.
    expect((await send(message({ to: 'sips:carol@example.com' }))).status).to.equal(480);
    expect(store.size).to.equal(0);
    await registerBob('<sips:bob@192.0.2.20:5061>', { ...tcpFlow(9, 5061), protocol: 'tls' }, 'reg-tls@test');
    expect((await send(message({ to: 'sips:bob@example.com' }))).status).to.equal(200);
    expect(tx.sent).to.have.length(1);
    expect(tx.sent[0]!.destination.protocol).to.equal('tls');
    // A sip: request still goes to every contact.
    expect((await send(message())).status).to.equal(200);
    expect(tx.sent).to.have.length(3);
  });

  it('routes through the Path of the binding', async () => {
    setup({ answerer: () => 200 });
    const res = await run((c) => registrar.handle(c), fakeContext(register({ extra: ['Path: <sip:edge.example.net:5070;lr>'] })));
    expect(res.status).to.equal(200);
    await send();
    expect(tx.sent[0]!.request.getHeaders('route')).to.deep.equal(['<sip:edge.example.net:5070;lr>']);
    expect(tx.sent[0]!.request.uriText).to.equal('sip:bob@192.0.2.10:5062');
    expect(tx.sent[0]!.destination).to.deep.equal({ protocol: 'udp', address: 'edge.example.net', port: 5070 });
  });

  it('switches to another offline store, for storing and for delivery', async () => {
    const durable = new InMemoryOfflineMessageStore();
    messaging.useStore(durable);
    expect((await send(message({ body: 'kept' }))).status).to.equal(202);
    expect(store.size).to.equal(0);
    expect(durable.size).to.equal(1);
    tx.answerer = () => 200;
    await registerBob();
    await settle();
    expect(tx.sent.map((s) => s.request.body.toString())).to.deep.equal(['kept']);
    expect(durable.size).to.equal(0);
  });

  it('asks the store once for the registrations of a burst, and lists only recipients that have messages', async () => {
    const questions: string[][] = [];
    const listed: string[] = [];
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const durable = new (class extends InMemoryOfflineMessageStore {
      override async recipientsWithMessages(recipients: readonly string[], nowMs: number): Promise<readonly string[]> {
        questions.push([...recipients]);
        // The first question is answered only once the burst has registered.
        if (questions.length === 1) await held;
        return super.recipientsWithMessages(recipients, nowMs);
      }
      override listFor(recipient: string, nowMs: number): ReturnType<InMemoryOfflineMessageStore['listFor']> {
        listed.push(recipient);
        return super.listFor(recipient, nowMs);
      }
    })();
    messaging.useStore(durable);
    expect((await send(message({ to: 'sip:u3@example.com', body: 'for u3' }))).status).to.equal(202);
    tx.answerer = () => 200;
    const users = ['u0', 'u1', 'u2', 'u3', 'u4'];
    const registering = users.map((user, i) =>
      run((c) => registrar.handle(c), fakeContext(register({ user, contacts: [`<sip:${user}@192.0.2.10:5062>`], callId: `reg-${i}@test` }))),
    );
    expect((await Promise.all(registering)).map((r) => r.status)).to.deep.equal([200, 200, 200, 200, 200]);
    release();
    await settle();
    expect(questions).to.deep.equal([['sip:u0@example.com'], ['sip:u1@example.com', 'sip:u2@example.com', 'sip:u3@example.com', 'sip:u4@example.com']]);
    expect(listed).to.deep.equal(['sip:u3@example.com']);
    expect(tx.sent.map((s) => [s.request.uriText, s.request.body.toString()])).to.deep.equal([['sip:u3@192.0.2.10:5062', 'for u3']]);
    expect(durable.size).to.equal(0);
  });

  it('drops stored messages after their time-to-live', async () => {
    expect((await send()).status).to.equal(202);
    timers.advance(3600_000);
    expect(await messaging.storedMessages('sip:bob@example.com')).to.deep.equal({ count: 0, bytes: 0 });
    timers.advance(60_000);
    await settle();
    expect(store.size).to.equal(0);
    tx.answerer = () => 200;
    await registerBob();
    await settle();
    expect(tx.sent).to.have.length(0);
  });
});
