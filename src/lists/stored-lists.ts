import type { LocalDomains } from '../core/local-domains.js';
import { presentityOf } from '../presence/presentity.js';
import type { ResourceListRecord, ResourceListRepository } from '../store/repositories/resource-lists.js';
import { tryParseUri } from '../sip/uri.js';
import type { StoredList, StoredListSource } from './resource-list-server.js';
import { flattenEntries, parseResourceLists, serializeResourceLists, type ListEntry } from './resource-lists.js';

/**
 * Users' stored lists (RFC 4826 resource-lists, served as RFC 4662 lists): the name a list
 * URI carries, the document a list is kept as, and the source the RLS reads them from.
 *
 * A list is served at sip:<user>+<name>@<domain>: `<user>+presence` is the one Blink
 * subscribes to (SIP SIMPLE client SDK's convention), other names are the user's choice.
 * A user without a stored `presence` list has an empty one there.
 */

/** The list Blink subscribes to: sip:<user>+presence@<domain>. */
export const DEFAULT_LIST_NAME = 'presence';
/** RFC 3261 §25.1 unreserved characters, 1 to 64: safe in a SIP user part and a URL path. */
export const LIST_NAME_RE = /^[A-Za-z0-9._~-]{1,64}$/;

/** A member as the APIs take and show it. */
export interface StoredListEntry {
  readonly uri: string;
  readonly displayName?: string;
}

/** A stored list as the APIs take and show it. */
export interface StoredListInfo {
  readonly owner: string;
  readonly name: string;
  /** sip:<user>+<name>@<domain>: what a client subscribes to. */
  readonly uri: string;
  readonly displayName?: string;
  readonly entries: readonly StoredListEntry[];
}

/** The list URI of `owner`'s list `name`. */
export function listUri(owner: string, name: string): string {
  const m = /^sip:([^@]+)@(.+)$/.exec(owner);
  return m ? `sip:${m[1]}+${name}@${m[2]}` : owner;
}

/** Owner and name of a list URI (canonical, of our domain), when its user part has the form <user>+<name>. */
export function splitListUri(uri: string): { owner: string; name: string } | undefined {
  const m = /^sip:([^@]+)@(.+)$/.exec(uri);
  if (!m) return undefined;
  const plus = m[1]!.lastIndexOf('+');
  // A leading + is a telephone number's (sip:+15551234@...), not a list.
  if (plus <= 0) return undefined;
  const name = m[1]!.slice(plus + 1);
  if (!LIST_NAME_RE.test(name)) return undefined;
  return { owner: `sip:${m[1]!.slice(0, plus)}@${m[2]}`, name };
}

/** Writes a list as an RFC 4826 document of one `<list name>`. */
export function listDocument(name: string, entries: readonly StoredListEntry[], displayName?: string): string {
  const members: ListEntry[] = entries.map((e) => ({ kind: 'entry', uri: e.uri, ...(e.displayName !== undefined ? { displayName: { text: e.displayName } } : {}) }));
  return serializeResourceLists({ lists: [{ kind: 'list', name, ...(displayName !== undefined ? { displayName: { text: displayName } } : {}), members }] }).toString('utf8');
}

/** A stored record as the APIs show it (its document read back; one we wrote always reads). */
export function listInfo(r: ResourceListRecord): StoredListInfo {
  const parsed = parseResourceLists(r.document, { maxMembers: 100_000, duplicates: 'drop' });
  const entries = parsed.ok ? flattenEntries(parsed.document).entries.map((e) => ({ uri: e.uri, ...(e.displayName !== undefined ? { displayName: e.displayName } : {}) })) : [];
  return { owner: r.owner, name: r.name, uri: listUri(r.owner, r.name), ...(r.displayName !== undefined ? { displayName: r.displayName } : {}), entries };
}

/** The RLS's stored lists, read from the store on each new list subscription. */
export class RepositoryListSource implements StoredListSource {
  constructor(
    private readonly repository: () => ResourceListRepository | undefined,
    private readonly domains: LocalDomains,
  ) {}

  async listAt(uri: string): Promise<StoredList | undefined> {
    const parts = splitListUri(uri);
    if (!parts) return undefined;
    // The owner is one of our users, named canonically.
    const ownerUri = tryParseUri(parts.owner);
    const owner = ownerUri ? presentityOf(ownerUri, this.domains) : undefined;
    if (owner === undefined) return undefined;
    const repo = this.repository();
    const rec = repo ? await repo.get(owner, parts.name) : undefined;
    if (!rec) return parts.name === DEFAULT_LIST_NAME ? { owner, name: parts.name, entries: [] } : undefined;
    const info = listInfo(rec);
    return { owner, name: rec.name, ...(rec.displayName !== undefined ? { displayName: rec.displayName } : {}), entries: info.entries };
  }
}
