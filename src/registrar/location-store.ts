import type { WallClock } from '../util/timers.js';
import type { Binding } from './binding.js';
import type { RegistrationView } from './location-service.js';
import type { RegistrationSink } from './registration-sink.js';

/** What one REGISTER (or an account's removal) decided on an AoR's bindings: its result and the change. */
export interface LocationDecision<R> {
  readonly result: R;
  /** Bindings to add or replace. */
  readonly put?: readonly Binding[];
  /** Keys of bindings to remove. */
  readonly remove?: readonly string[];
}

/** What happened to a binding (RFC 3680 §5.1.2 contact events, as far as a registrar sees them). */
export interface BindingEvent {
  /** The binding as it is now (for a removed one: as it was). */
  readonly binding: Binding;
  readonly event: 'registered' | 'refreshed' | 'expired' | 'unregistered' | 'deactivated';
}

/**
 * The location service as the registrar, messaging and the account operations see it
 * (RFC 3261 §10): one process keeps every binding in memory (`LocationService`); a cluster
 * shares them, each with the node that holds its flow (DESIGN: "Past one machine").
 * Reads and decisions may wait (a cluster asks its shared store); in one process they do not.
 */
export interface LocationStore {
  readonly wallClock: WallClock;
  /** Bindings held here (the admin API, metrics). */
  readonly size: number;
  readonly aorCount: number;
  /** Every current binding of an AoR, reachable or not (what a 200 to REGISTER lists). */
  bindings(aor: string): readonly Binding[] | Promise<readonly Binding[]>;
  /** Where `aor` can be reached now, best first (RFC 3261 §16.6). */
  lookup(aor: string): readonly Binding[] | Promise<readonly Binding[]>;
  /**
   * Decides a change of an AoR's bindings on the current ones and applies it as one step
   * (RFC 3261 §10.3 step 7: all or nothing); `decide` may run more than once.
   */
  decide<R>(aor: string, decide: (current: readonly Binding[]) => LocationDecision<R>): R | Promise<R>;
  /** A request down the binding's flow failed (RFC 5626 §4.4 ideas). */
  markUnreachable(binding: Binding): void;
  /** A stream connection of this process closed. */
  connectionClosed(connectionId: number): void;
  /** Admin view of the bindings held here. */
  registrations(options?: { aor?: string; limit?: number }): RegistrationView[];
  /** Bindings saved before a restart (one process); how many were restored. */
  restore(bindings: Iterable<Binding>): number;
  /** Where later changes are written behind (one process). */
  setSink(sink: RegistrationSink): void;
  /** Tells every change of a binding held here (registration state, RFC 3680). */
  onBindingEvent?(listener: (e: BindingEvent) => void): void;
  close(): void;
}
