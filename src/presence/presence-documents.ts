import { composePresence, neutralPresence, parsePidf, serializePidf, verdictOf, type ParsePidfResult, type PidfLimits, type PresenceDocument } from './pidf/index.js';
import type { Logger } from 'pino';
import { PidfReaderThread } from './pidf/reader-thread.js';
import type { Publication } from './publications.js';

/** RFC 3863 §6 / RFC 3856 §6.4: the presence body type. */
export const PIDF_CONTENT_TYPE = 'application/pidf+xml';

export type { PresenceDocument };

export type ParsedPresence = { readonly ok: true; readonly document: PresenceDocument } | { readonly ok: false; readonly reason: string };

/** A published document as `read` gives it: its document only when it was asked for. */
export type ReadPresence =
  | { readonly ok: true; readonly entity: string; readonly tupleIds: readonly string[]; readonly document?: PresenceDocument }
  | { readonly ok: false; readonly reason: string };

interface Composed {
  /** Goes up by one every time the composed bytes change. */
  version: number;
  bytes: Buffer;
}

function withDocument(r: ParsePidfResult): ReadPresence {
  const v = verdictOf(r);
  return v.ok && r.ok ? { ...v, document: r.document } : v;
}

/** Neutral documents kept for presentities without publications, at most. */
const MAX_NEUTRAL_CACHED = 10_000;

/**
 * The composed presence document of every presentity (RFC 4479 §3: all its live
 * publications merged), built once per change and kept as bytes that every NOTIFY of that
 * version and view shares. A presentity with no live publication has a neutral document
 * (RFC 3856 §6.6 ideas), never an error. Only this file speaks to the pidf module.
 */
export class PresenceDocuments {
  private readonly composed = new Map<string, Composed>();
  /** Presentities whose publications changed while nobody watched: composed at the next read. */
  private readonly stale = new Set<string>();
  private readonly neutrals = new Map<string, Buffer>();
  private readonly maxComposedBytes: number;
  /** RFC 4827 hard state (the user's pidf-manipulation document), by presentity. */
  private readonly hard = new Map<string, PresenceDocument>();

  /**
   * `limits` bound a published document; `maxComposedBytes` the composed one (a NOTIFY must
   * still fit the transport: several devices' documents together can outgrow it).
   */
  constructor(
    private readonly limits?: PidfLimits,
    options: {
      readonly maxComposedBytes?: number;
      readonly publicationsOf?: (presentity: string) => readonly Publication[];
      /** `read` parses on a worker thread of its own (else on the SIP thread). */
      readonly parseThread?: boolean;
      readonly logger?: Logger;
    } = {},
  ) {
    this.maxComposedBytes = options.maxComposedBytes ?? Number.POSITIVE_INFINITY;
    this.publicationsOf = options.publicationsOf;
    this.readerThread = options.parseThread ? new PidfReaderThread(limits, options.logger) : undefined;
  }

  private readonly publicationsOf?: (presentity: string) => readonly Publication[];
  private readonly readerThread?: PidfReaderThread;

  parse(body: Buffer): ParsedPresence {
    const r = parsePidf(body, this.limits);
    return r.ok ? { ok: true, document: r.document } : { ok: false, reason: r.reason };
  }

  /**
   * A published document read on the reader thread when there is one (off the SIP thread).
   * With `needDocument` false (nobody watches the presentity) only the verdict, entity and
   * tuple ids come back: the tree is read again from the body at the first composition.
   */
  read(body: Buffer, needDocument = true): Promise<ReadPresence> {
    if (!this.readerThread) return Promise.resolve(withDocument(parsePidf(body, this.limits)));
    if (needDocument) return this.readerThread.parse(body).then(withDocument);
    return this.readerThread.check(body);
  }

  async close(): Promise<void> {
    await this.readerThread?.close();
  }

  /**
   * Composes `publications` (oldest first) into the presentity's document. True when the
   * bytes differ from the last ones: only then do watchers need a NOTIFY.
   */
  recompose(presentity: string, publications: readonly Publication[]): boolean {
    this.stale.delete(presentity);
    const before = this.composed.get(presentity);
    if (publications.length === 0 && !this.hard.has(presentity)) {
      if (!before) return false;
      this.composed.delete(presentity);
      return !before.bytes.equals(this.neutral(presentity));
    }
    let live = publications;
    let bytes = this.compose(presentity, live);
    // Too large to go out in a NOTIFY: the oldest publications are left out until it fits
    // (newest wins, as in composition), rather than every watcher's NOTIFY failing.
    while (bytes.length > this.maxComposedBytes && live.length > (this.hard.has(presentity) ? 0 : 1)) {
      live = live.slice(1);
      bytes = this.compose(presentity, live);
    }
    if (before && before.bytes.equals(bytes)) return false;
    this.composed.set(presentity, { version: (before?.version ?? 0) + 1, bytes });
    return true;
  }

  /**
   * The publications changed but nobody watches: composing waits for the first read (a
   * NOTIFY, a fetch, the admin API), so a PUBLISH nobody watches costs no serialization.
   * Without a publication source (or with no publication left) it is composed at once.
   */
  invalidate(presentity: string, publications: readonly Publication[]): void {
    if (this.publicationsOf && (publications.length > 0 || this.hard.has(presentity))) this.stale.add(presentity);
    else this.recompose(presentity, publications);
  }

  private fresh(presentity: string): void {
    if (this.stale.has(presentity)) this.recompose(presentity, this.publicationsOf!(presentity));
  }

  /**
   * Sets (or clears) the presentity's hard state, RFC 4827. Composition policy: the hard
   * state is one more publication, older than any device's, so under "newest wins" a
   * device's tuple or person of the same id, and its person, prevail; the hard state's other
   * tuples, devices and notes stay, and with no device publishing it is the whole document.
   * The caller recomposes (the compositor, which notifies watchers).
   */
  setHardState(presentity: string, document: PresenceDocument | undefined): void {
    if (document) this.hard.set(presentity, document);
    else this.hard.delete(presentity);
  }

  hardState(presentity: string): PresenceDocument | undefined {
    return this.hard.get(presentity);
  }

  private compose(presentity: string, publications: readonly Publication[]): Buffer {
    const composable = [];
    const hard = this.hard.get(presentity);
    // Older than every publication: a device's word wins where they meet.
    if (hard) composable.push({ document: hard, publishedAt: Number.MIN_SAFE_INTEGER });
    for (const p of publications) {
      const document = this.documentOf(p);
      if (document) composable.push({ document, publishedAt: p.publishedAtMs });
    }
    const bytes = serializePidf(composePresence(presentity, composable));
    // Only the bytes are kept: a parsed tree is some 3 KB a publication (issue 15), and the
    // body parses again in microseconds when another device of the presentity publishes.
    for (const p of publications) p.document = undefined;
    return bytes;
  }

  /** The publication's document: the one its PUBLISH was read into, or its body read again. */
  private documentOf(p: Publication): PresenceDocument | undefined {
    if (p.document) return p.document;
    // It parsed when it was published; if it somehow does not now, it is left out.
    const r = parsePidf(p.body, this.limits);
    return r.ok ? r.document : undefined;
  }

  /** The full view: the composed document, or the neutral one. */
  full(presentity: string): Buffer {
    this.fresh(presentity);
    return this.composed.get(presentity)?.bytes ?? this.neutral(presentity);
  }

  /** Version of the composed document (0: neutral). */
  version(presentity: string): number {
    this.fresh(presentity);
    return this.composed.get(presentity)?.version ?? 0;
  }

  /** RFC 5025 §3.2.1 polite-block view, and the state of a presentity nobody publishes for. */
  neutral(presentity: string): Buffer {
    let bytes = this.neutrals.get(presentity);
    if (!bytes) {
      bytes = serializePidf(neutralPresence(presentity));
      if (this.neutrals.size >= MAX_NEUTRAL_CACHED) this.neutrals.delete(this.neutrals.keys().next().value!);
      this.neutrals.set(presentity, bytes);
    }
    return bytes;
  }
}
