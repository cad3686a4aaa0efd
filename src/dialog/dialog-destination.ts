import type { SipUri } from '../sip/uri.js';
import type { Destination } from '../transport/types.js';
import { hiddenBehindNat, uriDestination } from '../transport/uri-destination.js';
import type { DialogFlow } from './dialog.js';

/**
 * Where a request in the dialog leaves to, given the URI of its next hop:
 * - when the dialog's requests came over a connection, down that connection while it is
 *   open (a client behind a NAT can only be reached so, and a WebSocket client's Contact
 *   host is not reachable at all, RFC 7118 §5); when it is gone, to the next hop's own
 *   address if it names one we can reach, else nowhere (the transport reports an error);
 * - over UDP, to the next hop, except when it cannot be reached from here (`.invalid`,
 *   or a private address other than the one the peer's requests came from): then to
 *   the source address, as a response would go (RFC 3581 ideas).
 */
export function dialogDestination(nextHop: SipUri, flow: DialogFlow): Destination | undefined {
  const hop = uriDestination(nextHop);
  const unreachable = !hop || nextHop.host.endsWith('.invalid') || hop.protocol === 'ws' || hop.protocol === 'wss';
  if (flow.protocol !== 'udp') {
    const sameProtocol = hop !== undefined && hop.protocol === flow.protocol;
    if (flow.connectionId !== undefined) {
      const fallback = !unreachable && sameProtocol ? hop! : { protocol: flow.protocol, address: flow.remoteAddress, port: flow.remotePort };
      return { ...fallback, connectionId: flow.connectionId, connectionOnly: unreachable || !sameProtocol };
    }
    if (!unreachable) return hop;
    return undefined;
  }
  const source: Destination = { protocol: 'udp', address: flow.remoteAddress, port: flow.remotePort };
  if (unreachable || !hop) return source;
  if (hiddenBehindNat(hop, flow.remoteAddress)) return source;
  return hop;
}
