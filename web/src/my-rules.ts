/**
 * The user's own presence rules through /api/me/rules (HTTP Basic with the SIP user name
 * and password; see src/http/me-api.ts): approve a watcher (allow) or block one.
 */
export type RuleAction = 'allow' | 'block' | 'polite-block' | 'confirm';

export class MyRules {
  constructor(private readonly user: string, private readonly password: string) {}

  private get auth(): string {
    const bytes = new TextEncoder().encode(`${this.user}:${this.password}`);
    return `Basic ${btoa(String.fromCharCode(...bytes))}`;
  }

  async set(watcher: string, action: RuleAction): Promise<void> {
    const res = await fetch('/api/me/rules', {
      method: 'PUT',
      headers: { Authorization: this.auth, 'Content-Type': 'application/json' },
      body: JSON.stringify({ watcher, action }),
    });
    if (!res.ok) throw new Error(await errorOf(res));
  }

  async list(): Promise<Array<{ watcher: string; action: RuleAction }>> {
    const res = await fetch('/api/me/rules', { headers: { Authorization: this.auth } });
    if (!res.ok) throw new Error(await errorOf(res));
    return (await res.json()) as Array<{ watcher: string; action: RuleAction }>;
  }
}

async function errorOf(res: Response): Promise<string> {
  try {
    const body = (await res.json()) as { error?: string };
    return body.error ?? `${res.status} ${res.statusText}`;
  } catch {
    return `${res.status} ${res.statusText}`;
  }
}
