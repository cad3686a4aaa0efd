import type { Logger } from 'pino';
import type { LocalDomains } from '../core/local-domains.js';
import { OPEN_USER_DIRECTORY, type UserDirectory } from '../registrar/user-directory.js';
import type { RequestContext } from '../core/services.js';
import { SipParseError } from '../sip/errors.js';
import type { Flow } from '../transport/types.js';
import type { Timers, WallClock } from '../util/timers.js';
import type { PresenceAuthorizer } from './authorizer.js';
import { DEFAULT_PRESENCE_EXPIRES, grantExpires, type ExpiryBounds } from './expires.js';
import { KeyedQueue } from '../util/keyed-queue.js';
import { PIDF_CONTENT_TYPE, type PresenceDocuments } from './presence-documents.js';
import { NO_PRESENCE_STATE_SINK, type PresenceStateSink } from './presence-state-sink.js';
import { entityPresentity, presentityOf } from './presentity.js';
import type { PublicationRecord } from './publication.js';
import { Publications, type Publication } from './publications.js';
import { ownedBytes } from './owned-bytes.js';

export interface PublishSettings {
  readonly publishMinExpires: number;
  readonly publishMaxExpires: number;
  readonly maxPublicationsPerPresentity: number;
  readonly maxDocumentBytes: number;
}

export interface EventStateCompositorOptions {
  readonly domains: LocalDomains;
  readonly timers: Timers;
  readonly wallClock: WallClock;
  readonly settings: PublishSettings;
  readonly authorizer: PresenceAuthorizer;
  readonly documents: PresenceDocuments;
  readonly sink?: PresenceStateSink;
  /** Which presentities exist (404 for others); every user of the domain by default. */
  readonly users?: UserDirectory;
  /** The presentity's composed document changed (its watchers must hear of it). */
  readonly onStateChanged: (presentity: string) => void;
  /** Whether anybody watches the presentity (if not, composing waits for a read). */
  readonly watched?: (presentity: string) => boolean;
  readonly logger?: Logger;
}

/** The event package PUBLISH serves (RFC 3903 §6 step 2). */
const PUBLISHED_PACKAGE = 'presence';

/** PUBLISHes of one presentity waiting their turn, at most. */
const MAX_QUEUED_PER_PRESENTITY = 64;

/**
 * The event state compositor of RFC 3903 for presence: PUBLISH creates, refreshes,
 * modifies and removes publications; the presentity's composed document (RFC 4479) is
 * built again after each change. PUBLISHes of one presentity are applied one at a time,
 * in arrival order, so watchers never see a mix of two states.
 */
export class EventStateCompositor {
  readonly publications: Publications;
  private readonly queue = new KeyedQueue(MAX_QUEUED_PER_PRESENTITY);
  private readonly bounds: ExpiryBounds;
  private readonly log?: Logger;
  private closed = false;

  constructor(private readonly options: EventStateCompositorOptions) {
    const s = options.settings;
    this.bounds = { min: s.publishMinExpires, max: s.publishMaxExpires, fallback: DEFAULT_PRESENCE_EXPIRES };
    this.log = options.logger;
    this.publications = new Publications({
      timers: options.timers,
      wallClock: options.wallClock,
      maxPerPresentity: s.maxPublicationsPerPresentity,
      sink: options.sink ?? NO_PRESENCE_STATE_SINK,
      onExpired: (p) => {
        this.log?.debug({ presentity: p.presentity, etag: p.etag }, 'publication expired');
        this.recompose(p.presentity);
      },
    });
  }

  async handlePublish(ctx: RequestContext): Promise<void> {
    const req = ctx.request;
    // RFC 3903 §6 step 1: the Request-URI names a presentity of ours.
    const presentity = presentityOf(req.uri, this.options.domains);
    if (presentity === undefined) {
      ctx.reply(404, 'Not Found');
      return;
    }
    // §6 step 2: the Event names a package we take publications for.
    const event = req.event;
    if (!event || event.package !== PUBLISHED_PACKAGE) {
      ctx.reply(489, 'Bad Event', { headers: [['Allow-Events', PUBLISHED_PACKAGE]] });
      return;
    }
    const queued = this.queue.run(presentity, () => this.process(ctx, presentity));
    if (!queued) {
      ctx.reply(503, 'Service Unavailable', { headers: [['Retry-After', 1]] });
      return;
    }
    await queued;
  }

  /** §6 steps 3 to 8, in the presentity's turn. */
  private async process(ctx: RequestContext, presentity: string): Promise<void> {
    const req = ctx.request;
    // §6 step 1, the rest of it: the presentity must exist.
    if (!(await (this.options.users ?? OPEN_USER_DIRECTORY).exists(presentity))) {
      ctx.reply(404, 'Not Found');
      return;
    }
    // §6 step 3: may the sender publish for this presentity (the security issue's hook).
    if (!(await this.options.authorizer.authorizePublish(ctx, presentity))) {
      ctx.reply(403, 'Forbidden');
      return;
    }
    // The document is parsed now (on the reader thread: the last wait), its verdict applied
    // in its place, §6 step 6, so the answers keep RFC 3903's order.
    const body = this.bodyCheck(req);
    const parsed = body === 'acceptable' ? await this.options.documents.read(req.body) : undefined;
    // Stopped while the document was read (a drain that timed out): change nothing now.
    if (this.closed) {
      ctx.reply(503, 'Service Unavailable', { headers: [['Retry-After', 1]] });
      return;
    }
    // From here to the end nothing awaits: the change is applied as one step.
    // §6 step 4: SIP-If-Match names a live publication of this presentity, or 412.
    const matches = req.getHeaders('sip-if-match');
    if (matches.length > 1) throw new SipParseError('Bad SIP-If-Match: one entity-tag expected');
    const ifMatch = matches[0]?.trim();
    if (ifMatch === '') throw new SipParseError('Bad SIP-If-Match');
    let existing: Publication | undefined;
    if (ifMatch !== undefined) {
      existing = this.publications.get(ifMatch, presentity);
      if (!existing) {
        ctx.reply(412, 'Conditional Request Failed');
        return;
      }
    }
    // §6 step 5: Expires, shortened to our maximum, 423 below our minimum.
    const grant = grantExpires(req.expires, this.bounds);
    if (!grant.ok) {
      ctx.reply(423, 'Interval Too Brief', { headers: [['Min-Expires', grant.minExpires]] });
      return;
    }
    if (grant.seconds === 0) {
      // RFC 3903 §4.5 table 1: removal names the publication; an initial one must last.
      if (!existing) throw new SipParseError('Expires 0 without SIP-If-Match');
      this.publications.remove(existing.etag);
      ctx.reply(200, 'OK', { headers: [['Expires', 0]] });
      ctx.log.debug({ presentity, etag: existing.etag }, 'publication removed');
      this.recompose(presentity);
      return;
    }
    // §6 step 6: the body, when there is one, is a PIDF document about this presentity.
    let document: Publication['document'] | undefined;
    if (body === 'encoding') {
      ctx.reply(415, 'Unsupported Media Type', { headers: [['Accept-Encoding', 'identity'], ['Accept', PIDF_CONTENT_TYPE]] });
      return;
    }
    if (body === 'malformed-type') throw new SipParseError('Bad Content-Type');
    if (body === 'type') {
      ctx.reply(415, 'Unsupported Media Type', { headers: [['Accept', PIDF_CONTENT_TYPE]] });
      return;
    }
    if (body === 'size') {
      ctx.reply(413, 'Request Entity Too Large');
      return;
    }
    if (parsed) {
      if (!parsed.ok) {
        ctx.reply(400, phrase(parsed.reason));
        return;
      }
      // RFC 3863 §4.1.1 / RFC 3903 §6: the document is about the presentity published for.
      if (entityPresentity(this.options.documents.entityOf(parsed.document), this.options.domains) !== presentity) {
        ctx.reply(400, 'PIDF entity does not match the presentity');
        return;
      }
      document = parsed.document;
    } else if (!existing) {
      // RFC 3903 §4.5 table 1: an initial publication carries the state.
      ctx.reply(400, 'Missing PIDF body');
      return;
    }

    const origin = originOf(ctx.flow);
    // An initial publication with the same tuples, from the same flow, as a live one is the
    // same device publishing afresh (baresip sends two initial PUBLISHes at start and removes
    // only the last): it replaces that one, else the older copy would show the device
    // online after it said goodbye, until it expired.
    const tupleIds = document ? document.tuples.map((t) => t.id) : existing!.tupleIds;
    const replaced = existing ?? (document ? this.sameDevice(presentity, origin, tupleIds) : undefined);

    // §6 step 7/8: a new entity-tag for every successful refresh or modify (RFC 3903 §4.3).
    const nowMs = this.options.wallClock.nowMs();
    const etag = this.publications.newEtag();
    const pub: Publication = {
      etag,
      presentity,
      contentType: PIDF_CONTENT_TYPE,
      body: document ? ownedBytes(req.body) : existing!.body,
      // Kept only while someone watches; composed from the body otherwise (see Publication).
      document: document ? (this.watched(presentity) ? document : undefined) : existing!.document,
      tupleIds,
      publishedAtMs: document ? nowMs : existing!.publishedAtMs,
      expiresAtMs: nowMs + grant.seconds * 1000,
      origin,
    };
    const evicted = this.publications.put(pub, replaced?.etag);
    if (replaced && !existing) ctx.log.debug({ presentity, etag, replaces: replaced.etag }, 'initial publication of the same device replaces its older one');
    ctx.reply(200, 'OK', { headers: [['SIP-ETag', etag], ['Expires', grant.seconds]] });
    ctx.log.debug({ presentity, etag, expires: grant.seconds, op: existing ? (document ? 'modify' : 'refresh') : 'initial' }, 'published');
    if (evicted) ctx.log.info({ presentity, evicted: evicted.etag }, 'publication evicted: too many for the presentity');
    // A refresh changes no state (RFC 3903 §4.3): nothing to compose or notify.
    if (document || evicted) this.recompose(presentity);
  }

  /**
   * §6 step 6 before the parse: what a body's headers and size say of it (`none`: no body).
   * It answers nothing itself, so that steps 4 and 5 still come first.
   */
  private bodyCheck(req: RequestContext['request']): 'none' | 'encoding' | 'malformed-type' | 'type' | 'size' | 'acceptable' {
    if (req.body.length === 0) return 'none';
    if (req.getHeaders('content-encoding').some((e) => e.toLowerCase() !== 'identity')) return 'encoding';
    let type: RequestContext['request']['contentType'];
    try {
      type = req.contentType;
    } catch {
      return 'malformed-type';
    }
    if (!type || type.essence !== PIDF_CONTENT_TYPE) return 'type';
    if (req.body.length > this.options.settings.maxDocumentBytes) return 'size';
    return 'acceptable';
  }

  /** Removes every publication of a presentity (its account is gone); how many there were. */
  removeAll(presentity: string): number {
    const pubs = this.publications.of(presentity);
    for (const p of pubs) this.publications.remove(p.etag);
    if (pubs.length > 0) this.recompose(presentity);
    return pubs.length;
  }

  /** The live publication of `presentity` from the same flow with the same tuple ids, if any. */
  private sameDevice(presentity: string, origin: string, tupleIds: readonly string[]): Publication | undefined {
    if (tupleIds.length === 0) return undefined;
    const ids = new Set(tupleIds);
    return this.publications.of(presentity).find((p) => p.origin === origin && p.tupleIds.length === ids.size && p.tupleIds.every((t) => ids.has(t)));
  }

  private watched(presentity: string): boolean {
    return this.options.watched?.(presentity) ?? true;
  }

  /** Builds the composed document again; watchers hear of it when its bytes changed. */
  private recompose(presentity: string): void {
    const pubs = this.publications.of(presentity);
    if (!this.watched(presentity)) this.options.documents.invalidate(presentity, pubs);
    else if (this.options.documents.recompose(presentity, pubs)) this.options.onStateChanged(presentity);
  }

  /** Puts stored publications back (after a restart); expired or unreadable ones are dropped. */
  restore(records: readonly PublicationRecord[]): number {
    const nowMs = this.options.wallClock.nowMs();
    const sink = this.options.sink ?? NO_PRESENCE_STATE_SINK;
    const touched = new Set<string>();
    let restored = 0;
    for (const r of records) {
      const parsed = r.expiresAtMs > nowMs ? this.options.documents.parse(r.body) : undefined;
      if (!parsed || !parsed.ok || this.publications.get(r.etag, r.presentity)) {
        if (!parsed?.ok) sink.publicationRemoved(r.etag);
        continue;
      }
      // The document itself is read again when the presentity is first composed.
      this.publications.restore({ ...r, tupleIds: parsed.document.tuples.map((t) => t.id) });
      touched.add(r.presentity);
      restored++;
    }
    for (const p of touched) this.options.documents.recompose(p, this.publications.of(p));
    return restored;
  }

  close(): void {
    this.closed = true;
    this.publications.close();
  }
}

/** The flow a request came on, as a key: one device's socket or connection. */
function originOf(flow: Flow): string {
  return `${flow.protocol}|${flow.remoteAddress}|${flow.remotePort}|${flow.connectionId ?? ''}`;
}

/** A reason phrase: one line, printable, bounded (RFC 3261 §25.1 Reason-Phrase). */
function phrase(reason: string): string {
  const line = reason.replace(/[\r\n\t]+/g, ' ').replace(/[^\x20-\x7e]/g, '?').trim();
  return line.length === 0 ? 'Bad PIDF document' : line.slice(0, 120);
}
