import type { SipRequest } from '../sip/message.js';

/** Limits on one request's shape (config `limits`). */
export interface MessageCaps {
  readonly maxHeaders: number;
  readonly maxVias: number;
  readonly maxUriLength: number;
  /** Largest body per media type (lower case), `*` for any other type. */
  readonly maxBodySize: Readonly<Record<string, number>>;
}

export const DEFAULT_MESSAGE_CAPS: MessageCaps = {
  maxHeaders: 100,
  maxVias: 16,
  maxUriLength: 1024,
  maxBodySize: { 'application/pidf+xml': 65536, 'text/plain': 16384, '*': 65536 },
};

/** The refusal a request over a cap gets. */
export interface CapRefusal {
  readonly status: number;
  readonly reason: string;
}

/**
 * Checks a parsed request against the caps before any layer holds state for it: header
 * count and Via entries (400), Request-URI length (414, RFC 3261 §21.4.12), body size for
 * its type (413, §21.4.11).
 */
export function checkRequestCaps(req: SipRequest, caps: MessageCaps): CapRefusal | undefined {
  if (req.headers.length > caps.maxHeaders) return { status: 400, reason: 'Too Many Header Fields' };
  let vias = 0;
  for (const h of req.headers) {
    if (h.key !== 'via') continue;
    // A Via field may hold several entries, comma-separated (RFC 3261 §20.42).
    vias += 1 + (h.value.match(/,/g)?.length ?? 0);
  }
  if (vias > caps.maxVias) return { status: 400, reason: 'Too Many Via Entries' };
  if (req.uriText.length > caps.maxUriLength) return { status: 414, reason: 'Request-URI Too Long' };
  if (req.body.length > 0) {
    const type = (req.getHeader('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
    const max = caps.maxBodySize[type] ?? caps.maxBodySize['*'];
    if (max !== undefined && req.body.length > max) return { status: 413, reason: 'Request Entity Too Large' };
  }
  return undefined;
}
