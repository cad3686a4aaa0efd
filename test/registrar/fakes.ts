import { pino } from 'pino';
import type { RequestContext } from '../../src/core/services.js';
import { LocalDomains } from '../../src/core/local-domains.js';
import { SipParseError } from '../../src/sip/errors.js';
import { SipRequest, type SipResponse } from '../../src/sip/message.js';
import { parseMessage } from '../../src/sip/parser.js';
import { createResponse, randomToken } from '../../src/sip/response.js';
import type { Flow } from '../../src/transport/types.js';

export const silent = pino({ level: 'silent' });

export function domains(): LocalDomains {
  return new LocalDomains('example.com', ['127.0.0.1']);
}

export const UDP_FLOW: Flow = { protocol: 'udp', remoteAddress: '192.0.2.10', remotePort: 5062, localAddress: '127.0.0.1', localPort: 5060 };

export function tcpFlow(connectionId: number, port = 40000): Flow {
  return { protocol: 'tcp', remoteAddress: '192.0.2.20', remotePort: port, localAddress: '127.0.0.1', localPort: 5060, connectionId };
}

/** Parses request text written with \n line ends; `body` goes after the blank line. */
export function parseRequest(text: string, body = ''): SipRequest {
  const head = text.trim().split('\n').map((l) => l.trim()).filter(Boolean).join('\r\n');
  const parsed = parseMessage(Buffer.from(`${head}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`));
  if (!parsed.ok || !(parsed.message instanceof SipRequest)) throw new Error(`test request does not parse: ${parsed.ok ? 'response' : parsed.error.reason}`);
  return parsed.message;
}

export function register(opts: { user?: string; uri?: string; contacts?: string[]; expires?: number; callId?: string; cseq?: number; extra?: string[] } = {}): SipRequest {
  const user = opts.user ?? 'bob';
  const lines = [
    `REGISTER ${opts.uri ?? 'sip:example.com'} SIP/2.0`,
    `Via: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bK${randomToken()}`,
    'Max-Forwards: 70',
    `From: <sip:${user}@example.com>;tag=${randomToken()}`,
    `To: <sip:${user}@example.com>`,
    `Call-ID: ${opts.callId ?? 'reg-1@test'}`,
    `CSeq: ${opts.cseq ?? 1} REGISTER`,
    ...(opts.contacts ?? ['<sip:bob@192.0.2.10:5062>']).map((c) => `Contact: ${c}`),
    ...(opts.expires !== undefined ? [`Expires: ${opts.expires}`] : []),
    ...(opts.extra ?? []),
  ];
  return parseRequest(lines.join('\n'));
}

export function message(opts: { to?: string; body?: string; contentType?: string; callId?: string; extra?: string[]; maxForwards?: number } = {}): SipRequest {
  const to = opts.to ?? 'sip:bob@example.com';
  const lines = [
    `MESSAGE ${to} SIP/2.0`,
    `Via: SIP/2.0/UDP 192.0.2.30:5070;branch=z9hG4bK${randomToken()}`,
    `Max-Forwards: ${opts.maxForwards ?? 70}`,
    `From: "Alice" <sip:alice@example.com>;tag=${randomToken()}`,
    `To: <${to}>`,
    `Call-ID: ${opts.callId ?? `${randomToken()}@test`}`,
    'CSeq: 7 MESSAGE',
    `Content-Type: ${opts.contentType ?? 'text/plain'}`,
    ...(opts.extra ?? []),
  ];
  return parseRequest(lines.join('\n'), opts.body ?? 'hello');
}

export interface FakeContext {
  ctx: RequestContext;
  responses: SipResponse[];
  /** The final response once the handler is done. */
  final(): SipResponse;
}

/** A RequestContext as the core builds it, answering SipParseError like the core does. */
export function fakeContext(request: SipRequest, flow: Flow = UDP_FLOW): FakeContext {
  const responses: SipResponse[] = [];
  const ctx: RequestContext = {
    request,
    flow,
    log: silent,
    respond: (res) => {
      responses.push(res);
    },
    reply: (status, reason, options) => {
      const res = createResponse(request, status, reason, options);
      responses.push(res);
      return res;
    },
  };
  return {
    ctx,
    responses,
    final: () => {
      const f = responses.filter((r) => r.status >= 200);
      if (f.length !== 1) throw new Error(`expected one final response, got ${f.map((r) => r.status).join(',') || 'none'}`);
      return f[0]!;
    },
  };
}

/** Runs a service handler like the core: a SipParseError becomes its status. */
export async function run(handle: (ctx: RequestContext) => void | Promise<void>, fc: FakeContext): Promise<SipResponse> {
  try {
    await handle(fc.ctx);
  } catch (err) {
    if (!(err instanceof SipParseError)) throw err;
    fc.ctx.reply(err.status, err.reason);
  }
  return fc.final();
}
