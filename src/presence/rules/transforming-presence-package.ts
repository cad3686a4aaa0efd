import type { PresenceAuthorizer } from '../authorizer.js';
import { serializePidf } from '../pidf/index.js';
import type { PresenceDocuments } from '../presence-documents.js';
import { PresencePackage } from '../presence-package.js';
import type { SubscriptionView } from '../subscription.js';
import { isIdentity, type Transformations } from './rule-types.js';
import { applyTransformations } from './transform.js';

/**
 * The presence package with RFC 5025 transformations: a full-view watcher whose rule hides
 * notes or devices, or shows basic status only, gets the composed document filtered, built
 * once per presentity version and transformation set (DESIGN: a body once per view).
 */
export class TransformingPresencePackage extends PresencePackage {
  /** Keyed by the shared composed bytes: gone with them when the presentity's state moves on. */
  private readonly cache = new WeakMap<Buffer, Map<string, Buffer>>();

  constructor(
    private readonly docs: PresenceDocuments,
    authorizer: PresenceAuthorizer,
    private readonly viewOf: (watcher: string, presentity: string) => Transformations,
  ) {
    super(docs, authorizer);
  }

  override viewDocument(watcher: string, presentity: string, view: SubscriptionView): Buffer {
    const out = super.viewDocument(watcher, presentity, view);
    if (view !== 'full') return out;
    const t = this.viewOf(watcher, presentity);
    if (isIdentity(t)) return out;
    const k = `${+t.hideNotes}${+t.hideDevices}${+t.basicOnly}`;
    let views = this.cache.get(out);
    if (!views) this.cache.set(out, (views = new Map()));
    let body = views.get(k);
    if (!body) {
      const parsed = this.docs.parse(out);
      // Our own composed bytes always parse; if they did not, nothing is safer than neutral.
      body = parsed.ok ? serializePidf(applyTransformations(parsed.document, t)) : this.docs.neutral(presentity);
      views.set(k, body);
    }
    return body;
  }
}
