import { expect } from 'chai';
import { InMemoryOfflineMessageStore } from '../../../src/messaging/memory-offline-store.js';
import { MessagingService } from '../../../src/messaging/messaging-service.js';
import { RoomService, type RoomSettings } from '../../../src/messaging/rooms/room-service.js';
import { LocationService } from '../../../src/registrar/location-service.js';
import { RegistrarService } from '../../../src/registrar/registrar-service.js';
import type { SipRequest } from '../../../src/sip/message.js';
import { randomToken } from '../../../src/sip/response.js';
import { migrate } from '../../../src/store/migrations.js';
import { RoomRepository } from '../../../src/store/repositories/rooms.js';
import { openSqlite } from '../../../src/store/sqlite-driver.js';
import type { Database } from '../../../src/store/database.js';
import { ManualTimers } from '../../../src/util/timers.js';
import { domains, fakeContext, parseRequest, register, run, silent } from '../../registrar/fakes.js';
import { FakeTransactions, settle } from '../fake-transactions.js';

const EPOCH = Date.UTC(2026, 11, 7);
const ROOM = 'sip:lobby@example.com';
const SETTINGS: RoomSettings = { historySize: 5, maxMembers: 200, maxRoomsPerUser: 3, maxRooms: 100, maxMessagesPerMinute: 2, offlineTtlSeconds: 3600 };

/** A MESSAGE from `user` to the room. */
function say(user: string, body: string, contentType = 'text/plain'): SipRequest {
  return parseRequest(
    [
      `MESSAGE ${ROOM} SIP/2.0`,
      `Via: SIP/2.0/UDP 192.0.2.30:5070;branch=z9hG4bK${randomToken()}`,
      'Max-Forwards: 70',
      `From: <sip:${user}@example.com>;tag=${randomToken()}`,
      `To: <${ROOM}>`,
      `Call-ID: ${randomToken()}@test`,
      'CSeq: 1 MESSAGE',
      `Content-Type: ${contentType}`,
    ].join('\n'),
    body,
  );
}

describe('messaging: the room service with the messaging service (fake transactions, manual clock)', () => {
  let timers: ManualTimers;
  let tx: FakeTransactions;
  let messaging: MessagingService;
  let registrar: RegistrarService;
  let rooms: RoomService;
  let db: Database;

  async function setup(answer: boolean): Promise<void> {
    timers = new ManualTimers();
    const wallClock = { nowMs: () => EPOCH + timers.now() };
    const location = new LocationService({ timers, wallClock });
    registrar = new RegistrarService({ location, domains: domains(), settings: { minExpires: 60, maxExpires: 3600, defaultExpires: 3600, maxContactsPerAor: 8 } });
    tx = new FakeTransactions(answer ? () => 200 : undefined);
    messaging = new MessagingService({
      location,
      domains: domains(),
      transactions: tx,
      timers,
      wallClock,
      settings: { maxUdpMessageSize: 1300, offlineMaxMessages: 10, offlineMaxBytes: 10_000, offlineTtlSeconds: 3600 },
      maxMessageSize: 65535,
      store: new InMemoryOfflineMessageStore(),
      logger: silent,
    });
    db = await openSqlite();
    await migrate(db);
    rooms = new RoomService({ domains: domains(), deliver: (m, o) => messaging.deliver(m, o), settings: SETTINGS, wallClock, logger: silent });
    await rooms.useStore(new RoomRepository(db));
    messaging.addTarget(rooms);
  }

  afterEach(async () => {
    messaging.close();
    await db.close();
  });

  async function registerUser(user: string, i: number): Promise<void> {
    const res = await run((c) => registrar.handle(c), fakeContext(register({ user, contacts: [`<sip:${user}@192.0.2.${(i % 250) + 1}:5062>`], callId: `reg-${user}@test` })));
    expect(res.status).to.equal(200);
  }

  it('counts each member\'s messages in a one-minute window: the third gets 503 with the seconds left, the next minute is free again', async () => {
    await setup(true);
    expect((await rooms.create(ROOM, 'sip:alice@example.com')).ok).to.equal(true);
    expect((await run((c) => messaging.handle(c), fakeContext(say('alice', 'one')))).status).to.equal(202);
    timers.advance(20_000);
    expect((await run((c) => messaging.handle(c), fakeContext(say('alice', 'two')))).status).to.equal(202);
    const third = await run((c) => messaging.handle(c), fakeContext(say('alice', 'three')));
    expect([third.status, third.reason, third.getHeader('retry-after')]).to.deep.equal([503, 'Sending Too Fast', '40']);
    timers.advance(40_000);
    expect((await run((c) => messaging.handle(c), fakeContext(say('alice', 'four')))).status).to.equal(202);
    // What was refused is not in the history.
    expect((await new RoomRepository(db).history(ROOM, 10)).map((h) => h.body.toString())).to.deep.equal(['one', 'two', 'four']);
  });

  it('sends at most 64 copies at once, the rest as earlier ones are answered', async () => {
    await setup(false);
    expect((await rooms.create(ROOM, 'sip:m0@example.com')).ok).to.equal(true);
    for (let i = 1; i <= 100; i++) {
      await registerUser(`m${i}`, i);
      expect((await rooms.join(ROOM, `sip:m${i}@example.com`)).ok).to.equal(true);
    }
    const fc = fakeContext(say('m0', 'to everyone'));
    const handled = messaging.handle(fc.ctx);
    await tx.waitSent(64);
    await settle();
    expect(tx.sent).to.have.length(64);
    expect(fc.responses.map((r) => r.status)).to.deep.equal([202]);
    for (const s of tx.sent.slice(0, 64)) s.answer(200);
    await tx.waitSent(100);
    for (const s of tx.sent.slice(64)) s.answer(200);
    await handled;
    expect(tx.sent).to.have.length(100);
    // One copy per member but the sender, each From the room, To the member, with the nick.
    const to = new Set(tx.sent.map((s) => s.request.to.uri.raw));
    expect(to.size).to.equal(100);
    expect(to.has('sip:m0@example.com')).to.equal(false);
    expect(tx.sent.every((s) => s.request.from.uri.raw === ROOM && s.request.body.toString() === 'm0: to everyone')).to.equal(true);
    expect(rooms.outcomes.delivered).to.equal(100);
  });

  it('loads rooms back from the store: owner, members, bans, history, and the life cycle goes on', async () => {
    await setup(true);
    await rooms.create(ROOM, 'sip:alice@example.com', { persistent: true });
    await rooms.join(ROOM, 'sip:bob@example.com', true);
    await rooms.ban(ROOM, 'sip:alice@example.com', 'sip:eve@example.com');
    await rooms.setTopic(ROOM, 'sip:alice@example.com', 'plans');
    expect((await run((c) => messaging.handle(c), fakeContext(say('bob', 'kept')))).status).to.equal(202);
    const again = new RoomService({ domains: domains(), deliver: (m, o) => messaging.deliver(m, o), settings: SETTINGS, wallClock: { nowMs: () => EPOCH }, logger: silent });
    await again.useStore(new RoomRepository(db));
    expect(again.get(ROOM)).to.deep.include({ owner: 'sip:alice@example.com', topic: 'plans', persistent: true, members: ['sip:alice@example.com', 'sip:bob@example.com'], bans: ['sip:eve@example.com'] });
    expect((await again.join(ROOM, 'sip:eve@example.com')).ok).to.equal(false);
    expect((await again.leave(ROOM, 'sip:alice@example.com')).ok).to.equal(true);
    // Persistent: alice stays the owner though she left.
    expect(again.get(ROOM)).to.deep.include({ owner: 'sip:alice@example.com', members: ['sip:bob@example.com'] });
    expect((await again.setPersistent(ROOM, 'sip:bob@example.com', false)).ok).to.equal(false);
  });
});
