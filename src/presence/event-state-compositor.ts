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
import type { PublicationDecision, PublicationStore, PublicationStoreFactory, PublicationStoreOptions, PublicationView } from './publication-store.js';
import { ownedBytes } from './owned-bytes.js';
import { ownString } from '../util/own-string.js';
import { Interner } from '../util/interner.js';
import type { PublishedPackage } from './published-package.js';

export interface PublishSettings {
  readonly publishMinExpires: number;
  readonly publishMaxExpires: number;
  readonly maxPublicationsPerPresentity: number;
  readonly maxDocumentBytes: number;
}

export interface EventStateCompositorOptions {
  /** Where publications live: in memory here by default, or a cluster's store (DESIGN: "Past one machine"). */
  readonly store?: PublicationStoreFactory;
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
  /** Event packages besides presence that take PUBLISH (dialog, message-summary). */
  readonly published?: readonly PublishedPackage[];
  readonly logger?: Logger;
}

/** The presence package, which PUBLISH serves first (RFC 3903 §6 step 2). */
const PRESENCE_PACKAGE = 'presence';

/** A published body as read for one package. */
type ReadBody =
  | { readonly ok: true; readonly entity?: string; readonly document?: Publication['document']; readonly tupleIds: readonly string[] }
  | { readonly ok: false; readonly reason: string };

/** What the compositor needs of a package it takes PUBLISH for. */
interface PublishKind {
  readonly name: string;
  readonly contentType: string;
  readonly bodyName: string;
  /** `watched`: someone watches the presentity now (its document will be composed at once). */
  read(body: Buffer, watched: boolean): ReadBody | Promise<ReadBody>;
}

/** PUBLISHes of one presentity waiting their turn, at most. */
const MAX_QUEUED_PER_PRESENTITY = 64;

/**
 * The event state compositor of RFC 3903 for presence: PUBLISH creates, refreshes,
 * modifies and removes publications; the presentity's composed document (RFC 4479) is
 * built again after each change. PUBLISHes of one presentity are applied one at a time,
 * in arrival order, so watchers never see a mix of two states.
 */
export class EventStateCompositor {
  readonly publications: PublicationStore;
  private readonly queue = new KeyedQueue(MAX_QUEUED_PER_PRESENTITY);
  private readonly bounds: ExpiryBounds;
  private readonly log?: Logger;
  private closed = false;
  /** Every package PUBLISH serves, by Event token. */
  private readonly kinds = new Map<string, PublishKind>();
  private readonly others: readonly PublishedPackage[];

  constructor(private readonly options: EventStateCompositorOptions) {
    const s = options.settings;
    const documents = options.documents;
    this.kinds.set(PRESENCE_PACKAGE, {
      name: PRESENCE_PACKAGE,
      contentType: PIDF_CONTENT_TYPE,
      bodyName: 'PIDF',
      read: (body, watched) => documents.read(body, watched),
    });
    this.others = options.published ?? [];
    for (const p of this.others) {
      this.kinds.set(p.name, { name: p.name, contentType: p.contentType, bodyName: p.bodyName, read: (body) => ({ ...p.check(body), tupleIds: [] }) });
    }
    this.bounds = { min: s.publishMinExpires, max: s.publishMaxExpires, fallback: DEFAULT_PRESENCE_EXPIRES };
    this.log = options.logger;
    const storeOptions: PublicationStoreOptions = {
      timers: options.timers,
      wallClock: options.wallClock,
      maxPerPresentity: s.maxPublicationsPerPresentity,
      sink: options.sink ?? NO_PRESENCE_STATE_SINK,
      onExpired: (p) => {
        this.log?.debug({ presentity: p.presentity, etag: p.etag }, 'publication expired');
        this.recompose(p.presentity, [p.contentType]);
      },
      // Another node's change: composed here once, for every watcher here.
      onChanged: (presentity) => this.recompose(presentity),
      watched: (presentity) => this.watched(presentity),
    };
    this.publications = options.store ? options.store(storeOptions) : new Publications(storeOptions);
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
    const kind = event ? this.kinds.get(event.package) : undefined;
    if (!kind) {
      ctx.reply(489, 'Bad Event', { headers: [['Allow-Events', [...this.kinds.keys()].join(', ')]] });
      return;
    }
    const queued = this.queue.run(presentity, () => this.process(ctx, presentity, kind));
    if (!queued) {
      ctx.reply(503, 'Service Unavailable', { headers: [['Retry-After', 1]] });
      return;
    }
    await queued;
  }

  /** §6 steps 3 to 8, in the presentity's turn. */
  private async process(ctx: RequestContext, presentity: string, kind: PublishKind): Promise<void> {
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
    const body = this.bodyCheck(req, kind);
    const parsed = body === 'acceptable' ? await kind.read(req.body, this.watched(presentity)) : undefined;
    // Stopped while the document was read (a drain that timed out): change nothing now.
    if (this.closed) {
      ctx.reply(503, 'Service Unavailable', { headers: [['Retry-After', 1]] });
      return;
    }
    // From here the change is decided on the presentity's publications and applied as one
    // step (PublicationStore.decide); the answer goes out once it is applied.
    const applying = this.publications.decide(presentity, (view) => this.decideOne(ctx, presentity, kind, view, body, parsed));
    const { result: outcome, evicted } = applying instanceof Promise ? await applying : applying;
    ctx.reply(outcome.status, outcome.reason, outcome.headers ? { headers: outcome.headers } : undefined);
    outcome.logged?.(ctx.log);
    for (const e of evicted) ctx.log.info({ presentity, evicted: e.etag }, 'publication evicted: too many for the presentity');
    // A refresh changes no state (RFC 3903 §4.3): nothing to compose or notify.
    if (outcome.changed || evicted.length > 0) this.recompose(presentity, [kind.contentType, ...evicted.map((e) => e.contentType)]);
  }

  /**
   * §6 steps 4 to 8 on the presentity's publications as `view` has them: the answer, and
   * the change to make. Answers nothing itself (a cluster store may decide again).
   */
  private decideOne(
    ctx: RequestContext,
    presentity: string,
    kind: PublishKind,
    view: PublicationView,
    body: ReturnType<EventStateCompositor['bodyCheck']>,
    parsed: ReadBody | undefined,
  ): PublicationDecision<PublishOutcome> {
    const req = ctx.request;
    const answer = (status: number, reason: string, headers?: Array<[string, string | number]>): PublicationDecision<PublishOutcome> => ({
      result: { status, reason, ...(headers ? { headers } : {}), changed: false },
    });
    // §6 step 4: SIP-If-Match names a live publication of this presentity, or 412.
    const matches = req.getHeaders('sip-if-match');
    if (matches.length > 1) throw new SipParseError('Bad SIP-If-Match: one entity-tag expected');
    const ifMatch = matches[0]?.trim();
    if (ifMatch === '') throw new SipParseError('Bad SIP-If-Match');
    let existing: Publication | undefined;
    if (ifMatch !== undefined) {
      existing = view.get(ifMatch);
      // An entity-tag of another package's publication matches nothing of this one.
      if (existing?.contentType !== kind.contentType) existing = undefined;
      if (!existing) return { ...answer(412, 'Conditional Request Failed'), needsCurrentState: true };
    }
    // §6 step 5: Expires, shortened to our maximum, 423 below our minimum.
    const grant = grantExpires(req.expires, this.bounds);
    if (!grant.ok) return answer(423, 'Interval Too Brief', [['Min-Expires', grant.minExpires]]);
    if (grant.seconds === 0) {
      // RFC 3903 §4.5 table 1: removal names the publication; an initial one must last.
      if (!existing) throw new SipParseError('Expires 0 without SIP-If-Match');
      const etag = existing.etag;
      return {
        result: { status: 200, reason: 'OK', headers: [['Expires', 0]], changed: true, logged: (log) => log.debug({ presentity, etag }, 'publication removed') },
        remove: [etag],
      };
    }
    // §6 step 6: the body, when there is one, is a document of the package about this presentity.
    let document: Publication['document'] | undefined;
    let read: (ReadBody & { ok: true }) | undefined;
    if (body === 'encoding') return answer(415, 'Unsupported Media Type', [['Accept-Encoding', 'identity'], ['Accept', kind.contentType]]);
    if (body === 'malformed-type') throw new SipParseError('Bad Content-Type');
    if (body === 'type') return answer(415, 'Unsupported Media Type', [['Accept', kind.contentType]]);
    if (body === 'size') return answer(413, 'Request Entity Too Large');
    if (parsed) {
      if (!parsed.ok) return answer(400, phrase(parsed.reason, kind));
      // RFC 3863 §4.1.1, RFC 4235 §4.1 / RFC 3903 §6: the document is about the presentity published for.
      if (parsed.entity !== undefined && entityPresentity(parsed.entity, this.options.domains) !== presentity) {
        return answer(400, `${kind.bodyName} entity does not match the presentity`);
      }
      read = parsed;
      document = parsed.document;
    } else if (!existing) {
      // RFC 3903 §4.5 table 1: an initial publication carries the state.
      return answer(400, `Missing ${kind.bodyName} body`);
    }

    const origin = originOf(ctx.flow);
    // An initial publication with the same tuples, from the same flow, as a live one is the
    // same device publishing afresh (baresip sends two initial PUBLISHes at start and removes
    // only the last): it replaces that one, else the older copy would show the device
    // online after it said goodbye, until it expired.
    const tupleIds = read ? sharedTupleIds(read.tupleIds) : existing!.tupleIds;
    const replaced = existing ?? (read ? sameDevice(view, origin, kind.contentType, tupleIds) : undefined);

    // §6 step 7/8: a new entity-tag for every successful refresh or modify (RFC 3903 §4.3).
    const nowMs = this.options.wallClock.nowMs();
    const etag = this.publications.newEtag();
    const pub: Publication = {
      etag,
      presentity,
      contentType: kind.contentType,
      body: read ? ownedBytes(req.body) : existing!.body,
      // Kept until the state is composed (at once, when someone watches); read from the body otherwise (see Publication).
      document: read ? (document && this.watched(presentity) ? document : undefined) : existing!.document,
      tupleIds,
      publishedAtMs: read ? nowMs : existing!.publishedAtMs,
      expiresAtMs: nowMs + grant.seconds * 1000,
      origin,
      // Set by the store once it holds it: here so that the object has room for it in itself
      // (a field added later takes an array of its own beside every publication).
      expiryTimer: undefined,
    };
    const op = existing ? (read ? 'modify' : 'refresh') : 'initial';
    return {
      result: {
        status: 200,
        reason: 'OK',
        headers: [['SIP-ETag', etag], ['Expires', grant.seconds]],
        changed: read !== undefined,
        logged: (log) => {
          if (replaced && !existing) log.debug({ presentity, etag, replaces: replaced.etag }, 'initial publication of the same device replaces its older one');
          log.debug({ presentity, etag, expires: grant.seconds, op, event: kind.name }, 'published');
        },
      },
      put: pub,
      ...(replaced ? { replaces: replaced.etag } : {}),
    };
  }

  /**
   * §6 step 6 before the parse: what a body's headers and size say of it (`none`: no body).
   * It answers nothing itself, so that steps 4 and 5 still come first.
   */
  private bodyCheck(req: RequestContext['request'], kind: PublishKind): 'none' | 'encoding' | 'malformed-type' | 'type' | 'size' | 'acceptable' {
    if (req.body.length === 0) return 'none';
    if (req.getHeaders('content-encoding').some((e) => e.toLowerCase() !== 'identity')) return 'encoding';
    let type: RequestContext['request']['contentType'];
    try {
      type = req.contentType;
    } catch {
      return 'malformed-type';
    }
    if (!type || type.essence !== kind.contentType) return 'type';
    if (req.body.length > this.options.settings.maxDocumentBytes) return 'size';
    return 'acceptable';
  }

  /** Removes every publication of a presentity (its account is gone); how many there were. */
  async removeAll(presentity: string): Promise<number> {
    const { result: removed } = await this.publications.decide(presentity, (view) => {
      const etags = view.all.map((p) => p.etag);
      return { result: etags.length, remove: etags, needsCurrentState: etags.length === 0 };
    });
    if (removed > 0) this.recompose(presentity);
    return removed;
  }

  /** The presentity's hard state (RFC 4827) changed: composed again, its watchers notified. */
  hardStateChanged(presentity: string): void {
    this.recompose(presentity, [PIDF_CONTENT_TYPE]);
  }

  /** The presentity's state is about to be shown to a watcher here (a cluster store fetches and follows it). */
  follow(presentity: string): Promise<void> | undefined {
    return this.publications.follow?.(presentity);
  }

  private watched(presentity: string): boolean {
    return this.options.watched?.(presentity) ?? true;
  }

  /**
   * Builds the composed documents again (of the packages whose body types are `types`, or of
   * all); watchers hear of them when their bytes changed.
   */
  private recompose(presentity: string, types?: readonly string[]): void {
    const all = this.publications.of(presentity);
    if (!types || types.includes(PIDF_CONTENT_TYPE)) {
      const pubs = presenceOnly(all);
      if (!this.watched(presentity)) this.options.documents.invalidate(presentity, pubs);
      else if (this.options.documents.recompose(presentity, pubs)) this.options.onStateChanged(presentity);
    }
    for (const p of this.others) {
      if (!types || types.includes(p.contentType)) p.publicationsChanged(presentity, all.filter((x) => x.contentType === p.contentType));
    }
  }

  /**
   * Puts stored publications back (after a restart); expired ones are dropped. A presence
   * document is not read here: it parsed when it was published, its tuple ids only serve to
   * match a later PUBLISH from the same flow (which a restored publication has none of), and
   * the presentity is composed when first read (a NOTIFY, a fetch), where a body that no
   * longer parses is left out. Reading 100,000 documents twice was most of the start-up.
   */
  restore(records: readonly PublicationRecord[]): number {
    const nowMs = this.options.wallClock.nowMs();
    const sink = this.options.sink ?? NO_PRESENCE_STATE_SINK;
    const touched = new Set<string>();
    let restored = 0;
    for (const r of records) {
      const other = this.others.find((p) => p.contentType === r.contentType);
      const parsed = r.expiresAtMs <= nowMs ? undefined : other ? other.check(r.body) : { ok: true as const };
      if (!parsed || !parsed.ok || this.publications.get(r.etag, r.presentity)) {
        if (!parsed?.ok) sink.publicationRemoved(r.etag);
        continue;
      }
      // Named fields, not a spread of the record (100,000 of them at a start-up); the store's
      // row version is the store's own (toRecord never reads it back from here).
      const pub: Publication = {
        etag: r.etag,
        presentity: r.presentity,
        contentType: r.contentType,
        body: r.body,
        publishedAtMs: r.publishedAtMs,
        expiresAtMs: r.expiresAtMs,
        tupleIds: NO_TUPLE_IDS,
      };
      this.publications.restore(pub);
      touched.add(r.presentity);
      restored++;
    }
    for (const p of touched) {
      const all = this.publications.of(p);
      this.options.documents.invalidate(p, presenceOnly(all));
      for (const o of this.others) {
        // A restore only adds: a package with none of this presentity's publications had none before either.
        const mine = all.filter((x) => x.contentType === o.contentType);
        if (mine.length > 0) o.publicationsChanged(p, mine);
      }
    }
    return restored;
  }

  close(): void {
    this.closed = true;
    this.publications.close();
  }
}

/** What a PUBLISH decided, answered once the change is applied. */
interface PublishOutcome {
  readonly status: number;
  readonly reason: string;
  readonly headers?: Array<[string, string | number]>;
  /** The presentity's state changed: compose again. */
  readonly changed: boolean;
  /** Logs what was done, on the request's logger. */
  readonly logged?: (log: Logger) => void;
}

/** The live publication in `view` of the same type from the same flow with the same tuple ids, if any. */
function sameDevice(view: PublicationView, origin: string, contentType: string, tupleIds: readonly string[]): Publication | undefined {
  if (tupleIds.length === 0) return undefined;
  const ids = new Set(tupleIds);
  return view.all.find((p) => p.contentType === contentType && p.origin === origin && p.tupleIds.length === ids.size && p.tupleIds.every((t) => ids.has(t)));
}

/** A restored publication's tuple ids: none known until its document is read. */
const NO_TUPLE_IDS: readonly string[] = Object.freeze([]);

/** The presence publications among a presentity's publications of every package. */
export function presenceOnly(pubs: readonly Publication[]): Publication[] {
  return pubs.filter((p) => p.contentType === PIDF_CONTENT_TYPE);
}

/**
 * The flow a request came on, as a key: one device's socket or connection. Kept with the
 * publication, so one flat string: the template's pieces are a tree of four (128 bytes).
 */
function originOf(flow: Flow): string {
  const key = `${flow.protocol}|${flow.remoteAddress}|${flow.remotePort}|${flow.connectionId ?? ''}`;
  return ORIGINS.get(key, () => ownString(key));
}

/** Flows and tuple-id lists shared by the publications that hold equal ones (a device's refreshes, one SIPp socket's thousands). */
const ORIGINS = new Interner<string>(10_000);
const TUPLE_IDS = new Interner<readonly string[]>(10_000);

/** The publication's tuple ids, one frozen copy for every publication with the same ones. */
function sharedTupleIds(ids: readonly string[]): readonly string[] {
  if (ids.length === 0) return NO_TUPLE_IDS;
  return TUPLE_IDS.get(ids.join('\u0000'), () => Object.freeze(ids.map(ownString)));
}

/** A reason phrase: one line, printable, bounded (RFC 3261 §25.1 Reason-Phrase). */
function phrase(reason: string, kind: PublishKind): string {
  const line = reason.replace(/[\r\n\t]+/g, ' ').replace(/[^\x20-\x7e]/g, '?').trim();
  return line.length === 0 ? `Bad ${kind.bodyName} document` : line.slice(0, 120);
}
