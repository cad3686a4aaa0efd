import { isSipUri } from '../sip/uri.js';
import type { Logger } from 'pino';
import type { LocalDomains } from '../core/local-domains.js';
import type { RequestContext, SipService } from '../core/services.js';
import { canonicalAor } from './aor.js';
import { formatBindingContact, type Binding, type BindingFlow } from './binding.js';
import type { LocationStore } from './location-store.js';
import { readPath, readRegister, readUserAgent } from './register-request.js';
import { planRegistration, type RegistrarSettings, type RegistrationPlan } from './registration-plan.js';
import { OPEN_USER_DIRECTORY, type UserDirectory } from './user-directory.js';

export interface RegistrarServiceOptions {
  readonly location: LocationStore;
  readonly domains: LocalDomains;
  readonly settings: RegistrarSettings;
  /** Who exists (the auth issue's hook); every user of the domain by default. */
  readonly users?: UserDirectory;
  readonly logger?: Logger;
}

/** Told after the 200 to a REGISTER that added or refreshed bindings of `aor`. */
export type RegistrationListener = (aor: string, bindings: readonly Binding[]) => void;

/**
 * The registrar (RFC 3261 §10.3): REGISTER adds, refreshes, removes and lists bindings
 * in the location service. Path (RFC 3327) is stored as the route set towards the contact.
 */
export class RegistrarService implements SipService {
  readonly name = 'registrar';
  readonly methods = ['REGISTER'] as const;
  /** RFC 3327 §5.3. */
  readonly supported = ['path'] as const;
  private readonly location: LocationStore;
  private readonly domains: LocalDomains;
  private readonly settings: RegistrarSettings;
  private readonly users: UserDirectory;
  private readonly log?: Logger;
  private readonly listeners: RegistrationListener[] = [];

  constructor(options: RegistrarServiceOptions) {
    this.location = options.location;
    this.domains = options.domains;
    this.settings = options.settings;
    this.users = options.users ?? OPEN_USER_DIRECTORY;
    this.log = options.logger;
  }

  /** Registers a listener (offline message delivery, presence...). */
  onRegistered(listener: RegistrationListener): void {
    this.listeners.push(listener);
  }

  async handle(ctx: RequestContext): Promise<void> {
    const req = ctx.request;
    // §10.3 step 1: the Request-URI names the domain of the location service. We serve
    // ours only and do not forward: §21.4.5, 404 when the domain is not one we handle.
    const ruri = req.uri;
    if (ruri.scheme === 'tel' || !this.domains.has(ruri.host)) {
      ctx.reply(404, 'Domain Not Served');
      return;
    }
    // RFC 4475 §3.3.4 (unksm2): a To that is not a SIP URI cannot be an AoR of ours.
    if (!isSipUri(req.to.uri)) {
      ctx.reply(400, 'Bad To: not a SIP URI');
      return;
    }
    // §10.3 step 5: the AoR is the To URI; 404 when it is not valid for the domain.
    const aor = canonicalAor(req.to.uri, this.domains);
    if (aor === undefined) {
      ctx.reply(404, 'Not Found');
      return;
    }
    // §10.3 step 6: the authenticated user may change its own bindings only (no third-party registration).
    if (ctx.identity && ctx.identity.aor !== aor) {
      ctx.log.info({ identity: ctx.identity.aor, aor }, 'REGISTER for another user refused');
      ctx.reply(403, 'Forbidden');
      return;
    }
    const callId = req.callId;
    const cseq = req.cseq.seq;
    const action = readRegister(req, this.settings.defaultExpires, this.settings.maxContactsPerAor);
    const path = action.kind === 'update' ? readPath(req) : [];
    const userAgent = readUserAgent(req);
    if (!(await this.users.exists(aor))) {
      ctx.reply(404, 'Not Found');
      return;
    }

    // The change is decided on the AoR's current bindings and applied as one step (LocationStore.decide).
    const nowMs = this.location.wallClock.nowMs();
    const f = ctx.flow;
    const flow: BindingFlow = {
      protocol: f.protocol,
      remoteAddress: f.remoteAddress,
      remotePort: f.remotePort,
      localAddress: f.localAddress,
      localPort: f.localPort,
      ...(f.connectionId !== undefined ? { connectionId: f.connectionId } : {}),
    };
    const deciding = this.location.decide<RegistrationPlan>(aor, (current) => {
      const p = planRegistration(current, action, { aor, callId, cseq, nowMs, flow, path, userAgent }, this.settings);
      return p.ok ? { result: p, put: p.put, remove: p.remove } : { result: p };
    });
    const plan = deciding instanceof Promise ? await deciding : deciding;
    if (!plan.ok) {
      ctx.reply(plan.status, plan.reason, { headers: plan.headers });
      return;
    }

    // §10.3 step 8: the 200 lists every current binding with its remaining expiry, and a Date.
    const headers: Array<[string, string]> = plan.result.map((b) => ['Contact', formatBindingContact(b, nowMs)]);
    // RFC 3327 §5.3: Path is echoed to a UA that said it supports it.
    const uaSupportsPath = req.getHeaders('supported').some((t) => t.toLowerCase() === 'path');
    if (uaSupportsPath) for (const p of path) headers.push(['Path', p]);
    headers.push(['Date', new Date(nowMs).toUTCString()]);
    ctx.reply(200, 'OK', { headers });
    if (plan.put.length > 0) {
      ctx.log.debug({ aor, added: plan.put.length, removed: plan.remove.length }, 'registered');
      for (const l of this.listeners) {
        try {
          l(aor, plan.result);
        } catch (err) {
          this.log?.error({ err, aor }, 'registration listener failed');
        }
      }
    }
  }
}
