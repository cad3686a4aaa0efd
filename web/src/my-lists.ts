/**
 * The user's buddy list kept on the server (/api/me/lists/presence, HTTP Basic with the SIP
 * user name and password; see src/http/me-api.ts), so it is the same on every device. The
 * server serves it as the list sip:<user>+presence@<domain> (RFC 4662), which the page
 * subscribes to once for everyone's presence.
 */
export const BUDDY_LIST = 'presence';

export class MyLists {
  constructor(private readonly user: string, private readonly password: string) {}

  private get auth(): string {
    const bytes = new TextEncoder().encode(`${this.user}:${this.password}`);
    return `Basic ${btoa(String.fromCharCode(...bytes))}`;
  }

  /** The members of the buddy list (empty when none is stored yet). */
  async load(): Promise<string[]> {
    const res = await fetch('/api/me/lists', { headers: { Authorization: this.auth } });
    if (!res.ok) throw new Error(`${res.status} ${res.statusText}`);
    const lists = (await res.json()) as Array<{ name: string; entries: Array<{ uri: string }> }>;
    return lists.find((l) => l.name === BUDDY_LIST)?.entries.map((e) => e.uri) ?? [];
  }

  /** Replaces the buddy list; the server tells the list subscription at once. */
  async save(aors: readonly string[]): Promise<void> {
    const res = await fetch(`/api/me/lists/${BUDDY_LIST}`, {
      method: 'PUT',
      headers: { Authorization: this.auth, 'Content-Type': 'application/json' },
      body: JSON.stringify({ entries: aors.map((uri) => ({ uri })) }),
    });
    if (!res.ok) {
      let why = `${res.status} ${res.statusText}`;
      try {
        why = ((await res.json()) as { error?: string }).error ?? why;
      } catch {
        // the status says it
      }
      throw new Error(why);
    }
  }
}
