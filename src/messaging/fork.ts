import type { Logger } from 'pino';
import type { SipRequest, SipResponse } from '../sip/message.js';
import type { Binding } from '../registrar/binding.js';
import { targetOf } from '../registrar/binding-route.js';
import type { LocationStore } from '../registrar/location-store.js';
import type { RequestSender } from '../transaction/request-sender.js';
import type { Destination } from '../transport/types.js';
import type { Timers } from '../util/timers.js';
import type { BindingRelay } from './binding-relay.js';

/**
 * How one branch ended: a response, or a failure of the transport or of the transaction,
 * or refused before sending (too large for the transport, no route to the binding), or
 * silent past the time the sender can wait (`no-answer`: its transaction goes on alone),
 * or not sent because it would come straight back to us (`loop`).
 */
export type BranchOutcome = 'response' | 'timeout' | 'no-answer' | 'transport-error' | 'too-large' | 'no-route' | 'loop';

export interface BranchResult {
  readonly binding: Binding;
  readonly outcome: BranchOutcome;
  readonly status: number;
  readonly reason: string;
  readonly response?: SipResponse;
}

export interface ForkLimits {
  /** RFC 3428 §7: the largest MESSAGE sent over UDP (the path MTU allowance). */
  readonly maxUdpMessageSize: number;
  /** The transport's own limit for stream transports. */
  readonly maxMessageSize: number;
  /**
   * How long a branch may stay silent before it counts as unanswered. Shorter than the
   * sender's Timer F (64*T1, RFC 3261 §17.1.2.2) so that the sender hears our final
   * answer before it gives up; unbounded (the branch's own Timer F) when absent.
   */
  readonly answerWithinMs?: number;
}

/**
 * Room for the Via the transaction layer puts on top (`Via: SIP/2.0/UDP <IPv6 sent-by>;
 * branch=z9hG4bK<token>;rport`), counted when checking a request against a size limit.
 */
const VIA_ALLOWANCE = 120;

/** A 430 Flow Failed (RFC 5626 §11.5), 481 or 408 from downstream means the flow is gone. */
const FLOW_FAILED_STATUS = new Set([408, 430, 481]);

/** Did this branch show that its binding's flow no longer works (RFC 5626 §4.4 ideas)? */
export function isFlowFailure(r: BranchResult): boolean {
  return r.outcome === 'transport-error' || isUnanswered(r) || r.outcome === 'no-route' || (r.outcome === 'response' && FLOW_FAILED_STATUS.has(r.status));
}

/** Did the contact stay silent (its transaction timed out, or it outlasted the answer window)? */
export function isUnanswered(r: BranchResult): boolean {
  return r.outcome === 'timeout' || r.outcome === 'no-answer';
}

/** Is it known that the request never reached the recipient (so storing it duplicates nothing)? */
export function isKnownUndelivered(r: BranchResult): boolean {
  return r.outcome === 'transport-error' || r.outcome === 'no-route' || (r.outcome === 'response' && r.status === 430);
}

/**
 * Sends a request to every binding at once as client transactions (RFC 3261 §16.6 for
 * each target, §16.5 parallel search). The caller has already done what is the same for
 * every branch (Max-Forwards, Route cleanup); per branch this sets the Request-URI to the
 * contact and the Route set from the Path. The transaction layer adds our Via.
 */
export class Forker {
  constructor(
    private readonly transactions: RequestSender,
    private readonly location: LocationStore,
    private readonly limits: ForkLimits,
    private readonly timers: Timers,
    private readonly log?: Logger,
    /** True for an address we listen on ourselves: a contact there would loop. */
    private readonly isOwnAddress: (dest: Destination) => boolean = () => false,
    /** Bindings whose flow another node holds go through it (a cluster). */
    private readonly relay?: BindingRelay,
  ) {}

  /**
   * Resolves when every branch has its final answer (or stayed silent past the answer
   * window); `onSuccess` hears the first 2xx at once, `onLateSuccess` a 2xx that came
   * after its branch was given up as unanswered.
   */
  async fork(
    base: SipRequest,
    bindings: readonly Binding[],
    onSuccess?: (r: BranchResult) => void,
    onLateSuccess?: (r: BranchResult) => void,
  ): Promise<BranchResult[]> {
    let succeeded = false;
    return Promise.all(
      bindings.map(async (binding) => {
        const remote = this.relay?.isRemote(binding) === true;
        const r = remote ? await this.relayed(base, binding) : await this.branch(base, binding, onLateSuccess);
        // The node that holds the flow marked it itself.
        if (isFlowFailure(r) && !remote) this.location.markUnreachable(binding);
        if (r.status >= 200 && r.status < 300 && !succeeded) {
          succeeded = true;
          onSuccess?.(r);
        }
        return r;
      }),
    );
  }

  /** A branch through the node that holds the binding's flow. */
  private async relayed(base: SipRequest, binding: Binding): Promise<BranchResult> {
    const r = await this.relay!.send(base, binding, this.limits.answerWithinMs ?? 64 * 500);
    this.log?.debug({ contact: binding.contact, node: binding.node?.name, status: r.status, outcome: r.outcome }, 'relayed branch answered');
    return { binding, ...r };
  }

  private async branch(base: SipRequest, binding: Binding, onLateSuccess?: (r: BranchResult) => void): Promise<BranchResult> {
    const target = targetOf(binding);
    if (!target) return { binding, outcome: 'no-route', status: 480, reason: 'Temporarily Unavailable' };
    // RFC 3261 §16.3 step 4 / §21.4.20: a contact (or Path hop) that is this server would
    // bring the request back to us until Max-Forwards runs out; refuse it at once.
    if (this.isOwnAddress(target.destination)) {
      this.log?.info({ contact: binding.contact, aor: binding.aor }, 'contact points back at this server; not forwarded');
      return { binding, outcome: 'loop', status: 482, reason: 'Loop Detected' };
    }
    const req = base.clone();
    // §16.6 step 2: Request-URI is the contact; step 6 (RFC 3327 §5.3): Route from the Path.
    req.setUri(target.requestUri);
    req.removeHeader('route');
    for (const r of target.routeSet) req.addHeader('Route', r);
    const size = req.toBuffer().length + VIA_ALLOWANCE;
    // RFC 3428 §7: over UDP, refuse what would fragment rather than send it.
    const limit = target.destination.protocol === 'udp' ? Math.min(this.limits.maxUdpMessageSize, this.limits.maxMessageSize) : this.limits.maxMessageSize;
    if (size > limit) return { binding, outcome: 'too-large', status: 513, reason: 'Message Too Large' };
    const txn = this.transactions.sendRequest(req, target.destination);
    const res = await this.within(txn.final, binding, (late) => {
      if (late.status >= 200 && late.status < 300) onLateSuccess?.({ binding, outcome: 'response', status: late.status, reason: late.reason, response: late });
    });
    if (res === undefined) return { binding, outcome: 'no-answer', status: 408, reason: 'Request Timeout' };
    const outcome = txn.outcome ?? 'response';
    this.log?.debug({ contact: binding.contact, status: res.status, outcome }, 'branch answered');
    return { binding, outcome, status: res.status, reason: res.reason, response: outcome === 'response' ? res : undefined };
  }

  /**
   * The final response, or undefined when none came within the answer window. The client
   * transaction goes on after that (it owns its retransmissions and Timer F); a late
   * answer goes to `onLate`.
   */
  private within(final: Promise<SipResponse>, binding: Binding, onLate: (res: SipResponse) => void): Promise<SipResponse | undefined> {
    const windowMs = this.limits.answerWithinMs;
    if (windowMs === undefined) return final;
    return new Promise((resolve) => {
      let late = false;
      const timer = this.timers.schedule(windowMs, () => {
        late = true;
        this.log?.debug({ contact: binding.contact, windowMs }, 'branch silent past the answer window');
        resolve(undefined);
      });
      void final.then((res) => {
        if (late) {
          this.log?.info({ contact: binding.contact, status: res.status }, 'branch answered after the answer window');
          onLate(res);
          return;
        }
        this.timers.cancel(timer);
        resolve(res);
      });
    });
  }
}
