import type { Binding, BindingRef } from './binding.js';

/**
 * Where the location service reports its changes, so the store can write registrations
 * behind in batches (DESIGN: soft state, written behind). Calls are synchronous and must
 * not block: an implementation queues them.
 */
export interface RegistrationSink {
  /** A binding was added, refreshed or changed reachability. */
  bindingChanged(binding: Binding): void;
  /** A binding was removed (unregistered, replaced or expired). */
  bindingRemoved(ref: BindingRef): void;
}

/** The default: registrations live in memory only. */
export const NO_REGISTRATION_SINK: RegistrationSink = {
  bindingChanged: () => {},
  bindingRemoved: () => {},
};
