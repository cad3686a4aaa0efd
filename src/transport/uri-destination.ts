import net from 'node:net';
import type { SipUri } from '../sip/uri.js';
import { transportFromVia, type Destination, type TransportProtocol } from './types.js';

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

/**
 * RFC 3581 ideas: a UDP next hop at a private address, when the peer's packets come from
 * another (public) address, is behind a NAT: only the source address reaches it.
 */
export function hiddenBehindNat(hop: Destination, sourceAddress: string): boolean {
  return hop.protocol === 'udp' && isPrivateAddress(hop.address) && hop.address !== sourceAddress && !isPrivateAddress(sourceAddress);
}

/**
 * An address nobody outside the peer's own network can reach: RFC 1918, RFC 6598 shared
 * space, link-local, IPv6 unique-local and link-local.
 */
export function isPrivateAddress(address: string): boolean {
  if (net.isIPv4(address)) {
    const [a, b] = address.split('.').map(Number) as [number, number];
    return a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 100 && b >= 64 && b <= 127) || (a === 169 && b === 254);
  }
  const v6 = address.toLowerCase();
  return net.isIPv6(v6) && (v6.startsWith('fc') || v6.startsWith('fd') || v6.startsWith('fe80'));
}
