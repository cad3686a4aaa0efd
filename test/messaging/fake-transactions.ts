import type { SentRequest, RequestSender } from '../../src/transaction/request-sender.js';
import type { ClientOutcome } from '../../src/transaction/types.js';
import type { SipRequest, SipResponse } from '../../src/sip/message.js';
import { createResponse } from '../../src/sip/response.js';
import type { Destination } from '../../src/transport/types.js';

export type Answer = number | 'timeout' | 'transport-error' | ((req: SipRequest) => SipResponse);

export interface Sent {
  readonly request: SipRequest;
  readonly destination: Destination;
  answer(a: Answer): void;
}

/**
 * Client transactions without a network: every request is recorded; `answerer` decides
 * at once, or the test answers later through `sent[i].answer(...)`.
 */
export class FakeTransactions implements RequestSender {
  readonly sent: Sent[] = [];
  private waiters: Array<() => void> = [];

  constructor(public answerer?: (req: SipRequest, dest: Destination) => Answer | undefined) {}

  sendRequest(req: SipRequest, dest: Destination): SentRequest {
    let resolve!: (r: SipResponse) => void;
    const final = new Promise<SipResponse>((r) => (resolve = r));
    const txn: { final: Promise<SipResponse>; outcome?: ClientOutcome } = { final };
    const answer = (a: Answer): void => {
      if (a === 'timeout') {
        txn.outcome = 'timeout';
        resolve(createResponse(req, 408));
      } else if (a === 'transport-error') {
        txn.outcome = 'transport-error';
        resolve(createResponse(req, 503));
      } else {
        txn.outcome = 'response';
        resolve(typeof a === 'number' ? createResponse(req, a, undefined, { toTag: 'uas-tag' }) : a(req));
      }
    };
    this.sent.push({ request: req, destination: dest, answer });
    const auto = this.answerer?.(req, dest);
    if (auto !== undefined) queueMicrotask(() => answer(auto));
    const ws = this.waiters;
    this.waiters = [];
    for (const w of ws) w();
    return txn;
  }

  /** Resolves once `n` requests were sent in all. */
  async waitSent(n: number): Promise<void> {
    while (this.sent.length < n) await new Promise<void>((r) => this.waiters.push(r));
  }
}

/** Lets pending promise chains run. */
export async function settle(rounds = 20): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>((r) => setImmediate(r));
}
