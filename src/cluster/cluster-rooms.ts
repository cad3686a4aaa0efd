import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, StorageType, type ConsumerInfo, type ConsumerMessages, type JetStreamClient } from '@nats-io/jetstream';
import { nanos, type Subscription } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import type { RoomCluster, RoomStreamMessage } from '../messaging/rooms/room-service.js';
import type { ClusterHandle } from './nats-link.js';
import { ROOM_MESSAGES, STREAMS, SUBJECTS, token } from './names.js';

export interface RoomNewsHandlers {
  /** Another node changed the room in the store: read it again. */
  roomChanged(uri: string): Promise<void>;
  /** A room message from the stream, in the stream's order: send it to the members this node holds. */
  roomMessage(message: RoomStreamMessage): Promise<void>;
  /** Back from a lost connection (news are at most once): read every room again. */
  resync(): Promise<void>;
}

/**
 * How long JetStream waits for a node's ack before giving the message again: what a node
 * killed while it sent one waits at restart for it. A node at work on one says so every
 * WORKING_MS (a copy may wait for a contact up to the answer window).
 */
const ACK_WAIT_MS = 5000;
const WORKING_MS = 2000;
/** How long the stream keeps a room message nobody needs any more (a node away longer misses it). */
const STREAM_MAX_AGE_MS = 24 * 3600_000;

/**
 * Rooms across a cluster (issue 22, DESIGN: "Past one machine"). Room state is in
 * PostgreSQL for every node; a node that changed a room tells the others on one subject and
 * waits for their answers (bounded), as for cache news, so each node's view is current when
 * the command returns. A room message is appended to a JetStream stream (one subject a room)
 * before the sender gets 202; every node reads the stream through a durable consumer of its
 * own, one message at a time, and sends each to the members whose flows it holds. So a
 * message reaches every node's members once, in the stream's order, and a node that dies
 * after the 202 loses nothing: the others deliver theirs, and its consumer resumes at restart.
 */
export class ClusterRooms implements RoomCluster {
  private subscription?: Subscription;
  private messages?: ConsumerMessages;
  private js?: JetStreamClient;

  constructor(
    private readonly cluster: ClusterHandle,
    readonly node: string,
    private readonly log: Logger,
    /** How many other nodes are live, to wait for as many answers. */
    private readonly peers: () => number,
    private readonly options: { readonly ackTimeoutMs: number; readonly replicas: number },
  ) {}

  /** Listens for news, makes the stream (when missing) and this node's consumer, and starts reading. */
  async start(handlers: RoomNewsHandlers): Promise<void> {
    const nc = this.cluster.link.nc;
    this.subscription = nc.subscribe(SUBJECTS.roomNews, {
      callback: (err, msg) => {
        if (err) return;
        let news: { node?: unknown; room?: unknown };
        try {
          news = JSON.parse(msg.string()) as { node?: unknown; room?: unknown };
        } catch {
          return;
        }
        if (news.node === this.node || typeof news.room !== 'string') return;
        void handlers
          .roomChanged(news.room)
          .catch((e: unknown) => this.log.error({ err: e, room: news.room }, 'cluster: room news not applied'))
          .then(() => {
            if (msg.reply) msg.respond('');
          });
      },
    });
    this.cluster.onReconnect(() => {
      void handlers.resync().catch((err: unknown) => this.log.error({ err }, 'cluster: rooms not read again after reconnection'));
    });
    this.log.debug({ step: 'rooms: stream' }, 'cluster: joining');
    const jsm = await jetstreamManager(nc, { timeout: this.options.ackTimeoutMs });
    const stream = { name: STREAMS.rooms, subjects: [`${ROOM_MESSAGES}.>`], storage: StorageType.File, num_replicas: this.options.replicas, max_age: nanos(STREAM_MAX_AGE_MS) };
    try {
      await jsm.streams.add(stream);
    } catch (err) {
      // Made earlier, perhaps with other limits: used as it is.
      this.log.debug({ err: (err as Error).message }, 'cluster: room stream exists');
    }
    const durable = `node_${token(this.node)}`;
    // One message in flight a node: the next waits for its ack, so the stream's order holds.
    const limits = { ack_wait: nanos(ACK_WAIT_MS), max_ack_pending: 1 };
    this.log.debug({ step: 'rooms: consumer' }, 'cluster: joining');
    let existing: ConsumerInfo | undefined;
    try {
      existing = await jsm.consumers.info(STREAMS.rooms, durable);
    } catch {
      // A new node starts from what comes next; a node that restarts resumes after its last ack.
      await jsm.consumers.add(STREAMS.rooms, { durable_name: durable, ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.New, ...limits });
    }
    if (existing && (existing.config.ack_wait !== limits.ack_wait || existing.config.max_ack_pending !== limits.max_ack_pending)) {
      await jsm.consumers.update(STREAMS.rooms, durable, limits);
    }
    this.log.debug({ step: 'rooms: consume' }, 'cluster: joining');
    this.js = jetstream(nc, { timeout: this.options.ackTimeoutMs });
    const consumer = await this.js.consumers.get(STREAMS.rooms, durable);
    this.messages = await consumer.consume({ max_messages: 16 });
    void this.read(this.messages, handlers);
  }

  stop(): void {
    this.subscription?.unsubscribe();
    void this.messages?.close();
  }

  /** Tells the other nodes that `uri` changed in the store; resolves once they read it again (at most ackTimeoutMs). */
  async changed(uri: string): Promise<void> {
    const link = this.cluster.link;
    const news = JSON.stringify({ node: this.node, room: uri });
    const others = this.peers();
    if (others <= 0 || !link.available) {
      link.nc.publish(SUBJECTS.roomNews, news);
      return;
    }
    let answered = 0;
    try {
      const answers = await link.nc.requestMany(SUBJECTS.roomNews, news, { strategy: 'count', maxMessages: others, maxWait: this.options.ackTimeoutMs });
      for await (const _ of answers) answered++;
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, 'cluster: room news answers ended early');
    }
    if (answered < others) this.log.warn({ room: uri, answered, others }, 'cluster: not every node confirmed the room news in time');
  }

  /** Appends a room message to the stream; resolves once JetStream stored it (throws when it did not). */
  async publish(message: RoomStreamMessage): Promise<void> {
    this.cluster.link.require();
    if (!this.js) throw new Error('cluster: room stream not started');
    await this.js.publish(`${ROOM_MESSAGES}.${token(message.room)}`, encodeRoomMessage(message));
  }

  /** One message at a time, acknowledged once handed to this node's members (ordered by the stream). */
  private async read(messages: ConsumerMessages, handlers: RoomNewsHandlers): Promise<void> {
    try {
      for await (const m of messages) {
        let message: RoomStreamMessage;
        try {
          message = decodeRoomMessage(m.data);
        } catch (err) {
          this.log.error({ err: (err as Error).message, seq: m.seq }, 'cluster: unreadable room message dropped');
          m.ack();
          continue;
        }
        const working = setInterval(() => m.working(), WORKING_MS);
        try {
          await handlers.roomMessage(message);
        } catch (err) {
          this.log.error({ err, room: message.room, seq: m.seq }, 'cluster: room message not delivered here');
        } finally {
          clearInterval(working);
        }
        m.ack();
      }
    } catch (err) {
      this.log.error({ err }, 'cluster: room stream reading ended');
    }
  }
}

/** JSON, the body in base64 (messages are small: a room takes text). */
export function encodeRoomMessage(m: RoomStreamMessage): string {
  return JSON.stringify({ v: 1, room: m.room, node: m.node, sender: m.entry.sender, type: m.entry.contentType, body: m.entry.body.toString('base64'), at: m.entry.receivedAt, to: m.to });
}

/** A streamed room message; throws on anything malformed. */
export function decodeRoomMessage(data: Uint8Array): RoomStreamMessage {
  const j = JSON.parse(Buffer.from(data).toString('utf8')) as Record<string, unknown>;
  const to = j.to;
  if (j.v !== 1 || typeof j.room !== 'string' || typeof j.node !== 'string' || typeof j.sender !== 'string' || typeof j.type !== 'string' || typeof j.body !== 'string' || !Number.isFinite(j.at)) {
    throw new Error('bad room message');
  }
  if (!Array.isArray(to) || !to.every((t) => Array.isArray(t) && t.length === 2 && typeof t[0] === 'string' && typeof t[1] === 'boolean')) throw new Error('bad room message recipients');
  return {
    room: j.room,
    node: j.node,
    entry: { sender: j.sender, contentType: j.type, body: Buffer.from(j.body, 'base64'), receivedAt: j.at as number },
    to: to as Array<[string, boolean]>,
  };
}
