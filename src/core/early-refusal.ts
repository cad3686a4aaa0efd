import { readHead, type MessageHead } from '../sip/parser.js';
import { SipRequest } from '../sip/message.js';
import type { TransactionLayer } from '../transaction/transaction-layer.js';
import type { Flow } from '../transport/types.js';
import { loadClass, type OverloadControl } from './overload-control.js';

/** What the early look at a message decided. */
export type EarlyOutcome =
  /** Answered with a 503 (or dropped: its source is over its rate), nothing more to do. */
  | { readonly kind: 'refused' }
  /** Overload control admitted it: parse it from this head and serve it, without asking again. */
  | { readonly kind: 'admitted'; readonly head: MessageHead }
  /** Not for this path (a response, ACK, CANCEL, a retransmission, a head that does not read): the usual path decides. */
  | { readonly kind: 'undecided' };

const REFUSED: EarlyOutcome = { kind: 'refused' };
const UNDECIDED: EarlyOutcome = { kind: 'undecided' };

export interface EarlyRefusalOptions {
  readonly overload: OverloadControl;
  readonly transactions: Pick<TransactionLayer, 'isRetransmission' | 'refuseOverloaded'>;
  /** Spends one of the source's tokens for an answer (ServerSecurity.admitFrom). */
  readonly admitFrom: (flow: Flow) => boolean;
}

/**
 * Overload refusals before the parse. While overload control refuses requests, most of what
 * arrives is answered with a 503, and at twice the sustained rate those answers alone took a
 * quarter to a third of the SIP thread when each request was first parsed whole (every header,
 * the Request-URI, From and To as addresses, the body's length, the message caps). A 503
 * needs less (RFC 3261 §8.2.6.2, §21.5.4): the header lines, the top Via (to stamp it,
 * §18.2.1, and match the transaction, §17.2.3), whether the To has a tag and whether a PUBLISH
 * has SIP-If-Match (what the refusal costs the client: overload-control.ts, LoadClass). This
 * path reads only that, asks overload control once, and either answers or hands the head on
 * to be parsed in full.
 *
 * Never refused here, as on the usual path: responses, ACK, CANCEL, and retransmissions of a
 * request whose transaction exists. A head that does not read is left to the parser, which
 * answers it with the right 400.
 */
export class EarlyRefusal {
  private readonly overload: OverloadControl;
  private readonly transactions: EarlyRefusalOptions['transactions'];
  private readonly admitFrom: (flow: Flow) => boolean;

  constructor(options: EarlyRefusalOptions) {
    this.overload = options.overload;
    this.transactions = options.transactions;
    this.admitFrom = options.admitFrom;
  }

  /** Whether the early path runs at all: only while overload control refuses something. */
  get active(): boolean {
    return this.overload.level > 0;
  }

  screen(data: Buffer, flow: Flow): EarlyOutcome {
    if (!startsNewWork(data)) return UNDECIDED;
    const head = readHead(data);
    if (head.headerError || !answerable(head)) return UNDECIDED;
    const line = head.startLine;
    const sp1 = line.indexOf(' ');
    const sp2 = line.indexOf(' ', sp1 + 1);
    if (sp1 <= 0 || sp2 <= sp1 + 1 || line.indexOf(' ', sp2 + 1) >= 0) return UNDECIDED;
    const req = new SipRequest(line.slice(0, sp1), line.slice(sp1 + 1, sp2), head.headers);
    // What the 503 copies must read, or the client could not match it (the parser's 400 then).
    try {
      void req.topVia;
      void req.from;
      void req.to;
      void req.callId;
      void req.cseq;
    } catch {
      return UNDECIDED;
    }
    if (this.transactions.isRetransmission(req)) return UNDECIDED;
    const retryAfter = this.overload.admitClass(loadClass(req));
    if (retryAfter === 0) return { kind: 'admitted', head };
    // An answer a (spoofable) UDP source gets is bounded by its rate, as every other one.
    if (this.admitFrom(flow)) this.transactions.refuseOverloaded(req, flow, retryAfter);
    return REFUSED;
  }
}

/**
 * RFC 3261 §8.1.1: a response can be matched to its request only through From, To, Call-ID
 * and CSeq, copied from it (§8.2.6.2), one of each; a request without one, or with two, gets
 * the parser's 400 instead.
 */
function answerable(head: MessageHead): boolean {
  let seen = 0;
  for (const h of head.headers) {
    const bit = copiedBit(h.key);
    if (bit === 0) continue;
    if (seen & bit) return false;
    seen |= bit;
  }
  return seen === 15;
}

function copiedBit(key: string): number {
  switch (key) {
    case 'from':
      return 1;
    case 'to':
      return 2;
    case 'call-id':
      return 4;
    case 'cseq':
      return 8;
    default:
      return 0;
  }
}

const SIP_SLASH = [0x53, 0x49, 0x50, 0x2f]; // "SIP/"
const ACK_SP = [0x41, 0x43, 0x4b, 0x20];
const CANCEL_SP = [0x43, 0x41, 0x4e, 0x43, 0x45, 0x4c, 0x20];

/**
 * A request other than ACK and CANCEL, judged from its first bytes (after the CRLFs RFC 3261
 * §7.5 lets precede a start line): a Status-Line begins with "SIP/" in any case, and methods
 * are case-sensitive (§7.1).
 */
function startsNewWork(data: Buffer): boolean {
  let at = 0;
  while (at < data.length && (data[at] === 0x0d || data[at] === 0x0a)) at++;
  if (startsWith(data, at, SIP_SLASH, true)) return false;
  return !startsWith(data, at, ACK_SP, false) && !startsWith(data, at, CANCEL_SP, false);
}

function startsWith(data: Buffer, at: number, bytes: readonly number[], anyCase: boolean): boolean {
  if (data.length - at < bytes.length) return false;
  for (let i = 0; i < bytes.length; i++) {
    let c = data[at + i]!;
    if (anyCase && c >= 0x61 && c <= 0x7a) c -= 0x20;
    if (c !== bytes[i]) return false;
  }
  return true;
}
