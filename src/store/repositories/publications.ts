import type { Database } from '../database.js';
import type { PublicationRecord } from '../records.js';
import { forEachPage, toDate, toMs } from '../sql-values.js';
import type { KindQueue, TableSpec } from '../write-behind.js';

/** How publications are written behind: one row an entity-tag. */
export const PUBLICATIONS_TABLE: TableSpec<string, PublicationRecord> = {
  table: 'publications',
  keyColumns: ['etag'],
  columns: [
    { name: 'etag', type: 'text' },
    { name: 'presentity', type: 'text' },
    { name: 'content_type', type: 'text' },
    { name: 'body', type: 'bytea' },
    { name: 'published_at', type: 'timestamptz' },
    { name: 'expires_at', type: 'timestamptz' },
    { name: 'version', type: 'integer' },
  ],
  keyParts: (etag) => [etag],
  toRow: (p) => [p.etag, p.presentity, p.contentType, p.body, toDate(p.publishedAtMs), toDate(p.expiresAtMs), p.version ?? 1],
};

interface PublicationRow {
  etag: string;
  presentity: string;
  content_type: string;
  body: Buffer;
  published_at: Date;
  expires_at: Date;
  version: number;
}

/**
 * Publications (soft state): read once at start-up, changed through the write-behind
 * queue so a PUBLISH never waits on the database.
 */
export class PublicationRepository {
  constructor(
    private readonly db: Database,
    private readonly queue: KindQueue<string, PublicationRecord>,
  ) {}

  /** Every publication not expired at `nowMs`, in no particular order. */
  async loadLive(nowMs: number): Promise<PublicationRecord[]> {
    const out: PublicationRecord[] = [];
    await this.forEachLive(nowMs, (page) => {
      for (const p of page) out.push(p);
    });
    return out;
  }

  /** The same a page at a time, none kept here (start-up puts each page back as it comes); resolves with the count. */
  forEachLive(nowMs: number, each: (page: PublicationRecord[]) => void): Promise<number> {
    return forEachPage<PublicationRow & Record<string, unknown>, PublicationRecord>(
      this.db,
      {
        from: { table: 'publications', columns: ['etag', 'presentity', 'content_type', 'body', 'published_at', 'expires_at', 'version'] },
        where: 'expires_at > $1',
        params: [toDate(nowMs)],
        keys: ['etag'],
        map: (r) => ({
          etag: r.etag,
          presentity: r.presentity,
          contentType: r.content_type,
          body: r.body,
          publishedAtMs: toMs(r.published_at),
          expiresAtMs: toMs(r.expires_at),
          version: r.version,
        }),
      },
      each,
    );
  }

  /** Queues the publication's new state; false when the queue is full. */
  upsert(publication: PublicationRecord, fresh = false): boolean {
    return this.queue.put(publication.etag, publication, fresh);
  }

  /** Queues its removal; false when the queue is full. */
  delete(etag: string): boolean {
    return this.queue.delete(etag);
  }

  /** Removes rows expired at `nowMs` (left by a crash); resolves with how many. */
  async deleteExpired(nowMs: number): Promise<number> {
    return (await this.db.query('DELETE FROM publications WHERE expires_at <= $1', [toDate(nowMs)])).rowCount;
  }
}
