import type { Database } from '../database.js';
import { opt, toMs } from '../sql-values.js';

/** One user's stored list (schemas/sql/004_resource_lists). */
export interface ResourceListRecord {
  /** The owner's address of record: sip:alice@example.com */
  readonly owner: string;
  /** The list's name: the `<name>` of sip:<user>+<name>@<domain>. */
  readonly name: string;
  readonly displayName?: string;
  /** An RFC 4826 resource-lists document with one `<list>`. */
  readonly document: string;
  readonly updatedAtMs: number;
}

interface ListRow {
  owner: string;
  name: string;
  display_name: string | null;
  document: string;
  updated_at: Date;
}

const COLUMNS = 'owner, name, display_name, document, updated_at';

function record(r: ListRow): ResourceListRecord {
  const displayName = opt(r.display_name);
  return { owner: r.owner, name: r.name, ...(displayName !== undefined ? { displayName } : {}), document: r.document, updatedAtMs: toMs(r.updated_at) };
}

/** Users' resource lists (durable: committed when a call resolves). */
export class ResourceListRepository {
  constructor(private readonly db: Database) {}

  /** The owner's lists, by name. */
  async listFor(owner: string): Promise<ResourceListRecord[]> {
    const res = await this.db.query<ListRow>(`SELECT ${COLUMNS} FROM resource_lists WHERE owner = $1 ORDER BY name`, [owner]);
    return res.rows.map(record);
  }

  async get(owner: string, name: string): Promise<ResourceListRecord | undefined> {
    const res = await this.db.query<ListRow>(`SELECT ${COLUMNS} FROM resource_lists WHERE owner = $1 AND name = $2`, [owner, name]);
    return res.rows[0] ? record(res.rows[0]) : undefined;
  }

  /** Creates or replaces the list (owner, name). */
  async set(list: Omit<ResourceListRecord, 'updatedAtMs'>): Promise<void> {
    await this.db.query(
      // The time is a parameter, not now(): the same SQL runs on SQLite.
      `INSERT INTO resource_lists (owner, name, display_name, document, updated_at) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (owner, name) DO UPDATE SET display_name = EXCLUDED.display_name, document = EXCLUDED.document, updated_at = EXCLUDED.updated_at`,
      [list.owner, list.name, list.displayName ?? null, list.document, new Date()],
    );
  }

  /** True when the list existed. */
  async delete(owner: string, name: string): Promise<boolean> {
    const res = await this.db.query('DELETE FROM resource_lists WHERE owner = $1 AND name = $2', [owner, name]);
    return res.rowCount > 0;
  }

  /** Every list of a deleted account; how many. */
  async deleteOwner(owner: string): Promise<number> {
    const res = await this.db.query('DELETE FROM resource_lists WHERE owner = $1', [owner]);
    return res.rowCount;
  }
}

/** The list a list subscription was made with (RFC 5367: it came in the SUBSCRIBE). */
export interface ListSubscriptionRecord {
  /** The subscription's id (a row of subscriptions). */
  readonly id: string;
  /** An RFC 4826 resource-lists document. */
  readonly document: string;
  /** The subscriber takes deflated NOTIFY bodies. */
  readonly deflate: boolean;
  /** Content-IDs are written without angle brackets (liblinphone). */
  readonly bareContentIds: boolean;
}

interface ListSubscriptionRow {
  id: string;
  document: string;
  deflate: boolean | number;
  bare_content_ids: boolean | number;
}

/**
 * The lists of live list subscriptions (schemas/sql/004): written when one is made or its
 * list replaced, deleted when it ends. Not waited for: a change lost in a crash costs the
 * subscriber a new SUBSCRIBE, as for any soft state.
 */
export class ListSubscriptionRepository {
  constructor(private readonly db: Database) {}

  async set(r: ListSubscriptionRecord): Promise<void> {
    await this.db.query(
      `INSERT INTO list_subscriptions (id, document, deflate, bare_content_ids) VALUES ($1, $2, $3, $4)
       ON CONFLICT (id) DO UPDATE SET document = EXCLUDED.document, deflate = EXCLUDED.deflate, bare_content_ids = EXCLUDED.bare_content_ids`,
      [r.id, r.document, r.deflate, r.bareContentIds],
    );
  }

  async delete(id: string): Promise<void> {
    await this.db.query('DELETE FROM list_subscriptions WHERE id = $1', [id]);
  }

  async all(): Promise<ListSubscriptionRecord[]> {
    const res = await this.db.query<ListSubscriptionRow>('SELECT id, document, deflate, bare_content_ids FROM list_subscriptions');
    return res.rows.map((r) => ({ id: r.id, document: r.document, deflate: r.deflate === true || r.deflate === 1, bareContentIds: r.bare_content_ids === true || r.bare_content_ids === 1 }));
  }
}
