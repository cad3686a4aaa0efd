import { trimLws } from '../sip/lws.js';
import { findHeaderEnd } from '../sip/parser.js';

/** What the framer found in the byte stream. */
export type StreamEvent =
  | { kind: 'message'; data: Buffer }
  /** RFC 5626 §3.5.1: a double-CRLF keep-alive ping, to be answered with one CRLF. */
  | { kind: 'ping' }
  /** The peer broke the framing or a limit; `head` holds the header bytes when they were readable. */
  | { kind: 'error'; reason: 'too-large' | 'bad-content-length'; head?: Buffer };

const DOUBLE_CRLF = Buffer.from('\r\n\r\n', 'latin1');
const EMPTY = Buffer.alloc(0);
// The whole value, continuation lines included (RFC 3261 §7.3.1 folding), as the parser
// reads it: a value the parser would refuse must not be taken for an absent header.
// Lines end at LF only, as the parser splits them (a bare CR starts no header).
const CONTENT_LENGTH_RE = /\n(?:content-length|l)[ \t]*:([^\n]*(?:\n[ \t][^\n]*)*)/i;
const FOLD_RE = /[ \t]*\r?\n[ \t]*/g;

/** The header value as the parser reads it: the line's CR dropped, folds joined with one SP. */
function contentLengthValue(text: string): string {
  return trimLws((text.endsWith('\r') ? text.slice(0, -1) : text).replace(FOLD_RE, ' '));
}

/**
 * Cuts a TCP/TLS byte stream into SIP messages by Content-Length (RFC 3261 §18.3):
 * a message split over many reads, many messages in one read, CRLF keep-alives
 * between them. Never buffers more than `maxMessageSize` bytes.
 */
export class StreamFramer {
  private buf: Buffer = EMPTY;
  private failed = false;
  /** Where the search for the end of the head resumes: bytes before it hold none. */
  private scanFrom = 0;
  /** The length of the message at the front of `buf`, once its head was read. */
  private pendingTotal: number | undefined;

  constructor(private readonly maxMessageSize: number) {}

  get buffered(): number {
    return this.buf.length;
  }

  push(chunk: Buffer): StreamEvent[] {
    if (this.failed) return [];
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const events: StreamEvent[] = [];
    for (;;) {
      // Keep-alives and stray line ends between messages (RFC 3261 §7.5, RFC 5626 §3.5.1).
      let waiting = false;
      while (this.buf.length > 0 && (this.buf[0] === 0x0d || this.buf[0] === 0x0a)) {
        if (this.buf.length >= 4 && this.buf.readUInt32BE(0) === 0x0d0a0d0a) {
          events.push({ kind: 'ping' });
          this.buf = this.buf.subarray(4);
        } else if (this.buf.length < 4 && DOUBLE_CRLF.subarray(0, this.buf.length).equals(this.buf)) {
          waiting = true; // may be the start of a double CRLF
          break;
        } else {
          this.buf = this.buf.subarray(1);
        }
      }
      if (waiting || this.buf.length === 0) break;

      // A message trickling in is read once: the head is searched from where the last search
      // stopped, and read once it is whole (else each chunk would rescan all bytes so far).
      let total = this.pendingTotal;
      if (total === undefined) {
        const end = findHeaderEnd(this.buf, this.scanFrom);
        if (!end) {
          if (this.buf.length > this.maxMessageSize) return this.fail(events, 'too-large');
          // The blank line may straddle this chunk and the next.
          this.scanFrom = Math.max(0, this.buf.length - 3);
          break;
        }
        const head = this.buf.subarray(0, end.headEnd);
        const m = CONTENT_LENGTH_RE.exec(head.toString('latin1'));
        // RFC 3261 §18.3: Content-Length is mandatory on streams; a missing one is taken as 0.
        const lengthText = m ? contentLengthValue(m[1]!) : '0';
        if (!/^\d{1,10}$/.test(lengthText)) return this.fail(events, 'bad-content-length', head);
        total = end.bodyStart + Number(lengthText);
        if (total > this.maxMessageSize) return this.fail(events, 'too-large', head);
      }
      if (this.buf.length < total) {
        this.pendingTotal = total;
        break;
      }
      events.push({ kind: 'message', data: Buffer.from(this.buf.subarray(0, total)) });
      this.buf = this.buf.subarray(total);
      this.pendingTotal = undefined;
      this.scanFrom = 0;
    }
    // What is left is kept in memory of its own: a slice would keep the whole read alive for
    // as long as the connection stays idle (with 100,000 idle connections, that adds up).
    if (this.buf.length === 0) this.buf = EMPTY;
    else if (this.buf.byteOffset > 0 && this.buf.length < 4096) this.buf = Buffer.from(this.buf);
    return events;
  }

  private fail(events: StreamEvent[], reason: 'too-large' | 'bad-content-length', head?: Buffer): StreamEvent[] {
    this.failed = true;
    this.buf = EMPTY;
    events.push({ kind: 'error', reason, head: head ? Buffer.from(head) : undefined });
    return events;
  }
}
