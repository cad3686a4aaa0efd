import { parseMessage } from '../../src/sip/parser.js';
import { SipRequest, SipResponse } from '../../src/sip/message.js';
import { createResponse } from '../../src/sip/response.js';
import { TransactionLayer, type TransactionLayerOptions } from '../../src/transaction/transaction-layer.js';
import type { ServerFailure, ServerTransaction } from '../../src/transaction/types.js';
import type { Destination, Flow, MessageSender, TransportProtocol } from '../../src/transport/types.js';
import { ManualTimers } from '../../src/util/timers.js';

export interface SentMessage {
  readonly data: Buffer;
  readonly dest: Destination;
  /** Clock time of the send. */
  readonly at: number;
  readonly message: SipRequest | SipResponse;
}

/** A MessageSender that records what was sent, parsed back, and fails when told to. */
export class FakeSender implements MessageSender {
  readonly sent: SentMessage[] = [];
  readonly open = new Set<number>();
  /** Return an Error to make that send reject. */
  fail?: (dest: Destination, message: SipRequest | SipResponse) => Error | undefined;

  constructor(private readonly timers: ManualTimers, readonly ourSentBy = '192.0.2.1:5060') {}

  send(data: Buffer, dest: Destination): Promise<void> {
    const parsed = parseMessage(data);
    if (!parsed.ok) throw new Error(`sent an unparseable message: ${parsed.error.reason}\n${data.toString()}`);
    const message = parsed.message;
    this.sent.push({ data, dest, at: this.timers.now(), message });
    const err = this.fail?.(dest, message);
    return err ? Promise.reject(err) : Promise.resolve();
  }

  sentBy(_dest: Destination): string {
    return this.ourSentBy;
  }

  isOpen(connectionId: number): boolean {
    return this.open.has(connectionId);
  }

  responses(): SipResponse[] {
    return this.sent.map((s) => s.message).filter((m): m is SipResponse => m instanceof SipResponse);
  }

  requests(): SipRequest[] {
    return this.sent.map((s) => s.message).filter((m): m is SipRequest => m instanceof SipRequest);
  }

  /** Send times of messages that satisfy `pred`. */
  times(pred: (m: SipRequest | SipResponse) => boolean = () => true): number[] {
    return this.sent.filter((s) => pred(s.message)).map((s) => s.at);
  }

  clear(): void {
    this.sent.length = 0;
  }
}

export function udpFlow(remoteAddress = '198.51.100.7', remotePort = 5060): Flow {
  return { protocol: 'udp', remoteAddress, remotePort, localAddress: '192.0.2.1', localPort: 5060 };
}

export function streamFlow(protocol: TransportProtocol, connectionId: number, remoteAddress = '198.51.100.7', remotePort = 40000): Flow {
  return { protocol, remoteAddress, remotePort, localAddress: '192.0.2.1', localPort: protocol === 'tls' ? 5061 : 5060, connectionId };
}

export interface RequestSpec {
  method?: string;
  uri?: string;
  transport?: string;
  sentBy?: string;
  /** Branch parameter; null for none. */
  branch?: string | null;
  viaParams?: string;
  callId?: string;
  cseq?: number;
  /** CSeq method, when it must differ from the method (never in valid requests). */
  cseqMethod?: string;
  fromTag?: string | null;
  toTag?: string;
  extraHeaders?: string[];
}

/** A request as the parser would hand it over. */
export function request(spec: RequestSpec = {}): SipRequest {
  const method = spec.method ?? 'MESSAGE';
  const branch = spec.branch === null ? '' : `;branch=${spec.branch ?? 'z9hG4bKabc123'}`;
  const lines = [
    `${method} ${spec.uri ?? 'sip:bob@example.com'} SIP/2.0`,
    `Via: SIP/2.0/${spec.transport ?? 'UDP'} ${spec.sentBy ?? '198.51.100.7:5060'}${branch}${spec.viaParams ?? ''}`,
    'Max-Forwards: 70',
    `From: <sip:alice@example.com>${spec.fromTag === null ? '' : `;tag=${spec.fromTag ?? 'fromtag1'}`}`,
    `To: <sip:bob@example.com>${spec.toTag ? `;tag=${spec.toTag}` : ''}`,
    `Call-ID: ${spec.callId ?? 'call-1@198.51.100.7'}`,
    `CSeq: ${spec.cseq ?? 1} ${spec.cseqMethod ?? method}`,
    ...(spec.extraHeaders ?? []),
  ];
  const parsed = parseMessage(Buffer.from(lines.join('\r\n') + '\r\n\r\n'));
  if (!parsed.ok) throw new Error(`bad test request: ${parsed.error.reason}`);
  return parsed.message as SipRequest;
}

/** A response to one of our requests, as it would come back (our Via on top). */
export function responseTo(req: SipRequest, status: number, toTag = 'uas-tag'): SipResponse {
  const res = createResponse(req, status, undefined, { toTag });
  const parsed = parseMessage(res.toBuffer());
  if (!parsed.ok) throw new Error(parsed.error.reason);
  return parsed.message as SipResponse;
}

export interface Harness {
  readonly timers: ManualTimers;
  readonly sender: FakeSender;
  readonly layer: TransactionLayer;
  readonly requests: ServerTransaction[];
  readonly strayResponses: SipResponse[];
  readonly strayAcks: SipRequest[];
  readonly failures: Array<{ txn: ServerTransaction; reason: ServerFailure }>;
  /** Delivers a message as if a transport had read it on `flow`. */
  deliver(message: SipRequest | SipResponse, flow?: Flow): void;
}

/**
 * A transaction layer on ManualTimers and a FakeSender. `answer` is the TU: it gets every
 * new server transaction (default: records it and does nothing).
 */
export function harness(options: Partial<TransactionLayerOptions> & { answer?: (txn: ServerTransaction) => void } = {}): Harness {
  const timers = new ManualTimers();
  const sender = new FakeSender(timers);
  const requests: ServerTransaction[] = [];
  const strayResponses: SipResponse[] = [];
  const strayAcks: SipRequest[] = [];
  const failures: Array<{ txn: ServerTransaction; reason: ServerFailure }> = [];
  const layer = new TransactionLayer({
    sender,
    timers,
    onRequest: (txn) => {
      requests.push(txn);
      options.answer?.(txn);
    },
    onStrayResponse: (res) => strayResponses.push(res),
    onStrayAck: (req) => strayAcks.push(req),
    onServerFailure: (txn, reason) => failures.push({ txn, reason }),
    ...options,
  });
  return {
    timers,
    sender,
    layer,
    requests,
    strayResponses,
    strayAcks,
    failures,
    deliver: (message, flow = udpFlow()) => layer.receive({ message, flow, receivedAt: timers.now() }),
  };
}

/** Lets rejected sends reach their handlers (promise callbacks), without any clock time passing. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/** Intervals between consecutive times. */
export function gaps(times: number[]): number[] {
  return times.slice(1).map((t, i) => t - times[i]!);
}
