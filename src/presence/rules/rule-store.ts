import type { Queryable } from '../../store/database.js';
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

/**
 * The presence_rules table with its transformation columns (schemas/sql/002). Durable:
 * every call is committed when it resolves (DESIGN: State).
 */
export class PresenceRuleStore {
  constructor(private readonly db: Queryable) {}

  async listFor(presentity: string): Promise<PresenceRule[]> {
    const res = await this.db.query<RuleRow>(`SELECT ${COLUMNS} FROM presence_rules WHERE presentity = $1 ORDER BY watcher LIMIT $2`, [presentity, MAX_RULES_LISTED]);
    return res.rows.map(fromRow);
  }

  /** The rules of `presentity` that could match a watcher: its URI, its domain pattern, `*`. */
  async candidates(presentity: string, watchers: readonly string[]): Promise<PresenceRule[]> {
    const res = await this.db.query<RuleRow>(`SELECT ${COLUMNS} FROM presence_rules WHERE presentity = $1 AND watcher = ANY($2::text[])`, [presentity, [...watchers]]);
    return res.rows.map(fromRow);
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
      `INSERT INTO presence_rules (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (presentity, watcher) DO UPDATE SET action = EXCLUDED.action, hide_notes = EXCLUDED.hide_notes,
         hide_devices = EXCLUDED.hide_devices, basic_only = EXCLUDED.basic_only, updated_at = now()`,
      [rule.presentity, rule.watcher, rule.action, t.hideNotes, t.hideDevices, t.basicOnly],
    );
  }

  /** True when the rule existed. */
  async delete(presentity: string, watcher: string): Promise<boolean> {
    const res = await this.db.query('DELETE FROM presence_rules WHERE presentity = $1 AND watcher = $2', [presentity, watcher]);
    return res.rowCount > 0;
  }

  /** Every rule a presentity owns, and every rule about a watcher, go with its account. */
  async deleteUser(aor: string): Promise<number> {
    const res = await this.db.query('DELETE FROM presence_rules WHERE presentity = $1', [aor]);
    return res.rowCount;
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
