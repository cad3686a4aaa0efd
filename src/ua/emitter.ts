import { EventEmitter } from 'node:events';

/** Event maps name each event and its listener's signature. */
export type EventMap = { [event: string]: (...args: never[]) => void };

/**
 * A typed facade over EventEmitter: `on('presence', (p) => ...)` knows `p`'s type. An
 * `error` event nobody listens to is dropped rather than thrown (a background refresh
 * that failed must not crash the embedding program).
 */
export class TypedEmitter<Events extends EventMap> {
  private readonly ee = new EventEmitter();

  on<K extends keyof Events & string>(event: K, listener: Events[K]): this {
    this.ee.on(event, listener as unknown as (...args: unknown[]) => void);
    return this;
  }

  once<K extends keyof Events & string>(event: K, listener: Events[K]): this {
    this.ee.once(event, listener as unknown as (...args: unknown[]) => void);
    return this;
  }

  off<K extends keyof Events & string>(event: K, listener: Events[K]): this {
    this.ee.off(event, listener as unknown as (...args: unknown[]) => void);
    return this;
  }

  protected emit<K extends keyof Events & string>(event: K, ...args: Parameters<Events[K]>): void {
    if (event === 'error' && this.ee.listenerCount('error') === 0) return;
    this.ee.emit(event, ...args);
  }
}
