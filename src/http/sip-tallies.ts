/**
 * The SIP core's request, response and latency counts, kept where they happen (every
 * request and every response, on the SIP thread) as numbers in typed arrays, and read into
 * the exposition at scrape time (metrics.ts). prom-client's labelled counters and
 * histograms build and hash a key from their label object on every increment: about 4 µs
 * a response, some 4 % of the SIP thread's time per call (docs/performance.md).
 */

/** Methods we label as themselves; anything else a client sends is `other` (bounded label sets). */
export const LABELED_METHODS = [
  'INVITE', 'ACK', 'CANCEL', 'BYE', 'REGISTER', 'OPTIONS', 'INFO', 'PRACK', 'UPDATE',
  'SUBSCRIBE', 'NOTIFY', 'PUBLISH', 'MESSAGE', 'REFER',
] as const;
const METHOD_LABELS: readonly string[] = [...LABELED_METHODS, 'other'];
const OTHER = LABELED_METHODS.length;

/** Upper bounds of the latency histogram's buckets (seconds); `+Inf` is the count. */
export const LATENCY_BUCKETS: readonly number[] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/** RFC 3261 §7.2: status codes are 100 to 699. */
const FIRST_STATUS = 100;
const STATUSES = 600;

export interface LatencyTally {
  readonly method: string;
  /** Observations at or under each of LATENCY_BUCKETS (cumulative, as Prometheus has them). */
  readonly cumulative: readonly number[];
  readonly sum: number;
  readonly count: number;
}

export class SipTallies {
  private readonly index = new Map<string, number>(LABELED_METHODS.map((m, i) => [m, i]));
  private readonly requests = new Float64Array(METHOD_LABELS.length);
  private readonly responses = new Float64Array(METHOD_LABELS.length * STATUSES);
  /** Per method, observations in each bucket (not cumulative) and past the last one. */
  private readonly buckets = new Float64Array(METHOD_LABELS.length * (LATENCY_BUCKETS.length + 1));
  private readonly sums = new Float64Array(METHOD_LABELS.length);
  private readonly counts = new Float64Array(METHOD_LABELS.length);

  private methodOf(method: string): number {
    return this.index.get(method) ?? OTHER;
  }

  request(method: string): void {
    this.requests[this.methodOf(method)]!++;
  }

  /** A response sent; a final one also counts its request's latency. */
  response(method: string, status: number, elapsedSeconds: number): void {
    const m = this.methodOf(method);
    const s = status - FIRST_STATUS;
    // The core builds only valid codes; anything else is counted nowhere rather than somewhere wrong.
    if (s >= 0 && s < STATUSES) this.responses[m * STATUSES + s]!++;
    if (status < 200) return;
    let b = 0;
    while (b < LATENCY_BUCKETS.length && elapsedSeconds > LATENCY_BUCKETS[b]!) b++;
    this.buckets[m * (LATENCY_BUCKETS.length + 1) + b]!++;
    this.sums[m]! += elapsedSeconds;
    this.counts[m]!++;
  }

  /** Requests by method label, for the methods seen. */
  requestTotals(): Record<string, number> {
    const out: Record<string, number> = {};
    this.requests.forEach((n, m) => {
      if (n > 0) out[METHOD_LABELS[m]!] = n;
    });
    return out;
  }

  /** Responses by method label and status, for the pairs seen. */
  responseTotals(): Array<{ readonly method: string; readonly status: number; readonly total: number }> {
    const out: Array<{ method: string; status: number; total: number }> = [];
    for (let i = 0; i < this.responses.length; i++) {
      const n = this.responses[i]!;
      if (n > 0) out.push({ method: METHOD_LABELS[Math.floor(i / STATUSES)]!, status: FIRST_STATUS + (i % STATUSES), total: n });
    }
    return out;
  }

  /** The latency histogram, for the methods with a final response. */
  latency(): LatencyTally[] {
    const out: LatencyTally[] = [];
    const width = LATENCY_BUCKETS.length + 1;
    this.counts.forEach((count, m) => {
      if (count === 0) return;
      const cumulative: number[] = [];
      let running = 0;
      for (let b = 0; b < LATENCY_BUCKETS.length; b++) cumulative.push((running += this.buckets[m * width + b]!));
      out.push({ method: METHOD_LABELS[m]!, cumulative, sum: this.sums[m]!, count });
    });
    return out;
  }
}
