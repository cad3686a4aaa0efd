/**
 * The user's chat rooms through /api/me/rooms (HTTP Basic with the SIP user name and
 * password, as /api/me/rules): list them, join one (a missing room is created), leave one.
 * Messages to and from a room go over SIP (MESSAGE to sip:<room>@<domain>).
 */
export interface RoomView {
  readonly uri: string;
  readonly owner: string;
  readonly topic: string;
  readonly members: readonly string[];
  readonly persistent: boolean;
}

export class MyRooms {
  constructor(
    private readonly user: string,
    private readonly password: string,
  ) {}

  private get auth(): string {
    const bytes = new TextEncoder().encode(`${this.user}:${this.password}`);
    return `Basic ${btoa(String.fromCharCode(...bytes))}`;
  }

  async list(): Promise<RoomView[]> {
    const res = await fetch('/api/me/rooms', { headers: { Authorization: this.auth } });
    if (!res.ok) throw new Error(await errorOf(res));
    return (await res.json()) as RoomView[];
  }

  async join(name: string): Promise<RoomView> {
    const res = await fetch(`/api/me/rooms/${encodeURIComponent(name)}/join`, { method: 'POST', headers: { Authorization: this.auth } });
    if (!res.ok) throw new Error(await errorOf(res));
    return (await res.json()) as RoomView;
  }

  async leave(name: string): Promise<void> {
    const res = await fetch(`/api/me/rooms/${encodeURIComponent(name)}/leave`, { method: 'POST', headers: { Authorization: this.auth } });
    if (!res.ok) throw new Error(await errorOf(res));
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
