import { isUniqueViolation, type Database } from '../database.js';
import type { AccountRecord } from '../records.js';
import { opt, toMs } from '../sql-values.js';
import { BoundedCache } from '../../util/bounded-cache.js';

/** Accounts kept in memory (looked up on every authenticated request). */
const CACHED_ACCOUNTS = 100_000;
/** Unknown names remembered at most (each saves a query for a name tried again). */
const CACHED_MISSING = 10_000;

export interface NewAccount {
  readonly domain: string;
  readonly username: string;
  readonly displayName?: string;
  readonly ha1Md5?: string;
  readonly ha1Sha256?: string;
}

export interface PasswordHashes {
  /** Hex MD5(username:realm:password). */
  readonly ha1Md5: string;
  /** Hex SHA-256(username:realm:password). */
  readonly ha1Sha256: string;
}

export interface AccountListOptions {
  /** Only this domain's accounts. */
  readonly domain?: string;
  /** At most this many (default 1000). */
  readonly limit?: number;
  /** Keyset paging: accounts after this one in (domain, username) order. */
  readonly after?: { readonly domain: string; readonly username: string };
}

export class AccountExistsError extends Error {
  override name = 'AccountExistsError';
}

interface AccountRow {
  domain: string;
  username: string;
  display_name: string | null;
  ha1_md5: string | null;
  ha1_sha256: string | null;
  created_at: Date;
}

const COLUMNS = 'domain, username, display_name, ha1_md5, ha1_sha256, created_at';

/**
 * Accounts of our domains (durable: every call is committed when it resolves). Domain and
 * username are stored as given; callers canonicalize them (lower-case domain) first.
 */
export class AccountRepository {
  /**
   * Read-through cache of accounts. Every write of this process goes through here, so it
   * stays true; it lets known users authenticate while the database is unreachable.
   * Several servers on one database (a cluster) tell each other of their writes (`forget`).
   */
  private readonly cache = new BoundedCache<string, AccountRecord>(CACHED_ACCOUNTS);
  /**
   * Names known not to be accounts, in a cache of their own: names come from the network,
   * and a burst of unknown ones must not push real accounts out of `cache`.
   */
  private readonly missing = new BoundedCache<string, true>(CACHED_MISSING);

  constructor(private readonly db: Database) {}

  /** Creates the account; AccountExistsError when domain+username is taken. */
  async create(account: NewAccount): Promise<AccountRecord> {
    try {
      const res = await this.db.query<AccountRow>(
        `INSERT INTO accounts (domain, username, display_name, ha1_md5, ha1_sha256) VALUES ($1, $2, $3, $4, $5) RETURNING ${COLUMNS}`,
        [account.domain, account.username, account.displayName ?? null, hex(account.ha1Md5), hex(account.ha1Sha256)],
      );
      const created = fromRow(res.rows[0]!);
      const key = cacheKey(created.domain, created.username);
      this.missing.delete(key);
      this.cache.set(key, created);
      return created;
    } catch (err) {
      if (isUniqueViolation(err)) throw new AccountExistsError(`account ${account.username}@${account.domain} exists`);
      throw err;
    }
  }

  async get(domain: string, username: string): Promise<AccountRecord | undefined> {
    const key = cacheKey(domain, username);
    const cached = this.cache.get(key);
    if (cached !== undefined || this.missing.has(key)) return cached;
    // Every write touches both caches, so one count tells whether a write overtook this read.
    const since = this.cache.writes;
    const res = await this.db.query<AccountRow>(`SELECT ${COLUMNS} FROM accounts WHERE domain = $1 AND username = $2`, [domain, username]);
    const row = res.rows[0];
    const account = row ? fromRow(row) : undefined;
    if (account) this.cache.fill(key, account, since);
    else if (this.cache.writes === since) this.missing.set(key, true);
    return account;
  }

  /**
   * Forgets what the caches hold of an account that another server changed (a cluster's
   * invalidation): the next read goes to the database.
   */
  forget(domain: string, username: string): void {
    const key = cacheKey(domain, username);
    this.cache.delete(key);
    this.missing.delete(key);
  }

  /** Accounts in (domain, username) order. */
  async list(options: AccountListOptions = {}): Promise<AccountRecord[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (options.domain !== undefined) {
      params.push(options.domain);
      where.push(`domain = $${params.length}`);
    }
    if (options.after) {
      params.push(options.after.domain, options.after.username);
      where.push(`(domain, username) > ($${params.length - 1}, $${params.length})`);
    }
    params.push(Math.max(0, Math.floor(options.limit ?? 1000)));
    const res = await this.db.query<AccountRow>(
      `SELECT ${COLUMNS} FROM accounts ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY domain, username LIMIT $${params.length}`,
      params,
    );
    return res.rows.map(fromRow);
  }

  /** True when it existed. */
  async delete(domain: string, username: string): Promise<boolean> {
    const res = await this.db.query('DELETE FROM accounts WHERE domain = $1 AND username = $2', [domain, username]);
    const key = cacheKey(domain, username);
    this.cache.delete(key);
    this.missing.set(key, true);
    return res.rowCount > 0;
  }

  /** Replaces both HA1 digests (a password change); true when the account exists. */
  async setPasswordHashes(domain: string, username: string, hashes: PasswordHashes): Promise<boolean> {
    const res = await this.db.query('UPDATE accounts SET ha1_md5 = $3, ha1_sha256 = $4 WHERE domain = $1 AND username = $2', [
      domain,
      username,
      hex(hashes.ha1Md5),
      hex(hashes.ha1Sha256),
    ]);
    const key = cacheKey(domain, username);
    const cached = this.cache.get(key);
    this.missing.delete(key);
    if (res.rowCount > 0 && cached) this.cache.set(key, { ...cached, ha1Md5: hex(hashes.ha1Md5)!, ha1Sha256: hex(hashes.ha1Sha256)! });
    else this.cache.delete(key);
    return res.rowCount > 0;
  }
}

function cacheKey(domain: string, username: string): string {
  return `${domain}\u0000${username}`;
}

/** Digests are compared as lower-case hex; the table's CHECK refuses anything else. */
function hex(digest: string | undefined): string | null {
  return digest === undefined ? null : digest.toLowerCase();
}

function fromRow(r: AccountRow): AccountRecord {
  const displayName = opt(r.display_name);
  const ha1Md5 = opt(r.ha1_md5);
  const ha1Sha256 = opt(r.ha1_sha256);
  return {
    domain: r.domain,
    username: r.username,
    ...(displayName !== undefined ? { displayName } : {}),
    ...(ha1Md5 !== undefined ? { ha1Md5 } : {}),
    ...(ha1Sha256 !== undefined ? { ha1Sha256 } : {}),
    createdAtMs: toMs(r.created_at),
  };
}
