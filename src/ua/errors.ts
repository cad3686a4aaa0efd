import type { SipResponse } from '../sip/message.js';

/** What else is known about a failed request. */
export interface SipRequestErrorDetail {
  /** The transport's reason for a local 503 (connection refused, certificate not trusted...). */
  readonly cause?: Error;
  /** Did the user agent have a password? A 401 without one means "give one", not "wrong one". */
  readonly passwordGiven?: boolean;
}

/**
 * A request the server refused or never answered, with what a person needs to act: which
 * server, which request, which status, and a hint.
 */
export class SipRequestError extends Error {
  override name = 'SipRequestError';
  readonly status: number;
  readonly reason: string;
  readonly method: string;
  readonly server: string;
  readonly hint: string;
  /** Seconds the server asked us to wait (Retry-After), when it said. */
  readonly retryAfter?: number;

  constructor(method: string, server: string, response: SipResponse, detail: SipRequestErrorDetail = {}) {
    const hint = hintFor(response.status, method, detail);
    const why = detail.cause ? `: ${detail.cause.message}` : '';
    super(`${method} to ${server} failed: ${response.status} ${response.reason}${why}${hint ? ` (${hint})` : ''}`, detail.cause ? { cause: detail.cause } : undefined);
    this.status = response.status;
    this.reason = response.reason;
    this.method = method;
    this.server = server;
    this.hint = hint;
    const ra = response.getHeader('retry-after');
    const seconds = ra !== undefined ? Number.parseInt(ra, 10) : NaN;
    if (Number.isFinite(seconds) && seconds >= 0) this.retryAfter = seconds;
  }
}

/** Node's codes for a TLS certificate the client would not trust. */
const CERTIFICATE_ERRORS = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** What a status usually means for a client, and what to do about it. */
export function hintFor(status: number, method: string, detail: SipRequestErrorDetail = {}): string {
  switch (status) {
    case 401:
    case 407:
      return detail.passwordGiven === false
        ? 'the server asks for a password: give --password or set SIP_PASSWORD'
        : 'wrong user name or password: check --user and --password';
    case 403:
      return 'the server does not allow this user to do that';
    case 404:
      return 'unknown user: check the address and the domain';
    case 408:
      return 'no answer: is the server running, and are host, port and transport right?';
    case 480:
      return 'the user is not online now';
    case 489:
      return 'the server does not support this event package';
    case 503: {
      const code = (detail.cause as NodeJS.ErrnoException | undefined)?.code;
      if (code !== undefined && CERTIFICATE_ERRORS.has(code)) {
        return "the server's TLS certificate is not trusted: give its CA with --ca FILE, or --insecure to skip the check (testing only)";
      }
      return method === 'REGISTER' || method === 'PUBLISH' || method === 'SUBSCRIBE' || method === 'MESSAGE'
        ? 'server unreachable or overloaded: is it running, and are host, port and transport right?'
        : 'server unavailable';
    }
    default:
      return '';
  }
}
