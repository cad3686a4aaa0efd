import { SipResponse, type SipRequest } from '../sip/message.js';
import { parseMessage } from '../sip/parser.js';
import type { Destination, Flow } from '../transport/types.js';
import type { TimerHandle } from '../util/timers.js';
import { detached, requestFromResponse } from './completed-request.js';
import type { TransactionTimerValues } from './timer-values.js';
import { TransactionState, type ServerMachineContext, type ServerTransaction } from './types.js';

/**
 * Non-INVITE server transaction, RFC 3261 §17.2.2 (Figure 8):
 *
 *   Trying --1xx from TU--> Proceeding --final from TU--> Completed --Timer J--> Terminated
 *      \-------------------final from TU---------------------^
 *
 * One method per input: `receiveRequest` (a retransmission from the network), `respond`
 * (a response from the TU), `timer_J`, `transportError`. Every timer lives in the layer's
 * shared timer structure; nothing here throws on what the network sends. Completed over an
 * unreliable transport is handed to the layer (`ServerMachineContext.completed`), which
 * resends the response until Timer J from a table of its own (CompletedResponses).
 */
export class NonInviteServerTransaction implements ServerTransaction {
  readonly kind = 'non-invite' as const;
  private current = TransactionState.Trying;
  /** The request until Completed; then only its method and Request-URI (see `compact`). */
  private req?: SipRequest;
  private method: string;
  private uriText?: string;
  /** The last response sent, until Completed (see `compact`). */
  private last?: { readonly res: SipResponse; readonly data: Buffer };
  /**
   * Once Completed: the final response's bytes as a one-byte string (latin1 keeps every
   * byte). A string lives on V8's heap, which compacts and gives its pages back; the Buffer
   * is a slice of Node's 8 KB pool, and 100,000 of them held for Timer J's 32 s pinned their
   * slabs (and the garbage beside them) in malloc's heap, which never shrank again: 160 MB
   * of the resident set after 100,000 SUBSCRIBEs (docs/performance.md "Memory").
   */
  private sent?: string;
  /**
   * When Timer J ends the Completed state over an unreliable transport (clock ms). The layer
   * keeps what Completed needs (CompletedResponses) and answers retransmissions; this object
   * only tells its state to whoever still holds it.
   */
  private completedUntil?: number;
  private guard?: TimerHandle;

  constructor(
    readonly id: string,
    request: SipRequest,
    readonly flow: Flow,
    private readonly values: TransactionTimerValues,
    private readonly ctx: ServerMachineContext,
    readonly cancelTarget?: ServerTransaction,
  ) {
    this.req = request;
    this.method = request.method;
    // Not an RFC timer: a TU that never answers must not keep the transaction forever.
    // After 64*T1 the client's Timer F has fired (§17.1.2.2), so no answer can matter.
    this.guard = ctx.timers.schedule(values.F, () => this.timer_guard());
  }

  get state(): TransactionState {
    if (this.completedUntil !== undefined && this.ctx.timers.clock.now() >= this.completedUntil) {
      this.completedUntil = undefined;
      this.current = TransactionState.Terminated;
    }
    return this.current;
  }

  /**
   * The request that created the transaction. Once Completed over an unreliable transport,
   * read back from the final response (Request-Line, Via, From, To, Call-ID, CSeq; see `compact`).
   */
  get request(): SipRequest {
    if (this.req) return this.req;
    const bytes = this.bytes();
    const copy = bytes && requestFromResponse(this.method, this.uriText ?? '', bytes);
    // Our own response bytes always parse; anything else is a bug here, not the peer's.
    if (!copy) throw new Error(`transaction ${this.id}: request not readable from its response`);
    return copy;
  }

  get lastResponse(): SipResponse | undefined {
    if (this.last) return this.last.res;
    const bytes = this.bytes();
    if (!bytes) return undefined;
    // Compacted: read back from the bytes sent (rare: diagnostics and tests).
    const parsed = parseMessage(bytes);
    return parsed.ok && parsed.message instanceof SipResponse ? parsed.message : undefined;
  }

  /** A retransmission of the request that created the transaction (§17.2.3 matched it). */
  receiveRequest(_req: SipRequest): void {
    switch (this.current) {
      case TransactionState.Trying:
        // §17.2.2: "Once in the "Trying" state, any further request retransmissions are discarded."
        this.ctx.log.trace({ txn: this.id }, 'request retransmission absorbed in Trying');
        return;
      case TransactionState.Proceeding:
        // §17.2.2: "If a retransmission of the request is received while in the "Proceeding"
        // state, the most recently sent provisional response MUST be passed to the transport
        // layer for retransmission."
        this.retransmit();
        return;
      case TransactionState.Completed:
        // §17.2.2: "While in the "Completed" state, the server transaction MUST pass the final
        // response to the transport layer for retransmission whenever a retransmission of the
        // request is received."
        this.retransmit();
        return;
      default:
        return;
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
      case TransactionState.Trying:
      case TransactionState.Proceeding:
        if (status < 200) {
          // §17.2.2: "While in the "Trying" state, if the TU passes a provisional response to
          // the server transaction, the server transaction MUST enter the "Proceeding" state.
          // The response MUST be passed to the transport layer for transmission." And: "Any
          // further provisional responses that are received from the TU while in the
          // "Proceeding" state MUST be passed to the transport layer for transmission."
          this.current = TransactionState.Proceeding;
          this.transmit(res);
          return;
        }
        // §17.2.2: "If the TU passes a final response (status codes 200-699) to the server
        // while in the "Proceeding" state, the transaction MUST enter the "Completed" state,
        // and the response MUST be passed to the transport layer for transmission." (The
        // same holds from Trying, Figure 8.)
        this.current = TransactionState.Completed;
        this.ctx.timers.cancel(this.guard);
        this.guard = undefined;
        {
          // Over UDP the response is resent from Completed: its route is worked out once, here.
          const route = this.values.J > 0 ? this.ctx.responseRoute(this) : undefined;
          this.transmit(res, route);
          // §17.2.2: "When the server transaction enters the "Completed" state, it MUST set
          // Timer J to fire in 64*T1 seconds for unreliable transports, and zero seconds for
          // reliable transports."
          if (this.current !== TransactionState.Completed) return;
          if (this.values.J > 0 && route) {
            this.compact();
            this.completedUntil = this.ctx.timers.clock.now() + this.values.J;
            this.ctx.completed(this, this.sent!, route);
          } else {
            this.timer_J();
          }
        }
        return;
      case TransactionState.Completed:
        // §17.2.2: "Any other final responses passed by the TU to the server transaction
        // MUST be discarded while in the "Completed" state."
        this.ctx.log.debug({ txn: this.id, status }, 'response after the final one discarded');
        return;
      default:
        this.ctx.log.debug({ txn: this.id, status }, 'response to a terminated transaction discarded');
        return;
    }
  }

  timer_J(): void {
    // §17.2.2: "The server transaction remains in this state until Timer J fires, at which
    // point it MUST transition to the "Terminated" state."
    if (this.current === TransactionState.Completed) this.terminate();
  }

  /** The TU said nothing for 64*T1: give the transaction up (a local bound). */
  private timer_guard(): void {
    this.guard = undefined;
    if (this.current !== TransactionState.Trying && this.current !== TransactionState.Proceeding) return;
    this.ctx.log.warn({ txn: this.id, method: this.method }, 'TU never answered; transaction given up');
    this.terminate();
    this.ctx.failed(this, 'no-answer');
  }

  /**
   * §17.2.4: "If those should all fail [...] the server transaction SHOULD inform the TU
   * that a failure has occurred, and SHOULD transition to the terminated state."
   */
  transportError(err: unknown): void {
    if (this.current === TransactionState.Terminated) return;
    this.ctx.log.debug({ txn: this.id, err: errorText(err) }, 'response not sent: transport error');
    this.terminate();
    this.ctx.failed(this, 'transport-error');
  }

  /** Stops every timer without telling the layer (the layer is closing). */
  dispose(): void {
    this.ctx.timers.cancel(this.guard);
    this.guard = undefined;
    this.completedUntil = undefined;
    this.current = TransactionState.Terminated;
  }

  /**
   * Completed for 64*T1 (§17.2.2) only to resend the final response when the request comes
   * again: keep the response bytes and where they went, let the request go. Without this,
   * transactions in Completed held most of the memory under load (and the garbage
   * collector's time went into walking them).
   */
  private compact(): void {
    if (!this.last || !this.req) return;
    this.uriText = detached(this.req.uriText);
    this.method = detached(this.method);
    this.req = undefined;
    this.sent = this.last.data.toString('latin1');
    this.last = undefined;
  }

  /** The bytes of the last response sent, whichever form they are kept in. */
  private bytes(): Buffer | undefined {
    if (this.last) return this.last.data;
    return this.sent === undefined ? undefined : Buffer.from(this.sent, 'latin1');
  }

  private transmit(res: SipResponse, route?: Destination): void {
    this.last = { res, data: res.toBuffer() };
    this.send(this.last.data, route);
  }

  private retransmit(): void {
    const bytes = this.bytes();
    if (bytes) this.send(bytes);
  }

  private send(data: Buffer, route?: Destination): void {
    this.ctx.sendResponse(this, data, route).catch((err: unknown) => this.transportError(err));
  }

  private terminate(): void {
    this.dispose();
    this.ctx.terminated(this);
  }
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
