import { readXml, type XmlLimits } from '../pidf/read-xml.js';
import { escapeAttribute, escapeText, forReason } from '../pidf/xml-escape.js';
import { attributeValue, childElements, collapseWhitespace, textContent, type XmlElement } from '../pidf/xml-tree.js';

/** RFC 4235 §4: the dialog information namespace and body type. */
export const DIALOG_INFO_NS = 'urn:ietf:params:xml:ns:dialog-info';
export const DIALOG_INFO_CONTENT_TYPE = 'application/dialog-info+xml';

/** RFC 4235 §3.7.1: the states of the dialog FSM. */
export type DialogState = 'trying' | 'proceeding' | 'early' | 'confirmed' | 'terminated';
const STATES: ReadonlySet<string> = new Set(['trying', 'proceeding', 'early', 'confirmed', 'terminated']);
/** RFC 4235 §4.1.2: why a dialog moved (the `event` attribute of `<state>`). */
const STATE_EVENTS: ReadonlySet<string> = new Set(['cancelled', 'rejected', 'replaced', 'local-bye', 'remote-bye', 'error', 'timeout']);

/** RFC 4235 §4.1.6: one side of a dialog (identity and target URI). */
export interface DialogParticipant {
  readonly identity?: string;
  readonly display?: string;
  readonly target?: string;
}

/**
 * One `<dialog>` (RFC 4235 §4.1.1): what we keep of it. Elements we do not model
 * (route-set, session-description, replaces, referred-by, extensions) are left out when
 * it is written again: a hostile publisher's XML never reaches a watcher as it came.
 */
export interface DialogEntry {
  readonly id: string;
  readonly callId?: string;
  readonly localTag?: string;
  readonly remoteTag?: string;
  readonly direction?: 'initiator' | 'recipient';
  readonly state: DialogState;
  readonly stateEvent?: string;
  readonly stateCode?: number;
  readonly duration?: number;
  readonly local?: DialogParticipant;
  readonly remote?: DialogParticipant;
}

export interface DialogInfo {
  readonly entity: string;
  readonly version: number;
  readonly state: 'full' | 'partial';
  readonly dialogs: readonly DialogEntry[];
}

export type ParseDialogInfoResult = { readonly ok: true; readonly document: DialogInfo } | { readonly ok: false; readonly reason: string };

/** Dialogs one document may carry (a phone has a handful; a PBX publishes per extension). */
export const MAX_DIALOGS_PER_DOCUMENT = 64;

class Refusal extends Error {
  constructor(readonly detail: string) {
    super(detail);
  }
}

const UNSIGNED = /^\s*\d{1,9}\s*$/;

/** Reads a dialog-info document (RFC 4235 §4 schema rules we rely on); never throws. */
export function parseDialogInfo(bytes: Buffer | string, limits?: XmlLimits): ParseDialogInfoResult {
  try {
    const read = readXml(bytes, limits);
    if (!read.ok) return { ok: false, reason: `Invalid dialog-info: ${read.reason}` };
    return { ok: true, document: readDocument(read.root) };
  } catch (e) {
    return { ok: false, reason: `Invalid dialog-info: ${e instanceof Refusal ? e.detail : 'unreadable document'}` };
  }
}

function unsigned(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  if (!UNSIGNED.test(v)) throw new Refusal(`bad ${name}`);
  return Number(v);
}

function required(el: XmlElement, name: string): string {
  const v = attributeValue(el, name);
  if (v === undefined || collapseWhitespace(v) === '') throw new Refusal(`missing ${name}`);
  return collapseWhitespace(v);
}

function optional(el: XmlElement, name: string): string | undefined {
  const v = attributeValue(el, name);
  return v === undefined ? undefined : collapseWhitespace(v);
}

function readDocument(root: XmlElement): DialogInfo {
  if (root.ns !== DIALOG_INFO_NS || root.local !== 'dialog-info') throw new Refusal('root element is not dialog-info');
  const version = unsigned(required(root, 'version'), 'version')!;
  const state = attributeValue(root, 'state');
  if (state !== 'full' && state !== 'partial') throw new Refusal('state must be full or partial');
  const entity = required(root, 'entity');
  const elements = childElements(root, DIALOG_INFO_NS, 'dialog');
  if (elements.length > MAX_DIALOGS_PER_DOCUMENT) throw new Refusal('too many dialogs');
  const seen = new Set<string>();
  const dialogs = elements.map((d) => {
    const entry = readDialog(d);
    if (seen.has(entry.id)) throw new Refusal(`dialog id ${forReason(entry.id)} twice`);
    seen.add(entry.id);
    return entry;
  });
  return { entity, version, state, dialogs };
}

function readDialog(d: XmlElement): DialogEntry {
  const id = required(d, 'id');
  const direction = optional(d, 'direction');
  if (direction !== undefined && direction !== 'initiator' && direction !== 'recipient') throw new Refusal('bad direction');
  const stateEl = childElements(d, DIALOG_INFO_NS, 'state');
  if (stateEl.length !== 1) throw new Refusal('a dialog has one state');
  const state = collapseWhitespace(textContent(stateEl[0]!));
  if (!STATES.has(state)) throw new Refusal(`bad state ${forReason(state)}`);
  const stateEvent = optional(stateEl[0]!, 'event');
  if (stateEvent !== undefined && !STATE_EVENTS.has(stateEvent)) throw new Refusal(`bad state event ${forReason(stateEvent)}`);
  const stateCode = unsigned(attributeValue(stateEl[0]!, 'code'), 'code');
  if (stateCode !== undefined && (stateCode < 100 || stateCode > 699)) throw new Refusal('bad code');
  const durationEl = childElements(d, DIALOG_INFO_NS, 'duration')[0];
  const duration = durationEl ? unsigned(textContent(durationEl), 'duration') : undefined;
  const callId = optional(d, 'call-id');
  const localTag = optional(d, 'local-tag');
  const remoteTag = optional(d, 'remote-tag');
  const local = participant(d, 'local');
  const remote = participant(d, 'remote');
  return {
    id,
    ...(callId !== undefined ? { callId } : {}),
    ...(localTag !== undefined ? { localTag } : {}),
    ...(remoteTag !== undefined ? { remoteTag } : {}),
    ...(direction !== undefined ? { direction } : {}),
    state: state as DialogState,
    ...(stateEvent !== undefined ? { stateEvent } : {}),
    ...(stateCode !== undefined ? { stateCode } : {}),
    ...(duration !== undefined ? { duration } : {}),
    ...(local ? { local } : {}),
    ...(remote ? { remote } : {}),
  };
}

function participant(d: XmlElement, name: 'local' | 'remote'): DialogParticipant | undefined {
  const el = childElements(d, DIALOG_INFO_NS, name)[0];
  if (!el) return undefined;
  const identityEl = childElements(el, DIALOG_INFO_NS, 'identity')[0];
  const targetEl = childElements(el, DIALOG_INFO_NS, 'target')[0];
  const identity = identityEl ? collapseWhitespace(textContent(identityEl)) : undefined;
  const display = identityEl ? optional(identityEl, 'display') : undefined;
  const target = targetEl ? optional(targetEl, 'uri') : undefined;
  return {
    ...(identity ? { identity } : {}),
    ...(display !== undefined ? { display } : {}),
    ...(target ? { target } : {}),
  };
}

/** One `<dialog>` element as we write it (also the key partial state is decided on). */
export function serializeDialog(d: DialogEntry): string {
  let s = `<dialog id="${escapeAttribute(d.id)}"`;
  if (d.callId !== undefined) s += ` call-id="${escapeAttribute(d.callId)}"`;
  if (d.localTag !== undefined) s += ` local-tag="${escapeAttribute(d.localTag)}"`;
  if (d.remoteTag !== undefined) s += ` remote-tag="${escapeAttribute(d.remoteTag)}"`;
  if (d.direction !== undefined) s += ` direction="${d.direction}"`;
  s += '><state';
  if (d.stateEvent !== undefined) s += ` event="${escapeAttribute(d.stateEvent)}"`;
  if (d.stateCode !== undefined) s += ` code="${d.stateCode}"`;
  s += `>${d.state}</state>`;
  if (d.duration !== undefined) s += `<duration>${d.duration}</duration>`;
  if (d.local) s += participantXml('local', d.local);
  if (d.remote) s += participantXml('remote', d.remote);
  return `${s}</dialog>`;
}

function participantXml(name: 'local' | 'remote', p: DialogParticipant): string {
  let s = `<${name}>`;
  if (p.identity !== undefined) s += `<identity${p.display !== undefined ? ` display="${escapeAttribute(p.display)}"` : ''}>${escapeText(p.identity)}</identity>`;
  if (p.target !== undefined) s += `<target uri="${escapeAttribute(p.target)}"/>`;
  return `${s}</${name}>`;
}

/** A dialog that left the composed state, as a partial NOTIFY tells it (RFC 4235 §4.1: terminated). */
export function terminatedDialog(id: string): string {
  return `<dialog id="${escapeAttribute(id)}"><state>terminated</state></dialog>`;
}

/** A whole document from already written `<dialog>` elements (RFC 4235 §4.1). */
export function buildDialogInfo(entity: string, version: number, state: 'full' | 'partial', dialogs: Iterable<string>): Buffer {
  let s = `<?xml version="1.0" encoding="UTF-8"?>\n<dialog-info xmlns="${DIALOG_INFO_NS}" version="${version}" state="${state}" entity="${escapeAttribute(entity)}">`;
  for (const d of dialogs) s += d;
  return Buffer.from(`${s}</dialog-info>`);
}
