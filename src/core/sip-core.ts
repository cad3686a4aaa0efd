import type { Logger } from 'pino';
import { SipParseError } from '../sip/errors.js';
import type { SipRequest, SipResponse } from '../sip/message.js';
import { createResponse } from '../sip/response.js';
import type { Flow } from '../transport/types.js';
import { ServiceUnavailableError, type RequestAuthenticator, type RequestContext, type SipService } from './services.js';

/** Methods of RFC 3261 and its extensions: known but not served gives 405, unknown gives 501. */
const KNOWN_METHODS = new Set([
  'INVITE', 'ACK', 'CANCEL', 'BYE', 'REGISTER', 'OPTIONS', 'INFO', 'PRACK', 'UPDATE',
  'SUBSCRIBE', 'NOTIFY', 'PUBLISH', 'MESSAGE', 'REFER',
]);

/** Option tags we understand in Require (RFC 3261 §8.2.2.3). */
const BASE_SUPPORTED: readonly string[] = [];

/**
 * Watches requests as the core routes them (metrics): every new request, and each
 * response sent for it with the time since the core got the request.
 */
export interface SipCoreObserver {
  requestReceived(req: SipRequest, flow: Flow): void;
  responseSent(req: SipRequest, res: SipResponse, elapsedMs: number): void;
}

/** The server transaction as the core sees it. */
export interface IncomingTransaction {
  readonly request: SipRequest;
  readonly flow: Flow;
  /**
   * For a CANCEL: the INVITE server transaction it matched (RFC 3261 §9.2, matching of
   * §17.2.3 with the method taken as INVITE), when that transaction is still live.
   */
  readonly cancelTarget?: object;
  respond(res: SipResponse): void;
}

/**
 * Routes each new request to its service: Max-Forwards, Require and method checks,
 * OPTIONS, and 400 for headers that fail to parse when a service reads them.
 */
export class SipCore {
  private readonly table = new Map<string, SipService>();
  private readonly services: SipService[] = [];
  private readonly observers: SipCoreObserver[] = [];
  private authenticator?: RequestAuthenticator;
  private draining = false;

  constructor(private readonly log: Logger) {}

  /** RFC 3261 §22: credentials are checked before a service sees the request. */
  useAuthenticator(authenticator: RequestAuthenticator | undefined): void {
    this.authenticator = authenticator;
  }

  observe(observer: SipCoreObserver): void {
    this.observers.push(observer);
  }

  register(service: SipService): void {
    for (const m of service.methods) {
      const method = m.toUpperCase();
      if (this.table.has(method)) throw new Error(`method ${method} already served by ${this.table.get(method)!.name}`);
      this.table.set(method, service);
    }
    this.services.push(service);
  }

  get allow(): string[] {
    return ['OPTIONS', ...this.table.keys()].filter((m, i, a) => a.indexOf(m) === i);
  }

  get allowEvents(): string[] {
    return this.services.flatMap((s) => s.eventPackages ?? []);
  }

  get accept(): string[] {
    return [...new Set(this.services.flatMap((s) => s.accept ?? []))];
  }

  get supported(): string[] {
    return [...new Set([...BASE_SUPPORTED, ...this.services.flatMap((s) => s.supported ?? [])])];
  }

  handle(txn: IncomingTransaction): void {
    const req = txn.request;
    let callId: string | undefined;
    try {
      callId = req.callId;
    } catch {
      callId = undefined;
    }
    const log = this.log.child({ callId });
    let answered = false;
    const observers = this.observers;
    const startedAt = observers.length > 0 ? performance.now() : 0;
    for (const o of observers) o.requestReceived(req, txn.flow);
    const ctx: RequestContext = {
      request: req,
      flow: txn.flow,
      log,
      respond: (res) => {
        if (res.status >= 200) answered = true;
        txn.respond(res);
        for (const o of observers) o.responseSent(req, res, performance.now() - startedAt);
      },
      reply: (status, reason, options) => {
        const res = createResponse(req, status, reason, options);
        ctx.respond(res);
        return res;
      },
    };
    if (req.method === 'ACK') return; // RFC 3261 §17.2.3: an ACK never gets a response

    const fail = (err: unknown): void => {
      if (answered) {
        log.error({ err }, 'service failed after answering');
        return;
      }
      if (err instanceof SipParseError) {
        log.debug({ reason: err.reason, peer: `${txn.flow.remoteAddress}:${txn.flow.remotePort}` }, 'malformed request');
        ctx.reply(err.status, err.reason);
      } else if (err instanceof ServiceUnavailableError) {
        log.warn({ reason: err.reason, method: req.method }, 'service unavailable for now');
        ctx.reply(503, err.reason, { headers: [['Retry-After', err.retryAfterSeconds]] });
      } else {
        log.error({ err, method: req.method }, 'request handling failed');
        ctx.reply(500, 'Server Internal Error');
      }
    };
    try {
      const pending = this.route(ctx, txn.cancelTarget !== undefined);
      if (pending) pending.catch(fail);
    } catch (err) {
      fail(err);
    }
  }

  /** Graceful stop: new requests are refused with 503 while those in flight finish. */
  drain(): void {
    this.draining = true;
  }

  private route(ctx: RequestContext, cancelMatched: boolean): void | Promise<void> {
    const req = ctx.request;
    // RFC 3261 §21.5.4: shutting down; the client may retry elsewhere or later.
    if (this.draining && req.method !== 'ACK' && req.method !== 'CANCEL') {
      ctx.reply(503, 'Service Unavailable', { headers: [['Retry-After', 5]] });
      return;
    }
    // RFC 3261 §16.3 step 3: Max-Forwards 0 gets 483, except OPTIONS, which the element
    // may answer itself (§11; RFC 4475 §3.3.11).
    const mf = req.maxForwards;
    if (mf === 0 && req.method !== 'OPTIONS') {
      ctx.reply(483, 'Too Many Hops');
      return;
    }
    // RFC 3261 §8.2.2.3: Require with option tags we do not support.
    // Tags compared without case; Unsupported names them as the client wrote them.
    const required = req.getHeaders('require').filter((t) => t.length > 0);
    if (required.length > 0 && req.method !== 'CANCEL') {
      const supported = new Set(this.supported.map((t) => t.toLowerCase()));
      const unsupported = required.filter((t) => !supported.has(t.toLowerCase()));
      if (unsupported.length > 0) {
        ctx.reply(420, 'Bad Extension', { headers: [['Unsupported', unsupported.join(', ')]] });
        return;
      }
    }
    const service = this.table.get(req.method);
    if (service) {
      if (!this.authenticator) return service.handle(ctx);
      return this.authenticated(ctx, service, this.authenticator);
    }
    switch (req.method) {
      case 'OPTIONS':
        this.options(ctx);
        return;
      case 'CANCEL':
        // RFC 3261 §9.2: "as long as the CANCEL matched an existing transaction, the UAS
        // answers the CANCEL request itself with a 200 (OK)"; the INVITE already has its
        // final response (405), so the CANCEL changes nothing else. No match: 481.
        if (cancelMatched) ctx.reply(200, 'OK');
        else ctx.reply(481, 'Call/Transaction Does Not Exist');
        return;
      default:
        if (KNOWN_METHODS.has(req.method)) ctx.reply(405, 'Method Not Allowed', { headers: [['Allow', this.allow.join(', ')]] });
        else ctx.reply(501, 'Not Implemented', { headers: [['Allow', this.allow.join(', ')]] });
    }
  }

  private async authenticated(ctx: RequestContext, service: SipService, authenticator: RequestAuthenticator): Promise<void> {
    const decision = await authenticator.authenticate(ctx.request, ctx.flow, ctx.log);
    if (!decision.ok) {
      ctx.reply(decision.status, decision.reason, { headers: [...(decision.headers ?? [])] });
      return;
    }
    if (decision.identity) ctx.identity = decision.identity;
    return service.handle(ctx);
  }

  /** RFC 3261 §11.2: what we can do. */
  private options(ctx: RequestContext): void {
    const headers: Array<[string, string]> = [['Allow', this.allow.join(', ')]];
    const accept = this.accept;
    // Empty lists are left out rather than sent empty (Allow-Events needs at least one package).
    if (accept.length > 0) headers.push(['Accept', accept.join(', ')]);
    headers.push(['Accept-Encoding', 'identity']);
    headers.push(['Accept-Language', 'en']);
    if (this.supported.length > 0) headers.push(['Supported', this.supported.join(', ')]);
    if (this.allowEvents.length > 0) headers.push(['Allow-Events', this.allowEvents.join(', ')]);
    ctx.reply(200, 'OK', { headers });
  }
}
