import { quote } from '../../sip/header-values.js';

/** RFC 3862: what the wrapper says of the message it carries. */
export interface CpimMessage {
  /** Message headers (From, To, DateTime...), in order, names as written. */
  readonly headers: ReadonlyArray<readonly [string, string]>;
  /** The encapsulated MIME object's Content-Type. */
  readonly contentType?: string;
  readonly body: Buffer;
}

/** At most this many header lines in each of the two header blocks (hostile input is bounded). */
const MAX_HEADER_LINES = 64;

/**
 * Wraps a message in message/cpim (RFC 3862): the room is the SIP sender, the wrapper
 * names the original one. `from` is the sender's URI, `nick` its display name.
 */
export function wrapCpim(m: { from: string; nick: string; to: string; dateTime: number; contentType: string; body: Buffer }): Buffer {
  const head =
    `From: ${quote(m.nick)} <${m.from}>\r\n` +
    `To: <${m.to}>\r\n` +
    // RFC 3862 §5.4: DateTime in RFC 3339 form.
    `DateTime: ${new Date(m.dateTime).toISOString()}\r\n` +
    '\r\n' +
    `Content-Type: ${m.contentType}\r\n` +
    '\r\n';
  return Buffer.concat([Buffer.from(head, 'utf8'), m.body]);
}

/**
 * Reads a message/cpim body: message headers, a blank line, the MIME headers of the
 * encapsulated object, a blank line, its body. Undefined when it is not of that form.
 */
export function parseCpim(body: Buffer): CpimMessage | undefined {
  const text = body.toString('latin1');
  const first = text.indexOf('\r\n\r\n');
  if (first < 0) return undefined;
  const second = text.indexOf('\r\n\r\n', first + 4);
  if (second < 0) return undefined;
  const headers = headerLines(text.slice(0, first));
  const mime = headerLines(text.slice(first + 4, second));
  if (!headers || !mime) return undefined;
  const type = mime.find(([n]) => n.toLowerCase() === 'content-type')?.[1];
  return { headers, ...(type !== undefined ? { contentType: type } : {}), body: body.subarray(Buffer.byteLength(text.slice(0, second + 4), 'latin1')) };
}

function headerLines(block: string): Array<[string, string]> | undefined {
  if (block === '') return [];
  const lines = block.split('\r\n');
  if (lines.length > MAX_HEADER_LINES) return undefined;
  const out: Array<[string, string]> = [];
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon <= 0) return undefined;
    out.push([line.slice(0, colon).trim(), Buffer.from(line.slice(colon + 1).trim(), 'latin1').toString('utf8')]);
  }
  return out;
}
