import { randomBytes } from 'node:crypto';
import { escapeAttribute, escapeText } from '../presence/pidf/xml-escape.js';
import { DATA_MODEL_NS, PIDF_NS, RPID_NS } from '../presence/pidf/namespaces.js';

/** The presence a PUA publishes: what a person sets in a client. */
export interface PresenceState {
  /** RFC 3863 §4.1.4: can the user be reached at all. */
  readonly basic: 'open' | 'closed';
  /** RFC 3863 §4.1.6: free text shown to watchers. */
  readonly note?: string;
  /** RFC 4480 §3 activities (`away`, `busy`, `meeting`, `on-the-phone`...); others go as `<rpid:other>`. */
  readonly activities?: readonly string[];
  /** A whole PIDF document to publish as it is, instead of one built from the fields above. */
  readonly pidf?: string;
}

/** RFC 4480 §3: the activity tokens with an element of their own. */
export const RPID_ACTIVITIES: ReadonlySet<string> = new Set([
  'appointment', 'away', 'breakfast', 'busy', 'dinner', 'holiday', 'in-transit', 'looking-for-work', 'meal', 'meeting',
  'on-the-phone', 'performance', 'permanent-absence', 'playing', 'presentation', 'shopping', 'sleeping', 'spectator',
  'steering', 'travel', 'tv', 'unknown', 'vacation', 'working', 'worship',
]);

/**
 * What the CLI's `--status` word means: `online`/`open`/`available` and `offline`/`closed`
 * set the basic status; an RPID activity (`away`, `busy`...) means open with that activity.
 */
export function stateFromStatus(status: string, note?: string): PresenceState {
  const s = status.trim().toLowerCase();
  const withNote = note !== undefined && note !== '' ? { note } : {};
  if (s === 'online' || s === 'open' || s === 'available') return { basic: 'open', ...withNote };
  if (s === 'offline' || s === 'closed' || s === 'invisible') return { basic: 'closed', ...withNote };
  return { basic: 'open', activities: [s], ...withNote };
}

/** Element ids are XML NCNames: start with a letter. */
function newId(prefix: string): string {
  return prefix + randomBytes(6).toString('hex');
}

/** Ids kept across publications of one PUA, so each modify replaces the same tuple and person (RFC 4479 §4). */
export interface PidfIds {
  readonly tuple: string;
  readonly person: string;
}

export function newPidfIds(): PidfIds {
  return { tuple: newId('t'), person: newId('p') };
}

/** Writes a PIDF document (RFC 3863) with the RFC 4479 person and RFC 4480 activities. */
export function buildPidf(entity: string, state: PresenceState, ids: PidfIds, now: Date = new Date()): string {
  if (state.pidf !== undefined) return state.pidf;
  const note = state.note !== undefined && state.note !== '' ? `<note>${escapeText(state.note)}</note>` : '';
  const activities = (state.activities ?? []).map((a) => (RPID_ACTIVITIES.has(a) ? `<rpid:${a}/>` : `<rpid:other>${escapeText(a)}</rpid:other>`)).join('');
  // RFC 4479 §3.2: activities describe the person, not the service.
  const person = activities ? `<dm:person id="${ids.person}"><rpid:activities>${activities}</rpid:activities></dm:person>` : '';
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<presence xmlns="${PIDF_NS}" xmlns:dm="${DATA_MODEL_NS}" xmlns:rpid="${RPID_NS}" entity="${escapeAttribute(entity)}">` +
    `<tuple id="${ids.tuple}"><status><basic>${state.basic}</basic></status>${note}<timestamp>${now.toISOString()}</timestamp></tuple>` +
    person +
    '</presence>\n'
  );
}
