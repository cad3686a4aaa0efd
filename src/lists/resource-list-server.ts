import { deflateSync, inflateRawSync, inflateSync } from 'node:zlib';
import type { Logger } from 'pino';
import type { LocalDomains } from '../core/local-domains.js';
import type { RequestContext } from '../core/services.js';
import type { PresenceAuthorizer } from '../presence/authorizer.js';
import type { EventPackage, NotifyBody, SubscribeAttempt, SubscriptionDecision, SubscriptionEvent } from '../presence/event-package.js';
import { PIDF_CONTENT_TYPE } from '../presence/presence-documents.js';
import { presentityOf, watcherOf } from '../presence/presentity.js';
import { watcherKeys } from '../presence/rules/rule-matching.js';
import type { Subscription, SubscriptionView, WatcherEvent } from '../presence/subscription.js';
import type { RemoteWatcher } from '../presence/winfo/remote-watchers.js';
import { SubscriptionManager, type SubscriptionSettings } from '../presence/subscriptions.js';
import type { PresenceStateSink } from '../presence/presence-state-sink.js';
import type { SubscriptionRecord } from '../presence/subscription.js';
import { splitList } from '../sip/header-values.js';
import type { SipRequest } from '../sip/message.js';
import { randomToken } from '../sip/response.js';
import { tryParseUri } from '../sip/uri.js';
import type { RequestSender } from '../transaction/request-sender.js';
import type { Flow } from '../transport/types.js';
import type { Timers, WallClock } from '../util/timers.js';
import { buildMultipartRelated, type BodyPart } from './multipart.js';
import { flattenEntries, parseResourceLists, RESOURCE_LISTS_TYPE, serializeResourceLists, type FlatEntry } from './resource-lists.js';
import { buildRlmi, RLMI_TYPE, type InstanceReason, type InstanceState, type RlmiResource } from './rlmi-document.js';

/**
 * The Resource List Server (RFC 4662): one SUBSCRIBE to a list URI, one NOTIFY stream with
 * the state of every member. The list comes in the SUBSCRIBE body (RFC 5367, as Linphone
 * sends it) or is one stored on the server (`sip:<user>+presence@<domain>` as Blink names
 * it, or a name the user chose). Back-end subscriptions to members are virtual: each member
 * is decided by the presence authorizer exactly as a direct SUBSCRIBE of the same watcher
 * would be (pending, rejected, polite-blocked, transformed), and its state is the presence
 * package's document for that view; no SIP request goes back to ourselves.
 *
 * The list subscriptions live in a SubscriptionManager of their own (the RFC 6665 state
 * machine, expiry, NOTIFY pacing and coalescing are the same code); this file knows what a
 * list NOTIFY says: RLMI plus one PIDF part per active member (RFC 4662 §5), full state
 * first and after a refresh or a list change, then only the resources that changed.
 */

/** The RFC 4662 §5.1 option tag, and the RFC 5367 §3 one. */
export const EVENTLIST = 'eventlist';
export const RECIPIENT_LIST_SUBSCRIBE = 'recipient-list-subscribe';
const MULTIPART_RELATED = 'multipart/related';

/** Bytes of a list NOTIFY besides its resources: the RLMI root, the parts' delimiters (estimates, on the safe side). */
const RLMI_OVERHEAD = 512;
/** An RLMI <resource> with one <instance>, besides its URI and name. */
const RESOURCE_OVERHEAD = 160;
/** A body part's delimiter and headers, besides its body. */
const PART_OVERHEAD = 160;

/** A list the server keeps for a user (RFC 4826 resource-lists, served as rls-services). */
export interface StoredList {
  /** The address of record of the user the list belongs to; only they may subscribe to it. */
  readonly owner: string;
  readonly name: string;
  readonly displayName?: string;
  readonly entries: readonly FlatEntry[];
}

/** Where stored lists come from (the store, or memory in tests). */
export interface StoredListSource {
  /** The list a list URI (canonical, of our domain) names, if any. */
  listAt(uri: string): Promise<StoredList | undefined>;
}

export interface ResourceListServerOptions {
  readonly domains: LocalDomains;
  readonly timers: Timers;
  readonly wallClock: WallClock;
  readonly settings: SubscriptionSettings & {
    /** User part of the RLS address request-contained lists go to (`rls`: sip:rls@<domain>). */
    readonly rlsUser: string;
    /** Most members (entries and nested lists) a list may have; more is 413. */
    readonly maxListMembers: number;
  };
  /** Largest resource-lists body, after inflating (limits.maxBodySize of the type). */
  readonly maxListBytes: number;
  /**
   * Largest list NOTIFY body (before deflate): the transport's message size less room for
   * headers. A list whose state does not fit goes out in several NOTIFYs.
   */
  readonly maxNotifyBodyBytes: number;
  readonly transactions: RequestSender;
  readonly contactFor: (flow: Flow) => string;
  readonly authorizer: PresenceAuthorizer;
  /** The presence document `watcher` is shown of `presentity` in `view` (the presence package's). */
  readonly memberDocument: (watcher: string, presentity: string, view: SubscriptionView) => Buffer;
  readonly stored?: StoredListSource;
  /** Where list subscriptions' soft state goes (the store's write-behind queue), as for any subscription. */
  readonly sink?: PresenceStateSink;
  /** Where the lists that came in SUBSCRIBEs are kept, so their subscriptions go on after a restart. */
  readonly saved?: SavedLists;
  readonly logger?: Logger;
}

/** A list subscription's own list (RFC 5367), as kept across restarts. */
export interface SavedList {
  readonly id: string;
  /** An RFC 4826 resource-lists document. */
  readonly document: string;
  readonly deflate: boolean;
  readonly bareContentIds: boolean;
}

/** The store's list_subscriptions table, structurally (the lists layer needs no store import). */
export interface SavedLists {
  set(list: SavedList): Promise<void>;
  delete(id: string): Promise<void>;
  all(): Promise<SavedList[]>;
}

/** One member of a list subscription: a resource and the virtual back-end subscription to it. */
interface Member {
  readonly uri: string;
  readonly name?: string;
  /** The canonical presentity when the URI is one of our domain; undefined: noresource. */
  readonly presentity?: string;
  /** RFC 4662 §5.3: stable for the life of the back-end subscription. */
  readonly instanceId: string;
  decision?: SubscriptionDecision;
}

/** What a list NOTIFY last said of a member. */
interface Told {
  readonly state: InstanceState;
  readonly reason?: InstanceReason;
  readonly body?: Buffer;
}

/** The list behind one list subscription. */
class ListState {
  /** The next NOTIFY carries every resource (first, refresh, list changed). */
  fullPending = true;
  readonly told = new Map<string, Told>();

  constructor(
    readonly uri: string,
    public name: string | undefined,
    public members: Member[],
    /** The subscriber takes deflated NOTIFY bodies (Accept-Encoding: deflate). */
    readonly deflate: boolean,
    /** Content-IDs written without angle brackets (liblinphone, see buildMultipartRelated). */
    readonly bareContentIds: boolean,
    /** The list came in the SUBSCRIBE (RFC 5367), not from the store. */
    readonly contained: boolean,
  ) {}
}

/** A list resolved for a new SUBSCRIBE, handed from `handle` to the package's events. */
interface Resolved {
  readonly uri: string;
  readonly name?: string;
  readonly owner?: string;
  readonly members: Member[];
  readonly deflate: boolean;
  readonly bareContentIds: boolean;
  /** The list's entries when they came in the SUBSCRIBE (kept for a restart). */
  readonly contained?: readonly FlatEntry[];
}

/** Why a list body was refused: the status and reason phrase. */
type Refusal = { readonly status: number; readonly reason: string };

export class ResourceListServer {
  readonly subscriptions: SubscriptionManager;
  private readonly states = new WeakMap<Subscription, ListState>();
  /** Member presentity → list subscriptions showing it. */
  private readonly byMember = new Map<string, Set<Subscription>>();
  /** Who hears of list watchers' changes (watcher information of the members, RFC 3857). */
  private readonly watcherListeners: Array<(resource: string, watcher: RemoteWatcher) => void> = [];
  /** Who hears that a stored list changed or went, by its list URI (XCAP documents depending on it); awaited, never throw. */
  readonly storedListListeners = new Set<(uri: string) => void | Promise<void>>();
  /** New SUBSCRIBEs between `handle` and the manager's 'subscribe' event, by dialog id. */
  private readonly arriving = new Map<string, Resolved>();
  private readonly log?: Logger;

  constructor(private readonly options: ResourceListServerOptions) {
    this.log = options.logger;
    this.subscriptions = new SubscriptionManager({
      domains: options.domains,
      timers: options.timers,
      wallClock: options.wallClock,
      settings: options.settings,
      transactions: options.transactions,
      contactFor: options.contactFor,
      ...(options.sink ? { sink: options.sink } : {}),
      logger: options.logger,
    });
    this.subscriptions.register(this.listPackage());
  }

  /**
   * The list subscriptions watching `presentity`, as watchers of it (RFC 3857): its owner's
   * watcher information lists them like direct ones, so a pending list watcher can be approved.
   */
  watchersOf(presentity: string): RemoteWatcher[] {
    const out: RemoteWatcher[] = [];
    for (const sub of this.byMember.get(presentity) ?? []) {
      const state = this.states.get(sub);
      if (!state) continue;
      for (const m of state.members) if (m.presentity === presentity) out.push(this.watcherOf(sub, m, eventOfDecision(m.decision)));
    }
    return out;
  }

  /** Where list watchers' changes go (the watcher information package). */
  listenWatchers(listener: (resource: string, watcher: RemoteWatcher) => void): void {
    this.watcherListeners.push(listener);
  }

  private watcherOf(sub: Subscription, m: Member, event: WatcherEvent, ended = false): RemoteWatcher {
    const told = this.memberState(sub.watcher, m).state;
    return {
      // RFC 3858 §4: unique per (back-end) subscription.
      id: `${sub.id}.${m.instanceId}`,
      uri: sub.watcherUri,
      ...(sub.watcherDisplayName !== undefined ? { displayName: sub.watcherDisplayName } : {}),
      status: ended ? 'terminated' : told,
      event,
      createdAtMs: sub.createdAtMs,
      expiresAtMs: sub.expiresAtMs,
    };
  }

  /** Tells the watcher information of each member's presentity what happened to its list watcher. */
  private tellWatchers(sub: Subscription, members: readonly Member[], event: WatcherEvent | undefined, ended = false): void {
    if (this.watcherListeners.length === 0) return;
    for (const m of members) {
      if (m.presentity === undefined) continue;
      const w = this.watcherOf(sub, m, event ?? eventOfDecision(m.decision), ended);
      for (const l of this.watcherListeners) {
        try {
          l(m.presentity, w);
        } catch (err) {
          this.log?.error({ err }, 'list watcher listener failed');
        }
      }
    }
  }

  /** Members shown by some list subscription: their state must be composed (the compositor asks). */
  watches(presentity: string): boolean {
    return this.byMember.has(presentity);
  }

  /** A member's composed state changed: each list showing it gets a (partial) NOTIFY. */
  memberChanged(presentity: string): void {
    const subs = this.byMember.get(presentity);
    if (!subs) return;
    for (const sub of subs) if (sub.status === 'active') this.subscriptions.notify(sub);
  }

  /**
   * A rule of `presentity` about `watcher` (a URI, `*@domain` or `*`) changed, or its owner
   * decided: the members it concerns are decided again, as direct subscriptions would be.
   */
  async rulesChanged(presentity: string, watcher: string): Promise<number> {
    const subs = [...(this.byMember.get(presentity) ?? [])].filter((s) => watcherKeys(s.watcher).includes(watcher));
    let changed = 0;
    for (const sub of subs) {
      const state = this.states.get(sub);
      if (!state) continue;
      const changedMembers: Member[] = [];
      for (const m of state.members) {
        if (m.presentity !== presentity) continue;
        const before = m.decision;
        m.decision = await this.options.authorizer.decideSubscription(sub.watcher, presentity);
        if (before !== m.decision) changedMembers.push(m);
      }
      if (sub.live) {
        this.tellWatchers(sub, changedMembers, undefined);
        this.subscriptions.notify(sub);
        changed++;
      }
    }
    return changed;
  }

  /**
   * Whether a SUBSCRIBE may be for a list, cheaply and synchronously, so that every other
   * SUBSCRIBE goes to the presence service without waiting: a list subscription's dialog, a
   * list in the body (RFC 5367), the RLS address, or a URI of the stored-list form <user>+<name>.
   */
  claims(req: SipRequest): boolean {
    if (req.method !== 'SUBSCRIBE' || req.event?.package !== 'presence') return false;
    if (req.to.tag !== undefined) return this.subscriptions.dialogSubscription(req) !== undefined;
    const user = req.uri.user;
    if (user !== undefined && (user.toLowerCase() === this.options.settings.rlsUser.toLowerCase() || user.lastIndexOf('+') > 0)) return true;
    if (req.getHeader('content-disposition') !== undefined) return true;
    return req.getHeaders('require').some((v) => v.toLowerCase().includes(RECIPIENT_LIST_SUBSCRIBE));
  }

  /**
   * Takes a SUBSCRIBE when it is for a list (a list subscription's dialog, a request-contained
   * list, the RLS address, or a stored list's URI); false leaves it to the presence service.
   */
  async handle(ctx: RequestContext): Promise<boolean> {
    const req = ctx.request;
    if (req.method !== 'SUBSCRIBE' || req.event?.package !== 'presence') return false;
    if (req.to.tag !== undefined) {
      const sub = this.subscriptions.dialogSubscription(req);
      if (!sub) return false;
      if (req.body.length > 0) {
        // RFC 5367 §5: a refresh with a body replaces the list; without one, the list stays.
        const read = this.readBody(req);
        if ('status' in read) {
          ctx.reply(read.status, read.reason);
          return true;
        }
        const state = this.states.get(sub);
        if (state) {
          const members = await this.members(sub.watcher, read.entries, state.members);
          this.tellMembership(sub, state.members, members);
          this.unindex(sub, state);
          state.members = members;
          state.fullPending = true;
          this.index(sub, state);
          this.save(sub, state, read.entries);
        }
      }
      await this.subscriptions.handleSubscribe(ctx);
      return true;
    }

    const requires = req.getHeaders('require').flatMap(splitList).map((t) => t.toLowerCase());
    const disposition = (req.getHeader('content-disposition') ?? '').split(';')[0]!.trim().toLowerCase();
    const requestContained = requires.includes(RECIPIENT_LIST_SUBSCRIBE) || disposition === 'recipient-list';
    const resource = presentityOf(req.uri, this.options.domains);
    if (resource === undefined) return false;
    const watcher = watcherOf(req.from.uri, this.options.domains);
    const rlsAddress = req.uri.user?.toLowerCase() === this.options.settings.rlsUser.toLowerCase();
    let resolved: Resolved;
    if (requestContained || rlsAddress) {
      if (req.body.length === 0) {
        ctx.reply(400, 'Missing Resource List');
        return true;
      }
      const read = this.readBody(req);
      if ('status' in read) {
        ctx.log.info({ watcher, status: read.status, reason: read.reason }, 'request-contained list refused');
        ctx.reply(read.status, read.reason);
        return true;
      }
      resolved = { uri: resource, members: await this.members(watcher, read.entries), contained: read.entries, ...quirksOf(req) };
    } else {
      const list = await this.options.stored?.listAt(resource);
      if (!list) return false;
      if (list.owner !== watcher) {
        ctx.reply(403, 'Not Your List');
        return true;
      }
      resolved = { uri: resource, name: list.displayName ?? list.name, owner: list.owner, members: await this.members(watcher, list.entries), ...quirksOf(req) };
    }
    // RFC 4662 §5.1: a list subscription from a subscriber without eventlist support.
    const supported = req.getHeaders('supported').flatMap(splitList).map((t) => t.toLowerCase());
    if (!supported.includes(EVENTLIST) && !requires.includes(EVENTLIST)) {
      ctx.reply(421, 'Extension Required', { headers: [['Require', EVENTLIST]] });
      return true;
    }
    const key = arrivalKey(req);
    this.arriving.set(key, resolved);
    try {
      await this.subscriptions.handleSubscribe(ctx);
    } finally {
      this.arriving.delete(key);
    }
    ctx.log.debug({ list: resource, watcher, members: resolved.members.length }, 'list subscription');
    return true;
  }

  /** RFC 5367 body: Content-Type, Content-Encoding (deflate, capped), then the list itself. */
  private readBody(req: SipRequest): { entries: readonly FlatEntry[] } | Refusal {
    const type = (req.getHeader('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== RESOURCE_LISTS_TYPE) return { status: 415, reason: 'Unsupported Media Type' };
    const max = this.options.maxListBytes;
    let body = req.body;
    const encodings = req.getHeaders('content-encoding').flatMap(splitList).map((t) => t.toLowerCase()).filter((t) => t !== 'identity');
    if (encodings.length > 1 || (encodings.length === 1 && encodings[0] !== 'deflate')) return { status: 415, reason: 'Unsupported Content-Encoding' };
    if (encodings.length === 1) {
      const inflated = inflateCapped(body, max);
      if (inflated === 'too-large') return { status: 413, reason: 'Resource List Too Large' };
      if (inflated === undefined) return { status: 400, reason: 'Bad deflate body' };
      body = inflated;
    }
    const parsed = parseResourceLists(body, { maxBytes: max, maxMembers: this.options.settings.maxListMembers, duplicates: 'drop' });
    if (!parsed.ok) {
      return parsed.tooLarge
        ? { status: 413, reason: parsed.reason === 'too many members' ? 'Too Many List Members' : 'Resource List Too Large' }
        : { status: 400, reason: `Bad resource list: ${parsed.reason}` };
    }
    return { entries: flattenEntries(parsed.document, this.options.settings.maxListMembers).entries };
  }

  /**
   * A stored list changed or went: its live subscriptions get the new full state (RFC 4662
   * §5.2: members added and removed), or end with reason=noresource when it is gone.
   */
  async storedListChanged(uri: string): Promise<number> {
    for (const listener of this.storedListListeners) await listener(uri);
    const subs = this.subscriptions.list({ eventPackage: 'presence', resource: uri });
    if (subs.length === 0) return 0;
    const list = await this.options.stored?.listAt(uri);
    let changed = 0;
    for (const sub of subs) {
      const state = this.states.get(sub);
      if (!state || !sub.live) continue;
      if (!list) {
        if (this.subscriptions.terminate(sub, 'noresource')) changed++;
        continue;
      }
      const members = await this.members(sub.watcher, list.entries, state.members);
      if (!sub.live) continue;
      this.tellMembership(sub, state.members, members);
      this.unindex(sub, state);
      state.members = members;
      state.name = list.displayName ?? list.name;
      state.fullPending = true;
      this.index(sub, state);
      this.subscriptions.notify(sub);
      changed++;
    }
    return changed;
  }

  /** Members with each decided for `watcher` by the presentity's own rules; `previous` keeps its instance ids. */
  private async members(watcher: string, entries: readonly FlatEntry[], previous: readonly Member[] = []): Promise<Member[]> {
    const ids = new Map(previous.map((m) => [m.uri, m.instanceId]));
    const members = entries.map((e): Member => {
      const uri = tryParseUri(e.uri);
      const presentity = uri ? presentityOf(uri, this.options.domains) : undefined;
      return { uri: e.uri, ...(e.displayName !== undefined ? { name: e.displayName } : {}), ...(presentity !== undefined ? { presentity } : {}), instanceId: ids.get(e.uri) ?? randomToken(6) };
    });
    await Promise.all(
      members.map(async (m) => {
        if (m.presentity === undefined) return;
        try {
          m.decision = await this.options.authorizer.decideSubscription(watcher, m.presentity);
        } catch (err) {
          // Fails closed: a member that cannot be decided stays pending.
          this.log?.warn({ err, watcher, presentity: m.presentity }, 'list member not decided');
        }
      }),
    );
    return members;
  }

  /** Members gone from a list end their watcher entries; new ones start theirs. */
  private tellMembership(sub: Subscription, before: readonly Member[], after: readonly Member[]): void {
    const ids = (ms: readonly Member[]): Set<string> => new Set(ms.map((m) => m.instanceId));
    const was = ids(before);
    const is = ids(after);
    this.tellWatchers(sub, before.filter((m) => !is.has(m.instanceId)), 'timeout', true);
    this.tellWatchers(sub, after.filter((m) => !was.has(m.instanceId)), 'subscribe');
  }

  private index(sub: Subscription, state: ListState): void {
    for (const m of state.members) {
      if (m.presentity === undefined) continue;
      let set = this.byMember.get(m.presentity);
      if (!set) this.byMember.set(m.presentity, (set = new Set()));
      set.add(sub);
    }
  }

  private unindex(sub: Subscription, state: ListState): void {
    for (const m of state.members) {
      if (m.presentity === undefined) continue;
      const set = this.byMember.get(m.presentity);
      if (!set) continue;
      set.delete(sub);
      if (set.size === 0) this.byMember.delete(m.presentity);
    }
  }

  /** RFC 4662 §5.3 instance state of a member for the list's watcher. */
  private memberState(watcher: string, m: Member): Told {
    if (m.presentity === undefined) return { state: 'terminated', reason: 'noresource' };
    switch (m.decision) {
      case undefined:
      case 'confirm':
        return { state: 'pending' };
      case 'block':
        return { state: 'terminated', reason: 'rejected' };
      default:
        return { state: 'active', body: this.options.memberDocument(watcher, m.presentity, m.decision === 'polite-block' ? 'polite-block' : 'full') };
    }
  }

  /** The multipart/related NOTIFY body (RFC 4662 §5.2). */
  private body(sub: Subscription): NotifyBody | undefined {
    const state = this.states.get(sub);
    if (!state) return undefined;
    if (sub.status === 'terminated' && sub.reason !== 'timeout') return undefined;
    const full = state.fullPending || sub.status === 'terminated';
    const domain = this.options.domains.primary;
    const parts: BodyPart[] = [];
    const resources: RlmiResource[] = [];
    // What fits one NOTIFY: the rest is left untold, and the next NOTIFY (partial) carries it.
    let room = this.options.maxNotifyBodyBytes - RLMI_OVERHEAD;
    let deferred = 0;
    if (full) state.told.clear();
    for (const m of state.members) {
      const now = this.memberState(sub.watcher, m);
      const before = state.told.get(m.instanceId);
      if (!full && before && sameTold(before, now)) continue;
      const cost = RESOURCE_OVERHEAD + Buffer.byteLength(m.uri) + Buffer.byteLength(m.name ?? '') + (now.body ? PART_OVERHEAD + now.body.length : 0);
      if (cost > room && resources.length > 0) {
        deferred++;
        continue;
      }
      room -= cost;
      state.told.set(m.instanceId, now);
      let cid: string | undefined;
      if (now.body) {
        cid = `${randomToken(8)}@${domain}`;
        parts.push({ contentId: cid, contentType: PIDF_CONTENT_TYPE, body: now.body });
      }
      resources.push({
        uri: m.uri,
        ...(m.name !== undefined ? { name: m.name } : {}),
        instances: [{ id: m.instanceId, state: now.state, ...(now.reason ? { reason: now.reason } : {}), ...(cid ? { cid } : {}) }],
      });
    }
    if (deferred > 0 && sub.live) {
      // A list larger than one NOTIFY (RFC 4662 leaves the split to the RLS): the rest follows
      // in partial NOTIFYs, each after the previous one is answered.
      this.log?.debug({ subscription: sub.id, sent: resources.length, deferred }, 'list NOTIFY split');
      queueMicrotask(() => {
        if (sub.live) this.subscriptions.notify(sub);
      });
    }
    // RFC 4662 §5.3: 0 first, one more a NOTIFY; kept in the subscription's record, so it goes on after a restart.
    const rlmi = buildRlmi({ uri: state.uri, version: sub.documentVersion++, fullState: full, ...(state.name !== undefined ? { name: state.name } : {}), resources });
    state.fullPending = false;
    const multipart = buildMultipartRelated([{ contentId: `${randomToken(8)}@${domain}`, contentType: `${RLMI_TYPE};charset="UTF-8"`, body: rlmi }, ...parts], RLMI_TYPE, state.bareContentIds);
    // RFC 4662 §5.2: list NOTIFYs carry Require: eventlist.
    if (!state.deflate) return { contentType: multipart.contentType, body: multipart.body, headers: [['Require', EVENTLIST]] };
    // RFC 3261 §20.12: a Content-Encoding the subscriber said it accepts.
    return { contentType: multipart.contentType, body: deflateSync(multipart.body), headers: [['Require', EVENTLIST], ['Content-Encoding', 'deflate']] };
  }

  private listPackage(): EventPackage {
    return {
      name: 'presence',
      accept: [MULTIPART_RELATED],
      // The list subscription itself: who may have it was decided in `handle` (the owner of a
      // stored list; anyone authenticated for a list of their own in the body).
      authorize: (attempt: SubscribeAttempt) => (this.arriving.has(arrivalKey(attempt.request)) ? 'allow' : 'block'),
      body: (sub) => this.body(sub),
      onSubscriptionEvent: ({ subscription: sub, event }: SubscriptionEvent) => {
        if (event !== 'subscribe') return;
        const resolved = this.arriving.get(`${sub.dialog.callId}\u0000${sub.dialog.remoteTag}`);
        if (!resolved || this.states.has(sub)) return;
        const state = new ListState(resolved.uri, resolved.name, resolved.members, resolved.deflate, resolved.bareContentIds, resolved.contained !== undefined);
        this.states.set(sub, state);
        // A fetch (Expires: 0, RFC 6665 §4.4.3) is one NOTIFY and gone: nothing to follow or keep.
        const fetch = this.subscriptions.get(sub.id) !== sub;
        if (sub.live && !fetch) {
          this.index(sub, state);
          this.tellWatchers(sub, state.members, 'subscribe');
          if (resolved.contained) this.save(sub, state, resolved.contained);
        }
      },
      onRefresh: (sub) => {
        // RFC 4662 §5.2: the NOTIFY answering a refresh carries full state.
        const state = this.states.get(sub);
        if (state) state.fullPending = true;
      },
      onRemoved: (sub) => {
        const state = this.states.get(sub);
        if (!state) return;
        this.unindex(sub, state);
        if (state.contained) this.options.saved?.delete(sub.id).catch((err: unknown) => this.log?.warn({ err, subscription: sub.id }, 'list of an ended subscription not deleted'));
        this.tellWatchers(sub, state.members, sub.reason === 'rejected' || sub.reason === 'noresource' ? sub.reason : sub.reason === 'deactivated' ? 'deactivated' : 'timeout', true);
      },
    };
  }

  /** Keeps a request-contained list for a restart (not waited for: soft state). */
  private save(sub: Subscription, state: ListState, entries: readonly FlatEntry[]): void {
    const saved = this.options.saved;
    if (!saved || !state.contained) return;
    const document = serializeResourceLists({ lists: [{ kind: 'list', members: entries.map((e) => ({ kind: 'entry' as const, uri: e.uri, ...(e.displayName !== undefined ? { displayName: { text: e.displayName } } : {}) })) }] }).toString('utf8');
    saved.set({ id: sub.id, document, deflate: state.deflate, bareContentIds: state.bareContentIds }).catch((err: unknown) => this.log?.warn({ err, subscription: sub.id }, 'list of a subscription not saved'));
  }

  /**
   * Puts list subscriptions back after a restart (records of `subscriptions` whose body type
   * is multipart/related): each gets its list again (the one its SUBSCRIBE carried, or the
   * stored one now), its members decided again, and a full-state NOTIFY whose RLMI version
   * goes on from the last one sent. One whose list is gone ends with reason=noresource.
   */
  async restore(records: readonly SubscriptionRecord[]): Promise<number> {
    if (records.length === 0) return 0;
    // The dialogs first, at once: a refresh that comes while the lists are read finds its subscription.
    this.subscriptions.restore(records, { notify: false });
    let lists: SavedList[] = [];
    try {
      lists = (await this.options.saved?.all()) ?? [];
    } catch (err) {
      this.log?.error({ err }, 'saved lists not read');
    }
    const saved = new Map(lists.map((l) => [l.id, l]));
    let restored = 0;
    for (const r of records) {
      const kept = saved.get(r.id);
      let entries: readonly FlatEntry[] | undefined;
      let name: string | undefined;
      if (kept) {
        const parsed = parseResourceLists(kept.document, { maxMembers: Number.MAX_SAFE_INTEGER, duplicates: 'drop' });
        if (parsed.ok) entries = flattenEntries(parsed.document).entries;
      } else {
        const list = await this.options.stored?.listAt(r.resource).catch(() => undefined);
        if (list && list.owner === r.watcher) {
          entries = list.entries;
          name = list.displayName ?? list.name;
        }
      }
      const sub = this.subscriptions.get(r.id);
      if (!sub || !sub.live) continue;
      if (!entries) {
        this.subscriptions.terminate(sub, 'noresource');
        continue;
      }
      const state = new ListState(r.resource, name, await this.members(r.watcher, entries), kept?.deflate ?? false, kept?.bareContentIds ?? false, kept !== undefined);
      if (!sub.live) continue;
      this.states.set(sub, state);
      this.index(sub, state);
      this.subscriptions.notify(sub);
      restored++;
    }
    return restored;
  }

  /** Members of list subscriptions (admin, metrics, tests). */
  listMembers(subscriptionId: string): Array<{ uri: string; state: InstanceState }> | undefined {
    const sub = this.subscriptions.get(subscriptionId);
    const state = sub ? this.states.get(sub) : undefined;
    return state?.members.map((m) => ({ uri: m.uri, state: this.memberState(sub!.watcher, m).state }));
  }

  close(): void {
    this.subscriptions.close();
  }
}

/** What the subscriber takes: deflated bodies (RFC 3261 §20.2 Accept-Encoding), bare Content-IDs (liblinphone). */
function quirksOf(req: SipRequest): { deflate: boolean; bareContentIds: boolean } {
  const encodings = req.getHeaders('accept-encoding').flatMap(splitList).map((t) => t.split(';')[0]!.trim().toLowerCase());
  return { deflate: encodings.includes('deflate'), bareContentIds: /linphone|belle-sip/i.test(req.getHeader('user-agent') ?? '') };
}

/** RFC 3857 §3.3: the watcher event a member's decision reads as. */
function eventOfDecision(d: SubscriptionDecision | undefined): WatcherEvent {
  return d === 'block' ? 'rejected' : d === 'allow' || d === 'polite-block' ? 'approved' : 'subscribe';
}

function arrivalKey(req: SipRequest): string {
  return `${req.callId}\u0000${req.from.tag ?? ''}`;
}

function sameTold(a: Told, b: Told): boolean {
  if (a.state !== b.state || a.reason !== b.reason) return false;
  if (a.body === b.body) return true;
  return a.body !== undefined && b.body !== undefined && a.body.equals(b.body);
}

/**
 * Inflates a deflate body (zlib, RFC 1950; raw RFC 1951 from sloppy peers) without ever
 * holding more than `max` bytes of output: a decompression bomb stops at the cap.
 */
export function inflateCapped(body: Buffer, max: number): Buffer | 'too-large' | undefined {
  for (const inflate of [inflateSync, inflateRawSync]) {
    try {
      return inflate(body, { maxOutputLength: max });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') return 'too-large';
    }
  }
  return undefined;
}
