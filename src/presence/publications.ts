import { randomToken } from '../sip/response.js';
import type { TimerHandle, Timers, WallClock } from '../util/timers.js';
import type { PresenceDocument } from './presence-documents.js';
import { NO_PRESENCE_STATE_SINK, type PresenceStateSink } from './presence-state-sink.js';
import type { PublicationRecord } from './publication.js';
import { evictionFor, type AppliedDecision, type PublicationDecision, type PublicationStore, type PublicationStoreOptions, type PublicationView } from './publication-store.js';

/** A live publication: its record, its tuple ids and, while it is needed, the parsed document. */
export interface Publication extends PublicationRecord {
  /**
   * The parsed document of a PUBLISH, until the presentity's state is next composed; then
   * only `body` is kept, and read again when the presentity is composed another time
   * (PresenceDocuments.documentOf): a publication is a buffer, not a tree of some 3 KB.
   */
  document?: PresenceDocument;
  /** The ids of its tuples (RFC 3863 §4.1.2): an initial PUBLISH of the same device replaces it. */
  readonly tupleIds: readonly string[];
  /**
   * The flow (transport, source address and port, connection) its last PUBLISH came on,
   * which names the device; in memory only (a stored publication has none).
   */
  readonly origin?: string;
  /** Its expiry on the timer heap, while a Publications store holds it (that store's own). */
  expiryTimer?: TimerHandle;
}

export type PublicationsOptions = Pick<PublicationStoreOptions, 'timers' | 'wallClock' | 'maxPerPresentity' | 'sink' | 'onExpired'>;

/**
 * The event state of every presentity (RFC 3903 §6): many publications a presentity, one
 * a device, each with its own entity-tag and its own expiry on the shared timer heap. The
 * one-process PublicationStore, and a cluster store's copy of what it holds.
 */
export class Publications implements PublicationStore {
  private readonly byEtag = new Map<string, Publication>();
  /**
   * A presentity's publications, in no order: the publication itself when it is the only one
   * (most often), else an array (at most maxPerPresentity, 32 by default). An array of one
   * was two more heap objects for each of 100,000 presentities.
   */
  private readonly byPresentity = new Map<string, Publication | Publication[]>();
  private readonly sink: PresenceStateSink;

  constructor(private readonly options: PublicationsOptions) {
    this.sink = options.sink ?? NO_PRESENCE_STATE_SINK;
  }

  get size(): number {
    return this.byEtag.size;
  }

  /**
   * RFC 3903 §6 step 6 / §10: an entity-tag nobody can guess (128 random bits), unique among
   * the live ones.
   */
  newEtag(): string {
    for (;;) {
      const etag = randomToken(16);
      if (!this.byEtag.has(etag)) return etag;
    }
  }

  /** The live publication with this entity-tag for this presentity (RFC 3903 §6 step 4). */
  get(etag: string, presentity: string): Publication | undefined {
    const p = this.byEtag.get(etag);
    return p && p.presentity === presentity && p.expiresAtMs > this.options.wallClock.nowMs() ? p : undefined;
  }

  /** A presentity's publications, oldest first. */
  of(presentity: string): Publication[] {
    const m = this.byPresentity.get(presentity);
    if (!m) return [];
    if (!Array.isArray(m)) return [m];
    return [...m].sort((a, b) => a.publishedAtMs - b.publishedAtMs);
  }

  count(presentity: string): number {
    const m = this.byPresentity.get(presentity);
    return m === undefined ? 0 : Array.isArray(m) ? m.length : 1;
  }

  presentities(): string[] {
    return [...this.byPresentity.keys()];
  }

  /** In memory, a decision is applied at once: nothing else runs in between. */
  decide<R>(presentity: string, decide: (view: PublicationView) => PublicationDecision<R>): AppliedDecision<R> {
    const d = decide(this.view(presentity));
    for (const etag of d.remove ?? []) this.remove(etag);
    const evicted = d.put ? this.put(d.put, d.replaces) : undefined;
    return { result: d.result, evicted: evicted ? [evicted] : [] };
  }

  /** The presentity's publications as a decision sees them. */
  view(presentity: string): PublicationView {
    const self = this;
    return {
      get: (etag) => this.get(etag, presentity),
      // Sorted only when a decision reads it.
      get all() {
        return self.of(presentity);
      },
    };
  }

  /**
   * Stores a publication; `replaces` is the entity-tag it takes over (refresh and modify
   * give a new one). Returns the publication evicted to stay within the bound, if any.
   */
  put(pub: Publication, replaces?: string): Publication | undefined {
    if (replaces !== undefined) this.drop(replaces);
    const m = this.byPresentity.get(pub.presentity);
    const held = m === undefined ? undefined : Array.isArray(m) ? m : [m];
    const evicted = replaces === undefined && held ? evictionFor(held, held.length, this.options.maxPerPresentity) : undefined;
    if (evicted) this.remove(evicted.etag);
    this.restore(pub);
    this.sink.publicationChanged(toRecord(pub), replaces);
    return evicted;
  }

  /** Removes a publication (RFC 3903 §6 step 5: Expires 0, or expiry). */
  remove(etag: string): Publication | undefined {
    const p = this.drop(etag);
    if (p) this.sink.publicationRemoved(etag);
    return p;
  }

  /** Puts a stored publication back without reporting it to the sink. */
  restore(pub: Publication): void {
    // Its timer, or the one of the publication it replaces under the same entity-tag, is ours to cancel.
    const before = this.byEtag.get(pub.etag);
    if (before) this.cancelExpiry(before);
    this.byEtag.set(pub.etag, pub);
    const m = this.byPresentity.get(pub.presentity);
    if (!m || (!Array.isArray(m) && m.etag === pub.etag)) this.byPresentity.set(pub.presentity, pub);
    else if (!Array.isArray(m)) this.byPresentity.set(pub.presentity, [m, pub]);
    else {
      const at = m.findIndex((x) => x.etag === pub.etag);
      if (at >= 0) m[at] = pub;
      else m.push(pub);
    }
    this.schedule(pub);
  }

  close(): void {
    for (const p of this.byEtag.values()) this.cancelExpiry(p);
  }

  /** Forgets a publication without reporting it (a cluster store's copy follows another node). */
  drop(etag: string): Publication | undefined {
    const p = this.byEtag.get(etag);
    if (!p) return undefined;
    this.byEtag.delete(etag);
    const m = this.byPresentity.get(p.presentity);
    if (m !== undefined && !Array.isArray(m)) {
      if (m.etag === etag) this.byPresentity.delete(p.presentity);
    } else if (m !== undefined) {
      const at = m.findIndex((x) => x.etag === etag);
      if (at >= 0) m.splice(at, 1);
      if (m.length === 1) this.byPresentity.set(p.presentity, m[0]!);
      else if (m.length === 0) this.byPresentity.delete(p.presentity);
    }
    this.cancelExpiry(p);
    return p;
  }

  /** The expiry timer travels with the publication: no map of 100,000 entity-tags beside byEtag. */
  private schedule(pub: Publication): void {
    // A handle copied with the publication's fields (a spread) is another's: replaced, never cancelled.
    const delay = Math.max(0, pub.expiresAtMs - this.options.wallClock.nowMs());
    pub.expiryTimer = this.options.timers.schedule(delay, this.expire, pub);
  }

  /** RFC 3903 §6: a publication not refreshed in time is gone (one function for every timer). */
  private readonly expire = (pub: Publication): void => {
    pub.expiryTimer = undefined;
    if (this.byEtag.get(pub.etag) !== pub) return;
    this.remove(pub.etag);
    this.options.onExpired(pub);
  };

  private cancelExpiry(pub: Publication): void {
    this.options.timers.cancel(pub.expiryTimer);
    pub.expiryTimer = undefined;
  }

}

export function toRecord(p: Publication): PublicationRecord {
  return {
    etag: p.etag,
    presentity: p.presentity,
    contentType: p.contentType,
    body: p.body,
    publishedAtMs: p.publishedAtMs,
    expiresAtMs: p.expiresAtMs,
  };
}
