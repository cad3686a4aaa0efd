import { WebSocket } from 'ws';
import { parseMessage } from '../../src/sip/parser.js';
import { SipRequest, SipResponse } from '../../src/sip/message.js';
import { createResponse, randomToken } from '../../src/sip/response.js';
import { Mailbox } from '../support/mailbox.js';

/**
 * A raw SIP-over-WebSocket client for tests (RFC 7118), independent of the server's stack:
 * one message per frame, Via `SIP/2.0/WS <x>.invalid`, Contact host `.invalid` as browser
 * clients write them, so the server can reach it only down this connection.
 */
export class WsUa {
  private readonly requestBox = new Mailbox<SipRequest>(() => `WsUa ${this.user}`, 'request');
  private readonly responseBox = new Mailbox<SipResponse>(() => `WsUa ${this.user}`, 'response');
  readonly requests: SipRequest[] = this.requestBox.seen;
  readonly responses: SipResponse[] = this.responseBox.seen;
  private readonly autoAnswers = new Map<string, number>();
  private cseq = 1;
  readonly host = `${randomToken(6).toLowerCase().replace(/[^a-z0-9]/g, 'x')}.invalid`;
  closed: Promise<number>;

  private constructor(readonly ws: WebSocket, readonly user: string, readonly domain: string) {
    this.closed = new Promise((r) => ws.once('close', (code) => r(code)));
    ws.on('message', (data: Buffer, isBinary: boolean) => this.onData(Buffer.isBuffer(data) ? data : Buffer.from(data), isBinary));
  }

  static async connect(url: string, opts: { user?: string; domain?: string; origin?: string; protocols?: string[] } = {}): Promise<WsUa> {
    const ws = new WebSocket(url, opts.protocols ?? ['sip'], opts.origin ? { origin: opts.origin } : {});
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    });
    ws.on('error', () => {});
    return new WsUa(ws, opts.user ?? 'alice', opts.domain ?? 'example.com');
  }

  /** Frames received as binary (RFC 7118 allows both). */
  binaryFrames = 0;

  get aor(): string {
    return `sip:${this.user}@${this.domain}`;
  }

  get contactUri(): string {
    return `sip:${this.user}@${this.host};transport=ws`;
  }

  request(method: string, uri: string, opts: { headers?: Record<string, string | number>; body?: string; callId?: string; fromTag?: string; toTag?: string } = {}): SipRequest {
    const req = new SipRequest(method, uri);
    req.addHeader('Via', `SIP/2.0/WS ${this.host};branch=z9hG4bK${randomToken()}`);
    req.addHeader('Max-Forwards', 70);
    req.addHeader('From', `<${this.aor}>;tag=${opts.fromTag ?? randomToken()}`);
    req.addHeader('To', `<${uri}>${opts.toTag ? `;tag=${opts.toTag}` : ''}`);
    req.addHeader('Call-ID', opts.callId ?? `${randomToken(12)}@ws`);
    req.addHeader('CSeq', `${this.cseq++} ${method}`);
    req.addHeader('Contact', `<${this.contactUri}>`);
    for (const [k, v] of Object.entries(opts.headers ?? {})) req.setHeader(k, v);
    if (opts.body !== undefined) req.body = Buffer.from(opts.body, 'utf8');
    return req;
  }

  send(msg: SipRequest | SipResponse | Buffer, binary = false): void {
    const data = Buffer.isBuffer(msg) ? msg : msg.toBuffer();
    this.ws.send(binary ? data : data.toString('utf8'), { binary });
  }

  async transact(req: SipRequest, timeoutMs = 3000, binary = false): Promise<SipResponse> {
    const branch = req.topVia.branch;
    const p = this.waitResponse((r) => r.status >= 200 && r.topVia.branch === branch, timeoutMs);
    this.send(req, binary);
    return p;
  }

  autoAnswer(method: string, status: number): void {
    this.autoAnswers.set(method, status);
  }

  waitResponse(match: (r: SipResponse) => boolean = () => true, timeoutMs = 3000): Promise<SipResponse> {
    return this.responseBox.wait(match, timeoutMs);
  }

  waitRequest(match: (r: SipRequest) => boolean = () => true, timeoutMs = 3000): Promise<SipRequest> {
    return this.requestBox.wait(match, timeoutMs);
  }


  private onData(data: Buffer, isBinary: boolean): void {
    if (isBinary) this.binaryFrames++;
    const parsed = parseMessage(data);
    if (!parsed.ok) return;
    const m = parsed.message;
    if (m instanceof SipResponse) this.responseBox.deliver(m);
    else {
      const auto = this.autoAnswers.get(m.method);
      if (auto !== undefined) this.send(createResponse(m, auto));
      this.requestBox.deliver(m);
    }
  }


  async close(): Promise<void> {
    this.requestBox.close();
    this.responseBox.close();
    if (this.ws.readyState === this.ws.OPEN || this.ws.readyState === this.ws.CONNECTING) this.ws.close();
    await Promise.race([this.closed, new Promise((r) => setTimeout(r, 500))]);
    this.ws.terminate();
  }
}

/** The ws:// URL of a started server's WebSocket listener. */
export function wsUrl(listeners: ReadonlyArray<{ protocol: string; host: string; port: number }>, protocol: 'ws' | 'wss' = 'ws'): string {
  const l = listeners.find((x) => x.protocol === protocol);
  if (!l) throw new Error(`server has no ${protocol} listener`);
  const host = l.host === '0.0.0.0' ? '127.0.0.1' : l.host;
  return `${protocol}://${host}:${l.port}`;
}
