import type { RuleInfo, RuleInput } from '../../control/operations.js';
import { ANY_WATCHER } from '../../presence/rules/rule-matching.js';
import { NO_TRANSFORMATIONS, RULE_ACTIONS, type RuleAction, type Transformations } from '../../presence/rules/rule-types.js';
import { attributeValue, elementChildren, textContent, type XmlElement } from '../../presence/pidf/xml-tree.js';
import { escapeAttribute, escapeText } from '../../presence/pidf/xml-escape.js';
import type { XcapDocumentRepository } from '../../store/repositories/xcap-documents.js';
import type { ApplicationUsage, DocumentRef, DocumentSource } from '../application-usage.js';
import { requireUnique } from '../uniqueness.js';
import { XcapConflict } from '../xcap-error.js';
import { readXml } from '../../presence/pidf/read-xml.js';

/** RFC 4745 common policy, RFC 5025 presence authorization rules, OMA's common-policy extensions. */
export const COMMON_POLICY_NS = 'urn:ietf:params:xml:ns:common-policy';
export const PRES_RULES_NS = 'urn:ietf:params:xml:ns:pres-rules';
export const OMA_COMMON_POLICY_NS = 'urn:oma:xml:xdm:common-policy';
/** RFC 5025 §9.1 (and OMA's variant): the MIME type of a rule set. */
export const AUTH_POLICY_TYPE = 'application/auth-policy+xml';
export const PRES_RULES_AUID = 'pres-rules';
export const OMA_PRES_RULES_AUID = 'org.openmobilealliance.pres-rules';

/** The rules of one user, as the presence service keeps and evaluates them (src/control/operations.ts). */
export interface RuleBackend {
  list(presentity: string): Promise<readonly RuleInfo[]>;
  set(rule: RuleInput): Promise<unknown>;
  delete(presentity: string, watcher: string): Promise<unknown>;
}

/** A watcher and what the rule set says about it: the presence service's rule, without the presentity. */
export interface WatcherRule {
  readonly watcher: string;
  readonly action: RuleAction;
  readonly transformations: Transformations;
}

/** Bounds of one document: each watcher named is a stored rule and a re-decision of live subscriptions. */
export const MAX_RULES_PER_DOCUMENT = 1000;
export const MAX_WATCHERS_PER_DOCUMENT = 1000;

const DOMAIN_RE = /^[A-Za-z0-9.-]{1,253}$/;
const USER_RE = /^[A-Za-z0-9][A-Za-z0-9._~+-]{0,63}$/;

/** RFC 5025 §3.2.1: the sub-handling values from least to most permissive (RFC 4745 §10.2 combining). */
const PERMISSIVENESS: Readonly<Record<RuleAction, number>> = { block: 0, confirm: 10, 'polite-block': 20, allow: 30 };

/** RFC 5025 §3.2.4 attribute transformations besides the note (all of them: `provide-all-attributes`). */
const ATTRIBUTE_ELEMENTS = [
  'provide-activities',
  'provide-class',
  'provide-deviceID',
  'provide-mood',
  'provide-place-is',
  'provide-place-type',
  'provide-privacy',
  'provide-relationship',
  'provide-status-icon',
  'provide-sphere',
  'provide-time-offset',
  'provide-user-input',
];

function refuse(kind: 'schema-validation-error' | 'constraint-failure', phrase: string): never {
  throw new XcapConflict({ kind, phrase });
}

function cpChildren(el: XmlElement, local: string): XmlElement[] {
  return elementChildren(el).filter((c) => c.ns === COMMON_POLICY_NS && c.local === local);
}

/** A watcher URI as the rules keep it (the same canonical form as src/control/operations.ts). */
export function canonicalWatcher(id: string): string {
  const bare = id.trim().replace(/^sips?:/i, '');
  const at = bare.lastIndexOf('@');
  const user = bare.slice(0, at);
  const host = bare.slice(at + 1).toLowerCase();
  if (at <= 0 || !USER_RE.test(user) || !DOMAIN_RE.test(host)) refuse('constraint-failure', `identity "${id.slice(0, 80)}" is not a sip:user@domain URI`);
  return `sip:${user}@${host}`;
}

interface Entry {
  readonly watcher: string;
  /** Watchers or domains (`*@d`) a <many> leaves out: each must have a rule of its own. */
  readonly excepts: readonly string[];
}

/**
 * RFC 5025 / RFC 4745 rule set to the presence service's rules (docs/xcap.md "pres-rules"):
 *
 * - `<one id>` is that watcher, `<many domain>` is `*@domain`, `<many/>`, OMA's
 *   `<other-identity/>` and a rule without conditions are `*` (everyone else);
 * - `<except>` inside `<many>` is accepted when the excepted watcher or domain has a rule of
 *   its own (our most-specific-wins reading is then the RFC's combination);
 * - `<sub-handling>` is the action (absent: block, the least permissive);
 * - transformations map onto ours: devices hidden without `<provide-devices>`, notes hidden
 *   without `<provide-note>` or `<provide-all-attributes>`, basic status only when neither
 *   persons, devices nor any attribute is provided (an allow rule with no transformations:
 *   RFC 5025 §3.2.2 gives nothing by default, basic status is the least we show);
 * - a watcher in several rules gets the RFC 4745 §10.2 combination: the most permissive
 *   sub-handling, and whatever any of them provides.
 *
 * - OMA's `<external-list>` is every entry of the resource lists it names (resolved by the
 *   caller: `externalAnchors`, then the members passed in `lists`).
 *
 * Conditions we cannot evaluate (sphere, validity, anonymous requests) are refused with
 * constraint-failure rather than stored and ignored.
 */
export function rulesOfDocument(root: XmlElement, lists: ReadonlyMap<string, readonly string[]> = NO_LISTS): WatcherRule[] {
  if (root.ns !== COMMON_POLICY_NS || root.local !== 'ruleset') refuse('schema-validation-error', 'the root element must be <ruleset> of urn:ietf:params:xml:ns:common-policy');
  const byWatcher = new Map<string, WatcherRule>();
  const allExcepts: string[] = [];
  const ruleElements = elementChildren(root);
  if (ruleElements.length > MAX_RULES_PER_DOCUMENT) refuse('constraint-failure', `more than ${MAX_RULES_PER_DOCUMENT} rules`);
  // RFC 4745 §7: rule ids are unique in the rule set.
  requireUnique(ruleElements, (r) => attributeValue(r, 'id'), (i) => `/cp:ruleset/cp:rule[${i + 1}]/@id`);
  ruleElements.forEach((rule, i) => {
    if (rule.ns !== COMMON_POLICY_NS || rule.local !== 'rule') refuse('schema-validation-error', `<${rule.local}> is not allowed in <ruleset>`);
    const id = attributeValue(rule, 'id');
    if (id === undefined || !/^[A-Za-z_][A-Za-z0-9._-]*$/.test(id)) refuse('schema-validation-error', `rule ${i + 1} needs an id (xs:ID)`);
    for (const c of elementChildren(rule)) {
      if (c.ns !== COMMON_POLICY_NS || !['conditions', 'actions', 'transformations'].includes(c.local)) refuse('schema-validation-error', `<${c.local}> is not allowed in <rule>`);
    }
    const [conditions] = cpChildren(rule, 'conditions');
    const entries = conditions ? conditionEntries(conditions, lists) : [{ watcher: ANY_WATCHER, excepts: [] }];
    const action = actionOf(cpChildren(rule, 'actions')[0]);
    const t = transformationsOf(cpChildren(rule, 'transformations')[0], action);
    for (const e of entries) {
      allExcepts.push(...e.excepts);
      const before = byWatcher.get(e.watcher);
      byWatcher.set(e.watcher, before ? combine(before, action, t) : { watcher: e.watcher, action, transformations: t });
    }
  });
  if (byWatcher.size > MAX_WATCHERS_PER_DOCUMENT) refuse('constraint-failure', `more than ${MAX_WATCHERS_PER_DOCUMENT} watchers named`);
  for (const x of allExcepts) {
    if (!byWatcher.has(x)) refuse('constraint-failure', `<except> ${x} needs a rule of its own (our rules: the most specific one decides)`);
  }
  return [...byWatcher.values()].sort((a, b) => (a.watcher < b.watcher ? -1 : a.watcher > b.watcher ? 1 : 0));
}

function conditionEntries(conditions: XmlElement, lists: ReadonlyMap<string, readonly string[]>): Entry[] {
  const children = elementChildren(conditions);
  if (children.length === 0) return [{ watcher: ANY_WATCHER, excepts: [] }];
  const out: Entry[] = [];
  for (const c of children) {
    if (c.ns === OMA_COMMON_POLICY_NS && c.local === 'other-identity') {
      out.push({ watcher: ANY_WATCHER, excepts: [] });
      continue;
    }
    if (c.ns === OMA_COMMON_POLICY_NS && c.local === 'external-list') {
      // OMA: every entry of each referenced resource list (resolved before, see externalAnchors).
      for (const anc of anchorsOf(c)) {
        const members = lists.get(anc);
        if (!members) refuse('constraint-failure', `external list ${anc.slice(0, 200)} is not a resource list of this user`);
        for (const m of members) out.push({ watcher: canonicalWatcher(m), excepts: [] });
      }
      continue;
    }
    if (c.ns !== COMMON_POLICY_NS || c.local !== 'identity') {
      refuse('constraint-failure', `condition <${c.local}> is not supported (identity and other-identity are)`);
    }
    const ids = elementChildren(c);
    if (ids.length === 0) refuse('schema-validation-error', '<identity> needs <one> or <many>');
    for (const x of ids) {
      if (x.ns === COMMON_POLICY_NS && x.local === 'one') {
        const id = attributeValue(x, 'id');
        if (id === undefined) refuse('schema-validation-error', '<one> needs an id');
        out.push({ watcher: canonicalWatcher(id), excepts: [] });
      } else if (x.ns === COMMON_POLICY_NS && x.local === 'many') {
        const domain = attributeValue(x, 'domain')?.toLowerCase();
        if (domain !== undefined && !DOMAIN_RE.test(domain)) refuse('schema-validation-error', `bad domain "${domain.slice(0, 80)}"`);
        const excepts: string[] = [];
        for (const e of elementChildren(x)) {
          if (e.ns !== COMMON_POLICY_NS || e.local !== 'except') refuse('schema-validation-error', `<${e.local}> is not allowed in <many>`);
          const eid = attributeValue(e, 'id');
          const edomain = attributeValue(e, 'domain');
          if (eid !== undefined) excepts.push(canonicalWatcher(eid));
          else if (edomain !== undefined && DOMAIN_RE.test(edomain)) excepts.push(`*@${edomain.toLowerCase()}`);
          else refuse('schema-validation-error', '<except> needs an id or a domain');
        }
        out.push({ watcher: domain === undefined ? ANY_WATCHER : `*@${domain}`, excepts });
      } else refuse('schema-validation-error', `<${x.local}> is not allowed in <identity>`);
    }
  }
  return out;
}

const NO_LISTS: ReadonlyMap<string, readonly string[]> = new Map();

function anchorsOf(externalList: XmlElement): string[] {
  const out: string[] = [];
  for (const e of elementChildren(externalList)) {
    if (e.ns !== OMA_COMMON_POLICY_NS || e.local !== 'entry') refuse('schema-validation-error', `<${e.local}> is not allowed in <external-list>`);
    const anc = attributeValue(e, 'anc');
    if (anc === undefined || anc.length === 0) refuse('schema-validation-error', '<entry> of <external-list> needs an anc');
    out.push(anc);
  }
  return out;
}

/** The resource list URIs (OMA `<external-list><entry anc>`) a rule set refers to, to resolve before reading it. */
export function externalAnchors(root: XmlElement): string[] {
  const out = new Set<string>();
  for (const rule of elementChildren(root)) {
    for (const conditions of cpChildren(rule, 'conditions')) {
      for (const c of elementChildren(conditions)) if (c.ns === OMA_COMMON_POLICY_NS && c.local === 'external-list') for (const a of anchorsOf(c)) out.add(a);
    }
  }
  return [...out];
}

/** External lists a rule set may refer to, at most. */
const MAX_EXTERNAL_LISTS = 32;

function actionOf(actions: XmlElement | undefined): RuleAction {
  if (!actions) return 'block';
  let action: RuleAction = 'block';
  let seen = false;
  for (const a of elementChildren(actions)) {
    if (a.ns !== PRES_RULES_NS || a.local !== 'sub-handling') continue; // other actions: other usages' business
    if (seen) refuse('schema-validation-error', 'one <sub-handling> per rule');
    seen = true;
    const v = textContent(a).trim();
    if (!(RULE_ACTIONS as readonly string[]).includes(v)) refuse('schema-validation-error', `sub-handling "${v.slice(0, 40)}" is not block, confirm, polite-block or allow`);
    action = v as RuleAction;
  }
  return action;
}

function transformationsOf(t: XmlElement | undefined, action: RuleAction): Transformations {
  if (!t) return action === 'allow' ? { hideNotes: true, hideDevices: true, basicOnly: true } : NO_TRANSFORMATIONS;
  const names = new Set(elementChildren(t).filter((c) => c.ns === PRES_RULES_NS).map((c) => c.local));
  const devices = names.has('provide-devices');
  const persons = names.has('provide-persons');
  const allAttributes = names.has('provide-all-attributes');
  const anyAttribute = allAttributes || [...names].some((n) => n !== 'provide-services' && n !== 'provide-persons' && n !== 'provide-devices');
  if (!devices && !persons && !anyAttribute) return { hideNotes: true, hideDevices: true, basicOnly: true };
  return { hideNotes: !(allAttributes || names.has('provide-note')), hideDevices: !devices, basicOnly: false };
}

function combine(a: WatcherRule, action: RuleAction, t: Transformations): WatcherRule {
  const more = PERMISSIVENESS[action] > PERMISSIVENESS[a.action] ? action : a.action;
  const x = a.transformations;
  return {
    watcher: a.watcher,
    action: more,
    transformations: { hideNotes: x.hideNotes && t.hideNotes, hideDevices: x.hideDevices && t.hideDevices, basicOnly: x.basicOnly && t.basicOnly },
  };
}

function sameRules(a: readonly WatcherRule[], b: readonly WatcherRule[]): boolean {
  if (a.length !== b.length) return false;
  const key = (r: WatcherRule) => `${r.watcher} ${r.action} ${+r.transformations.hideNotes}${+r.transformations.hideDevices}${+r.transformations.basicOnly}`;
  const x = a.map(key).sort();
  const y = b.map(key).sort();
  return x.every((k, i) => k === y[i]);
}

/** The rule set document of `rules` (docs/xcap.md): one `<rule>` per action and transformation set. */
export function renderRules(rules: readonly WatcherRule[], oma: boolean): string {
  const groups = new Map<string, WatcherRule[]>();
  for (const r of rules) {
    const t = r.transformations;
    const k = `${r.action}${t.basicOnly ? '-basic' : `${t.hideNotes ? '-nonotes' : ''}${t.hideDevices ? '-nodevices' : ''}`}${r.watcher === ANY_WATCHER ? '-default' : ''}`;
    const g = groups.get(k) ?? [];
    g.push(r);
    groups.set(k, g);
  }
  const specific = rules.filter((r) => r.watcher.startsWith('sip')).map((r) => r.watcher);
  const domains = rules.filter((r) => r.watcher.startsWith('*@')).map((r) => r.watcher);
  const out: string[] = ['<?xml version="1.0" encoding="UTF-8"?>\n'];
  out.push(`<cp:ruleset xmlns:cp="${COMMON_POLICY_NS}" xmlns:pr="${PRES_RULES_NS}"${oma ? ` xmlns:ocp="${OMA_COMMON_POLICY_NS}"` : ''}>\n`);
  for (const [id, members] of [...groups].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const first = members[0]!;
    out.push(`  <cp:rule id="${escapeAttribute(id)}">\n    <cp:conditions>\n`);
    if (first.watcher === ANY_WATCHER) {
      if (oma) out.push('      <ocp:other-identity/>\n');
      else {
        const ex = [...specific.map((w) => `<cp:except id="${escapeAttribute(w)}"/>`), ...domains.map((d) => `<cp:except domain="${escapeAttribute(d.slice(2))}"/>`)];
        out.push(`      <cp:identity>${ex.length ? `<cp:many>${ex.join('')}</cp:many>` : '<cp:many/>'}</cp:identity>\n`);
      }
    } else {
      out.push('      <cp:identity>');
      for (const m of members) {
        if (m.watcher.startsWith('*@')) {
          const d = m.watcher.slice(2);
          const ex = specific.filter((w) => w.endsWith(`@${d}`)).map((w) => `<cp:except id="${escapeAttribute(w)}"/>`);
          out.push(ex.length ? `<cp:many domain="${escapeAttribute(d)}">${ex.join('')}</cp:many>` : `<cp:many domain="${escapeAttribute(d)}"/>`);
        } else out.push(`<cp:one id="${escapeAttribute(m.watcher)}"/>`);
      }
      out.push('</cp:identity>\n');
    }
    out.push(`    </cp:conditions>\n    <cp:actions><pr:sub-handling>${escapeText(first.action)}</pr:sub-handling></cp:actions>\n`);
    out.push(`    <cp:transformations>${transformationsXml(first)}</cp:transformations>\n  </cp:rule>\n`);
  }
  out.push('</cp:ruleset>\n');
  return out.join('');
}

function transformationsXml(r: WatcherRule): string {
  const t = r.transformations;
  if (r.action !== 'allow' && t.basicOnly === false && t.hideDevices === false && t.hideNotes === false) {
    return full(false, false);
  }
  if (t.basicOnly) return '<pr:provide-services><pr:all-services/></pr:provide-services>';
  return full(t.hideNotes, t.hideDevices);
}

function full(hideNotes: boolean, hideDevices: boolean): string {
  const parts = ['<pr:provide-services><pr:all-services/></pr:provide-services>', '<pr:provide-persons><pr:all-persons/></pr:provide-persons>'];
  if (!hideDevices) parts.push('<pr:provide-devices><pr:all-devices/></pr:provide-devices>');
  if (hideNotes) parts.push(...ATTRIBUTE_ELEMENTS.map((n) => `<pr:${n}>true</pr:${n}>`));
  else parts.push('<pr:provide-all-attributes/>');
  return parts.join('');
}

/**
 * The pres-rules usages (RFC 5025 and OMA's): ONE source of truth, the presence service's
 * rules. A GET renders them (or gives back the client's own last document, byte for byte,
 * while it still says exactly what the rules say); a PUT is read into rules and applied
 * through the same operations as the CLI, admin API and /api/me, so live subscriptions
 * follow at once (pending watchers activated or refused, transformations applied).
 */
export interface PresRulesUsage extends ApplicationUsage {
  /** A resource list of `owner` changed: rules whose external lists refer to it are applied again. */
  listsChanged(owner: string): Promise<void>;
}

export function presRulesUsage(options: {
  readonly oma: boolean;
  readonly rules: () => RuleBackend | undefined;
  readonly documents: () => XcapDocumentRepository | undefined;
  /** The entry URIs of the resource list `anc` names, when it is a list of `owner`'s (OMA external-list). */
  readonly resolveList?: (owner: string, anc: string) => Promise<readonly string[] | undefined>;
}): PresRulesUsage {
  const auid = options.oma ? OMA_PRES_RULES_AUID : PRES_RULES_AUID;
  const backend = (): RuleBackend => {
    const b = options.rules();
    if (!b) throw new XcapConflict({ kind: 'constraint-failure', phrase: 'rules are not available: the store is not open' });
    return b;
  };
  /** The document's rules, its external lists resolved first. */
  const rulesOf = async (owner: string, root: XmlElement): Promise<WatcherRule[]> => {
    const anchors = externalAnchors(root);
    if (anchors.length > MAX_EXTERNAL_LISTS) refuse('constraint-failure', `more than ${MAX_EXTERNAL_LISTS} external lists`);
    const lists = new Map<string, readonly string[]>();
    for (const anc of anchors) {
      const members = await options.resolveList?.(owner, anc);
      if (members) lists.set(anc, members);
    }
    return rulesOfDocument(root, lists);
  };
  const apply = async (owner: string, wanted: readonly WatcherRule[]): Promise<void> => {
    const have = await current(owner);
    const b = backend();
    for (const r of wanted) {
      const old = have.find((h) => h.watcher === r.watcher);
      if (old && sameRules([old], [r])) continue;
      await b.set({ presentity: owner, watcher: r.watcher, action: r.action, transformations: r.transformations });
    }
    for (const h of have) if (!wanted.some((r) => r.watcher === h.watcher)) await b.delete(owner, h.watcher);
  };
  const current = async (owner: string): Promise<WatcherRule[]> =>
    (await backend().list(owner)).map((r) => ({ watcher: r.watcher, action: r.action, transformations: r.transformations }));
  const source: DocumentSource = {
    paths: () => [options.oma ? 'pres-rules' : 'index'],
    async read(doc: DocumentRef) {
      const rules = await current(doc.owner);
      const stored = await options.documents()?.get(auid, doc.owner, doc.path);
      if (stored) {
        const parsed = readXml(stored.content, { maxBytes: 1 << 24, maxDepth: 64 });
        if (parsed.ok) {
          try {
            if (sameRules(await rulesOf(doc.owner, parsed.root), rules)) return Buffer.from(stored.content, 'utf8');
          } catch {
            // a stored copy that no longer reads: rendered from the rules below
          }
        }
      }
      // No rule and no document of the user's: there is nothing to GET (404), so If-None-Match: * works.
      if (rules.length === 0 && !stored) return undefined;
      return Buffer.from(renderRules(rules, options.oma), 'utf8');
    },
    async write(doc, bytes, root) {
      await apply(doc.owner, await rulesOf(doc.owner, root));
      await options.documents()?.put({ auid, owner: doc.owner, path: doc.path, content: bytes.toString('utf8'), etag: '' });
    },
    async remove(doc) {
      const b = backend();
      const have = await current(doc.owner);
      for (const h of have) await b.delete(doc.owner, h.watcher);
      await options.documents()?.delete(auid, doc.owner, doc.path);
      return have.length > 0;
    },
  };
  return {
    auid,
    mimeType: AUTH_POLICY_TYPE,
    // Unprefixed names in node selectors: pres-rules names for the IETF usage (RFC 5025),
    // common-policy names for OMA's (as OMA clients write them).
    defaultNamespace: options.oma ? COMMON_POLICY_NS : PRES_RULES_NS,
    namespaces: options.oma ? [COMMON_POLICY_NS, PRES_RULES_NS, OMA_COMMON_POLICY_NS] : [COMMON_POLICY_NS, PRES_RULES_NS],
    writable: true,
    // RFC 5025's naming convention is the document "index"; OMA clients (Blink) use "pres-rules". Both are the one rule set.
    acceptsPath: (scope, path) => scope === 'users' && path.length === 1 && (path[0] === 'index' || path[0] === 'pres-rules'),
    validate: async (root, doc) => {
      await rulesOf(doc.owner, root);
    },
    source,
    async listsChanged(owner) {
      // The client's own document, when it refers to lists: its rules follow the lists' members.
      for (const path of ['index', 'pres-rules']) {
        const stored = await options.documents()?.get(auid, owner, path);
        if (!stored) continue;
        const parsed = readXml(stored.content, { maxBytes: 1 << 24, maxDepth: 64 });
        if (!parsed.ok || externalAnchors(parsed.root).length === 0) continue;
        try {
          await apply(owner, await rulesOf(owner, parsed.root));
        } catch (err) {
          // A list gone from under the rules: they stay as they were; a GET shows them rendered.
          if (!(err instanceof XcapConflict)) throw err;
        }
      }
    },
  };
}

