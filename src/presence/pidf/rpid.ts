import { DATA_MODEL_NS, PIDF_NS, RPID_NS, XML_NS } from './namespaces.js';
import { PidfRefusal } from './pidf-refusal.js';
import type { Device, Note, Person, TimeOffset, UserInput } from './presence-document.js';
import { isDateTime } from './rfc3339.js';
import { attributeValue, childElements, collapseWhitespace, elementChildren, textContent, type XmlElement } from './xml-tree.js';

/**
 * Reading the RFC 4479 person and device elements and the RFC 4480 (RPID) elements in
 * them that the server and its clients use. Everything else in them stays in `raw`.
 */

/** The xml:lang in force on `el` (XML 1.0 §2.12: inherited from the nearest ancestor). */
export function langOf(el: XmlElement, inherited: string | undefined): string | undefined {
  return attributeValue(el, 'lang', XML_NS) ?? inherited;
}

/** The notes among the children of `el` in namespace `ns` (pidf:note, dm:note, rpid:note). */
export function readNotes(el: XmlElement, ns: string, inheritedLang: string | undefined): Note[] {
  const notes: Note[] = [];
  for (const n of childElements(el, ns, 'note')) {
    const text = textContent(n).trim();
    if (text === '') continue;
    const lang = langOf(n, inheritedLang);
    notes.push(lang !== undefined && lang !== '' ? { text, lang } : { text });
  }
  return notes;
}

/**
 * RFC 4480 §3: the tokens of an enumerating element (activities, mood,
 * privacy...): the local names of its children, notes left out, `<other>` by its text.
 */
export function rpidTokens(el: XmlElement): string[] {
  const out: string[] = [];
  for (const c of elementChildren(el)) {
    if (c.ns === RPID_NS && c.local === 'note') continue;
    if (c.ns === RPID_NS && c.local === 'other') {
      out.push(collapseWhitespace(textContent(c)) || 'other');
      continue;
    }
    out.push(c.local);
  }
  return out;
}

/** RFC 4479 §3.2 (and Linphone, which writes the PIDF timestamp there): the element's timestamp. */
function timestampOf(el: XmlElement): string | undefined {
  const ts = childElements(el, DATA_MODEL_NS, 'timestamp')[0] ?? childElements(el, PIDF_NS, 'timestamp')[0];
  return ts ? textContent(ts).trim() : undefined;
}

/** RFC 4480 §3: `<user-input idle-threshold=".." last-input="..">active|idle</user-input>`. */
export function readUserInput(el: XmlElement): UserInput | undefined {
  const ui = childElements(el, RPID_NS, 'user-input')[0];
  if (!ui) return undefined;
  const state = textContent(ui).trim();
  if (state !== 'active' && state !== 'idle') throw new PidfRefusal('bad user-input');
  const threshold = attributeValue(ui, 'idle-threshold');
  let idleThreshold: number | undefined;
  if (threshold !== undefined) {
    // xs:positiveInteger, seconds.
    if (!/^\s*\+?\d{1,9}\s*$/.test(threshold) || Number(threshold) < 1) throw new PidfRefusal('bad idle-threshold');
    idleThreshold = Number(threshold);
  }
  const lastInput = attributeValue(ui, 'last-input')?.trim();
  if (lastInput !== undefined && !isDateTime(lastInput)) throw new PidfRefusal('bad timestamp');
  return {
    state,
    ...(idleThreshold !== undefined ? { idleThreshold } : {}),
    ...(lastInput !== undefined ? { lastInput } : {}),
  };
}

/** RFC 4480 §3: minutes from UTC; a day either way is the most a zone can be. */
function readTimeOffset(el: XmlElement): TimeOffset | undefined {
  const t = childElements(el, RPID_NS, 'time-offset')[0];
  if (!t) return undefined;
  const text = textContent(t).trim();
  if (!/^[+-]?\d{1,4}$/.test(text) || Math.abs(Number(text)) > 1440) throw new PidfRefusal('bad time-offset');
  const description = attributeValue(t, 'description');
  return { minutes: Number(text) || 0, ...(description !== undefined ? { description } : {}) };
}

/** RFC 4480 §3: a token (`home`, `work`, `unknown`) or free text. */
function readSphere(el: XmlElement): string | undefined {
  const s = childElements(el, RPID_NS, 'sphere')[0];
  if (!s) return undefined;
  const token = rpidTokens(s)[0];
  if (token !== undefined) return token;
  const text = collapseWhitespace(textContent(s));
  return text === '' ? undefined : text;
}

function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

/** RFC 4479 §3.2 / RFC 4480: a `dm:person` element whose id has been checked. */
export function readPerson(el: XmlElement, id: string, inheritedLang: string | undefined): Person {
  const lang = langOf(el, inheritedLang);
  const activities: string[] = [];
  for (const a of childElements(el, RPID_NS, 'activities')) activities.push(...rpidTokens(a));
  const mood: string[] = [];
  for (const m of childElements(el, RPID_NS, 'mood')) mood.push(...rpidTokens(m));
  const placeTypeEl = childElements(el, RPID_NS, 'place-type')[0];
  const privacyEl = childElements(el, RPID_NS, 'privacy')[0];
  return {
    id,
    activities,
    mood,
    ...optional('placeType', placeTypeEl ? rpidTokens(placeTypeEl)[0] : undefined),
    privacy: privacyEl ? rpidTokens(privacyEl) : [],
    ...optional('sphere', readSphere(el)),
    ...optional('timeOffset', readTimeOffset(el)),
    ...optional('userInput', readUserInput(el)),
    notes: readNotes(el, DATA_MODEL_NS, lang),
    ...optional('timestamp', timestampOf(el)),
    raw: el,
  };
}

/** RFC 4479 §3.4: a `dm:device` element whose id has been checked. */
export function readDevice(el: XmlElement, id: string, inheritedLang: string | undefined): Device {
  const lang = langOf(el, inheritedLang);
  const deviceIdEl = childElements(el, DATA_MODEL_NS, 'deviceID')[0];
  const deviceId = deviceIdEl ? collapseWhitespace(textContent(deviceIdEl)) : undefined;
  return {
    id,
    ...optional('deviceId', deviceId === '' ? undefined : deviceId),
    ...optional('userInput', readUserInput(el)),
    notes: readNotes(el, DATA_MODEL_NS, lang),
    ...optional('timestamp', timestampOf(el)),
    raw: el,
  };
}
