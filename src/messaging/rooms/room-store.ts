import type { LoadedRoom, RoomBanRecord, RoomHistoryRecord, RoomMemberRecord, RoomRecord } from '../../store/repositories/rooms.js';

export type { LoadedRoom, RoomBanRecord, RoomHistoryRecord, RoomMemberRecord, RoomRecord };

/**
 * Where rooms are kept (the store's RoomRepository). The room service holds every room
 * in memory and writes each change here before it answers, so a restart finds what
 * clients were told.
 */
export interface RoomStore {
  loadAll(historySize: number): Promise<LoadedRoom[]>;
  /** One room (members, bans; no history), undefined when gone. */
  load(uri: string): Promise<LoadedRoom | undefined>;
  insertRoom(room: RoomRecord): Promise<void>;
  updateRoom(room: RoomRecord): Promise<void>;
  deleteRoom(uri: string): Promise<void>;
  upsertMember(room: string, member: RoomMemberRecord): Promise<void>;
  deleteMember(room: string, member: string): Promise<void>;
  insertBan(room: string, ban: RoomBanRecord): Promise<void>;
  deleteBan(room: string, member: string): Promise<void>;
  appendHistory(room: string, entry: RoomHistoryRecord, keep: number): Promise<void>;
  /** The last `limit` messages of a room, oldest first. */
  history(room: string, limit: number): Promise<RoomHistoryRecord[]>;
}

/** No store (store.enabled false, unit tests): rooms live as long as the process. */
export const MEMORY_ROOM_STORE: RoomStore = {
  loadAll: () => Promise.resolve([]),
  load: () => Promise.resolve(undefined),
  insertRoom: () => Promise.resolve(),
  updateRoom: () => Promise.resolve(),
  deleteRoom: () => Promise.resolve(),
  upsertMember: () => Promise.resolve(),
  deleteMember: () => Promise.resolve(),
  insertBan: () => Promise.resolve(),
  deleteBan: () => Promise.resolve(),
  appendHistory: () => Promise.resolve(),
  history: () => Promise.resolve([]),
};
