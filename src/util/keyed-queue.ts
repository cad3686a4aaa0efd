/**
 * Runs async work one at a time per key, in arrival order: PUBLISHes of one presentity
 * (RFC 3903: watchers must never see a mix of two states) and check-then-write on one
 * recipient's offline quota. Keys that are idle take no memory; a key's backlog is bounded,
 * since the work comes from the network.
 */
export class KeyedQueue {
  private readonly tails = new Map<string, { tail: Promise<void>; length: number }>();

  constructor(private readonly maxLength: number) {}

  /** Queues `work` behind the key's earlier work; undefined (nothing queued) when the backlog is full. */
  run<T>(key: string, work: () => Promise<T>): Promise<T> | undefined {
    const entry = this.tails.get(key);
    if (entry && entry.length >= this.maxLength) return undefined;
    const prev = entry?.tail ?? Promise.resolve();
    // Runs after the previous work whether it succeeded or failed.
    const next = prev.then(work);
    const tail = next.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(key, { tail, length: (entry?.length ?? 0) + 1 });
    void tail.then(() => {
      const cur = this.tails.get(key);
      if (!cur) return;
      cur.length--;
      if (cur.tail === tail) this.tails.delete(key);
    });
    return next;
  }
}
