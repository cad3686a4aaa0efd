interface Waiter<T> {
  match: (m: T) => boolean;
  resolve: (m: T) => void;
  timer: NodeJS.Timeout;
}

/**
 * What a test UA received of one kind (requests or responses) and the waits for it: a
 * message goes to the oldest wait it matches, or is kept in `seen` for a later one.
 */
export class Mailbox<T> {
  readonly seen: T[] = [];
  private readonly waiters: Array<Waiter<T>> = [];

  /** `owner` names the UA and `what` the kind, in the timeout error. */
  constructor(private readonly owner: () => string, private readonly what: string) {}

  wait(match: (m: T) => boolean, timeoutMs: number): Promise<T> {
    const idx = this.seen.findIndex((m) => matches(match, m));
    if (idx >= 0) return Promise.resolve(this.seen.splice(idx, 1)[0]!);
    return new Promise<T>((resolve, reject) => {
      const w: Waiter<T> = {
        match,
        resolve,
        timer: setTimeout(() => {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          reject(new Error(`${this.owner()}: no ${this.what} within ${timeoutMs} ms`));
        }, timeoutMs),
      };
      this.waiters.push(w);
    });
  }

  deliver(m: T): void {
    const w = this.waiters.find((x) => matches(x.match, m));
    if (w) {
      clearTimeout(w.timer);
      this.waiters.splice(this.waiters.indexOf(w), 1);
      w.resolve(m);
    } else this.seen.push(m);
  }

  /** Stops the timers of pending waits (they never settle). */
  close(): void {
    for (const w of this.waiters) clearTimeout(w.timer);
  }
}

/** A matcher that throws (it read a header the message has wrong) does not match. */
function matches<T>(match: (m: T) => boolean, m: T): boolean {
  try {
    return match(m);
  } catch {
    return false;
  }
}
