import { SipRequest, type SipResponse } from '../sip/message.js';
import type { Destination } from '../transport/types.js';
import type { TimerHandle } from '../util/timers.js';
import { localResponse, TIMEOUT_REASON, TRANSPORT_ERROR_REASON } from './local-response.js';
import { errorText } from './non-invite-server-transaction.js';
import { PROCEEDING_BOUND_MS, type TransactionTimerValues } from './timer-values.js';
import { TransactionState, type ClientMachineContext, type ClientOutcome, type ClientTransaction, type ClientTransactionUser } from './types.js';

/**
 * INVITE client transaction, RFC 3261 §17.1.1.2 (Figure 5) as updated by RFC 6026 (the
 * Accepted state and Timer M):
 *
 *   Calling --1xx--> Proceeding --300-699 / send ACK--> Completed --Timer D--> Terminated
 *     |  \-------------300-699 / send ACK-------------------^
 *     +--2xx (also from Proceeding)--> Accepted --Timer M--> Terminated
 *     +--Timer B or transport error--> Terminated (TU told)
 *
 * Timer A retransmits the INVITE over unreliable transports, doubling each time. The ACK
 * for a 2xx belongs to the TU (§13.2.2.4); the ACK for 300-699 is built here (§17.1.1.3).
 */
export class InviteClientTransaction implements ClientTransaction {
  readonly kind = 'invite' as const;
  readonly final: Promise<SipResponse>;
  private current = TransactionState.Calling;
  private result?: ClientOutcome;
  private resolveFinal!: (res: SipResponse) => void;
  private readonly data: Buffer;
  private ack?: Buffer;
  private timerA?: TimerHandle;
  private timerB?: TimerHandle;
  private timerD?: TimerHandle;
  private timerM?: TimerHandle;
  private guard?: TimerHandle;
  private intervalA = 0;

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
    return this.current;
  }

  get outcome(): ClientOutcome | undefined {
    return this.result;
  }

  /** Enters Calling: sends the INVITE and starts the timers. */
  start(): void {
    // §17.1.1.2: "If an unreliable transport is being used, the client transaction MUST start
    // timer A with a value of T1. If a reliable transport is being used, the client
    // transaction SHOULD NOT start timer A [...]. For any transport, the client transaction
    // MUST start timer B with a value of 64*T1 seconds."
    this.timerB = this.ctx.timers.schedule(this.values.B, () => this.timer_B());
    if (this.values.A !== undefined) {
      this.intervalA = this.values.A;
      this.timerA = this.ctx.timers.schedule(this.intervalA, () => this.timer_A());
    }
    this.send(this.data);
  }

  /** A response matched to this transaction (§17.1.3). */
  receiveResponse(res: SipResponse): void {
    const status = res.status;
    switch (this.current) {
      case TransactionState.Calling:
      case TransactionState.Proceeding:
        if (status < 200) {
          if (this.current === TransactionState.Calling) {
            // §17.1.1.2: "If the client transaction receives a provisional response while in
            // the "Calling" state, it transitions to the "Proceeding" state. In the
            // "Proceeding" state, the client transaction SHOULD NOT retransmit the request any
            // longer." Timer B only bounds Calling.
            this.current = TransactionState.Proceeding;
            this.cancel('A', 'B');
            // Not an RFC timer: Proceeding is bounded by Timer C's value (§16.6 step 11).
            this.guard = this.ctx.timers.schedule(PROCEEDING_BOUND_MS, () => this.timer_guard());
          }
          // §17.1.1.2: "Furthermore, the provisional response MUST be passed to the TU. Any
          // further provisional responses MUST be passed up to the TU while in the
          // "Proceeding" state."
          this.tell(() => this.user.onProvisional?.(res));
          return;
        }
        this.cancel('A', 'B', 'guard');
        if (status < 300) {
          // RFC 6026 (revised §17.1.1.2): a 2xx in Calling or Proceeding moves the client
          // transaction to Accepted and is passed up to the TU; the transaction generates no
          // ACK (the TU does, §13.2.2.4). Entering Accepted starts Timer M, 64*T1.
          this.current = TransactionState.Accepted;
          this.finish(res, 'response');
          this.timerM = this.ctx.timers.schedule(this.values.M, () => this.timer_M());
          return;
        }
        // §17.1.1.2: "When in either the "Calling" or "Proceeding" states, reception of a
        // response with status code from 300-699 MUST cause the client transaction to
        // transition to "Completed". The client transaction MUST pass the received response
        // up to the TU, and the client transaction MUST generate an ACK request, even if the
        // transport is reliable [...]. The ACK MUST be sent to the same address, port, and
        // transport to which the original request was sent."
        this.current = TransactionState.Completed;
        this.ack = ackForNon2xx(this.request, res).toBuffer();
        this.send(this.ack);
        this.finish(res, 'response');
        // §17.1.1.2: "The client transaction SHOULD start timer D when it enters the
        // "Completed" state, with a value of at least 32 seconds for unreliable transports,
        // and a value of zero seconds for reliable transports."
        if (this.values.D > 0) this.timerD = this.ctx.timers.schedule(this.values.D, () => this.timer_D());
        else this.timer_D();
        return;
      case TransactionState.Completed:
        // §17.1.1.2: "Any retransmissions of the final response that are received while in
        // the "Completed" state MUST cause the ACK to be re-passed to the transport layer for
        // retransmission, but the newly received response MUST NOT be passed up to the TU."
        if (status >= 300 && this.ack) this.send(this.ack);
        return;
      case TransactionState.Accepted:
        // RFC 6026 (revised §17.1.1.2): any 2xx received in Accepted is passed up to the TU
        // (a retransmission, or another fork's answer); other responses are discarded.
        if (status >= 200 && status < 300) this.tell(() => this.user.onAdditional2xx?.(res));
        return;
      default:
        return;
    }
  }

  timer_A(): void {
    this.timerA = undefined;
    if (this.current !== TransactionState.Calling) return;
    // §17.1.1.2: "When timer A fires, the client transaction MUST retransmit the request by
    // passing it to the transport layer, and MUST reset the timer with a value of 2*T1. [...]
    // This process MUST continue so that the request is retransmitted with intervals that
    // double after each transmission."
    this.send(this.data);
    this.intervalA *= 2;
    this.timerA = this.ctx.timers.schedule(this.intervalA, () => this.timer_A());
  }

  timer_B(): void {
    this.timerB = undefined;
    if (this.current !== TransactionState.Calling) return;
    // §17.1.1.2: "If the client transaction is still in the "Calling" state when timer B
    // fires, the client transaction SHOULD inform the TU that a timeout has occurred. The
    // client transaction MUST NOT generate an ACK." §8.1.3.1: the TU treats it as a 408.
    this.ctx.log.debug({ txn: this.id }, 'Timer B: INVITE timed out');
    this.terminate();
    this.finish(localResponse(this.request, 408, TIMEOUT_REASON), 'timeout');
  }

  timer_D(): void {
    this.timerD = undefined;
    // §17.1.1.2: "If timer D fires while the client transaction is in the "Completed" state,
    // the client transaction MUST move to the terminated state."
    if (this.current === TransactionState.Completed) this.terminate();
  }

  timer_M(): void {
    this.timerM = undefined;
    // RFC 6026 (revised §17.1.1.2): when Timer M fires in Accepted, the client transaction
    // moves to Terminated.
    if (this.current === TransactionState.Accepted) this.terminate();
  }

  /**
   * §17.1.4: "the client transaction SHOULD inform the TU that a transport failure has
   * occurred, and the client transaction SHOULD transition directly to the "Terminated"
   * state." A failed ACK (Completed) is only logged: the TU already has its response.
   */
  transportError(err: unknown): void {
    if (this.current !== TransactionState.Calling && this.current !== TransactionState.Proceeding) {
      this.ctx.log.debug({ txn: this.id, err: errorText(err), state: this.current }, 'send failed after the final response');
      return;
    }
    this.ctx.log.debug({ txn: this.id, err: errorText(err) }, 'INVITE not sent: transport error');
    this.terminate();
    this.finish(localResponse(this.request, 503, TRANSPORT_ERROR_REASON), 'transport-error');
  }

  dispose(): void {
    this.cancel('A', 'B', 'D', 'M', 'guard');
    this.current = TransactionState.Terminated;
  }

  /** No final response for 3 minutes in Proceeding: give up as a timeout (a local bound). */
  private timer_guard(): void {
    this.guard = undefined;
    if (this.current !== TransactionState.Proceeding) return;
    this.ctx.log.debug({ txn: this.id }, 'no final response to the INVITE in Proceeding; given up');
    this.terminate();
    this.finish(localResponse(this.request, 408, TIMEOUT_REASON), 'timeout');
  }

  private cancel(...names: Array<'A' | 'B' | 'D' | 'M' | 'guard'>): void {
    for (const n of names) {
      switch (n) {
        case 'A': this.ctx.timers.cancel(this.timerA); this.timerA = undefined; break;
        case 'B': this.ctx.timers.cancel(this.timerB); this.timerB = undefined; break;
        case 'D': this.ctx.timers.cancel(this.timerD); this.timerD = undefined; break;
        case 'M': this.ctx.timers.cancel(this.timerM); this.timerM = undefined; break;
        case 'guard': this.ctx.timers.cancel(this.guard); this.guard = undefined; break;
      }
    }
  }

  private send(data: Buffer): void {
    this.ctx.send(data, this.destination).catch((err: unknown) => this.transportError(err));
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

/**
 * The ACK for a 300-699 response to `invite`, per §17.1.1.3: same Request-URI, Call-ID and
 * From as the INVITE; To from the response (with its tag); one Via, equal to the INVITE's
 * top Via; CSeq with the INVITE's number and method ACK; the INVITE's Route headers.
 */
export function ackForNon2xx(invite: SipRequest, res: SipResponse): SipRequest {
  const ack = new SipRequest('ACK', invite.uriText);
  // §17.1.1.3: "The ACK MUST contain a single Via header field, and this MUST be equal to
  // the top Via header field of the original request."
  const topVia = invite.getHeaders('via')[0];
  if (topVia !== undefined) ack.addHeader('Via', topVia);
  const maxForwards = invite.getHeader('max-forwards');
  ack.addHeader('Max-Forwards', maxForwards ?? 70);
  // §17.1.1.3: "If the INVITE request whose response is being acknowledged had Route header
  // fields, those header fields MUST appear in the ACK."
  for (const h of invite.headers) if (h.key === 'route') ack.addHeader('Route', h.value);
  // "The Call-ID, From, and Request-URI [...] MUST be equal to the values of those header
  // fields in the request passed to the transport by the client transaction [...]. The To
  // header field in the ACK MUST equal the To header field in the response being
  // acknowledged".
  const from = invite.getHeader('from');
  if (from !== undefined) ack.addHeader('From', from);
  const to = res.getHeader('to') ?? invite.getHeader('to');
  if (to !== undefined) ack.addHeader('To', to);
  const callId = invite.getHeader('call-id');
  if (callId !== undefined) ack.addHeader('Call-ID', callId);
  // "The CSeq header field in the ACK MUST contain the same value for the sequence number as
  // was present in the original request, but the method parameter MUST be equal to "ACK"."
  const seq = /^\s*(\d+)/.exec(invite.getHeader('cseq') ?? '')?.[1] ?? '0';
  ack.addHeader('CSeq', `${seq} ACK`);
  return ack;
}
