import { WATCHERINFO_NS, XML_NS } from '../pidf/namespaces.js';
import { readXml, type XmlLimits } from '../pidf/read-xml.js';
import { escapeAttribute, escapeText, forReason } from '../pidf/xml-escape.js';
import { attributeValue, childElements, collapseWhitespace, textContent, type XmlElement } from '../pidf/xml-tree.js';

/**
 * Watcher information documents (RFC 3858), application/watcherinfo+xml: written for
 * `presence.winfo` subscribers, and read back by clients (and tests). Bodies read go
 * through the same hardened reader as PIDF (size, depth, no DTD).
 */

/** RFC 3858 §4: the state of a watcher's subscription. */
export type WatcherInfoStatus = 'pending' | 'active' | 'waiting' | 'terminated';

/** RFC 3858 §4: what made the watcher's status what it is. */
export type WatcherInfoEvent = 'subscribe' | 'approved' | 'deactivated' | 'probation' | 'rejected' | 'timeout' | 'giveup' | 'noresource';

/** RFC 3858 §4: document state: the full list, or only the watchers that changed. */
export type WatcherInfoState = 'full' | 'partial';

/** RFC 3858 §4: one `<watcher>`. */
export interface Watcher {
  /** Unique per subscription; stays the same across its changes. */
  readonly id: string;
  readonly status: WatcherInfoStatus;
  readonly event: WatcherInfoEvent;
  /** The watcher's URI (the element's content). */
  readonly uri: string;
  readonly displayName?: string;
  /** Seconds until the subscription expires. */
  readonly expiration?: number;
  /** Seconds the watcher has been subscribed. */
  readonly durationSubscribed?: number;
  /** xml:lang of the display name. */
  readonly lang?: string;
}

/** RFC 3858 §4: the watchers of one resource for one event package. */
export interface WatcherList {
  readonly resource: string;
  readonly package: string;
  readonly watchers: readonly Watcher[];
}

/** A parsed watcherinfo document. */
export interface WatcherInfoDocument {
  readonly version: number;
  readonly state: WatcherInfoState;
  readonly watcherLists: readonly WatcherList[];
}

/**
 * What `buildWatcherInfo` writes: one watcher list. `subscribed` is accepted for the
 * RFC 3858 `subscribe` event (the server's subscription records call it that) and is
 * written as `subscribe`.
 */
export interface WatcherInfoInput {
  readonly version: number;
  readonly state: WatcherInfoState;
  readonly resource: string;
  readonly package: string;
  readonly watchers: ReadonlyArray<Omit<Watcher, 'event' | 'lang'> & { readonly event: WatcherInfoEvent | 'subscribed' }>;
}

const STATUSES: ReadonlySet<string> = new Set<WatcherInfoStatus>(['pending', 'active', 'waiting', 'terminated']);
const EVENTS: ReadonlySet<string> = new Set<WatcherInfoEvent>([
  'subscribe',
  'approved',
  'deactivated',
  'probation',
  'rejected',
  'timeout',
  'giveup',
  'noresource',
]);

/** xs:unsignedLong-ish counts: whole, not negative, finite; anything else is left out. */
function count(n: number | undefined): number | undefined {
  return typeof n === 'number' && Number.isFinite(n) && n >= 0 ? Math.floor(n) : undefined;
}

/** RFC 3858 §4: a watcherinfo document with one watcher-list, as UTF-8 bytes. */
export function buildWatcherInfo(info: WatcherInfoInput): Buffer {
  const out: string[] = [
    '<?xml version="1.0" encoding="UTF-8"?>\n<watcherinfo xmlns="',
    WATCHERINFO_NS,
    '" version="',
    String(count(info.version) ?? 0),
    '" state="',
    info.state === 'partial' ? 'partial' : 'full',
    '">\n<watcher-list resource="',
    escapeAttribute(info.resource),
    '" package="',
    escapeAttribute(info.package),
    '"',
  ];
  if (info.watchers.length === 0) {
    out.push('/>\n</watcherinfo>\n');
    return Buffer.from(out.join(''), 'utf8');
  }
  out.push('>\n');
  for (const w of info.watchers) {
    const event = w.event === 'subscribed' ? 'subscribe' : w.event;
    out.push(' <watcher id="', escapeAttribute(w.id), '" status="', escapeAttribute(w.status), '" event="', escapeAttribute(event), '"');
    if (w.displayName !== undefined) out.push(' display-name="', escapeAttribute(w.displayName), '"');
    const expiration = count(w.expiration);
    if (expiration !== undefined) out.push(' expiration="', String(expiration), '"');
    const duration = count(w.durationSubscribed);
    if (duration !== undefined) out.push(' duration-subscribed="', String(duration), '"');
    out.push('>', escapeText(w.uri), '</watcher>\n');
  }
  out.push('</watcher-list>\n</watcherinfo>\n');
  return Buffer.from(out.join(''), 'utf8');
}

export type ParseWatcherInfoResult = { readonly ok: true; readonly document: WatcherInfoDocument } | { readonly ok: false; readonly reason: string };

/** Thrown inside the reader below only. */
class WinfoRefusal extends Error {
  constructor(readonly detail: string) {
    super(detail);
  }
}

/** Reads a watcherinfo document (RFC 3858 §5 schema rules); never throws. */
export function parseWatcherInfo(bytes: Buffer | string, limits?: XmlLimits): ParseWatcherInfoResult {
  try {
    const read = readXml(bytes, limits);
    if (!read.ok) return { ok: false, reason: `Invalid watcherinfo: ${read.reason}` };
    return { ok: true, document: readDocument(read.root) };
  } catch (e) {
    return { ok: false, reason: `Invalid watcherinfo: ${e instanceof WinfoRefusal ? e.detail : 'unreadable document'}` };
  }
}

const UNSIGNED = /^\s*\d{1,15}\s*$/;

function unsigned(el: XmlElement, name: string, required: boolean): number | undefined {
  const v = attributeValue(el, name);
  if (v === undefined) {
    if (required) throw new WinfoRefusal(`missing ${name}`);
    return undefined;
  }
  if (!UNSIGNED.test(v)) throw new WinfoRefusal(`bad ${name}`);
  return Number(v);
}

function required(el: XmlElement, name: string): string {
  const v = attributeValue(el, name);
  if (v === undefined || collapseWhitespace(v) === '') throw new WinfoRefusal(`missing ${name}`);
  return collapseWhitespace(v);
}

function readDocument(root: XmlElement): WatcherInfoDocument {
  if (root.ns !== WATCHERINFO_NS || root.local !== 'watcherinfo') throw new WinfoRefusal('root element is not watcherinfo');
  const version = unsigned(root, 'version', true)!;
  const state = attributeValue(root, 'state');
  if (state !== 'full' && state !== 'partial') throw new WinfoRefusal('state must be full or partial');
  const watcherLists: WatcherList[] = childElements(root, WATCHERINFO_NS, 'watcher-list').map((list) => {
    const watchers: Watcher[] = childElements(list, WATCHERINFO_NS, 'watcher').map((w) => {
      const id = required(w, 'id');
      const status = required(w, 'status');
      if (!STATUSES.has(status)) throw new WinfoRefusal(`bad status ${forReason(status)}`);
      const event = required(w, 'event');
      if (!EVENTS.has(event)) throw new WinfoRefusal(`bad event ${forReason(event)}`);
      const uri = collapseWhitespace(textContent(w));
      if (uri === '') throw new WinfoRefusal('watcher without URI');
      const displayName = attributeValue(w, 'display-name');
      const expiration = unsigned(w, 'expiration', false);
      const durationSubscribed = unsigned(w, 'duration-subscribed', false);
      const lang = attributeValue(w, 'lang', XML_NS);
      return {
        id,
        status: status as WatcherInfoStatus,
        event: event as WatcherInfoEvent,
        uri,
        ...(displayName !== undefined ? { displayName } : {}),
        ...(expiration !== undefined ? { expiration } : {}),
        ...(durationSubscribed !== undefined ? { durationSubscribed } : {}),
        ...(lang !== undefined ? { lang } : {}),
      };
    });
    return { resource: required(list, 'resource'), package: required(list, 'package'), watchers };
  });
  return { version, state, watcherLists };
}
