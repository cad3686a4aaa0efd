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
