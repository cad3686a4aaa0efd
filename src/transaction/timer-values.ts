/**
 * RFC 3261 §17 timer values (Table 4, Appendix A), derived from T1, T2 and T4, plus the
 * RFC 6026 timers L and M. All values in milliseconds.
 *
 * On a reliable transport the retransmission timers (A, E, G) are not used (undefined
 * here) and the "wait for retransmissions" timers D, I, J, K are 0 (§17.1.1.2,
 * §17.1.2.2, §17.2.1, §17.2.2). A zero wait means "at once": the machines then move to
 * Terminated synchronously, without touching the timer structure.
 */

export interface TimerConfig {
  /** RTT estimate, default 500 ms (§17.1.1.1). */
  readonly t1?: number;
  /** Maximum retransmit interval for non-INVITE requests and INVITE responses, default 4 s. */
  readonly t2?: number;
  /** Maximum time a message stays in the network, default 5 s. */
  readonly t4?: number;
}

export const DEFAULT_T1 = 500;
export const DEFAULT_T2 = 4000;
export const DEFAULT_T4 = 5000;

/** §17.2.1: "the server transaction MUST generate a 100 (Trying) response" unless the TU answers within 200 ms. */
export const TRYING_DELAY_MS = 200;

/**
 * The Timer C value of RFC 3261 §16.6 step 11 ("MUST be greater than 3 minutes"), used
 * here only as a bound: an INVITE transaction (either side) that sits in Proceeding longer
 * than this is ended, so that no transaction lives forever (DESIGN: bounded everything).
 */
export const PROCEEDING_BOUND_MS = 181_000;

export interface TransactionTimerValues {
  readonly reliable: boolean;
  readonly T1: number;
  readonly T2: number;
  readonly T4: number;
  /** INVITE request retransmit, initially T1; doubles without cap. Unreliable only. */
  readonly A: number | undefined;
  /** INVITE client transaction timeout, 64*T1. */
  readonly B: number;
  /** Wait for response retransmissions (INVITE client): >= 32 s for UDP, 0 reliable. */
  readonly D: number;
  /** Non-INVITE request retransmit, initially T1, doubling to T2. Unreliable only. */
  readonly E: number | undefined;
  /** Non-INVITE client transaction timeout, 64*T1. */
  readonly F: number;
  /** INVITE final response retransmit, initially T1, doubling to T2. Unreliable only. */
  readonly G: number | undefined;
  /** Wait for ACK receipt, 64*T1. */
  readonly H: number;
  /** Wait for ACK retransmissions: T4 for UDP, 0 reliable. */
  readonly I: number;
  /** Wait for non-INVITE request retransmissions: 64*T1 for UDP, 0 reliable. */
  readonly J: number;
  /** Wait for non-INVITE response retransmissions: T4 for UDP, 0 reliable. */
  readonly K: number;
  /** RFC 6026 (Table 4 update): INVITE server in Accepted, wait for 2xx retransmissions from the TU and INVITE retransmissions: 64*T1. */
  readonly L: number;
  /** RFC 6026 (Table 4 update): INVITE client in Accepted, wait for 2xx retransmissions: 64*T1. */
  readonly M: number;
}

function positive(name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) throw new RangeError(`transaction timer ${name} must be a positive number of milliseconds, got ${value}`);
  return value;
}

/** The timer values of one configuration, for reliable and for unreliable transports. */
export class TimerValues {
  readonly T1: number;
  readonly T2: number;
  readonly T4: number;
  readonly unreliable: TransactionTimerValues;
  readonly reliable: TransactionTimerValues;

  constructor(config: TimerConfig = {}) {
    this.T1 = positive('T1', config.t1 ?? DEFAULT_T1);
    this.T2 = positive('T2', config.t2 ?? DEFAULT_T2);
    this.T4 = positive('T4', config.t4 ?? DEFAULT_T4);
    if (this.T2 < this.T1) throw new RangeError(`transaction timer T2 (${this.T2}) must not be below T1 (${this.T1})`);
    this.unreliable = this.derive(false);
    this.reliable = this.derive(true);
  }

  /** The values for a transport: `for(isReliable(protocol))`. */
  for(reliable: boolean): TransactionTimerValues {
    return reliable ? this.reliable : this.unreliable;
  }

  private derive(reliable: boolean): TransactionTimerValues {
    const { T1, T2, T4 } = this;
    const t64 = 64 * T1;
    return Object.freeze({
      reliable,
      T1,
      T2,
      T4,
      A: reliable ? undefined : T1,
      B: t64,
      // Table 4: "> 32s for UDP". With a T1 above 500 ms, 64*T1 keeps D at least as long as B.
      D: reliable ? 0 : Math.max(32_000, t64),
      E: reliable ? undefined : T1,
      F: t64,
      G: reliable ? undefined : T1,
      H: t64,
      I: reliable ? 0 : T4,
      J: reliable ? 0 : t64,
      K: reliable ? 0 : T4,
      L: t64,
      M: t64,
    });
  }
}
