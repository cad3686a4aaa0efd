import type { Logger } from 'pino';
import type { LocalDomains } from '../../core/local-domains.js';
import type { RequestContext } from '../../core/services.js';
import { negotiateType } from '../../presence/accept.js';
import { canonicalAor } from '../../registrar/aor.js';
import type { SipRequest } from '../../sip/message.js';
import { randomToken } from '../../sip/response.js';
import { KeyedQueue } from '../../util/keyed-queue.js';
import type { WallClock } from '../../util/timers.js';
import { CPIM, isComposingIndication, IS_COMPOSING } from '../content-types.js';
import type { DeliveryOutcome, MessageTarget } from '../messaging-service.js';
import type { StoredMessage } from '../offline-message-store.js';
import { fanOut } from '../fan-out.js';
import { wrapCpim } from './cpim.js';
import { parseRoomCommand, RoomCommandError, type RoomCommand } from './room-commands.js';
import { MEMORY_ROOM_STORE, type RoomBanRecord, type RoomHistoryRecord, type RoomMemberRecord, type RoomRecord, type RoomStore } from './room-store.js';

export interface RoomSettings {
  /** Messages kept per room and given to a member who joins. */
  readonly historySize: number;
  readonly maxMembers: number;
  /** Rooms one user may own. */
  readonly maxRoomsPerUser: number;
  /** Rooms on the server. */
  readonly maxRooms: number;
  /** Messages one member may send to one room a minute (typing indications not counted). */
  readonly maxMessagesPerMinute: number;
  /** How long a copy stored for an offline member is kept (messaging.offlineTtlSeconds). */
  readonly offlineTtlSeconds: number;
}

/** Sends one copy to one member (MessagingService.deliver). */
export type RoomDeliver = (m: StoredMessage, options: { readonly transient: boolean; readonly log?: Logger }) => Promise<DeliveryOutcome>;

/** A room message as the cluster's stream carries it (issue 22: one order per room across nodes). */
export interface RoomStreamMessage {
  readonly room: string;
  /** The node that accepted it: it stores the copies of members with no contact anywhere. */
  readonly node: string;
  readonly entry: RoomHistoryRecord;
  /** The members it goes to (all but the sender, when accepted), each with whether it takes message/cpim. */
  readonly to: ReadonlyArray<readonly [member: string, cpim: boolean]>;
}

/**
 * The cluster as rooms reach it (src/cluster/cluster-rooms.ts): the store is shared, so a
 * node tells the others when it changed a room, and room messages go through one stream.
 */
export interface RoomCluster {
  readonly node: string;
  /** Tells the other nodes the room changed in the store; resolves once they read it again (bounded). */
  changed(uri: string): Promise<void>;
  /** Appends a message to the room's stream; resolves once stored there, throws when it was not. */
  publish(message: RoomStreamMessage): Promise<void>;
}

/** Sends one copy of a streamed message to the contacts this node holds (MessagingService.deliverFromHere). */
export type RoomDeliverHere = (m: StoredMessage, options: { readonly storeWhenNone: boolean; readonly log?: Logger }) => Promise<DeliveryOutcome | 'elsewhere'>;

export interface RoomServiceOptions {
  readonly domains: LocalDomains;
  readonly deliver: RoomDeliver;
  readonly settings: RoomSettings;
  readonly wallClock: WallClock;
  /**
   * True when a user has this AoR (an account, or, while authentication is off, a
   * registration): a room may not take a user's name.
   */
  readonly isUser?: (aor: string) => Promise<boolean>;
  /** Addresses other services of ours answer at (the URI-list service): no room takes them. */
  readonly reserved?: (aor: string) => boolean;
  readonly store?: RoomStore;
  /** A cluster node: rooms are shared with the other nodes (with `deliverHere`). */
  readonly cluster?: { readonly link: RoomCluster; readonly deliverHere: RoomDeliverHere };
  readonly logger?: Logger;
}

/** What an operation on a room came to: done, or the SIP status and reason it is refused with. */
export type RoomResult<T = undefined> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly status: number; readonly reason: string };

/** A room as the admin API and the CLI show it. */
export interface RoomView {
  readonly uri: string;
  readonly owner: string;
  readonly topic: string;
  readonly persistent: boolean;
  readonly membersOnly: boolean;
  readonly members: readonly string[];
  readonly bans: readonly string[];
  readonly createdAt: number;
}

/** What #join did: created the room, or added a member who was not one (false: already in). */
export interface JoinResult {
  readonly created: boolean;
  readonly joined: boolean;
  /**
   * The room's last messages when a new member joined a room that was there, read in turn
   * with the room's messages (for `welcome`): one sent just after is not replayed as well.
   */
  readonly history?: readonly RoomHistoryRecord[];
}

interface RoomState {
  record: RoomRecord;
  /** In join order: the first is the next owner of a room that is not persistent. */
  readonly members: Map<string, RoomMemberRecord>;
  readonly bans: Map<string, RoomBanRecord>;
  /** The last messages, when there is no durable store (with one, the store keeps them). */
  readonly history: RoomHistoryRecord[];
  /** Messages each sender sent in the current minute (in memory, at most 2 × maxMembers senders). */
  readonly sent: Map<string, { windowStart: number; count: number }>;
}

/** Body types a room takes for its members (anything else gets 415). */
const ROOM_TYPES = ['text/plain', 'text/html', IS_COMPOSING];
/** A room name is a user part of this form (RFC 3261 §25.1 unreserved, bounded). */
const ROOM_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._~-]{0,63}$/;
/** Changes waiting for one room; more get 503. */
const MAX_QUEUED_PER_ROOM = 256;
/** Copies of one room message in flight at once. */
const FANOUT_CONCURRENCY = 64;

const refuse = (status: number, reason: string): RoomResult<never> => ({ ok: false, status, reason });
const done = <T>(value: T): RoomResult<T> => ({ ok: true, value });

/**
 * Chat rooms (issue 22): `sip:<room>@<domain>` with an owner, a topic, members, bans and
 * the last messages. A MESSAGE to the room goes to every member but the sender, From the
 * room, the sender named in a message/cpim wrapper (RFC 3862) for members that take it,
 * else with a `nick: ` prefix. IRC's life cycle: joining a missing room creates it, and
 * the last member to leave ends it unless its owner made it persistent.
 */
export class RoomService implements MessageTarget {
  private readonly rooms = new Map<string, RoomState>();
  private readonly queue = new KeyedQueue(MAX_QUEUED_PER_ROOM);
  private readonly domains: LocalDomains;
  private readonly settings: RoomSettings;
  private readonly wallClock: WallClock;
  private readonly deliverCopy: RoomDeliver;
  private readonly isUser: (aor: string) => Promise<boolean>;
  private store: RoomStore;
  /** A durable store is in use (useStore): history is read from it, not kept in memory. */
  private durable = false;
  private readonly log?: Logger;
  private readonly listeners: Array<(uri: string, ended: boolean) => void> = [];
  /** Copies per outcome since start (metrics). */
  readonly outcomes: Record<DeliveryOutcome, number> = { delivered: 0, stored: 0, refused: 0, dropped: 0, full: 0 };

  constructor(private readonly options: RoomServiceOptions) {
    this.domains = options.domains;
    this.settings = options.settings;
    this.wallClock = options.wallClock;
    this.deliverCopy = options.deliver;
    this.isUser = options.isUser ?? (() => Promise.resolve(false));
    this.store = options.store ?? MEMORY_ROOM_STORE;
    this.log = options.logger;
  }

  /** Switches to the durable store and loads its rooms (at start, once the store is open). */
  async useStore(store: RoomStore): Promise<void> {
    this.store = store;
    this.rooms.clear();
    this.durable = true;
    // History stays in the store, read when someone joins: memory holds no message bodies.
    for (const r of await store.loadAll(0)) {
      this.rooms.set(r.room.uri, {
        record: r.room,
        members: new Map(r.members.map((m) => [m.member, m])),
        bans: new Map(r.bans.map((b) => [b.member, b])),
        history: [],
        sent: new Map(),
      });
    }
    this.log?.info({ rooms: this.rooms.size }, 'rooms loaded');
  }

  /**
   * `listener` hears of every change of a room's members, owner or topic (the conference
   * package's NOTIFYs), and of its end (`ended`: its watchers' subscriptions end).
   */
  onChange(listener: (uri: string, ended: boolean) => void): void {
    this.listeners.push(listener);
  }

  private changed(uri: string, ended = false): void {
    for (const l of this.listeners) {
      try {
        l(uri, ended);
      } catch (err) {
        this.log?.error({ err, room: uri }, 'room change listener failed');
      }
    }
  }

  /** A SUBSCRIBE to the room (Event: conference) joins as #join does; false when refused. */
  async joinBySubscribe(uri: string, member: string, request: SipRequest): Promise<boolean> {
    const r = await this.join(uri, member, acceptsCpim(request));
    if (r.ok && r.value.joined && !r.value.created) void this.welcome(uri, member, this.log, r.value.history);
    return r.ok;
  }

  /** After a member left a room that goes on: the others hear of it. */
  async farewell(uri: string, member: string, log: Logger | undefined = this.log): Promise<void> {
    await this.announce(uri, member, `*** ${nick(member)} left`, log);
  }

  /**
   * After a member joined a room that was there (by #join, SUBSCRIBE or the API): the others
   * hear of it, and the newcomer gets the room's history.
   */
  async welcome(uri: string, member: string, log: Logger | undefined = this.log, history?: readonly RoomHistoryRecord[]): Promise<void> {
    await this.announce(uri, member, `*** ${nick(member)} joined`, log);
    await this.replayHistory(uri, member, log, history);
  }

  get size(): number {
    return this.rooms.size;
  }

  isRoom(aor: string): boolean {
    return this.rooms.has(aor);
  }

  /** A MESSAGE to a room, or a command to a room that does not exist yet (#create, #join). */
  async claims(aor: string, request: SipRequest): Promise<boolean> {
    if (this.rooms.has(aor)) return true;
    let command: RoomCommand | undefined;
    try {
      command = parseRoomCommand(request.contentType?.essence, request.body, this.domains.primary);
    } catch (err) {
      if (!(err instanceof RoomCommandError)) throw err;
      return false;
    }
    return (command?.name === 'create' || command?.name === 'join') && !(await this.isUser(aor));
  }

  async handle(ctx: RequestContext, roomUri: string): Promise<void> {
    const req = ctx.request;
    const sender = canonicalAor(req.from.uri, this.domains);
    let command: RoomCommand | undefined;
    try {
      command = parseRoomCommand(req.contentType?.essence, req.body, this.domains.primary);
    } catch (err) {
      if (!(err instanceof RoomCommandError)) throw err;
      ctx.reply(400, err.message);
      return;
    }
    // Members are users of our domain: a foreign sender can neither join nor speak.
    if (sender === undefined) {
      ctx.reply(403, 'Not A Member Of The Room');
      return;
    }
    if (command) return this.command(ctx, roomUri, sender, command);
    const room = this.rooms.get(roomUri);
    if (!room) {
      ctx.reply(404, 'No Such Room');
      return;
    }
    if (room.bans.has(sender)) {
      ctx.reply(403, 'Banned From The Room');
      return;
    }
    if (room.record.membersOnly && !room.members.has(sender)) {
      ctx.reply(403, 'Not A Member Of The Room');
      return;
    }
    const type = req.contentType?.essence ?? 'text/plain';
    if (!ROOM_TYPES.includes(type)) {
      ctx.reply(415, 'Unsupported Media Type', { headers: [['Accept', ROOM_TYPES.join(', ')]] });
      return;
    }
    const entry: RoomHistoryRecord = { sender, contentType: req.getHeader('content-type') ?? 'text/plain', body: req.body, receivedAt: this.wallClock.nowMs() };
    // RFC 3994: a typing state is relayed to whoever is online, never kept.
    if (isComposingIndication(req.contentType, req.body)) {
      ctx.reply(200, 'OK');
      await this.fanOut(room, entry, { transient: true, except: sender, log: ctx.log });
      return;
    }
    const wait = this.overRate(room, sender, entry.receivedAt);
    if (wait > 0) {
      ctx.log.info({ room: roomUri, member: sender }, 'room message over the member\'s rate');
      ctx.reply(503, 'Sending Too Fast', { headers: [['Retry-After', wait]] });
      return;
    }
    const cluster = this.options.cluster;
    const queued = this.queue.run(roomUri, async (): Promise<boolean | 'unavailable'> => {
      // The room may have ended while this waited behind other changes.
      if (this.rooms.get(roomUri) !== room) return false;
      // Issue 22: in the stream before the 202, so a node that dies after it loses nothing;
      // first, so that one the stream refused (503, sent again) is not in the history twice.
      if (cluster) {
        const to = [...room.members.values()].filter((m) => m.member !== sender).map((m) => [m.member, m.cpim] as const);
        try {
          await cluster.link.publish({ room: roomUri, node: cluster.link.node, entry, to });
        } catch (err) {
          ctx.log.error({ err, room: roomUri }, 'room message not in the cluster stream');
          return 'unavailable';
        }
      }
      await this.store.appendHistory(roomUri, entry, this.settings.historySize);
      if (!this.durable) {
        room.history.push(entry);
        if (room.history.length > this.settings.historySize) room.history.splice(0, room.history.length - this.settings.historySize);
      }
      return true;
    });
    if (!queued) {
      ctx.reply(503, 'Service Unavailable', { headers: [['Retry-After', 5]] });
      return;
    }
    const taken = await queued;
    if (taken === 'unavailable') {
      ctx.reply(503, 'Cluster Store Unavailable', { headers: [['Retry-After', 5]] });
      return;
    }
    if (!taken) {
      ctx.reply(404, 'No Such Room');
      return;
    }
    // The room took it (kept in its history); copies go out after the answer (RFC 3428 §7: 202).
    ctx.reply(202, 'Accepted');
    // In a cluster every node's stream consumer sends the copies, this node's included.
    if (cluster) return;
    await this.fanOut(room, entry, { transient: false, except: sender, log: ctx.log });
  }

  // ---- operations (SIP commands, admin API, /api/me/rooms, CLI) ----

  /** A new room owned by `owner`, who becomes its first member. */
  create(uri: string, owner: string, options: { persistent?: boolean; membersOnly?: boolean; cpim?: boolean } = {}): Promise<RoomResult<RoomView>> {
    return this.serial(uri, async () => {
      if (this.rooms.has(uri)) return refuse(403, 'Room Exists');
      const checked = await this.checkNewRoom(uri, owner);
      if (!checked.ok) return checked;
      const state = await this.insert(uri, owner, options);
      this.changed(uri);
      return done(view(state));
    });
  }

  /** Adds `member`; a missing room is created with it as owner (IRC). Created or already there: true when new. */
  join(uri: string, member: string, cpim = false): Promise<RoomResult<JoinResult>> {
    return this.serial(uri, async (): Promise<RoomResult<JoinResult>> => {
      let room = this.rooms.get(uri);
      if (!room) {
        const checked = await this.checkNewRoom(uri, member);
        if (!checked.ok) return checked;
        await this.insert(uri, member, { cpim });
        this.changed(uri);
        return done({ created: true, joined: true });
      }
      if (room.bans.has(member)) return refuse(403, 'Banned From The Room');
      const had = room.members.get(member);
      if (!had && room.members.size >= this.settings.maxMembers) return refuse(403, 'Room Is Full');
      const record: RoomMemberRecord = { member, cpim, joinedAt: had?.joinedAt ?? this.wallClock.nowMs() };
      await this.store.upsertMember(uri, record);
      room = this.rooms.get(uri)!;
      room.members.set(member, record);
      if (had) return done({ created: false, joined: false });
      this.changed(uri);
      const history = this.durable ? await this.store.history(uri, this.settings.historySize) : [...room.history];
      return done({ created: false, joined: true, history });
    });
  }

  /** Removes `member`; the room ends with its last member unless persistent. */
  leave(uri: string, member: string): Promise<RoomResult<{ readonly ended: boolean }>> {
    return this.serial(uri, async () => {
      const room = this.rooms.get(uri);
      if (!room) return refuse(404, 'No Such Room');
      if (!room.members.has(member)) return refuse(403, 'Not A Member Of The Room');
      const ended = await this.removeMember(room, member);
      this.changed(uri, ended);
      return done({ ended });
    });
  }

  /** Sets the topic (owner only). */
  setTopic(uri: string, by: string, topic: string): Promise<RoomResult> {
    return this.ownerOnly(uri, by, async (room) => {
      room.record = { ...room.record, topic };
      await this.store.updateRoom(room.record);
      this.changed(uri);
      return done(undefined);
    });
  }

  setPersistent(uri: string, by: string, persistent: boolean): Promise<RoomResult> {
    return this.ownerOnly(uri, by, async (room) => {
      room.record = { ...room.record, persistent };
      await this.store.updateRoom(room.record);
      return done(undefined);
    });
  }

  /** Bans `member` (owner only): it is no longer a member and cannot join again. */
  ban(uri: string, by: string, member: string): Promise<RoomResult> {
    return this.ownerOnly(uri, by, async (room) => {
      if (member === room.record.owner) return refuse(403, 'The Owner Cannot Be Banned');
      const ban: RoomBanRecord = { member, bannedBy: by, bannedAt: this.wallClock.nowMs() };
      await this.store.insertBan(uri, ban);
      const was = room.members.delete(member);
      room.bans.set(member, ban);
      if (was) this.changed(uri);
      return done(undefined);
    });
  }

  unban(uri: string, by: string, member: string): Promise<RoomResult> {
    return this.ownerOnly(uri, by, async (room) => {
      await this.store.deleteBan(uri, member);
      room.bans.delete(member);
      return done(undefined);
    });
  }

  /** Ends a room; `by` undefined is the administrator. */
  destroy(uri: string, by?: string): Promise<RoomResult> {
    return this.serial(uri, async () => {
      const room = this.rooms.get(uri);
      if (!room) return refuse(404, 'No Such Room');
      if (by !== undefined && by !== room.record.owner) return refuse(403, 'Only The Owner May Do That');
      await this.store.deleteRoom(uri);
      this.rooms.delete(uri);
      this.changed(uri, true);
      return done(undefined);
    });
  }

  get(uri: string): RoomView | undefined {
    const room = this.rooms.get(uri);
    return room ? view(room) : undefined;
  }

  list(): RoomView[] {
    return [...this.rooms.values()].map(view);
  }

  /** Rooms `member` is in or owns. */
  roomsOf(member: string): RoomView[] {
    return [...this.rooms.values()].filter((r) => r.members.has(member) || r.record.owner === member).map(view);
  }

  /** The room's URI for a name given in the API or CLI (`lobby` or `sip:lobby@domain`). */
  roomUri(name: string): string | undefined {
    const user = /^sips?:([^@]+)@(.+)$/i.exec(name);
    if (user && !this.domains.has(user[2]!)) return undefined;
    const n = user ? user[1]! : name;
    return ROOM_NAME_RE.test(n) ? `sip:${n}@${this.domains.primary.toLowerCase()}` : undefined;
  }

  // ---- internals ----

  private async command(ctx: RequestContext, uri: string, sender: string, command: RoomCommand): Promise<void> {
    const cpim = acceptsCpim(ctx.request);
    const name = nick(sender);
    const answer = (r: RoomResult<unknown>, notice?: string): boolean => {
      if (!r.ok) {
        ctx.reply(r.status, r.reason);
        void this.notice(uri, sender, `${r.reason}.`, ctx.log);
        return false;
      }
      ctx.reply(200, 'OK');
      if (notice !== undefined) void this.notice(uri, sender, notice, ctx.log);
      return true;
    };
    ctx.log.info({ room: uri, member: sender, command: command.name }, 'room command');
    switch (command.name) {
      case 'create': {
        const r = await this.create(uri, sender, { persistent: command.persistent, membersOnly: !command.open, cpim });
        answer(r, `Room ${uri} created; you own it.`);
        return;
      }
      case 'join': {
        const r = await this.join(uri, sender, cpim);
        if (!answer(r, r.ok && r.value.created ? `Room ${uri} created; you own it.` : `You are in ${uri}.`)) return;
        if (r.ok && r.value.joined && !r.value.created) await this.welcome(uri, sender, ctx.log, r.value.history);
        return;
      }
      case 'leave': {
        const r = await this.leave(uri, sender);
        if (answer(r, `You left ${uri}.`) && r.ok && !r.value.ended) await this.farewell(uri, sender, ctx.log);
        return;
      }
      case 'members': {
        const room = this.rooms.get(uri);
        if (!room) return void answer(refuse(404, 'No Such Room'));
        if (room.record.membersOnly && !room.members.has(sender)) return void answer(refuse(403, 'Not A Member Of The Room'));
        const names = [...room.members.keys()].map((m) => (m === room.record.owner ? `${nick(m)} (owner)` : nick(m)));
        answer(done(undefined), `Members of ${uri}: ${names.join(', ')}`);
        return;
      }
      case 'topic': {
        if (command.topic === undefined) {
          const room = this.rooms.get(uri);
          if (!room) return void answer(refuse(404, 'No Such Room'));
          answer(done(undefined), room.record.topic === '' ? 'No topic is set.' : `Topic: ${room.record.topic}`);
          return;
        }
        if (answer(await this.setTopic(uri, sender, command.topic), 'Topic set.')) await this.announce(uri, sender, `*** ${name} set the topic: ${command.topic}`, ctx.log);
        return;
      }
      case 'ban':
        if (answer(await this.ban(uri, sender, command.user), `${nick(command.user)} is banned.`)) await this.announce(uri, sender, `*** ${nick(command.user)} was banned`, ctx.log);
        return;
      case 'unban':
        answer(await this.unban(uri, sender, command.user), `${nick(command.user)} may join again.`);
        return;
      case 'persistent':
        answer(await this.setPersistent(uri, sender, command.on), command.on ? 'The room stays when empty.' : 'The room ends with its last member.');
        return;
      case 'destroy':
        answer(await this.destroy(uri, sender), `Room ${uri} is gone.`);
        return;
    }
  }

  private async serial<T>(uri: string, work: () => Promise<RoomResult<T>>): Promise<RoomResult<T>> {
    const r = await (this.queue.run(uri, work) ?? Promise.resolve(refuse(503, 'Service Unavailable')));
    // Written to the shared store: the other nodes read the room again before this returns.
    if (r.ok) await this.options.cluster?.link.changed(uri).catch((err: unknown) => this.log?.error({ err, room: uri }, 'room news not sent'));
    return r;
  }

  // ---- the cluster ----

  /** Another node changed the room in the store: this node's view follows (and its conference watchers hear of it). */
  async reload(uri: string): Promise<void> {
    // Without a shared store there is nothing to read again.
    if (!this.durable) return;
    const queued = this.queue.run(uri, async () => {
      const loaded = await this.store.load(uri);
      const had = this.rooms.get(uri);
      if (!loaded) {
        if (!had) return;
        this.rooms.delete(uri);
        this.changed(uri, true);
        return;
      }
      this.rooms.set(uri, {
        record: loaded.room,
        members: new Map(loaded.members.map((m) => [m.member, m])),
        bans: new Map(loaded.bans.map((b) => [b.member, b])),
        history: had?.history ?? [],
        sent: had?.sent ?? new Map(),
      });
      this.changed(uri);
    });
    if (!queued) throw new Error('room queue full');
    await queued;
  }

  /** Reads every room again (a cluster node back from a lost link may have missed news). */
  async resync(): Promise<void> {
    if (!this.durable) return;
    const uris = new Set([...this.rooms.keys(), ...(await this.store.loadAll(0)).map((r) => r.room.uri)]);
    for (const uri of uris) await this.reload(uri);
  }

  /**
   * A room message from the cluster's stream, in the room's order: one copy to each of its
   * members this node holds contacts of; the node that accepted it stores the copies of
   * members with none anywhere.
   */
  async streamed(message: RoomStreamMessage): Promise<void> {
    const deliverHere = this.options.cluster?.deliverHere;
    if (!deliverHere) return;
    const storeWhenNone = message.node === this.options.cluster!.link.node;
    const counts: Partial<Record<DeliveryOutcome | 'elsewhere', number>> = {};
    await fanOut(message.to, FANOUT_CONCURRENCY, async ([member, cpim]) => {
      let outcome: DeliveryOutcome | 'elsewhere';
      try {
        outcome = await deliverHere(this.copyFor(message.room, { member, cpim, joinedAt: 0 }, message.entry), { storeWhenNone, ...(this.log ? { log: this.log } : {}) });
      } catch (err) {
        this.log?.error({ err, room: message.room, member }, 'room copy failed');
        outcome = 'refused';
      }
      if (outcome !== 'elsewhere') this.outcomes[outcome]++;
      counts[outcome] = (counts[outcome] ?? 0) + 1;
    });
    this.log?.debug({ room: message.room, members: message.to.length, ...counts }, 'streamed room message sent from here');
  }

  private ownerOnly(uri: string, by: string, work: (room: RoomState) => Promise<RoomResult>): Promise<RoomResult> {
    return this.serial(uri, async () => {
      const room = this.rooms.get(uri);
      if (!room) return refuse(404, 'No Such Room');
      if (room.record.owner !== by) return refuse(403, 'Only The Owner May Do That');
      return work(room);
    });
  }

  /**
   * Counts a message of `member` against its rate (a fixed window of one minute); the
   * seconds until it may send again when over it, else 0.
   */
  private overRate(room: RoomState, member: string, nowMs: number): number {
    // An open room hears from non-members too: windows that are over are dropped past a bound.
    if (room.sent.size >= 2 * this.settings.maxMembers) {
      for (const [k, old] of room.sent) if (nowMs - old.windowStart >= 60_000) room.sent.delete(k);
      if (room.sent.size >= 2 * this.settings.maxMembers) return 60;
    }
    let w = room.sent.get(member);
    if (!w || nowMs - w.windowStart >= 60_000) {
      w = { windowStart: nowMs, count: 0 };
      room.sent.set(member, w);
    }
    if (w.count >= this.settings.maxMessagesPerMinute) return Math.max(1, Math.ceil((w.windowStart + 60_000 - nowMs) / 1000));
    w.count++;
    return 0;
  }

  private async checkNewRoom(uri: string, owner: string): Promise<RoomResult> {
    const name = /^sip:([^@]+)@/.exec(uri)?.[1];
    if (name === undefined || !ROOM_NAME_RE.test(name)) return refuse(400, 'Bad Room Name');
    if (this.options.reserved?.(uri) || (await this.isUser(uri))) return refuse(403, 'Name Taken By A User');
    let owned = 0;
    for (const r of this.rooms.values()) if (r.record.owner === owner) owned++;
    if (owned >= this.settings.maxRoomsPerUser || this.rooms.size >= this.settings.maxRooms) return refuse(403, 'Too Many Rooms');
    return done(undefined);
  }

  private async insert(uri: string, owner: string, options: { persistent?: boolean; membersOnly?: boolean; cpim?: boolean }): Promise<RoomState> {
    const now = this.wallClock.nowMs();
    const record: RoomRecord = { uri, owner, topic: '', persistent: options.persistent ?? false, membersOnly: options.membersOnly ?? true, createdAt: now };
    const member: RoomMemberRecord = { member: owner, cpim: options.cpim ?? false, joinedAt: now };
    await this.store.insertRoom(record);
    await this.store.upsertMember(uri, member);
    const state: RoomState = { record, members: new Map([[owner, member]]), bans: new Map(), history: [], sent: new Map() };
    this.rooms.set(uri, state);
    this.log?.info({ room: uri, owner }, 'room created');
    return state;
  }

  /** True when the room ended with it. */
  private async removeMember(room: RoomState, member: string): Promise<boolean> {
    const uri = room.record.uri;
    if (room.members.size === 1 && !room.record.persistent) {
      await this.store.deleteRoom(uri);
      this.rooms.delete(uri);
      this.log?.info({ room: uri }, 'room ended with its last member');
      return true;
    }
    await this.store.deleteMember(uri, member);
    room.members.delete(member);
    room.sent.delete(member);
    // A room that ends with its members passes to the longest-standing one; a persistent one keeps its owner.
    if (room.record.owner === member && !room.record.persistent) {
      const next = room.members.keys().next().value;
      if (next !== undefined) {
        room.record = { ...room.record, owner: next };
        await this.store.updateRoom(room.record);
      }
    }
    return false;
  }

  /** One copy to every member but `except`, at most FANOUT_CONCURRENCY at once; outcomes logged and counted. */
  private async fanOut(room: RoomState, entry: RoomHistoryRecord, options: { transient: boolean; except?: string; log: Logger | undefined }): Promise<void> {
    const targets = [...room.members.values()].filter((m) => m.member !== options.except);
    const counts: Partial<Record<DeliveryOutcome, number>> = {};
    await fanOut(targets, FANOUT_CONCURRENCY, async (member) => {
      const outcome = await this.send(room.record.uri, member, entry, options.transient, options.log);
      counts[outcome] = (counts[outcome] ?? 0) + 1;
    });
    if (!options.transient || targets.length > 0) options.log?.debug({ room: room.record.uri, members: targets.length, ...counts }, 'room message fanned out');
  }

  private async send(uri: string, member: RoomMemberRecord, entry: RoomHistoryRecord, transient: boolean, log: Logger | undefined): Promise<DeliveryOutcome> {
    let outcome: DeliveryOutcome;
    try {
      outcome = await this.deliverCopy(this.copyFor(uri, member, entry), { transient, ...(log ? { log } : {}) });
    } catch (err) {
      log?.error({ err, room: uri, member: member.member }, 'room copy failed');
      outcome = 'refused';
    }
    this.outcomes[outcome]++;
    if (outcome === 'refused' || outcome === 'full') log?.info({ room: uri, member: member.member, outcome }, 'room copy not delivered');
    return outcome;
  }

  /** The member's copy: From the room; the sender in a CPIM wrapper, or as a `nick: ` prefix on plain text. */
  private copyFor(uri: string, member: RoomMemberRecord, entry: RoomHistoryRecord): StoredMessage {
    let contentType = entry.contentType;
    let body = entry.body;
    const essence = contentType.split(';')[0]!.trim().toLowerCase();
    if (member.cpim && entry.sender !== uri) {
      body = wrapCpim({ from: entry.sender, nick: nick(entry.sender), to: uri, dateTime: entry.receivedAt, contentType, body });
      contentType = CPIM;
    } else if (essence === 'text/plain' && entry.sender !== uri) {
      body = Buffer.concat([Buffer.from(`${nick(entry.sender)}: `, 'utf8'), body]);
    }
    return {
      id: randomToken(12),
      recipient: member.member,
      sender: uri,
      from: `<${uri}>;tag=${randomToken()}`,
      to: `<${member.member}>`,
      callId: `${randomToken(12)}@${this.domains.primary}`,
      cseq: 1,
      contentType,
      headers: [],
      body,
      receivedAt: entry.receivedAt,
      expiresAt: entry.receivedAt + this.settings.offlineTtlSeconds * 1000,
    };
  }

  /** A line from the room itself to one member (command answers): never stored. */
  private async notice(uri: string, to: string, text: string, log: Logger): Promise<void> {
    const entry: RoomHistoryRecord = { sender: uri, contentType: 'text/plain;charset=utf-8', body: Buffer.from(text, 'utf8'), receivedAt: this.wallClock.nowMs() };
    await this.send(uri, { member: to, cpim: false, joinedAt: 0 }, entry, true, log);
  }

  /** A line from the room to its other members (joins, leaves, topic): never stored. */
  private async announce(uri: string, except: string, text: string, log: Logger | undefined): Promise<void> {
    const room = this.rooms.get(uri);
    if (!room) return;
    const entry: RoomHistoryRecord = { sender: uri, contentType: 'text/plain;charset=utf-8', body: Buffer.from(text, 'utf8'), receivedAt: this.wallClock.nowMs() };
    await this.fanOut(room, entry, { transient: true, except, log });
  }

  /** The room's last messages, oldest first, to a member who joined. */
  private async replayHistory(uri: string, member: string, log: Logger | undefined, history?: readonly RoomHistoryRecord[]): Promise<void> {
    const room = this.rooms.get(uri);
    const record = room?.members.get(member);
    if (!room || !record) return;
    const entries = history ?? (this.durable ? await this.store.history(uri, this.settings.historySize) : [...room.history]);
    for (const entry of entries) await this.send(uri, record, entry, false, log);
  }
}

/** Does the request's Accept take message/cpim (RFC 3862)? No Accept: plain text only. */
export function acceptsCpim(req: SipRequest): boolean {
  if (req.getHeaders('accept').every((v) => v.trim() === '')) return false;
  return negotiateType(req, [CPIM]) === CPIM;
}

/** The name a member is shown by: the user part of its AoR. */
function nick(aor: string): string {
  return /^sips?:([^@]+)@/.exec(aor)?.[1] ?? aor;
}

function view(r: RoomState): RoomView {
  return {
    uri: r.record.uri,
    owner: r.record.owner,
    topic: r.record.topic,
    persistent: r.record.persistent,
    membersOnly: r.record.membersOnly,
    members: [...r.members.keys()],
    bans: [...r.bans.keys()],
    createdAt: r.record.createdAt,
  };
}
