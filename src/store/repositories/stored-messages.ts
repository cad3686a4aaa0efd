import { isUniqueViolation, type Database } from '../database.js';
import type { StoredMessageRecord, StoredMessageUsage } from '../records.js';
import { namePairs, opt, toDate, toMs } from '../sql-values.js';

interface MessageRow {
  message_id: string;
  recipient: string;
  sender: string | null;
  from_header: string;
  to_header: string;
  call_id: string;
  cseq: number;
  content_type: string | null;
  headers: unknown;
  body: Buffer;
  received_at: Date;
  expires_at: Date;
}

/** Recipients asked about in one statement (its parameters, well below any driver's limit). */
const RECIPIENTS_PER_STATEMENT = 500;

export class StoredMessageExistsError extends Error {
  override name = 'StoredMessageExistsError';
}

/**
 * Messages kept for offline recipients (durable, DESIGN: committed before the 2xx, so
 * `insert` resolves only once the row is committed). Reads leave out messages expired at
 * `nowMs` even before `deleteExpired` removed them.
 */
export class StoredMessageRepository {
  constructor(private readonly db: Database) {}

  /** Stores the message; resolves once committed. StoredMessageExistsError for a known id. */
  async insert(m: StoredMessageRecord): Promise<void> {
    try {
      await this.db.query(
        `INSERT INTO stored_messages (message_id, recipient, sender, from_header, to_header, call_id, cseq, content_type, headers, body, received_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
        [
          m.id,
          m.recipient,
          m.sender ?? null,
          m.from,
          m.to,
          m.callId,
          m.cseq,
          m.contentType ?? null,
          JSON.stringify(m.headers),
          m.body,
          toDate(m.receivedAt),
          toDate(m.expiresAt),
        ],
      );
    } catch (err) {
      if (isUniqueViolation(err)) throw new StoredMessageExistsError(`stored message ${m.id} exists`);
      throw err;
    }
  }

  /** The recipient's unexpired messages, oldest first (received, then stored order). */
  async listFor(recipient: string, nowMs = Date.now()): Promise<StoredMessageRecord[]> {
    const res = await this.db.query<MessageRow>(
      `SELECT message_id, recipient, sender, from_header, to_header, call_id, cseq, content_type, headers, body, received_at, expires_at
       FROM stored_messages WHERE recipient = $1 AND expires_at > $2 ORDER BY received_at, id`,
      [recipient, toDate(nowMs)],
    );
    return res.rows.map(fromRow);
  }

  /**
   * Which of `recipients` have unexpired messages. Asked once for many registrations (most
   * recipients have none), so a burst of REGISTERs costs a few statements, not one each.
   */
  async recipientsWithMessages(recipients: readonly string[], nowMs = Date.now()): Promise<string[]> {
    const out: string[] = [];
    for (let i = 0; i < recipients.length; i += RECIPIENTS_PER_STATEMENT) {
      const chunk = recipients.slice(i, i + RECIPIENTS_PER_STATEMENT);
      const res = await this.db.query<{ recipient: string }>(
        `SELECT DISTINCT recipient FROM stored_messages WHERE expires_at > $1 AND recipient IN (${chunk.map((_, j) => `$${j + 2}`).join(', ')})`,
        [toDate(nowMs), ...chunk],
      );
      for (const r of res.rows) out.push(r.recipient);
    }
    return out;
  }

  /** True when it was there. */
  async delete(id: string): Promise<boolean> {
    return (await this.db.query('DELETE FROM stored_messages WHERE message_id = $1', [id])).rowCount > 0;
  }

  /** How many unexpired messages the recipient has, and their body bytes (per-user limits). */
  async countAndBytesFor(recipient: string, nowMs = Date.now()): Promise<StoredMessageUsage> {
    // Casts keep the sums numbers on every driver (node-postgres gives bigint as text);
    // CAST AS double precision is both PostgreSQL's and SQLite's (REAL) syntax.
    const res = await this.db.query<{ count: number; bytes: number }>(
      `SELECT CAST(count(*) AS double precision) AS count, CAST(coalesce(sum(octet_length(body)), 0) AS double precision) AS bytes
       FROM stored_messages WHERE recipient = $1 AND expires_at > $2`,
      [recipient, toDate(nowMs)],
    );
    const row = res.rows[0];
    return { count: row?.count ?? 0, bytes: row?.bytes ?? 0 };
  }

  /** Deletes every message expired at `nowMs`; resolves with how many. */
  async deleteExpired(nowMs: number): Promise<number> {
    return (await this.db.query('DELETE FROM stored_messages WHERE expires_at <= $1', [toDate(nowMs)])).rowCount;
  }

  /** Usage of every recipient with unexpired messages (admin views). */
  async summary(nowMs = Date.now()): Promise<Array<{ recipient: string } & StoredMessageUsage>> {
    const res = await this.db.query<{ recipient: string; count: number; bytes: number }>(
      `SELECT recipient, CAST(count(*) AS double precision) AS count, CAST(sum(octet_length(body)) AS double precision) AS bytes
       FROM stored_messages WHERE expires_at > $1 GROUP BY recipient ORDER BY recipient`,
      [toDate(nowMs)],
    );
    return res.rows.map((r) => ({ recipient: r.recipient, count: r.count, bytes: r.bytes }));
  }
}

function fromRow(r: MessageRow): StoredMessageRecord {
  const sender = opt(r.sender);
  const contentType = opt(r.content_type);
  return {
    id: r.message_id,
    recipient: r.recipient,
    ...(sender !== undefined ? { sender } : {}),
    from: r.from_header,
    to: r.to_header,
    callId: r.call_id,
    cseq: r.cseq,
    ...(contentType !== undefined ? { contentType } : {}),
    headers: namePairs(r.headers, 'stored message headers'),
    body: r.body,
    receivedAt: toMs(r.received_at),
    expiresAt: toMs(r.expires_at),
  };
}
