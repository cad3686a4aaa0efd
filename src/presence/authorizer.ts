import type { RequestContext } from '../core/services.js';
import type { SubscriptionDecision } from './event-package.js';
import { matchRule, watcherKeys } from './rules/rule-matching.js';
import { isIdentity, NO_TRANSFORMATIONS, type PresenceRule, type Transformations } from './rules/rule-types.js';

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

/** The rules as the authorizer reads them (the store's presence_rules, schemas/sql/002). */
export interface RuleSource {
  candidates(presentity: string, watchers: readonly string[]): Promise<PresenceRule[]>;
  set(rule: PresenceRule): Promise<void>;
  presentitiesWithTransformations(): Promise<ReadonlySet<string>>;
}

export interface RulesAuthorizerOptions {
  /** The stored rules; undefined while no store is open (then decisions are kept in memory). */
  readonly rules: () => RuleSource | undefined;
  /** What a presentity's rules say of a watcher they do not name. */
  readonly defaultDecision: SubscriptionDecision;
  /** Authentication is on: a request without an identity may not publish. */
  readonly requireIdentity: boolean;
}

/** Transformations remembered per (watcher, presentity), at most. */
const MAX_VIEWS = 100_000;

/**
 * Stored presence rules (RFC 5025 semantics): PUBLISH only for the authenticated user's own
 * presentity (RFC 3903 §6 step 3), a presentity always sees itself, the most specific rule
 * (watcher URI, then `*@domain`, then `*`) decides, and the configured default for the rest.
 * Remembers the transformations of each (watcher, presentity) it decided, for NOTIFY bodies.
 */
export class RulesPresenceAuthorizer implements PresenceAuthorizer {
  private readonly memory: DefaultPresenceAuthorizer;
  private readonly views = new Map<string, Transformations>();

  constructor(private readonly options: RulesAuthorizerOptions) {
    this.memory = new DefaultPresenceAuthorizer(options.defaultDecision === 'allow' ? 'open' : 'confirm');
  }

  authorizePublish(ctx: RequestContext, presentity: string): boolean {
    if (ctx.identity) return ctx.identity.aor === presentity;
    return !this.options.requireIdentity;
  }

  async decideSubscription(watcher: string, presentity: string): Promise<SubscriptionDecision> {
    return (await this.decide(watcher, presentity)).action;
  }

  /** The matching rule (or the default), its transformations remembered for the NOTIFYs. */
  async decide(watcher: string, presentity: string): Promise<{ action: SubscriptionDecision; transformations: Transformations }> {
    if (watcher === presentity) return this.remember(watcher, presentity, 'allow', NO_TRANSFORMATIONS);
    const rules = this.options.rules();
    if (!rules) return this.remember(watcher, presentity, this.memory.decideSubscription(watcher, presentity), NO_TRANSFORMATIONS);
    const rule = matchRule(await rules.candidates(presentity, watcherKeys(watcher)), watcher);
    return this.remember(watcher, presentity, rule?.action ?? this.options.defaultDecision, rule?.transformations ?? NO_TRANSFORMATIONS);
  }

  async recordDecision(watcher: string, presentity: string, decision: SubscriptionDecision): Promise<void> {
    const rules = this.options.rules();
    if (!rules) {
      this.memory.recordDecision(watcher, presentity, decision);
      return;
    }
    // The owner's decision about this watcher; transformations it had stay.
    const existing = (await rules.candidates(presentity, [watcher]))[0];
    await rules.set({ presentity, watcher, action: decision, transformations: existing?.transformations ?? NO_TRANSFORMATIONS });
  }

  /**
   * Decides again the (watcher, presentity) pairs of subscriptions restored after a
   * restart whose presentity has transforming rules, so their first NOTIFY is already
   * transformed (the views are remembered in memory only). Fails closed: a pair that
   * cannot be decided is shown the neutral document.
   */
  async warm(pairs: Iterable<{ readonly watcher: string; readonly presentity: string }>): Promise<void> {
    const rules = this.options.rules();
    if (!rules) return;
    const transforming = await rules.presentitiesWithTransformations();
    if (transforming.size === 0) return;
    for (const { watcher, presentity } of pairs) {
      if (!transforming.has(presentity)) continue;
      try {
        await this.decide(watcher, presentity);
      } catch {
        this.remember(watcher, presentity, 'polite-block', { hideNotes: true, hideDevices: true, basicOnly: true });
      }
    }
  }

  /** What `watcher` is shown of `presentity` (as last decided). */
  transformationsFor(watcher: string, presentity: string): Transformations {
    return this.views.get(key(watcher, presentity)) ?? NO_TRANSFORMATIONS;
  }

  private remember(watcher: string, presentity: string, action: SubscriptionDecision, t: Transformations): { action: SubscriptionDecision; transformations: Transformations } {
    const k = key(watcher, presentity);
    this.views.delete(k);
    if (!isIdentity(t)) {
      if (this.views.size >= MAX_VIEWS) this.views.delete(this.views.keys().next().value!);
      this.views.set(k, t);
    }
    return { action, transformations: t };
  }
}
