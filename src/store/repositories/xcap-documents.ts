import type { Queryable } from '../database.js';

export interface XcapDocumentRecord {
  readonly auid: string;
  /** The owner's SIP URI; '' for the global tree. */
  readonly owner: string;
  readonly path: string;
  readonly content: string;
  readonly etag: string;
}

/** Stored XCAP documents (schemas/sql/005): durable, committed when a call resolves. */
export class XcapDocumentRepository {
  constructor(private readonly db: Queryable) {}

  async get(auid: string, owner: string, path: string): Promise<XcapDocumentRecord | undefined> {
    const res = await this.db.query<XcapDocumentRecord>('SELECT auid, owner, path, content, etag FROM xcap_documents WHERE auid = $1 AND owner = $2 AND path = $3', [
      auid,
      owner,
      path,
    ]);
    return res.rows[0];
  }

  /** Every document of one usage (start-up loads of hard state), at most `limit`. */
  async listByAuid(auid: string, limit: number): Promise<XcapDocumentRecord[]> {
    const res = await this.db.query<XcapDocumentRecord>('SELECT auid, owner, path, content, etag FROM xcap_documents WHERE auid = $1 ORDER BY owner, path LIMIT $2', [auid, limit]);
    return res.rows;
  }

  /** Every document of one owner, at most `limit`. */
  async listByOwner(owner: string, limit: number): Promise<XcapDocumentRecord[]> {
    const res = await this.db.query<XcapDocumentRecord>('SELECT auid, owner, path, content, etag FROM xcap_documents WHERE owner = $1 ORDER BY auid, path LIMIT $2', [owner, limit]);
    return res.rows;
  }

  async put(doc: XcapDocumentRecord): Promise<void> {
    await this.db.query(
      // The time is a parameter, not now(): the same SQL runs on SQLite.
      `INSERT INTO xcap_documents (auid, owner, path, content, etag, updated_at) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (auid, owner, path) DO UPDATE SET content = EXCLUDED.content, etag = EXCLUDED.etag, updated_at = EXCLUDED.updated_at`,
      [doc.auid, doc.owner, doc.path, doc.content, doc.etag, new Date()],
    );
  }

  /**
   * Compare-and-set: writes `doc` only when the stored entity-tag is still `expected`
   * (undefined: only when there is no document yet). False when another writer came first,
   * on this process or another server of a cluster sharing the database.
   */
  async putIf(doc: XcapDocumentRecord, expected: string | undefined): Promise<boolean> {
    const res =
      expected === undefined
        ? await this.db.query(
            `INSERT INTO xcap_documents (auid, owner, path, content, etag, updated_at) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (auid, owner, path) DO NOTHING`,
            [doc.auid, doc.owner, doc.path, doc.content, doc.etag, new Date()],
          )
        : await this.db.query('UPDATE xcap_documents SET content = $4, etag = $5, updated_at = $6 WHERE auid = $1 AND owner = $2 AND path = $3 AND etag = $7', [
            doc.auid,
            doc.owner,
            doc.path,
            doc.content,
            doc.etag,
            new Date(),
            expected,
          ]);
    return res.rowCount > 0;
  }

  /** True when it existed (and, with `expected`, still had that entity-tag). */
  async delete(auid: string, owner: string, path: string, expected?: string): Promise<boolean> {
    const res =
      expected === undefined
        ? await this.db.query('DELETE FROM xcap_documents WHERE auid = $1 AND owner = $2 AND path = $3', [auid, owner, path])
        : await this.db.query('DELETE FROM xcap_documents WHERE auid = $1 AND owner = $2 AND path = $3 AND etag = $4', [auid, owner, path, expected]);
    return res.rowCount > 0;
  }

  /** A deleted account's documents go with it. */
  async deleteOwner(owner: string): Promise<number> {
    const res = await this.db.query('DELETE FROM xcap_documents WHERE owner = $1', [owner]);
    return res.rowCount;
  }
}
