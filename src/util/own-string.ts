/**
 * A copy of `s` in memory of its own. Strings cut out of a parsed message (header values,
 * URIs, tags) are slices that keep the whole message text alive: a binding or a dialog kept
 * for an hour would hold its REGISTER or SUBSCRIBE, a few hundred bytes each, which with
 * 100,000 held connections is tens of megabytes. Used for what lives as long as a binding
 * or a subscription.
 */
export function ownString(s: string): string {
  // JSON.parse makes a new string (V8 copies, or slices the JSON text, which is `s` alone).
  return JSON.parse(JSON.stringify(s)) as string;
}

/** ownString for an optional value. */
export function ownOptional(s: string | undefined): string | undefined {
  return s === undefined ? undefined : ownString(s);
}
