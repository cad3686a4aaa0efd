import { SipParseError } from './errors.js';
import { canonicalHeaderName, headerKey, SINGLE_HEADERS } from './header-names.js';
import { TOKEN_RE } from './header-values.js';
import { trimLws } from './lws.js';
import { SipRequest, SipResponse, type HeaderField, type SipMessage } from './message.js';

export type ParseResult =
  | { ok: true; message: SipRequest | SipResponse }
  | {
      ok: false;
      error: SipParseError;
      /**
       * The request as far as it could be read, when its Via, From, To, Call-ID and CSeq
       * text are there so that a 400 can be built from it; undefined for responses and for
       * requests whose Via cannot be read (RFC 3261 §18.2.1: nowhere to answer).
       */
      request?: SipRequest;
    };

/** Where the header block ends: index of the blank line and where the body starts. */
export function findHeaderEnd(buf: Buffer, from = 0): { headEnd: number; bodyStart: number } | undefined {
  const crlf = buf.indexOf('\r\n\r\n', from, 'latin1');
  const lf = buf.indexOf('\n\n', from, 'latin1');
  if (crlf >= 0 && (lf < 0 || crlf < lf)) return { headEnd: crlf, bodyStart: crlf + 4 };
  if (lf >= 0) return { headEnd: lf, bodyStart: lf + 2 };
  return undefined;
}

/** The start line and header fields of a message, read but not interpreted. */
export interface MessageHead {
  readonly startLine: string;
  readonly headers: HeaderField[];
  /** The first header line that is not `name: value`; undefined when all were. */
  readonly headerError?: SipParseError;
  /** Where the body starts (the end of the buffer when no blank line ends the head). */
  readonly bodyStart: number;
}

/**
 * Splits the head of a message into its start line and header fields: folded lines
 * joined (RFC 3261 §7.3.1), names and values stripped of SP/HTAB only. Never throws.
 * Lines end at LF, a CR before it dropped. Read in place (no array of lines): this runs for
 * every message, and what it allocates is garbage a moment later.
 */
export function readHead(buf: Buffer): MessageHead {
  // RFC 3261 §7.5: CRLFs before the start line are ignored.
  let start = 0;
  while (start < buf.length && (buf[start] === 0x0d || buf[start] === 0x0a)) start++;
  const end = findHeaderEnd(buf, start);
  const headEnd = end ? end.headEnd : buf.length;
  const bodyStart = end ? end.bodyStart : buf.length;
  const head = buf.toString('utf8', start, headEnd);
  const n = head.length;

  let lineEnd = lineEndAt(head, 0);
  const startLine = head.slice(0, contentEnd(head, lineEnd));
  const headers: HeaderField[] = [];
  let headerError: SipParseError | undefined;
  let pos = lineEnd + 1;
  while (pos <= n && lineEnd < n) {
    lineEnd = lineEndAt(head, pos);
    let line: string | undefined;
    let to = contentEnd(head, lineEnd);
    // RFC 3261 §7.3.1: a line starting with whitespace continues the previous header.
    while (lineEnd < n && isContinuation(head, lineEnd + 1)) {
      line ??= head.slice(pos, to);
      const next = lineEndAt(head, lineEnd + 1);
      line += ' ' + trimLws(head.slice(lineEnd + 1, contentEnd(head, next)));
      lineEnd = next;
    }
    const text = line ?? head;
    const from = line === undefined ? pos : 0;
    if (line !== undefined) to = line.length;
    pos = lineEnd + 1;
    const colon = text.indexOf(':', from);
    if (colon <= from || colon >= to) {
      headerError ??= new SipParseError('Bad header line');
      continue;
    }
    const name = trimLws(text.slice(from, colon));
    if (!TOKEN_RE.test(name)) {
      headerError ??= new SipParseError('Bad header line');
      continue;
    }
    headers.push({ key: headerKey(name), name, value: trimLws(text.slice(colon + 1, to)) });
  }
  return { startLine, headers, headerError, bodyStart };
}

/** Index of the LF ending the line that starts at `from`, or the text's length. */
function lineEndAt(text: string, from: number): number {
  const lf = text.indexOf('\n', from);
  return lf < 0 ? text.length : lf;
}

/** Where a line's content ends: before the CR of its CRLF. */
function contentEnd(text: string, lineEnd: number): number {
  return lineEnd > 0 && text.charCodeAt(lineEnd - 1) === 0x0d ? lineEnd - 1 : lineEnd;
}

function isContinuation(text: string, at: number): boolean {
  const c = text.charCodeAt(at);
  return c === 0x20 || c === 0x09;
}

// RFC 3261 §7.2, §25.1: Status-Line = SIP-Version SP Status-Code SP Reason-Phrase, the
// version case-insensitive, the code three digits.
const STATUS_LINE_RE = /^SIP\/(\d+\.\d+) (\d{3})(?: (.*))?$/i;

/**
 * Parses one whole message (a UDP datagram, or one frame cut by the stream framer).
 * Never throws: bad input comes back as `{ ok: false }` with a reason phrase. `head` is
 * `readHead(buf)` when a caller has read it already.
 */
export function parseMessage(buf: Buffer, head?: MessageHead): ParseResult {
  let shell: SipRequest | undefined;
  try {
    const { startLine, headers, headerError, bodyStart } = head ?? readHead(buf);
    let message: SipRequest | SipResponse;
    // A method is a token, which has no "/": a start line opening with "SIP/" (in any
    // case, RFC 3261 §7.1) is a Status-Line and never gets a request shell.
    if (isStatusLineStart(startLine)) {
      const m = STATUS_LINE_RE.exec(startLine);
      if (!m) return { ok: false, error: new SipParseError('Bad Status-Line') };
      if (m[1] !== '2.0') return { ok: false, error: new SipParseError('Version Not Supported', 505) };
      const status = Number(m[2]);
      // RFC 3261 §21: classes 1xx-6xx only; 000-099 and 700-999 are no SIP status.
      if (status < 100 || status > 699) return { ok: false, error: new SipParseError('Bad Status-Line') };
      message = new SipResponse(status, m[3] ?? '', headers);
    } else {
      const parts = startLine.split(' ');
      const method = parts[0] ?? '';
      // Request-Line = Method SP Request-URI SP SIP-Version CRLF, single spaces (RFC 3261 §7.1).
      shell = new SipRequest(TOKEN_RE.test(method) ? method : 'UNKNOWN', parts[1] ?? '', headers);
      if (!viaReadable(shell)) shell = undefined;
      if (parts.length !== 3 || !TOKEN_RE.test(method) || parts[1]!.length === 0) {
        return { ok: false, error: new SipParseError('Bad Request-Line'), request: shell };
      }
      const version = parts[2]!;
      if (!/^SIP\/\d+\.\d+$/i.test(version)) return { ok: false, error: new SipParseError('Bad Request-Line'), request: shell };
      if (version.toUpperCase() !== 'SIP/2.0') {
        return { ok: false, error: new SipParseError('Version Not Supported', 505), request: shell };
      }
      // The shell is that request, its Via already read (and kept): no second parse of it.
      message = shell ?? new SipRequest(method, parts[1]!, headers);
    }
    if (headerError) throw headerError;
    message.body = readBody(message, buf, bodyStart);
    checkMandatory(message);
    return { ok: true, message };
  } catch (e) {
    // Anything else is a fault of ours; it is still answered with 400, its cause kept for the fuzzers.
    const error = e instanceof SipParseError ? e : Object.assign(new SipParseError('Bad message'), { cause: e });
    return { ok: false, error, request: shell };
  }
}

/** `SIP/` in any case. */
function isStatusLineStart(line: string): boolean {
  return line.length >= 4 && line.charCodeAt(3) === 0x2f && line.slice(0, 3).toUpperCase() === 'SIP';
}

function viaReadable(req: SipRequest): boolean {
  try {
    return req.vias.length > 0;
  } catch {
    return false;
  }
}

function readBody(message: SipMessage, buf: Buffer, bodyStart: number): Buffer {
  const available = buf.length - bodyStart;
  const lengths = message.getHeaders('content-length');
  if (lengths.length === 0) return buf.subarray(bodyStart);
  const text = trimLws(lengths[0]!);
  // Repeated, the values must agree (one message, one length).
  for (let i = 1; i < lengths.length; i++) if (trimLws(lengths[i]!) !== text) throw new SipParseError('Bad Content-Length');
  if (!/^\d{1,10}$/.test(text)) throw new SipParseError('Bad Content-Length');
  const length = Number(text);
  // RFC 3261 §18.3: a datagram shorter than Content-Length is discarded (400 for requests);
  // octets past Content-Length are ignored.
  if (length > available) throw new SipParseError('Content-Length larger than body');
  return buf.subarray(bodyStart, bodyStart + length);
}

/** RFC 3261 §8.1.1: the headers every request and response must carry, readable. */
function checkMandatory(m: SipRequest | SipResponse): void {
  for (const key of SINGLE_HEADERS) {
    if (key !== 'content-length' && m.countHeader(key) > 1) {
      throw new SipParseError(`Multiple ${canonicalHeaderName(key)} headers`);
    }
  }
  void m.vias;
  void m.callId;
  const cseq = m.cseq;
  void m.from;
  void m.to;
  if (m instanceof SipRequest) {
    if (cseq.method !== m.method) throw new SipParseError('CSeq method mismatch');
    void m.maxForwards;
    void m.uri;
  }
}
