import { parseNameAddr, type NameAddr } from '../sip/header-values.js';
import { SipRequest } from '../sip/message.js';
import { tryParseUri, type SipUri } from '../sip/uri.js';
import { nextLocalSeq, type Dialog } from './dialog.js';

/** A request built in a dialog and the URI of the hop it goes to first. */
export interface InDialogRequest {
  readonly request: SipRequest;
  /** RFC 3261 §8.1.2: the first Route when loose routing, else the Request-URI. */
  readonly nextHop: SipUri;
}

export interface InDialogOptions {
  readonly headers?: ReadonlyArray<readonly [string, string | number]>;
  readonly body?: Buffer;
  readonly contentType?: string;
}

/** Parameters that may not appear in a Request-URI (RFC 3261 §19.1.1 table 1). */
const NOT_IN_REQUEST_URI = new Set(['method']);

/**
 * Builds a request within a dialog (RFC 3261 §12.2.1.1): To is the remote URI with the
 * remote tag, From the local URI with ours, CSeq one up, and the Request-URI and Route
 * from the route set and remote target, strict routers included. The transaction layer
 * adds the Via. Undefined when the stored route set or target cannot be parsed any more.
 */
export function buildInDialogRequest(d: Dialog, method: string, opts: InDialogOptions = {}): InDialogRequest | undefined {
  const target = tryParseUri(d.remoteTarget);
  if (!target || target.scheme === 'tel') return undefined;
  const routes: NameAddr[] = [];
  try {
    for (const r of d.routeSet) routes.push(parseNameAddr(r, 'Route'));
  } catch {
    return undefined;
  }
  let requestUri: string;
  let routeValues: string[];
  let nextHop: SipUri;
  if (routes.length === 0) {
    requestUri = d.remoteTarget;
    routeValues = [];
    nextHop = target;
  } else if (routes[0]!.uri.params.has('lr')) {
    requestUri = d.remoteTarget;
    routeValues = routes.map((r) => r.raw);
    nextHop = routes[0]!.uri;
  } else {
    // Strict router: its URI becomes the Request-URI, the remote target the last Route.
    const first = routes[0]!.uri;
    requestUri = stripParams(first);
    routeValues = [...routes.slice(1).map((r) => r.raw), `<${d.remoteTarget}>`];
    nextHop = first;
  }
  const req = new SipRequest(method, requestUri);
  req.addHeader('Max-Forwards', 70);
  req.addHeader('From', `${d.localUri};tag=${d.localTag}`);
  req.addHeader('To', `${d.remoteUri};tag=${d.remoteTag}`);
  req.addHeader('Call-ID', d.callId);
  req.addHeader('CSeq', `${nextLocalSeq(d)} ${method}`);
  for (const r of routeValues) req.addHeader('Route', r);
  req.addHeader('Contact', `<${d.localContact}>`);
  for (const [name, value] of opts.headers ?? []) req.addHeader(name, value);
  if (opts.body && opts.body.length > 0) {
    req.body = opts.body;
    if (opts.contentType) req.setHeader('Content-Type', opts.contentType);
  }
  return { request: req, nextHop };
}

function stripParams(uri: SipUri): string {
  const raw = uri.raw;
  if (![...uri.params.keys()].some((k) => NOT_IN_REQUEST_URI.has(k)) && uri.headers === undefined) return raw;
  const q = raw.indexOf('?');
  const base = q >= 0 ? raw.slice(0, q) : raw;
  return base
    .split(';')
    .filter((part, i) => i === 0 || !NOT_IN_REQUEST_URI.has(part.split('=')[0]!.trim().toLowerCase()))
    .join(';');
}
