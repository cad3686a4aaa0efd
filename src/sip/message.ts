import { SipParseError } from './errors.js';
import { canonicalHeaderName, headerKey, LIST_HEADERS } from './header-names.js';
import { trimLws } from './lws.js';
import {
  parseCSeq, parseDeltaSeconds, parseEvent, parseMediaType, parseNameAddr, parseVia, splitList,
  type CSeq, type EventHeader, type MediaType, type NameAddr, type Via,
} from './header-values.js';
import { parseUri, type SipUri } from './uri.js';

/** One header line: `key` is the lower-case long name, `name` as it came (or as we write it). */
export interface HeaderField {
  readonly key: string;
  readonly name: string;
  readonly value: string;
}

/** Contact header value: a list of addresses, or `*` (RFC 3261 §10.2.2). */
export type ContactValue = { readonly star: true } | { readonly star: false; readonly addresses: readonly NameAddr[] };

const EMPTY = Buffer.alloc(0);

/** A slot not parsed yet (undefined is a parsed value: the header is absent). */
const UNSET: unique symbol = Symbol('unset');

/**
 * The structured headers of a message, parsed on first use: one slot a header, so a message
 * costs one small object here rather than a Map and its table (garbage on every message).
 */
class ParsedHeaders {
  'via': unknown = UNSET;
  'call-id': unknown = UNSET;
  'cseq': unknown = UNSET;
  'from': unknown = UNSET;
  'to': unknown = UNSET;
  'contact': unknown = UNSET;
  'record-route': unknown = UNSET;
  'route': unknown = UNSET;
  'expires': unknown = UNSET;
  'event': unknown = UNSET;
  'content-type': unknown = UNSET;
  'max-forwards': unknown = UNSET;
}
type ParsedKey = keyof ParsedHeaders;

function isParsedKey(key: string): key is ParsedKey {
  return Object.hasOwn(PARSED_KEYS, key);
}
const PARSED_KEYS = new ParsedHeaders();

/**
 * A SIP message with headers kept as text and parsed on first use (DESIGN: parse only
 * what routing needs). Accessors of structured headers throw SipParseError when that
 * header is malformed; the core answers such an error with 400 and its reason.
 */
export abstract class SipMessage {
  headers: HeaderField[];
  body: Buffer;
  private parsed?: ParsedHeaders;

  constructor(headers: HeaderField[] = [], body: Buffer = EMPTY) {
    this.headers = headers;
    this.body = body;
  }

  abstract startLine(): string;

  /** First value of a header (raw text), by any of its names. */
  getHeader(name: string): string | undefined {
    const key = headerKey(name);
    for (const h of this.headers) if (h.key === key) return h.value;
    return undefined;
  }

  /** Every value of a header; list headers are split at their commas. */
  getHeaders(name: string): string[] {
    const key = headerKey(name);
    const out: string[] = [];
    const split = LIST_HEADERS.has(key);
    for (const h of this.headers) {
      if (h.key !== key) continue;
      if (split) for (const v of splitList(h.value)) out.push(v);
      else out.push(h.value);
    }
    return out;
  }

  hasHeader(name: string): boolean {
    const key = headerKey(name);
    return this.headers.some((h) => h.key === key);
  }

  countHeader(name: string): number {
    const key = headerKey(name);
    let n = 0;
    for (const h of this.headers) if (h.key === key) n++;
    return n;
  }

  /** Replaces every instance of a header with one value (or removes it when value is undefined). */
  setHeader(name: string, value: string | number | undefined): this {
    const key = headerKey(name);
    const idx = this.headers.findIndex((h) => h.key === key);
    this.headers = this.headers.filter((h) => h.key !== key);
    if (value !== undefined) {
      const field = { key, name: canonicalHeaderName(key, name), value: String(value) };
      if (idx >= 0) this.headers.splice(idx, 0, field);
      else this.headers.push(field);
    }
    this.forget(key);
    return this;
  }

  addHeader(name: string, value: string | number): this {
    const key = headerKey(name);
    this.headers.push({ key, name: canonicalHeaderName(key, name), value: String(value) });
    this.forget(key);
    return this;
  }

  /** Puts a header before every other instance of it (Via, Route: the newest goes first). */
  prependHeader(name: string, value: string): this {
    const key = headerKey(name);
    const idx = this.headers.findIndex((h) => h.key === key);
    const field = { key, name: canonicalHeaderName(key, name), value };
    if (idx >= 0) this.headers.splice(idx, 0, field);
    else this.headers.splice(0, 0, field);
    this.forget(key);
    return this;
  }

  removeHeader(name: string): this {
    return this.setHeader(name, undefined);
  }

  /** Removes the first element of a list header (the top Via, the first Route). */
  removeFirstListValue(name: string): this {
    const key = headerKey(name);
    const idx = this.headers.findIndex((h) => h.key === key);
    if (idx < 0) return this;
    const values = splitList(this.headers[idx]!.value);
    if (values.length <= 1) this.headers.splice(idx, 1);
    else this.headers[idx] = { ...this.headers[idx]!, value: values.slice(1).join(', ') };
    this.forget(key);
    return this;
  }

  protected cached<T>(key: ParsedKey, compute: () => T): T {
    const parsed = (this.parsed ??= new ParsedHeaders());
    const held = parsed[key];
    if (held !== UNSET) return held as T;
    const v = compute();
    parsed[key] = v;
    return v;
  }

  /** A header changed: its parsed value is read again on next use. */
  private forget(key: string): void {
    if (this.parsed && isParsedKey(key)) this.parsed[key] = UNSET;
  }

  protected single(key: string, what: string): string {
    const v = this.getHeader(key);
    if (v === undefined) throw new SipParseError(`Missing ${what}`);
    return v;
  }

  /** All Via elements, top first. */
  get vias(): readonly Via[] {
    return this.cached('via', () => {
      const values = this.getHeaders('via');
      if (values.length === 0) throw new SipParseError('Missing Via');
      return values.map(parseVia);
    });
  }

  get topVia(): Via {
    return this.vias[0]!;
  }

  get callId(): string {
    return this.cached('call-id', () => {
      const v = trimLws(this.single('call-id', 'Call-ID'));
      // RFC 3261 §25.1: callid = word [ "@" word ]
      if (v.length === 0 || /\s/.test(v)) throw new SipParseError('Bad Call-ID');
      return v;
    });
  }

  get cseq(): CSeq {
    return this.cached('cseq', () => parseCSeq(this.single('cseq', 'CSeq')));
  }

  get from(): NameAddr {
    return this.cached('from', () => parseNameAddr(this.single('from', 'From'), 'From'));
  }

  get to(): NameAddr {
    return this.cached('to', () => parseNameAddr(this.single('to', 'To'), 'To'));
  }

  get contact(): ContactValue | undefined {
    return this.cached('contact', () => {
      const values = this.getHeaders('contact');
      if (values.length === 0) return undefined;
      if (values.length === 1 && values[0] === '*') return { star: true } as const;
      if (values.includes('*')) throw new SipParseError('Bad Contact: * mixed with addresses');
      return { star: false, addresses: values.map((v) => parseNameAddr(v, 'Contact')) } as const;
    });
  }

  /** Contact addresses (empty for none or `*`). */
  get contacts(): readonly NameAddr[] {
    const c = this.contact;
    return c && !c.star ? c.addresses : [];
  }

  get recordRoutes(): readonly NameAddr[] {
    return this.cached('record-route', () => this.getHeaders('record-route').map((v) => parseNameAddr(v, 'Record-Route')));
  }

  get routes(): readonly NameAddr[] {
    return this.cached('route', () => this.getHeaders('route').map((v) => parseNameAddr(v, 'Route')));
  }

  get expires(): number | undefined {
    return this.cached('expires', () => {
      const v = this.getHeader('expires');
      return v === undefined ? undefined : parseDeltaSeconds(v, 'Expires');
    });
  }

  get event(): EventHeader | undefined {
    return this.cached('event', () => {
      const v = this.getHeader('event');
      return v === undefined ? undefined : parseEvent(v);
    });
  }

  get contentType(): MediaType | undefined {
    return this.cached('content-type', () => {
      const v = this.getHeader('content-type');
      return v === undefined ? undefined : parseMediaType(v);
    });
  }

  /** Encodes start line, headers (Content-Length recomputed) and body. */
  toBuffer(): Buffer {
    let head = this.startLine() + '\r\n';
    for (const h of this.headers) {
      if (h.key === 'content-length') continue;
      head += `${h.name}: ${h.value}\r\n`;
    }
    head += `Content-Length: ${this.body.length}\r\n\r\n`;
    const headBuf = Buffer.from(head, 'utf8');
    return this.body.length === 0 ? headBuf : Buffer.concat([headBuf, this.body]);
  }

  toString(): string {
    return this.toBuffer().toString('utf8');
  }
}

export class SipRequest extends SipMessage {
  method: string;
  uriText: string;
  private parsedUri?: SipUri;

  constructor(method: string, uriText: string, headers?: HeaderField[], body?: Buffer) {
    super(headers, body);
    this.method = method;
    this.uriText = uriText;
  }

  /** The Request-URI, parsed on first use. */
  get uri(): SipUri {
    if (!this.parsedUri) this.parsedUri = parseUri(this.uriText);
    return this.parsedUri;
  }

  setUri(uriText: string): void {
    this.uriText = uriText;
    this.parsedUri = undefined;
  }

  get maxForwards(): number | undefined {
    return this.cached('max-forwards', () => {
      const v = this.getHeader('max-forwards');
      return v === undefined ? undefined : parseDeltaSeconds(v, 'Max-Forwards', 255);
    });
  }

  startLine(): string {
    return `${this.method} ${this.uriText} SIP/2.0`;
  }

  clone(): SipRequest {
    return new SipRequest(this.method, this.uriText, [...this.headers], this.body);
  }
}

export class SipResponse extends SipMessage {
  status: number;
  reason: string;

  constructor(status: number, reason: string, headers?: HeaderField[], body?: Buffer) {
    super(headers, body);
    this.status = status;
    this.reason = reason;
  }

  startLine(): string {
    return `SIP/2.0 ${this.status} ${this.reason}`;
  }
}

export function isRequest(m: SipMessage): m is SipRequest {
  return m instanceof SipRequest;
}
