import {
  Messager,
  Publisher,
  PublisherState,
  Registerer,
  RegistererState,
  Subscriber,
  SubscriptionState,
  UserAgent,
  UserAgentState,
  type Message,
  type Notification,
} from 'sip.js';
import { buildIsComposing, ISCOMPOSING_TYPE, readIsComposing } from './is-composing.js';
import { buildPidf, readPidf, type BuddyPresence, type MyStatus } from './pidf.js';
import { parseSubscriptionState, reconnectDelayMs, resubscribeDelayMs } from './retry.js';
import { readListNotify } from './rlmi.js';

export interface Credentials {
  readonly user: string;
  readonly domain: string;
  readonly password: string;
  /** ws:// or wss:// URL of the server (RFC 7118). */
  readonly server: string;
}

/** What the session tells the page. */
export interface SessionEvents {
  presence(buddy: string, presence: BuddyPresence): void;
  /** A buddy subscription is pending (the buddy has not approved us yet) or ended; `reason` as RFC 6665 §4.2.2 gives it. */
  subscriptionState(buddy: string, state: 'pending' | 'active' | 'terminated', reason?: string): void;
  message(from: string, text: string): void;
  composing(from: string, state: 'active' | 'idle', refreshS: number): void;
  winfo(body: string): void;
  /** A list NOTIFY named these buddies: all of the list (`full`) or those that changed. */
  listMembers(buddies: readonly string[], full: boolean): void;
  connection(state: 'connected' | 'disconnected' | 'reconnecting'): void;
  /** The server refused (or never answered) my PUBLISH: the status shown is not published. */
  publishFailed(why: string): void;
  /** A new publication was accepted (the first, or one started again after a failure or reconnect). */
  publishAccepted(status: MyStatus): void;
}

/** How a MESSAGE went: delivered (200), or accepted for later delivery (202, RFC 3428 §7). */
export type Delivery = 'delivered' | 'stored';

/** Expiry we ask for registrations, publications and subscriptions (s). */
const EXPIRES = 600;

function randomId(prefix: string): string {
  return `${prefix}${Math.random().toString(36).slice(2, 10)}`;
}

/**
 * One logged-in user over sip.js: REGISTER (so MESSAGEs reach us, RFC 3428), PUBLISH of my
 * PIDF (RFC 3903), SUBSCRIBE to each buddy's presence (RFC 3856) and to my own watcher
 * information (RFC 3857), MESSAGE both ways with RFC 3994 composing indications.
 *
 * It survives the connection dropping (a server restart): it reconnects with backoff, then
 * registers, publishes and subscribes again, since RFC 7118 §5 binds our `.invalid`
 * contact to the connection that is gone. A subscription the server ends is taken up
 * again as RFC 6665 §4.1.3 says for its reason.
 */
export class SipSession {
  readonly aor: string;
  private readonly ua: UserAgent;
  private registerer?: Registerer;
  private publisher?: Publisher;
  private winfo?: Subscriber;
  /** The buddy list subscription (RFC 4662), when the page watches its list rather than each buddy. */
  private list?: Subscriber;
  private listUri?: string;
  private listRetry = 0;
  private readonly buddies = new Map<string, Subscriber>();
  /** The buddies I mean to watch, whether or not a subscription is up right now. */
  private readonly wanted = new Set<string>();
  private readonly retries = new Map<string, { attempt: number; timer?: ReturnType<typeof setTimeout> }>();
  private readonly ids = { tuple: randomId('t'), person: randomId('p') };
  private lastPublished?: { status: MyStatus; note: string };
  private stopping = false;
  private started = false;
  private reconnectAttempt = 0;
  private reconnectTimer?: ReturnType<typeof setTimeout>;
  private winfoRetry = 0;

  constructor(private readonly creds: Credentials, private readonly events: SessionEvents) {
    this.aor = `sip:${creds.user}@${creds.domain}`;
    const uri = UserAgent.makeURI(this.aor);
    if (!uri) throw new Error(`not a SIP address: ${this.aor}`);
    this.ua = new UserAgent({
      uri,
      transportOptions: { server: creds.server, traceSip: false },
      authorizationUsername: creds.user,
      authorizationPassword: creds.password,
      logLevel: 'warn',
      userAgentString: 'simple-presence web',
      delegate: {
        onMessage: (m) => this.onMessage(m),
        onConnect: () => this.onConnect(),
        onDisconnect: () => this.onDisconnect(),
      },
    });
  }

  /** Connects and registers; rejects when the server refuses the credentials. */
  async start(): Promise<void> {
    await this.ua.start();
    this.registerer = new Registerer(this.ua, { expires: EXPIRES });
    await new Promise<void>((resolve, reject) => {
      const done = (ok: boolean, why?: string): void => (ok ? resolve() : reject(new Error(why ?? 'registration failed')));
      this.registerer!.register({
        requestDelegate: {
          onAccept: () => done(true),
          onReject: (res) => done(false, `${res.message.statusCode} ${res.message.reasonPhrase}`),
        },
      }).catch((err: Error) => done(false, err.message));
    });
    this.started = true;
    this.watchWatchers();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.reconnectTimer);
    for (const r of this.retries.values()) clearTimeout(r.timer);
    for (const s of this.buddies.values()) await s.unsubscribe().catch(() => undefined);
    await this.list?.unsubscribe().catch(() => undefined);
    await this.winfo?.unsubscribe().catch(() => undefined);
    await this.publisher?.unpublish().catch(() => undefined);
    if (this.registerer?.state === RegistererState.Registered) await this.registerer.unregister().catch(() => undefined);
    if (this.ua.state === UserAgentState.Started) await this.ua.stop();
  }

  /** Publishes my status and note (a new publication the first time, then modifies, RFC 3903 §4). */
  /** Resolves false when the PUBLISH could not even be sent (`publishFailed` has told the page). */
  async publish(status: MyStatus, note: string): Promise<boolean> {
    this.lastPublished = { status, note };
    const body = buildPidf(this.aor, status, note, this.ids);
    if (!this.publisher || this.publisher.state === PublisherState.Terminated) {
      const publisher = new Publisher(this.ua, UserAgent.makeURI(this.aor)!, 'presence', { expires: EXPIRES, contentType: 'application/pidf+xml', unpublishOnClose: true });
      // sip.js ends a Publisher on a final error (other than 412 and 423, which it handles): say so.
      publisher.stateChange.addListener((s) => {
        if (this.publisher !== publisher || this.stopping) return;
        if (s === PublisherState.Terminated) this.events.publishFailed('the server did not accept it');
        if (s === PublisherState.Published && this.lastPublished) this.events.publishAccepted(this.lastPublished.status);
      });
      this.publisher = publisher;
    }
    const publisher = this.publisher;
    await publisher.publish(body);
    // A send that fails at once (no connection) has already ended the Publisher (and said so).
    return publisher.state !== PublisherState.Terminated;
  }

  watch(buddy: string): void {
    this.wanted.add(buddy);
    if (this.buddies.has(buddy)) return;
    const target = UserAgent.makeURI(buddy);
    if (!target) return;
    const sub = new Subscriber(this.ua, target, 'presence', { expires: EXPIRES, extraHeaders: ['Accept: application/pidf+xml'] });
    let ended: { reason?: string; retryAfterS?: number } = {};
    sub.delegate = {
      onNotify: (n: Notification) => {
        void n.accept();
        const header = parseSubscriptionState(n.request.getHeader('Subscription-State'));
        const state = header?.state;
        if (state === 'pending' || state === 'active') {
          this.retry(buddy).attempt = 0;
          this.events.subscriptionState(buddy, state);
        }
        if (state === 'terminated') ended = { ...(header?.reason ? { reason: header.reason } : {}), ...(header?.retryAfterS !== undefined ? { retryAfterS: header.retryAfterS } : {}) };
        if (n.request.body) this.events.presence(buddy, readPidf(n.request.body));
      },
    };
    sub.stateChange.addListener((s) => {
      // Only the buddy's current subscription speaks for it (an old one may end after its successor began).
      if (s !== SubscriptionState.Terminated || this.buddies.get(buddy) !== sub) return;
      this.buddies.delete(buddy);
      this.events.subscriptionState(buddy, 'terminated', ended.reason);
      this.resubscribeLater(buddy, ended.reason, ended.retryAfterS);
    });
    this.buddies.set(buddy, sub);
    // A SUBSCRIBE that fails ends the Subscriber too (the listener above takes it from there).
    void sub.subscribe().catch(() => undefined);
  }

  /**
   * One subscription for the whole buddy list the server keeps (RFC 4662: `Supported:
   * eventlist`): each NOTIFY's RLMI names the buddies and the state of each, with their PIDF.
   */
  watchList(listUri: string): void {
    this.listUri = listUri;
    const target = UserAgent.makeURI(listUri);
    if (!target) return;
    const sub = new Subscriber(this.ua, target, 'presence', {
      expires: EXPIRES,
      extraHeaders: ['Accept: multipart/related, application/rlmi+xml, application/pidf+xml', 'Supported: eventlist'],
    });
    let ended: { reason?: string; retryAfterS?: number } = {};
    sub.delegate = {
      onNotify: (n: Notification) => {
        void n.accept();
        const header = parseSubscriptionState(n.request.getHeader('Subscription-State'));
        if (header?.state === 'active' || header?.state === 'pending') this.listRetry = 0;
        if (header?.state === 'terminated') ended = { ...(header.reason ? { reason: header.reason } : {}), ...(header.retryAfterS !== undefined ? { retryAfterS: header.retryAfterS } : {}) };
        const list = n.request.body ? readListNotify(n.request.getHeader('Content-Type') ?? '', n.request.body) : undefined;
        if (!list) return;
        this.events.listMembers(list.resources.map((r) => r.uri), list.fullState);
        for (const r of list.resources) {
          // noresource: a buddy of another domain, which the server does not watch for us.
          this.events.subscriptionState(r.uri, r.state, r.reason);
          if (r.pidf) this.events.presence(r.uri, readPidf(r.pidf));
        }
      },
    };
    sub.stateChange.addListener((s) => {
      if (s !== SubscriptionState.Terminated || this.list !== sub || this.stopping) return;
      // RFC 6665 §4.1.3, as for the buddies; a list that went (noresource) comes back when saved again.
      const delay = resubscribeDelayMs(ended.reason === 'noresource' ? undefined : ended.reason, ended.retryAfterS, this.listRetry++);
      if (delay !== undefined) setTimeout(() => this.list === sub && !this.stopping && this.connected() && this.watchList(listUri), delay);
    });
    this.list = sub;
    void sub.subscribe().catch(() => undefined);
  }

  unwatch(buddy: string): void {
    const sub = this.buddies.get(buddy);
    this.buddies.delete(buddy);
    this.wanted.delete(buddy);
    const r = this.retries.get(buddy);
    clearTimeout(r?.timer);
    this.retries.delete(buddy);
    void sub?.unsubscribe().catch(() => undefined);
  }

  /** Sends a text; resolves with how the server took it, rejects with its refusal (e.g. `404 Not Found`). */
  sendMessage(to: string, text: string): Promise<Delivery> {
    return new Promise<Delivery>((resolve, reject) => {
      new Messager(this.ua, UserAgent.makeURI(to)!, text, 'text/plain')
        .message({
          requestDelegate: {
            // sip.js answers digest challenges itself; only final answers arrive here.
            onAccept: (res) => resolve(res.message.statusCode === 202 ? 'stored' : 'delivered'),
            onReject: (res) => reject(new Error(`${res.message.statusCode} ${res.message.reasonPhrase}`)),
          },
        })
        .catch((err: Error) => reject(err));
    });
  }

  sendComposing(to: string, state: 'active' | 'idle'): void {
    void new Messager(this.ua, UserAgent.makeURI(to)!, buildIsComposing(state), ISCOMPOSING_TYPE).message().catch(() => undefined);
  }

  /** RFC 3857: who watches me, so pending watchers can be approved. */
  private watchWatchers(): void {
    const sub = new Subscriber(this.ua, UserAgent.makeURI(this.aor)!, 'presence.winfo', { expires: EXPIRES, extraHeaders: ['Accept: application/watcherinfo+xml'] });
    let ended: { reason?: string; retryAfterS?: number } = {};
    sub.delegate = {
      onNotify: (n: Notification) => {
        void n.accept();
        const header = parseSubscriptionState(n.request.getHeader('Subscription-State'));
        if (header?.state === 'active' || header?.state === 'pending') this.winfoRetry = 0;
        if (header?.state === 'terminated') ended = { ...(header.reason ? { reason: header.reason } : {}), ...(header.retryAfterS !== undefined ? { retryAfterS: header.retryAfterS } : {}) };
        if (n.request.body) this.events.winfo(n.request.body);
      },
    };
    sub.stateChange.addListener((s) => {
      if (s !== SubscriptionState.Terminated || this.winfo !== sub || this.stopping) return;
      const delay = resubscribeDelayMs(ended.reason, ended.retryAfterS, this.winfoRetry++);
      if (delay !== undefined) setTimeout(() => this.winfo === sub && !this.stopping && this.connected() && this.watchWatchers(), delay);
    });
    this.winfo = sub;
    void sub.subscribe().catch(() => undefined);
  }

  private retry(buddy: string): { attempt: number; timer?: ReturnType<typeof setTimeout> } {
    let r = this.retries.get(buddy);
    if (!r) this.retries.set(buddy, (r = { attempt: 0 }));
    return r;
  }

  /** RFC 6665 §4.1.3: subscribe again after `reason`, unless it says the answer will not change. */
  private resubscribeLater(buddy: string, reason: string | undefined, retryAfterS: number | undefined): void {
    if (this.stopping || !this.wanted.has(buddy)) return;
    const r = this.retry(buddy);
    const delay = resubscribeDelayMs(reason, retryAfterS, r.attempt++);
    if (delay === undefined) return;
    clearTimeout(r.timer);
    // Without a connection, recover() subscribes everything again once it is back.
    r.timer = setTimeout(() => {
      if (!this.stopping && this.connected() && this.wanted.has(buddy)) this.watch(buddy);
    }, delay);
  }

  private connected(): boolean {
    return this.ua.isConnected();
  }

  private onConnect(): void {
    this.events.connection('connected');
    this.reconnectAttempt = 0;
    if (this.started && !this.stopping) void this.recover();
  }

  private onDisconnect(): void {
    if (this.stopping) return;
    this.events.connection('disconnected');
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.stopping || this.reconnectTimer !== undefined) return;
    const delay = reconnectDelayMs(this.reconnectAttempt++);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.stopping || this.connected()) return;
      this.events.connection('reconnecting');
      this.ua.reconnect().catch(() => {
        this.events.connection('disconnected');
        this.scheduleReconnect();
      });
    }, delay);
  }

  /**
   * Back on a new connection: register the contact again (RFC 7118 §5: it is bound to the
   * connection), publish my status again (sip.js refreshes with SIP-If-Match and starts a
   * new publication on 412, RFC 3903 §6), and subscribe again to everything.
   */
  private async recover(): Promise<void> {
    await this.registerer?.register().catch(() => undefined);
    if (this.lastPublished) await this.publish(this.lastPublished.status, this.lastPublished.note).catch(() => undefined);
    const old = this.winfo;
    this.winfo = undefined;
    void old?.dispose().catch(() => undefined);
    this.watchWatchers();
    if (this.listUri !== undefined) {
      const oldList = this.list;
      this.list = undefined;
      void oldList?.dispose().catch(() => undefined);
      this.watchList(this.listUri);
    }
    for (const [buddy, sub] of [...this.buddies]) {
      this.buddies.delete(buddy);
      void sub.dispose().catch(() => undefined);
    }
    for (const buddy of this.wanted) this.watch(buddy);
  }

  private onMessage(m: Message): void {
    void m.accept();
    const from = `sip:${m.request.from.uri.user ?? ''}@${m.request.from.uri.host}`;
    const type = (m.request.getHeader('Content-Type') ?? 'text/plain').split(';')[0]!.trim().toLowerCase();
    const body = m.request.body ?? '';
    if (type === ISCOMPOSING_TYPE) {
      const c = readIsComposing(body);
      if (c) this.events.composing(from, c.state, c.refresh);
      return;
    }
    if (type.startsWith('text/')) this.events.message(from, body);
  }
}
