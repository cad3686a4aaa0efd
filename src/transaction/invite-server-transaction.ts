import type { SipRequest, SipResponse } from '../sip/message.js';
import { createResponse } from '../sip/response.js';
import type { Flow } from '../transport/types.js';
import type { TimerHandle } from '../util/timers.js';
import { errorText } from './non-invite-server-transaction.js';
import { PROCEEDING_BOUND_MS, TRYING_DELAY_MS, type TransactionTimerValues } from './timer-values.js';
import { TransactionState, type ServerMachineContext, type ServerTransaction } from './types.js';

/**
 * INVITE server transaction, RFC 3261 §17.2.1 (Figure 7) as updated by RFC 6026 (its
 * revised §17.2.1 and Figure 7, which add the Accepted state and Timer L):
 *
 *   Proceeding --300-699 from TU--> Completed --ACK--> Confirmed --Timer I--> Terminated
 *       |                             |
 *       |                             +--Timer H (no ACK)--> Terminated, TU told
 *       +--2xx from TU--> Accepted --Timer L--> Terminated
 *
 * 100 Trying: sent 200 ms after the INVITE arrived if the TU has passed no response by
 * then (§17.2.1: "the server transaction MUST generate a 100 (Trying) response unless it
 * knows that the TU will generate a provisional or final response within 200 ms"). This
 * server's TU answers INVITE at once, so the 100 is almost never needed; a retransmitted
 * INVITE before the 200 ms gets the 100 at once.
 *
 * 2xx: RFC 6026's Accepted state rather than RFC 3261's immediate Terminated, so that
 * INVITE retransmissions after a 2xx are absorbed instead of reaching the TU as new
 * requests, and the TU's own 2xx retransmissions still go out through the transaction.
 */
export class InviteServerTransaction implements ServerTransaction {
  readonly kind = 'invite' as const;
  readonly cancelTarget = undefined;
  private current = TransactionState.Proceeding;
  private provisional?: { readonly res: SipResponse; readonly data: Buffer };
  private final?: { readonly res: SipResponse; readonly data: Buffer };
  private trying?: TimerHandle;
  private guard?: TimerHandle;
  private timerG?: TimerHandle;
  private timerH?: TimerHandle;
  private timerI?: TimerHandle;
  private timerL?: TimerHandle;
  private intervalG = 0;

  constructor(
    readonly id: string,
    readonly request: SipRequest,
    readonly flow: Flow,
    private readonly values: TransactionTimerValues,
    private readonly ctx: ServerMachineContext,
  ) {
    this.trying = ctx.timers.schedule(TRYING_DELAY_MS, () => this.timer_Trying());
    // Not an RFC timer: a TU that never sends a final response must not keep the
    // transaction forever; RFC 3261 §16.6's Timer C value is the bound.
    this.guard = ctx.timers.schedule(PROCEEDING_BOUND_MS, () => this.timer_guard());
  }

  get state(): TransactionState {
    return this.current;
  }

  get lastResponse(): SipResponse | undefined {
    return (this.final ?? this.provisional)?.res;
  }

  /** The To tag of the final response sent (for RFC 2543 ACK matching, §17.2.3). */
  get finalToTag(): string | undefined {
    if (!this.final) return undefined;
    try {
      return this.final.res.to.tag;
    } catch {
      return undefined;
    }
  }

  /** A retransmission of the INVITE. */
  receiveRequest(_req: SipRequest): void {
    switch (this.current) {
      case TransactionState.Proceeding:
        // §17.2.1: "If a request retransmission is received while in the "Proceeding" state,
        // the most recent provisional response that was received from the TU MUST be passed
        // to the transport layer for retransmission."
        if (this.provisional) this.send(this.provisional.data);
        // None yet: the client is waiting, so the 100 Trying goes now rather than at 200 ms.
        else this.sendTrying();
        return;
      case TransactionState.Completed:
        // §17.2.1: "while in the "Completed" state, if a request retransmission is received,
        // the server SHOULD pass the response to the transport for retransmission."
        if (this.final) this.send(this.final.data);
        return;
      case TransactionState.Accepted:
        // RFC 6026 (revised §17.2.1): in Accepted, INVITE retransmissions are absorbed by the
        // transaction and not passed to the TU.
        this.ctx.log.trace({ txn: this.id }, 'INVITE retransmission absorbed in Accepted');
        return;
      default:
        // Confirmed, Terminated: nothing to do.
        return;
    }
  }

  /**
   * An ACK matching this transaction (§17.2.3: same branch and sent-by, method INVITE).
   * Returns false when the ACK is not this machine's to absorb: in Accepted it acknowledges
   * a 2xx, which is the TU's business (§13.3.1.4; RFC 6026 keeps the 2xx ACK outside the
   * INVITE transaction).
   */
  receiveAck(_ack: SipRequest): boolean {
    switch (this.current) {
      case TransactionState.Completed:
        // §17.2.1: "If an ACK is received while the server transaction is in the "Completed"
        // state, the server transaction MUST transition to the "Confirmed" state. As Timer G
        // is ignored in this state, any retransmissions of the response will cease."
        this.current = TransactionState.Confirmed;
        this.ctx.timers.cancel(this.timerG);
        this.ctx.timers.cancel(this.timerH);
        this.timerG = this.timerH = undefined;
        // §17.2.1: "When this state is entered, timer I is set to fire in T4 seconds for
        // unreliable transports, and zero seconds for reliable transports."
        if (this.values.I > 0) this.timerI = this.ctx.timers.schedule(this.values.I, () => this.timer_I());
        else this.timer_I();
        return true;
      case TransactionState.Confirmed:
        // §17.2.1: "The purpose of the "Confirmed" state is to absorb any additional ACK
        // messages that arrive, triggered from retransmissions of the final response."
        return true;
      case TransactionState.Accepted:
        return false;
      default:
        // Proceeding: an ACK before any final response acknowledges nothing; absorb it.
        this.ctx.log.debug({ txn: this.id, state: this.current }, 'ACK absorbed');
        return true;
    }
  }

  /** A response from the TU. */
  respond(res: SipResponse): void {
    const status = res.status;
    if (!Number.isInteger(status) || status < 100 || status > 699) {
      this.ctx.log.warn({ txn: this.id, status }, 'response with an invalid status code dropped');
      return;
    }
    switch (this.current) {
      case TransactionState.Proceeding:
        this.cancelTrying();
        if (status < 200) {
          // §17.2.1: "The TU passes any number of provisional responses to the server
          // transaction. So long as the server transaction is in the "Proceeding" state, each
          // of these MUST be passed to the transport layer for transmission."
          this.provisional = { res, data: res.toBuffer() };
          this.send(this.provisional.data);
          return;
        }
        this.ctx.timers.cancel(this.guard);
        this.guard = undefined;
        this.final = { res, data: res.toBuffer() };
        if (status < 300) {
          // RFC 6026 (revised §17.2.1): a 2xx from the TU in Proceeding is passed to the
          // transport; the server transaction does not retransmit it (the TU does,
          // §13.3.1.4), and the transaction moves to the Accepted state.
          this.current = TransactionState.Accepted;
          this.send(this.final.data);
          // RFC 6026: entering Accepted starts Timer L, 64*T1.
          this.timerL = this.ctx.timers.schedule(this.values.L, () => this.timer_L());
          return;
        }
        // §17.2.1: "While in the "Proceeding" state, if the TU passes a response with status
        // code from 300 to 699 to the server transaction, the response MUST be passed to the
        // transport layer for transmission, and the state machine MUST enter the "Completed"
        // state. For unreliable transports, timer G is set to fire in T1 seconds, and is not
        // set to fire for reliable transports."
        this.current = TransactionState.Completed;
        this.send(this.final.data);
        if (this.values.G !== undefined) {
          this.intervalG = this.values.G;
          this.timerG = this.ctx.timers.schedule(this.intervalG, () => this.timer_G());
        }
        // §17.2.1: "When the "Completed" state is entered, timer H MUST be set to fire in
        // 64*T1 seconds for all transports."
        this.timerH = this.ctx.timers.schedule(this.values.H, () => this.timer_H());
        return;
      case TransactionState.Accepted:
        if (status >= 200 && status < 300) {
          // RFC 6026 (revised Figure 7, Accepted: "2xx from TU / send response"): the TU's
          // own 2xx retransmissions go out through the transaction.
          this.final = { res, data: res.toBuffer() };
          this.send(this.final.data);
          return;
        }
        this.ctx.log.debug({ txn: this.id, status }, 'non-2xx after a 2xx discarded');
        return;
      default:
        this.ctx.log.debug({ txn: this.id, status, state: this.current }, 'response after the final one discarded');
        return;
    }
  }

  timer_G(): void {
    this.timerG = undefined;
    if (this.current !== TransactionState.Completed || !this.final) return;
    // §17.2.1: "If timer G fires, the response is passed to the transport layer once more
    // for retransmission, and timer G is set to fire in MIN(2*T1, T2) seconds. From then on,
    // when timer G fires, the response is passed to the transport again for transmission,
    // and timer G is reset with a value that doubles, unless that value exceeds T2, in which
    // case it is reset with the value of T2."
    this.send(this.final.data);
    this.intervalG = Math.min(2 * this.intervalG, this.values.T2);
    this.timerG = this.ctx.timers.schedule(this.intervalG, () => this.timer_G());
  }

  timer_H(): void {
    this.timerH = undefined;
    if (this.current !== TransactionState.Completed) return;
    // §17.2.1: "If timer H fires while in the "Completed" state, it implies that the ACK was
    // never received. In this case, the server transaction MUST transition to the
    // "Terminated" state, and MUST indicate to the TU that a transaction failure has occurred."
    this.ctx.log.debug({ txn: this.id }, 'Timer H: no ACK for the final response');
    this.terminate();
    this.ctx.failed(this, 'timeout');
  }

  timer_I(): void {
    this.timerI = undefined;
    // §17.2.1: "Once timer I fires, the server MUST transition to the "Terminated" state."
    if (this.current === TransactionState.Confirmed) this.terminate();
  }

  timer_L(): void {
    this.timerL = undefined;
    // RFC 6026 (revised §17.2.1): when Timer L fires in the Accepted state, the
    // transaction moves to Terminated.
    if (this.current === TransactionState.Accepted) this.terminate();
  }

  /** §17.2.1: the 100 Trying, when the TU has said nothing within 200 ms. */
  timer_Trying(): void {
    this.trying = undefined;
    if (this.current === TransactionState.Proceeding && !this.provisional) this.sendTrying();
  }

  /** §17.2.4: a response could not be sent: tell the TU and end. */
  transportError(err: unknown): void {
    if (this.current === TransactionState.Terminated) return;
    this.ctx.log.debug({ txn: this.id, err: errorText(err) }, 'response not sent: transport error');
    this.terminate();
    this.ctx.failed(this, 'transport-error');
  }

  dispose(): void {
    for (const h of [this.trying, this.guard, this.timerG, this.timerH, this.timerI, this.timerL]) this.ctx.timers.cancel(h);
    this.trying = this.guard = this.timerG = this.timerH = this.timerI = this.timerL = undefined;
    this.current = TransactionState.Terminated;
  }

  private timer_guard(): void {
    this.guard = undefined;
    if (this.current !== TransactionState.Proceeding) return;
    this.ctx.log.warn({ txn: this.id }, 'TU sent no final response to the INVITE; transaction given up');
    this.terminate();
    this.ctx.failed(this, 'no-answer');
  }

  private sendTrying(): void {
    this.cancelTrying();
    // §8.2.6.1: a 100 copies the Timestamp header of the request.
    const ts = this.request.getHeader('timestamp');
    const trying = createResponse(this.request, 100, 'Trying', { headers: ts !== undefined ? [['Timestamp', ts]] : [] });
    this.provisional = { res: trying, data: trying.toBuffer() };
    this.send(this.provisional.data);
  }

  private cancelTrying(): void {
    this.ctx.timers.cancel(this.trying);
    this.trying = undefined;
  }

  private send(data: Buffer): void {
    this.ctx.sendResponse(this, data).catch((err: unknown) => this.transportError(err));
  }

  private terminate(): void {
    this.dispose();
    this.ctx.terminated(this);
  }
}
