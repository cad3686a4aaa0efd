import type { SipResponse } from '../sip/message.js';
import { randomToken } from '../sip/response.js';
import type { TimerHandle } from '../util/timers.js';
import { TypedEmitter } from './emitter.js';
import { SipRequestError } from './errors.js';
import { flowRecoveryDelayMs, refreshDelayMs } from './refresh.js';
import type { UserAgent } from './user-agent.js';

export interface RegistrationOptions {
  /** Requested binding lifetime in seconds (default 600). */
  readonly expires?: number;
  /** Seconds to wait before trying again after a failed refresh (default 30; Retry-After wins). */
  readonly retrySeconds?: number;
}

export type RegistrationEvents = {
  /** A 2xx: the binding holds for `expires` seconds. */
  registered: (expires: number) => void;
  unregistered: () => void;
  /** A REGISTER failed; a refresh is tried again later unless closed. */
  error: (err: SipRequestError) => void;
  /** The connection the binding was reached through closed; a new REGISTER follows after `delayMs`. */
  flowFailed: (delayMs: number) => void;
};

/**
 * Keeps one binding of the user agent's Contact alive at the registrar (RFC 3261 §10.2):
 * REGISTER with one Call-ID and rising CSeq (§10.2.4), refreshed before it expires,
 * Expires raised to Min-Expires on a 423 (§10.2.8), removed with Expires: 0 on close.
 * Over TCP/TLS the binding is reached only down our connection: when it closes, the
 * binding is sent again at once on a new one, with backoff if that keeps failing (RFC 5626 §4.4.1, §4.5).
 */
export class Registration extends TypedEmitter<RegistrationEvents> {
  private readonly callId: string;
  private readonly fromTag = randomToken();
  private expires: number;
  private timer?: TimerHandle;
  private active = false;
  private closed = false;
  /** Connection losses since the last refresh that went through on a connection that stayed up. */
  private flowFailures = 0;
  private readonly onConnectionLost = (): void => this.flowLost();
  /** Seconds the server granted in its last 2xx. */
  granted = 0;

  constructor(private readonly ua: UserAgent, private readonly options: RegistrationOptions = {}) {
    super();
    this.expires = options.expires ?? 600;
    this.callId = `${randomToken(12)}@reg`;
    ua.on('connectionLost', this.onConnectionLost);
  }

  get registered(): boolean {
    return this.active;
  }

  /** Registers; resolves with the granted lifetime, rejects with the server's refusal. */
  async register(): Promise<number> {
    const res = await this.send(this.expires);
    if (res.status === 423) {
      // §10.2.8: ask again with at least Min-Expires.
      const min = Number.parseInt(res.getHeader('min-expires') ?? '', 10);
      if (Number.isFinite(min) && min > this.expires) {
        this.expires = min;
        return this.register();
      }
    }
    if (res.status < 200 || res.status >= 300) throw this.ua.failure('REGISTER', res);
    this.granted = grantedExpires(res, this.ua.contactUri) ?? this.expires;
    this.active = true;
    this.schedule(refreshDelayMs(this.granted));
    this.emit('registered', this.granted);
    return this.granted;
  }

  /** Removes the binding (Expires: 0) and stops refreshing. */
  async unregister(): Promise<void> {
    this.closed = true;
    this.ua.off('connectionLost', this.onConnectionLost);
    this.ua.timers.cancel(this.timer);
    if (!this.active) return;
    this.active = false;
    await this.send(0);
    this.emit('unregistered');
  }

  private async send(expires: number): Promise<SipResponse> {
    const req = this.ua.createRequest('REGISTER', `sip:${this.ua.domain}`, {
      to: this.ua.aor,
      fromTag: this.fromTag,
      callId: this.callId,
      contact: true,
      headers: [['Expires', expires]],
    });
    const { response } = await this.ua.send(req);
    return response;
  }

  private schedule(ms: number): void {
    this.ua.timers.cancel(this.timer);
    if (this.closed) return;
    // A refresh that fails is reported and tried again; the first register() leaves that to its caller.
    this.timer = this.ua.timers.schedule(ms, () => {
      this.register().then(
        () => {
          this.flowFailures = 0;
        },
        (err: unknown) => {
          if (err instanceof SipRequestError) this.scheduleRetry(err);
        },
      );
    });
  }

  /** The connection our binding lives on closed: register again on a new one (RFC 5626 §4.4.1). */
  private flowLost(): void {
    if (this.closed || !this.active) return;
    const delay = flowRecoveryDelayMs(++this.flowFailures);
    this.ua.log.info({ callId: this.callId, delayMs: delay }, 'connection lost, registering again');
    this.emit('flowFailed', delay);
    this.ua.timers.cancel(this.timer);
    this.timer = this.ua.timers.schedule(delay, () => {
      this.register().catch((err: unknown) => {
        if (err instanceof SipRequestError) this.scheduleRetry(err);
      });
    });
  }

  private scheduleRetry(err: SipRequestError): void {
    this.active = false;
    this.emit('error', err);
    this.schedule((err.retryAfter ?? this.options.retrySeconds ?? 30) * 1000);
  }
}

/** The lifetime the registrar gave our contact: its `expires` param, else the Expires header (§10.2.4). */
function grantedExpires(res: SipResponse, contactUri: string): number | undefined {
  for (const c of res.contacts) {
    if (sameUri(c.uri.raw, contactUri)) {
      const e = c.params.get('expires');
      if (e) return Number.parseInt(e, 10);
    }
  }
  return res.expires;
}

function sameUri(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}
