/**
 * One shared copy of a value that many long-lived records hold equal copies of (the flow a
 * device publishes from, its tuple ids): each copy kept is one more heap object for the
 * collector to mark for as long as the record lives. At most `max` values are kept; past
 * that the table starts afresh (records keep the copies they hold).
 */
export class Interner<V> {
  private readonly table = new Map<string, V>();

  constructor(private readonly max: number) {}

  /** The shared value for `key`, made by `make` the first time. */
  get(key: string, make: () => V): V {
    let value = this.table.get(key);
    if (value === undefined) {
      if (this.table.size >= this.max) this.table.clear();
      value = make();
      this.table.set(key, value);
    }
    return value;
  }

  get size(): number {
    return this.table.size;
  }
}
