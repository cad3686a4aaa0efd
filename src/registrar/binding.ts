import { quote } from '../sip/header-values.js';
import type { SipUri } from '../sip/uri.js';
import type { TransportProtocol } from '../transport/types.js';

/**
 * The flow a REGISTER arrived on (RFC 5626 §3.2 ideas): enough to send back down the same
 * connection while it is open, or to the source address behind a NAT.
 */
export interface BindingFlow {
  readonly protocol: TransportProtocol;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  /** Connection table id for stream transports; meaningless after a restart. */
  readonly connectionId?: number;
}

/**
 * One binding of the location service (RFC 3261 §10.3): an address-of-record mapped to a
 * contact. A plain JSON-able record, immutable: every change makes a new one, so a stored
 * copy or an in-flight request can tell whether it still names the current binding.
 * Expiry is wall-clock ms so that a record written to the store means the same after a restart.
 */
export interface Binding {
  /** Canonical address-of-record, `sip:user@domain`. */
  readonly aor: string;
  /** Identity of the binding within its AoR: the instance (RFC 5626 §6) or the contact URI (RFC 3261 §19.1.4). */
  readonly key: string;
  /** Contact URI as registered. */
  readonly contact: string;
  /** Contact header parameters other than expires and q (feature tags, +sip.instance, reg-id), echoed in the 200. */
  readonly params: ReadonlyArray<readonly [string, string | null]>;
  /** RFC 3261 §20.10 qvalue, when given. */
  readonly q?: number;
  /** RFC 5626 §4.1 +sip.instance, with its angle brackets: `<urn:uuid:...>`. */
  readonly instanceId?: string;
  /** RFC 5626 §4.2 reg-id (only kept together with an instance). */
  readonly regId?: number;
  /** RFC 3261 §10.3 step 7: the Call-ID and CSeq of the last REGISTER that touched it. */
  readonly callId: string;
  readonly cseq: number;
  /** Wall-clock ms when it expires. */
  readonly expiresAt: number;
  /** Wall-clock ms of the last REGISTER that touched it. */
  readonly updatedAt: number;
  /** RFC 3327 Path values, in order: the route set towards the contact. */
  readonly path: readonly string[];
  readonly flow: BindingFlow;
  /** False once its flow closed or a request down it failed (RFC 5626 §4.4 ideas). */
  readonly reachable: boolean;
  readonly userAgent?: string;
  /** In a cluster, the node that holds its flow: requests to it leave from there (DESIGN: "Past one machine"). */
  readonly node?: BindingNode;
}

/** A node of a cluster as a binding names it: its name and the run of its process (a restart is another run). */
export interface BindingNode {
  readonly name: string;
  readonly run: string;
}

/** How a binding is named outside the location service (the store's primary key). */
export interface BindingRef {
  readonly aor: string;
  readonly key: string;
}

/**
 * Binding key: RFC 5626 §6 says the registrar replaces the binding with the same AoR,
 * instance and reg-id; without an instance, contacts are compared as URIs (RFC 3261
 * §10.3 step 6, §19.1.4). The URI comparison is approximated by a canonical text: host
 * case-folded, parameters sorted with case-folded values; user and password exact.
 */
export function bindingKey(uri: SipUri, instanceId?: string, regId?: number): string {
  if (instanceId !== undefined) return `instance ${instanceId}${regId !== undefined ? ` reg-id ${regId}` : ''}`;
  const params = [...uri.params.entries()]
    .map(([k, v]) => (v === null ? k : `${k}=${v.toLowerCase()}`))
    .sort()
    .join(';');
  const userinfo = uri.user !== undefined ? `${uri.user}${uri.password !== undefined ? `:${uri.password}` : ''}@` : '';
  return `uri ${uri.scheme}:${userinfo}${uri.host}${uri.port !== undefined ? `:${uri.port}` : ''}${params ? `;${params}` : ''}`;
}

const GEN_VALUE_RE = /^(?:[A-Za-z0-9\-.!%*_+`'~:]+|\[[0-9A-Fa-f:.]+\])$/;

/** Seconds left before `b` expires, rounded up so a live binding never shows 0. */
export function remainingSeconds(b: Binding, nowMs: number): number {
  return Math.max(0, Math.ceil((b.expiresAt - nowMs) / 1000));
}

/** The Contact value listing a binding in a 2xx to REGISTER (RFC 3261 §10.3 step 8). */
export function formatBindingContact(b: Binding, nowMs: number): string {
  let s = `<${b.contact}>;expires=${remainingSeconds(b, nowMs)}`;
  if (b.q !== undefined) s += `;q=${formatQ(b.q)}`;
  for (const [k, v] of b.params) {
    if (v === null) s += `;${k}`;
    else s += `;${k}=${GEN_VALUE_RE.test(v) ? v : quote(v)}`;
  }
  return s;
}

/** qvalue text with at most three decimals (RFC 3261 §20.10). */
export function formatQ(q: number): string {
  if (q >= 1) return '1';
  if (q <= 0) return '0';
  return q.toFixed(3).replace(/0+$/, '').replace(/\.$/, '');
}
