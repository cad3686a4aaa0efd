import { NoRespondersError, TimeoutError, type Msg, type Subscription } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import type { BindingRelay } from '../messaging/binding-relay.js';
import type { BranchOutcome, BranchResult } from '../messaging/fork.js';
import type { Binding, BindingNode } from '../registrar/binding.js';
import { SipRequest, SipResponse } from '../sip/message.js';
import { parseMessage } from '../sip/parser.js';
import type { ClusterHandle } from './nats-link.js';
import { SUBJECTS } from './names.js';

/** Branches relayed to this node at once, at most; more are refused (the sender stores or answers 5xx). */
const MAX_IN_FLIGHT = 5000;

/** Time beyond the contact's answer window for the way to the holding node and back. */
const RELAY_MARGIN_MS = 2000;

const OUTCOMES: ReadonlySet<BranchOutcome> = new Set(['response', 'timeout', 'no-answer', 'transport-error', 'too-large', 'no-route', 'loop']);

export interface ClusterRelayOptions {
  readonly cluster: ClusterHandle;
  readonly node: BindingNode;
  /** Sends a relayed branch from here (the messaging service's own forker). */
  readonly deliver: (request: SipRequest, binding: Binding) => Promise<BranchResult>;
  readonly logger: Logger;
}

/** How a relayed branch ended, as it travels back. */
interface RelayAnswer {
  readonly outcome: BranchOutcome;
  readonly status: number;
  readonly reason: string;
}

/**
 * MESSAGE through the node that holds the flow (DESIGN: "Past one machine"): a branch for
 * a binding another node made goes to that node as a NATS request (the binding and the
 * request's bytes); it sends the request down its connection or from its socket as a
 * branch of its own and answers with the branch's end, the final SIP response included,
 * which the sender relays upstream as if it had sent the branch itself. A node that is
 * gone has no subscriber: NATS says so at once, and the branch counts as not delivered.
 */
export class ClusterRelay implements BindingRelay {
  private subscription?: Subscription;
  private inFlight = 0;
  private readonly log: Logger;
  /** Branches this node sent through others, and ones it sent for others (metrics). */
  readonly stats = { sent: 0, served: 0 };

  constructor(private readonly options: ClusterRelayOptions) {
    this.log = options.logger;
  }

  start(): void {
    this.subscription = this.options.cluster.link.nc.subscribe(SUBJECTS.relay(this.options.node.name), { callback: (err, msg) => (err ? undefined : void this.serve(msg)) });
  }

  stop(): void {
    this.subscription?.unsubscribe();
  }

  isRemote(binding: Binding): boolean {
    return binding.node !== undefined && binding.node.name !== this.options.node.name;
  }

  async send(request: SipRequest, binding: Binding, answerWithinMs: number): Promise<Omit<BranchResult, 'binding'>> {
    const link = this.options.cluster.link;
    if (!link.available) return { outcome: 'transport-error', status: 503, reason: 'Cluster Unavailable' };
    this.stats.sent++;
    const payload = frame({ binding }, request.toBuffer());
    let reply: Msg;
    try {
      reply = await link.inTurn(() => link.nc.request(SUBJECTS.relay(binding.node!.name), payload, { timeout: answerWithinMs + RELAY_MARGIN_MS }));
    } catch (err) {
      // Nobody holds that node's subject: the node is gone, and the request never left.
      if (err instanceof NoRespondersError || (err as { cause?: unknown }).cause instanceof NoRespondersError) return { outcome: 'no-route', status: 480, reason: 'Temporarily Unavailable' };
      if (err instanceof TimeoutError || (err as { cause?: unknown }).cause instanceof TimeoutError) return { outcome: 'no-answer', status: 408, reason: 'Request Timeout' };
      this.log.warn({ err: (err as Error).message, node: binding.node?.name }, 'cluster: relayed branch failed');
      return { outcome: 'transport-error', status: 503, reason: 'Service Unavailable' };
    }
    try {
      const { head, rest } = unframe(reply.data);
      const answer = head as RelayAnswer;
      if (!OUTCOMES.has(answer.outcome) || !Number.isInteger(answer.status) || typeof answer.reason !== 'string') throw new Error('bad relay answer');
      let response: SipResponse | undefined;
      if (rest.length > 0) {
        const parsed = parseMessage(rest);
        if (parsed.ok && parsed.message instanceof SipResponse) response = parsed.message;
      }
      return { outcome: answer.outcome, status: answer.status, reason: answer.reason, ...(response ? { response } : {}) };
    } catch (err) {
      this.log.warn({ err: (err as Error).message, node: binding.node?.name }, 'cluster: unreadable relay answer');
      return { outcome: 'transport-error', status: 500, reason: 'Server Internal Error' };
    }
  }

  /** A branch another node sends through us: we hold the binding's flow. */
  private async serve(msg: Msg): Promise<void> {
    if (this.inFlight >= MAX_IN_FLIGHT) {
      msg.respond(frame({ outcome: 'transport-error', status: 503, reason: 'Service Unavailable' } satisfies RelayAnswer));
      return;
    }
    this.inFlight++;
    this.stats.served++;
    try {
      const { head, rest } = unframe(msg.data);
      const binding = (head as { binding?: Binding }).binding;
      const parsed = parseMessage(rest);
      if (!binding || typeof binding.contact !== 'string' || !parsed.ok || !(parsed.message instanceof SipRequest)) throw new Error('bad relay request');
      const result = await this.options.deliver(parsed.message, this.fromThisRun(binding));
      const answer: RelayAnswer = { outcome: result.outcome, status: result.status, reason: result.reason };
      msg.respond(frame(answer, result.response?.toBuffer()));
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'cluster: relayed branch refused');
      msg.respond(frame({ outcome: 'no-route', status: 480, reason: 'Temporarily Unavailable' } satisfies RelayAnswer));
    } finally {
      this.inFlight--;
    }
  }

  /** A binding made by an earlier run of this node names a connection of that run: none now. */
  private fromThisRun(b: Binding): Binding {
    if (b.node?.run === this.options.node.run || b.flow.connectionId === undefined) return b;
    const { connectionId: _old, ...flow } = b.flow;
    return { ...b, flow };
  }
}

/** One JSON line, then raw bytes. */
function frame(head: object, rest?: Buffer): Buffer {
  const line = Buffer.from(JSON.stringify(head) + '\n', 'utf8');
  return rest ? Buffer.concat([line, rest]) : line;
}

function unframe(data: Uint8Array): { head: unknown; rest: Buffer } {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const nl = buf.indexOf(0x0a);
  if (nl < 0) throw new Error('unframed relay message');
  return { head: JSON.parse(buf.subarray(0, nl).toString('utf8')) as unknown, rest: buf.subarray(nl + 1) };
}
