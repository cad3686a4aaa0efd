import net from 'node:net';
import type { SipMessage } from '../sip/message.js';
import type { Via } from '../sip/header-values.js';
import { isReliable, transportFromVia, type Destination, type Flow, type TransportProtocol } from '../transport/types.js';

/** RFC 3261 §18.2.2 / §19.1.2 default ports; RFC 7118 for WebSocket. */
export function defaultPort(protocol: TransportProtocol): number {
  switch (protocol) {
    case 'tls':
      return 5061;
    case 'ws':
      return 80;
    case 'wss':
      return 443;
    default:
      return 5060;
  }
}

/** `[::1]` → `::1`; other hosts unchanged. */
export function unbracket(host: string): string {
  return host.length > 1 && host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

/** The source address as it goes in `received`: IPv4-mapped IPv6 (`::ffff:1.2.3.4`) as plain IPv4. */
function sourceAddress(flow: Flow): string {
  const a = flow.remoteAddress;
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(a);
  return m ? m[1]! : a;
}

function sameAddress(a: string, b: string): boolean {
  const x = unbracket(a).toLowerCase();
  const y = unbracket(b).toLowerCase();
  if (x === y) return true;
  // Both IPv6, written differently (`::1` against `0:0:0:0:0:0:0:1`).
  if (net.isIPv6(x) && net.isIPv6(y)) return expandV6(x) === expandV6(y);
  return false;
}

function expandV6(a: string): string {
  let text = a;
  // A trailing dotted quad counts as two groups.
  const quad = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (quad) {
    const [b1, b2, b3, b4] = quad.slice(1).map(Number) as [number, number, number, number];
    text = text.slice(0, quad.index) + ((b1 << 8) | b2).toString(16) + ':' + ((b3 << 8) | b4).toString(16);
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const fill = tail !== undefined ? Array(8 - h.length - t.length).fill('0') : [];
  return [...h, ...fill, ...t].map((g) => parseInt(g, 16).toString(16)).join(':');
}

const GEN_VALUE = /^(?:[A-Za-z0-9\-.!%*_+`'~:]+|\[[0-9A-Fa-f:.]+\])$/;

/** One Via element as text, from its parsed form (params in their order, quoted when needed). */
function formatVia(via: Via, params: ReadonlyMap<string, string | null>): string {
  let text = `${via.protocol}/${via.version}/${via.transport} ${via.host}${via.port !== undefined ? `:${via.port}` : ''}`;
  for (const [name, value] of params) {
    if (value === null) text += `;${name}`;
    else text += `;${name}=${GEN_VALUE.test(value) ? value : '"' + value.replace(/(["\\])/g, '\\$1') + '"'}`;
  }
  return text;
}

/**
 * What the server transport does to the top Via of every request it receives (RFC 3261
 * §18.2.1, RFC 3581 §4), so that the response finds its way back:
 * - §18.2.1: "When the server transport receives a request over any transport, it MUST
 *   examine the value of the "sent-by" parameter in the top Via header field value. If the
 *   host portion of the "sent-by" parameter contains a domain name, or if it contains an IP
 *   address that differs from the packet source address, the server MUST add a "received"
 *   parameter to that Via header field value. This parameter MUST contain the source address
 *   from which the packet was received."
 * - RFC 3581 §4: "If this Via header field value contains an "rport" parameter with no
 *   value, it MUST set the value of the parameter to the source port of the request. [...]
 *   In fact, the server MUST insert a "received" parameter containing the source IP address
 *   that the request came from, even if it is identical to the value of the "sent-by"
 *   component."
 * A `received` the sender wrote itself that is not its source address is dropped, so a
 * request cannot steer its responses to a third party.
 *
 * The header text is rewritten (the top Via becomes its own header line), so responses
 * built by copying the request's Via lines carry the stamps. Returns false, changing
 * nothing, when there is no readable Via. Calling it again with the same flow changes
 * nothing more.
 */
export function stampReceived(req: SipMessage, flow: Flow): boolean {
  let via: Via;
  try {
    via = req.topVia;
  } catch {
    return false;
  }
  const source = sourceAddress(flow);
  const fillRport = via.params.has('rport') && via.params.get('rport') === null;
  const addReceived = fillRport || !sameAddress(via.host, source);
  const current = via.params.get('received');
  const receivedIsSource = current !== undefined && current !== null && sameAddress(current, source);
  if (!fillRport && (receivedIsSource || (!addReceived && current === undefined))) return true;
  const params = new Map<string, string | null>();
  for (const [name, value] of via.params) {
    if (name === 'received') continue;
    params.set(name, name === 'rport' && fillRport ? String(flow.remotePort) : value);
  }
  if (addReceived || receivedIsSource) params.set('received', source);
  req.removeFirstListValue('via');
  req.prependHeader('Via', formatVia(via, params));
  return true;
}

/**
 * Where a response goes (RFC 3261 §18.2.2 with RFC 3581 §4), from the top Via of the
 * response (the request's, stamped by `stampReceived`) and the flow the request came on:
 * - reliable sent-protocol (TCP, TLS, WS, WSS): "the response MUST be sent using the
 *   existing connection to the source of the original request that created the
 *   transaction, if that connection is still open". Otherwise a new connection "to the IP
 *   address in the received parameter, if present, using the port in the sent-by value, or
 *   the default port for that transport". WebSocket clients cannot be connected to
 *   (RFC 7118 §5): connection only.
 * - unreliable: "if the top Via has a maddr parameter, the response MUST be forwarded to
 *   the address listed there, using the port indicated in sent-by, or port 5060 if none is
 *   present"; else to the `received` address (RFC 3581: and the `rport` port when it has a
 *   value), else to the sent-by address and port (5060 when none).
 *
 * `isOpen` tells whether the request's connection is still there; without it the
 * connection is assumed open (the transport falls back to the address when it is not).
 */
export function responseDestination(via: Via, flow: Flow, isOpen?: (connectionId: number) => boolean): Destination {
  const protocol = transportFromVia(via.transport) ?? flow.protocol;
  // A request that came on a connection whose Via names another transport (a client that
  // writes UDP in every Via, RFC 4475's messages sent over TCP) can only hear the answer on
  // that connection: it goes there while the connection is open, as the request's source.
  const id = flow.connectionId;
  if (id !== undefined && protocol !== flow.protocol && (isOpen === undefined || isOpen(id))) {
    const websocket = flow.protocol === 'ws' || flow.protocol === 'wss';
    return { protocol: flow.protocol, address: flow.remoteAddress, port: flow.remotePort, connectionId: id, ...(websocket ? { connectionOnly: true } : {}) };
  }
  const received = via.params.get('received');
  const sentByHost = unbracket(via.host);
  if (isReliable(protocol)) {
    const address = received ? unbracket(received) : sentByHost;
    const port = via.port ?? defaultPort(protocol);
    const websocket = protocol === 'ws' || protocol === 'wss';
    const id = flow.connectionId;
    const sameTransport = id !== undefined && flow.protocol === protocol;
    if (websocket) return { protocol, address, port, connectionId: sameTransport ? id : undefined, connectionOnly: true };
    if (sameTransport && (isOpen === undefined || isOpen(id))) return { protocol, address, port, connectionId: id };
    return { protocol, address, port };
  }
  const maddr = via.params.get('maddr');
  if (maddr) return { protocol, address: unbracket(maddr), port: via.port ?? 5060 };
  const rport = via.params.get('rport');
  const address = received ? unbracket(received) : sentByHost;
  const port = rport ? Number(rport) : via.port ?? 5060;
  return { protocol, address, port };
}
