import { createHash } from 'node:crypto';
import dgram from 'node:dgram';
import { parseDigestParams } from '../../src/ua/digest-client.js';
import { SipRequest, SipResponse } from '../../src/sip/message.js';
import { parseMessage } from '../../src/sip/parser.js';
import { createResponse } from '../../src/sip/response.js';

/**
 * A scripted SIP server on a UDP socket, for the client paths a real server does not take
 * on demand: digest challenges, a NOTIFY with a chosen termination reason. Each test sets
 * `answer` to decide the response to every request.
 */
export class FakeServer {
  readonly requests: SipRequest[] = [];
  answer: (req: SipRequest) => SipResponse | undefined = (req) => createResponse(req, 200);
  private readonly waiters: Array<{ match: (r: SipRequest) => boolean; resolve: (r: SipRequest) => void }> = [];
  private readonly responseWaiters: Array<(r: SipResponse) => void> = [];
  private peer?: { address: string; port: number };

  private constructor(readonly socket: dgram.Socket, readonly port: number) {
    socket.on('message', (data, rinfo) => {
      const parsed = parseMessage(data);
      if (!parsed.ok) return;
      const m = parsed.message;
      this.peer = { address: rinfo.address, port: rinfo.port };
      if (m instanceof SipResponse) {
        this.responseWaiters.shift()?.(m);
        return;
      }
      this.requests.push(m);
      const res = this.answer(m);
      if (res) socket.send(res.toBuffer(), rinfo.port, rinfo.address);
      const w = this.waiters.findIndex((x) => x.match(m));
      if (w >= 0) this.waiters.splice(w, 1)[0]!.resolve(m);
    });
  }

  static async start(): Promise<FakeServer> {
    const s = dgram.createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
    return new FakeServer(s, s.address().port);
  }

  /** The next request matching (including ones already received and not yet waited for). */
  waitRequest(match: (r: SipRequest) => boolean, timeoutMs = 3000): Promise<SipRequest> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('fake server: no matching request')), timeoutMs);
      this.waiters.push({ match, resolve: (r) => (clearTimeout(t), resolve(r)) });
    });
  }

  /** Sends a request to the last client and resolves with its response. */
  request(req: SipRequest): Promise<SipResponse> {
    const p = new Promise<SipResponse>((r) => this.responseWaiters.push(r));
    this.socket.send(req.toBuffer(), this.peer!.port, this.peer!.address);
    return p;
  }

  close(): Promise<void> {
    return new Promise((r) => this.socket.close(() => r()));
  }
}

/** Checks a digest Authorization as a server would (RFC 2617 §3.2.2, SHA-256 or MD5). */
export function checkDigest(req: SipRequest, password: string, header = 'Authorization'): boolean {
  const value = req.getHeader(header);
  if (!value) return false;
  const p = parseDigestParams(value);
  if (!p) return false;
  const alg = (p.get('algorithm') ?? 'MD5').toUpperCase();
  const h = (s: string): string => createHash(alg === 'SHA-256' ? 'sha256' : 'md5').update(s).digest('hex');
  const ha1 = h(`${p.get('username')}:${p.get('realm')}:${password}`);
  const ha2 = h(`${req.method}:${p.get('uri')}`);
  const expected = h(`${ha1}:${p.get('nonce')}:${p.get('nc')}:${p.get('cnonce')}:${p.get('qop')}:${ha2}`);
  return p.get('uri') === req.uriText && expected === p.get('response');
}
