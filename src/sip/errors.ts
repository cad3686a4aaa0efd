/**
 * A message (or one header of it) that does not follow the RFC 3261 §25 grammar.
 * `reason` is short enough to be a SIP reason phrase ("Bad CSeq", "Bad Via"),
 * because the core answers it as `400 <reason>`.
 */
export class SipParseError extends Error {
  readonly reason: string;
  /** Status to answer with: 400 for syntax, 505 for an unsupported SIP version, 513 for size. */
  readonly status: number;
  constructor(reason: string, status = 400) {
    super(reason);
    this.name = 'SipParseError';
    this.reason = reason;
    this.status = status;
  }
}
