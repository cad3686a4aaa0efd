import { readXml, type XmlLimits } from '../pidf/read-xml.js';
import { escapeAttribute, escapeText, forReason } from '../pidf/xml-escape.js';
import { attributeValue, childElements, collapseWhitespace, textContent, type XmlElement } from '../pidf/xml-tree.js';

/** RFC 4575 §5: the conference information namespace and body type. */
export const CONFERENCE_INFO_NS = 'urn:ietf:params:xml:ns:conference-info';
export const CONFERENCE_INFO_CONTENT_TYPE = 'application/conference-info+xml';

/** RFC 4575 §5: an element's state in a notification. */
export type ElementState = 'full' | 'partial' | 'deleted';

/** One `<user>` (RFC 4575 §5): a member of the room. */
export interface ConferenceUser {
  readonly entity: string;
  readonly state: ElementState;
  readonly displayText?: string;
  /** RFC 4575 `<roles>` entries (ours: owner, participant). */
  readonly roles: readonly string[];
}

export interface ConferenceInfo {
  readonly entity: string;
  readonly version: number;
  readonly state: 'full' | 'partial';
  /** RFC 4575 `<subject>`: the room's topic. */
  readonly subject?: string;
  readonly users: readonly ConferenceUser[];
}

export type ParseConferenceInfoResult = { readonly ok: true; readonly document: ConferenceInfo } | { readonly ok: false; readonly reason: string };

/** Users one document may carry when read (a room has at most messaging.rooms.maxMembers). */
export const MAX_USERS_PER_DOCUMENT = 10_000;

/** One `<user>` element as we write it (also the key partial state is decided on). */
export function serializeUser(u: { entity: string; state?: 'full' | 'partial'; displayText?: string; roles: readonly string[] }): string {
  let s = `<user entity="${escapeAttribute(u.entity)}" state="${u.state ?? 'full'}">`;
  if (u.displayText !== undefined) s += `<display-text>${escapeText(u.displayText)}</display-text>`;
  if (u.roles.length > 0) s += `<roles>${u.roles.map((r) => `<entry>${escapeText(r)}</entry>`).join('')}</roles>`;
  return `${s}</user>`;
}

/** A user who left (RFC 4575: state="deleted" in a partial notification). */
export function deletedUser(entity: string): string {
  return `<user entity="${escapeAttribute(entity)}" state="deleted"/>`;
}

/**
 * A conference-info document (RFC 4575 §5): `entity` the room's URI, the topic as the
 * description's subject, and the `<user>` elements given (all of them in full state, the
 * changed ones in partial).
 */
export function buildConferenceInfo(entity: string, version: number, state: 'full' | 'partial', subject: string, users: Iterable<string>): Buffer {
  let s =
    `<?xml version="1.0" encoding="UTF-8"?>\n<conference-info xmlns="${CONFERENCE_INFO_NS}" entity="${escapeAttribute(entity)}" state="${state}" version="${version}">` +
    `<conference-description>${subject !== '' ? `<subject>${escapeText(subject)}</subject>` : ''}</conference-description>` +
    `<users state="${state}">`;
  for (const u of users) s += u;
  return Buffer.from(`${s}</users></conference-info>`);
}

class Refusal extends Error {
  constructor(readonly detail: string) {
    super(detail);
  }
}

const UNSIGNED = /^\s*\d{1,9}\s*$/;
const STATES: ReadonlySet<string> = new Set(['full', 'partial', 'deleted']);

/** Reads a conference-info document (the parts RFC 4575 §5 defines that we use); never throws. */
export function parseConferenceInfo(bytes: Buffer | string, limits?: XmlLimits): ParseConferenceInfoResult {
  try {
    const read = readXml(bytes, limits);
    if (!read.ok) return { ok: false, reason: `Invalid conference-info: ${read.reason}` };
    return { ok: true, document: readDocument(read.root) };
  } catch (e) {
    return { ok: false, reason: `Invalid conference-info: ${e instanceof Refusal ? e.detail : 'unreadable document'}` };
  }
}

function stateOf(el: XmlElement): ElementState {
  const v = attributeValue(el, 'state');
  if (v === undefined) return 'full';
  if (!STATES.has(v)) throw new Refusal(`bad state ${forReason(v)}`);
  return v as ElementState;
}

function readDocument(root: XmlElement): ConferenceInfo {
  if (root.ns !== CONFERENCE_INFO_NS || root.local !== 'conference-info') throw new Refusal('root element is not conference-info');
  const entity = collapseWhitespace(attributeValue(root, 'entity') ?? '');
  if (entity === '') throw new Refusal('missing entity');
  const version = attributeValue(root, 'version');
  if (version === undefined || !UNSIGNED.test(version)) throw new Refusal('bad version');
  const state = stateOf(root);
  if (state === 'deleted') throw new Refusal('a document is full or partial');
  const description = childElements(root, CONFERENCE_INFO_NS, 'conference-description')[0];
  const subjectEl = description ? childElements(description, CONFERENCE_INFO_NS, 'subject')[0] : undefined;
  const usersEl = childElements(root, CONFERENCE_INFO_NS, 'users');
  if (usersEl.length > 1) throw new Refusal('users twice');
  const userEls = usersEl[0] ? childElements(usersEl[0], CONFERENCE_INFO_NS, 'user') : [];
  if (userEls.length > MAX_USERS_PER_DOCUMENT) throw new Refusal('too many users');
  const seen = new Set<string>();
  const users = userEls.map((u) => {
    const user = readUser(u);
    if (seen.has(user.entity)) throw new Refusal(`user ${forReason(user.entity)} twice`);
    seen.add(user.entity);
    return user;
  });
  return { entity, version: Number(version), state: state as 'full' | 'partial', ...(subjectEl ? { subject: textContent(subjectEl) } : {}), users };
}

function readUser(u: XmlElement): ConferenceUser {
  const entity = collapseWhitespace(attributeValue(u, 'entity') ?? '');
  if (entity === '') throw new Refusal('user without entity');
  const displayEl = childElements(u, CONFERENCE_INFO_NS, 'display-text')[0];
  const rolesEl = childElements(u, CONFERENCE_INFO_NS, 'roles')[0];
  const roles = rolesEl ? childElements(rolesEl, CONFERENCE_INFO_NS, 'entry').map((e) => collapseWhitespace(textContent(e))) : [];
  return { entity, state: stateOf(u), ...(displayEl ? { displayText: textContent(displayEl) } : {}), roles };
}
