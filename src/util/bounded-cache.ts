/**
 * A map that forgets its least recently used entries past `max`: read-through caches of
 * durable data (accounts, presence rules) so requests are served from memory, and go on
 * being served while the database is unreachable (DESIGN: State).
 */
export class BoundedCache<K, V> {
  private readonly map = new Map<K, V>();
  private writeCount = 0;

  constructor(private readonly max: number) {}

  /**
   * Writes so far (`set`, `delete`, `clear`). A read of the backing store takes it before
   * it starts and hands it to `fill`: a write that lands while the read is on its way is
   * newer than what the read saw.
   */
  get writes(): number {
    return this.writeCount;
  }

  /** Caches what a read of the backing store found, unless a write came since it began. */
  fill(key: K, value: V, since: number): void {
    if (this.writeCount === since) this.set(key, value);
  }

  get size(): number {
    return this.map.size;
  }

  has(key: K): boolean {
    return this.map.has(key);
  }

  /** The value, made the most recently used; undefined when absent. */
  get(key: K): V | undefined {
    const v = this.map.get(key);
    if (v === undefined) return undefined;
    this.map.delete(key);
    this.map.set(key, v);
    return v;
  }

  set(key: K, value: V): void {
    this.writeCount++;
    this.map.delete(key);
    if (this.map.size >= this.max) this.map.delete(this.map.keys().next().value as K);
    this.map.set(key, value);
  }

  delete(key: K): void {
    this.writeCount++;
    this.map.delete(key);
  }

  clear(): void {
    this.writeCount++;
    this.map.clear();
  }
}
