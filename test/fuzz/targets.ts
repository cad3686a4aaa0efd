import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDigestCredentials, parseDigestParams } from '../../src/auth/digest-header.js';
import { parseListNotify } from '../../src/lists/list-notify.js';
import { buildMultipartRelated, parseMultipart } from '../../src/lists/multipart.js';
import { parseCpim, wrapCpim } from '../../src/messaging/rooms/cpim.js';
import { buildMultipartMixed } from '../../src/messaging/uri-list/multipart-mixed.js';
import { flattenEntries, parseResourceLists, serializeResourceLists } from '../../src/lists/resource-lists.js';
import { buildRlmi, parseRlmi } from '../../src/lists/rlmi-document.js';
import { buildDialogInfo, parseDialogInfo, serializeDialog } from '../../src/presence/dialog-info/dialog-info-document.js';
import { buildConferenceInfo, deletedUser, parseConferenceInfo, serializeUser, type ConferenceUser } from '../../src/presence/conference/conference-info-document.js';
import { parseMessageSummary, serializeMessageSummary } from '../../src/presence/message-summary/message-summary-document.js';
import { parsePidf } from '../../src/presence/pidf/parse-pidf.js';
import { serializePidf } from '../../src/presence/pidf/serialize-pidf.js';
import { summarizePresence } from '../../src/presence/pidf/summarize.js';
import { parseWatcherInfo } from '../../src/presence/winfo/watcherinfo-document.js';
import { SipParseError } from '../../src/sip/errors.js';
import { parseCSeq, parseDeltaSeconds, parseEvent, parseHeaderParams, parseMediaType, parseNameAddr, parseVia, splitList } from '../../src/sip/header-values.js';
import { SipRequest, type SipMessage } from '../../src/sip/message.js';
import { parseMessage } from '../../src/sip/parser.js';
import { parseHostPort, parseUri } from '../../src/sip/uri.js';
import { StreamFramer, type StreamEvent } from '../../src/transport/stream-framer.js';
import { parseSubscriptionState } from '../../src/ua/client-subscription.js';
import { parseChallenge } from '../../src/ua/digest-client.js';
import { readXml } from '../../src/presence/pidf/read-xml.js';
import { locate, resolveSelector } from '../../src/xcap/document-tree.js';
import { parseNodeSelector, SelectorError, selectorText } from '../../src/xcap/node-selector.js';
import { renderRules, rulesOfDocument } from '../../src/xcap/usages/pres-rules.js';
import { entriesOfListElement, listsOfDocument, renderLists, sameList } from '../../src/xcap/usages/resource-lists.js';
import { servicesOfDocument } from '../../src/xcap/usages/rls-services.js';
import { XcapConflict } from '../../src/xcap/xcap-error.js';
import { parseXcapUri, XcapUriError } from '../../src/xcap/xcap-uri.js';
import { FuzzFinding, type FuzzTarget } from './engine.js';
import { pino } from 'pino';
import { EarlyRefusal } from '../../src/core/early-refusal.js';
import { OverloadControl } from '../../src/core/overload-control.js';
import { TransactionLayer } from '../../src/transaction/transaction-layer.js';
import { ManualTimers } from '../../src/util/timers.js';
import { FakeSender } from '../transaction/helpers.js';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const RFC4475 = join(HERE, '../fixtures/rfc4475');
const SEEDS = join(HERE, 'seeds');

/** Every file of a seed folder (test/fuzz/seeds/NAME) and of the regressions found (test/fuzz/regressions/NAME). */
function files(dir: string): Buffer[] {
  try {
    return readdirSync(dir).filter((f) => !f.startsWith('.') && f !== 'README.md').sort().map((f) => readFileSync(join(dir, f)));
  } catch {
    return [];
  }
}
const seedsOf = (name: string): Buffer[] => [...files(join(SEEDS, name)), ...files(join(HERE, 'regressions', name))];

/** Only the parser's own errors may come out of it: a SipParseError (answered 400/505/513). */
function parseErrorsOnly(what: string, f: () => unknown): unknown {
  try {
    return f();
  } catch (e) {
    if (e instanceof SipParseError) return undefined;
    throw new FuzzFinding(`${what} threw ${(e as Error)?.name}: ${(e as Error)?.message}`);
  }
}

/** Reads every header a service may ask for: each may refuse with SipParseError, nothing else. */
function readAll(m: SipMessage): void {
  const getters: Array<[string, () => unknown]> = [
    ['vias', () => m.vias], ['callId', () => m.callId], ['cseq', () => m.cseq], ['from', () => m.from], ['to', () => m.to],
    ['contact', () => m.contact], ['contacts', () => m.contacts], ['recordRoutes', () => m.recordRoutes], ['routes', () => m.routes],
    ['expires', () => m.expires], ['event', () => m.event], ['contentType', () => m.contentType],
  ];
  if (m instanceof SipRequest) getters.push(['uri', () => m.uri], ['maxForwards', () => m.maxForwards]);
  for (const [name, get] of getters) parseErrorsOnly(name, get);
  for (const a of m.getHeaders('authorization')) parseDigestCredentials(a);
}

const SIP_DICTIONARY = [
  '\r\n', '\r\n\r\n', '\r\n ', ' ', '\t', ':', ';', ',', '"', '\\', '<', '>', '@', '=', '[', ']', '%', '%00', '?', '&',
  'SIP/2.0', 'sip:', 'sips:', 'tel:', ';branch=z9hG4bK', ';tag=', ';received=', ';rport', ';lr', ';transport=tcp', ';expires=', ';q=',
  'Via: SIP/2.0/UDP ', 'v: ', 'From: ', 'f: ', 'To: ', 't: ', 'Call-ID: ', 'i: ', 'CSeq: ', 'Contact: ', 'm: ', '*',
  'Content-Length: ', 'l: ', 'Content-Type: ', 'c: ', 'Event: ', 'o: ', 'Expires: ', 'Max-Forwards: ', 'Route: ', 'Record-Route: ',
  'Authorization: Digest ', 'WWW-Authenticate: ', 'Subscription-State: ', 'SIP-If-Match: ', 'Require: ', 'Supported: ',
  'PUBLISH', 'SUBSCRIBE', 'NOTIFY', 'MESSAGE', 'REGISTER', 'OPTIONS', 'INVITE', 'ACK', 'BYE', 'CANCEL',
  'application/pidf+xml', 'presence', 'presence.winfo', ';id=', 'multipart/related;boundary=', '[2001:db8::1]', '255.255.255.255', ':65536',
];

/** SIP messages as the UDP transport hands them to the parser (RFC 3261 §7, §25). */
export const sipMessage: FuzzTarget = {
  name: 'sip-message',
  maxLength: 8192,
  dictionary: SIP_DICTIONARY,
  seeds: () => [...files(RFC4475).filter((b) => b.length > 0), ...seedsOf('sip-message')],
  run(input) {
    const r = parseMessage(input);
    if (!r.ok) {
      if (!(r.error instanceof SipParseError)) throw new FuzzFinding('parse error not a SipParseError');
      const cause = (r.error as Error & { cause?: unknown }).cause;
      if (cause !== undefined) throw new FuzzFinding(`internal error answered as Bad message: ${(cause as Error)?.name}: ${(cause as Error)?.message}`);
      return;
    }
    readAll(r.message);
    // What we would forward or store of it reads back (serialize, then parse again).
    const again = parseMessage(r.message.toBuffer());
    if (!again.ok) throw new FuzzFinding(`a parsed message, serialized, does not parse again: ${again.error.reason}`);
  },
};

/**
 * The early path of overload control (core/early-refusal.ts) past level 1: all new work
 * refused, ongoing work as the input's length decides (odd: refused), so both outcomes come up.
 */
let earlyRig: { early: EarlyRefusal; sender: FakeSender } | undefined;
let earlyCoin = 0;
function earlyRefusalRig(): { early: EarlyRefusal; sender: FakeSender } {
  if (earlyRig) return earlyRig;
  const timers = new ManualTimers();
  const sender = new FakeSender(timers);
  const layer = new TransactionLayer({ sender, timers, onRequest: () => undefined });
  let reading = 1_000;
  const overload = new OverloadControl({
    delay: { read: () => ({ queueDelayMs: (reading += 100), measured: true, eventLoopLagMs: 1, cpuWaitMs: 0 }) },
    timers,
    settings: { enabled: true, targetDelayMs: 50, intervalMs: 100, probeIntervalMs: 20, retryAfterSeconds: 2 },
    random: () => earlyCoin,
    logger: pino({ level: 'silent' }),
  });
  overload.start();
  while (overload.level < 1.5) timers.advance(100);
  overload.stop();
  earlyRig = { early: new EarlyRefusal({ overload, transactions: layer, admitFrom: () => true }), sender };
  return earlyRig;
}

/**
 * SIP messages as overload control's early path reads them: it never throws, a 503 it sends
 * parses (FakeSender checks), and a head it hands on parses as the whole message does.
 */
export const earlyRefusal: FuzzTarget = {
  name: 'early-refusal',
  maxLength: 8192,
  dictionary: SIP_DICTIONARY,
  seeds: () => [...files(RFC4475).filter((b) => b.length > 0), ...seedsOf('sip-message'), ...seedsOf('early-refusal')],
  run(input) {
    const { early, sender } = earlyRefusalRig();
    sender.clear();
    earlyCoin = input.length % 2 === 1 ? 0 : 0.99;
    const outcome = early.screen(input, { protocol: 'udp', remoteAddress: '198.51.100.7', remotePort: 5060, localAddress: '192.0.2.1', localPort: 5060 });
    if (outcome.kind === 'refused') {
      const res = sender.responses()[0];
      if (!res || res.status !== 503) throw new FuzzFinding('refused without a 503');
      return;
    }
    if (sender.sent.length > 0) throw new FuzzFinding(`${outcome.kind}, yet something was sent`);
    if (outcome.kind === 'admitted') {
      const whole = parseMessage(input);
      const fromHead = parseMessage(input, outcome.head);
      const text = (r: typeof whole): string => (r.ok ? r.message.toString() : `error ${r.error.reason}`);
      if (text(whole) !== text(fromHead)) throw new FuzzFinding('the head handed on parses otherwise than the whole message');
    }
  },
};

const framed = (events: StreamEvent[]): string =>
  events.map((e) => (e.kind === 'message' ? `m:${e.data.toString('latin1')}` : e.kind === 'error' ? `e:${e.reason}` : 'p')).join('|');

/** The TCP/TLS framer (RFC 3261 §18.3): the same bytes cut anywhere give the same messages. */
export const streamFramer: FuzzTarget = {
  name: 'stream-framer',
  maxLength: 8192,
  dictionary: SIP_DICTIONARY,
  seeds: () => [...files(RFC4475).filter((b) => b.length > 0).map((b) => Buffer.concat([b, Buffer.from('\r\n\r\n'), b])), ...seedsOf('stream-framer')],
  run(input) {
    const max = 4096;
    const whole = new StreamFramer(max);
    const all = whole.push(input);
    if (whole.buffered > max) throw new FuzzFinding(`framer holds ${whole.buffered} bytes, over its limit ${max}`);
    // Cut points from the input itself, so each input is its own deterministic case.
    const cut = new StreamFramer(max);
    const pieces: StreamEvent[] = [];
    const step = 1 + ((input[0] ?? 0) % 23);
    for (let at = 0; at < input.length; at += step) pieces.push(...cut.push(input.subarray(at, at + step)));
    const a = framed(all);
    const b = framed(pieces);
    if (a !== b) throw new FuzzFinding(`framing depends on how the bytes were cut (steps of ${step})`);
    for (const e of all) if (e.kind === 'message') sipMessage.run(e.data);
  },
};

/** Each header value parser alone (the first byte chooses which), as services call them lazily. */
const HEADER_PARSERS: Array<[string, (text: string) => unknown]> = [
  ['parseVia', parseVia], ['parseNameAddr', (t) => parseNameAddr(t)], ['parseCSeq', parseCSeq], ['parseDeltaSeconds', (t) => parseDeltaSeconds(t, 'Expires')],
  ['parseMediaType', parseMediaType], ['parseEvent', parseEvent], ['parseUri', parseUri], ['parseHeaderParams', (t) => parseHeaderParams(t, 'header')],
  ['splitList', splitList], ['parseHostPort', parseHostPort], ['parseSubscriptionState', parseSubscriptionState],
  ['parseChallenge', (t) => parseChallenge(t, 'Authorization')],
];

export const sipHeaders: FuzzTarget = {
  name: 'sip-headers',
  maxLength: 2048,
  dictionary: SIP_DICTIONARY,
  seeds: () => seedsOf('sip-headers'),
  run(input) {
    if (input.length === 0) return;
    const [name, parse] = HEADER_PARSERS[input[0]! % HEADER_PARSERS.length]!;
    parseErrorsOnly(name, () => parse(input.subarray(1).toString('utf8')));
  },
};

/** Authorization and WWW-Authenticate values (RFC 3261 §25.1, RFC 7616 §3.4): undefined or credentials, never a throw. */
export const digestHeader: FuzzTarget = {
  name: 'digest-header',
  maxLength: 2048,
  dictionary: ['Digest ', 'username=', 'realm=', 'nonce=', 'uri=', 'response=', 'algorithm=', 'SHA-256', 'MD5', 'cnonce=', 'qop=', 'auth', 'nc=', 'opaque=', 'stale=', '"', '\\"', ',', ' ', '\t', '\r\n ', '='],
  seeds: () => seedsOf('digest-header'),
  run(input) {
    const text = input.toString('utf8');
    const creds = parseDigestCredentials(text);
    if (creds !== undefined && (typeof creds.username !== 'string' || typeof creds.response !== 'string' || typeof creds.nonce !== 'string')) {
      throw new FuzzFinding('credentials without username, nonce or response');
    }
    parseDigestParams(text);
  },
};

const XML_DICTIONARY = [
  '<', '>', '</', '/>', '="', '"', "'", '&amp;', '&lt;', '&#x10FFFF;', '&#0;', '&#', '&lol;', '<![CDATA[', ']]>', '<!--', '-->', '<?xml version="1.0"?>', '<!DOCTYPE x [<!ENTITY a "b">]>',
  'xmlns="', 'xmlns:r="', 'xml:lang="', 'urn:ietf:params:xml:ns:pidf', 'urn:ietf:params:xml:ns:pidf:rpid', 'urn:ietf:params:xml:ns:pidf:data-model', 'urn:ietf:params:xml:ns:watcherinfo',
  '<tuple id="t">', '</tuple>', '<status>', '<basic>open</basic>', '<basic>closed</basic>', '<note>', '</note>', '<contact priority="0.5">', '<timestamp>', '2026-12-07T03:00:00Z',
  '<r:activities>', '<r:away/>', '<r:user-input idle-threshold="600">idle</r:user-input>', '<dm:person id="p">', '<dm:device id="d">', '<dm:deviceID>', 'entity="sip:a@example.com"',
  '<watcher-list resource="sip:a@example.com" package="presence">', '<watcher id="w" status="active" event="subscribe">', 'version="', 'state="full"', 'state="partial"',
];

/** PIDF with RPID and the data model (RFC 3863, 4480, 4479) as PUBLISH bodies bring it. */
export const pidf: FuzzTarget = {
  name: 'pidf',
  maxLength: 16384,
  dictionary: XML_DICTIONARY,
  seeds: () => seedsOf('pidf'),
  run(input) {
    const r = parsePidf(input);
    if (!r.ok) {
      if (r.reason.includes('unreadable document')) throw new FuzzFinding('an internal error in the PIDF reader (answered as unreadable document)');
      return;
    }
    summarizePresence(r.document);
    const again = parsePidf(serializePidf(r.document));
    if (!again.ok) throw new FuzzFinding(`a document we accepted, serialized, is refused: ${again.reason}`);
  },
};

/** Watcher information (RFC 3858) as the WUA reads it from NOTIFY bodies. */
export const winfo: FuzzTarget = {
  name: 'winfo',
  maxLength: 16384,
  dictionary: XML_DICTIONARY,
  seeds: () => seedsOf('winfo'),
  run(input) {
    const r = parseWatcherInfo(input);
    if (!r.ok && r.reason.includes('unreadable document')) throw new FuzzFinding('an internal error in the watcherinfo reader (answered as unreadable document)');
  },
};

export const dialogInfo: FuzzTarget = {
  name: 'dialog-info',
  maxLength: 16384,
  dictionary: XML_DICTIONARY,
  seeds: () => seedsOf('dialog-info'),
  run(input) {
    const r = parseDialogInfo(input);
    if (!r.ok) {
      if (r.reason.includes('unreadable document')) throw new FuzzFinding('an internal error in the dialog-info reader (answered as unreadable document)');
      return;
    }
    // What we accepted is what watchers get, written again: it must read back the same.
    const d = r.document;
    const again = parseDialogInfo(buildDialogInfo(d.entity, d.version, d.state, d.dialogs.map(serializeDialog)));
    if (!again.ok) throw new FuzzFinding(`a dialog-info document we accepted, written again, is refused: ${again.reason}`);
    if (JSON.stringify(again.document.dialogs) !== JSON.stringify(d.dialogs)) throw new FuzzFinding('a dialog-info document written again reads back different dialogs');
  },
};

export const messageSummary: FuzzTarget = {
  name: 'message-summary',
  maxLength: 8192,
  dictionary: ['Messages-Waiting: ', 'Message-Account: ', 'Voice-Message: ', 'Text-Message: ', 'yes', 'no', '\r\n', '/', ' (', ')'],
  seeds: () => seedsOf('message-summary'),
  run(input) {
    const r = parseMessageSummary(input);
    if (!r.ok) return;
    const again = parseMessageSummary(serializeMessageSummary(r.summary, r.summary.account ?? 'sip:mailbox@example.com'));
    if (!again.ok) throw new FuzzFinding(`a summary we accepted, written again, is refused: ${again.reason}`);
    // Classes are written in RFC 3842's order, whatever order they came in.
    const counts = (m: ReadonlyMap<string, unknown>): string => JSON.stringify([...m].sort(([a], [b]) => a.localeCompare(b)));
    if (again.summary.waiting !== r.summary.waiting || counts(again.summary.counts) !== counts(r.summary.counts)) {
      throw new FuzzFinding('a summary written again reads back different counts');
    }
  },
};

export const conferenceInfo: FuzzTarget = {
  name: 'conference-info',
  maxLength: 16384,
  dictionary: XML_DICTIONARY,
  seeds: () => seedsOf('conference-info'),
  run(input) {
    const r = parseConferenceInfo(input);
    if (!r.ok) {
      if (r.reason.includes('unreadable document')) throw new FuzzFinding('an internal error in the conference-info reader (answered as unreadable document)');
      return;
    }
    // Written again as a room's watchers get it, it must read back the same (a deleted user is its entity alone).
    const d = r.document;
    const written = d.users.map((u) => (u.state === 'deleted' ? deletedUser(u.entity) : serializeUser({ ...u, state: u.state })));
    const again = parseConferenceInfo(buildConferenceInfo(d.entity, d.version, d.state, d.subject ?? '', written));
    if (!again.ok) throw new FuzzFinding(`a conference-info document we accepted, written again, is refused: ${again.reason}`);
    const norm = (users: readonly ConferenceUser[]): string => JSON.stringify(users.map((u) => (u.state === 'deleted' ? { entity: u.entity, state: u.state } : u)));
    if (norm(again.document.users) !== norm(d.users)) throw new FuzzFinding('a conference-info document written again reads back different users');
    if ((again.document.subject ?? '') !== (d.subject ?? '') || again.document.entity !== d.entity) throw new FuzzFinding('a conference-info document written again reads back a different room');
  },
};

const LIST_DICTIONARY = [
  ...XML_DICTIONARY.slice(0, 19),
  'urn:ietf:params:xml:ns:resource-lists', 'urn:ietf:params:xml:ns:copycontrol', 'xmlns:cp="', '<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists">', '</resource-lists>',
  '<list>', '<list name="', '</list>', '<entry uri="sip:a@example.com"/>', '<entry uri="', '</entry>', '<entry-ref ref="', '<external anchor="http://x/"/>',
  '<display-name>', '</display-name>', 'xml:lang="en"', ' cp:copyControl="bcc"', ' cp:anonymize="true"', ';transport=tcp',
];

/** Resource lists (RFC 4826 §3, RFC 5364) as SUBSCRIBE (RFC 5367) and MESSAGE (RFC 5365) bodies bring them. */
export const resourceLists: FuzzTarget = {
  name: 'resource-lists',
  maxLength: 16384,
  dictionary: LIST_DICTIONARY,
  seeds: () => seedsOf('resource-lists'),
  run(input) {
    const r = parseResourceLists(input, { maxMembers: 200 });
    if (!r.ok) {
      if (r.reason.includes('unreadable document')) throw new FuzzFinding('an internal error in the resource-lists reader (answered as unreadable document)');
      return;
    }
    const flat = flattenEntries(r.document);
    // What we accepted and store is written again: it must read back the same.
    const again = parseResourceLists(serializeResourceLists(r.document), { maxMembers: 200 });
    if (!again.ok) throw new FuzzFinding(`a resource list we accepted, written again, is refused: ${again.reason}`);
    if (JSON.stringify(again.document) !== JSON.stringify(r.document)) throw new FuzzFinding('a resource list written again reads back different');
    if (flat.entries.length > 200) throw new FuzzFinding('more entries than the member bound');
  },
};

/** A document the selectors are evaluated on: names, positions and attributes to meet. */
const XCAP_TREE = readXml(
  '<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" entity="sip:a@example.com">' +
    '<tuple id="a"><status><basic>open</basic></status></tuple><tuple id="x/y"><status><basic>closed</basic></status><note>n</note></tuple><dm:person id="p"/></presence>',
);

/** XCAP URIs under the root (RFC 4825 §6) with node selectors, as the HTTP side reads them. */
export const xcapUri: FuzzTarget = {
  name: 'xcap-uri',
  maxLength: 4096,
  dictionary: ['/', '~~', '/~~/', '%5b', '%5d', '%22', '[', ']', '"', "'", '@', '=', '*', ':', '::', 'namespace::*', 'users', 'global', 'sip:', '@example.com', '%2f', '%25', '%', '?', 'xmlns(', ')', 'p=urn:x', 'index', '[1]', '[@id="a"]', 'tuple', 'presence', '..', '.'],
  seeds: () => seedsOf('xcap-uri'),
  run(input) {
    const text = input.toString('latin1');
    const q = text.indexOf('?');
    let uri;
    try {
      uri = parseXcapUri(q >= 0 ? text.slice(0, q) : text, q >= 0 ? text.slice(q + 1) : '');
    } catch (e) {
      if (e instanceof XcapUriError) return;
      throw new FuzzFinding(`parseXcapUri threw ${(e as Error)?.name}: ${(e as Error)?.message}`);
    }
    if (uri.documentPath.some((s) => s === '..' || s === '.' || s === '')) throw new FuzzFinding('a dot or empty segment got through');
    if (!uri.node) return;
    // Printed and read again, a selector is the same selector.
    const again = parseNodeSelector(selectorText(uri.node));
    if (JSON.stringify(again) !== JSON.stringify(uri.node)) throw new FuzzFinding(`selector ${selectorText(uri.node)} reads back different`);
    let resolved;
    try {
      resolved = resolveSelector(uri.node, new Map([...uri.bindings, ['dm', 'urn:ietf:params:xml:ns:pidf:data-model']]), 'urn:ietf:params:xml:ns:pidf');
    } catch (e) {
      if (e instanceof SelectorError) return;
      throw new FuzzFinding(`resolveSelector threw ${(e as Error)?.name}: ${(e as Error)?.message}`);
    }
    if (XCAP_TREE.ok) locate(XCAP_TREE.root, resolved.steps);
  },
};

/** pres-rules documents (RFC 5025, 4745) as an XCAP PUT brings them: read into rules, rendered, read back the same. */
export const presRules: FuzzTarget = {
  name: 'pres-rules',
  maxLength: 16384,
  dictionary: [...XML_DICTIONARY, '<cp:rule id="', '<cp:conditions>', '<cp:identity>', '<cp:one id="sip:a@example.com"/>', '<cp:many domain="example.org">', '<cp:except id="', '<ocp:other-identity/>', '<pr:sub-handling>', 'allow', 'block', 'polite-block', 'confirm', '<pr:provide-devices>', '<pr:provide-note>', '<pr:provide-all-attributes/>', '</cp:rule>'],
  seeds: () => seedsOf('pres-rules'),
  run(input) {
    const r = readXml(input);
    if (!r.ok) return;
    let rules;
    try {
      rules = rulesOfDocument(r.root);
    } catch (e) {
      if (e instanceof XcapConflict) return;
      throw new FuzzFinding(`rulesOfDocument threw ${(e as Error)?.name}: ${(e as Error)?.message}`);
    }
    for (const oma of [false, true]) {
      const back = readXml(renderRules(rules, oma));
      if (!back.ok) throw new FuzzFinding(`a rendered rule set does not parse: ${back.reason}`);
      const again = rulesOfDocument(back.root);
      if (JSON.stringify(again) !== JSON.stringify(rules)) throw new FuzzFinding(`rules rendered (oma=${oma}) read back different`);
    }
  },
};

/** Only an XcapConflict (the 409 body) may come out of an XCAP usage's reading. */
function conflictsOnly<T>(what: string, f: () => T): T | undefined {
  try {
    return f();
  } catch (e) {
    if (e instanceof XcapConflict) return undefined;
    throw new FuzzFinding(`${what} threw ${(e as Error)?.name}: ${(e as Error)?.message}`);
  }
}

const RL_DICTIONARY = ['<list name="', '</list>', '<entry uri="sip:b@example.com"/>', '<entry uri="', '<display-name>', '</display-name>', '<entry-ref ref="', '<external anchor="', 'presence', 'oma_buddylist'];

/** resource-lists documents as an XCAP PUT brings them (RFC 4826 §3): read into stored lists, rendered, read back the same. */
export const xcapResourceLists: FuzzTarget = {
  name: 'xcap-resource-lists',
  maxLength: 16384,
  dictionary: [...XML_DICTIONARY, ...RL_DICTIONARY],
  seeds: () => seedsOf('xcap-resource-lists'),
  run(input) {
    const r = readXml(input);
    if (!r.ok) return;
    const lists = conflictsOnly('listsOfDocument', () => listsOfDocument(r.root, 'sip:alice@example.com'));
    if (!lists) return;
    const back = readXml(renderLists(lists));
    if (!back.ok) throw new FuzzFinding(`rendered lists do not parse: ${back.reason}`);
    const again = listsOfDocument(back.root, 'sip:alice@example.com');
    if (again.length !== lists.length || !lists.every((l) => again.some((a) => sameList(a, l)))) throw new FuzzFinding('rendered lists read back different');
  },
};

/** rls-services documents as an XCAP PUT brings them (RFC 4826 §4): services and their inline lists. */
export const rlsServices: FuzzTarget = {
  name: 'rls-services',
  maxLength: 16384,
  dictionary: [...XML_DICTIONARY, ...RL_DICTIONARY, '<service uri="sip:alice+p@example.com">', '</service>', '<resource-list>', '</resource-list>', '<packages><package>presence</package></packages>', '<rl:list>', '</rl:list>'],
  seeds: () => seedsOf('rls-services'),
  run(input) {
    const r = readXml(input);
    if (!r.ok) return;
    const services = conflictsOnly('servicesOfDocument', () => servicesOfDocument(r.root, 'sip:alice@example.com'));
    for (const s of services ?? []) if (s.list) conflictsOnly('entriesOfListElement', () => entriesOfListElement(s.list!));
  },
};

/** RLMI (RFC 4662 §5.3) as the watcher side reads it: accepted documents write and read back the same. */
export const rlmi: FuzzTarget = {
  name: 'rlmi',
  maxLength: 16384,
  dictionary: [
    ...XML_DICTIONARY.slice(0, 19),
    'urn:ietf:params:xml:ns:rlmi', '<list xmlns="urn:ietf:params:xml:ns:rlmi" uri="sip:l@example.com" version="0" fullState="true">', '</list>', '<resource uri="', '</resource>',
    '<instance id="', ' state="active"', ' state="pending"', ' state="terminated" reason="rejected"', ' cid="', '/>', '<name>', '</name>',
  ],
  seeds: () => seedsOf('rlmi'),
  run(input) {
    const r = parseRlmi(input);
    if (!r.ok) {
      if (r.reason.includes('unreadable document')) throw new FuzzFinding('an internal error in the RLMI reader (answered as unreadable document)');
      return;
    }
    const again = parseRlmi(buildRlmi(r.list));
    if (!again.ok) throw new FuzzFinding(`an RLMI document we accepted, written again, is refused: ${again.reason}`);
    if (JSON.stringify(again.list) !== JSON.stringify(r.list)) throw new FuzzFinding('an RLMI document written again reads back different');
  },
};

/** A list NOTIFY body (RFC 4662 §5.2, multipart/related RFC 2387) as the watcher side reads it. */
export const listNotify: FuzzTarget = {
  name: 'list-notify',
  maxLength: 16384,
  dictionary: ['--b', '--b--', '\r\n', '\r\n\r\n', 'Content-ID: <', '>', 'Content-Type: application/rlmi+xml', 'Content-Type: application/pidf+xml', 'Content-Transfer-Encoding: binary', ...XML_DICTIONARY.slice(0, 8)],
  seeds: () => seedsOf('list-notify'),
  run(input) {
    const type = 'multipart/related;type="application/rlmi+xml";start="<r@x>";boundary="b"';
    const r = parseListNotify(type, input, 64);
    if (!r.ok) return;
    // What we read, written again by our builder, reads back the same list.
    const rebuilt = buildMultipartRelated([{ contentId: 'r@x', contentType: 'application/rlmi+xml', body: buildRlmi(r.notify.rlmi) }, ...[...r.notify.parts].map(([contentId, p]) => ({ contentId, ...p }))], 'application/rlmi+xml');
    const again = parseListNotify(rebuilt.contentType, rebuilt.body, 64);
    if (!again.ok) throw new FuzzFinding(`a list NOTIFY we read, written again, is refused: ${again.reason}`);
    if (again.notify.parts.size !== r.notify.parts.size) throw new FuzzFinding('a list NOTIFY written again has other parts');
  },
};

/** A message/cpim body (RFC 3862) a room member sends to the room. */
export const cpim: FuzzTarget = {
  name: 'cpim',
  maxLength: 8192,
  dictionary: ['\r\n', '\r\n\r\n', ': ', 'From: ', 'To: ', 'DateTime: ', 'NS: ', 'Content-Type: ', 'text/plain', '"', '<sip:a@example.com>', 'message/cpim', ';charset=utf-8', '\u00e9'],
  seeds: () => seedsOf('cpim'),
  run(input) {
    const m = parseCpim(input);
    if (!m) return;
    // The body is what follows the second blank line, untouched.
    if (!input.subarray(input.length - m.body.length).equals(m.body)) throw new FuzzFinding('the CPIM body is not the end of the input');
    // What a member sent, wrapped by the room for the others, reads back the same.
    const wrapped = wrapCpim({ from: 'sip:a@example.com', nick: m.headers.find(([n]) => n === 'From')?.[1] ?? 'a', to: 'sip:room@example.com', dateTime: 0, contentType: (m.contentType ?? 'text/plain').replace(/[\r\n]/g, ' '), body: m.body });
    const again = parseCpim(wrapped);
    if (!again) throw new FuzzFinding('a CPIM message we wrapped is refused');
    if (!again.body.equals(m.body)) throw new FuzzFinding('a CPIM message wrapped again carries another body');
  },
};

/** The multipart/mixed body of an RFC 5365 URI-list MESSAGE (the message and the recipients). */
export const multipartMixed: FuzzTarget = {
  name: 'multipart-mixed',
  maxLength: 16384,
  dictionary: ['--b', '--b--', '\r\n', '\r\n\r\n', 'Content-Type: text/plain', 'Content-Type: application/resource-lists+xml', 'Content-Disposition: recipient-list', 'Content-ID: <', '>', ...XML_DICTIONARY.slice(0, 8)],
  seeds: () => seedsOf('multipart-mixed'),
  run(input) {
    const r = parseMultipart('multipart/mixed;boundary="b"', input, 8);
    if (!r.ok) return;
    if (r.parts.length > 8) throw new FuzzFinding(`${r.parts.length} parts read past the bound of 8`);
    // The parts we read, written again with a boundary of our own, read back the same bodies.
    const rebuilt = buildMultipartMixed(r.parts.map((p) => ({ headers: [...p.headers].map(([n, v]) => [n, v] as const), body: p.body })));
    const again = parseMultipart(rebuilt.contentType, rebuilt.body, 8);
    if (!again.ok) throw new FuzzFinding(`a multipart body we read, written again, is refused: ${again.reason}`);
    if (again.parts.length !== r.parts.length || again.parts.some((p, i) => !p.body.equals(r.parts[i]!.body))) throw new FuzzFinding('a multipart body written again reads back other parts');
  },
};

export const TARGETS: readonly FuzzTarget[] = [sipMessage, earlyRefusal, streamFramer, sipHeaders, digestHeader, pidf, winfo, dialogInfo, messageSummary, resourceLists, conferenceInfo, rlmi, listNotify, xcapUri, presRules, xcapResourceLists, rlsServices, cpim, multipartMixed];
