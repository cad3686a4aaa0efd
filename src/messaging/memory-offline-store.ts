import type { OfflineMessageStore, OfflineUsage, StoredMessage } from './offline-message-store.js';

/**
 * Offline messages in memory: for tests, and the default until the durable store is
 * wired (it does not survive a restart). Bounded per recipient by the messaging service,
 * and in total here.
 */
export class InMemoryOfflineMessageStore implements OfflineMessageStore {
  private readonly byRecipient = new Map<string, StoredMessage[]>();
  private readonly byId = new Map<string, StoredMessage>();
  private totalBytes = 0;

  constructor(private readonly maxTotalBytes = 256 * 1024 * 1024) {}

  get size(): number {
    return this.byId.size;
  }

  async add(message: StoredMessage): Promise<void> {
    if (this.byId.has(message.id)) throw new Error(`stored message ${message.id} exists`);
    if (this.totalBytes + message.body.length > this.maxTotalBytes) throw new Error('offline message store full');
    let list = this.byRecipient.get(message.recipient);
    if (!list) {
      list = [];
      this.byRecipient.set(message.recipient, list);
    }
    // Kept in receivedAt order; equal times keep insertion order.
    let i = list.length;
    while (i > 0 && list[i - 1]!.receivedAt > message.receivedAt) i--;
    list.splice(i, 0, message);
    this.byId.set(message.id, message);
    this.totalBytes += message.body.length;
  }

  async listFor(recipient: string, nowMs: number): Promise<readonly StoredMessage[]> {
    return (this.byRecipient.get(recipient) ?? []).filter((m) => m.expiresAt > nowMs);
  }

  async recipientsWithMessages(recipients: readonly string[], nowMs: number): Promise<readonly string[]> {
    return recipients.filter((r) => this.byRecipient.get(r)?.some((m) => m.expiresAt > nowMs));
  }

  async remove(id: string): Promise<boolean> {
    const m = this.byId.get(id);
    if (!m) return false;
    this.byId.delete(id);
    this.totalBytes -= m.body.length;
    const list = this.byRecipient.get(m.recipient)!;
    list.splice(list.indexOf(m), 1);
    if (list.length === 0) this.byRecipient.delete(m.recipient);
    return true;
  }

  async usage(recipient: string, nowMs: number): Promise<OfflineUsage> {
    let count = 0;
    let bytes = 0;
    for (const m of this.byRecipient.get(recipient) ?? []) {
      if (m.expiresAt <= nowMs) continue;
      count++;
      bytes += m.body.length;
    }
    return { count, bytes };
  }

  async purgeExpired(nowMs: number): Promise<number> {
    let n = 0;
    for (const m of [...this.byId.values()]) {
      if (m.expiresAt <= nowMs && (await this.remove(m.id))) n++;
    }
    return n;
  }

  async summary(nowMs: number): Promise<ReadonlyArray<{ readonly recipient: string } & OfflineUsage>> {
    const out: Array<{ recipient: string } & OfflineUsage> = [];
    for (const recipient of this.byRecipient.keys()) {
      const u = await this.usage(recipient, nowMs);
      if (u.count > 0) out.push({ recipient, ...u });
    }
    return out;
  }
}
