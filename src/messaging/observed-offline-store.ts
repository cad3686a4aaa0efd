import type { OfflineMessageStore, OfflineUsage, StoredMessage } from './offline-message-store.js';

/** Recipients of messages remembered by id, at most (the ones added or listed lately). */
const MAX_REMEMBERED = 100_000;

/**
 * An offline store that tells when a recipient's stored messages changed (one was stored,
 * delivered or withdrawn after a late 2xx), for message waiting indication (RFC 3842). It
 * tells, never counts: whoever listens reads the count back from the store, so a message
 * removed twice (delivered, then withdrawn) cannot be counted twice.
 */
export class ObservedOfflineStore implements OfflineMessageStore {
  /** Recipient by message id, for `remove`, which names only the id. */
  private readonly recipients = new Map<string, string>();

  constructor(
    readonly inner: OfflineMessageStore,
    private readonly changed: (recipient: string) => void,
  ) {}

  async add(message: StoredMessage): Promise<void> {
    await this.inner.add(message);
    this.remember(message.id, message.recipient);
    this.changed(message.recipient);
  }

  async listFor(recipient: string, nowMs: number): Promise<readonly StoredMessage[]> {
    const list = await this.inner.listFor(recipient, nowMs);
    for (const m of list) this.remember(m.id, m.recipient);
    return list;
  }

  recipientsWithMessages(recipients: readonly string[], nowMs: number): Promise<readonly string[]> {
    return this.inner.recipientsWithMessages(recipients, nowMs);
  }

  async remove(id: string): Promise<boolean> {
    const removed = await this.inner.remove(id);
    const recipient = this.recipients.get(id);
    this.recipients.delete(id);
    if (removed && recipient !== undefined) this.changed(recipient);
    return removed;
  }

  usage(recipient: string, nowMs: number): Promise<OfflineUsage> {
    return this.inner.usage(recipient, nowMs);
  }

  purgeExpired(nowMs: number): Promise<number> {
    return this.inner.purgeExpired(nowMs);
  }

  get summary(): OfflineMessageStore['summary'] {
    const inner = this.inner;
    return inner.summary ? (nowMs) => inner.summary!(nowMs) : undefined;
  }

  private remember(id: string, recipient: string): void {
    this.recipients.delete(id);
    if (this.recipients.size >= MAX_REMEMBERED) this.recipients.delete(this.recipients.keys().next().value!);
    this.recipients.set(id, recipient);
  }
}
