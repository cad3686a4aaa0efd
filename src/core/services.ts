import type { Logger } from 'pino';
import type { SipRequest, SipResponse } from '../sip/message.js';
import type { Flow } from '../transport/types.js';

/** What a service gets for each request the core hands it. */
export interface RequestContext {
  readonly request: SipRequest;
  readonly flow: Flow;
  /** Child logger carrying the Call-ID. */
  readonly log: Logger;
  /**
   * Who sent the request, when the core's authenticator established it (RFC 3261 §22);
   * undefined while authentication is off or for requests that need none.
   */
  identity?: AuthenticatedIdentity;
  /** Sends a response through the server transaction (once with 1xx, once final). */
  respond(res: SipResponse): void;
  /** Builds and sends a response (RFC 3261 §8.2.6) in one step. */
  reply(
    status: number,
    reason?: string,
    options?: { headers?: Array<[string, string | number]>; body?: Buffer; contentType?: string; toTag?: string },
  ): SipResponse;
}

/** The user a request was authenticated as. */
export interface AuthenticatedIdentity {
  /** Canonical address of record: sip:alice@example.com */
  readonly aor: string;
  readonly username: string;
  /** `digest`: credentials checked on this request; `dialog`: inside a subscription dialog authenticated before. */
  readonly by: 'digest' | 'dialog';
}

/** What the authenticator says about a request before it is dispatched. */
export type AuthDecision =
  | { readonly ok: true; readonly identity?: AuthenticatedIdentity }
  /** Answer this instead of dispatching (401 challenge, 403, 400). */
  | { readonly ok: false; readonly status: number; readonly reason: string; readonly headers?: ReadonlyArray<[string, string | number]> };

/** The core consults it for every new request, before the service (DESIGN: core, step 4). */
export interface RequestAuthenticator {
  authenticate(req: SipRequest, flow: Flow, log: Logger): AuthDecision | Promise<AuthDecision>;
}

/**
 * A service (registrar, presence, messaging...) registers the methods it serves into the
 * core's dispatch table; the core needs no change to gain a service.
 */
export interface SipService {
  readonly name: string;
  readonly methods: readonly string[];
  /** Event packages served (RFC 6665 §8.2.2 Allow-Events). */
  readonly eventPackages?: readonly string[];
  /** Body types understood (OPTIONS Accept). */
  readonly accept?: readonly string[];
  /** Option tags supported (Supported). */
  readonly supported?: readonly string[];
  handle(ctx: RequestContext): void | Promise<void>;
}

/**
 * A service cannot answer now but can soon (a cluster's shared store is out of reach):
 * the core answers 503 with Retry-After (RFC 3261 §21.5.4) rather than let the client wait.
 */
export class ServiceUnavailableError extends Error {
  override name = 'ServiceUnavailableError';
  constructor(
    /** The reason phrase. */
    readonly reason: string,
    readonly retryAfterSeconds: number,
  ) {
    super(reason);
  }
}
