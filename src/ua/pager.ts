import type { SipRequest } from '../sip/message.js';
import type { Flow } from '../transport/types.js';
import { TypedEmitter } from './emitter.js';
import type { SipRequestError } from './errors.js';
import type { UserAgent } from './user-agent.js';

/** An instant message received (RFC 3428 §7). */
export interface IncomingMessage {
  /** The sender's address (From URI). */
  readonly from: string;
  readonly fromName?: string;
  /** The address it was sent to (To URI). */
  readonly to: string;
  readonly contentType: string;
  readonly body: Buffer;
  /** The body as text (UTF-8). */
  readonly text: string;
  readonly callId: string;
  readonly receivedAt: Date;
}

/** What the server said to a MESSAGE we sent. */
export interface SendResult {
  /** 200: delivered to a device; 202: accepted, stored for later delivery (RFC 3428 §7). */
  readonly status: number;
  readonly reason: string;
  readonly stored: boolean;
}

export type PagerEvents = {
  message: (m: IncomingMessage) => void;
};

/** Largest body the pager accepts; bigger MESSAGEs get 413 (the server's limits apply first). */
const MAX_BODY = 64 * 1024;

/**
 * Pager-mode instant messaging (RFC 3428): send a MESSAGE through the server, and receive
 * the MESSAGEs it forwards to our registered Contact (a Registration keeps it bound).
 */
export class Pager extends TypedEmitter<PagerEvents> {
  constructor(private readonly ua: UserAgent) {
    super();
    ua.handle('MESSAGE', (req, flow) => this.receive(req, flow));
  }

  /**
   * Sends `body` (text/plain unless told) to `to` (`sip:bob@example.com`, or `bob` in our
   * domain). Resolves on a 2xx; rejects with a SipRequestError otherwise.
   */
  async send(to: string, body: string | Buffer, contentType = 'text/plain;charset=utf-8'): Promise<SendResult> {
    const target = this.ua.resolveTarget(to);
    const req = this.ua.createRequest('MESSAGE', target, { body, contentType });
    const { response } = await this.ua.send(req);
    if (response.status < 200 || response.status >= 300) throw this.ua.failure('MESSAGE', response);
    return { status: response.status, reason: response.reason, stored: response.status === 202 };
  }

  private receive(req: SipRequest, _flow: Flow): { status: number; reason?: string } {
    if (req.body.length > MAX_BODY) return { status: 413 };
    let ct: string;
    try {
      const t = req.contentType;
      ct = t ? t.essence : 'text/plain';
    } catch {
      return { status: 400, reason: 'Bad Content-Type' };
    }
    this.emit('message', {
      from: req.from.uri.raw,
      ...(req.from.displayName ? { fromName: req.from.displayName } : {}),
      to: req.to.uri.raw,
      contentType: ct,
      body: req.body,
      text: req.body.toString('utf8'),
      callId: req.callId,
      receivedAt: new Date(),
    });
    return { status: 200 };
  }
}
