import net from 'node:net';
import type { SipUri } from '../sip/uri.js';
import { transportFromVia, type Destination, type TransportProtocol } from '../transport/types.js';
import type { DialogFlow } from './dialog.js';

/**
 * RFC 3263 §4 without DNS records: transport from the `transport` parameter (sips means
 * TLS), address from `maddr` or the host, port from the URI or the transport's default.
 * Host names are left for the transport to resolve.
 */
export function uriDestination(uri: SipUri): Destination | undefined {
  if (uri.scheme === 'tel') return undefined;
  const t = uri.params.get('transport');
  let protocol: TransportProtocol | undefined = t ? transportFromVia(t) : uri.scheme === 'sips' ? 'tls' : 'udp';
  if (!protocol) return undefined;
  if (uri.scheme === 'sips' && protocol === 'tcp') protocol = 'tls';
  const host = uri.params.get('maddr') ?? uri.host;
  const address = host.replace(/^\[(.*)\]$/, '$1');
  if (address === '') return undefined;
  const port = uri.port ?? (protocol === 'ws' ? 80 : protocol === 'wss' ? 443 : protocol === 'tls' ? 5061 : 5060);
  return { protocol, address, port };
}

/** An address nobody outside the peer's own network can reach (RFC 1918, link-local, ULA). */
function isPrivate(address: string): boolean {
  if (net.isIPv4(address)) {
    const [a, b] = address.split('.').map(Number) as [number, number];
    return a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 100 && b >= 64 && b <= 127) || (a === 169 && b === 254);
  }
  const v6 = address.toLowerCase();
  return net.isIPv6(v6) && (v6.startsWith('fc') || v6.startsWith('fd') || v6.startsWith('fe80'));
}

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
  if (hop.protocol === 'udp' && isPrivate(hop.address) && hop.address !== flow.remoteAddress && !isPrivate(flow.remoteAddress)) return source;
  return hop;
}
