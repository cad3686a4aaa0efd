import type { WallClock } from '../util/timers.js';
import { FailureTracker } from './failure-tracker.js';

export interface LockoutLimits {
  /** Failures are counted within this window... */
  readonly windowMs: number;
  /** ...and a block lasts this long. */
  readonly blockMs: number;
  /** auth.maxFailuresPerSourceUser: failed digests of one user from one address before that pair is blocked. */
  readonly perSourceUser: number;
  /** auth.maxFailedUsersPerSource: distinct users failing from one address before the whole address is blocked. */
  readonly usersPerSource: number;
  /** auth.maxFailuresPerUser: failed digests of one user from anywhere before the addresses that failed for it are refused. */
  readonly perUser: number;
  /** Keys each tracker remembers (a bound on memory). */
  readonly maxKeys?: number;
}

/** What is blocked: one user from one address, a whole address, or a user from the addresses that failed for it. */
export type LockoutScope = 'source_user' | 'source' | 'user';

export interface LockoutStats {
  /** Failed digests counted. */
  readonly failures: number;
  /** Blocks started, by scope. */
  readonly blocks: Readonly<Record<LockoutScope, number>>;
  /** Requests refused (403) because of a block, by scope. */
  readonly refused: Readonly<Record<LockoutScope, number>>;
}

/** Keys joined with a character no address nor user name holds after parsing. */
const pairKey = (source: string, user: string): string => `${source}\n${user}`;

/**
 * Lock-outs that fit real networks: many users share one address behind a NAT, so failed
 * digests are counted and blocked per (source, user) first. One phone with a stale password
 * locks out only itself; the whole address is blocked only when many distinct users fail
 * from it (password spraying), and a user failing from many addresses (a distributed guess)
 * refuses those addresses for that user while its own clients still log in.
 */
export class AuthLockout {
  private readonly pairs: FailureTracker;
  private readonly sources: FailureTracker;
  private readonly users: FailureTracker;
  private failures = 0;
  private readonly blocks: Record<LockoutScope, number> = { source_user: 0, source: 0, user: 0 };
  private readonly refusals: Record<LockoutScope, number> = { source_user: 0, source: 0, user: 0 };

  constructor(limits: LockoutLimits, wallClock: WallClock) {
    const { windowMs, blockMs } = limits;
    const maxKeys = limits.maxKeys ?? 100_000;
    this.pairs = new FailureTracker({ windowMs, blockMs, threshold: limits.perSourceUser, maxKeys }, wallClock);
    // Each source keeps up to `usersPerSource` names: fewer sources remembered keeps the bound the same order.
    this.sources = new FailureTracker({ windowMs, blockMs, threshold: limits.usersPerSource, maxKeys: Math.max(1000, Math.floor(maxKeys / 10)) }, wallClock);
    this.users = new FailureTracker({ windowMs, blockMs, threshold: limits.perUser, maxKeys }, wallClock);
  }

  /** Milliseconds the whole source stays blocked, or 0 (checked before credentials are read). */
  sourceBlockedFor(source: string): number {
    const ms = this.sources.blockedFor(source);
    if (ms > 0) this.refusals.source++;
    return ms;
  }

  /** The scope that refuses `user` from `source` now, if any. */
  refuses(source: string, user: string): LockoutScope | undefined {
    const key = pairKey(source, user);
    let scope: LockoutScope | undefined;
    if (this.pairs.blockedFor(key) > 0) scope = 'source_user';
    // Past the per-user threshold, an address that has failed for that user gets no more tries for it.
    else if (this.users.blockedFor(user) > 0 && this.pairs.count(key) > 0) scope = 'user';
    if (scope) this.refusals[scope]++;
    return scope;
  }

  /** Records a failed digest; returns the blocks it started. */
  fail(source: string, user: string): LockoutScope[] {
    this.failures++;
    const started: LockoutScope[] = [];
    if (this.pairs.fail(pairKey(source, user))) started.push('source_user');
    if (this.sources.failDistinct(source, user)) started.push('source');
    if (this.users.fail(user)) started.push('user');
    for (const s of started) this.blocks[s]++;
    return started;
  }

  /** A good digest: the pair's and the user's failures are forgiven (the source's distinct users stay). */
  succeeded(source: string, user: string): void {
    this.pairs.reset(pairKey(source, user));
    this.users.reset(user);
  }

  /** Milliseconds left of a block of `scope`. */
  blockedFor(scope: LockoutScope, source: string, user: string): number {
    if (scope === 'source') return this.sources.blockedFor(source);
    if (scope === 'user') return this.users.blockedFor(user);
    return this.pairs.blockedFor(pairKey(source, user));
  }

  stats(): LockoutStats {
    return { failures: this.failures, blocks: { ...this.blocks }, refused: { ...this.refusals } };
  }

  /** Blocks in force now, by scope (walks the trackers: for scrapes). */
  blockedNow(): Record<LockoutScope, number> {
    return { source_user: this.pairs.blockedCount(), source: this.sources.blockedCount(), user: this.users.blockedCount() };
  }

  /** Keys remembered, all trackers together (the memory bound's measure). */
  get size(): number {
    return this.pairs.size + this.sources.size + this.users.size;
  }
}
