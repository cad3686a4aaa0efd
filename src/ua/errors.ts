import type { SipResponse } from '../sip/message.js';

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

  constructor(method: string, server: string, response: SipResponse) {
    const hint = hintFor(response.status, method);
    super(`${method} to ${server} failed: ${response.status} ${response.reason}${hint ? ` (${hint})` : ''}`);
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

/** What a status usually means for a client, and what to do about it. */
export function hintFor(status: number, method: string): string {
  switch (status) {
    case 401:
    case 407:
      return 'wrong user name or password: check --user and --password';
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
    case 503:
      return method === 'REGISTER' || method === 'PUBLISH' || method === 'SUBSCRIBE' || method === 'MESSAGE'
        ? 'server unreachable or overloaded: is it running, and are host, port and transport right?'
        : 'server unavailable';
    default:
      return '';
  }
}
