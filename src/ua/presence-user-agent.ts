import { parsePidf } from '../presence/pidf/parse-pidf.js';
import type { SipResponse } from '../sip/message.js';
import type { TimerHandle } from '../util/timers.js';
import { TypedEmitter } from './emitter.js';
import { SipRequestError } from './errors.js';
import { buildPidf, newPidfIds, type PidfIds, type PresenceState } from './presence-state.js';
import { refreshDelayMs } from './refresh.js';
import type { UserAgent } from './user-agent.js';

export const PIDF_CONTENT_TYPE = 'application/pidf+xml';

export interface PresenceUserAgentOptions {
  /** Requested publication lifetime in seconds (default 3600). */
  readonly expires?: number;
  /** Seconds before trying again after a failed refresh (default 30; Retry-After wins). */
  readonly retrySeconds?: number;
}

/** A publication the server holds for us (RFC 3903 §4.1). */
export interface Publication {
  /** SIP-ETag of the current version. */
  readonly etag: string;
  /** Seconds the server granted. */
  readonly expires: number;
}

export type PresenceUserAgentEvents = {
  /** Initial publication, modification or refresh accepted. */
  published: (p: Publication) => void;
  /** The publication was removed (close) or lost for good. */
  unpublished: () => void;
  /** A background refresh failed (a refusal: SipRequestError; a broken answer: Error); it is tried again later. */
  error: (err: Error) => void;
};

/**
 * The presence user agent (RFC 3903 §4, RFC 3856 §6): publishes one presence state of the
 * user and keeps it alive. Refreshes go without a body before the entity-tag expires
 * (§4.4); a 412 means the server lost it, so the state is published afresh (§4.4, §6);
 * a 423 raises Expires to Min-Expires (§4.1); close() removes it (Expires: 0, §4.6).
 * Operations run one at a time, in order.
 */
export class PresenceUserAgent extends TypedEmitter<PresenceUserAgentEvents> {
  private readonly ids: PidfIds = newPidfIds();
  private expires: number;
  private etag?: string;
  private body?: string;
  private timer?: TimerHandle;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(private readonly ua: UserAgent, private readonly options: PresenceUserAgentOptions = {}) {
    super();
    this.expires = options.expires ?? 3600;
  }

  /** The current publication, when the server holds one. */
  get publication(): Publication | undefined {
    return this.etag !== undefined ? { etag: this.etag, expires: this.expires } : undefined;
  }

  /**
   * Publishes a new state: the initial PUBLISH, or a modification of the live one with
   * SIP-If-Match (§4.5). Rejects with a SipRequestError when the server refuses it.
   */
  publish(state: PresenceState): Promise<Publication> {
    const body = buildPidf(this.ua.aor, state, this.ids);
    const check = parsePidf(body);
    if (!check.ok) return Promise.reject(new Error(`not a valid PIDF document: ${check.reason}`));
    return this.serially(async () => {
      if (this.closed) throw new Error('PresenceUserAgent is closed');
      this.body = body;
      return this.sendPublish(true);
    });
  }

  /** Removes the publication (Expires: 0) and stops refreshing. */
  close(): Promise<void> {
    this.closed = true;
    this.ua.timers.cancel(this.timer);
    return this.serially(async () => {
      if (this.etag === undefined) return;
      const req = this.ua.createRequest('PUBLISH', this.ua.aor, {
        headers: [['Event', 'presence'], ['Expires', 0], ['SIP-If-Match', this.etag]],
      });
      this.etag = undefined;
      await this.ua.send(req);
      this.emit('unpublished');
    });
  }

  private serially<T>(op: () => Promise<T>): Promise<T> {
    const next = this.queue.then(op, op);
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** One PUBLISH: with the body (initial or modify) or without (refresh), following 412 and 423. */
  private async sendPublish(withBody: boolean, rounds = 0): Promise<Publication> {
    const headers: Array<[string, string | number]> = [['Event', 'presence'], ['Expires', this.expires]];
    if (this.etag !== undefined) headers.push(['SIP-If-Match', this.etag]);
    const req = this.ua.createRequest('PUBLISH', this.ua.aor, {
      headers,
      ...(withBody || this.etag === undefined ? { body: this.body ?? '', contentType: PIDF_CONTENT_TYPE } : {}),
    });
    const { response } = await this.ua.send(req);
    if (response.status === 412 && rounds < 2) {
      // §4.4: the server does not know our entity-tag (expired, or it restarted): start anew.
      this.ua.log.debug({ callId: req.callId }, 'publication unknown to the server (412), publishing afresh');
      this.etag = undefined;
      return this.sendPublish(true, rounds + 1);
    }
    if (response.status === 423 && rounds < 2) {
      const min = minExpires(response);
      if (min !== undefined && min > this.expires) {
        this.expires = min;
        return this.sendPublish(withBody, rounds + 1);
      }
    }
    if (response.status < 200 || response.status >= 300) throw this.ua.failure('PUBLISH', response);
    const etag = response.getHeader('sip-etag');
    if (etag === undefined) throw new Error(`PUBLISH to ${this.ua.serverName}: ${response.status} without SIP-ETag (RFC 3903 §6 requires one)`);
    this.etag = etag.trim();
    const granted = response.expires ?? this.expires;
    this.schedule(refreshDelayMs(granted));
    const pub = { etag: this.etag, expires: granted };
    this.emit('published', pub);
    return pub;
  }

  private schedule(ms: number): void {
    this.ua.timers.cancel(this.timer);
    if (this.closed) return;
    this.timer = this.ua.timers.schedule(ms, () => {
      this.serially(() => this.sendPublish(false)).catch((err: unknown) => {
        if (this.closed) return;
        const e = err instanceof Error ? err : new Error(String(err));
        this.emit('error', e);
        // Try again later (a refresh must never stop for good while we are open); the next
        // attempt publishes the state afresh if the entity-tag is gone.
        const retryAfter = e instanceof SipRequestError ? e.retryAfter : undefined;
        this.schedule((retryAfter ?? this.options.retrySeconds ?? 30) * 1000);
      });
    });
  }
}

function minExpires(res: SipResponse): number | undefined {
  const v = Number.parseInt(res.getHeader('min-expires') ?? '', 10);
  return Number.isFinite(v) ? v : undefined;
}
