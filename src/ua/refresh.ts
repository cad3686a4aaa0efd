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

/**
 * How long to wait before registering (or refreshing subscriptions) again after the
 * connection to the server failed for the `failures`-th time in a row. RFC 5626 §4.5: the
 * first time at once; then min(1800 s, 30 s × 2^(failures−1)), a random 50–100 % of it, so
 * a server that drops every connection is not hammered and many clients do not come back together.
 */
export function flowRecoveryDelayMs(failures: number, random: () => number = Math.random): number {
  if (failures <= 1) return 0;
  const wait = Math.min(1800, 30 * 2 ** Math.min(failures - 2, 10));
  return Math.floor(wait * (0.5 + random() / 2) * 1000);
}
