/**
 * When the page tries again after losing something: the WebSocket connection, or a
 * subscription the server ended. Pure functions (no DOM), so they are tested in Node.
 */

/**
 * Reconnect delays: 0.5 s, 1 s, 2 s, 4 s, 8 s, then every 10 s (a server restart takes a
 * few seconds), each spread by ±25 % so that a restarted server is not hit by every
 * browser in the same millisecond. `random` is in [0, 1).
 */
export function reconnectDelayMs(attempt: number, random: number = Math.random()): number {
  const base = Math.min(500 * 2 ** Math.max(0, attempt), 10_000);
  return Math.round(base * (0.75 + 0.5 * random));
}

/** The parts of a `Subscription-State` header (RFC 6665 §8.2.3). */
export interface SubscriptionStateHeader {
  readonly state: string;
  readonly reason?: string;
  readonly retryAfterS?: number;
  readonly expiresS?: number;
}

export function parseSubscriptionState(value: string | undefined): SubscriptionStateHeader | undefined {
  if (!value) return undefined;
  const [first, ...params] = value.split(';');
  const state = first!.trim().toLowerCase();
  if (!state) return undefined;
  let reason: string | undefined;
  let retryAfterS: number | undefined;
  let expiresS: number | undefined;
  for (const p of params) {
    const eq = p.indexOf('=');
    const name = (eq < 0 ? p : p.slice(0, eq)).trim().toLowerCase();
    const v = eq < 0 ? '' : p.slice(eq + 1).trim();
    if (name === 'reason') reason = v.toLowerCase();
    else if (name === 'retry-after' && /^\d{1,9}$/.test(v)) retryAfterS = Number(v);
    else if (name === 'expires' && /^\d{1,9}$/.test(v)) expiresS = Number(v);
  }
  return { state, ...(reason ? { reason } : {}), ...(retryAfterS !== undefined ? { retryAfterS } : {}), ...(expiresS !== undefined ? { expiresS } : {}) };
}

/**
 * RFC 6665 §4.1.3 (reason codes of RFC 6665 §4.2.2 and RFC 3265 §3.2.4): after a
 * subscription ends, how long to wait before subscribing again, or undefined for never.
 * `attempt` counts the retries in a row, so a server that keeps ending it is not hammered.
 *
 * - deactivated, timeout: "SHOULD re-subscribe" at once (then backing off);
 * - probation, giveup: after retry-after when given, else after a while;
 * - rejected, noresource, invariant: the answer will not change, do not retry;
 * - no or an unknown reason (the subscription failed without a NOTIFY, e.g. 481 to a
 *   refresh after the server lost it): "MAY attempt to re-subscribe at any time".
 */
export function resubscribeDelayMs(reason: string | undefined, retryAfterS: number | undefined, attempt: number): number | undefined {
  const backoff = attempt <= 0 ? 0 : Math.min(1000 * 2 ** (attempt - 1), 60_000);
  switch (reason) {
    case 'rejected':
    case 'noresource':
    case 'invariant':
      return undefined;
    case 'probation':
    case 'giveup':
      return Math.max(retryAfterS !== undefined ? retryAfterS * 1000 : 30_000, backoff);
    default:
      return Math.max(retryAfterS !== undefined ? retryAfterS * 1000 : 0, backoff);
  }
}
