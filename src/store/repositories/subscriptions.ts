import type { Database } from '../database.js';
import { TRANSPORT_NAMES, WATCHER_EVENTS, type FlowRecord, type SubscriptionRecord } from '../records.js';
import { oneOf, opt, selectPaged, toDate, toMs } from '../sql-values.js';
import type { KindQueue, TableSpec } from '../write-behind.js';

/** How subscriptions are written behind: one row a subscription, its dialog flattened into columns. */
export const SUBSCRIPTIONS_TABLE: TableSpec<string, SubscriptionRecord> = {
  table: 'subscriptions',
  keyColumns: ['id'],
  columns: [
    { name: 'id', type: 'text' },
    { name: 'event_package', type: 'text' },
    { name: 'event_id', type: 'text' },
    { name: 'resource', type: 'text' },
    { name: 'watcher', type: 'text' },
    { name: 'watcher_uri', type: 'text' },
    { name: 'watcher_display_name', type: 'text' },
    { name: 'state', type: 'text' },
    { name: 'view', type: 'text' },
    { name: 'accept', type: 'text' },
    { name: 'created_at', type: 'timestamptz' },
    { name: 'expires_at', type: 'timestamptz' },
    { name: 'last_version', type: 'integer' },
    { name: 'last_event', type: 'text' },
    { name: 'authorized', type: 'boolean' },
    { name: 'call_id', type: 'text' },
    { name: 'local_tag', type: 'text' },
    { name: 'remote_tag', type: 'text' },
    { name: 'local_uri', type: 'text' },
    { name: 'remote_uri', type: 'text' },
    { name: 'local_cseq', type: 'integer' },
    { name: 'remote_cseq', type: 'integer' },
    { name: 'route_set', type: 'text[]' },
    { name: 'remote_target', type: 'text' },
    { name: 'secure', type: 'boolean' },
    { name: 'contact', type: 'text' },
    { name: 'transport', type: 'text' },
    { name: 'remote_address', type: 'text' },
    { name: 'remote_port', type: 'integer' },
    { name: 'local_address', type: 'text' },
    { name: 'local_port', type: 'integer' },
    { name: 'connection_id', type: 'integer' },
  ],
  keyParts: (id) => [id],
  toRow: (s) => {
    const d = s.dialog;
    return [
      s.id,
      s.eventPackage,
      s.eventId ?? null,
      s.resource,
      s.watcher,
      s.watcherUri,
      s.watcherDisplayName ?? null,
      s.status,
      s.view,
      s.contentType,
      toDate(s.createdAtMs),
      toDate(s.expiresAtMs),
      s.documentVersion,
      s.lastEvent,
      s.authorized,
      d.callId,
      d.localTag,
      d.remoteTag,
      d.localUri,
      d.remoteUri,
      d.localSeq,
      d.remoteSeq,
      [...d.routeSet],
      d.remoteTarget,
      d.secure,
      d.localContact,
      d.flow.protocol,
      d.flow.remoteAddress,
      d.flow.remotePort,
      d.flow.localAddress,
      d.flow.localPort,
      d.flow.connectionId ?? null,
    ];
  },
};

interface SubscriptionRow {
  id: string;
  event_package: string;
  event_id: string | null;
  resource: string;
  watcher: string;
  watcher_uri: string;
  watcher_display_name: string | null;
  state: string;
  view: string;
  accept: string;
  created_at: Date;
  expires_at: Date;
  last_version: number;
  last_event: string;
  authorized: boolean;
  call_id: string;
  local_tag: string;
  remote_tag: string;
  local_uri: string;
  remote_uri: string;
  local_cseq: number;
  remote_cseq: number;
  route_set: string[];
  remote_target: string;
  secure: boolean;
  contact: string;
  transport: string;
  remote_address: string;
  remote_port: number;
  local_address: string;
  local_port: number;
  connection_id: number | null;
}

const FROM = { table: 'subscriptions', columns: SUBSCRIPTIONS_TABLE.columns.map((c) => c.name) };

/**
 * Subscriptions with their dialogs (soft state): read once at start-up, changed through
 * the write-behind queue so a SUBSCRIBE or NOTIFY never waits on the database.
 */
export class SubscriptionRepository {
  constructor(
    private readonly db: Database,
    private readonly queue: KindQueue<string, SubscriptionRecord>,
  ) {}

  /** Every subscription not expired at `nowMs`, in no particular order. */
  async loadLive(nowMs: number): Promise<SubscriptionRecord[]> {
    return selectPaged<SubscriptionRow & Record<string, unknown>, SubscriptionRecord>(this.db, { from: FROM, where: 'expires_at > $1', params: [toDate(nowMs)], keys: ['id'], map: fromRow });
  }

  /** Queues the subscription's new state; false when the queue is full. */
  upsert(subscription: SubscriptionRecord, fresh = false): boolean {
    return this.queue.put(subscription.id, subscription, fresh);
  }

  /** Queues its removal; false when the queue is full. */
  delete(id: string): boolean {
    return this.queue.delete(id);
  }

  /** Removes rows expired at `nowMs` (left by a crash); resolves with how many. */
  async deleteExpired(nowMs: number): Promise<number> {
    return (await this.db.query('DELETE FROM subscriptions WHERE expires_at <= $1', [toDate(nowMs)])).rowCount;
  }
}

function fromRow(r: SubscriptionRow): SubscriptionRecord {
  // Optional fields are added when present (never spread from temporary objects: 100,000 rows
  // of a start-up spent 2 µs each on the spreads).
  const flow: { -readonly [K in keyof FlowRecord]: FlowRecord[K] } = {
    protocol: oneOf(r.transport, TRANSPORT_NAMES, 'transport'),
    remoteAddress: r.remote_address,
    remotePort: r.remote_port,
    localAddress: r.local_address,
    localPort: r.local_port,
  };
  if (r.connection_id !== null) flow.connectionId = r.connection_id;
  const record: { -readonly [K in keyof SubscriptionRecord]: SubscriptionRecord[K] } = {
    id: r.id,
    eventPackage: r.event_package,
    resource: r.resource,
    watcher: r.watcher,
    watcherUri: r.watcher_uri,
    status: oneOf(r.state, ['pending', 'active'] as const, 'subscription state'),
    view: oneOf(r.view, ['full', 'polite-block'] as const, 'subscription view'),
    contentType: r.accept,
    expiresAtMs: toMs(r.expires_at),
    createdAtMs: toMs(r.created_at),
    documentVersion: r.last_version,
    lastEvent: oneOf(r.last_event, WATCHER_EVENTS, 'watcher event'),
    authorized: r.authorized,
    dialog: {
      callId: r.call_id,
      localTag: r.local_tag,
      remoteTag: r.remote_tag,
      localUri: r.local_uri,
      remoteUri: r.remote_uri,
      localSeq: r.local_cseq,
      remoteSeq: r.remote_cseq,
      routeSet: r.route_set,
      remoteTarget: r.remote_target,
      secure: r.secure,
      localContact: r.contact,
      flow,
    },
  };
  if (r.event_id !== null) record.eventId = r.event_id;
  if (r.watcher_display_name !== null) record.watcherDisplayName = r.watcher_display_name;
  return record;
}
