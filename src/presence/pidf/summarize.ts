import type { BasicStatus, Note, PresenceDocument } from './presence-document.js';

/** What a watch list or a web page shows of a presentity. */
export interface PresenceSummary {
  /** `open` when any service is open (RFC 3863 §4.1.4), `closed` when all that say are closed. */
  readonly basic: BasicStatus | undefined;
  /** The note to show, if any. */
  readonly note?: string;
  /** RFC 4480 §3 activities of the person, in order, each once. */
  readonly activities: readonly string[];
}

/**
 * Boils a (composed) document down to what a client displays. The note is the first of:
 * the presentity's own notes (RFC 3863 §4.1.6), the person's (RFC 4479 §3.2), those of
 * the open services, those of the other services; within each, one in `preferredLang`
 * (RFC 4646 prefix match) when there is one.
 */
export function summarizePresence(doc: PresenceDocument, preferredLang?: string): PresenceSummary {
  let basic: BasicStatus | undefined;
  for (const t of doc.tuples) {
    if (t.basic === 'open') {
      basic = 'open';
      break;
    }
    if (t.basic === 'closed') basic = 'closed';
  }
  const activities: string[] = [];
  const seen = new Set<string>();
  for (const p of doc.persons) {
    for (const a of p.activities) {
      if (!seen.has(a)) {
        seen.add(a);
        activities.push(a);
      }
    }
  }
  const tiers: Array<readonly Note[]> = [
    doc.notes,
    doc.persons.flatMap((p) => p.notes),
    doc.tuples.filter((t) => t.basic === 'open').flatMap((t) => t.notes),
    doc.tuples.filter((t) => t.basic !== 'open').flatMap((t) => t.notes),
  ];
  let note: string | undefined;
  for (const tier of tiers) {
    if (tier.length === 0) continue;
    note = (preferredLang !== undefined ? tier.find((n) => langMatches(n.lang, preferredLang)) : undefined)?.text ?? tier[0]!.text;
    break;
  }
  return note !== undefined ? { basic, note, activities } : { basic, activities };
}

/** RFC 4647 §3.3.1 basic filtering: `en` matches `en` and `en-GB`, case-insensitively. */
function langMatches(lang: string | undefined, wanted: string): boolean {
  if (lang === undefined) return false;
  const l = lang.toLowerCase();
  const w = wanted.toLowerCase();
  return l === w || l.startsWith(`${w}-`);
}
