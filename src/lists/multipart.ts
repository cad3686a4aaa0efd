import { randomToken } from '../sip/response.js';

/**
 * multipart/related bodies (RFC 2387, RFC 2046 §5.1) as RFC 4662 §5.2 uses them: the RLMI
 * document first (the `start` part), then one part per resource state, each named by a
 * Content-ID the RLMI `cid` attributes point at. Parts are binary (RFC 4662 §5.2: SIP is
 * 8-bit clean), so the boundary is chosen not to occur in any part.
 */

/** One body part. */
export interface BodyPart {
  /** Content-ID without the angle brackets. */
  readonly contentId: string;
  readonly contentType: string;
  readonly body: Buffer;
}

export interface MultipartBody {
  /** The Content-Type header value: multipart/related with type, start and boundary. */
  readonly contentType: string;
  readonly body: Buffer;
}

/**
 * Builds a multipart/related body whose root (`start`) is the first part, of type `rootType`.
 * `bareContentIds` writes Content-ID values without their angle brackets (RFC 2392 wants
 * them): liblinphone compares the header's raw value with the RLMI `cid`, and Flexisip, the
 * RLS it is made with, writes them bare.
 */
export function buildMultipartRelated(parts: readonly BodyPart[], rootType: string, bareContentIds = false): MultipartBody {
  let boundary = randomToken(16);
  // RFC 2046 §5.1.1: the boundary must not occur in the encapsulated parts.
  while (parts.some((p) => p.body.includes(boundary))) boundary = randomToken(20);
  const chunks: Buffer[] = [];
  for (const p of parts) {
    chunks.push(
      Buffer.from(`--${boundary}\r\nContent-Transfer-Encoding: binary\r\nContent-ID: ${bareContentIds ? p.contentId : `<${p.contentId}>`}\r\nContent-Type: ${p.contentType}\r\n\r\n`, 'utf8'),
      p.body,
      Buffer.from('\r\n', 'latin1'),
    );
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`, 'latin1'));
  const start = parts[0] ? `;start="<${parts[0].contentId}>"` : '';
  return { contentType: `multipart/related;type="${rootType}"${start};boundary="${boundary}"`, body: Buffer.concat(chunks) };
}

export interface ParsedPart {
  readonly headers: ReadonlyMap<string, string>;
  readonly contentId?: string;
  readonly contentType?: string;
  readonly body: Buffer;
}

export type ParseMultipartResult = { readonly ok: true; readonly parts: readonly ParsedPart[]; readonly type?: string; readonly start?: string } | { readonly ok: false; readonly reason: string };

/** Parameters of a Content-Type value (`boundary`, `type`, `start`), quotes removed, names lower-cased. */
export function mediaTypeParams(contentType: string): Map<string, string> {
  const params = new Map<string, string>();
  const re = /;\s*([A-Za-z0-9!#$&^_.+-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;\s]*)/g;
  for (let m = re.exec(contentType); m !== null; m = re.exec(contentType)) {
    const raw = m[2]!;
    params.set(m[1]!.toLowerCase(), raw.startsWith('"') ? raw.slice(1, -1).replace(/\\(.)/g, '$1') : raw);
  }
  return params;
}

/** Reads a multipart body (RFC 2046 §5.1.1) of at most `maxParts` parts; never throws. */
export function parseMultipart(contentType: string, body: Buffer, maxParts = 10_000): ParseMultipartResult {
  const params = mediaTypeParams(contentType);
  const boundary = params.get('boundary');
  if (!boundary || boundary.length > 70) return { ok: false, reason: 'bad boundary' };
  const delimiter = Buffer.from(`--${boundary}`, 'latin1');
  const parts: ParsedPart[] = [];
  let at = body.indexOf(delimiter);
  if (at < 0) return { ok: false, reason: 'no parts' };
  for (;;) {
    let after = at + delimiter.length;
    if (body[after] === 0x2d && body[after + 1] === 0x2d) break; // the close delimiter
    // Transport padding, then CRLF.
    while (body[after] === 0x20 || body[after] === 0x09) after++;
    if (body[after] === 0x0d && body[after + 1] === 0x0a) after += 2;
    else if (body[after] === 0x0a) after += 1;
    else return { ok: false, reason: 'bad delimiter line' };
    const next = body.indexOf(delimiter, after);
    if (next < 0) return { ok: false, reason: 'no close delimiter' };
    // The CRLF before a delimiter belongs to the delimiter.
    let end = next;
    if (body[end - 1] === 0x0a) end--;
    if (body[end - 1] === 0x0d) end--;
    if (parts.length >= maxParts) return { ok: false, reason: 'too many parts' };
    const part = readPart(body.subarray(after, Math.max(after, end)));
    if (!part) return { ok: false, reason: 'bad part headers' };
    parts.push(part);
    at = next;
  }
  const type = params.get('type');
  const start = params.get('start');
  return { ok: true, parts, ...(type !== undefined ? { type } : {}), ...(start !== undefined ? { start: stripAngles(start) } : {}) };
}

function stripAngles(s: string): string {
  const t = s.trim();
  return t.startsWith('<') && t.endsWith('>') ? t.slice(1, -1) : t;
}

const FIELD_NAME = /^[\x21-\x39\x3b-\x7e]+$/;

function readPart(bytes: Buffer): ParsedPart | undefined {
  let headerEnd = bytes.indexOf('\r\n\r\n');
  let sep = 4;
  if (headerEnd < 0) {
    headerEnd = bytes.indexOf('\n\n');
    sep = 2;
  }
  // A part with no header lines starts with the blank line itself.
  if (bytes[0] === 0x0d && bytes[1] === 0x0a) {
    headerEnd = 0;
    sep = 2;
  }
  if (headerEnd < 0) return undefined;
  const headers = new Map<string, string>();
  const lines = bytes.subarray(0, headerEnd).toString('utf8').split(/\r?\n/);
  for (const line of lines) {
    if (line === '') continue;
    const colon = line.indexOf(':');
    if (colon <= 0) return undefined;
    // RFC 5322 §2.2: a field name is printable US-ASCII but the colon (a lone CR is not one).
    const name = line.slice(0, colon).trim();
    if (!FIELD_NAME.test(name)) return undefined;
    headers.set(name.toLowerCase(), line.slice(colon + 1).trim());
  }
  const cid = headers.get('content-id');
  const ct = headers.get('content-type');
  return { headers, ...(cid !== undefined ? { contentId: stripAngles(cid) } : {}), ...(ct !== undefined ? { contentType: ct } : {}), body: bytes.subarray(headerEnd + sep) };
}
