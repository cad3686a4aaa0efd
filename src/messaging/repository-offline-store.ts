import type { OfflineMessageStore, OfflineUsage, StoredMessage } from './offline-message-store.js';

/**
 * The store's stored-message repository as messaging sees it (structural: messaging needs
 * no store import). `insert` resolves once committed.
 */
export interface StoredMessageRepositoryLike {
  insert(message: StoredMessage): Promise<void>;
  listFor(recipient: string, nowMs: number): Promise<readonly StoredMessage[]>;
  recipientsWithMessages(recipients: readonly string[], nowMs: number): Promise<readonly string[]>;
  delete(id: string): Promise<boolean>;
  countAndBytesFor(recipient: string, nowMs: number): Promise<OfflineUsage>;
  deleteExpired(nowMs: number): Promise<number>;
  summary?(nowMs: number): Promise<ReadonlyArray<{ readonly recipient: string } & OfflineUsage>>;
}

/** Durable offline messages: the OfflineMessageStore over the SQL repository. */
export class RepositoryOfflineMessageStore implements OfflineMessageStore {
  constructor(private readonly repo: StoredMessageRepositoryLike) {}

  add(message: StoredMessage): Promise<void> {
    return this.repo.insert(message);
  }

  listFor(recipient: string, nowMs: number): Promise<readonly StoredMessage[]> {
    return this.repo.listFor(recipient, nowMs);
  }

  recipientsWithMessages(recipients: readonly string[], nowMs: number): Promise<readonly string[]> {
    return this.repo.recipientsWithMessages(recipients, nowMs);
  }

  remove(id: string): Promise<boolean> {
    return this.repo.delete(id);
  }

  usage(recipient: string, nowMs: number): Promise<OfflineUsage> {
    return this.repo.countAndBytesFor(recipient, nowMs);
  }

  purgeExpired(nowMs: number): Promise<number> {
    return this.repo.deleteExpired(nowMs);
  }

  async summary(nowMs: number): Promise<ReadonlyArray<{ readonly recipient: string } & OfflineUsage>> {
    return this.repo.summary ? this.repo.summary(nowMs) : [];
  }
}
