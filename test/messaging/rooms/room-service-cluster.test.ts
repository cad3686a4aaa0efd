import { expect } from 'chai';
import type { Logger } from 'pino';
import { RoomService, type RoomCluster, type RoomStreamMessage, type RoomSettings } from '../../../src/messaging/rooms/room-service.js';
import type { StoredMessage } from '../../../src/messaging/offline-message-store.js';
import { randomToken } from '../../../src/sip/response.js';
import type { SipRequest } from '../../../src/sip/message.js';
import { migrate } from '../../../src/store/migrations.js';
import { RoomRepository } from '../../../src/store/repositories/rooms.js';
import { openSqlite } from '../../../src/store/sqlite-driver.js';
import type { Database } from '../../../src/store/database.js';
import { decodeRoomMessage, encodeRoomMessage } from '../../../src/cluster/cluster-rooms.js';
import { domains, fakeContext, parseRequest, run, silent } from '../../registrar/fakes.js';

const EPOCH = Date.UTC(2026, 11, 7);
const ROOM = 'sip:lobby@example.com';
const SETTINGS: RoomSettings = { historySize: 5, maxMembers: 200, maxRoomsPerUser: 3, maxRooms: 100, maxMessagesPerMinute: 10, offlineTtlSeconds: 3600 };
const aor = (user: string): string => `sip:${user}@example.com`;

function say(user: string, body: string): SipRequest {
  return parseRequest(
    [
      `MESSAGE ${ROOM} SIP/2.0`,
      `Via: SIP/2.0/UDP 192.0.2.30:5070;branch=z9hG4bK${randomToken()}`,
      'Max-Forwards: 70',
      `From: <${aor(user)}>;tag=${randomToken()}`,
      `To: <${ROOM}>`,
      `Call-ID: ${randomToken()}@test`,
      'CSeq: 1 MESSAGE',
      'Content-Type: text/plain',
    ].join('\n'),
    body,
  );
}

/**
 * Two room services on one shared store, linked as two cluster nodes are by NATS: a change
 * at one is read again at the other, a room message goes to the "stream" (an array here).
 */
describe('messaging: rooms across a cluster (two room services, one store)', () => {
  let db: Database;
  let stream: RoomStreamMessage[];
  let direct: string[];
  let here: Array<{ node: string; to: string; body: string; storeWhenNone: boolean }>;
  let failPublish: boolean;
  let nodes: Record<'a' | 'b', RoomService>;
  let events: Array<[string, string, boolean]>;

  beforeEach(async () => {
    db = await openSqlite();
    await migrate(db);
    stream = [];
    direct = [];
    here = [];
    failPublish = false;
    events = [];
    const make = (name: 'a' | 'b', other: () => RoomService): RoomService => {
      const link: RoomCluster = {
        node: name,
        changed: (uri) => other().reload(uri),
        publish: (m) => (failPublish ? Promise.reject(new Error('no stream')) : (stream.push(m), Promise.resolve())),
      };
      const s = new RoomService({
        domains: domains(),
        deliver: (m: StoredMessage) => (direct.push(`${m.recipient} ${m.body.toString()}`), Promise.resolve('delivered')),
        settings: SETTINGS,
        wallClock: { nowMs: () => EPOCH },
        cluster: {
          link,
          deliverHere: (m: StoredMessage, o: { storeWhenNone: boolean; log?: Logger }) => {
            here.push({ node: name, to: m.recipient, body: m.body.toString(), storeWhenNone: o.storeWhenNone });
            return Promise.resolve(name === 'b' && m.recipient === aor('bob') ? 'delivered' : 'elsewhere');
          },
        },
        logger: silent,
      });
      s.onChange((uri, ended) => events.push([name, uri, ended]));
      return s;
    };
    nodes = { a: make('a', () => nodes.b), b: make('b', () => nodes.a) };
    await nodes.a.useStore(new RoomRepository(db));
    await nodes.b.useStore(new RoomRepository(db));
  });
  afterEach(async () => {
    await db.close();
  });

  it('a room made and joined at one node is the same room at the other, whose watchers hear of each change', async () => {
    expect((await nodes.a.join(ROOM, aor('alice'))).ok).to.equal(true);
    expect(nodes.b.get(ROOM)?.members).to.deep.equal([aor('alice')]);
    events = [];
    expect((await nodes.b.join(ROOM, aor('bob'))).ok).to.equal(true);
    expect(nodes.a.get(ROOM)?.members).to.deep.equal([aor('alice'), aor('bob')]);
    expect(events).to.deep.include(['a', ROOM, false]);
    expect((await nodes.a.setTopic(ROOM, aor('alice'), 'lunch')).ok).to.equal(true);
    expect(nodes.b.get(ROOM)?.topic).to.equal('lunch');
    expect((await nodes.a.ban(ROOM, aor('alice'), aor('bob'))).ok).to.equal(true);
    expect(nodes.b.get(ROOM)).to.deep.include({ members: [aor('alice')], bans: [aor('bob')] });
    events = [];
    expect((await nodes.b.destroy(ROOM)).ok).to.equal(true);
    expect(nodes.a.get(ROOM)).to.equal(undefined);
    expect(events).to.deep.include(['a', ROOM, true]);
  });

  it('a room message is in the stream before the 202, with its members; each node sends only to the members it holds', async () => {
    await nodes.a.join(ROOM, aor('alice'));
    await nodes.b.join(ROOM, aor('bob'));
    await nodes.a.join(ROOM, aor('carol'), true);
    direct = [];
    here = [];
    expect((await run((c) => nodes.a.handle(c, ROOM), fakeContext(say('alice', 'hello')))).status).to.equal(202);
    expect(stream).to.have.length(1);
    const m = stream[0]!;
    expect(m).to.deep.include({ room: ROOM, node: 'a' });
    expect(m.to).to.deep.equal([
      [aor('bob'), false],
      [aor('carol'), true],
    ]);
    // Not sent from the accepting node itself: its stream consumer sends, as every node's does.
    expect(direct).to.deep.equal([]);
    await nodes.b.streamed(decodeRoomMessage(Buffer.from(encodeRoomMessage(m))));
    await nodes.a.streamed(m);
    expect(here.map((h) => [h.node, h.to, h.storeWhenNone])).to.deep.equal([
      ['b', aor('bob'), false],
      ['b', aor('carol'), false],
      ['a', aor('bob'), true],
      ['a', aor('carol'), true],
    ]);
    expect(here[0]!.body).to.equal('alice: hello');
    expect(here[1]!.body).to.contain('Content-Type: text/plain').and.contain('hello');
    expect(nodes.b.outcomes.delivered).to.equal(1);
  });

  it('news missed (a lost link): a resync reads every room again, ended ones included', async () => {
    await nodes.a.join(ROOM, aor('alice'));
    const other = 'sip:other@example.com';
    await nodes.a.join(other, aor('alice'));
    const repo = new RoomRepository(db);
    // Written behind node b's back, as if the news never came.
    await repo.upsertMember(ROOM, { member: aor('carol'), cpim: false, joinedAt: EPOCH });
    await repo.deleteRoom(other);
    events = [];
    await nodes.b.resync();
    expect(nodes.b.get(ROOM)?.members).to.deep.equal([aor('alice'), aor('carol')]);
    expect(nodes.b.get(other)).to.equal(undefined);
    expect(events).to.deep.include.members([
      ['b', ROOM, false],
      ['b', other, true],
    ]);
  });

  it('a message the stream did not take is answered 503 and not kept in the history', async () => {
    await nodes.a.join(ROOM, aor('alice'));
    failPublish = true;
    const res = await run((c) => nodes.a.handle(c, ROOM), fakeContext(say('alice', 'lost')));
    expect([res.status, res.reason]).to.deep.equal([503, 'Cluster Store Unavailable']);
    // Not kept either: sent again, it is not in the history twice.
    expect(await new RoomRepository(db).history(ROOM, 10)).to.deep.equal([]);
  });

  it('the stream codec refuses anything malformed', () => {
    const good = encodeRoomMessage({ room: ROOM, node: 'a', entry: { sender: aor('alice'), contentType: 'text/plain', body: Buffer.from('hi'), receivedAt: EPOCH }, to: [[aor('bob'), false]] });
    expect(decodeRoomMessage(Buffer.from(good)).entry.body.toString()).to.equal('hi');
    for (const bad of ['{}', '[]', JSON.stringify({ ...JSON.parse(good), to: [['x']] }), JSON.stringify({ ...JSON.parse(good), v: 2 })]) {
      expect(() => decodeRoomMessage(Buffer.from(bad)), bad).to.throw();
    }
  });
});
