import { parseNameAddr } from '../sip/header-values.js';
import { tryParseUri, type SipUri } from '../sip/uri.js';
import type { Destination } from '../transport/types.js';
import { hiddenBehindNat, uriDestination } from '../transport/uri-destination.js';
import type { Binding } from './binding.js';

/** How to send a request to one binding. */
export interface BindingTarget {
  /** RFC 3261 §16.6 step 2: the Request-URI is the contact. */
  readonly requestUri: string;
  /** RFC 3327 §5.3: the Path values, as Route header values, in order. */
  readonly routeSet: readonly string[];
  /** Where the request leaves to. */
  readonly destination: Destination;
}

/**
 * Where a request for `binding` goes:
 * - with a Path, to its first hop (an edge in front of us), down the connection the
 *   REGISTER came on when it is a stream;
 * - over a stream flow, down that connection and nowhere else (RFC 5626 §5.3 ideas: the
 *   client may be behind a NAT, and a WebSocket client's Contact host is not reachable
 *   at all, RFC 7118 §5);
 * - over UDP, to the contact, except when the client is an outbound client (RFC 5626
 *   reg-id), names an unreachable host (`.invalid`), or is behind a NAT (a private
 *   contact address that differs from the source): then to the source address;
 * - to the contact URI resolved as RFC 3263 does without DNS records.
 * Undefined when the binding cannot be routed at all.
 */
export function targetOf(binding: Binding): BindingTarget | undefined {
  const contact = tryParseUri(binding.contact);
  if (!contact || contact.scheme === 'tel') return undefined;
  const flow = binding.flow;
  if (binding.path.length > 0) {
    let first: SipUri;
    try {
      first = parseNameAddr(binding.path[0]!, 'Path').uri;
    } catch {
      return undefined;
    }
    const dest = uriDestination(first);
    if (!dest) return undefined;
    const viaFlow = flow.connectionId !== undefined && flow.protocol === dest.protocol ? { connectionId: flow.connectionId } : {};
    return { requestUri: binding.contact, routeSet: binding.path, destination: { ...dest, ...viaFlow } };
  }
  const flowDest: Destination = {
    protocol: flow.protocol,
    address: flow.remoteAddress,
    port: flow.remotePort,
  };
  if (flow.protocol !== 'udp') {
    if (flow.connectionId === undefined) return undefined;
    return { requestUri: binding.contact, routeSet: [], destination: { ...flowDest, connectionId: flow.connectionId, connectionOnly: true } };
  }
  const dest = uriDestination(contact);
  const useFlow =
    !dest ||
    binding.regId !== undefined ||
    contact.host.endsWith('.invalid') ||
    hiddenBehindNat(dest, flow.remoteAddress);
  return { requestUri: binding.contact, routeSet: [], destination: useFlow || !dest ? flowDest : dest };
}
