import type { Database } from '../database.js';
import { PRESENCE_RULE_ACTIONS, type PresenceRuleRecord } from '../records.js';
import { oneOf } from '../sql-values.js';

interface RuleRow {
  presentity: string;
  watcher: string;
  action: string;
}

/** A presentity's rules about its watchers (durable: committed when a call resolves). */
export class PresenceRuleRepository {
  constructor(private readonly db: Database) {}

  /** The presentity's rules, in watcher order. */
  async listFor(presentity: string): Promise<PresenceRuleRecord[]> {
    const res = await this.db.query<RuleRow>('SELECT presentity, watcher, action FROM presence_rules WHERE presentity = $1 ORDER BY watcher', [presentity]);
    return res.rows.map((r) => ({ presentity: r.presentity, watcher: r.watcher, action: oneOf(r.action, PRESENCE_RULE_ACTIONS, 'presence rule action') }));
  }

  /** Creates or replaces the rule for (presentity, watcher). */
  async set(rule: PresenceRuleRecord): Promise<void> {
    await this.db.query(
      // The time is a parameter, not now(): the same SQL runs on SQLite.
      `INSERT INTO presence_rules (presentity, watcher, action, updated_at) VALUES ($1, $2, $3, $4)
       ON CONFLICT (presentity, watcher) DO UPDATE SET action = EXCLUDED.action, updated_at = EXCLUDED.updated_at`,
      [rule.presentity, rule.watcher, rule.action, new Date()],
    );
  }

  /** True when the rule existed. */
  async delete(presentity: string, watcher: string): Promise<boolean> {
    const res = await this.db.query('DELETE FROM presence_rules WHERE presentity = $1 AND watcher = $2', [presentity, watcher]);
    return res.rowCount > 0;
  }
}
