import type { Logger } from 'pino';
import type { EventPackage, NotifyBody, PackageHost, SubscribeAttempt, SubscriptionDecision } from '../event-package.js';
import type { PublishedBodyCheck, PublishedPackage } from '../published-package.js';
import type { Publication } from '../publications.js';
import type { Subscription } from '../subscription.js';
import { OWNER_ONLY } from '../winfo/winfo-package.js';
import { mergeSummaries, MESSAGE_SUMMARY_CONTENT_TYPE, parseMessageSummary, serializeMessageSummary, type MessageSummary } from './message-summary-document.js';

export interface MessageSummaryPackageOptions {
  /** How many pager messages are stored for a user now (the offline store: shared by a cluster). */
  readonly storedCount: (aor: string) => Promise<number>;
  /** Who may watch a mailbox: its owner (and the admin) only. */
  readonly authorize?: (attempt: SubscribeAttempt) => SubscriptionDecision | Promise<SubscriptionDecision>;
  readonly maxBytes?: number;
  readonly logger?: Logger;
}

/** Stored-message counts kept for watched users, at most. */
const MAX_COUNTS = 100_000;


/**
 * Message waiting indication (RFC 3842) from two sources merged: the pager messages our
 * offline store holds for the user (RFC 3458 class `text-message`, all new: stored means
 * not yet delivered), and summaries a voicemail system PUBLISHes for the user (RFC 3903).
 * The stored count is read back from the store whenever the store says it changed, so it
 * follows storing and delivery exactly (a message withdrawn after a late 2xx is removed
 * once, and counted by nobody). Each NOTIFY carries the whole summary.
 */
export class MessageSummaryPackage implements EventPackage, PublishedPackage {
  readonly name = 'message-summary';
  readonly accept = [MESSAGE_SUMMARY_CONTENT_TYPE] as const;
  readonly contentType = MESSAGE_SUMMARY_CONTENT_TYPE;
  readonly bodyName = 'message-summary';
  private host?: PackageHost;
  /** Stored-message counts of watched users, with the number of the read that gave each. */
  private readonly stored = new Map<string, { readonly count: number; readonly read: number }>();
  /** The published summaries of each user, merged. */
  private readonly published = new Map<string, MessageSummary>();
  /** Reads are numbered, so a late answer never overwrites a newer one. */
  private reads = 0;

  constructor(private readonly options: MessageSummaryPackageOptions) {}

  attach(host: PackageHost): void {
    this.host = host;
  }

  async authorize(attempt: SubscribeAttempt): Promise<SubscriptionDecision> {
    // RFC 3842 §6: a mailbox is its owner's business.
    const decision = await (this.options.authorize ?? OWNER_ONLY)(attempt);
    // The first NOTIFY carries the count: read it before the subscription is made.
    if (decision !== 'block') await this.read(attempt.resource);
    return decision;
  }

  check(body: Buffer): PublishedBodyCheck {
    const r = parseMessageSummary(body, this.options.maxBytes);
    return r.ok ? { ok: true } : r;
  }

  publicationsChanged(presentity: string, publications: readonly Publication[]): void {
    const summaries: MessageSummary[] = [];
    for (const p of publications) {
      const r = parseMessageSummary(p.body, this.options.maxBytes);
      if (r.ok) summaries.push(r.summary);
    }
    const before = this.published.get(presentity);
    if (summaries.length === 0) this.published.delete(presentity);
    else this.published.set(presentity, mergeSummaries(summaries));
    const after = this.published.get(presentity);
    if (!sameBody(before, after, presentity)) this.host?.resourceChanged(this.name, presentity);
  }

  /** The offline store says `aor`'s stored messages changed: its watchers hear the new count. */
  storedMessagesChanged(aor: string): void {
    if (!this.host || this.host.subscriptionsTo(this.name, aor).length === 0) {
      this.stored.delete(aor);
      return;
    }
    this.read(aor).catch((err: unknown) => this.options.logger?.warn({ err, aor }, 'stored message count not read'));
  }

  /** The summary `aor`'s watchers are sent now. */
  summaryOf(aor: string): MessageSummary {
    const count = this.stored.get(aor)?.count ?? 0;
    const own: MessageSummary = { waiting: count > 0, counts: new Map(count > 0 ? [['text-message', { newMessages: count, oldMessages: 0, newUrgent: 0, oldUrgent: 0 }]] : []) };
    const published = this.published.get(aor);
    return published ? mergeSummaries([published, own]) : own;
  }

  body(sub: Subscription): NotifyBody | undefined {
    if (sub.status === 'terminated' && sub.reason !== 'timeout') return undefined;
    // A subscription restored after a restart: the count is read now, its watchers told when it is not 0.
    if (sub.live && !this.stored.has(sub.resource)) this.read(sub.resource).catch((err: unknown) => this.options.logger?.warn({ err, aor: sub.resource }, 'stored message count not read'));
    // RFC 3842 §5.2: Message-Account is the account the summary is about.
    return { contentType: MESSAGE_SUMMARY_CONTENT_TYPE, body: serializeMessageSummary(this.summaryOf(sub.resource), sub.resource) };
  }

  private async read(aor: string): Promise<void> {
    const read = ++this.reads;
    const count = await this.options.storedCount(aor);
    const before = this.stored.get(aor);
    // A read that started later already answered: its count is the newer one.
    if (before && before.read > read) return;
    this.stored.delete(aor);
    if (this.stored.size >= MAX_COUNTS) this.stored.delete(this.stored.keys().next().value!);
    this.stored.set(aor, { count, read });
    if (count !== (before?.count ?? 0)) this.host?.resourceChanged(this.name, aor);
  }
}

function sameBody(a: MessageSummary | undefined, b: MessageSummary | undefined, account: string): boolean {
  if (!a || !b) return a === b;
  return serializeMessageSummary(a, account).equals(serializeMessageSummary(b, account));
}
