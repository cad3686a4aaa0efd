/** Bounds of a granted duration, in seconds (config presence.*MinExpires / *MaxExpires). */
export interface ExpiryBounds {
  readonly min: number;
  readonly max: number;
  /** Granted when the request names none (RFC 3856 §6.4: 3600 s for presence). */
  readonly fallback: number;
}

export type ExpiresDecision = { readonly ok: true; readonly seconds: number } | { readonly ok: false; readonly minExpires: number };

/** Presence subscriptions and publications last an hour unless asked otherwise (RFC 3856 §6.4). */
export const DEFAULT_PRESENCE_EXPIRES = 3600;

/**
 * The duration to grant (RFC 3903 §6 step 5, RFC 6665 §4.2.1.1): shortened to the maximum,
 * 423 with Min-Expires below the minimum. Zero is kept as zero (removal, unsubscribe, fetch).
 */
export function grantExpires(requested: number | undefined, bounds: ExpiryBounds): ExpiresDecision {
  if (requested === undefined) return { ok: true, seconds: Math.max(bounds.min, Math.min(bounds.fallback, bounds.max)) };
  if (requested === 0) return { ok: true, seconds: 0 };
  if (requested < bounds.min) return { ok: false, minExpires: bounds.min };
  return { ok: true, seconds: Math.min(requested, bounds.max) };
}
