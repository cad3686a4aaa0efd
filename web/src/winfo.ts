/**
 * Watcher information (RFC 3857, format RFC 3858): who watches my presence and in which
 * state. A `full` document replaces what we know; a `partial` one updates the watchers it
 * names (§4.4), in version order.
 */

const WINFO_NS = 'urn:ietf:params:xml:ns:watcherinfo';

export type WatcherStatus = 'pending' | 'active' | 'waiting' | 'terminated';

export interface Watcher {
  readonly id: string;
  /** The watcher's URI (the element's text). */
  readonly uri: string;
  readonly status: WatcherStatus;
  readonly event: string;
}

export class WatcherList {
  private readonly byId = new Map<string, Watcher>();
  private version = -1;

  /** Applies one NOTIFY body; false when it is stale or not a watcherinfo document. */
  apply(xml: string): boolean {
    const doc = new DOMParser().parseFromString(xml, 'application/xml');
    const root = doc.documentElement;
    if (doc.getElementsByTagName('parsererror').length > 0 || root.namespaceURI !== WINFO_NS || root.localName !== 'watcherinfo') return false;
    const version = Number(root.getAttribute('version') ?? NaN);
    const full = root.getAttribute('state') === 'full';
    if (!full && Number.isFinite(version) && version <= this.version) return false;
    if (Number.isFinite(version)) this.version = version;
    if (full) this.byId.clear();
    for (const w of doc.getElementsByTagNameNS(WINFO_NS, 'watcher')) {
      const id = w.getAttribute('id') ?? '';
      const status = (w.getAttribute('status') ?? 'pending') as WatcherStatus;
      this.byId.set(id, { id, uri: (w.textContent ?? '').trim(), status, event: w.getAttribute('event') ?? '' });
    }
    return true;
  }

  /** One entry per watcher URI: the liveliest state wins (active, then pending/waiting). */
  watchers(): Watcher[] {
    const rank: Record<WatcherStatus, number> = { active: 3, pending: 2, waiting: 1, terminated: 0 };
    const byUri = new Map<string, Watcher>();
    for (const w of this.byId.values()) {
      const had = byUri.get(w.uri);
      if (!had || rank[w.status] > rank[had.status]) byUri.set(w.uri, w);
    }
    return [...byUri.values()].sort((a, b) => a.uri.localeCompare(b.uri));
  }
}
