import net from 'node:net';
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import type { LocalDomains } from '../core/local-domains.js';
import type { RequestContext, SipService } from '../core/services.js';
import type { RequestSender } from '../transaction/request-sender.js';
import { timersWallClock } from '../registrar/wall-clock.js';
import type { UserDirectory } from '../registrar/user-directory.js';
import type { Flow } from '../transport/types.js';
import type { Timers, WallClock } from '../util/timers.js';
import { ownString } from '../util/own-string.js';
import { DefaultPresenceAuthorizer, RulesPresenceAuthorizer, type PresenceAuthorizer } from './authorizer.js';
import { TransformingPresencePackage } from './rules/transforming-presence-package.js';
import { watcherKeys } from './rules/rule-matching.js';
import { sameTransformations } from './rules/rule-types.js';
import { watcherOf } from './presentity.js';
import type { SipRequest } from '../sip/message.js';
import type { EventPackage, SubscriptionDecision } from './event-package.js';
import type { PublicationStoreFactory } from './publication-store.js';
import type { RemoteWatchers } from './winfo/remote-watchers.js';
import { EventStateCompositor, presenceOnly } from './event-state-compositor.js';
import { DialogPackage } from './dialog-info/dialog-package.js';
import type { PublishedPackage } from './published-package.js';
import { PIDF_CONTENT_TYPE, PresenceDocuments } from './presence-documents.js';
import { PresencePackage } from './presence-package.js';
import { NO_PRESENCE_STATE_SINK, type PresenceStateSink } from './presence-state-sink.js';
import type { PublicationRecord } from './publication.js';
import type { SubscriptionRecord, TerminationReason } from './subscription.js';
import { SubscriptionManager, type SubscriptionFilter } from './subscriptions.js';
import { WatcherInfoPackage } from './winfo/winfo-package.js';
import { EVENTLIST, RECIPIENT_LIST_SUBSCRIBE, ResourceListServer, type SavedLists, type StoredListSource } from '../lists/resource-list-server.js';
import { DEFAULT_MAX_LIST_BYTES } from '../lists/resource-lists.js';

export type PresenceSettings = Config['presence'];

/** List subscriptions one watcher may hold (a client has one a friend list; Linphone and Blink one in all). */
export const MAX_LIST_SUBSCRIPTIONS_PER_WATCHER = 32;

export interface PresenceServiceOptions {
  readonly domains: LocalDomains;
  readonly timers: Timers;
  /** Client transactions for NOTIFYs (the transaction layer). */
  readonly transactions: RequestSender;
  readonly settings: PresenceSettings;
  /** Who may publish and watch (the security issue's hook); `presence.defaultPolicy` by default. */
  readonly authorizer?: PresenceAuthorizer;
  /** Where soft state changes go (the store); nowhere by default. */
  readonly sink?: PresenceStateSink;
  /** Which presentities exist (PUBLISH for others: 404); every user of the domain by default. */
  readonly users?: UserDirectory;
  /** The host others reach us at on a flow (the transport knows what to advertise); its local address by default. */
  readonly hostFor?: (flow: Flow) => string;
  /**
   * The largest composed document a NOTIFY may carry (the transport's message size less room
   * for headers); `presence.maxDocumentBytes` bounds it too.
   */
  readonly maxNotifyBodyBytes?: number;
  /** Where publications live (a cluster's shared store); in memory by default. */
  readonly publicationStore?: PublicationStoreFactory;
  /** Watchers held by other nodes, for watcher information (a cluster); none by default. */
  readonly remoteWatchers?: RemoteWatchers;
  /** More event packages (reg...). */
  readonly packages?: readonly EventPackage[];
  /** More event packages that also take PUBLISH (message-summary...). */
  readonly publishedPackages?: readonly (EventPackage & PublishedPackage)[];
  readonly wallClock?: WallClock;
  readonly logger?: Logger;
  /** Resource lists (RFC 4662 RLS): users' stored lists, and the largest list body (inflated). */
  readonly lists?: { readonly stored?: StoredListSource; readonly saved?: SavedLists; readonly maxListBytes?: number };
}

/** What the admin API shows of a presentity. */
export interface PresentitySummary {
  readonly presentity: string;
  readonly publications: number;
  readonly watchers: number;
  /** Version of the composed document (0: neutral). */
  readonly version: number;
}

export interface PublicationInfo {
  readonly etag: string;
  readonly presentity: string;
  readonly contentType: string;
  readonly publishedAtMs: number;
  readonly expiresAtMs: number;
}

export interface SubscriptionInfo {
  readonly id: string;
  readonly eventPackage: string;
  readonly resource: string;
  readonly watcher: string;
  readonly watcherUri: string;
  readonly status: 'pending' | 'active' | 'terminated';
  readonly view: 'full' | 'polite-block';
  readonly createdAtMs: number;
  readonly expiresAtMs: number;
  readonly remoteTarget: string;
  readonly transport: string;
}

/**
 * The presence service (RFC 3856, 3903, 6665, 3857): PUBLISH goes to the event state
 * compositor, SUBSCRIBE to the subscription machinery with its event packages (presence
 * and presence.winfo), and NOTIFY is answered 481: we hold no subscriptions as a subscriber
 * (RFC 6665 §4.1.3: a NOTIFY matching no subscription gets 481, which also tells a
 * confused notifier to stop).
 *
 * Also the small API the admin and web issues use: presentities, publications,
 * subscriptions, terminate, approve / reject / polite-block a watcher.
 */
export class PresenceService implements SipService {
  readonly name = 'presence';
  readonly methods = ['PUBLISH', 'SUBSCRIBE', 'NOTIFY'] as const;
  /** RFC 4662 §5.1 and RFC 5367 §3 option tags (list subscriptions). */
  readonly supported = [EVENTLIST, RECIPIENT_LIST_SUBSCRIBE] as const;
  /** Bodies we take in requests (PUBLISH). */
  readonly accept: readonly string[];
  readonly documents: PresenceDocuments;
  readonly compositor: EventStateCompositor;
  readonly subscriptions: SubscriptionManager;
  readonly presence: PresencePackage;
  readonly watcherInfo: WatcherInfoPackage;
  /** RFC 4235 busy lamp. */
  readonly dialog: DialogPackage;
  /** RFC 4662 resource list server: list subscriptions (RFC 5367 bodies, stored lists). */
  readonly lists: ResourceListServer;
  /** Packages whose watchers the presentity's rules decide (approve, block, polite-block). */
  private readonly ruled: readonly string[];
  /** The event package of each body type PUBLISH takes. */
  private readonly publishedByType: ReadonlyMap<string, string>;
  readonly authorizer: PresenceAuthorizer;
  private readonly log?: Logger;
  private readonly domains: LocalDomains;

  constructor(options: PresenceServiceOptions) {
    this.domains = options.domains;
    const s = options.settings;
    const wallClock = options.wallClock ?? timersWallClock(options.timers);
    const sink = options.sink ?? NO_PRESENCE_STATE_SINK;
    this.log = options.logger;
    this.authorizer = options.authorizer ?? new DefaultPresenceAuthorizer(s.defaultPolicy);
    this.documents = new PresenceDocuments(
      { maxBytes: s.maxDocumentBytes },
      {
        maxComposedBytes: Math.min(s.maxDocumentBytes, options.maxNotifyBodyBytes ?? Number.POSITIVE_INFINITY),
        publicationsOf: (p) => presenceOnly(this.compositor.publications.of(p)),
        // The XML work of PUBLISH on a core of its own (presence.parseThread; unset: yes).
        parseThread: s.parseThread ?? true,
        logger: options.logger,
      },
    );
    const contacts = new OurContacts((flow) => contactUri(flow, options.hostFor?.(flow) ?? localHost(flow, options.domains.primary)));
    const contactFor = (flow: Flow): string => contacts.for(flow);
    this.subscriptions = new SubscriptionManager({
      domains: options.domains,
      timers: options.timers,
      wallClock,
      settings: s,
      transactions: options.transactions,
      contactFor: (flow) => contactFor(flow),
      sink,
      logger: options.logger,
    });
    const authorizer = this.authorizer;
    // A new watcher's first NOTIFY shows the presentity's current state: a cluster's store
    // fetches it (and follows it from then on) while the rules decide.
    const subscribeAuthorizer = options.publicationStore ? followingAuthorizer(authorizer, (p) => this.compositor.follow(p)) : authorizer;
    // RFC 5025 transformations when the rules give them.
    this.presence =
      authorizer instanceof RulesPresenceAuthorizer
        ? new TransformingPresencePackage(this.documents, subscribeAuthorizer, (w, p) => authorizer.transformationsFor(w, p))
        : new PresencePackage(this.documents, subscribeAuthorizer);
    // Watchers of other nodes (a cluster) and list subscriptions' members (RFC 4662) are listed too.
    this.watcherInfo = new WatcherInfoPackage(wallClock, this.presence.name, undefined, withListWatchers(options.remoteWatchers, () => this.lists));
    // RFC 4235 §3.6: a user's dialogs are shown under the same rules as its presence.
    this.dialog = new DialogPackage({
      authorize: (a) => subscribeAuthorizer.decideSubscription(a.watcher, a.resource),
      limits: { maxBytes: s.maxDocumentBytes },
      maxComposedBytes: Math.min(s.maxDocumentBytes, options.maxNotifyBodyBytes ?? Number.POSITIVE_INFINITY),
    });
    this.ruled = [this.presence.name, this.dialog.name];
    this.lists = new ResourceListServer({
      domains: options.domains,
      timers: options.timers,
      wallClock,
      // A list subscription holds up to maxListMembers back-end ones: a watcher gets a few, not maxSubscriptionsPerWatcher.
      settings: { ...s, maxSubscriptionsPerWatcher: Math.min(s.maxSubscriptionsPerWatcher, MAX_LIST_SUBSCRIPTIONS_PER_WATCHER), rlsUser: s.rlsUser ?? 'rls', maxListMembers: s.maxListMembers ?? 1000 },
      maxListBytes: options.lists?.maxListBytes ?? DEFAULT_MAX_LIST_BYTES,
      maxNotifyBodyBytes: options.maxNotifyBodyBytes ?? 61_440,
      transactions: options.transactions,
      contactFor,
      authorizer: subscribeAuthorizer,
      memberDocument: (w, p, view) => this.presence.viewDocument(w, p, view),
      ...(options.lists?.stored ? { stored: options.lists.stored } : {}),
      ...(options.lists?.saved ? { saved: options.lists.saved } : {}),
      sink,
      logger: options.logger,
    });
    const published = [this.dialog, ...(options.publishedPackages ?? [])];
    this.accept = [PIDF_CONTENT_TYPE, ...published.map((p) => p.contentType)];
    this.publishedByType = new Map([[PIDF_CONTENT_TYPE, this.presence.name], ...published.map((p): [string, string] => [p.contentType, p.name])]);
    this.subscriptions.register(this.presence);
    this.subscriptions.register(this.watcherInfo);
    this.subscriptions.register(this.dialog);
    // Watcher information for the busy lamp too (RFC 3857 §4: a template package over any package).
    this.subscriptions.register(new WatcherInfoPackage(wallClock, this.dialog.name));
    for (const p of [...(options.publishedPackages ?? []), ...(options.packages ?? [])]) this.subscriptions.register(p);
    const stateful = published.map((p) => p.name);
    this.compositor = new EventStateCompositor({
      ...(options.publicationStore ? { store: options.publicationStore } : {}),
      domains: options.domains,
      timers: options.timers,
      wallClock,
      settings: s,
      authorizer: this.authorizer,
      documents: this.documents,
      sink,
      users: options.users,
      onStateChanged: (presentity) => {
        this.presence.stateChanged(presentity);
        this.lists.memberChanged(presentity);
      },
      watched: (presentity) =>
        this.subscriptions.hasSubscriptionsTo(this.presence.name, presentity) ||
        this.lists.watches(presentity) ||
        stateful.some((p) => this.subscriptions.hasSubscriptionsTo(p, presentity)),
      published,
      logger: options.logger,
    });
  }

  /** RFC 6665 §8.2.2 Allow-Events. */
  get eventPackages(): readonly string[] {
    return this.subscriptions.eventPackages;
  }

  handle(ctx: RequestContext): void | Promise<void> {
    switch (ctx.request.method) {
      case 'PUBLISH':
        return this.compositor.handlePublish(ctx);
      case 'SUBSCRIBE':
        // The watcher is the authenticated user: nobody subscribes in another's name
        // (RFC 3856 §6.5, RFC 3857 §5.3: winfo then only for one's own URI).
        if (ctx.identity?.by === 'digest' && ctx.request.to.tag === undefined && watcherOf(ctx.request.from.uri, this.domains) !== ctx.identity.aor) {
          ctx.log.info({ identity: ctx.identity.aor, from: ctx.request.from.uri.raw }, 'SUBSCRIBE in the name of another user refused');
          ctx.reply(403, 'From Is Not The Authenticated User');
          return;
        }
        return this.subscribe(ctx);
      default:
        ctx.reply(481, 'Subscription Does Not Exist');
    }
  }

  /** A list subscription (RFC 4662) goes to the RLS, any other to the event packages. */
  private subscribe(ctx: RequestContext): Promise<void> {
    if (!this.lists.claims(ctx.request)) return this.subscriptions.handleSubscribe(ctx);
    return this.lists.handle(ctx).then((taken) => (taken ? undefined : this.subscriptions.handleSubscribe(ctx)));
  }

  // ---- persistence ------------------------------------------------------------------

  /**
   * Puts stored soft state back after a restart (publications first, so NOTIFYs carry the
   * composed state). Records past their expiry are dropped and reported removed.
   */
  restore(publications: readonly PublicationRecord[], subscriptions: readonly SubscriptionRecord[], options: { notify?: boolean } = {}): { publications: number; subscriptions: number } {
    return { publications: this.restorePublications(publications), subscriptions: this.restoreSubscriptions(subscriptions, options) };
  }

  /** Stored publications back, before the subscriptions (restore); may come in several parts. */
  restorePublications(publications: readonly PublicationRecord[]): number {
    return this.compositor.restore(publications);
  }

  /** Stored subscriptions back, after the publications; with `notify`, each gets a NOTIFY of the state now. */
  restoreSubscriptions(subscriptions: readonly SubscriptionRecord[], options: { notify?: boolean } = {}): number {
    // List subscriptions (RFC 4662) are the ones whose NOTIFYs are multipart/related.
    const isList = (r: SubscriptionRecord): boolean => r.eventPackage === this.presence.name && r.contentType.toLowerCase().startsWith('multipart/related');
    const direct = subscriptions.filter((r) => !isList(r));
    const lists = subscriptions.filter(isList);
    this.listsRestored = this.lists.restore(lists).then(
      (n) => {
        if (n > 0) this.log?.info({ lists: n }, 'list subscriptions restored');
        return n;
      },
      (err: unknown) => {
        this.log?.error({ err }, 'list subscriptions not restored');
        return 0;
      },
    );
    return this.subscriptions.restore(direct, options) + lists.length;
  }

  /** Resolves when the list subscriptions `restore` put back have their lists again (how many). */
  listsRestored: Promise<number> = Promise.resolve(0);

  /** Stops timers at once; resolves when the reader thread has ended too. */
  close(): Promise<void> {
    this.compositor.close();
    this.subscriptions.close();
    this.lists.close();
    return this.documents.close();
  }

  // ---- admin API --------------------------------------------------------------------

  /** Presentities with publications or watchers. */
  presentities(): PresentitySummary[] {
    const names = new Set([...this.compositor.publications.presentities(), ...this.subscriptions.resources(this.presence.name)]);
    return [...names].sort().map((p) => ({
      presentity: p,
      publications: this.compositor.publications.count(p),
      watchers: this.subscriptions.subscriptionsTo(this.presence.name, p).length,
      version: this.documents.version(p),
    }));
  }

  /** Live publications held here by event package, every package PUBLISH takes listed (metrics). */
  publicationCounts(): Map<string, number> {
    const counts = new Map<string, number>([...this.publishedByType.values()].map((e) => [e, 0]));
    for (const p of this.compositor.publications.presentities()) {
      for (const x of this.compositor.publications.of(p)) {
        const e = this.publishedByType.get(x.contentType);
        if (e !== undefined) counts.set(e, counts.get(e)! + 1);
      }
    }
    return counts;
  }

  publications(presentity?: string): PublicationInfo[] {
    const names = presentity !== undefined ? [presentity] : this.compositor.publications.presentities();
    return names.flatMap((p) =>
      this.compositor.publications.of(p).map((x) => ({
        etag: x.etag,
        presentity: x.presentity,
        contentType: x.contentType,
        publishedAtMs: x.publishedAtMs,
        expiresAtMs: x.expiresAtMs,
      })),
    );
  }

  /** Told of every rule change, whoever made it (xcap-diff: the pres-rules document changed). */
  readonly ruleListeners = new Set<(presentity: string) => void>();

  /**
   * The presentity's hard state (RFC 4827 pidf-manipulation) is `document` now (undefined:
   * none): composed with the devices' publications (PresenceDocuments.setHardState) and
   * NOTIFYed to its watchers when the composed document changes. False when it does not parse.
   */
  setHardState(presentity: string, document: Buffer | undefined): boolean {
    if (document) {
      const r = this.documents.parse(document);
      if (!r.ok) return false;
      this.documents.setHardState(presentity, r.document);
    } else this.documents.setHardState(presentity, undefined);
    this.compositor.hardStateChanged(presentity);
    return true;
  }

  /** The composed document a full-view watcher of `presentity` gets now. */
  composedDocument(presentity: string): Buffer {
    return this.documents.full(presentity);
  }

  /** Subscriptions held here, list subscriptions (RFC 4662, resource: the list URI) among them. */
  listSubscriptions(filter: SubscriptionFilter = {}): SubscriptionInfo[] {
    return [...this.subscriptions.list(filter), ...this.lists.subscriptions.list(filter)].map((s) => ({
      id: s.id,
      eventPackage: s.eventPackage,
      resource: s.resource,
      watcher: s.watcher,
      watcherUri: s.watcherUri,
      status: s.status,
      view: s.view,
      createdAtMs: s.createdAtMs,
      expiresAtMs: s.expiresAtMs,
      remoteTarget: s.dialog.remoteTarget,
      transport: s.dialog.flow.protocol,
    }));
  }

  /** Ends one subscription with a final NOTIFY; false when there is no such live subscription. */
  terminateSubscription(id: string, reason: TerminationReason = 'deactivated'): boolean {
    const sub = this.subscriptions.get(id);
    if (sub) return this.subscriptions.terminate(sub, reason);
    const list = this.lists.subscriptions.get(id);
    return list ? this.lists.subscriptions.terminate(list, reason) : false;
  }

  /**
   * An account is gone, and with it what it held live (control's RuleEffects.accountDeleted):
   * subscriptions to its presentity end with reason=noresource (RFC 6665 §4.1.3: the resource
   * no longer exists, do not re-subscribe), its own subscriptions as a watcher with
   * reason=rejected (no longer authorized, do not re-subscribe), and its publications are
   * removed. Returns how many subscriptions ended.
   */
  accountDeleted(aor: string): number {
    const ended = this.endSubscriptionsOf(aor);
    if (this.documents.hardState(aor)) this.setHardState(aor, undefined);
    this.compositor.removeAll(aor).catch((err: unknown) => this.log?.error({ err, aor }, 'publications of a deleted account not removed'));
    return ended;
  }

  /** The subscriptions held here to and of a deleted account end (see accountDeleted); how many. */
  endSubscriptionsOf(aor: string): number {
    let ended = 0;
    for (const s of this.subscriptions.list({ resource: aor })) if (this.subscriptions.terminate(s, 'noresource')) ended++;
    for (const s of this.subscriptions.list({ watcher: aor })) if (this.subscriptions.terminate(s, 'rejected')) ended++;
    for (const s of this.lists.subscriptions.list({ watcher: aor })) if (this.lists.subscriptions.terminate(s, 'rejected')) ended++;
    return ended;
  }

  /**
   * Every subscription held here ends with reason=deactivated (RFC 6665 §4.1.3: the
   * subscriber may subscribe again at once), so its watchers move to another node of a
   * cluster rather than wait for a refresh to fail. How many ended.
   */
  deactivateAll(): number {
    let ended = 0;
    for (const s of this.subscriptions.list()) if (this.subscriptions.terminate(s, 'deactivated')) ended++;
    for (const s of this.lists.subscriptions.list()) if (this.lists.subscriptions.terminate(s, 'deactivated')) ended++;
    return ended;
  }

  /** The owner approves a watcher: its pending (or polite-blocked) presence subscriptions become active. */
  async approve(presentity: string, watcher: string): Promise<number> {
    await this.record(presentity, watcher, 'allow');
    const lists = await this.lists.rulesChanged(presentity, watcher);
    return this.watcherSubscriptions(presentity, watcher).filter((s) => this.subscriptions.approve(s)).length + lists;
  }

  /** The owner blocks a watcher (RFC 6665 reason=rejected): its subscriptions end. */
  async reject(presentity: string, watcher: string): Promise<number> {
    await this.record(presentity, watcher, 'block');
    const lists = await this.lists.rulesChanged(presentity, watcher);
    return this.watcherSubscriptions(presentity, watcher).filter((s) => this.subscriptions.reject(s)).length + lists;
  }

  /** RFC 5025 polite-block: the watcher stays subscribed and sees a neutral state. */
  async politeBlock(presentity: string, watcher: string): Promise<number> {
    await this.record(presentity, watcher, 'polite-block');
    const lists = await this.lists.rulesChanged(presentity, watcher);
    return this.watcherSubscriptions(presentity, watcher).filter((s) => this.subscriptions.politeBlock(s)).length + lists;
  }

  /**
   * A rule of `presentity` about `watcher` (a URI, `*@domain` or `*`) changed: each live
   * presence subscription it may concern is decided again and follows at once: active with
   * a NOTIFY of the document, polite-blocked, or terminated with reason=rejected (RFC 6665
   * §4.1.3); a changed transformation sends a NOTIFY of the new view. `confirm` leaves a
   * subscription as it is. Returns how many changed.
   */
  async rulesChanged(presentity: string, watcher: string): Promise<number> {
    for (const listener of this.ruleListeners) listener(presentity);
    const subs = this.ruled.flatMap((eventPackage) => this.subscriptions.list({ eventPackage, resource: presentity })).filter((s) => watcherKeys(s.watcher).includes(watcher));
    const rules = this.authorizer instanceof RulesPresenceAuthorizer ? this.authorizer : undefined;
    let changed = await this.lists.rulesChanged(presentity, watcher);
    for (const s of subs) {
      const before = rules?.transformationsFor(s.watcher, presentity);
      // The rules authorizer remembers the transformations it decided (read below).
      const decision = await this.authorizer.decideSubscription(s.watcher, presentity);
      if (!s.live) continue;
      let did = false;
      if (decision === 'allow') did = this.subscriptions.approve(s);
      else if (decision === 'block') did = this.subscriptions.reject(s);
      else if (decision === 'polite-block') did = this.subscriptions.politeBlock(s);
      const after = rules?.transformationsFor(s.watcher, presentity);
      if (!did && s.status === 'active' && s.view === 'full' && before && after && !sameTransformations(before, after)) {
        this.subscriptions.notify(s);
        did = true;
      }
      if (did) changed++;
    }
    return changed;
  }

  /** The watcher of the subscription an in-dialog SUBSCRIBE belongs to, when we hold it. */
  dialogWatcher(req: SipRequest): string | undefined {
    if (req.method !== 'SUBSCRIBE') return undefined;
    try {
      return (this.subscriptions.dialogSubscription(req) ?? this.lists.subscriptions.dialogSubscription(req))?.watcher;
    } catch {
      return undefined; // headers that do not parse: the service answers 400
    }
  }

  private watcherSubscriptions(presentity: string, watcher: string) {
    return this.ruled.flatMap((eventPackage) => this.subscriptions.list({ eventPackage, resource: presentity, watcher }));
  }

  private async record(presentity: string, watcher: string, decision: SubscriptionDecision): Promise<void> {
    try {
      await this.authorizer.recordDecision?.(watcher, presentity, decision);
      for (const listener of this.ruleListeners) listener(presentity);
    } catch (err) {
      this.log?.error({ err, presentity, watcher, decision }, 'authorization decision not recorded');
    }
  }
}

/**
 * The authorizer a presence subscription is decided by, waiting also for `follow` (the
 * presentity's state fetched): both at once, the decision returned.
 */
function followingAuthorizer(inner: PresenceAuthorizer, follow: (presentity: string) => Promise<void> | undefined): PresenceAuthorizer {
  return {
    authorizePublish: (ctx, presentity) => inner.authorizePublish(ctx, presentity),
    decideSubscription: async (watcher, presentity) => (await Promise.all([inner.decideSubscription(watcher, presentity), follow(presentity)]))[0],
    ...(inner.recordDecision ? { recordDecision: (w: string, p: string, d: SubscriptionDecision) => inner.recordDecision!(w, p, d) } : {}),
  };
}

/**
 * Watcher information's other watchers: those of other nodes (when clustered) and the list
 * subscriptions showing a presentity (RFC 4662 back-end subscriptions are watchers too).
 */
function withListWatchers(remote: RemoteWatchers | undefined, lists: () => ResourceListServer): RemoteWatchers {
  return {
    tell: (resource, watcher) => remote?.tell(resource, watcher),
    of: (resource) => [...(remote?.of(resource) ?? []), ...lists().watchersOf(resource)],
    follow: (resource) => remote?.follow(resource) ?? Promise.resolve(),
    listen: (listener) => {
      remote?.listen(listener);
      // Registered once the RLS exists (it is made after this package).
      queueMicrotask(() => lists().listenWatchers(listener));
    },
  };
}

/** The flow's local address, or the domain when the socket is bound to a wildcard. */
function localHost(flow: Flow, domain: string): string {
  const wildcard = flow.localAddress === '' || flow.localAddress === '0.0.0.0' || flow.localAddress === '::';
  return wildcard ? domain : flow.localAddress;
}

/**
 * Our Contact for each flow, one string per listener: every dialog a listener accepts keeps
 * it (RFC 6665 §4.2.1), and built anew each time it was a chain of concatenations, five or
 * six heap objects held by each of 100,000 subscriptions.
 */
class OurContacts {
  private readonly known = new Map<string, string>();

  constructor(private readonly make: (flow: Flow) => string) {}

  for(flow: Flow): string {
    // Built each time (the host may depend on the peer), kept once.
    const made = this.make(flow);
    let contact = this.known.get(made);
    if (contact === undefined) {
      // Listeners and the hosts they advertise are few; a bound all the same.
      if (this.known.size >= 64) this.known.clear();
      contact = ownString(made);
      this.known.set(contact, contact);
    }
    return contact;
  }
}

/** Our Contact URI in a dialog on `flow` (RFC 6665 §4.2.1.1: the 200 and NOTIFYs carry it). */
export function contactUri(flow: Flow, host: string): string {
  const h = net.isIPv6(host) ? `[${host}]` : host;
  return `sip:${h}:${flow.localPort}${flow.protocol === 'udp' ? '' : `;transport=${flow.protocol}`}`;
}
