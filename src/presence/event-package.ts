import type { SipRequest } from '../sip/message.js';
import type { Subscription, WatcherEvent } from './subscription.js';

/** What an owner's rules say about a watcher (RFC 5025 §3.2.1 sub-handling, by name). */
export type SubscriptionDecision = 'allow' | 'block' | 'polite-block' | 'confirm';

/** Who asks to subscribe to what. */
export interface SubscribeAttempt {
  /** The watcher's address of record. */
  readonly watcher: string;
  /** The resource (canonical URI of the presentity). */
  readonly resource: string;
  readonly request: SipRequest;
}

/** A NOTIFY body and its type. */
export interface NotifyBody {
  readonly contentType: string;
  /** Shared bytes: never written to. */
  readonly body: Buffer;
  /** More headers of the NOTIFY (RFC 4662 §5.2 Require: eventlist, Content-Encoding...). */
  readonly headers?: ReadonlyArray<readonly [string, string]>;
}

/** Something that happened to a subscription, as watcher information tells it (RFC 3857 §3.3). */
export interface SubscriptionEvent {
  readonly subscription: Subscription;
  readonly event: WatcherEvent;
}

/**
 * What the subscription machinery offers a package: its subscriptions, and a way to have
 * NOTIFYs sent when the package's state changes.
 */
export interface PackageHost {
  /** Live subscriptions of a package to a resource. */
  subscriptionsTo(eventPackage: string, resource: string): readonly Subscription[];
  /** The resource's state changed: every active subscription of the package to it gets a NOTIFY. */
  resourceChanged(eventPackage: string, resource: string): void;
  /** One subscription gets a NOTIFY with its package's current body. */
  notify(subscription: Subscription): void;
}

/**
 * An event package (RFC 6665 §7): its name, the body types it can send, who may subscribe,
 * and how a NOTIFY body is made. Adding one (message-summary, dialog...) touches nothing
 * in the subscription machinery.
 */
export interface EventPackage {
  /** The Event header token (RFC 6665 §8.2.1), lower-case. */
  readonly name: string;
  /** NOTIFY body types offered, the default first (RFC 6665 §4.2.1.1, §7.2). */
  readonly accept: readonly string[];
  /** Called once, when the package is registered. */
  attach?(host: PackageHost): void;
  /** RFC 6665 §4.2.1.1: may this watcher subscribe, and how. */
  authorize(attempt: SubscribeAttempt): SubscriptionDecision | Promise<SubscriptionDecision>;
  /**
   * The body of the NOTIFY about to leave, or undefined for none. Called when the NOTIFY
   * is built, not when the change happened, so coalesced changes send the newest state.
   */
  body(subscription: Subscription): NotifyBody | undefined;
  /** Every subscription event of every package (watcher information listens). */
  onSubscriptionEvent?(event: SubscriptionEvent): void;
  /** A subscription of this package was refreshed (its next NOTIFY carries full state). */
  onRefresh?(subscription: Subscription): void;
  /** A subscription of this package is gone: free what the package kept for it. */
  onRemoved?(subscription: Subscription): void;
}
