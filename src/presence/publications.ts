import { randomToken } from '../sip/response.js';
import type { TimerHandle, Timers, WallClock } from '../util/timers.js';
import type { PresenceDocument } from './presence-documents.js';
import { NO_PRESENCE_STATE_SINK, type PresenceStateSink } from './presence-state-sink.js';
import type { PublicationRecord } from './publication.js';

/** A live publication: its record, its tuple ids and, while it is needed, the parsed document. */
export interface Publication extends PublicationRecord {
  /**
   * The parsed document, kept while someone watches the presentity; otherwise it is read
   * again from `body` when first composed (PresenceDocuments.documentOf), so that thousands
   * of unwatched publications are a buffer each, not trees the garbage collector walks.
   */
  document?: PresenceDocument;
  /** The ids of its tuples (RFC 3863 §4.1.2): an initial PUBLISH of the same device replaces it. */
  readonly tupleIds: readonly string[];
  /**
   * The flow (transport, source address and port, connection) its last PUBLISH came on,
   * which names the device; in memory only (a stored publication has none).
   */
  readonly origin?: string;
}

export interface PublicationsOptions {
  readonly timers: Timers;
  readonly wallClock: WallClock;
  readonly maxPerPresentity: number;
  readonly sink?: PresenceStateSink;
  /** A publication expired (the presentity's composed state must be built again). */
  readonly onExpired: (publication: Publication) => void;
}

/**
 * The event state of every presentity (RFC 3903 §6): many publications a presentity, one
 * a device, each with its own entity-tag and its own expiry on the shared timer heap.
 */
export class Publications {
  private readonly byEtag = new Map<string, Publication>();
  private readonly byPresentity = new Map<string, Map<string, Publication>>();
  private readonly expiry = new Map<string, TimerHandle>();
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
    return [...m.values()].sort((a, b) => a.publishedAtMs - b.publishedAtMs);
  }

  count(presentity: string): number {
    return this.byPresentity.get(presentity)?.size ?? 0;
  }

  presentities(): string[] {
    return [...this.byPresentity.keys()];
  }

  /**
   * Stores a publication; `replaces` is the entity-tag it takes over (refresh and modify
   * give a new one). Returns the publication evicted to stay within the bound, if any.
   */
  put(pub: Publication, replaces?: string): Publication | undefined {
    if (replaces !== undefined) this.drop(replaces);
    let evicted: Publication | undefined;
    // The bound: the publication closest to expiry (the least recently refreshed) gives
    // way, so a device that restarts without removing its state cannot lock the others out.
    if (replaces === undefined && this.count(pub.presentity) >= this.options.maxPerPresentity) {
      for (const p of this.byPresentity.get(pub.presentity)!.values()) if (!evicted || p.expiresAtMs < evicted.expiresAtMs) evicted = p;
      if (evicted) this.remove(evicted.etag);
    }
    this.byEtag.set(pub.etag, pub);
    let m = this.byPresentity.get(pub.presentity);
    if (!m) this.byPresentity.set(pub.presentity, (m = new Map()));
    m.set(pub.etag, pub);
    this.schedule(pub);
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
    this.byEtag.set(pub.etag, pub);
    let m = this.byPresentity.get(pub.presentity);
    if (!m) this.byPresentity.set(pub.presentity, (m = new Map()));
    m.set(pub.etag, pub);
    this.schedule(pub);
  }

  close(): void {
    for (const t of this.expiry.values()) this.options.timers.cancel(t);
    this.expiry.clear();
  }

  private drop(etag: string): Publication | undefined {
    const p = this.byEtag.get(etag);
    if (!p) return undefined;
    this.byEtag.delete(etag);
    const m = this.byPresentity.get(p.presentity);
    m?.delete(etag);
    if (m && m.size === 0) this.byPresentity.delete(p.presentity);
    this.options.timers.cancel(this.expiry.get(etag));
    this.expiry.delete(etag);
    return p;
  }

  private schedule(pub: Publication): void {
    const delay = Math.max(0, pub.expiresAtMs - this.options.wallClock.nowMs());
    this.expiry.set(
      pub.etag,
      this.options.timers.schedule(delay, () => {
        this.expiry.delete(pub.etag);
        if (this.byEtag.get(pub.etag) !== pub) return;
        this.remove(pub.etag);
        this.options.onExpired(pub);
      }),
    );
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
