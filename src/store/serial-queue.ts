/**
 * Runs async jobs one at a time, in arrival order. An embedded store has one connection: without
 * this, two callers' transactions would interleave their statements in one session.
 */
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();
  private waiting = 0;

  /** Jobs queued or running. */
  get length(): number {
    return this.waiting;
  }

  run<T>(job: () => Promise<T>): Promise<T> {
    this.waiting++;
    const result = this.tail.then(job);
    // The next job waits for this one to settle, whatever its outcome.
    this.tail = result.then(
      () => this.waiting--,
      () => this.waiting--,
    );
    return result;
  }
}
