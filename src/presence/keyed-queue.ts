/**
 * Runs async work one at a time per key, in arrival order (RFC 3903 processing of one
 * presentity must not interleave: watchers would see a mix of two states). Keys that are
 * idle take no memory; a key's backlog is bounded.
 */
export class KeyedQueue {
  private readonly tails = new Map<string, { tail: Promise<void>; length: number }>();

  constructor(private readonly maxLength: number) {}

  /** Queues `work` behind the key's earlier work; false (and nothing queued) when the backlog is full. */
  run(key: string, work: () => Promise<void>): Promise<void> | undefined {
    const entry = this.tails.get(key);
    if (entry && entry.length >= this.maxLength) return undefined;
    const prev = entry?.tail ?? Promise.resolve();
    const next = prev.then(work);
    const tail = next.catch(() => undefined);
    const e = { tail, length: (entry?.length ?? 0) + 1 };
    this.tails.set(key, e);
    void tail.then(() => {
      const cur = this.tails.get(key);
      if (!cur) return;
      cur.length--;
      if (cur.tail === tail) this.tails.delete(key);
    });
    return next;
  }
}
