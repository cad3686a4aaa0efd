import dgram from 'node:dgram';
import net from 'node:net';
import { parseMessage, readHead } from '../../src/sip/parser.js';
import { SipRequest, SipResponse } from '../../src/sip/message.js';
import { createResponse, randomToken } from '../../src/sip/response.js';
import { Mailbox } from './mailbox.js';
import { StreamFramer } from '../../src/transport/stream-framer.js';

export type UaProtocol = 'udp' | 'tcp';

/**
 * A small SIP user agent that tests drive over a real socket: build and send requests,
 * wait for responses and for requests from the server (NOTIFY, MESSAGE), answer them.
 * Deliberately independent of the server's own transaction layer.
 */
export class TestUa {
  private readonly requestBox = new Mailbox<SipRequest>(() => `TestUa ${this.user}`, 'request');
  private readonly responseBox = new Mailbox<SipResponse>(() => `TestUa ${this.user}`, 'response');
  readonly requests: SipRequest[] = this.requestBox.seen;
  readonly responses: SipResponse[] = this.responseBox.seen;
  readonly raw: Buffer[] = [];
  private readonly autoAnswers = new Map<string, number | ((req: SipRequest) => SipResponse | undefined)>();
  private cseq = 1;
  private udp?: dgram.Socket;
  private tcp?: net.Socket;
  localAddress = '127.0.0.1';
  localPort = 0;
  /** User part used in From and Contact. */
  user: string;
  domain: string;

  private constructor(readonly protocol: UaProtocol, readonly serverHost: string, readonly serverPort: number, user: string, domain: string) {
    this.user = user;
    this.domain = domain;
  }

  static async create(opts: { protocol?: UaProtocol; host?: string; port: number; user?: string; domain?: string }): Promise<TestUa> {
    const ua = new TestUa(opts.protocol ?? 'udp', opts.host ?? '127.0.0.1', opts.port, opts.user ?? 'alice', opts.domain ?? 'example.com');
    await ua.open();
    return ua;
  }

  private async open(): Promise<void> {
    if (this.protocol === 'udp') {
      const s = dgram.createSocket(this.serverHost.includes(':') ? 'udp6' : 'udp4');
      await new Promise<void>((r) => s.bind(0, this.serverHost, () => r()));
      this.localAddress = s.address().address;
      this.localPort = s.address().port;
      s.on('message', (data) => this.onData(data));
      this.udp = s;
    } else {
      const s = net.connect({ host: this.serverHost, port: this.serverPort });
      await new Promise<void>((resolve, reject) => {
        s.once('connect', resolve);
        s.once('error', reject);
      });
      this.localAddress = s.localAddress!;
      this.localPort = s.localPort!;
      const framer = new StreamFramer(1 << 20);
      s.on('data', (chunk) => {
        for (const ev of framer.push(chunk)) if (ev.kind === 'message') this.onData(ev.data);
      });
      s.on('error', () => {});
      this.tcp = s;
    }
  }

  get aor(): string {
    return `sip:${this.user}@${this.domain}`;
  }

  get contactUri(): string {
    const host = this.localAddress.includes(':') ? `[${this.localAddress}]` : this.localAddress;
    return `sip:${this.user}@${host}:${this.localPort}${this.protocol === 'tcp' ? ';transport=tcp' : ''}`;
  }

  get viaHost(): string {
    const host = this.localAddress.includes(':') ? `[${this.localAddress}]` : this.localAddress;
    return `${host}:${this.localPort}`;
  }

  /** Builds a request with the mandatory headers; `headers` are added after them and may replace them. */
  request(method: string, uri: string, opts: { headers?: Record<string, string | number>; body?: string | Buffer; callId?: string; fromTag?: string; toTag?: string; to?: string; from?: string; cseq?: number } = {}): SipRequest {
    const req = new SipRequest(method, uri);
    req.addHeader('Via', `SIP/2.0/${this.protocol.toUpperCase()} ${this.viaHost};branch=z9hG4bK${randomToken()};rport`);
    req.addHeader('Max-Forwards', 70);
    req.addHeader('From', `${opts.from ?? `<${this.aor}>`};tag=${opts.fromTag ?? randomToken()}`);
    req.addHeader('To', `${opts.to ?? `<${uri}>`}${opts.toTag ? `;tag=${opts.toTag}` : ''}`);
    req.addHeader('Call-ID', opts.callId ?? `${randomToken(12)}@test`);
    req.addHeader('CSeq', `${opts.cseq ?? this.cseq++} ${method}`);
    req.addHeader('Contact', `<${this.contactUri}>`);
    for (const [k, v] of Object.entries(opts.headers ?? {})) req.setHeader(k, v);
    if (opts.body !== undefined) req.body = Buffer.isBuffer(opts.body) ? opts.body : Buffer.from(opts.body, 'utf8');
    return req;
  }

  send(msg: SipRequest | SipResponse | Buffer | string): void {
    const data = typeof msg === 'string' ? Buffer.from(msg, 'utf8') : Buffer.isBuffer(msg) ? msg : msg.toBuffer();
    if (this.udp) this.udp.send(data, this.serverPort, this.serverHost);
    else this.tcp!.write(data);
  }

  /** Sends a request and resolves with its final response (provisional ones are skipped). */
  async transact(req: SipRequest, timeoutMs = 3000): Promise<SipResponse> {
    const branch = req.topVia.branch;
    const method = req.method;
    const callId = req.getHeader('call-id');
    const p = this.waitResponse((r) => {
      if (r.status < 200 || r.topVia.branch !== branch) return false;
      // A 400 that copies a CSeq the server could not read (see unparsedResponse) is
      // matched by its Call-ID instead.
      const cseqMethod = cseqMethodOf(r);
      return cseqMethod !== undefined ? cseqMethod === method : r.getHeader('call-id') === callId;
    }, timeoutMs);
    this.send(req);
    return p;
  }

  waitResponse(match: (r: SipResponse) => boolean = () => true, timeoutMs = 3000): Promise<SipResponse> {
    return this.responseBox.wait(match, timeoutMs);
  }

  /** Next request from the server matching `match` (already received ones count, oldest first). */
  waitRequest(match: (r: SipRequest) => boolean = () => true, timeoutMs = 3000): Promise<SipRequest> {
    return this.requestBox.wait(match, timeoutMs);
  }

  /** Answers every request of `method` with `status` (or with what the function builds). */
  autoAnswer(method: string, answer: number | ((req: SipRequest) => SipResponse | undefined)): void {
    this.autoAnswers.set(method.toUpperCase(), answer);
  }

  respond(req: SipRequest, status: number, opts: { headers?: Array<[string, string | number]>; reason?: string } = {}): SipResponse {
    const res = createResponse(req, status, opts.reason, { headers: opts.headers });
    this.send(res);
    return res;
  }


  private onData(data: Buffer): void {
    this.raw.push(data);
    const parsed = parseMessage(data);
    if (!parsed.ok) {
      const res = unparsedResponse(data);
      if (res) this.responseBox.deliver(res);
      return;
    }
    const m = parsed.message;
    if (m instanceof SipResponse) this.responseBox.deliver(m);
    else {
      const auto = this.autoAnswers.get(m.method);
      if (auto !== undefined) {
        const res = typeof auto === 'number' ? createResponse(m, auto) : auto(m);
        if (res) this.send(res);
      }
      this.requestBox.deliver(m);
    }
  }


  async close(): Promise<void> {
    this.requestBox.close();
    this.responseBox.close();
    if (this.udp) await new Promise<void>((r) => this.udp!.close(() => r()));
    if (this.tcp) this.tcp.destroy();
  }
}

function cseqMethodOf(r: SipResponse): string | undefined {
  try {
    return r.cseq.method;
  } catch {
    return undefined;
  }
}

/**
 * A response the parser refuses, kept when its Status-Line and Call-ID read: a 400 copies
 * the request's faulty header (a CSeq "abc OPTIONS" comes back as it went), and a test
 * must see it. Its accessors throw for the faulty header; matchers that read it just
 * do not match (see Mailbox).
 */
function unparsedResponse(data: Buffer): SipResponse | undefined {
  const head = readHead(data);
  const m = /^SIP\/2\.0 ([1-6]\d\d)(?: (.*))?$/i.exec(head.startLine);
  if (!m) return undefined;
  const res = new SipResponse(Number(m[1]), m[2] ?? '', head.headers, data.subarray(head.bodyStart));
  return res.getHeader('call-id') !== undefined ? res : undefined;
}
