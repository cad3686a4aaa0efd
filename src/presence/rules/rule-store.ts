import type { Queryable } from '../../store/database.js';
import { BoundedCache } from '../../util/bounded-cache.js';
import { RULE_ACTIONS, type PresenceRule, type RuleAction } from './rule-types.js';

interface RuleRow {
  presentity: string;
  watcher: string;
  action: string;
  hide_notes: boolean;
  hide_devices: boolean;
  basic_only: boolean;
}

const COLUMNS = 'presentity, watcher, action, hide_notes, hide_devices, basic_only';

/** At most this many rules listed for one presentity. */
const MAX_RULES_LISTED = 10_000;

/** Presentities whose rules are kept in memory. */
const CACHED_PRESENTITIES = 200_000;

/** Start-up loads every rule when there are no more than this many. */
const PRELOAD_MAX_RULES = 1_000_000;

/**
 * The presence_rules table with its transformation columns (schemas/sql/002). Durable:
 * every call is committed when it resolves (DESIGN: State).
 */
export class PresenceRuleStore {
  /**
   * Read-through cache of each presentity's rules: a SUBSCRIBE is decided from memory, and
   * goes on being decided while the database is unreachable. Every write of this process
   * goes through here, so it stays true.
   */
  private readonly cache = new BoundedCache<string, readonly PresenceRule[]>(CACHED_PRESENTITIES);
  /** Every rule is in the cache: a presentity not in it has none. */
  private complete = false;

  constructor(private readonly db: Queryable) {}

  /** Loads every rule when they fit in the cache, so no decision needs the database. */
  async preload(): Promise<void> {
    const res = await this.db.query<RuleRow>(`SELECT ${COLUMNS} FROM presence_rules ORDER BY presentity LIMIT $1`, [PRELOAD_MAX_RULES + 1]);
    if (res.rows.length > PRELOAD_MAX_RULES) return;
    const by = new Map<string, PresenceRule[]>();
    for (const r of res.rows) {
      const list = by.get(r.presentity) ?? [];
      list.push(fromRow(r));
      by.set(r.presentity, list);
    }
    if (by.size >= CACHED_PRESENTITIES) return;
    for (const [presentity, list] of by) this.cache.set(presentity, list);
    this.complete = true;
  }

  /** The presentity's rules, from memory when it can. */
  private async rulesOf(presentity: string): Promise<readonly PresenceRule[]> {
    const cached = this.cache.get(presentity);
    if (cached) return cached;
    if (this.complete) return [];
    const since = this.cache.writes;
    const res = await this.db.query<RuleRow>(`SELECT ${COLUMNS} FROM presence_rules WHERE presentity = $1 LIMIT $2`, [presentity, MAX_RULES_LISTED]);
    const rules = res.rows.map(fromRow);
    // A rule written while this read was on its way is newer than what it found.
    if (this.cache.writes === since) this.remember(presentity, rules);
    return rules;
  }

  private remember(presentity: string, rules: readonly PresenceRule[]): void {
    // An eviction would make "not cached" mean "not known" again.
    if (!this.cache.has(presentity) && this.cache.size >= CACHED_PRESENTITIES) this.complete = false;
    this.cache.set(presentity, rules);
  }

  /** After a committed write: the cached list, changed the same way (or forgotten). */
  private changed(presentity: string, update: (rules: readonly PresenceRule[]) => readonly PresenceRule[]): void {
    const cached = this.cache.get(presentity);
    if (cached) this.remember(presentity, update(cached));
    else if (this.complete) this.remember(presentity, update([]));
    // Not cached: nothing to change, but a read already on its way must not cache what it finds.
    else this.cache.delete(presentity);
  }

  /**
   * Another server changed the presentity's rules (a cluster's invalidation): they are read
   * again from the database, so decisions here follow at once.
   */
  async reload(presentity: string): Promise<void> {
    // The old list stays until the new one is read (a database out of reach keeps it).
    const since = this.cache.writes;
    const res = await this.db.query<RuleRow>(`SELECT ${COLUMNS} FROM presence_rules WHERE presentity = $1 LIMIT $2`, [presentity, MAX_RULES_LISTED]);
    if (this.cache.writes === since) this.remember(presentity, res.rows.map(fromRow));
  }

  /** Another server changed rules of many presentities (an account deleted): every rule is read again. */
  async reloadAll(): Promise<void> {
    this.complete = false;
    this.cache.clear();
    await this.preload();
  }

  async listFor(presentity: string): Promise<PresenceRule[]> {
    const res = await this.db.query<RuleRow>(`SELECT ${COLUMNS} FROM presence_rules WHERE presentity = $1 ORDER BY watcher LIMIT $2`, [presentity, MAX_RULES_LISTED]);
    return res.rows.map(fromRow);
  }

  /** The rules of `presentity` that could match a watcher: its URI, its domain pattern, `*`. */
  async candidates(presentity: string, watchers: readonly string[]): Promise<PresenceRule[]> {
    return (await this.rulesOf(presentity)).filter((r) => watchers.includes(r.watcher));
  }

  /** Presentities with at least one rule that transforms what a watcher sees. */
  async presentitiesWithTransformations(): Promise<Set<string>> {
    const res = await this.db.query<{ presentity: string }>('SELECT DISTINCT presentity FROM presence_rules WHERE hide_notes OR hide_devices OR basic_only');
    return new Set(res.rows.map((r) => r.presentity));
  }

  /** Creates or replaces the rule for (presentity, watcher). */
  async set(rule: PresenceRule): Promise<void> {
    const t = rule.transformations;
    await this.db.query(
      // The time is a parameter, not now(): the same SQL runs on SQLite.
      `INSERT INTO presence_rules (${COLUMNS}, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (presentity, watcher) DO UPDATE SET action = EXCLUDED.action, hide_notes = EXCLUDED.hide_notes,
         hide_devices = EXCLUDED.hide_devices, basic_only = EXCLUDED.basic_only, updated_at = EXCLUDED.updated_at`,
      [rule.presentity, rule.watcher, rule.action, t.hideNotes, t.hideDevices, t.basicOnly, new Date()],
    );
    this.changed(rule.presentity, (rules) => [...rules.filter((r) => r.watcher !== rule.watcher), rule]);
  }

  /** True when the rule existed. */
  async delete(presentity: string, watcher: string): Promise<boolean> {
    const res = await this.db.query('DELETE FROM presence_rules WHERE presentity = $1 AND watcher = $2', [presentity, watcher]);
    this.changed(presentity, (rules) => rules.filter((r) => r.watcher !== watcher));
    return res.rowCount > 0;
  }

  /** Every rule a presentity owns, and every rule other presentities have about it as a watcher, go with its account. */
  async deleteUser(aor: string): Promise<number> {
    const res = await this.db.query<{ presentity: string }>('DELETE FROM presence_rules WHERE presentity = $1 OR watcher = $1 RETURNING presentity', [aor]);
    this.changed(aor, () => []);
    for (const presentity of new Set(res.rows.map((r) => r.presentity))) {
      if (presentity !== aor) this.changed(presentity, (rules) => rules.filter((r) => r.watcher !== aor));
    }
    return res.rows.length;
  }
}

function fromRow(r: RuleRow): PresenceRule {
  const action = (RULE_ACTIONS as readonly string[]).includes(r.action) ? (r.action as RuleAction) : 'confirm';
  return {
    presentity: r.presentity,
    watcher: r.watcher,
    action,
    transformations: { hideNotes: r.hide_notes, hideDevices: r.hide_devices, basicOnly: r.basic_only },
  };
}
