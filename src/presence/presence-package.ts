import type { PresenceAuthorizer } from './authorizer.js';
import type { EventPackage, NotifyBody, PackageHost, SubscribeAttempt, SubscriptionDecision } from './event-package.js';
import { PIDF_CONTENT_TYPE, type PresenceDocuments } from './presence-documents.js';
import type { Subscription, SubscriptionView } from './subscription.js';

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
    return { contentType: PIDF_CONTENT_TYPE, body: this.viewDocument(sub.watcher, sub.resource, sub.view) };
  }

  /** The document `watcher` is shown of `presentity` in `view` (the RLS asks it for list members too). */
  viewDocument(_watcher: string, presentity: string, view: SubscriptionView): Buffer {
    return view === 'polite-block' ? this.documents.neutral(presentity) : this.documents.full(presentity);
  }

  /** The presentity's composed document changed: every active watcher hears of it. */
  stateChanged(presentity: string): void {
    this.host?.resourceChanged(this.name, presentity);
  }
}
