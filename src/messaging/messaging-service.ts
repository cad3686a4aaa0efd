import type { Logger } from 'pino';
import type { LocalDomains } from '../core/local-domains.js';
import type { RequestContext, SipService } from '../core/services.js';
import type { SipRequest, SipResponse } from '../sip/message.js';
import { createResponse, randomToken } from '../sip/response.js';
import { addressOfRecord, isSipUri } from '../sip/uri.js';
import { canonicalAor } from '../registrar/aor.js';
import type { Binding } from '../registrar/binding.js';
import { targetOf } from '../registrar/binding-route.js';
import type { LocationStore } from '../registrar/location-store.js';
import { OPEN_USER_DIRECTORY, type UserDirectory } from '../registrar/user-directory.js';
import { timersWallClock } from '../registrar/wall-clock.js';
import type { TimerHandle, Timers, WallClock } from '../util/timers.js';
import type { RequestSender } from '../transaction/request-sender.js';
import { isSecureProtocol, type Destination } from '../transport/types.js';
import { isComposingIndication, MESSAGE_ACCEPT } from './content-types.js';
import { Forker, isKnownUndelivered, isUnanswered, type BranchResult } from './fork.js';
import { KeyedQueue } from '../util/keyed-queue.js';
import { InMemoryOfflineMessageStore } from './memory-offline-store.js';
import { ObservedOfflineStore } from './observed-offline-store.js';
import { deliveryRequest, OfflineDelivery } from './offline-delivery.js';
import type { OfflineMessageStore, OfflineUsage, StoredMessage } from './offline-message-store.js';
import { chooseBest } from './response-choice.js';
import type { BindingRelay } from './binding-relay.js';

export interface MessagingSettings {
  readonly maxUdpMessageSize: number;
  readonly offlineMaxMessages: number;
  readonly offlineMaxBytes: number;
  readonly offlineTtlSeconds: number;
}

export interface MessagingServiceOptions {
  readonly location: LocationStore;
  readonly domains: LocalDomains;
  readonly transactions: RequestSender;
  readonly timers: Timers;
  readonly settings: MessagingSettings;
  /** The transport's message size limit (config limits.maxMessageSize). */
  readonly maxMessageSize: number;
  /**
   * How long a contact may stay silent before the sender is answered without it: below
   * the sender's Timer F (64*T1), so our answer reaches it in time. Default 30 s (T1 500 ms).
   */
  readonly answerWithinMs?: number;
  /** Where we listen (host names of ours are in `domains`), to refuse contacts that loop back. */
  readonly listeners?: () => ReadonlyArray<{ readonly protocol: string; readonly port: number }>;
  /** Durable store of offline messages; in memory by default. */
  readonly store?: OfflineMessageStore;
  readonly users?: UserDirectory;
  /** Bindings whose flow another node holds are reached through it (a cluster). */
  readonly relay?: BindingRelay;
  readonly wallClock?: WallClock;
  readonly logger?: Logger;
}

/**
 * Another service behind addresses of our domain that are not users (chat rooms, the
 * URI-list service): asked first for each MESSAGE to our domain.
 */
export interface MessageTarget {
  /** Option tags only this target serves (RFC 5365 recipient-list-message): 420 elsewhere. */
  readonly supported?: readonly string[];
  /** True when `aor` (the canonical Request-URI) is this target's to handle. */
  claims(aor: string, request: SipRequest): boolean | Promise<boolean>;
  handle(ctx: RequestContext, aor: string): Promise<void>;
}

/**
 * How a MESSAGE the server sends of its own (a room's copy to a member) ended: a contact
 * answered 2xx; stored for later; refused by every contact that answered; not stored
 * because it is transient (a typing indication) or the recipient's offline limits are full.
 */
export type DeliveryOutcome = 'delivered' | 'stored' | 'refused' | 'dropped' | 'full';

/** Headers that travel end to end with a stored message (the rest are hop-by-hop or rebuilt). */
const CARRIED_HEADERS = new Set([
  'subject', 'content-encoding', 'content-language', 'content-disposition', 'mime-version',
  'priority', 'in-reply-to', 'reply-to', 'user-agent', 'p-asserted-identity', 'identity',
]);
const MAX_CARRIED_HEADERS = 16;
const MAX_CARRIED_HEADER_LENGTH = 1024;

/** Response headers that are ours to write, not copied from downstream (RFC 3261 §16.7 step 9). */
const OWN_RESPONSE_HEADERS = new Set(['via', 'from', 'to', 'call-id', 'cseq', 'content-length', 'route', 'record-route']);

/** Default answer window: 64*T1 at the default T1 of 500 ms is 32 s; 2 s are left for the way back. */
const DEFAULT_ANSWER_WITHIN_MS = 30_000;

/** Offline stores waiting for one recipient at most; more get 503. */
const MAX_QUEUED_STORES_PER_USER = 64;

/** How often expired offline messages are purged. */
const PURGE_INTERVAL_MS = 60_000;

/**
 * Pager-mode instant messaging (RFC 3428): a MESSAGE to a user of our domain is proxied
 * to every reachable contact of the user; with none, it is stored (202) and delivered when
 * the user next registers.
 */
export class MessagingService implements SipService {
  readonly name = 'messaging';
  readonly methods = ['MESSAGE'] as const;
  readonly accept = MESSAGE_ACCEPT;
  private offlineStore: OfflineMessageStore;
  private readonly location: LocationStore;
  private readonly domains: LocalDomains;
  private readonly timers: Timers;
  private readonly settings: MessagingSettings;
  private readonly users: UserDirectory;
  private readonly wallClock: WallClock;
  private readonly log?: Logger;
  private readonly forker: Forker;
  private readonly delivery: OfflineDelivery;
  // Offline stores of one recipient, one at a time; a flood for one user waits in a bounded line.
  private readonly quota = new KeyedQueue(MAX_QUEUED_STORES_PER_USER);
  private purgeTimer?: TimerHandle;
  private closed = false;
  private readonly targets: MessageTarget[] = [];
  private readonly relay?: BindingRelay;

  constructor(options: MessagingServiceOptions) {
    if (options.relay) this.relay = options.relay;
    this.location = options.location;
    this.domains = options.domains;
    this.timers = options.timers;
    this.settings = options.settings;
    this.users = options.users ?? OPEN_USER_DIRECTORY;
    this.wallClock = options.wallClock ?? options.location.wallClock ?? timersWallClock(options.timers);
    this.log = options.logger;
    this.offlineStore = this.observed(options.store ?? new InMemoryOfflineMessageStore());
    this.forker = new Forker(
      options.transactions,
      options.location,
      {
        maxUdpMessageSize: options.settings.maxUdpMessageSize,
        maxMessageSize: options.maxMessageSize,
        answerWithinMs: options.answerWithinMs ?? DEFAULT_ANSWER_WITHIN_MS,
      },
      options.timers,
      options.logger,
      (dest) => isOwnAddress(dest, options.domains, options.listeners),
      options.relay,
    );
    this.delivery = new OfflineDelivery(this.store, this.location, this.forker, this.wallClock, options.logger);
    this.schedulePurge();
  }

  /** Where offline messages are kept. */
  get store(): OfflineMessageStore {
    return this.offlineStore;
  }

  /**
   * Switches to another offline store (the durable one: the store opens after the
   * services are built). Messages already in the old store are not moved.
   */
  useStore(store: OfflineMessageStore): void {
    this.offlineStore = this.observed(store);
    this.delivery.useStore(this.offlineStore);
  }

  /**
   * `listener` hears of every recipient whose stored messages changed (stored, delivered,
   * withdrawn): message waiting indication (RFC 3842) reads the count again.
   */
  onStoredMessagesChanged(listener: (recipient: string) => void): void {
    this.storedListeners.push(listener);
  }

  private readonly storedListeners: Array<(recipient: string) => void> = [];

  private observed(store: OfflineMessageStore): OfflineMessageStore {
    return new ObservedOfflineStore(store, (recipient) => {
      for (const l of this.storedListeners) {
        try {
          l(recipient);
        } catch (err) {
          this.log?.error({ err, recipient }, 'stored-message listener failed');
        }
      }
    });
  }

  /** Option tags of the targets (the core's Supported and its Require check). */
  get supported(): string[] {
    return this.targets.flatMap((t) => t.supported ?? []);
  }

  /** Adds a service for addresses of our domain that are not users (rooms, URI lists). */
  addTarget(target: MessageTarget): void {
    this.targets.push(target);
  }

  /**
   * Sends a MESSAGE the server composed (From, To, Call-ID of its own) to every reachable
   * contact of `m.recipient`, as stored messages are delivered; with none reachable it is
   * stored within the recipient's limits, unless `transient` (RFC 3994 typing states, notices).
   */
  async deliver(m: StoredMessage, options: { readonly transient: boolean; readonly log?: Logger }): Promise<DeliveryOutcome> {
    return this.deliverTo(m, await this.location.lookup(m.recipient), options);
  }

  /**
   * `deliver` for the contacts whose flows this node holds (a cluster: each node sends a
   * streamed room message to its own). 'elsewhere' when the recipient has contacts held by
   * other nodes only, or none at all and `storeWhenNone` is false (another node stores it).
   * Stored when every contact is ours and none took it, or there is none and `storeWhenNone`.
   */
  async deliverFromHere(m: StoredMessage, options: { readonly storeWhenNone: boolean; readonly log?: Logger }): Promise<DeliveryOutcome | 'elsewhere'> {
    const bindings = await this.location.lookup(m.recipient);
    const here = this.relay ? bindings.filter((b) => !this.relay!.isRemote(b)) : bindings;
    if (here.length === 0 && (bindings.length > 0 || !options.storeWhenNone)) return 'elsewhere';
    if (here.length < bindings.length) {
      // Other nodes hold contacts of it too: they send theirs; nothing is stored from here.
      const outcome = await this.deliverTo(m, here, { transient: true, ...(options.log ? { log: options.log } : {}) });
      return outcome === 'dropped' ? 'elsewhere' : outcome;
    }
    return this.deliverTo(m, here, { transient: false, ...(options.log ? { log: options.log } : {}) });
  }

  private async deliverTo(m: StoredMessage, bindings: readonly Binding[], options: { readonly transient: boolean; readonly log?: Logger }): Promise<DeliveryOutcome> {
    const log = options.log ?? this.log;
    let stored: Promise<boolean> | undefined;
    if (bindings.length > 0) {
      const results = await this.forker.fork(deliveryRequest(m), bindings, undefined, () => {
        void stored?.then((ok) => {
          if (ok) return this.delivery.withdraw(m.recipient, m.id, log);
        });
      });
      if (results.some((r) => r.status >= 200 && r.status < 300)) return 'delivered';
      if (!results.every((r) => isKnownUndelivered(r) || isUnanswered(r))) return 'refused';
    }
    if (options.transient || this.settings.offlineMaxMessages === 0) return 'dropped';
    const queued = this.quota.run(m.recipient, () => this.addWithinLimits(m));
    stored = queued;
    const ok = queued ? await queued : false;
    if (!ok) return 'full';
    if ((await this.location.lookup(m.recipient)).length > 0) this.delivery.trigger(m.recipient);
    return 'stored';
  }

  /** Hook for the registrar: the user registered, so stored messages may go now. */
  registered(aor: string): void {
    this.delivery.trigger(aor);
  }

  /**
   * A branch another node relayed here, since we hold the binding's flow (a cluster):
   * sent as one branch of our own, resolving with how it ended.
   */
  async deliverHere(request: SipRequest, binding: Binding): Promise<BranchResult> {
    const [result] = await this.forker.fork(request, [binding]);
    return result!;
  }

  /** Admin: how many messages are stored for a user, and their size. */
  storedMessages(aor: string): Promise<OfflineUsage> {
    return this.store.usage(aor, this.wallClock.nowMs());
  }

  /** Admin: stored message counts per user (when the store can list them). */
  async storedMessageSummary(): Promise<ReadonlyArray<{ readonly recipient: string } & OfflineUsage>> {
    return this.store.summary ? this.store.summary(this.wallClock.nowMs()) : [];
  }

  close(): void {
    this.closed = true;
    this.timers.cancel(this.purgeTimer);
    this.delivery.close();
  }

  async handle(ctx: RequestContext): Promise<void> {
    const req = ctx.request;
    // The Date a stored copy carries is when we received it, not when we gave up on its contacts.
    const receivedAt = this.wallClock.nowMs();
    // What a stored or forwarded copy carries must parse (400 otherwise).
    void req.from;
    void req.to;
    // The sender is the authenticated user (RFC 3428 §7 / RFC 3261 §22: no one writes in another's name).
    if (ctx.identity && canonicalAor(req.from.uri, this.domains) !== ctx.identity.aor) {
      ctx.log.info({ identity: ctx.identity.aor, from: req.from.uri.raw }, 'MESSAGE in the name of another user refused');
      ctx.reply(403, 'From Is Not The Authenticated User');
      return;
    }
    // RFC 3261 §16.3 step 5: we support no proxy extensions.
    const proxyRequire = req.getHeaders('proxy-require');
    if (proxyRequire.length > 0) {
      ctx.reply(420, 'Bad Extension', { headers: [['Unsupported', proxyRequire.join(', ')]] });
      return;
    }
    // RFC 3261 §16.4: Route entries naming us are ours to remove; any left would have us
    // relay to another hop, which we do not (no federation yet).
    const routes = req.routes;
    let ours = 0;
    while (ours < routes.length && this.domains.has(routes[ours]!.uri.host)) ours++;
    if (ours < routes.length) {
      ctx.reply(403, 'Relaying Denied');
      return;
    }
    const ruri = req.uri;
    // A MESSAGE for another domain: we are not an open relay.
    if (ruri.scheme !== 'tel' && !this.domains.has(ruri.host)) {
      ctx.reply(403, 'Relaying Denied');
      return;
    }
    const aor = canonicalAor(ruri, this.domains);
    // Rooms and the URI-list service live at addresses of our domain that no user has.
    if (aor !== undefined) {
      for (const t of this.targets) if (await t.claims(aor, req)) return t.handle(ctx, aor);
    }
    // RFC 3261 §8.2.2.3: an extension only a target serves is not supported for a user.
    const targetTags = new Set(this.supported.map((t) => t.toLowerCase()));
    const unsupported = req.getHeaders('require').filter((t) => targetTags.has(t.toLowerCase()));
    if (unsupported.length > 0) {
      ctx.reply(420, 'Bad Extension', { headers: [['Unsupported', unsupported.join(', ')]] });
      return;
    }
    if (aor === undefined || !(await this.users.exists(aor))) {
      ctx.reply(404, 'Not Found');
      return;
    }
    // §16.6 step 3 (the core answered 483 at zero already; absent means 70).
    const maxForwards = req.maxForwards ?? 70;
    if (maxForwards <= 0) {
      ctx.reply(483, 'Too Many Hops');
      return;
    }
    const composing = isComposingIndication(req.contentType, req.body);
    let bindings = await this.location.lookup(aor);
    if (ruri.scheme === 'sips') {
      // RFC 5630 §5.3: a SIPS Request-URI asks for TLS on every hop, so only contacts we
      // reach over TLS qualify; storing it for a later plain-text delivery would downgrade it.
      bindings = bindings.filter(isSecureBinding);
      if (bindings.length === 0) {
        ctx.reply(480, 'Temporarily Unavailable', { headers: [['Warning', `380 ${this.domains.primary} "SIPS Not Allowed"`]] });
        return;
      }
    }
    if (bindings.length === 0) {
      ctx.log.debug({ aor }, 'no reachable contact');
      await this.storeOffline(ctx, aor, composing, receivedAt);
      return;
    }

    // §16.6: one copy for every branch; the forker sets Request-URI and Route per contact.
    // (Route entries naming us were checked above; none other is left.)
    const base = req.clone();
    base.setHeader('Max-Forwards', maxForwards - 1);
    base.removeHeader('route');
    let answered = false;
    // A contact given up as silent may still answer 2xx before its own Timer F: then it has
    // the message, and the copy stored meanwhile must not be delivered a second time.
    let late: BranchResult | undefined;
    let stored: Promise<string | undefined> | undefined;
    const results = await this.forker.fork(
      base,
      bindings,
      (r) => {
        // §16.7 step 5: the first 2xx goes upstream at once.
        answered = true;
        ctx.respond(relayResponse(req, r.response!, r.status, r.reason));
      },
      (r) => {
        late = r;
        void stored?.then((id) => {
          if (id !== undefined) return this.delivery.withdraw(aor, id, ctx.log);
        });
      },
    );
    if (answered) return;
    if (late) {
      ctx.respond(relayResponse(req, late.response!, late.status, late.reason));
      return;
    }
    if (!composing && results.every((r) => isKnownUndelivered(r) || isUnanswered(r))) {
      // Every contact was unreachable, or stayed silent for as long as the sender can wait
      // (a phone that vanished without unregistering): the user is offline after all. A
      // silent contact might have got it, so a late 2xx withdraws the stored copy.
      ctx.log.debug({ aor, outcomes: results.map((r) => r.outcome) }, 'no contact answered; storing');
      stored = this.storeOffline(ctx, aor, composing, receivedAt);
      await stored;
      return;
    }
    ctx.respond(this.bestResponse(req, results));
  }

  /** §16.7 step 6 with the rewrites a proxy owes for a non-INVITE request. */
  private bestResponse(req: SipRequest, results: readonly BranchResult[]): SipResponse {
    // Within a class, what a UA said is worth more than what we made up for a silent one.
    const candidates = results.map((result) => ({ result, status: upstreamStatus(result) }));
    const real = (c: { result: BranchResult; status: number }): number => (c.result.response && c.status === c.result.status ? 0 : 1);
    const best = chooseBest([...candidates].sort((a, b) => real(a) - real(b)))!;
    const r = best.result;
    if (r.response && best.status === r.status) return relayResponse(req, r.response, r.status, r.reason);
    return createResponse(req, best.status);
  }

  /**
   * Stores a MESSAGE for a recipient with no reachable contact and answers 202, within the
   * recipient's limits (else 480, nothing stored). A typing indication is never stored.
   * Resolves with the stored message's id, or undefined when nothing was stored.
   */
  private async storeOffline(ctx: RequestContext, aor: string, composing: boolean, receivedAt: number): Promise<string | undefined> {
    const req = ctx.request;
    if (composing || this.settings.offlineMaxMessages === 0) {
      ctx.reply(480, 'Temporarily Unavailable');
      return undefined;
    }
    const now = this.wallClock.nowMs();
    const message: StoredMessage = {
      id: randomToken(12),
      recipient: aor,
      ...(isSipUri(req.from.uri) ? { sender: addressOfRecord(req.from.uri) } : {}),
      from: req.getHeader('from')!,
      to: req.getHeader('to')!,
      callId: req.callId,
      cseq: req.cseq.seq,
      contentType: req.getHeader('content-type'),
      headers: carriedHeaders(req),
      body: req.body,
      receivedAt,
      expiresAt: receivedAt + this.settings.offlineTtlSeconds * 1000,
    };
    const queued = this.quota.run(aor, () => this.addWithinLimits(message, now));
    if (!queued) {
      ctx.reply(503, 'Service Unavailable', { headers: [['Retry-After', 5]] });
      return undefined;
    }
    const stored = await queued;
    if (!stored) {
      ctx.log.debug({ aor }, 'offline storage full');
      ctx.reply(480, 'Temporarily Unavailable');
      return undefined;
    }
    // RFC 3428 §7: 202 says the message was accepted, not that it reached the user.
    ctx.reply(202, 'Accepted');
    ctx.log.debug({ aor, id: message.id, bytes: message.body.length }, 'stored for offline delivery');
    // The user may have registered while we stored; its delivery run could have missed this one.
    if ((await this.location.lookup(aor)).length > 0) this.delivery.trigger(aor);
    return message.id;
  }

  /** Stores `message` unless its recipient's limits would be passed; true when stored. */
  private async addWithinLimits(message: StoredMessage, now = this.wallClock.nowMs()): Promise<boolean> {
    const usage = await this.store.usage(message.recipient, now);
    if (usage.count + 1 > this.settings.offlineMaxMessages || usage.bytes + message.body.length > this.settings.offlineMaxBytes) {
      return false;
    }
    await this.store.add(message);
    return true;
  }

  private schedulePurge(): void {
    if (this.closed) return;
    this.purgeTimer = this.timers.schedule(PURGE_INTERVAL_MS, () => {
      this.store.purgeExpired(this.wallClock.nowMs()).then(
        (n) => {
          if (n > 0) this.log?.debug({ purged: n }, 'expired offline messages purged');
        },
        (err: unknown) => this.log?.error({ err }, 'offline purge failed'),
      );
      this.schedulePurge();
    });
  }
}

/** Does a request to this binding leave over TLS (or secure WebSocket)? */
function isSecureBinding(b: Binding): boolean {
  return isSecureProtocol(targetOf(b)?.destination.protocol);
}

/** Is `dest` one of our own listening sockets (a host of ours, a port and transport we listen on)? */
function isOwnAddress(dest: Destination, domains: LocalDomains, listeners?: MessagingServiceOptions['listeners']): boolean {
  if (!listeners || !domains.has(dest.address)) return false;
  return listeners().some((l) => l.protocol === dest.protocol && l.port === dest.port);
}

/**
 * The status a branch's answer may take upstream: RFC 4320 §4.2 forbids a 408 to a
 * non-INVITE request, and RFC 5626 §11.5 keeps a 430 between the edge and us, so a
 * contact that timed out or lost its flow reads as 480; §16.7 step 6 turns 503 into 500.
 */
function upstreamStatus(r: BranchResult): number {
  if (isUnanswered(r) || r.outcome === 'transport-error' || r.outcome === 'no-route') return 480;
  if (r.status === 408 || r.status === 430) return 480;
  if (r.status === 503) return 500;
  return r.status;
}

/**
 * §16.7 step 9: the response for the sender, with the original request's Via, From,
 * Call-ID and CSeq, the answering UA's To tag, and the rest of its headers and body.
 */
function relayResponse(req: SipRequest, down: SipResponse, status: number, reason: string): SipResponse {
  let toTag: string | undefined;
  try {
    toTag = down.to.tag;
  } catch {
    toTag = undefined;
  }
  const res = createResponse(req, status, reason, { toTag: toTag ?? randomToken() });
  // The answering UA's Server header travels unchanged; ours stays only when it sent none.
  if (down.headers.some((h) => h.key === 'server')) res.removeHeader('server');
  for (const h of down.headers) if (!OWN_RESPONSE_HEADERS.has(h.key)) res.headers.push(h);
  res.body = down.body;
  return res;
}

function carriedHeaders(req: SipRequest): Array<readonly [string, string]> {
  const out: Array<readonly [string, string]> = [];
  for (const h of req.headers) {
    if (!CARRIED_HEADERS.has(h.key) || h.value.length > MAX_CARRIED_HEADER_LENGTH) continue;
    out.push([h.name, h.value]);
    if (out.length >= MAX_CARRIED_HEADERS) break;
  }
  return out;
}
