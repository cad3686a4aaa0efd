/**
 * When to refresh a soft-state grant of `expires` seconds (a registration, publication or
 * subscription): early enough that one lost request and its retransmissions (Timer F,
 * 32 s over UDP) still land before expiry. RFC 6665 §4.1.2.2 and RFC 3903 §4.1 leave the
 * timing to the client; short grants are refreshed at half their life.
 */
export function refreshDelayMs(expires: number): number {
  if (expires <= 0) return 0;
  const seconds = expires > 120 ? expires - 40 : expires / 2;
  return Math.max(1000, Math.floor(seconds * 1000));
}
