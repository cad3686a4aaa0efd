import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import type { SipCore } from '../core/sip-core.js';
import { ControlServer } from '../control/control-server.js';
import { StoreAdminOperations, type AdminOperations } from '../control/operations.js';
import { RulesPresenceAuthorizer } from '../presence/authorizer.js';
import type { PresenceService } from '../presence/presence-service.js';
import { PresenceRuleStore } from '../presence/rules/rule-store.js';
import type { RuleAction } from '../presence/rules/rule-types.js';
import type { UserDirectory } from '../registrar/user-directory.js';
import type { LocationStore } from '../registrar/location-store.js';
import type { SipMessage } from '../sip/message.js';
import { SipRequest } from '../sip/message.js';
import type { Store } from '../store/open-store.js';
import { SourceRateLimiter } from '../transport/limits.js';
import type { Flow } from '../transport/types.js';
import { systemWallClock, type WallClock } from '../util/timers.js';
import { DigestAuthenticator } from './digest-authenticator.js';
import { AuthLockout } from './lockout.js';
import { checkRequestCaps, DEFAULT_MESSAGE_CAPS, type CapRefusal, type MessageCaps } from './message-caps.js';
import { NonceManager } from './nonces.js';
import { loadServerSecret } from './server-secret.js';

type AuthSettings = Config['auth'];

const DEFAULT_AUTH: AuthSettings = {
  required: true,
  realm: null,
  algorithms: ['SHA-256', 'MD5'],
  md5OnlyUserAgents: ['baresip', 'sipsak'],
  nonceLifetimeSeconds: 300,
  maxFailuresPerSourceUser: 10,
  maxFailedUsersPerSource: 20,
  maxFailuresPerUser: 20,
  failureWindowSeconds: 300,
  blockSeconds: 300,
  defaultPolicy: 'confirm',
};

export interface SecurityStartOptions {
  readonly core: SipCore;
  readonly presence: PresenceService;
  /** The store, when state is kept in one (accounts and rules live there). */
  readonly store: Store | undefined;
  /** Where the control socket listens; undefined for none. */
  readonly controlSocket?: string;
  /** Where the nonce secret is kept; a new one per run when undefined. */
  readonly dataDir?: string;
  /** The registrar's bindings, so that a deleted account's registrations end with it. */
  readonly location?: AccountBindings;
  /** The nonce secret every node of a cluster shares (else the data directory's, or one for this run). */
  readonly secret?: Buffer;
  /** Where account and rule writes are told to other servers (a cluster), after they take effect here. */
  readonly news?: AccountNews;
}

/** Account and rule writes, told to other servers sharing the database (a cluster's cache news). */
/** Tells a cluster's other nodes of account and rule writes; resolves once they applied them. */
export interface AccountNews {
  rulesChanged(presentity: string, watcher: string): Promise<void>;
  accountChanged(aor: string, deleted: boolean): Promise<void>;
}

/** The part of the location service a deleted account needs. */
export type AccountBindings = Pick<LocationStore, 'decide'>;

/** What `screen` decided about a message before any layer holds state for it. */
export type Screening = { readonly pass: true } | { readonly pass: false; readonly status?: number; readonly reason?: string; readonly headers?: Array<[string, string | number]> };

/**
 * The server's security pieces in one place for the composition root: digest
 * authentication in front of the services, the stored presence rules, accounts as the user
 * directory, per-source rate limiting and message caps, the admin operations and the
 * control channel.
 */
export class ServerSecurity {
  readonly auth: AuthSettings;
  readonly realm: string;
  readonly authorizer: RulesPresenceAuthorizer;
  /** Which users exist: accounts while authentication is on, everyone otherwise. */
  readonly users: UserDirectory;
  /** The admin operations, once the store is open (HTTP admin API, control channel). */
  admin: AdminOperations | undefined;
  authenticator: DigestAuthenticator | undefined;
  /** Failed-digest counting and blocks (metrics read it), while authentication is on. */
  lockout: AuthLockout | undefined;
  private readonly limiter: SourceRateLimiter;
  private readonly caps: MessageCaps;
  private ruleStore: PresenceRuleStore | undefined;
  private store: Store | undefined;
  private control: ControlServer | undefined;
  /** Nonce ages and failure windows read this clock; tests move it. */
  clock: WallClock;
  private readonly wallClock: WallClock = { nowMs: () => this.clock.nowMs() };

  constructor(private readonly config: Config, private readonly log: Logger, clock: WallClock = systemWallClock) {
    this.clock = clock;
    this.auth = { ...DEFAULT_AUTH, ...config.auth };
    this.realm = this.auth.realm ?? config.sip.domain;
    const legacy: RuleAction = config.presence.defaultPolicy === 'open' ? 'allow' : 'confirm';
    this.authorizer = new RulesPresenceAuthorizer({
      rules: () => this.ruleStore,
      // Issue: the presentity's default is `auth.defaultPolicy` (confirm) when authentication is on.
      defaultDecision: this.auth.required ? this.auth.defaultPolicy : legacy,
      requireIdentity: this.auth.required,
    });
    const domain = config.sip.domain.toLowerCase();
    this.users = {
      exists: async (aor) => {
        if (!this.auth.required || !this.store) return true;
        const m = /^sips?:([^@]+)@(.+)$/.exec(aor);
        if (!m || m[2]!.toLowerCase() !== domain) return false;
        return (await this.store.accounts.get(domain, m[1]!)) !== undefined;
      },
    };
    const l = config.limits;
    this.limiter = new SourceRateLimiter(l.rate ?? { requestsPerSecond: 200, burst: 400 });
    this.caps = {
      maxHeaders: l.maxHeaders ?? DEFAULT_MESSAGE_CAPS.maxHeaders,
      maxVias: l.maxVias ?? DEFAULT_MESSAGE_CAPS.maxVias,
      maxUriLength: l.maxUriLength ?? DEFAULT_MESSAGE_CAPS.maxUriLength,
      maxBodySize: l.maxBodySize ?? DEFAULT_MESSAGE_CAPS.maxBodySize,
    };
  }

  /** Wires what needs the store; throws when authentication is required and there is none. */
  async start(options: SecurityStartOptions): Promise<void> {
    this.store = options.store;
    if (options.store) {
      this.ruleStore = new PresenceRuleStore(options.store.db);
      // Decisions from memory: they go on while the database is unreachable.
      await this.ruleStore.preload();
      this.admin = new StoreAdminOperations({
        accounts: options.store.accounts,
        rules: this.ruleStore,
        domain: this.config.sip.domain,
        realm: this.realm,
        database: options.store.db,
        lists: options.store.resourceLists,
        maxListMembers: this.config.presence.maxListMembers ?? 1000,
        effects: {
          listChanged: (uri) => options.presence.lists.storedListChanged(uri),
          rulesChanged: async (p, w) => (await Promise.all([options.news?.rulesChanged(p, w), options.presence.rulesChanged(p, w)]))[1],
          accountDeleted: async (aor) => (await Promise.all([options.news?.accountChanged(aor, true), endAccount(aor, options.presence, options.location)]))[1],
          ...(options.news ? { accountChanged: (aor: string) => options.news!.accountChanged(aor, false) } : {}),
        },
        logger: this.log,
      });
    }
    if (this.auth.required) {
      const store = options.store;
      if (!store) throw new Error('auth.required needs the store (accounts live there): run with a store, or set AUTH_REQUIRED=false');
      const lockout = (this.lockout = new AuthLockout({
        windowMs: this.auth.failureWindowSeconds * 1000,
        blockMs: this.auth.blockSeconds * 1000,
        perSourceUser: this.auth.maxFailuresPerSourceUser,
        usersPerSource: this.auth.maxFailedUsersPerSource,
        perUser: this.auth.maxFailuresPerUser,
      }, this.wallClock));
      this.authenticator = new DigestAuthenticator({
        realm: this.realm,
        domain: this.config.sip.domain.toLowerCase(),
        credentials: { get: (d, u) => store.accounts.get(d, u) },
        nonces: new NonceManager({ secret: options.secret ?? loadServerSecret(options.dataDir, this.log), lifetimeMs: this.auth.nonceLifetimeSeconds * 1000, wallClock: this.wallClock }),
        lockout,
        trustedDialog: (req) => options.presence.dialogWatcher(req),
        algorithms: this.auth.algorithms,
        md5OnlyUserAgents: this.auth.md5OnlyUserAgents,
      });
      options.core.useAuthenticator(this.authenticator);
      this.log.info({ realm: this.realm }, 'digest authentication required');
    } else {
      this.log.warn('authentication is OFF (auth.required=false): anyone may register, publish, subscribe and send as anyone; for development and tests only');
    }
    if (options.controlSocket && this.admin) {
      this.control = new ControlServer(options.controlSocket, this.admin, this.log.child({ component: 'control' }));
      await this.control.start();
    }
  }

  /** Another server changed an account (a cluster): the cache here forgets it; a deleted one's rules go too. */
  async accountChangedElsewhere(aor: string, deleted: boolean): Promise<void> {
    const m = /^sips?:([^@]+)@(.+)$/.exec(aor);
    if (m) this.store?.accounts.forget(m[2]!.toLowerCase(), m[1]!);
    if (deleted) await this.ruleStore?.reloadAll();
  }

  /** Another server changed a rule of `presentity` (a cluster): read again here. */
  async rulesChangedElsewhere(presentity: string): Promise<void> {
    await this.ruleStore?.reload(presentity);
  }

  async stop(): Promise<void> {
    await this.control?.stop();
    this.control = undefined;
  }

  /**
   * Per-source rate limit (503 with Retry-After, RFC 3261 §21.5.4) and message caps (400,
   * 413, 414) for a parsed message, before the transaction layer sees it. Responses pass:
   * they answer our own requests. An ACK is never answered (RFC 3261 §17), only dropped.
   */
  /**
   * Spends one of the source's tokens for something to be answered outside `screen` (a
   * framing error: 513, 400): true while the source is within its rate.
   */
  admitFrom(flow: Flow): boolean {
    return this.limiter.take(flow.remoteAddress) === 0;
  }

  screen(message: SipMessage, flow: Flow): Screening {
    if (!(message instanceof SipRequest)) return { pass: true };
    const waitMs = this.limiter.take(flow.remoteAddress);
    if (waitMs > 0) {
      if (message.method === 'ACK') return { pass: false };
      return { pass: false, status: 503, reason: 'Rate Limit Exceeded', headers: [['Retry-After', Math.max(1, Math.ceil(waitMs / 1000))]] };
    }
    const refusal: CapRefusal | undefined = checkRequestCaps(message, this.caps);
    if (refusal) return message.method === 'ACK' ? { pass: false } : { pass: false, ...refusal };
    return { pass: true };
  }
}

/**
 * A deleted account's live state ends at once (else it would go on watching, and refresh
 * its subscriptions in trusted dialogs, until they expire): its subscriptions as a watcher
 * end with reason=rejected, those to its presentity with reason=noresource (RFC 6665
 * §4.2.2: neither is to be retried), its publications and its registrations are removed.
 */
async function endAccount(aor: string, presence: PresenceService, location: AccountBindings | undefined): Promise<number> {
  // Its subscriptions end and its publications go, so no watcher sees a deleted user's state.
  let ended = presence.accountDeleted(aor);
  if (location) {
    ended += await location.decide(aor, (current) => ({ result: current.length, remove: current.map((b) => b.key) }));
  }
  return ended;
}
