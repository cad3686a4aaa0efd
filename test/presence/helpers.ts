import { pino } from 'pino';
import { LocalDomains } from '../../src/core/local-domains.js';
import type { RequestContext } from '../../src/core/services.js';
import type { RequestSender, SentRequest as SentTransaction } from '../../src/transaction/request-sender.js';
import type { ClientOutcome } from '../../src/transaction/types.js';
import { SipParseError } from '../../src/sip/errors.js';
import { SipRequest, type SipResponse } from '../../src/sip/message.js';
import { parseMessage } from '../../src/sip/parser.js';
import { createResponse, randomToken } from '../../src/sip/response.js';
import type { Destination, Flow } from '../../src/transport/types.js';

export const silent = pino({ level: 'silent' });

export function testDomains(): LocalDomains {
  return new LocalDomains('example.com', ['127.0.0.1']);
}

export const UDP_FLOW: Flow = { protocol: 'udp', remoteAddress: '192.0.2.10', remotePort: 5062, localAddress: '127.0.0.1', localPort: 5060 };

export function tcpFlow(connectionId: number, port = 40000): Flow {
  return { protocol: 'tcp', remoteAddress: '192.0.2.20', remotePort: port, localAddress: '127.0.0.1', localPort: 5060, connectionId };
}

/** Parses request text written with \n line ends; `body` goes after the blank line. */
export function parseRequest(text: string, body: string | Buffer = ''): SipRequest {
  const head = text.trim().split('\n').map((l) => l.trim()).filter(Boolean).join('\r\n');
  const b = Buffer.isBuffer(body) ? body : Buffer.from(body);
  const parsed = parseMessage(Buffer.concat([Buffer.from(`${head}\r\nContent-Length: ${b.length}\r\n\r\n`), b]));
  if (!parsed.ok || !(parsed.message instanceof SipRequest)) throw new Error(`test request does not parse: ${parsed.ok ? 'response' : parsed.error.reason}`);
  return parsed.message;
}

export interface SubscribeOptions {
  readonly uri?: string;
  readonly from?: string;
  readonly fromTag?: string;
  readonly toTag?: string;
  readonly callId?: string;
  readonly cseq?: number;
  readonly event?: string | null;
  readonly expires?: number;
  readonly accept?: string;
  readonly contact?: string | null;
  readonly extra?: readonly string[];
}

export function subscribe(o: SubscribeOptions = {}): SipRequest {
  const uri = o.uri ?? 'sip:alice@example.com';
  const lines = [
    `SUBSCRIBE ${uri} SIP/2.0`,
    `Via: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bK${randomToken()}`,
    'Max-Forwards: 70',
    `From: <${o.from ?? 'sip:bob@example.com'}>;tag=${o.fromTag ?? 'wtag'}`,
    `To: <${uri}>${o.toTag ? `;tag=${o.toTag}` : ''}`,
    `Call-ID: ${o.callId ?? 'sub-1@test'}`,
    `CSeq: ${o.cseq ?? 1} SUBSCRIBE`,
    ...(o.contact === null ? [] : [`Contact: <${o.contact ?? 'sip:bob@192.0.2.10:5062'}>`]),
    ...(o.event === null ? [] : [`Event: ${o.event ?? 'presence'}`]),
    ...(o.expires !== undefined ? [`Expires: ${o.expires}`] : []),
    ...(o.accept !== undefined ? [`Accept: ${o.accept}`] : []),
    ...(o.extra ?? []),
  ];
  return parseRequest(lines.join('\n'));
}

export interface PublishOptions {
  readonly uri?: string;
  readonly event?: string | null;
  readonly expires?: number;
  readonly ifMatch?: string;
  readonly contentType?: string;
  readonly body?: string;
  readonly extra?: readonly string[];
}

export function publish(o: PublishOptions = {}): SipRequest {
  const uri = o.uri ?? 'sip:alice@example.com';
  const lines = [
    `PUBLISH ${uri} SIP/2.0`,
    `Via: SIP/2.0/UDP 192.0.2.11:5064;branch=z9hG4bK${randomToken()}`,
    'Max-Forwards: 70',
    `From: <sip:alice@example.com>;tag=${randomToken()}`,
    `To: <sip:alice@example.com>`,
    `Call-ID: ${randomToken()}@test`,
    'CSeq: 1 PUBLISH',
    ...(o.event === null ? [] : [`Event: ${o.event ?? 'presence'}`]),
    ...(o.expires !== undefined ? [`Expires: ${o.expires}`] : []),
    ...(o.ifMatch !== undefined ? [`SIP-If-Match: ${o.ifMatch}`] : []),
    ...(o.body !== undefined ? [`Content-Type: ${o.contentType ?? 'application/pidf+xml'}`] : []),
    ...(o.extra ?? []),
  ];
  return parseRequest(lines.join('\n'), o.body ?? '');
}

export function pidf(entity: string, basic: 'open' | 'closed', opts: { tuple?: string; note?: string } = {}): string {
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="${entity}">` +
    `<tuple id="${opts.tuple ?? 't1'}"><status><basic>${basic}</basic></status>` +
    (opts.note ? `<note>${opts.note}</note>` : '') +
    '</tuple></presence>'
  );
}

export interface FakeContext {
  readonly ctx: RequestContext;
  readonly responses: SipResponse[];
  /** The final response (throws if none yet). */
  final(): SipResponse;
}

/** A RequestContext as the core builds it; `run` answers SipParseError as the core does. */
export function fakeContext(request: SipRequest, flow: Flow = UDP_FLOW, onRespond?: (res: SipResponse) => void): FakeContext {
  const responses: SipResponse[] = [];
  const ctx: RequestContext = {
    request,
    flow,
    log: silent,
    respond: (res) => {
      responses.push(res);
      onRespond?.(res);
    },
    reply: (status, reason, options) => {
      const res = createResponse(request, status, reason, options);
      ctx.respond(res);
      return res;
    },
  };
  return {
    ctx,
    responses,
    final: () => {
      const f = responses.find((r) => r.status >= 200);
      if (!f) throw new Error('no final response');
      return f;
    },
  };
}

/** Runs a handler like the core: a SipParseError becomes its 400. */
export async function run(handler: (ctx: RequestContext) => void | Promise<void>, fc: FakeContext): Promise<SipResponse> {
  try {
    await handler(fc.ctx);
  } catch (err) {
    if (!(err instanceof SipParseError)) throw err;
    fc.ctx.reply(err.status, err.reason);
  }
  return fc.final();
}

export type Answer = number | 'timeout' | 'transport-error';

export interface SentRequest {
  readonly request: SipRequest;
  readonly destination: Destination;
  /** Sequence number across every FakeTransactions, to check order against responses. */
  readonly order: number;
  answered: boolean;
  answer(a: Answer): void;
}

let order = 0;
export function nextOrder(): number {
  return ++order;
}

/** Client transactions without a network: requests are recorded; answers come from `answerer` or by hand. */
export class FakeTransactions implements RequestSender {
  readonly sent: SentRequest[] = [];

  constructor(public answerer?: (req: SipRequest) => Answer | undefined) {}

  sendRequest(req: SipRequest, dest: Destination): SentTransaction {
    let resolve!: (r: SipResponse) => void;
    const final = new Promise<SipResponse>((r) => (resolve = r));
    const txn: { final: Promise<SipResponse>; outcome?: ClientOutcome } = { final };
    const entry: SentRequest = {
      request: req,
      destination: dest,
      order: nextOrder(),
      answered: false,
      answer: (a) => {
        if (entry.answered) return;
        entry.answered = true;
        if (a === 'timeout') {
          txn.outcome = 'timeout';
          resolve(createResponse(req, 408));
        } else if (a === 'transport-error') {
          txn.outcome = 'transport-error';
          resolve(createResponse(req, 503));
        } else {
          txn.outcome = 'response';
          resolve(createResponse(req, a));
        }
      },
    };
    this.sent.push(entry);
    const auto = this.answerer?.(req);
    if (auto !== undefined) queueMicrotask(() => entry.answer(auto));
    return txn;
  }

  notifies(): SipRequest[] {
    return this.sent.filter((s) => s.request.method === 'NOTIFY').map((s) => s.request);
  }
}

/** Lets pending promise chains run. */
export async function settle(rounds = 10): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>((r) => setImmediate(r));
}
