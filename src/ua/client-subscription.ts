import { inflateSync } from 'node:zlib';
import { parseListNotify } from '../lists/list-notify.js';
import { RESOURCE_LISTS_TYPE, serializeResourceLists } from '../lists/resource-lists.js';
import type { InstanceState } from '../lists/rlmi-document.js';
import { parsePidf } from '../presence/pidf/parse-pidf.js';
import type { PresenceDocument } from '../presence/pidf/presence-document.js';
import { summarizePresence, type PresenceSummary } from '../presence/pidf/summarize.js';
import { parseWatcherInfo, type WatcherInfoDocument } from '../presence/winfo/watcherinfo-document.js';
import { parseHeaderParams } from '../sip/header-values.js';
import type { SipRequest, SipResponse } from '../sip/message.js';
import { randomToken } from '../sip/response.js';
import type { TimerHandle } from '../util/timers.js';
import { TypedEmitter } from './emitter.js';
import { STATE_ACCEPT, summarizeEventState, type EventStateUpdate, type StateEvent } from './event-state.js';
import { SipRequestError } from './errors.js';
import { refreshDelayMs } from './refresh.js';
import type { RequestAnswer, UserAgent } from './user-agent.js';

/**
 * The event packages a watcher subscribes to: presence (RFC 3856), watcher information
 * (RFC 3857), and the busy lamp, message waiting and registrations (RFC 4235, 3842, 3680).
 */
export type WatchedEvent = 'presence' | 'presence.winfo' | StateEvent;

/** RFC 6665 §4.1.2 / §8.2.3: where the subscription stands. */
export type SubscriptionStatus = 'init' | 'pending' | 'active' | 'terminated';

/** RFC 6665 §8.2.3 Subscription-State, read. */
export interface SubscriptionStateHeader {
  readonly state: 'pending' | 'active' | 'terminated';
  readonly expires?: number;
  readonly reason?: string;
  readonly retryAfter?: number;
}

/** One presentity's presence as a watcher sees it, from one NOTIFY. */
export interface PresenceUpdate {
  /** The watched URI. */
  readonly presentity: string;
  readonly status: SubscriptionStatus;
  /** The PIDF document (absent while pending, or for an empty NOTIFY). */
  readonly document?: PresenceDocument;
  /** What a client displays: basic status, note, activities. */
  readonly summary?: PresenceSummary;
  readonly receivedAt: Date;
}

/** One resource of a list subscription (RFC 4662 §5.3) as the last NOTIFY told it. */
export interface ListResourceUpdate {
  readonly uri: string;
  readonly name?: string;
  /** The RLS's back-end subscription to it. */
  readonly state: InstanceState;
  readonly reason?: string;
  readonly document?: PresenceDocument;
  readonly summary?: PresenceSummary;
}

/** One list NOTIFY (RFC 4662): its RLMI version and state, and the resources it carried. */
export interface ListUpdate {
  /** The list's URI. */
  readonly list: string;
  readonly version: number;
  /** True: every resource of the list; false: only those that changed. */
  readonly fullState: boolean;
  readonly resources: readonly ListResourceUpdate[];
  readonly receivedAt: Date;
}

export type ClientSubscriptionEvents = {
  /** A list NOTIFY (RFC 4662); its active resources also come as `presence` events. */
  list: (update: ListUpdate) => void;
  /** The status changed (pending → active, → terminated). */
  status: (status: SubscriptionStatus, reason?: string) => void;
  presence: (update: PresenceUpdate) => void;
  /** presence.winfo: the watcher information document. */
  watchers: (doc: WatcherInfoDocument) => void;
  /** dialog, message-summary, reg: the body and a line that sums it up. */
  state: (update: EventStateUpdate) => void;
  /** Ended for good: no new subscription will be tried (RFC 6665 §4.1.3). */
  terminated: (reason: string | undefined) => void;
  /** A refresh or re-subscription failed; another try follows when the RFC allows. */
  error: (err: Error) => void;
};

export interface ClientSubscriptionOptions {
  readonly event: WatchedEvent;
  /** Requested duration in seconds (default 3600). */
  readonly expires?: number;
  /** Seconds to wait before re-subscribing when the server gave no retry-after (default 30). */
  readonly retrySeconds?: number;
  /**
   * A list subscription (RFC 4662): to a list the server stores (no entries), or with the
   * list in the SUBSCRIBE (RFC 5367: `entries`, to the RLS address).
   */
  readonly list?: { readonly entries?: readonly string[] };
}

/** Largest list NOTIFY body we inflate (a deflate bomb stops there). */
const MAX_LIST_BODY = 4 * 1024 * 1024;
const LIST_ACCEPT = 'multipart/related, application/rlmi+xml, application/pidf+xml';

const ACCEPT: Record<WatchedEvent, string> = {
  presence: 'application/pidf+xml',
  'presence.winfo': 'application/watcherinfo+xml',
  ...STATE_ACCEPT,
};

/** Immediate re-subscriptions in a row before waiting retrySeconds (a server that terminates at once must not make us loop). */
const MAX_IMMEDIATE_RETRIES = 3;

/** Reads a Subscription-State header value (RFC 6665 §8.2.3); undefined when it is broken. */
export function parseSubscriptionState(value: string | undefined): SubscriptionStateHeader | undefined {
  if (value === undefined) return undefined;
  const semi = value.indexOf(';');
  const state = (semi < 0 ? value : value.slice(0, semi)).trim().toLowerCase();
  if (state !== 'active' && state !== 'pending' && state !== 'terminated') return undefined;
  let params: ReadonlyMap<string, string | null>;
  try {
    params = semi < 0 ? new Map() : parseHeaderParams(value.slice(semi), 'Subscription-State');
  } catch {
    return undefined;
  }
  const int = (name: string): number | undefined => {
    const v = params.get(name);
    if (v === undefined || v === null || !/^\d{1,10}$/.test(v)) return undefined;
    return Number(v);
  };
  const reason = params.get('reason') ?? undefined;
  const expires = int('expires');
  const retryAfter = int('retry-after');
  return { state, ...(expires !== undefined ? { expires } : {}), ...(reason ? { reason: reason.toLowerCase() } : {}), ...(retryAfter !== undefined ? { retryAfter } : {}) };
}

/**
 * What RFC 6665 §4.1.3 says to do after a `terminated` state: re-subscribe at once, later
 * (seconds), or never.
 */
export function resubscribePolicy(reason: string | undefined, retryAfter: number | undefined, defaultSeconds: number): { retry: false } | { retry: true; afterSeconds: number } {
  switch (reason) {
    // "the subscriber SHOULD attempt to re-subscribe immediately"
    case 'deactivated':
    case 'timeout':
      return { retry: true, afterSeconds: retryAfter ?? 0 };
    // "the subscriber SHOULD NOT attempt to re-subscribe" (rejected, noresource, invariant)
    case 'rejected':
    case 'noresource':
    case 'invariant':
      return { retry: false };
    // probation, giveup, no reason or one we do not know: later, after retry-after when given.
    default:
      return { retry: true, afterSeconds: retryAfter ?? defaultSeconds };
  }
}

/**
 * One subscription of a watcher (RFC 6665 §4.1 subscriber side) as a small dialog: the
 * SUBSCRIBE creates it, NOTIFYs carry the state (possibly before the 2xx, §4.1.2.4), a
 * refresh goes in the dialog before expiry (§4.1.2.2), a 481 to it means the dialog is
 * gone and a new subscription starts, and a `terminated` NOTIFY is followed as §4.1.3 says.
 */
export class ClientSubscription extends TypedEmitter<ClientSubscriptionEvents> {
  readonly target: string;
  readonly event: WatchedEvent;
  status: SubscriptionStatus = 'init';
  /** The last PresenceUpdate, for a display that redraws. */
  last?: PresenceUpdate;
  private callId = '';
  private localTag = '';
  private remoteTag?: string;
  private remoteTarget: string;
  private localSeq = 0;
  private remoteSeq = -1;
  private expires: number;
  private timer?: TimerHandle;
  private immediateRetries = 0;
  private closing = false;
  private stopped = false;

  constructor(
    private readonly ua: UserAgent,
    target: string,
    private readonly options: ClientSubscriptionOptions,
    /** The watcher's table of dialogs: we enter and leave it as our Call-ID changes. */
    private readonly registry: Map<string, ClientSubscription>,
  ) {
    super();
    this.target = target;
    this.remoteTarget = target;
    this.event = options.event;
    this.expires = options.expires ?? 3600;
  }

  /** The key NOTIFYs are matched on: Call-ID and our tag (their To tag). */
  get key(): string {
    return `${this.callId}\u0000${this.localTag}`;
  }

  /** Sends the initial SUBSCRIBE; resolves on its 2xx, rejects with the refusal. */
  async subscribe(): Promise<void> {
    this.registry.delete(this.key);
    this.callId = `${randomToken(12)}@sub`;
    this.localTag = randomToken();
    this.remoteTag = undefined;
    this.remoteTarget = this.target;
    this.remoteSeq = -1;
    this.localSeq = this.ua.nextCSeq();
    this.registry.set(this.key, this);
    const res = await this.sendSubscribe(this.expires);
    if (res.status >= 200 && res.status < 300) {
      this.accepted(res);
      return;
    }
    this.registry.delete(this.key);
    throw this.ua.failure('SUBSCRIBE', res);
  }

  /** Ends the subscription (Expires: 0, RFC 6665 §4.1.2.3); the final NOTIFY is still answered. */
  async unsubscribe(): Promise<void> {
    this.stopped = true;
    this.ua.timers.cancel(this.timer);
    if (this.status === 'terminated' || this.status === 'init') {
      this.registry.delete(this.key);
      return;
    }
    this.closing = true;
    await this.sendSubscribe(0);
    this.setStatus('terminated', 'unsubscribed');
    // The final NOTIFY may still be on its way: answer it for a while (Timer F), then forget.
    const key = this.key;
    this.ua.timers.schedule(32_000, () => {
      if (this.registry.get(key) === this) this.registry.delete(key);
    });
  }

  /**
   * The connection NOTIFYs came down closed (TCP/TLS): refresh in the dialog after
   * `delayMs`, so the notifier sends to the new connection (its dialog takes the flow of
   * the refresh); a 481 to it starts a new subscription.
   */
  flowLost(delayMs: number): void {
    if (this.stopped || this.closing || this.status === 'init' || this.status === 'terminated') return;
    this.schedule(delayMs, () => this.refresh());
  }

  /** A NOTIFY in our dialog (the watcher matched it on Call-ID and To tag). */
  receiveNotify(req: SipRequest): RequestAnswer {
    const fromTag = req.from.tag;
    if (this.remoteTag !== undefined && fromTag !== this.remoteTag) return { status: 481, reason: 'Subscription Does Not Exist' };
    const seq = req.cseq.seq;
    // RFC 3261 §12.2.2: a lower CSeq than the last one is out of order.
    if (seq <= this.remoteSeq) return { status: 500, reason: 'CSeq Out of Order' };
    const state = parseSubscriptionState(req.getHeader('subscription-state'));
    if (!state) return { status: 400, reason: 'Bad Subscription-State' };
    this.remoteSeq = seq;
    // §4.1.2.4: a NOTIFY before the 2xx establishes the dialog.
    this.remoteTag ??= fromTag;
    const contact = req.contacts[0];
    if (contact) this.remoteTarget = contact.uri.raw;
    this.readBody(req, state.state);
    if (state.state === 'terminated') {
      this.ended(state.reason, state.retryAfter);
      return { status: 200 };
    }
    this.setStatus(state.state);
    // §4.1.2.2: the notifier may shorten the subscription; refresh before its new end.
    if (state.expires !== undefined && !this.closing) this.schedule(refreshDelayMs(state.expires), () => this.refresh());
    return { status: 200 };
  }

  private readBody(req: SipRequest, state: SubscriptionStateHeader['state']): void {
    const status: SubscriptionStatus = state;
    if (this.event === 'presence.winfo') {
      if (req.body.length === 0) return;
      const parsed = parseWatcherInfo(req.body);
      if (parsed.ok) this.emit('watchers', parsed.document);
      else this.ua.log.debug({ callId: req.callId, reason: parsed.reason }, 'unreadable watcherinfo body');
      return;
    }
    if (this.event !== 'presence') {
      this.emit('state', { target: this.target, event: this.event, status, body: req.body, summary: summarizeEventState(this.event, req.body), receivedAt: new Date() });
      return;
    }
    if ((req.getHeader('content-type') ?? '').trim().toLowerCase().startsWith('multipart/related')) {
      this.readListBody(req);
      return;
    }
    let document: PresenceDocument | undefined;
    if (req.body.length > 0) {
      const parsed = parsePidf(req.body);
      if (parsed.ok) document = parsed.document;
      else this.ua.log.debug({ callId: req.callId, reason: parsed.reason }, 'unreadable PIDF body');
    }
    const update: PresenceUpdate = {
      presentity: this.target,
      status,
      ...(document ? { document, summary: summarizePresence(document) } : {}),
      receivedAt: new Date(),
    };
    this.last = update;
    this.emit('presence', update);
  }

  /** RFC 4662 §5.2: an RLMI document and the PIDF parts it names. */
  private readListBody(req: SipRequest): void {
    let body = req.body;
    if ((req.getHeader('content-encoding') ?? '').trim().toLowerCase() === 'deflate') {
      try {
        body = inflateSync(body, { maxOutputLength: MAX_LIST_BODY });
      } catch {
        this.ua.log.debug({ callId: req.callId }, 'list NOTIFY body does not inflate');
        return;
      }
    }
    const parsed = parseListNotify(req.getHeader('content-type') ?? '', body);
    if (!parsed.ok) {
      this.ua.log.debug({ callId: req.callId, reason: parsed.reason }, 'unreadable list NOTIFY body');
      return;
    }
    const receivedAt = new Date();
    const resources = parsed.notify.rlmi.resources.map((r): ListResourceUpdate => {
      const i = r.instances[0];
      const part = i?.cid !== undefined ? parsed.notify.parts.get(i.cid) : undefined;
      const pidf = part ? parsePidf(part.body) : undefined;
      const document = pidf?.ok ? pidf.document : undefined;
      return {
        uri: r.uri,
        ...(r.name !== undefined ? { name: r.name } : {}),
        state: i?.state ?? 'pending',
        ...(i?.reason !== undefined ? { reason: i.reason } : {}),
        ...(document ? { document, summary: summarizePresence(document) } : {}),
      };
    });
    const rlmi = parsed.notify.rlmi;
    this.emit('list', { list: rlmi.uri, version: rlmi.version, fullState: rlmi.fullState, resources, receivedAt });
    for (const r of resources) {
      const update: PresenceUpdate = { presentity: r.uri, status: r.state, ...(r.document ? { document: r.document, summary: r.summary! } : {}), receivedAt };
      this.emit('presence', update);
    }
  }

  private async refresh(): Promise<void> {
    if (this.stopped) return;
    const res = await this.sendSubscribe(this.expires);
    if (this.stopped) return;
    if (res.status >= 200 && res.status < 300) {
      this.accepted(res);
      return;
    }
    if (res.status === 481) {
      // §4.1.2.2 / RFC 5057: the dialog is gone at the notifier: a new subscription.
      this.restart(0);
      return;
    }
    const err = this.ua.failure('SUBSCRIBE', res);
    this.emit('error', err);
    if (res.status === 403 || res.status === 404 || res.status === 489) {
      this.ended('rejected', undefined);
      return;
    }
    this.schedule((err.retryAfter ?? this.options.retrySeconds ?? 30) * 1000, () => this.refresh());
  }

  private sendSubscribe(expires: number): Promise<SipResponse> {
    return this.sendSubscribeRound(expires, 0);
  }

  private async sendSubscribeRound(expires: number, rounds: number): Promise<SipResponse> {
    const req = this.ua.createRequest('SUBSCRIBE', this.remoteTarget, {
      to: this.target,
      ...(this.remoteTag !== undefined ? { toTag: this.remoteTag } : {}),
      fromTag: this.localTag,
      callId: this.callId,
      cseq: this.localSeq++,
      contact: true,
      headers: [['Event', this.event], ['Accept', this.options.list ? LIST_ACCEPT : ACCEPT[this.event]], ['Expires', expires], ...this.listHeaders()],
      ...this.listBody(),
    });
    const { request, response } = await this.ua.send(req);
    // Digest retries raised the CSeq: the dialog's next request goes above it (§12.2.1.1).
    this.localSeq = Math.max(this.localSeq, request.cseq.seq + 1);
    if (response.status === 423 && rounds < 2 && expires > 0) {
      const min = Number.parseInt(response.getHeader('min-expires') ?? '', 10);
      if (Number.isFinite(min) && min > this.expires) {
        this.expires = min;
        return this.sendSubscribeRound(min, rounds + 1);
      }
    }
    return response;
  }

  /** RFC 4662 §5.1 Supported: eventlist; RFC 5367 §3 Require on the list-carrying SUBSCRIBE. */
  private listHeaders(): Array<[string, string]> {
    const list = this.options.list;
    if (!list) return [];
    const headers: Array<[string, string]> = [['Supported', 'eventlist'], ['Accept-Encoding', 'deflate']];
    if (list.entries && this.remoteTag === undefined) headers.push(['Require', 'recipient-list-subscribe'], ['Content-Disposition', 'recipient-list']);
    return headers;
  }

  /** RFC 5367: the list goes in the SUBSCRIBE that creates the subscription; refreshes keep it. */
  private listBody(): { body?: Buffer; contentType?: string } {
    const entries = this.options.list?.entries;
    if (!entries || this.remoteTag !== undefined) return {};
    const body = serializeResourceLists({ lists: [{ kind: 'list', members: entries.map((uri) => ({ kind: 'entry', uri })) }] });
    return { body, contentType: RESOURCE_LISTS_TYPE };
  }

  private accepted(res: SipResponse): void {
    this.remoteTag ??= res.to.tag;
    const contact = res.contacts[0];
    if (contact) this.remoteTarget = contact.uri.raw;
    this.immediateRetries = 0;
    if (this.status === 'init' || this.status === 'terminated') this.setStatus('pending');
    const granted = res.expires ?? this.expires;
    this.schedule(refreshDelayMs(granted), () => this.refresh());
  }

  /** §4.1.3: terminated by the notifier (or refused for good): re-subscribe or stop. */
  private ended(reason: string | undefined, retryAfter: number | undefined): void {
    this.ua.timers.cancel(this.timer);
    this.setStatus('terminated', reason);
    if (this.closing || this.stopped) {
      this.registry.delete(this.key);
      return;
    }
    const policy = resubscribePolicy(reason, retryAfter, this.options.retrySeconds ?? 30);
    if (!policy.retry) {
      this.registry.delete(this.key);
      this.stopped = true;
      this.emit('terminated', reason);
      return;
    }
    this.restart(policy.afterSeconds);
  }

  private restart(afterSeconds: number): void {
    let delay = afterSeconds * 1000;
    if (delay === 0 && ++this.immediateRetries > MAX_IMMEDIATE_RETRIES) delay = (this.options.retrySeconds ?? 30) * 1000;
    this.schedule(delay, () => {
      if (this.stopped) return;
      this.subscribe().catch((err: Error) => {
        this.emit('error', err);
        if (err instanceof SipRequestError && (err.status === 403 || err.status === 404 || err.status === 489)) {
          this.stopped = true;
          this.emit('terminated', 'rejected');
          return;
        }
        this.restart(err instanceof SipRequestError && err.retryAfter !== undefined ? err.retryAfter : this.options.retrySeconds ?? 30);
      });
    });
  }

  private schedule(ms: number, fn: () => Promise<void> | void): void {
    this.ua.timers.cancel(this.timer);
    this.timer = this.ua.timers.schedule(ms, () => {
      void Promise.resolve(fn()).catch((err: Error) => this.emit('error', err));
    });
  }

  private setStatus(status: SubscriptionStatus, reason?: string): void {
    if (this.status === status) return;
    this.status = status;
    this.emit('status', status, reason);
  }
}
