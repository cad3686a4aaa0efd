import type { Subscription } from './subscription.js';

/** One element of a resource's state as a package writes it, by key (a dialog id, a contact id). */
export interface StateElement {
  /** The element's XML, the same bytes for every watcher. */
  readonly xml: string;
  /** False: ended (a terminated contact); told in a partial NOTIFY, left out of a full one. */
  readonly live: boolean;
}

/** What the next NOTIFY of a subscription carries. */
export interface NextState {
  readonly state: 'full' | 'partial';
  readonly elements: readonly string[];
}

/**
 * Full and partial state for packages whose documents are lists of keyed elements (RFC
 * 4235 §4.1 dialogs, RFC 3680 §5.1 contacts): a subscription's first NOTIFY, and the first
 * after a refresh or a restart, carries the full state; later ones only the elements that
 * changed since the last one, and those that left (`gone` writes them as ended). What was
 * sent is kept per subscription, in memory, bounded by the resource's state.
 */
export class PartialState {
  private readonly sent = new Map<string, Map<string, string>>();

  next(sub: Subscription, current: ReadonlyMap<string, StateElement>, gone: (key: string) => string): NextState {
    const before = this.sent.get(sub.id);
    const now = new Map<string, string>();
    for (const [k, e] of current) if (e.live) now.set(k, e.xml);
    this.sent.set(sub.id, now);
    if (!before) return { state: 'full', elements: [...now.values()] };
    const elements: string[] = [];
    for (const [k, e] of current) if (before.get(k) !== e.xml && (e.live || before.has(k))) elements.push(e.xml);
    for (const k of before.keys()) if (!current.has(k)) elements.push(gone(k));
    return { state: 'partial', elements };
  }

  /** The next NOTIFY carries the full state (a refresh: RFC 4235 §4.1, RFC 3680 §5.1). */
  reset(sub: Subscription): void {
    this.sent.delete(sub.id);
  }
}
