import { randomToken } from '../../sip/response.js';

/** One body part: its MIME headers (Content-Type first) and bytes. */
export interface MixedPart {
  readonly headers: ReadonlyArray<readonly [string, string]>;
  readonly body: Buffer;
}

/**
 * A multipart/mixed body (RFC 2046 §5.1.3), as RFC 5365 §4 gives each recipient the
 * message and the list of recipients. Parts are binary (SIP is 8-bit clean), so the
 * boundary is chosen not to occur in any part (§5.1.1).
 */
export function buildMultipartMixed(parts: readonly MixedPart[]): { readonly contentType: string; readonly body: Buffer } {
  let boundary = randomToken(16);
  while (parts.some((p) => p.body.includes(boundary))) boundary = randomToken(20);
  const chunks: Buffer[] = [];
  for (const p of parts) {
    const head = p.headers.map(([n, v]) => `${n}: ${v.replace(/[\r\n]+/g, ' ')}\r\n`).join('');
    chunks.push(Buffer.from(`--${boundary}\r\n${head}\r\n`, 'utf8'), p.body, Buffer.from('\r\n', 'latin1'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`, 'latin1'));
  return { contentType: `multipart/mixed;boundary="${boundary}"`, body: Buffer.concat(chunks) };
}
