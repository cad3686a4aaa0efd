import type { Database } from '../database.js';
import { toDate, toMs } from '../sql-values.js';

/** A room as stored (issue 22); members, bans and history are rows of their own. */
export interface RoomRecord {
  /** Canonical room URI, sip:<name>@<domain>. */
  readonly uri: string;
  readonly owner: string;
  readonly topic: string;
  readonly persistent: boolean;
  readonly membersOnly: boolean;
  readonly createdAt: number;
}

export interface RoomMemberRecord {
  readonly member: string;
  /** Takes message/cpim (RFC 3862). */
  readonly cpim: boolean;
  readonly joinedAt: number;
}

export interface RoomBanRecord {
  readonly member: string;
  readonly bannedBy: string;
  readonly bannedAt: number;
}

export interface RoomHistoryRecord {
  readonly sender: string;
  readonly contentType: string;
  readonly body: Buffer;
  readonly receivedAt: number;
}

/** A room with everything that belongs to it, as loaded at start-up. */
export interface LoadedRoom {
  readonly room: RoomRecord;
  readonly members: readonly RoomMemberRecord[];
  readonly bans: readonly RoomBanRecord[];
  readonly history: readonly RoomHistoryRecord[];
}

interface RoomRow {
  uri: string;
  owner: string;
  topic: string;
  persistent: boolean;
  members_only: boolean;
  created_at: Date;
}

/**
 * Rooms, their members, bans and history (schemas/sql/003_rooms.*). Every write resolves
 * once committed: a member told 200 to #join is a member after a restart.
 */
export class RoomRepository {
  constructor(private readonly db: Database) {}

  /** Every room with its members, bans and last `historySize` messages. */
  async loadAll(historySize: number): Promise<LoadedRoom[]> {
    const rooms = await this.db.query<RoomRow>('SELECT uri, owner, topic, persistent, members_only, created_at FROM rooms ORDER BY uri');
    const members = await this.db.query<{ room: string; member: string; cpim: boolean; joined_at: Date }>(
      'SELECT room, member, cpim, joined_at FROM room_members ORDER BY room, joined_at, member',
    );
    const bans = await this.db.query<{ room: string; member: string; banned_by: string; banned_at: Date }>(
      'SELECT room, member, banned_by, banned_at FROM room_bans ORDER BY room, member',
    );
    const out = new Map<string, { room: RoomRecord; members: RoomMemberRecord[]; bans: RoomBanRecord[]; history: RoomHistoryRecord[] }>();
    for (const r of rooms.rows) out.set(r.uri, { room: fromRow(r), members: [], bans: [], history: [] });
    for (const m of members.rows) out.get(m.room)?.members.push({ member: m.member, cpim: m.cpim, joinedAt: toMs(m.joined_at) });
    for (const b of bans.rows) out.get(b.room)?.bans.push({ member: b.member, bannedBy: b.banned_by, bannedAt: toMs(b.banned_at) });
    for (const entry of out.values()) entry.history.push(...(await this.history(entry.room.uri, historySize)));
    return [...out.values()];
  }

  /** One room with its members and bans (no history), or undefined when there is none: a cluster node reads it again when another changed it. */
  async load(uri: string): Promise<LoadedRoom | undefined> {
    const rooms = await this.db.query<RoomRow>('SELECT uri, owner, topic, persistent, members_only, created_at FROM rooms WHERE uri = $1', [uri]);
    const row = rooms.rows[0];
    if (!row) return undefined;
    const members = await this.db.query<{ member: string; cpim: boolean; joined_at: Date }>(
      'SELECT member, cpim, joined_at FROM room_members WHERE room = $1 ORDER BY joined_at, member',
      [uri],
    );
    const bans = await this.db.query<{ member: string; banned_by: string; banned_at: Date }>('SELECT member, banned_by, banned_at FROM room_bans WHERE room = $1 ORDER BY member', [uri]);
    return {
      room: fromRow(row),
      members: members.rows.map((m) => ({ member: m.member, cpim: m.cpim, joinedAt: toMs(m.joined_at) })),
      bans: bans.rows.map((b) => ({ member: b.member, bannedBy: b.banned_by, bannedAt: toMs(b.banned_at) })),
      history: [],
    };
  }

  async insertRoom(room: RoomRecord): Promise<void> {
    await this.db.query('INSERT INTO rooms (uri, owner, topic, persistent, members_only, created_at) VALUES ($1, $2, $3, $4, $5, $6)', [
      room.uri,
      room.owner,
      room.topic,
      room.persistent,
      room.membersOnly,
      toDate(room.createdAt),
    ]);
  }

  /** Owner, topic and flags. */
  async updateRoom(room: RoomRecord): Promise<void> {
    await this.db.query('UPDATE rooms SET owner = $2, topic = $3, persistent = $4, members_only = $5 WHERE uri = $1', [
      room.uri,
      room.owner,
      room.topic,
      room.persistent,
      room.membersOnly,
    ]);
  }

  /** The room and all its rows (SQLite may run without foreign keys, so each table is told). */
  async deleteRoom(uri: string): Promise<void> {
    await this.db.transaction(async (tx) => {
      for (const table of ['room_history', 'room_bans', 'room_members']) await tx.query(`DELETE FROM ${table} WHERE room = $1`, [uri]);
      await tx.query('DELETE FROM rooms WHERE uri = $1', [uri]);
    });
  }

  async upsertMember(room: string, m: RoomMemberRecord): Promise<void> {
    await this.db.query(
      `INSERT INTO room_members (room, member, cpim, joined_at) VALUES ($1, $2, $3, $4)
       ON CONFLICT (room, member) DO UPDATE SET cpim = excluded.cpim`,
      [room, m.member, m.cpim, toDate(m.joinedAt)],
    );
  }

  async deleteMember(room: string, member: string): Promise<void> {
    await this.db.query('DELETE FROM room_members WHERE room = $1 AND member = $2', [room, member]);
  }

  /** Bans a member and removes its membership, in one transaction. */
  async insertBan(room: string, b: RoomBanRecord): Promise<void> {
    await this.db.transaction(async (tx) => {
      await tx.query('DELETE FROM room_members WHERE room = $1 AND member = $2', [room, b.member]);
      await tx.query(
        `INSERT INTO room_bans (room, member, banned_by, banned_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (room, member) DO UPDATE SET banned_by = excluded.banned_by, banned_at = excluded.banned_at`,
        [room, b.member, b.bannedBy, toDate(b.bannedAt)],
      );
    });
  }

  async deleteBan(room: string, member: string): Promise<void> {
    await this.db.query('DELETE FROM room_bans WHERE room = $1 AND member = $2', [room, member]);
  }

  /** Appends a message and drops what is older than the last `keep`. */
  async appendHistory(room: string, h: RoomHistoryRecord, keep: number): Promise<void> {
    await this.db.transaction(async (tx) => {
      await tx.query('INSERT INTO room_history (room, sender, content_type, body, received_at) VALUES ($1, $2, $3, $4, $5)', [
        room,
        h.sender,
        h.contentType,
        h.body,
        toDate(h.receivedAt),
      ]);
      await tx.query(
        'DELETE FROM room_history WHERE room = $1 AND id NOT IN (SELECT id FROM room_history WHERE room = $1 ORDER BY id DESC LIMIT $2)',
        [room, keep],
      );
    });
  }

  /** The last `limit` messages, oldest first. */
  async history(room: string, limit: number): Promise<RoomHistoryRecord[]> {
    const res = await this.db.query<{ sender: string; content_type: string; body: Buffer; received_at: Date }>(
      'SELECT sender, content_type, body, received_at FROM room_history WHERE room = $1 ORDER BY id DESC LIMIT $2',
      [room, limit],
    );
    return res.rows.reverse().map((r) => ({ sender: r.sender, contentType: r.content_type, body: r.body, receivedAt: toMs(r.received_at) }));
  }
}

function fromRow(r: RoomRow): RoomRecord {
  return { uri: r.uri, owner: r.owner, topic: r.topic, persistent: r.persistent, membersOnly: r.members_only, createdAt: toMs(r.created_at) };
}
