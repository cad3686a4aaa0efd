import { isSipUri } from '../sip/uri.js';
import { SipParseError } from '../sip/errors.js';
import { quote } from '../sip/header-values.js';
import type { SipRequest } from '../sip/message.js';
import { isSecureProtocol, type Flow, type TransportProtocol } from '../transport/types.js';
import { ownString } from '../util/own-string.js';

/**
 * The flow a dialog's requests came on: enough to send back down the same connection
 * while it is open. A plain copy of the transport's Flow, so it can be stored.
 */
export interface DialogFlow {
  readonly protocol: TransportProtocol;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  /** Connection table id for stream transports; meaningless after a restart. */
  readonly connectionId?: number;
}

/**
 * RFC 3261 §12.1 dialog state, as the UAS of the dialog-creating request (we are the
 * notifier of a SUBSCRIBE). A plain JSON-able record so a store can keep it and a restarted
 * server can go on sending requests in the dialog.
 */
export interface Dialog {
  readonly callId: string;
  readonly localTag: string;
  readonly remoteTag: string;
  /** Local URI as a name-addr without tag: the To of the dialog-creating request. */
  readonly localUri: string;
  /** Remote URI as a name-addr without tag: its From. */
  readonly remoteUri: string;
  /** §12.2.1.1: CSeq of our last request in the dialog (0 before the first). */
  localSeq: number;
  /** §12.2.2: CSeq of the peer's last request in the dialog. */
  remoteSeq: number;
  /** §12.1.1: Record-Route values of the request, in order (Route header values). */
  routeSet: readonly string[];
  /** §12.1.1: the Contact URI of the request; changed by target refresh requests. */
  remoteTarget: string;
  /** §12.1.1: the request came over TLS with a sips Request-URI. */
  readonly secure: boolean;
  /** Our Contact URI in this dialog (what the peer sends its in-dialog requests to). */
  readonly localContact: string;
  /** Where the dialog's requests came from. */
  flow: DialogFlow;
}

/** The key of a dialog in a table (Call-ID, local tag, remote tag: RFC 3261 §12). */
export function dialogKey(callId: string, localTag: string, remoteTag: string): string {
  return `${callId}\u0000${localTag}\u0000${remoteTag}`;
}

export function keyOf(d: Dialog): string {
  return dialogKey(d.callId, d.localTag, d.remoteTag);
}

/** The key of the dialog an in-dialog request names, as seen by the UAS (To tag is ours). */
export function requestDialogKey(req: SipRequest): string | undefined {
  const localTag = req.to.tag;
  const remoteTag = req.from.tag;
  if (localTag === undefined || remoteTag === undefined) return undefined;
  return dialogKey(req.callId, localTag, remoteTag);
}

export function copyFlow(flow: Flow): DialogFlow {
  return {
    protocol: flow.protocol,
    remoteAddress: flow.remoteAddress,
    remotePort: flow.remotePort,
    localAddress: flow.localAddress,
    localPort: flow.localPort,
    ...(flow.connectionId !== undefined ? { connectionId: flow.connectionId } : {}),
  };
}

/** A name-addr without header parameters: `"Alice" <sip:alice@example.com>`. */
export function nameAddrText(uri: string, displayName?: string): string {
  return displayName !== undefined && displayName !== '' ? `${quote(displayName)} <${uri}>` : `<${uri}>`;
}

/**
 * The remote target of a request: its single Contact URI (RFC 3261 §12.1.1). A dialog
 * cannot be formed without one, so its absence is a 400.
 */
export function remoteTargetOf(req: SipRequest): string {
  const contact = req.contact;
  if (!contact || contact.star) throw new SipParseError('Missing Contact');
  if (contact.addresses.length !== 1) throw new SipParseError('Bad Contact: one address expected');
  const uri = contact.addresses[0]!.uri;
  if (!isSipUri(uri)) throw new SipParseError('Bad Contact URI');
  return uri.raw;
}

/** The route set of a dialog without Record-Route (most of them), shared. */
const NO_ROUTES: readonly string[] = Object.freeze([]);

/**
 * RFC 3261 §12.1.1: the UAS side of a new dialog. Route set from Record-Route in order,
 * remote target from Contact, remote sequence number from CSeq, our tag in the To.
 */
export function createUasDialog(req: SipRequest, flow: Flow, localTag: string, localContact: string): Dialog {
  const from = req.from;
  const to = req.to;
  if (from.tag === undefined) throw new SipParseError('Missing From tag');
  const remoteTarget = remoteTargetOf(req);
  // Kept as long as the dialog: strings of their own, not slices of the request.
  return {
    callId: ownString(req.callId),
    localTag: ownString(localTag),
    remoteTag: ownString(from.tag),
    localUri: ownString(nameAddrText(to.uri.raw, to.displayName)),
    remoteUri: ownString(nameAddrText(from.uri.raw, from.displayName)),
    localSeq: 0,
    remoteSeq: req.cseq.seq,
    routeSet: req.recordRoutes.length === 0 ? NO_ROUTES : req.recordRoutes.map((r) => ownString(r.raw)),
    remoteTarget: ownString(remoteTarget),
    secure: isSecureProtocol(flow.protocol) ? req.uri.scheme === 'sips' : false,
    localContact,
    flow: copyFlow(flow),
  };
}

/**
 * RFC 3261 §12.1.1: the response that creates the dialog copies every Record-Route value of
 * the request, parameters and all, in the same order, so the subscriber's route set is ours
 * reversed and its requests in the dialog come back through the same proxies.
 */
export function recordRouteHeaders(req: SipRequest): Array<[string, string]> {
  return req.getHeaders('record-route').map((v): [string, string] => ['Record-Route', v.trim()]);
}

/**
 * RFC 3261 §12.2.2: a request in the dialog with a CSeq lower than (or equal to) the last
 * one is out of order; the caller answers 500. Otherwise the remote sequence number moves
 * on. (Equal numbers are retransmissions, which the transaction layer has absorbed.)
 */
export function acceptRemoteSeq(d: Dialog, req: SipRequest): boolean {
  const seq = req.cseq.seq;
  if (seq <= d.remoteSeq) return false;
  d.remoteSeq = seq;
  return true;
}

/**
 * A target refresh request (RFC 6665 §4.1.2.1: SUBSCRIBE is one) replaces the remote target
 * with its Contact, and the flow with the one it came on (the peer may have reconnected).
 */
export function refreshTarget(d: Dialog, req: SipRequest, flow: Flow): void {
  if (req.contact && !req.contact.star && req.contacts.length > 0) d.remoteTarget = ownString(remoteTargetOf(req));
  d.flow = copyFlow(flow);
}

/** Our next CSeq in the dialog (§12.2.1.1: one higher than the last). */
export function nextLocalSeq(d: Dialog): number {
  d.localSeq += 1;
  return d.localSeq;
}

/** A deep copy for a store (the route set is shared otherwise). */
export function snapshotDialog(d: Dialog): Dialog {
  return { ...d, routeSet: [...d.routeSet], flow: { ...d.flow } };
}
