import type { PresenceAuthorizer } from './authorizer.js';
import type { EventPackage, NotifyBody, PackageHost, SubscribeAttempt, SubscriptionDecision } from './event-package.js';
import { PIDF_CONTENT_TYPE, type PresenceDocuments } from './presence-documents.js';
import type { Subscription } from './subscription.js';

/**
 * The presence event package (RFC 3856): NOTIFY bodies are the presentity's composed PIDF
 * document (RFC 3863), the same bytes for every watcher of one view; who may watch is the
 * authorizer's call.
 */
export class PresencePackage implements EventPackage {
  readonly name = 'presence';
  readonly accept = [PIDF_CONTENT_TYPE] as const;
  private host?: PackageHost;

  constructor(
    private readonly documents: PresenceDocuments,
    private readonly authorizer: PresenceAuthorizer,
  ) {}

  attach(host: PackageHost): void {
    this.host = host;
  }

  authorize(attempt: SubscribeAttempt): SubscriptionDecision | Promise<SubscriptionDecision> {
    return this.authorizer.decideSubscription(attempt.watcher, attempt.resource);
  }

  body(sub: Subscription): NotifyBody | undefined {
    // A final NOTIFY carries the state only when the subscription simply ran out (fetch,
    // unsubscribe, expiry: RFC 6665 §4.4.3); after a rejection or deactivation it says nothing.
    if (sub.status === 'terminated' && sub.reason !== 'timeout') return undefined;
    const body = sub.view === 'polite-block' ? this.documents.neutral(sub.resource) : this.documents.full(sub.resource);
    return { contentType: PIDF_CONTENT_TYPE, body };
  }

  /** The presentity's composed document changed: every active watcher hears of it. */
  stateChanged(presentity: string): void {
    this.host?.resourceChanged(this.name, presentity);
  }
}
