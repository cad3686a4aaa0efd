/**
 * A MESSAGE kept for a recipient who had no reachable contact (RFC 3428 §8 leaves
 * store-and-forward to the server). A plain JSON-able record apart from the body: it holds
 * all that delivery needs after a restart. Times are wall-clock ms.
 */
export interface StoredMessage {
  /** Unique, assigned by the messaging service. */
  readonly id: string;
  /** Canonical AoR of the recipient. */
  readonly recipient: string;
  /** AoR of the sender, when its From is a SIP URI (admin views, per-sender limits later). */
  readonly sender?: string;
  /** From and To header values as received (tags included). */
  readonly from: string;
  readonly to: string;
  readonly callId: string;
  readonly cseq: number;
  /** Content-Type header value as received, if any. */
  readonly contentType?: string;
  /** Other end-to-end headers carried along (Subject, Content-Encoding...), in order. */
  readonly headers: ReadonlyArray<readonly [string, string]>;
  readonly body: Buffer;
  readonly receivedAt: number;
  readonly expiresAt: number;
}

export interface OfflineUsage {
  readonly count: number;
  /** Sum of body sizes. */
  readonly bytes: number;
}

/**
 * Durable storage of offline messages (DESIGN: stored messages are committed before the
 * 2xx). The store issue implements it over SQL; `InMemoryOfflineMessageStore` serves
 * tests and the time before. Expired messages (expiresAt passed) must not be listed or
 * counted even before `purgeExpired` ran.
 */
export interface OfflineMessageStore {
  /** Resolves once the message is committed. */
  add(message: StoredMessage): Promise<void>;
  /** The recipient's unexpired messages, oldest first (receivedAt, then insertion order). */
  listFor(recipient: string, nowMs: number): Promise<readonly StoredMessage[]>;
  /**
   * Which of `recipients` have unexpired messages: one question for the many registrations
   * of a busy moment, most of them for users with nothing stored.
   */
  recipientsWithMessages(recipients: readonly string[], nowMs: number): Promise<readonly string[]>;
  /** Resolves true when it was there. */
  remove(id: string): Promise<boolean>;
  usage(recipient: string, nowMs: number): Promise<OfflineUsage>;
  /** Deletes every message expired at `nowMs`; resolves with how many. */
  purgeExpired(nowMs: number): Promise<number>;
  /** Admin: usage of every recipient with stored messages (optional for an implementation). */
  summary?(nowMs: number): Promise<ReadonlyArray<{ readonly recipient: string } & OfflineUsage>>;
}
