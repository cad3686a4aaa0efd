import type { Binding } from '../registrar/binding.js';
import type { SipRequest } from '../sip/message.js';
import type { BranchResult } from './fork.js';

/**
 * Sending to a binding whose flow another node holds (a cluster, DESIGN: "Past one
 * machine"): that node sends the request down its connection or from its socket and
 * answers with how the branch ended, the final response included.
 */
export interface BindingRelay {
  /** True when another node holds the binding's flow. */
  isRemote(binding: Binding): boolean;
  /**
   * Sends `request` (the branch's copy before the Request-URI and Route are set) to
   * `binding` through its node, which gives the contact `answerWithinMs` to answer.
   */
  send(request: SipRequest, binding: Binding, answerWithinMs: number): Promise<Omit<BranchResult, 'binding'>>;
}
