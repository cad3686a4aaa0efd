import { expect } from 'chai';
import { migrate } from '../../src/store/migrations.js';
import { RoomRepository } from '../../src/store/repositories/rooms.js';
import { rowCount, TARGETS, type TestDb } from './helpers.js';

const ROOM = 'sip:lobby@example.com';
const T0 = Date.UTC(2026, 11, 7, 6, 0, 0);

for (const target of TARGETS) {
  describe(`store: rooms on ${target.name}`, function () {
    this.timeout(30_000);
    let t: TestDb;
    let rooms: RoomRepository;

    beforeEach(async () => {
      t = await target.open();
      await migrate(t.db);
      rooms = new RoomRepository(t.db);
    });
    afterEach(async () => {
      await t?.cleanup();
    });

    it('keeps a room with its owner, topic, flags, members and bans, and loads them back', async () => {
      await rooms.insertRoom({ uri: ROOM, owner: 'sip:alice@example.com', topic: '', persistent: false, membersOnly: true, createdAt: T0 });
      await rooms.upsertMember(ROOM, { member: 'sip:alice@example.com', cpim: false, joinedAt: T0 });
      await rooms.upsertMember(ROOM, { member: 'sip:bob@example.com', cpim: true, joinedAt: T0 + 1 });
      await rooms.upsertMember(ROOM, { member: 'sip:carol@example.com', cpim: false, joinedAt: T0 + 2 });
      await rooms.updateRoom({ uri: ROOM, owner: 'sip:alice@example.com', topic: 'lunch', persistent: true, membersOnly: false, createdAt: T0 });
      await rooms.insertBan(ROOM, { member: 'sip:carol@example.com', bannedBy: 'sip:alice@example.com', bannedAt: T0 + 3 });
      const [loaded, ...rest] = await rooms.loadAll(10);
      expect(rest).to.deep.equal([]);
      expect(loaded!.room).to.deep.equal({ uri: ROOM, owner: 'sip:alice@example.com', topic: 'lunch', persistent: true, membersOnly: false, createdAt: T0 });
      // The ban took carol's membership with it.
      expect(loaded!.members).to.deep.equal([
        { member: 'sip:alice@example.com', cpim: false, joinedAt: T0 },
        { member: 'sip:bob@example.com', cpim: true, joinedAt: T0 + 1 },
      ]);
      expect(loaded!.bans).to.deep.equal([{ member: 'sip:carol@example.com', bannedBy: 'sip:alice@example.com', bannedAt: T0 + 3 }]);
      await rooms.deleteBan(ROOM, 'sip:carol@example.com');
      await rooms.deleteMember(ROOM, 'sip:bob@example.com');
      const [again] = await rooms.loadAll(10);
      expect(again!.bans).to.deep.equal([]);
      expect(again!.members.map((m) => m.member)).to.deep.equal(['sip:alice@example.com']);
      // One room by its URI (a cluster node reads it again when another changed it).
      const one = await rooms.load(ROOM);
      expect(one).to.deep.equal({ room: again!.room, members: again!.members, bans: [], history: [] });
      expect(await rooms.load('sip:nowhere@example.com')).to.equal(undefined);
    });

    it('keeps the last N messages of a room, oldest first, and deletes every row with the room', async () => {
      await rooms.insertRoom({ uri: ROOM, owner: 'sip:alice@example.com', topic: '', persistent: false, membersOnly: true, createdAt: T0 });
      await rooms.upsertMember(ROOM, { member: 'sip:alice@example.com', cpim: false, joinedAt: T0 });
      for (let i = 1; i <= 5; i++) {
        await rooms.appendHistory(ROOM, { sender: 'sip:alice@example.com', contentType: 'text/plain', body: Buffer.from(`m${i}`), receivedAt: T0 + i }, 3);
      }
      const history = await rooms.history(ROOM, 10);
      expect(history.map((h) => h.body.toString())).to.deep.equal(['m3', 'm4', 'm5']);
      expect(history[0]).to.deep.include({ sender: 'sip:alice@example.com', contentType: 'text/plain', receivedAt: T0 + 3 });
      expect((await rooms.loadAll(2))[0]!.history.map((h) => h.body.toString())).to.deep.equal(['m4', 'm5']);
      await rooms.insertBan(ROOM, { member: 'sip:bob@example.com', bannedBy: 'sip:alice@example.com', bannedAt: T0 });
      await rooms.deleteRoom(ROOM);
      expect(await rooms.loadAll(10)).to.deep.equal([]);
      for (const table of ['rooms', 'room_members', 'room_bans', 'room_history']) expect(await rowCount(t.db, table), table).to.equal(0);
    });
  });
}
