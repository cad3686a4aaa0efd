import type { RoomResult, RoomService, RoomView } from '../messaging/rooms/room-service.js';
import { HttpError, type RouteContext, type Router } from './router.js';

/** The body of POST /api/rooms and /api/me/rooms (schemas/http/room-create.schema.json). */
interface RoomCreateBody {
  readonly name: string;
  readonly owner?: string;
  readonly topic?: string;
  readonly persistent?: boolean;
  readonly membersOnly?: boolean;
}

/** The body of PATCH (schemas/http/room-update.schema.json). */
interface RoomUpdateBody {
  readonly topic?: string;
  readonly persistent?: boolean;
}

export function roomJson(r: RoomView): Record<string, unknown> {
  return { ...r, createdAt: new Date(r.createdAt).toISOString() };
}

/** A room's refusal (a SIP status and reason phrase) as an HTTP error. */
function result<T>(r: RoomResult<T>): T {
  if (r.ok) return r.value;
  // 403 Room Exists is a conflict in HTTP words.
  throw new HttpError(r.reason === 'Room Exists' ? 409 : r.status >= 400 && r.status < 600 ? r.status : 500, r.reason);
}

function uriOf(rooms: RoomService, name: string): string {
  const uri = rooms.roomUri(name);
  if (!uri) throw new HttpError(400, `"${name}" is not a room name of this domain`);
  return uri;
}

function existing(rooms: RoomService, name: string): RoomView {
  const room = rooms.get(uriOf(rooms, name));
  if (!room) throw new HttpError(404, `no room ${name}`);
  return room;
}

/** Creates a room, then sets the topic asked for in the same request. */
async function create(rooms: RoomService, owner: string, body: RoomCreateBody): Promise<RoomView> {
  const uri = uriOf(rooms, body.name);
  result(await rooms.create(uri, owner, { ...(body.persistent !== undefined ? { persistent: body.persistent } : {}), ...(body.membersOnly !== undefined ? { membersOnly: body.membersOnly } : {}) }));
  if (body.topic !== undefined && body.topic !== '') result(await rooms.setTopic(uri, owner, body.topic));
  return rooms.get(uri)!;
}

async function update(rooms: RoomService, room: RoomView, by: string, body: RoomUpdateBody): Promise<RoomView> {
  if (body.topic !== undefined) result(await rooms.setTopic(room.uri, by, body.topic));
  if (body.persistent !== undefined) result(await rooms.setPersistent(room.uri, by, body.persistent));
  return rooms.get(room.uri) ?? room;
}

/**
 * The administrator's rooms (issue 22): list, create for an owner, show, change topic or
 * life cycle, delete. The same operations as the #commands, so the same rules hold.
 */
export function registerRoomAdminRoutes(router: Router, rooms: RoomService, address: (text: string) => string): void {
  router.get('/api/rooms', () => ({ json: rooms.list().map(roomJson) }));
  router.post('/api/rooms', async (ctx) => {
    const body = await ctx.body<RoomCreateBody>('room-create');
    if (body.owner === undefined) throw new HttpError(400, 'invalid request body: missing field "owner"');
    const room = await create(rooms, address(body.owner), body);
    ctx.log.info({ room: room.uri, owner: room.owner }, 'admin: room created');
    return { status: 201, json: roomJson(room) };
  });
  router.get('/api/rooms/:room', (ctx) => ({ json: roomJson(existing(rooms, ctx.params.room!)) }));
  router.add('PATCH', '/api/rooms/:room', async (ctx) => {
    const room = existing(rooms, ctx.params.room!);
    // The administrator acts as the owner.
    return { json: roomJson(await update(rooms, room, room.owner, await ctx.body<RoomUpdateBody>('room-update'))) };
  });
  router.delete('/api/rooms/:room', async (ctx) => {
    result(await rooms.destroy(uriOf(rooms, ctx.params.room!)));
    ctx.log.info({ room: ctx.params.room }, 'admin: room deleted');
    return { status: 204 };
  });
}

/**
 * The user's own rooms, /api/me/rooms (a web client's room list): those it is in or owns,
 * create (it owns the room), join, leave, change (owner only), delete (owner only).
 */
export function registerMeRoomRoutes(router: Router, rooms: () => RoomService | undefined, authenticate: (ctx: RouteContext) => Promise<string>): void {
  const service = (): RoomService => {
    const r = rooms();
    if (!r) throw new HttpError(503, 'rooms are not available');
    return r;
  };
  router.get('/api/me/rooms', async (ctx) => {
    const me = await authenticate(ctx);
    return { json: service().roomsOf(me).map(roomJson) };
  });
  router.post('/api/me/rooms', async (ctx) => {
    const me = await authenticate(ctx);
    const body = await ctx.body<RoomCreateBody>('room-create');
    if (body.owner !== undefined) throw new HttpError(400, 'invalid request body: "owner" is the caller here');
    return { status: 201, json: roomJson(await create(service(), me, body)) };
  });
  router.post('/api/me/rooms/:room/join', async (ctx) => {
    const me = await authenticate(ctx);
    const s = service();
    const uri = uriOf(s, ctx.params.room!);
    const joined = result(await s.join(uri, me));
    if (joined.joined && !joined.created) void s.welcome(uri, me, undefined, joined.history);
    return { json: roomJson(s.get(uri)!) };
  });
  router.post('/api/me/rooms/:room/leave', async (ctx) => {
    const me = await authenticate(ctx);
    const s = service();
    const uri = uriOf(s, ctx.params.room!);
    const { ended } = result(await s.leave(uri, me));
    if (!ended) void s.farewell(uri, me);
    return { json: { left: true, ended } };
  });
  router.add('PATCH', '/api/me/rooms/:room', async (ctx) => {
    const me = await authenticate(ctx);
    const s = service();
    return { json: roomJson(await update(s, existing(s, ctx.params.room!), me, await ctx.body<RoomUpdateBody>('room-update'))) };
  });
  router.delete('/api/me/rooms/:room', async (ctx) => {
    const me = await authenticate(ctx);
    const s = service();
    result(await s.destroy(uriOf(s, ctx.params.room!), me));
    return { status: 204 };
  });
}
