import type { Logger } from 'pino';
import type { Binding, BindingRef } from './binding.js';
import type { RegistrationSink } from './registration-sink.js';

/**
 * The part of the store's registration repository the sink needs (write-behind queue:
 * false when the queue is full). Structural, so the registrar needs no store import.
 */
export interface RegistrationWriter {
  upsert(binding: Binding): boolean;
  delete(ref: BindingRef): boolean;
}

/**
 * Reports location-service changes to the store's write-behind queue (DESIGN: soft state,
 * never waiting on the database). A full queue loses the change; the client's next
 * refresh repairs it, so it is logged and not fatal.
 */
export function storeRegistrationSink(writer: RegistrationWriter, log?: Logger): RegistrationSink {
  return {
    bindingChanged: (b) => {
      if (!writer.upsert(b)) log?.warn({ aor: b.aor }, 'registration write-behind queue full; change not saved');
    },
    bindingRemoved: (ref) => {
      if (!writer.delete(ref)) log?.warn({ aor: ref.aor }, 'registration write-behind queue full; removal not saved');
    },
  };
}
