import type { Logger } from 'pino';
import type { AdminOperations } from '../control/operations.js';
import type { PresenceService } from '../presence/presence-service.js';
import type { AccountRecord } from '../store/records.js';
import { XcapDocumentRepository } from '../store/repositories/xcap-documents.js';
import type { Queryable } from '../store/database.js';
import type { WallClock } from '../util/timers.js';
import type { ApplicationUsage } from './application-usage.js';
import { XcapAuthenticator } from './xcap-auth.js';
import { XcapServer } from './xcap-server.js';
import { PIDF_MANIPULATION_AUID, pidfManipulationUsage } from './usages/pidf-manipulation.js';
import { presRulesUsage, type PresRulesUsage } from './usages/pres-rules.js';
import { attributeValue, elementChildren } from '../presence/pidf/xml-tree.js';
import { xcapCapsUsage } from './usages/xcap-caps.js';
import { XCAP_DIRECTORY_AUID, xcapDirectoryUsage } from './usages/xcap-directory.js';
import { XcapDiffPackage } from './xcap-diff-package.js';
import { RESOURCE_LISTS_AUID, resourceListsUsage, type ListBackend } from './usages/resource-lists.js';
import { rlsServicesUsage, type RlsServicesUsage } from './usages/rls-services.js';
import { RESOURCE_LISTS_NS } from '../lists/resource-lists.js';
import { splitListUri } from '../lists/stored-lists.js';

export { XcapServer } from './xcap-server.js';
export type { ApplicationUsage, DocumentRef, DocumentSource } from './application-usage.js';

export interface XcapSettings {
  readonly root: string;
  readonly maxDocumentBytes: number;
  readonly maxDepth: number;
}

/** What the XCAP side needs of the running server. */
export interface XcapWiring {
  readonly settings: XcapSettings;
  readonly logger: Logger;
  /** The store's database once open. */
  readonly database: () => Queryable | undefined;
  readonly account: (username: string) => Promise<AccountRecord | undefined>;
  readonly operations: () => AdminOperations | undefined;
  readonly presence: PresenceService;
  readonly realm: () => string;
  readonly domain: () => string;
  readonly adminTokenDigest?: Buffer;
  readonly wallClock: WallClock;
  /** The absolute XCAP root URI (xcap-diff's `xcap-root`): the HTTP listener's. */
  readonly rootUri: () => string;
  /** More application usages (served beside the built-in ones). */
  readonly extraUsages?: readonly ApplicationUsage[];
}

export { RESOURCE_LISTS_AUID } from './usages/resource-lists.js';
export { RESOURCE_LISTS_NS } from '../lists/resource-lists.js';

/** Hard-state documents loaded at start, at most. */
const MAX_HARD_STATES_LOADED = 1_000_000;

/**
 * The XCAP side as the HTTP side mounts it: the engine with its application usages
 * (xcap-caps, pres-rules in its IETF and OMA forms over the presence rules, resource-lists
 * and rls-services over the stored lists, pidf-manipulation into the presence service's
 * hard state, xcap-directory).
 */
export class XcapSide {
  readonly server: XcapServer;
  private readonly presRules: readonly PresRulesUsage[];
  private readonly rlsServices: RlsServicesUsage;
  /** RFC 5875 xcap-diff, registered with the presence service's subscriptions. */
  readonly diff: XcapDiffPackage;
  private repo: XcapDocumentRepository | undefined;
  private repoDb: Queryable | undefined;

  constructor(private readonly wiring: XcapWiring) {
    const documents = () => this.documents();
    const rules = () => {
      const ops = wiring.operations();
      return ops
        ? { list: (p: string) => ops.listRules(p), set: (r: Parameters<AdminOperations['setRule']>[0]) => ops.setRule(r), delete: (p: string, w: string) => ops.deleteRule(p, w) }
        : undefined;
    };
    const usages: ApplicationUsage[] = [];
    usages.push(xcapCapsUsage(() => this.server.applicationUsages));
    // OMA external lists: the `<entry uri>`s of a resource list of the user's own (RFC 4826 §3).
    const resolveList = async (owner: string, anc: string): Promise<string[] | undefined> => {
      const list = await this.server.elementAt(owner, anc);
      if (!list || list.ns !== RESOURCE_LISTS_NS || list.local !== 'list') return undefined;
      return elementChildren(list)
        .filter((e) => e.ns === RESOURCE_LISTS_NS && e.local === 'entry')
        .map((e) => attributeValue(e, 'uri'))
        .filter((u): u is string => u !== undefined);
    };
    this.presRules = [presRulesUsage({ oma: false, rules, documents, resolveList }), presRulesUsage({ oma: true, rules, documents, resolveList })];
    usages.push(...this.presRules);
    // RFC 4826: the documents ARE the stored lists the RLS serves (src/lists/), through the admin operations.
    const lists = (): ListBackend | undefined => wiring.operations();
    usages.push(resourceListsUsage({ lists, documents, supplied: (owner) => this.rlsServices.suppliedLists(owner) }));
    this.rlsServices = rlsServicesUsage({
      lists,
      documents,
      elementAt: (owner, ref) => this.server.elementAt(owner, ref),
      resourceListsRoot: (owner) => this.server.elementAt(owner, `${wiring.settings.root.replace(/\/+$/, '')}/${RESOURCE_LISTS_AUID}/users/${owner}/index/~~/resource-lists`),
    });
    usages.push(this.rlsServices);
    usages.push(
      pidfManipulationUsage({
        maxDocumentBytes: wiring.settings.maxDocumentBytes,
        hardStateChanged: (owner, bytes) => wiring.presence.setHardState(owner, bytes),
      }),
    );
    usages.push(
      xcapDirectoryUsage({
        documentsOf: (owner) => this.server.documentsOf(owner),
        // Every usage with user documents, the directory itself and xcap-caps aside.
        auids: () => this.server.applicationUsages.filter((u) => u.auid !== XCAP_DIRECTORY_AUID && u.auid !== 'xcap-caps').map((u) => u.auid),
        rootUri: wiring.rootUri,
      }),
    );
    usages.push(...(wiring.extraUsages ?? []));
    this.server = new XcapServer({
      root: wiring.settings.root,
      usages,
      documents,
      auth: new XcapAuthenticator({
        realm: wiring.realm,
        domain: wiring.domain,
        credentials: (u) => wiring.account(u),
        ...(wiring.adminTokenDigest ? { adminTokenDigest: wiring.adminTokenDigest } : {}),
        wallClock: wiring.wallClock,
      }),
      domain: wiring.domain,
      maxDocumentBytes: wiring.settings.maxDocumentBytes,
      maxDepth: wiring.settings.maxDepth,
      logger: wiring.logger,
      onChanged: async (owner, auid) => {
        // A resource list changed: rules that refer to it (OMA external lists) follow, before the answer.
        if (auid === RESOURCE_LISTS_AUID) {
          for (const u of this.presRules) await u.listsChanged(owner);
          await this.rlsServices.listsChanged(owner);
        }
        await this.diff.ownerChanged(owner);
      },
    });
    this.diff = new XcapDiffPackage({ documentsOf: (owner) => this.server.documentsOf(owner), xcapRoot: wiring.rootUri, logger: wiring.logger });
    wiring.presence.subscriptions.register(this.diff);
    // Rules changed elsewhere (CLI, admin API, web client, another server) change the pres-rules documents too.
    wiring.presence.ruleListeners.add((presentity) => {
      if (!this.server.writing.has(presentity)) void this.diff.ownerChanged(presentity);
    });
    // Lists changed elsewhere (CLI, admin API, /api/me, web client) change the resource-lists document.
    // What depends on them follows as after an XCAP change: OMA external lists, rls-services copies.
    wiring.presence.lists.storedListListeners.add((uri) => {
      const owner = splitListUri(uri)?.owner;
      if (owner === undefined || this.server.writing.has(owner)) return undefined;
      // Awaited by the change (the API answers once the rules follow); a failure is logged, the list stays stored.
      return this.listsChangedElsewhere(owner).catch((err: unknown) => wiring.logger.error({ err, owner }, 'xcap: documents depending on a list not updated'));
    });
  }

  /** `owner`'s stored lists changed outside XCAP: the documents that depend on them follow, then xcap-diff. */
  private async listsChangedElsewhere(owner: string): Promise<void> {
    for (const u of this.presRules) await u.listsChanged(owner);
    // A copy it makes changes a stored list again: that call finds nothing left to change.
    await this.rlsServices.listsChanged(owner);
    await this.diff.ownerChanged(owner);
  }

  /**
   * Serves one more application usage (from the composition root, before start). Its documents are stored by the engine unless
   * it brings a `source`; `changed` is where it tells the services (a list subscription's NOTIFY).
   */
  register(usage: ApplicationUsage): void {
    this.server.register(usage);
  }

  /** The stored documents, on the store's database (undefined before it is open). */
  documents(): XcapDocumentRepository | undefined {
    const db = this.wiring.database();
    if (!db) return undefined;
    if (db !== this.repoDb) {
      this.repoDb = db;
      this.repo = new XcapDocumentRepository(db);
    }
    return this.repo;
  }

  /** Once the store is open: every user's hard state (pidf-manipulation) into the presence service. */
  async start(): Promise<number> {
    const repo = this.documents();
    if (!repo) return 0;
    const docs = await repo.listByAuid(PIDF_MANIPULATION_AUID, MAX_HARD_STATES_LOADED);
    let n = 0;
    for (const d of docs) if (this.wiring.presence.setHardState(d.owner, Buffer.from(d.content, 'utf8'))) n++;
    if (n > 0) this.wiring.logger.info({ hardStates: n }, 'xcap: hard state loaded');
    return n;
  }
}
