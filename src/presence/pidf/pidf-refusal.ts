/**
 * Why a PIDF document is refused, raised inside the pidf readers and turned into a
 * `{ ok: false, reason }` result by `parsePidf`: it never leaves the module.
 */
export class PidfRefusal extends Error {
  /** `detail` is short and already safe for a SIP reason phrase. */
  constructor(readonly detail: string) {
    super(detail);
  }
}

/** The reason phrase a refusal is reported with (RFC 3261 §21.4.1 ideas: say what was wrong). */
export function pidfReason(detail: string): string {
  return `Invalid PIDF: ${detail}`;
}
