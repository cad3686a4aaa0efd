import type { Publication } from './publications.js';
import type { PresenceStateSink } from './presence-state-sink.js';
import type { Timers, WallClock } from '../util/timers.js';

/** A presentity's publications as one PUBLISH finds them (RFC 3903 §6 steps 4-8 are decided on this). */
export interface PublicationView {
  /** The live publication with this entity-tag, if any (§6 step 4). */
  get(etag: string): Publication | undefined;
  /** Every live publication, oldest first. */
  readonly all: readonly Publication[];
}

/** What a PUBLISH (or an account's removal) decided: its answer and the change to make, if any. */
export interface PublicationDecision<R> {
  readonly result: R;
  /** The publication to store (initial, refresh or modify), and the entity-tag it takes over. */
  readonly put?: Publication;
  readonly replaces?: string;
  /** Entity-tags to remove (§6 step 5 with Expires 0). */
  readonly remove?: readonly string[];
  /**
   * The decision changes nothing because of what the view lacks (412 for an unknown
   * entity-tag): a store whose view may be behind another node's writes decides again on
   * the current state before the answer stands.
   */
  readonly needsCurrentState?: boolean;
}

export interface AppliedDecision<R> {
  readonly result: R;
  /** Publications that gave way to stay within the bounds (RFC 3903 leaves the policy to us). */
  readonly evicted: readonly Publication[];
}

/**
 * The event state of every presentity (DESIGN: "Past one machine"): one process keeps it
 * in memory (`Publications`); a cluster keeps it in a shared key-value bucket with this
 * process's copy of what it needs. The event state compositor sees only this.
 */
export interface PublicationStore {
  /** Publications held here. */
  readonly size: number;
  /** RFC 3903 §6 step 6 / §10: an entity-tag nobody can guess. */
  newEtag(): string;
  /** The live publication with this entity-tag for this presentity, as held here. */
  get(etag: string, presentity: string): Publication | undefined;
  /** A presentity's publications held here, oldest first. */
  of(presentity: string): Publication[];
  count(presentity: string): number;
  presentities(): string[];
  /**
   * Decides a change on the presentity's publications and applies it as one step: no
   * other change of the presentity comes between the decision and its effect (a cluster
   * store compares and sets on the entry's revision, deciding again when another node got
   * there first). `decide` may run more than once and must not answer anything itself.
   */
  decide<R>(presentity: string, decide: (view: PublicationView) => PublicationDecision<R>): AppliedDecision<R> | Promise<AppliedDecision<R>>;
  /** Puts a stored publication back (a restart) without reporting it. */
  restore(publication: Publication): void;
  /**
   * A watcher here is about to be shown the presentity: resolves once the state held here is
   * current and kept so. Undefined when everything is always held (one process).
   */
  follow?(presentity: string): Promise<void>;
  close(): void;
}

/** What a publication store is built with (the compositor's side of it). */
export interface PublicationStoreOptions {
  readonly timers: Timers;
  readonly wallClock: WallClock;
  readonly maxPerPresentity: number;
  readonly sink?: PresenceStateSink;
  /** A publication expired here (the presentity's composed state must be built again). */
  readonly onExpired: (publication: Publication) => void;
  /** Another node changed the presentity's publications (a cluster store). */
  readonly onChanged?: (presentity: string) => void;
  /** Whether a watcher here watches the presentity. */
  readonly watched?: (presentity: string) => boolean;
}

export type PublicationStoreFactory = (options: PublicationStoreOptions) => PublicationStore;

/**
 * The bound on publications per presentity: the one closest to expiry (the least recently
 * refreshed) gives way, so a device that restarts without removing its state cannot lock
 * the others out. Returns the one to evict from `current` before adding a new one, if any.
 */
export function evictionFor(current: Iterable<Publication>, count: number, maxPerPresentity: number): Publication | undefined {
  if (count < maxPerPresentity) return undefined;
  let evicted: Publication | undefined;
  for (const p of current) if (!evicted || p.expiresAtMs < evicted.expiresAtMs) evicted = p;
  return evicted;
}
