import type { RequestContext } from '../core/services.js';
import type { SubscriptionDecision } from './event-package.js';

/**
 * The hook the security issue fills in: who may publish a presentity's state, and what a
 * presentity's rules say about a watcher (RFC 3856 §6.6, RFC 5025).
 */
export interface PresenceAuthorizer {
  /** RFC 3903 §6 step 3: may the sender of this PUBLISH publish for `presentity`? */
  authorizePublish(ctx: RequestContext, presentity: string): boolean | Promise<boolean>;
  /** What to do with a subscription of `watcher` (an AoR) to `presentity`. */
  decideSubscription(watcher: string, presentity: string): SubscriptionDecision | Promise<SubscriptionDecision>;
  /** Remembers an owner's decision (approve, block...) so later subscriptions follow it. */
  recordDecision?(watcher: string, presentity: string, decision: SubscriptionDecision): void | Promise<void>;
}

/** At most this many remembered decisions (only the admin API writes them). */
const MAX_DECISIONS = 100_000;

/**
 * The default: anyone may publish (authentication is not there yet), a presentity always
 * sees itself, remembered decisions win, and everyone else gets `presence.defaultPolicy`:
 * `open` (active at once) or `confirm` (pending until approved, RFC 3856 §6.6).
 */
export class DefaultPresenceAuthorizer implements PresenceAuthorizer {
  private readonly decisions = new Map<string, SubscriptionDecision>();

  constructor(private readonly policy: 'open' | 'confirm') {}

  authorizePublish(): boolean {
    return true;
  }

  decideSubscription(watcher: string, presentity: string): SubscriptionDecision {
    if (watcher === presentity) return 'allow';
    return this.decisions.get(key(watcher, presentity)) ?? (this.policy === 'open' ? 'allow' : 'confirm');
  }

  recordDecision(watcher: string, presentity: string, decision: SubscriptionDecision): void {
    const k = key(watcher, presentity);
    this.decisions.delete(k);
    if (this.decisions.size >= MAX_DECISIONS) this.decisions.delete(this.decisions.keys().next().value!);
    this.decisions.set(k, decision);
  }
}

function key(watcher: string, presentity: string): string {
  return `${presentity}\u0000${watcher}`;
}
