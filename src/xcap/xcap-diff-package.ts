import type { Logger } from 'pino';
import type { EventPackage, NotifyBody, PackageHost, SubscribeAttempt, SubscriptionDecision } from '../presence/event-package.js';
import type { Subscription } from '../presence/subscription.js';
import { OWNER_ONLY } from '../presence/winfo/winfo-package.js';
import { escapeAttribute } from '../presence/pidf/xml-escape.js';

/** RFC 5875 §4.2 (and §6): the xcap-diff body. */
export const XCAP_DIFF_TYPE = 'application/xcap-diff+xml';
export const XCAP_DIFF_NS = 'urn:ietf:params:xml:ns:xcap-diff';

/** A user's documents now: selector (relative to the XCAP root) to entity-tag. */
export type DocumentTags = ReadonlyMap<string, string>;

export interface XcapDiffOptions {
  /** The user's documents with their entity-tags (the XCAP server's view). */
  readonly documentsOf: (owner: string) => Promise<DocumentTags>;
  /** The absolute XCAP root URI clients are given (the `xcap-root` attribute). */
  readonly xcapRoot: () => string;
  readonly logger?: Logger;
}

/** An entity-tag without its quotes, as the xcap-diff attributes carry it (RFC 5874 §4). */
function bare(etag: string): string {
  return etag.replace(/^"|"$/g, '');
}

/**
 * The xcap-diff event package (RFC 5875) in its simplest form: a user subscribes to its own
 * address of record (`Event: xcap-diff`, no body; a body naming other documents is not
 * read, and the user's whole tree is watched) and hears which of its XCAP documents changed,
 * with the previous and new entity-tags, without patches: the client fetches what changed
 * (RFC 5874 "no-patching"). The first NOTIFY (and the one after each refresh) lists every
 * document with its entity-tag; a removed document comes with its previous tag only.
 */
export class XcapDiffPackage implements EventPackage {
  readonly name = 'xcap-diff';
  readonly accept = [XCAP_DIFF_TYPE] as const;
  private host?: PackageHost;
  /** Documents of watched users, as last read. */
  private readonly owners = new Map<string, DocumentTags>();
  /** What each subscription was last told (none: it gets the full list). */
  private readonly told = new WeakMap<Subscription, DocumentTags>();

  constructor(private readonly options: XcapDiffOptions) {}

  attach(host: PackageHost): void {
    this.host = host;
  }

  async authorize(attempt: SubscribeAttempt): Promise<SubscriptionDecision> {
    // RFC 5875 §5: a user's configuration is its own business.
    const decision = await OWNER_ONLY(attempt);
    if (decision === 'allow' && !this.owners.has(attempt.resource)) this.owners.set(attempt.resource, await this.options.documentsOf(attempt.resource));
    return decision;
  }

  /** A document of `owner` changed through XCAP: its watchers hear which (read again first). */
  async ownerChanged(owner: string): Promise<void> {
    if (!this.host || this.host.subscriptionsTo(this.name, owner).length === 0) {
      this.owners.delete(owner);
      return;
    }
    try {
      this.owners.set(owner, await this.options.documentsOf(owner));
    } catch (err) {
      this.options.logger?.warn({ err, owner }, 'xcap-diff: documents not read');
      return;
    }
    this.host.resourceChanged(this.name, owner);
  }

  body(sub: Subscription): NotifyBody | undefined {
    if (sub.status === 'terminated' && sub.reason !== 'timeout') return undefined;
    const now = this.owners.get(sub.resource) ?? new Map<string, string>();
    const before = this.told.get(sub);
    const parts: string[] = [];
    for (const [sel, etag] of now) {
      const prev = before?.get(sel);
      if (before && prev === etag) continue;
      parts.push(`<document sel="${escapeAttribute(sel)}"${prev !== undefined ? ` previous-etag="${escapeAttribute(bare(prev))}"` : ''} new-etag="${escapeAttribute(bare(etag))}"/>`);
    }
    if (before) for (const [sel, prev] of before) if (!now.has(sel)) parts.push(`<document sel="${escapeAttribute(sel)}" previous-etag="${escapeAttribute(bare(prev))}"/>`);
    this.told.set(sub, now);
    const body = `<?xml version="1.0" encoding="UTF-8"?>\n<xcap-diff xmlns="${XCAP_DIFF_NS}" xcap-root="${escapeAttribute(this.options.xcapRoot())}">${parts.join('')}</xcap-diff>\n`;
    return { contentType: XCAP_DIFF_TYPE, body: Buffer.from(body, 'utf8') };
  }

  onRefresh(sub: Subscription): void {
    this.told.delete(sub);
  }

  onRemoved(sub: Subscription): void {
    this.told.delete(sub);
    // The last watcher of the user gone: its documents are no longer followed.
    if (!this.host?.subscriptionsTo(this.name, sub.resource).some((s) => s !== sub)) this.owners.delete(sub.resource);
  }
}
