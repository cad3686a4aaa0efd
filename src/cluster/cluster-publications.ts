import type { KV, KvEntry } from '@nats-io/kv';
import type { Msg, Subscription } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { ServiceUnavailableError } from '../core/services.js';
import { evictionFor, type AppliedDecision, type PublicationDecision, type PublicationStore, type PublicationStoreOptions, type PublicationView } from '../presence/publication-store.js';
import { Publications, type Publication } from '../presence/publications.js';
import { decodePublications, encodePublications } from './codec.js';
import { isConflict, unavailable, type ClusterHandle, type NatsLink } from './nats-link.js';
import { SUBJECTS, token } from './names.js';

/** Tries of one decision before the PUBLISH gets 503 (other nodes kept changing the presentity). */
const MAX_ATTEMPTS = 8;

/** How long a presentity nobody here watches any more is still followed (a watcher may come back). */
const FOLLOW_GRACE_MS = 30_000;

/** Room left in a NATS message for the headers JetStream adds. */
const HEADROOM_BYTES = 4096;

export interface ClusterPublicationsOptions extends PublicationStoreOptions {
  /** The cluster; its publications bucket republishes every committed change under `SUBJECTS.publication(key)`. */
  readonly cluster: ClusterHandle;
  readonly logger: Logger;
  /** Counts what the bucket did (metrics). */
  readonly stats?: { writes: number; conflicts: number };
}

interface Followed {
  /** Begun with the turn's other NATS operations (follow). */
  subscription?: Subscription;
  /** Resolves once the entry was read after the subscription began. */
  ready: Promise<void>;
  /** Last time a watcher here needed it (ms). */
  usedAt: number;
}

/**
 * The publications of a cluster (DESIGN: "Past one machine"): one entry a presentity in a
 * JetStream key-value bucket, holding its publications with their entity-tags and expiry
 * times. A PUBLISH is decided on the entry and written with compare-and-set on its
 * revision, so RFC 3903's entity-tag rules hold across nodes: of two conditional PUBLISHes
 * racing on one entity-tag, the second write finds a newer revision, decides again, finds
 * the entity-tag gone and gets 412.
 *
 * This node holds a copy (`Publications`, with the expiry timers) of the presentities it
 * wrote or follows. A presentity is followed while watchers here watch it: every committed
 * change of its entry comes on its subject (the bucket republishes it, with its revision),
 * is composed once here and notified to the watchers here. Expiry needs no message: every
 * node that holds a copy expires each publication at the time written in it.
 */
export class ClusterPublications implements PublicationStore {
  private readonly local: Publications;
  /** The entry revision of each presentity's copy (0: no entry). */
  private readonly revisions = new Map<string, number>();
  private readonly followed = new Map<string, Followed>();
  private readonly log: Logger;
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly options: ClusterPublicationsOptions) {
    this.log = options.logger;
    // No write-behind: the bucket is where publications last.
    this.local = new Publications({ timers: options.timers, wallClock: options.wallClock, maxPerPresentity: options.maxPerPresentity, onExpired: options.onExpired });
    this.sweeper = setInterval(() => this.sweep(), FOLLOW_GRACE_MS).unref();
    // News missed while away: read every followed entry again.
    options.cluster.onReconnect(() => {
      for (const presentity of this.followed.keys()) void this.refresh(presentity, true).catch((err: unknown) => this.log.warn({ err, presentity }, 'cluster: publication entry not read again'));
    });
  }

  private get link(): NatsLink {
    return this.options.cluster.link;
  }

  private get kv(): KV {
    return this.options.cluster.bucket('publications');
  }

  get size(): number {
    return this.local.size;
  }

  newEtag(): string {
    return this.local.newEtag();
  }

  get(etag: string, presentity: string): Publication | undefined {
    return this.local.get(etag, presentity);
  }

  of(presentity: string): Publication[] {
    return this.local.of(presentity);
  }

  count(presentity: string): number {
    return this.local.count(presentity);
  }

  presentities(): string[] {
    return this.local.presentities();
  }

  /** Publications of a cluster are never restored from the SQL store. */
  restore(): void {}

  /** Presentities followed here (status). */
  get followedCount(): number {
    return this.followed.size;
  }

  async decide<R>(presentity: string, decide: (view: PublicationView) => PublicationDecision<R>): Promise<AppliedDecision<R>> {
    this.link.require();
    // A copy that nothing keeps current may be behind: what it lacks is checked on the entry.
    let current = this.followed.has(presentity);
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const view = this.local.view(presentity);
      const d = decide(view);
      const removes = d.remove ?? [];
      if (!d.put && removes.length === 0) {
        if (d.needsCurrentState && !current) {
          await this.refresh(presentity, false);
          current = true;
          continue;
        }
        return { result: d.result, evicted: [] };
      }
      const { next, evicted } = this.nextState(presentity, view.all, d);
      try {
        const revision = await this.write(presentity, next, this.revisions.get(presentity) ?? 0);
        this.apply(presentity, next, revision, false);
        return { result: d.result, evicted };
      } catch (err) {
        if (!isConflict(err)) throw this.failed(err, presentity);
        if (this.options.stats) this.options.stats.conflicts++;
        // Another node wrote first: decide again on what it wrote.
        await this.refresh(presentity, false);
        current = true;
      }
    }
    throw new ServiceUnavailableError('Presentity Busy', 1);
  }

  /**
   * A watcher here is about to see the presentity: its entry is read and every later change
   * followed (subscription first, then the read, so nothing falls between them).
   */
  follow(presentity: string): Promise<void> {
    const known = this.followed.get(presentity);
    if (known) {
      known.usedAt = Date.now();
      return known.ready;
    }
    this.link.require();
    const f: Followed = { ready: Promise.resolve(), usedAt: Date.now() };
    // The subscription and the read go with the turn's other NATS operations (one socket write).
    f.ready = new Promise<void>((resolve, reject) => {
      this.link.soon(() => {
        try {
          // Closed meanwhile: nothing is followed any more.
          if (this.followed.get(presentity) !== f) throw new Error('no longer followed');
          f.subscription = this.link.nc.subscribe(SUBJECTS.publication(token(presentity)), { callback: (err, msg) => (err ? undefined : this.news(presentity, msg)) });
          this.refresh(presentity, true).then(resolve, reject);
        } catch (err) {
          reject(err);
        }
      });
    }).catch((err: unknown) => {
      // Not followed after all: the next watcher tries again.
      f.subscription?.unsubscribe();
      if (this.followed.get(presentity) === f) this.followed.delete(presentity);
      throw this.failed(err, presentity);
    });
    this.followed.set(presentity, f);
    return f.ready;
  }

  close(): void {
    clearInterval(this.sweeper);
    for (const f of this.followed.values()) f.subscription?.unsubscribe();
    this.followed.clear();
    this.local.close();
  }

  /** The presentity's publications once `d` is applied to `all`: expired ones dropped, the bounds kept. */
  private nextState(presentity: string, all: readonly Publication[], d: PublicationDecision<unknown>): { next: Publication[]; evicted: Publication[] } {
    const now = this.options.wallClock.nowMs();
    const gone = new Set(d.remove ?? []);
    if (d.replaces !== undefined) gone.add(d.replaces);
    let next = all.filter((p) => !gone.has(p.etag) && p.expiresAtMs > now);
    const evicted: Publication[] = [];
    if (d.put) {
      const out = d.replaces === undefined ? evictionFor(next, next.length, this.options.maxPerPresentity) : undefined;
      if (out) {
        evicted.push(out);
        next = next.filter((p) => p !== out);
      }
      next.push(d.put);
    }
    // The entry must fit in one NATS message: the publications closest to expiry give way.
    const limit = this.link.maxPayload - HEADROOM_BYTES;
    while (next.length > 1 && encodedSize(next) > limit) {
      const out = evictionFor(next.filter((p) => p !== d.put), next.length, 0)!;
      evicted.push(out);
      next = next.filter((p) => p !== out);
      this.log.info({ presentity, evicted: out.etag }, 'cluster: publication evicted to keep the entry within the NATS message size');
    }
    return { next, evicted };
  }

  /** Writes the entry if it is still at `revision` (0: no entry); the new revision. */
  private async write(presentity: string, pubs: readonly Publication[], revision: number): Promise<number> {
    const key = token(presentity);
    const value = encodePublications(pubs);
    if (this.options.stats) this.options.stats.writes++;
    const kv = this.kv;
    return this.link.inTurn(() => (revision === 0 ? kv.create(key, value) : kv.update(key, value, revision)));
  }

  /** Reads the entry and takes it as the copy here; `tell`: watchers here hear of a change. */
  private async refresh(presentity: string, tell: boolean): Promise<void> {
    let entry: KvEntry | null;
    try {
      entry = await this.kv.get(token(presentity));
    } catch (err) {
      throw this.failed(err, presentity);
    }
    const deleted = !entry || entry.operation !== 'PUT';
    const pubs = deleted ? [] : this.decode(presentity, entry!.value);
    // An empty copy stays at revision 0 only when there has never been an entry.
    if (this.apply(presentity, pubs, entry?.revision ?? 0, true) && tell) this.options.onChanged?.(presentity);
  }

  /** A committed change of a followed presentity, republished by the bucket. */
  private news(presentity: string, msg: Msg): void {
    const revision = Number(msg.headers?.get('Nats-Sequence'));
    if (!Number.isFinite(revision) || revision <= 0) return;
    const op = msg.headers?.get('KV-Operation');
    const pubs = op === 'DEL' || op === 'PURGE' ? [] : this.decode(presentity, msg.data);
    if (this.apply(presentity, pubs, revision, false)) this.options.onChanged?.(presentity);
  }

  /**
   * Makes the copy here what the entry holds at `revision`, unless the copy is newer
   * already; true when it changed. `reread`: taken from a fresh read, even at the same
   * revision (the first read of a followed presentity).
   */
  private apply(presentity: string, pubs: readonly Publication[], revision: number, reread: boolean): boolean {
    const held = this.revisions.get(presentity);
    // A read that finds no entry at all (expired from the bucket) is the truth whatever we held.
    const gone = reread && revision === 0;
    if (held !== undefined && !gone && (revision < held || (revision === held && !reread))) return false;
    if (revision === 0 && pubs.length === 0) this.revisions.delete(presentity);
    else this.revisions.set(presentity, revision);
    const now = this.options.wallClock.nowMs();
    const wanted = new Map(pubs.filter((p) => p.expiresAtMs > now).map((p) => [p.etag, p]));
    let changed = false;
    for (const p of this.local.of(presentity)) {
      if (wanted.has(p.etag)) wanted.delete(p.etag);
      else {
        this.local.drop(p.etag);
        changed = true;
      }
    }
    for (const p of wanted.values()) {
      this.local.restore(p);
      changed = true;
    }
    return changed;
  }

  private decode(presentity: string, data: Uint8Array): Publication[] {
    try {
      return decodePublications(presentity, data);
    } catch (err) {
      this.log.error({ err, presentity }, 'cluster: unreadable publication entry, taken as empty');
      return [];
    }
  }

  /**
   * Presentities no watcher here needs any more stop being followed (their copy may then
   * fall behind), and the revisions of copies that expired to nothing are forgotten (a
   * later write reads the entry first).
   */
  private sweep(): void {
    const now = Date.now();
    for (const [presentity, f] of this.followed) {
      if (this.options.watched?.(presentity)) {
        f.usedAt = now;
        continue;
      }
      if (now - f.usedAt < FOLLOW_GRACE_MS) continue;
      f.subscription?.unsubscribe();
      this.followed.delete(presentity);
    }
    for (const presentity of this.revisions.keys()) {
      if (!this.followed.has(presentity) && this.local.count(presentity) === 0) this.revisions.delete(presentity);
    }
  }

  private failed(err: unknown, presentity: string): ServiceUnavailableError {
    this.log.warn({ err: (err as Error).message, presentity }, 'cluster: publication bucket not reachable');
    return unavailable(err);
  }
}

function encodedSize(pubs: readonly Publication[]): number {
  let n = 256;
  for (const p of pubs) n += p.body.length + 128 + p.tupleIds.reduce((a, t) => a + t.length + 3, 0);
  return n;
}
