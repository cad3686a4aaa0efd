import type { PresenceRule } from './rule-types.js';

/** A rule's watcher for everyone: the presentity's own default. */
export const ANY_WATCHER = '*';

/**
 * The watcher keys that could name `watcher` (a `sip:user@host` AoR), most specific
 * first: the URI itself, its domain (`*@host`, RFC 5025 §3.1.1 <domain>-like), everyone.
 */
export function watcherKeys(watcher: string): string[] {
  const keys = [watcher];
  const at = watcher.lastIndexOf('@');
  if (at >= 0) keys.push(`*@${watcher.slice(at + 1).toLowerCase()}`);
  keys.push(ANY_WATCHER);
  return keys;
}

/**
 * The most specific rule decides: the watcher's own, then its domain's, then `*`. RFC 5025
 * (RFC 4745 §10.2) instead combines every matching rule and takes the most permissive
 * sub-handling; our rule set reads as the RFC 4745 one whose `<many domain>` and `<many/>`
 * conditions carry an `<except>` for each narrower rule, which gives the same outcome and
 * lets an owner block one watcher of a domain it allows (what the CLI's decisions mean).
 */
export function matchRule(rules: readonly PresenceRule[], watcher: string): PresenceRule | undefined {
  for (const key of watcherKeys(watcher)) {
    const hit = rules.find((r) => r.watcher === key);
    if (hit) return hit;
  }
  return undefined;
}
