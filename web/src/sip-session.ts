import {
  Messager,
  Publisher,
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
  /** A buddy subscription is pending (the buddy has not approved us yet) or ended. */
  subscriptionState(buddy: string, state: 'pending' | 'active' | 'terminated'): void;
  message(from: string, text: string): void;
  composing(from: string, state: 'active' | 'idle', refreshS: number): void;
  winfo(body: string): void;
  connection(state: 'connected' | 'disconnected'): void;
}

/** Expiry we ask for registrations, publications and subscriptions (s). */
const EXPIRES = 600;

function randomId(prefix: string): string {
  return `${prefix}${Math.random().toString(36).slice(2, 10)}`;
}

/**
 * One logged-in user over sip.js: REGISTER (so MESSAGEs reach us, RFC 3428), PUBLISH of my
 * PIDF (RFC 3903), SUBSCRIBE to each buddy's presence (RFC 3856) and to my own watcher
 * information (RFC 3857), MESSAGE both ways with RFC 3994 composing indications.
 */
export class SipSession {
  readonly aor: string;
  private readonly ua: UserAgent;
  private registerer?: Registerer;
  private publisher?: Publisher;
  private winfo?: Subscriber;
  private readonly buddies = new Map<string, Subscriber>();
  private readonly ids = { tuple: randomId('t'), person: randomId('p') };

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
        onConnect: () => events.connection('connected'),
        onDisconnect: () => events.connection('disconnected'),
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
    this.watchWatchers();
  }

  async stop(): Promise<void> {
    for (const s of this.buddies.values()) await s.unsubscribe().catch(() => undefined);
    await this.winfo?.unsubscribe().catch(() => undefined);
    await this.publisher?.unpublish().catch(() => undefined);
    if (this.registerer?.state === RegistererState.Registered) await this.registerer.unregister().catch(() => undefined);
    if (this.ua.state === UserAgentState.Started) await this.ua.stop();
  }

  /** Publishes my status and note (a new publication the first time, then modifies, RFC 3903 §4). */
  async publish(status: MyStatus, note: string): Promise<void> {
    const body = buildPidf(this.aor, status, note, this.ids);
    if (!this.publisher) {
      this.publisher = new Publisher(this.ua, UserAgent.makeURI(this.aor)!, 'presence', { expires: EXPIRES, contentType: 'application/pidf+xml', unpublishOnClose: true });
    }
    await this.publisher.publish(body);
  }

  watch(buddy: string): void {
    if (this.buddies.has(buddy)) return;
    const target = UserAgent.makeURI(buddy);
    if (!target) return;
    const sub = new Subscriber(this.ua, target, 'presence', { expires: EXPIRES, extraHeaders: ['Accept: application/pidf+xml'] });
    sub.delegate = {
      onNotify: (n: Notification) => {
        void n.accept();
        const state = (n.request.getHeader('Subscription-State') ?? '').split(';')[0]!.trim().toLowerCase();
        if (state === 'pending' || state === 'active' || state === 'terminated') this.events.subscriptionState(buddy, state);
        if (n.request.body) this.events.presence(buddy, readPidf(n.request.body));
      },
    };
    sub.stateChange.addListener((s) => {
      if (s === SubscriptionState.Terminated) {
        this.buddies.delete(buddy);
        this.events.subscriptionState(buddy, 'terminated');
      }
    });
    this.buddies.set(buddy, sub);
    void sub.subscribe().catch(() => this.events.subscriptionState(buddy, 'terminated'));
  }

  unwatch(buddy: string): void {
    const sub = this.buddies.get(buddy);
    this.buddies.delete(buddy);
    void sub?.unsubscribe().catch(() => undefined);
  }

  async sendMessage(to: string, text: string): Promise<void> {
    await new Messager(this.ua, UserAgent.makeURI(to)!, text, 'text/plain').message();
  }

  sendComposing(to: string, state: 'active' | 'idle'): void {
    void new Messager(this.ua, UserAgent.makeURI(to)!, buildIsComposing(state), ISCOMPOSING_TYPE).message().catch(() => undefined);
  }

  /** RFC 3857: who watches me, so pending watchers can be approved. */
  private watchWatchers(): void {
    const sub = new Subscriber(this.ua, UserAgent.makeURI(this.aor)!, 'presence.winfo', { expires: EXPIRES, extraHeaders: ['Accept: application/watcherinfo+xml'] });
    sub.delegate = {
      onNotify: (n: Notification) => {
        void n.accept();
        if (n.request.body) this.events.winfo(n.request.body);
      },
    };
    this.winfo = sub;
    void sub.subscribe().catch(() => undefined);
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
