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
 * RFC 5025 combines matching rules by the most permissive action; we use the most specific
 * rule instead, so that an owner can block one watcher of a domain it otherwise allows
 * (and allow one of a domain it blocks), which is what the CLI's decisions mean.
 */
export function matchRule(rules: readonly PresenceRule[], watcher: string): PresenceRule | undefined {
  for (const key of watcherKeys(watcher)) {
    const hit = rules.find((r) => r.watcher === key);
    if (hit) return hit;
  }
  return undefined;
}
