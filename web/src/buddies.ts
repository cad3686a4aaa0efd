/**
 * The buddy list as earlier versions kept it, in this browser (localStorage) per logged-in
 * user: read once to move it onto the server (my-lists.ts), then cleared.
 */
export class BuddyStore {
  private readonly key: string;

  constructor(aor: string) {
    this.key = `simple-presence:buddies:${aor}`;
  }

  load(): string[] {
    try {
      const v = JSON.parse(localStorage.getItem(this.key) ?? '[]') as unknown;
      return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
    } catch {
      return [];
    }
  }

  save(list: readonly string[]): void {
    localStorage.setItem(this.key, JSON.stringify([...list]));
  }

  clear(): void {
    localStorage.removeItem(this.key);
  }
}

/** `bob`, `bob@example.com` or `sip:bob@example.com` as a SIP AoR; undefined when it is none. */
export function toAor(text: string, domain: string): string | undefined {
  const t = text.trim().replace(/^sips?:/i, '');
  if (!t) return undefined;
  const [user, host] = t.includes('@') ? [t.slice(0, t.indexOf('@')), t.slice(t.indexOf('@') + 1)] : [t, domain];
  if (!/^[A-Za-z0-9._~+-]{1,64}$/.test(user) || !/^[A-Za-z0-9.-]{1,253}$|^\[[0-9A-Fa-f:.]+\]$/.test(host)) return undefined;
  return `sip:${user}@${host.toLowerCase()}`;
}
