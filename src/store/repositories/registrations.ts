import type { Database } from '../database.js';
import { TRANSPORT_NAMES, type RegistrationKey, type RegistrationRecord } from '../records.js';
import { nameValuePairs, oneOf, opt, selectPaged, toDate, toMs } from '../sql-values.js';
import type { KindQueue, TableSpec } from '../write-behind.js';

/** How registrations are written behind: one row a binding, keyed by (aor, binding key). */
export const REGISTRATIONS_TABLE: TableSpec<RegistrationKey, RegistrationRecord> = {
  table: 'registrations',
  keyColumns: ['aor', 'binding_key'],
  columns: [
    { name: 'aor', type: 'text' },
    { name: 'binding_key', type: 'text' },
    { name: 'contact', type: 'text' },
    { name: 'params', type: 'jsonb' },
    { name: 'q', type: 'double precision' },
    { name: 'instance_id', type: 'text' },
    { name: 'reg_id', type: 'integer' },
    { name: 'call_id', type: 'text' },
    { name: 'cseq', type: 'integer' },
    { name: 'expires_at', type: 'timestamptz' },
    { name: 'updated_at', type: 'timestamptz' },
    { name: 'path', type: 'text[]' },
    { name: 'transport', type: 'text' },
    { name: 'remote_address', type: 'text' },
    { name: 'remote_port', type: 'integer' },
    { name: 'local_address', type: 'text' },
    { name: 'local_port', type: 'integer' },
    { name: 'connection_id', type: 'integer' },
    { name: 'reachable', type: 'boolean' },
    { name: 'user_agent', type: 'text' },
  ],
  keyParts: (k) => [k.aor, k.key],
  toRow: (b) => [
    b.aor,
    b.key,
    b.contact,
    b.params,
    b.q ?? null,
    b.instanceId ?? null,
    b.regId ?? null,
    b.callId,
    b.cseq,
    toDate(b.expiresAt),
    toDate(b.updatedAt),
    [...b.path],
    b.flow.protocol,
    b.flow.remoteAddress,
    b.flow.remotePort,
    b.flow.localAddress,
    b.flow.localPort,
    b.flow.connectionId ?? null,
    b.reachable,
    b.userAgent ?? null,
  ],
};

interface RegistrationRow {
  aor: string;
  binding_key: string;
  contact: string;
  params: unknown;
  q: number | null;
  instance_id: string | null;
  reg_id: number | null;
  call_id: string;
  cseq: number;
  expires_at: Date;
  updated_at: Date;
  path: string[];
  transport: string;
  remote_address: string;
  remote_port: number;
  local_address: string;
  local_port: number;
  connection_id: number | null;
  reachable: boolean;
  user_agent: string | null;
}

const FROM = { table: 'registrations', columns: REGISTRATIONS_TABLE.columns.map((c) => c.name) };

/**
 * Location-service bindings (soft state): read once at start-up, changed through the
 * write-behind queue so a REGISTER never waits on the database.
 */
export class RegistrationRepository {
  constructor(
    private readonly db: Database,
    private readonly queue: KindQueue<RegistrationKey, RegistrationRecord>,
  ) {}

  /** Every binding not expired at `nowMs`, in no particular order. */
  async loadLive(nowMs: number): Promise<RegistrationRecord[]> {
    return selectPaged<RegistrationRow & Record<string, unknown>, RegistrationRecord>(this.db, { from: FROM, where: 'expires_at > $1', params: [toDate(nowMs)], keys: ['aor', 'binding_key'], map: fromRow });
  }

  /** Queues the binding's new state; false when the queue is full. */
  upsert(binding: RegistrationRecord): boolean {
    return this.queue.put({ aor: binding.aor, key: binding.key }, binding);
  }

  /** Queues its removal; false when the queue is full. */
  delete(ref: RegistrationKey): boolean {
    return this.queue.delete(ref);
  }

  /** Removes rows expired at `nowMs` (left by a crash); resolves with how many. */
  async deleteExpired(nowMs: number): Promise<number> {
    return (await this.db.query('DELETE FROM registrations WHERE expires_at <= $1', [toDate(nowMs)])).rowCount;
  }
}

function fromRow(r: RegistrationRow): RegistrationRecord {
  const q = opt(r.q);
  const instanceId = opt(r.instance_id);
  const regId = opt(r.reg_id);
  const connectionId = opt(r.connection_id);
  const userAgent = opt(r.user_agent);
  return {
    aor: r.aor,
    key: r.binding_key,
    contact: r.contact,
    params: nameValuePairs(r.params, 'registration params'),
    ...(q !== undefined ? { q } : {}),
    ...(instanceId !== undefined ? { instanceId } : {}),
    ...(regId !== undefined ? { regId } : {}),
    callId: r.call_id,
    cseq: r.cseq,
    expiresAt: toMs(r.expires_at),
    updatedAt: toMs(r.updated_at),
    path: r.path,
    flow: {
      protocol: oneOf(r.transport, TRANSPORT_NAMES, 'transport'),
      remoteAddress: r.remote_address,
      remotePort: r.remote_port,
      localAddress: r.local_address,
      localPort: r.local_port,
      ...(connectionId !== undefined ? { connectionId } : {}),
    },
    reachable: r.reachable,
    ...(userAgent !== undefined ? { userAgent } : {}),
  };
}
