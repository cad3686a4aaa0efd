import { statSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import type { Logger } from 'pino';
import type { Database } from '../store/database.js';
import { SqliteDatabase } from '../store/sqlite-driver.js';
import { exportToFile } from '../store/transfer.js';
import { computeHa1s } from '../auth/ha1.js';
import { AccountExistsError, type AccountRepository } from '../store/repositories/accounts.js';
import type { AccountRecord } from '../store/records.js';
import { XcapDocumentRepository } from '../store/repositories/xcap-documents.js';
import { ANY_WATCHER } from '../presence/rules/rule-matching.js';
import type { PresenceRuleStore } from '../presence/rules/rule-store.js';
import { NO_TRANSFORMATIONS, RULE_ACTIONS, type RuleAction, type Transformations } from '../presence/rules/rule-types.js';
import type { ResourceListRepository } from '../store/repositories/resource-lists.js';
import { entryKey } from '../lists/resource-lists.js';
import { LIST_NAME_RE, listDocument, listInfo, listUri, type StoredListEntry, type StoredListInfo } from '../lists/stored-lists.js';

/**
 * The administrative operations, one module for every front end: the CLI (through the
 * control channel, or on the store directly when no server runs) and the HTTP admin API.
 * Users are of the server's domain (`sip.domain`); presentities and watchers may be given
 * as `alice`, `alice@example.com` or `sip:alice@example.com`, a watcher also as
 * `*@example.com` (a whole domain) or `*` (everyone: the presentity's default).
 */
export interface AdminOperations {
  listUsers(options?: { readonly limit?: number; readonly after?: string }): Promise<UserInfo[]>;
  /** AdminError 'exists' when taken, 'invalid' for a bad name or an empty password. */
  addUser(input: { readonly username: string; readonly password: string; readonly displayName?: string }): Promise<UserInfo>;
  /** AdminError 'not-found' when there is no such user. */
  setPassword(username: string, password: string): Promise<void>;
  /**
   * AdminError 'not-found' when there is no such user. The user's rules and the rules about
   * it go too, and on a running server its registrations and subscriptions end at once.
   */
  deleteUser(username: string): Promise<void>;
  listRules(presentity: string): Promise<RuleInfo[]>;
  /** Creates or replaces a rule; live subscriptions follow it at once (`affected` of them changed). */
  setRule(input: RuleInput): Promise<{ readonly rule: RuleInfo; readonly affected: number }>;
  /** AdminError 'not-found' when there was no such rule. Live subscriptions are decided again. */
  deleteRule(presentity: string, watcher: string): Promise<{ readonly affected: number }>;
  /**
   * Writes a consistent copy of the embedded store to `file` (absolute; must not exist)
   * while it stays in use. AdminError 'invalid' on PostgreSQL (pg_dump is its tool).
   */
  backup(file: string): Promise<{ readonly file: string; readonly bytes: number }>;
  /** Writes the whole store as JSON lines to `file` (absolute; must not exist): src/store/transfer.ts. */
  exportTo(file: string): Promise<{ readonly file: string; readonly rows: number }>;
  /** A user's stored resource lists (RFC 4826), each with the URI it is served at. */
  listLists(owner: string): Promise<StoredListInfo[]>;
  /** Creates or replaces a list; live subscriptions to it get its new full state (`affected` of them). */
  setList(input: ListInput): Promise<{ readonly list: StoredListInfo; readonly affected: number }>;
  /** AdminError 'not-found' when there was no such list. Its live subscriptions end (noresource), unless it is `presence`. */
  deleteList(owner: string, name: string): Promise<{ readonly affected: number }>;
}

export interface ListInput {
  readonly owner: string;
  readonly name: string;
  readonly displayName?: string;
  readonly entries: readonly StoredListEntry[];
}

export interface UserInfo {
  readonly username: string;
  readonly domain: string;
  /** sip:username@domain */
  readonly aor: string;
  readonly displayName?: string;
  /** HA1 digests are stored (the user can authenticate). */
  readonly hasPassword: boolean;
  readonly createdAtMs: number;
}

export interface RuleInput {
  readonly presentity: string;
  readonly watcher: string;
  readonly action: RuleAction;
  /** Missing keys are false. */
  readonly transformations?: Partial<Transformations>;
}

export interface RuleInfo {
  /** Canonical: sip:alice@example.com */
  readonly presentity: string;
  /** Canonical: sip:bob@example.com, *@example.com or * */
  readonly watcher: string;
  readonly action: RuleAction;
  readonly transformations: Transformations;
}

export type AdminErrorCode = 'invalid' | 'not-found' | 'exists' | 'unavailable';

/** A refusal the front end shows as is (HTTP: invalid 400, not-found 404, exists 409, unavailable 503). */
export class AdminError extends Error {
  override name = 'AdminError';
  constructor(readonly code: AdminErrorCode, message: string) {
    super(message);
  }
}

/** What live state must do when a rule changes (the presence service, when a server runs). */
export interface RuleEffects {
  /** Re-decides the live subscriptions of `watcher` (a URI or pattern) to `presentity`; how many changed. */
  rulesChanged(presentity: string, watcher: string): Promise<number> | number;
  /**
   * Ends what a deleted account still holds live: its subscriptions as a watcher, those to
   * its presentity, its registrations. How many of them ended.
   */
  accountDeleted?(aor: string): Promise<number> | number;
  /** An account was added or its password changed (a cluster tells the other servers' caches). */
  accountChanged?(aor: string): void | Promise<void>;
  /** A stored list changed or went (its list URI): live list subscriptions follow; how many. */
  listChanged?(uri: string): Promise<number> | number;
}

export interface StoreAdminOptions {
  readonly accounts: AccountRepository;
  readonly rules: PresenceRuleStore;
  /** sip.domain: the domain of every account. */
  readonly domain: string;
  /** auth.realm: the realm the HA1 digests are computed in (RFC 3261 §22.4). */
  readonly realm: string;
  readonly effects?: RuleEffects;
  readonly logger?: Logger;
  /** The store's database (db backup, db export). */
  readonly database?: Database;
  /** Users' stored lists; list operations are 'unavailable' without. */
  readonly lists?: ResourceListRepository;
  /** presence.maxListMembers: most entries of a stored list. */
  readonly maxListMembers?: number;
}

/** A file the server writes for the CLI: named absolutely (the CLI's working directory is not the server's). */
function checkTarget(file: string): void {
  if (typeof file !== 'string' || !isAbsolute(file) || file.includes('\0')) throw new AdminError('invalid', 'the file must be an absolute path');
}

/** User part of an account: the unreserved characters of RFC 3261 §25.1, 1 to 64 of them. */
const USERNAME_RE = /^[A-Za-z0-9][A-Za-z0-9._~+-]{0,63}$/;
const DOMAIN_RE = /^[A-Za-z0-9.-]{1,253}$|^\[[0-9A-Fa-f:.]{2,45}\]$/;
const MAX_PASSWORD = 1024;
const MAX_DISPLAY_NAME = 256;

/** The operations over the store's repositories. */
export class StoreAdminOperations implements AdminOperations {
  private readonly domain: string;

  constructor(private readonly options: StoreAdminOptions) {
    this.domain = options.domain.toLowerCase();
  }

  async backup(file: string): Promise<{ file: string; bytes: number }> {
    const db = this.options.database;
    checkTarget(file);
    if (!(db instanceof SqliteDatabase)) throw new AdminError('invalid', 'db backup copies the embedded SQLite store; back PostgreSQL up with pg_dump');
    try {
      await db.backup(file);
    } catch (err) {
      throw new AdminError('invalid', `backup to ${file} failed: ${(err as Error).message}`);
    }
    return { file, bytes: statSync(file).size };
  }

  async exportTo(file: string): Promise<{ file: string; rows: number }> {
    const db = this.options.database;
    checkTarget(file);
    if (!db) throw new AdminError('unavailable', 'no store to export');
    return { file, rows: await exportToFile(db, file) };
  }

  async listUsers(options: { limit?: number; after?: string } = {}): Promise<UserInfo[]> {
    const limit = Math.min(Math.max(1, Math.floor(options.limit ?? 1000)), 10_000);
    const rows = await this.options.accounts.list({
      domain: this.domain,
      limit,
      ...(options.after !== undefined ? { after: { domain: this.domain, username: this.username(options.after) } } : {}),
    });
    return rows.map((r) => userInfo(r));
  }

  async addUser(input: { username: string; password: string; displayName?: string }): Promise<UserInfo> {
    const username = this.username(input.username);
    checkPassword(input.password);
    if (input.displayName !== undefined && (input.displayName.length > MAX_DISPLAY_NAME || /[\r\n\0]/.test(input.displayName))) {
      throw new AdminError('invalid', 'display name too long or with line breaks');
    }
    try {
      const rec = await this.options.accounts.create({
        domain: this.domain,
        username,
        ...(input.displayName ? { displayName: input.displayName } : {}),
        ...computeHa1s(username, this.options.realm, input.password),
      });
      await this.options.effects?.accountChanged?.(this.aor(username));
      this.options.logger?.info({ user: username }, 'account added');
      return userInfo(rec);
    } catch (err) {
      if (err instanceof AccountExistsError) throw new AdminError('exists', `user ${username} exists`);
      throw err;
    }
  }

  async setPassword(username: string, password: string): Promise<void> {
    const user = this.username(username);
    checkPassword(password);
    const ok = await this.options.accounts.setPasswordHashes(this.domain, user, computeHa1s(user, this.options.realm, password));
    if (!ok) throw new AdminError('not-found', `no user ${user}`);
    await this.options.effects?.accountChanged?.(this.aor(user));
    this.options.logger?.info({ user }, 'password changed');
  }

  async deleteUser(username: string): Promise<void> {
    const user = this.username(username);
    if (!(await this.options.accounts.delete(this.domain, user))) throw new AdminError('not-found', `no user ${user}`);
    const aor = this.aor(user);
    await this.options.rules.deleteUser(aor);
    // Its XCAP documents (pres-rules copies, hard state) go too.
    if (this.options.database) await new XcapDocumentRepository(this.options.database).deleteOwner(aor);
    await this.options.lists?.deleteOwner(aor);
    // Deleted means gone now, not when its registrations and subscriptions run out.
    const ended = (await this.options.effects?.accountDeleted?.(aor)) ?? 0;
    this.options.logger?.info({ user, ended }, 'account deleted');
  }

  async listRules(presentity: string): Promise<RuleInfo[]> {
    return this.options.rules.listFor(this.presentity(presentity));
  }

  async setRule(input: RuleInput): Promise<{ rule: RuleInfo; affected: number }> {
    if (!(RULE_ACTIONS as readonly string[]).includes(input.action)) throw new AdminError('invalid', `action must be one of ${RULE_ACTIONS.join(', ')}`);
    const t = input.transformations ?? {};
    const rule: RuleInfo = {
      presentity: this.presentity(input.presentity),
      watcher: this.watcher(input.watcher),
      action: input.action,
      transformations: {
        hideNotes: t.hideNotes === true,
        hideDevices: t.hideDevices === true,
        basicOnly: t.basicOnly === true,
      },
    };
    await this.options.rules.set(rule);
    const affected = await this.apply(rule.presentity, rule.watcher);
    this.options.logger?.info({ presentity: rule.presentity, watcher: rule.watcher, action: rule.action, affected }, 'presence rule set');
    return { rule, affected };
  }

  async deleteRule(presentity: string, watcher: string): Promise<{ affected: number }> {
    const p = this.presentity(presentity);
    const w = this.watcher(watcher);
    if (!(await this.options.rules.delete(p, w))) throw new AdminError('not-found', `no rule of ${p} about ${w}`);
    const affected = await this.apply(p, w);
    this.options.logger?.info({ presentity: p, watcher: w, affected }, 'presence rule deleted');
    return { affected };
  }

  async listLists(owner: string): Promise<StoredListInfo[]> {
    return (await this.listRepository().listFor(this.presentity(owner))).map(listInfo);
  }

  async setList(input: ListInput): Promise<{ list: StoredListInfo; affected: number }> {
    const owner = this.presentity(input.owner);
    const name = listName(input.name);
    if (input.displayName !== undefined && (typeof input.displayName !== 'string' || input.displayName.length > MAX_DISPLAY_NAME || /[\r\n\0]/.test(input.displayName))) {
      throw new AdminError('invalid', 'display name too long or with line breaks');
    }
    if (!Array.isArray(input.entries)) throw new AdminError('invalid', 'entries must be a list');
    const max = this.options.maxListMembers ?? 1000;
    if (input.entries.length > max) throw new AdminError('invalid', `more than ${max} entries (presence.maxListMembers)`);
    const seen = new Set<string>();
    const entries: StoredListEntry[] = [];
    for (const e of input.entries) {
      const uri = this.entryUri(e?.uri);
      const dn = e?.displayName;
      if (dn !== undefined && (typeof dn !== 'string' || dn.length > MAX_DISPLAY_NAME || /[\r\n\0]/.test(dn))) throw new AdminError('invalid', `bad display name for ${uri}`);
      // RFC 4826 §3.4.1: one entry a URI; a repeated one is dropped.
      const key = entryKey(uri);
      if (seen.has(key)) continue;
      seen.add(key);
      entries.push({ uri, ...(dn !== undefined && dn !== '' ? { displayName: dn } : {}) });
    }
    const displayName = input.displayName !== undefined && input.displayName !== '' ? input.displayName : undefined;
    await this.listRepository().set({ owner, name, ...(displayName !== undefined ? { displayName } : {}), document: listDocument(name, entries, displayName) });
    const uri = listUri(owner, name);
    const affected = await this.listApplied(uri);
    this.options.logger?.info({ owner, list: name, entries: entries.length, affected }, 'resource list set');
    return { list: { owner, name, uri, ...(displayName !== undefined ? { displayName } : {}), entries }, affected };
  }

  async deleteList(owner: string, name: string): Promise<{ affected: number }> {
    const o = this.presentity(owner);
    const n = listName(name);
    if (!(await this.listRepository().delete(o, n))) throw new AdminError('not-found', `no list ${n} of ${o}`);
    const affected = await this.listApplied(listUri(o, n));
    this.options.logger?.info({ owner: o, list: n, affected }, 'resource list deleted');
    return { affected };
  }

  private listRepository(): ResourceListRepository {
    if (!this.options.lists) throw new AdminError('unavailable', 'stored lists need the store');
    return this.options.lists;
  }

  private async listApplied(uri: string): Promise<number> {
    try {
      return (await this.options.effects?.listChanged?.(uri)) ?? 0;
    } catch (err) {
      // The list is stored: the next list SUBSCRIBE gets it even when live state could not follow.
      this.options.logger?.error({ err, uri }, 'live list subscriptions not updated');
      return 0;
    }
  }

  /** A list entry: a SIP URI of anyone (bob, bob@example.org or sip:bob@example.org), or a tel URI. */
  private entryUri(value: unknown): string {
    const v = typeof value === 'string' ? value.trim() : '';
    if (/^tel:\+?[0-9A-Fa-f*#().-]{1,32}$/i.test(v)) return v;
    if (v.length > 320 || /[\s<>"]/.test(v)) throw new AdminError('invalid', `bad entry "${String(value).slice(0, 64)}"`);
    const bare = v.replace(/^sips?:/i, '');
    const at = bare.indexOf('@');
    if (at < 0) return this.aor(this.username(bare));
    const user = bare.slice(0, at);
    const host = bare.slice(at + 1).toLowerCase();
    if (!USERNAME_RE.test(user) || !DOMAIN_RE.test(host)) throw new AdminError('invalid', `bad entry "${v.slice(0, 64)}"`);
    return `sip:${user}@${host}`;
  }

  private async apply(presentity: string, watcher: string): Promise<number> {
    if (!this.options.effects) return 0;
    try {
      return await this.options.effects.rulesChanged(presentity, watcher);
    } catch (err) {
      // The rule is stored: the next SUBSCRIBE follows it even when live state could not.
      this.options.logger?.error({ err, presentity, watcher }, 'live subscriptions not re-decided');
      return 0;
    }
  }

  private username(name: string): string {
    let user = typeof name === 'string' ? name.trim() : '';
    const uri = /^sips?:/i.test(user) ? user.replace(/^sips?:/i, '') : user;
    const at = uri.indexOf('@');
    if (at >= 0) {
      if (uri.slice(at + 1).toLowerCase() !== this.domain) throw new AdminError('invalid', `${name} is not of domain ${this.domain}`);
      user = uri.slice(0, at);
    } else user = uri;
    if (!USERNAME_RE.test(user)) throw new AdminError('invalid', `bad user name "${name}" (letters, digits and . _ ~ + - only)`);
    return user;
  }

  private aor(user: string): string {
    return `sip:${user}@${this.domain}`;
  }

  /** A presentity is one of our users. */
  private presentity(name: string): string {
    return this.aor(this.username(name));
  }

  /** A watcher may be anyone's URI, a domain pattern, or everyone. */
  private watcher(name: string): string {
    const w = typeof name === 'string' ? name.trim() : '';
    if (w === ANY_WATCHER) return ANY_WATCHER;
    if (w.startsWith('*@')) {
      const d = w.slice(2).toLowerCase();
      if (!DOMAIN_RE.test(d)) throw new AdminError('invalid', `bad domain in "${name}"`);
      return `*@${d}`;
    }
    const bare = w.replace(/^sips?:/i, '');
    const at = bare.indexOf('@');
    if (at < 0) return this.aor(this.username(bare));
    const user = bare.slice(0, at);
    const host = bare.slice(at + 1).toLowerCase();
    if (!USERNAME_RE.test(user) || !DOMAIN_RE.test(host)) throw new AdminError('invalid', `bad watcher "${name}"`);
    return `sip:${user}@${host}`;
  }
}

function listName(name: unknown): string {
  if (typeof name !== 'string' || !LIST_NAME_RE.test(name)) throw new AdminError('invalid', 'list name: 1 to 64 letters, digits and . _ ~ -');
  return name;
}

function checkPassword(password: unknown): asserts password is string {
  if (typeof password !== 'string' || password.length === 0) throw new AdminError('invalid', 'empty password');
  if (password.length > MAX_PASSWORD) throw new AdminError('invalid', 'password too long');
}

function userInfo(r: AccountRecord): UserInfo {
  return {
    username: r.username,
    domain: r.domain,
    aor: `sip:${r.username}@${r.domain}`,
    ...(r.displayName !== undefined ? { displayName: r.displayName } : {}),
    hasPassword: r.ha1Md5 !== undefined || r.ha1Sha256 !== undefined,
    createdAtMs: r.createdAtMs,
  };
}

export { NO_TRANSFORMATIONS };
