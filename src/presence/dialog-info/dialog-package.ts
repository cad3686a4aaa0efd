import type { EventPackage, NotifyBody, PackageHost, SubscribeAttempt, SubscriptionDecision } from '../event-package.js';
import { PartialState, type StateElement } from '../partial-state.js';
import type { XmlLimits } from '../pidf/read-xml.js';
import type { PublishedBodyCheck, PublishedPackage } from '../published-package.js';
import type { Publication } from '../publications.js';
import type { Subscription } from '../subscription.js';
import { buildDialogInfo, DIALOG_INFO_CONTENT_TYPE, parseDialogInfo, serializeDialog, terminatedDialog, type DialogInfo } from './dialog-info-document.js';

export interface DialogPackageOptions {
  /** Who may watch (the presence rules: RFC 4235 §3.6 leaves it to the same policy). */
  readonly authorize: (attempt: SubscribeAttempt) => SubscriptionDecision | Promise<SubscriptionDecision>;
  /** Bounds of a published document. */
  readonly limits?: XmlLimits;
  /** The largest composed state a NOTIFY may carry, in bytes of `<dialog>` elements. */
  readonly maxComposedBytes?: number;
}

const NO_DIALOGS: ReadonlyMap<string, StateElement> = new Map();

/**
 * The dialog event package (RFC 4235): a PBX or a phone PUBLISHes `dialog-info` for a
 * user (RFC 3903 entity-tags, as for presence); the dialogs of all the user's publishers
 * are merged into one state (the newest publication wins a dialog id both carry, as
 * Kamailio's presence_dialoginfo merges devices), and each watcher gets it in full first,
 * then partial documents with the dialogs that changed, a version per subscription going
 * up by one a document (RFC 4235 §4.1). A polite-blocked watcher sees no dialogs.
 */
export class DialogPackage implements EventPackage, PublishedPackage {
  readonly name = 'dialog';
  readonly accept = [DIALOG_INFO_CONTENT_TYPE] as const;
  readonly contentType = DIALOG_INFO_CONTENT_TYPE;
  readonly bodyName = 'dialog-info';
  private host?: PackageHost;
  /** Every presentity's composed dialogs, by dialog id. */
  private readonly composed = new Map<string, ReadonlyMap<string, StateElement>>();
  private readonly partial = new PartialState();
  /** Parsed documents, by the publication's (shared, never rewritten) body. */
  private readonly parsed = new WeakMap<Buffer, DialogInfo>();

  constructor(private readonly options: DialogPackageOptions) {}

  attach(host: PackageHost): void {
    this.host = host;
  }

  authorize(attempt: SubscribeAttempt): SubscriptionDecision | Promise<SubscriptionDecision> {
    return this.options.authorize(attempt);
  }

  /**
   * The entity is not compared with the presentity: a PBX writes its own host there
   * (Asterisk's extension state names the extension at the PBX), and the watchers are
   * shown the presentity's URI anyway. Who may publish for whom is the authorizer's call.
   */
  check(body: Buffer): PublishedBodyCheck {
    const r = parseDialogInfo(body, this.options.limits);
    return r.ok ? { ok: true } : r;
  }

  publicationsChanged(presentity: string, publications: readonly Publication[]): void {
    const next = this.compose(publications);
    const before = this.composed.get(presentity) ?? NO_DIALOGS;
    if (next.size === 0) this.composed.delete(presentity);
    else this.composed.set(presentity, next);
    if (!sameElements(before, next)) this.host?.resourceChanged(this.name, presentity);
  }

  /** The composed dialogs of a presentity (the admin API, tests). */
  dialogsOf(presentity: string): readonly string[] {
    return [...(this.composed.get(presentity) ?? NO_DIALOGS).values()].map((e) => e.xml);
  }

  body(sub: Subscription): NotifyBody | undefined {
    // As for presence: the final NOTIFY carries state only when the subscription ran out.
    if (sub.status === 'terminated' && sub.reason !== 'timeout') return undefined;
    if (sub.view === 'polite-block') {
      // RFC 5025 §3.2.1: looks accepted, shows nothing; a later approval starts from full state.
      this.partial.reset(sub);
      return { contentType: DIALOG_INFO_CONTENT_TYPE, body: buildDialogInfo(sub.resource, sub.documentVersion++, 'full', []) };
    }
    const next = this.partial.next(sub, this.composed.get(sub.resource) ?? NO_DIALOGS, terminatedDialog);
    return { contentType: DIALOG_INFO_CONTENT_TYPE, body: buildDialogInfo(sub.resource, sub.documentVersion++, next.state, next.elements) };
  }

  onRefresh(sub: Subscription): void {
    this.partial.reset(sub);
  }

  onRemoved(sub: Subscription): void {
    this.partial.reset(sub);
  }

  /**
   * Newest publication first, each dialog id once; publications that no longer fit the
   * NOTIFY are left out, oldest first (as presence composition does).
   */
  private compose(publications: readonly Publication[]): Map<string, StateElement> {
    const out = new Map<string, StateElement>();
    const max = this.options.maxComposedBytes ?? Number.POSITIVE_INFINITY;
    let bytes = 0;
    for (let i = publications.length - 1; i >= 0; i--) {
      const doc = this.documentOf(publications[i]!);
      if (!doc) continue;
      const adds: Array<[string, StateElement]> = [];
      let size = 0;
      for (const d of doc.dialogs) {
        if (out.has(d.id)) continue;
        const xml = serializeDialog(d);
        size += xml.length;
        adds.push([d.id, { xml, live: true }]);
      }
      if (bytes + size > max) break;
      bytes += size;
      for (const [k, e] of adds) out.set(k, e);
    }
    return out;
  }

  private documentOf(p: Publication): DialogInfo | undefined {
    let doc = this.parsed.get(p.body);
    if (!doc) {
      // Restored or from another node: read again (it was valid when published).
      const r = parseDialogInfo(p.body, this.options.limits);
      if (!r.ok) return undefined;
      this.parsed.set(p.body, (doc = r.document));
    }
    return doc;
  }
}

function sameElements(a: ReadonlyMap<string, StateElement>, b: ReadonlyMap<string, StateElement>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, e] of a) if (b.get(k)?.xml !== e.xml) return false;
  return true;
}
