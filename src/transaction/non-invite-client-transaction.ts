import type { SipRequest, SipResponse } from '../sip/message.js';
import type { Destination } from '../transport/types.js';
import type { TimerHandle } from '../util/timers.js';
import { localResponse, TIMEOUT_REASON, TRANSPORT_ERROR_REASON } from './local-response.js';
import { errorText } from './non-invite-server-transaction.js';
import type { TransactionTimerValues } from './timer-values.js';
import { TransactionState, type ClientMachineContext, type ClientOutcome, type ClientTransaction, type ClientTransactionUser } from './types.js';

/**
 * Non-INVITE client transaction, RFC 3261 §17.1.2.2 (Figure 6):
 *
 *   Trying --1xx--> Proceeding --200-699--> Completed --Timer K--> Terminated
 *     |  \---------------200-699-----------------^
 *     +--Timer F or transport error (also from Proceeding)--> Terminated (TU told)
 *
 * Timer E retransmits over unreliable transports: T1, doubling up to T2 in Trying, T2 in
 * Proceeding. One method per input: `receiveResponse`, `timer_E`, `timer_F`, `timer_K`,
 * `transportError`.
 */
export class NonInviteClientTransaction implements ClientTransaction {
  readonly kind = 'non-invite' as const;
  readonly final: Promise<SipResponse>;
  private current = TransactionState.Trying;
  private result?: ClientOutcome;
  private resolveFinal!: (res: SipResponse) => void;
  /**
   * The request's bytes, for Timer E; let go once a final response came (only Timer K is
   * left). Over UDP, after the first send, kept as a one-byte string (latin1 keeps every
   * byte) on V8's heap rather than as a slice of Node's buffer pool that would pin its slab in
   * malloc's heap for up to Timer F's 32 s (a restart NOTIFYing 100,000 watchers).
   */
  private data?: Buffer | string;
  private timerE?: TimerHandle;
  private timerF?: TimerHandle;
  private intervalE = 0;
  /** Over UDP, Completed is the layer's (it absorbs by key): the clock time Timer K ends it. */
  private completedUntil?: number;

  constructor(
    readonly id: string,
    readonly request: SipRequest,
    readonly destination: Destination,
    private readonly values: TransactionTimerValues,
    private readonly ctx: ClientMachineContext,
    private readonly user: ClientTransactionUser = {},
  ) {
    this.final = new Promise<SipResponse>((resolve) => (this.resolveFinal = resolve));
    this.data = request.toBuffer();
  }

  get state(): TransactionState {
    if (this.completedUntil !== undefined && this.ctx.timers.clock.now() >= this.completedUntil) {
      this.completedUntil = undefined;
      this.current = TransactionState.Terminated;
    }
    return this.current;
  }

  get outcome(): ClientOutcome | undefined {
    return this.result;
  }

  /** Enters Trying: sends the request and starts the timers. */
  start(): void {
    // §17.1.2.2: "When entering this state, the client transaction SHOULD set timer F to fire
    // in 64*T1 seconds. The request MUST be passed to the transport layer for transmission.
    // If an unreliable transport is in use, the client transaction MUST set timer E to fire
    // in T1 seconds."
    this.timerF = this.ctx.timers.schedule(this.values.F, () => this.timer_F());
    if (this.values.E !== undefined) {
      this.intervalE = this.values.E;
      this.timerE = this.ctx.timers.schedule(this.intervalE, () => this.timer_E());
    }
    this.send();
  }

  /** A response matched to this transaction (§17.1.3). */
  receiveResponse(res: SipResponse): void {
    const status = res.status;
    switch (this.current) {
      case TransactionState.Trying:
      case TransactionState.Proceeding:
        if (status < 200) {
          // §17.1.2.2: "If a provisional response is received while in the "Trying" state,
          // the response MUST be passed to the TU, and then the client transaction SHOULD move
          // to the "Proceeding" state." (Further 1xx in Proceeding are passed up too, Figure 6.)
          this.current = TransactionState.Proceeding;
          this.tell(() => this.user.onProvisional?.(res));
          return;
        }
        // §17.1.2.2: "If a final response (status codes 200-699) is received while in the
        // "Trying" state, the response MUST be passed to the TU, and the client transaction
        // MUST transition to the "Completed" state." (The same from Proceeding.)
        this.current = TransactionState.Completed;
        this.ctx.timers.cancel(this.timerE);
        this.ctx.timers.cancel(this.timerF);
        this.timerE = this.timerF = undefined;
        this.data = undefined;
        this.finish(res, 'response');
        // §17.1.2.2: "Once the client transaction enters the "Completed" state, it MUST set
        // Timer K to fire in T4 seconds for unreliable transports, and zero seconds for
        // reliable transports." Over UDP the layer holds Completed by our key until then.
        if (this.values.K > 0) {
          this.completedUntil = this.ctx.timers.clock.now() + this.values.K;
          this.ctx.completed(this);
        } else {
          this.timer_K();
        }
        return;
      case TransactionState.Completed:
        // §17.1.2.2: "The "Completed" state exists to buffer any additional response
        // retransmissions that may be received."
        this.ctx.log.trace({ txn: this.id, status }, 'response retransmission absorbed in Completed');
        return;
      default:
        return;
    }
  }

  timer_E(): void {
    this.timerE = undefined;
    if (this.current === TransactionState.Trying) {
      // §17.1.2.2: "If Timer E fires while still in this state, the timer is reset, but this
      // time with a value of MIN(2*T1, T2). When the timer fires again, it is reset to a
      // MIN(4*T1, T2). This process continues so that retransmissions occur with an
      // exponentially increasing interval that caps at T2."
      this.intervalE = Math.min(2 * this.intervalE, this.values.T2);
    } else if (this.current === TransactionState.Proceeding) {
      // §17.1.2.2: "If Timer E fires while in the "Proceeding" state, the request MUST be
      // passed to the transport layer for retransmission, and Timer E MUST be reset with a
      // value of T2 seconds."
      this.intervalE = this.values.T2;
    } else {
      return;
    }
    this.send();
    this.timerE = this.ctx.timers.schedule(this.intervalE, () => this.timer_E());
  }

  timer_F(): void {
    this.timerF = undefined;
    if (this.current !== TransactionState.Trying && this.current !== TransactionState.Proceeding) return;
    // §17.1.2.2: "If Timer F fires while the client transaction is still in the "Trying"
    // state, the client transaction SHOULD inform the TU about the timeout, and then it
    // SHOULD enter the "Terminated" state." (Likewise in Proceeding.) §8.1.3.1: the TU
    // treats it as a 408.
    this.ctx.log.debug({ txn: this.id, method: this.request.method }, 'Timer F: request timed out');
    this.terminate();
    this.finish(localResponse(this.request, 408, TIMEOUT_REASON), 'timeout');
  }

  timer_K(): void {
    // §17.1.2.2: "If Timer K fires while in this state, the client transaction MUST
    // transition to the "Terminated" state."
    if (this.current === TransactionState.Completed) this.terminate();
  }

  /**
   * §17.1.4: "the client transaction SHOULD inform the TU that a transport failure has
   * occurred, and the client transaction SHOULD transition directly to the "Terminated"
   * state." §8.1.3.1: the TU treats it as a 503.
   */
  transportError(err: unknown): void {
    if (this.current !== TransactionState.Trying && this.current !== TransactionState.Proceeding) return;
    this.ctx.log.debug({ txn: this.id, err: errorText(err) }, 'request not sent: transport error');
    this.terminate();
    this.finish(localResponse(this.request, 503, TRANSPORT_ERROR_REASON), 'transport-error');
  }

  /** Stops every timer without telling the layer (the layer is closing). `final` stays unresolved. */
  dispose(): void {
    this.ctx.timers.cancel(this.timerE);
    this.ctx.timers.cancel(this.timerF);
    this.timerE = this.timerF = undefined;
    this.current = TransactionState.Terminated;
  }

  private send(): void {
    if (this.data === undefined) return;
    const bytes = typeof this.data === 'string' ? Buffer.from(this.data, 'latin1') : this.data;
    this.ctx.send(bytes, this.destination).catch((err: unknown) => this.transportError(err));
    if (this.values.E !== undefined && typeof this.data !== 'string') this.data = this.data.toString('latin1');
  }

  private finish(res: SipResponse, outcome: ClientOutcome): void {
    if (this.result !== undefined) return;
    this.result = outcome;
    this.resolveFinal(res);
  }

  private tell(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.ctx.log.error({ txn: this.id, err }, 'transaction user callback failed');
    }
  }

  private terminate(): void {
    this.dispose();
    this.ctx.terminated(this);
  }
}
