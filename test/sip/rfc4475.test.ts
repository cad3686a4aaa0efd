/**
 * RFC 4475 torture tests: every message of test/fixtures/rfc4475 is parsed and checked
 * against index.json — valid messages must parse and yield the fields the RFC says must
 * be understood; invalid ones must be refused the way the RFC asks (400 with enough of
 * the request kept to answer, another status, or dropped).
 *
 * A check listed in KNOWN_GAPS is reported as pending (with the reason) instead of
 * failing, so that a known parser deviation does not hide new regressions; run with
 * RFC4475_STRICT=1 to turn them back into failures.
 */
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SipParseError } from '../../src/sip/errors.js';
import type { NameAddr, Via } from '../../src/sip/header-values.js';
import { SipRequest, SipResponse } from '../../src/sip/message.js';
import { parseMessage } from '../../src/sip/parser.js';
import type { SipUri } from '../../src/sip/uri.js';

const DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'rfc4475');

type Params = Record<string, string | null>;

interface UriExpect {
  scheme?: string;
  user?: string;
  password?: string;
  host?: string;
  port?: number;
  params?: Params;
  headers?: string;
}

interface ViaExpect {
  transport?: string;
  host?: string;
  port?: number;
  branch?: string | null;
  params?: Params;
}

interface AddrExpect {
  displayName?: string;
  uri?: UriExpect;
  params?: Params;
}

interface Fields {
  method?: string;
  requestUri?: string;
  uri?: UriExpect;
  statusCode?: number;
  reasonPhrase?: string;
  callId?: string;
  cseq?: { seq: number; method: string };
  toTag?: string | null;
  fromTag?: string | null;
  toDisplayName?: string;
  fromDisplayName?: string;
  toUri?: UriExpect;
  fromUri?: UriExpect;
  toParams?: Params;
  fromParams?: Params;
  maxForwards?: number | null;
  viaCount?: number;
  viaHosts?: string[];
  vias?: ViaExpect[];
  contactCount?: number;
  contacts?: AddrExpect[];
  routeCount?: number;
  contentType?: string;
  contentTypeParams?: Params;
  contentLength?: number | null;
  bodyLength?: number;
  bodyStartsWith?: string;
  bodyEndsWith?: string;
  headerValues?: Record<string, string>;
  headerLists?: Record<string, string[]>;
  note?: string;
}

interface Refusal {
  outcome: '400' | 'drop' | 'other';
  status?: number;
  alsoAcceptable?: Array<'accept' | number>;
  viaReadable?: boolean;
  parserMustAccept?: boolean;
  fields?: Fields;
  note: string;
}

interface Entry {
  name: string;
  file: string;
  size: number;
  sha256: string;
  section: string;
  title: string;
  valid: boolean;
  kind: 'request' | 'response';
  layer: 'parser' | 'transaction' | 'application';
  expect: Fields | Refusal;
}

/**
 * Checks that fail because of a known parser deviation from RFC 4475, keyed
 * `<fixture>: <check title>`. Reported as pending unless RFC4475_STRICT is set.
 * Empty: every check passes.
 */
const KNOWN_GAPS: Record<string, string> = {};

/**
 * Invalid messages whose refusal RFC 4475 puts above the parser although index.json
 * does not say parserMustAccept: the parser must take them (refusing them there would
 * refuse a well-formed message), and the fields show what the element refuses them for.
 */
const ELEMENT_REFUSALS: Record<string, { by: string; fields: Fields }> = {
  // §3.3.4: "syntactically valid", absoluteURIs in To, From and Contact; a registrar
  // answers 400 because To must hold a SIP or SIPS AoR (src/registrar decides that).
  unksm2: {
    by: 'registrar',
    fields: {
      toUri: { scheme: 'isbn' },
      fromUri: { scheme: 'http' },
      fromTag: '3234233',
      contactCount: 1,
      contacts: [{ uri: { scheme: 'name' } }],
    },
  },
};

const STRICT = process.env['RFC4475_STRICT'] === '1';

const entries: Entry[] = JSON.parse(readFileSync(join(DIR, 'index.json'), 'utf8')) as Entry[];

function fixture(e: Entry): Buffer {
  return readFileSync(join(DIR, e.file));
}

type Msg = SipRequest | SipResponse;

/** Accessors the core may call on a request (or response) before acting on it. */
const REQUEST_ACCESSORS = ['vias', 'callId', 'cseq', 'from', 'to', 'maxForwards', 'uri', 'contact', 'expires', 'contentType', 'routes', 'recordRoutes', 'event'] as const;
const RESPONSE_ACCESSORS = ['vias', 'callId', 'cseq', 'from', 'to', 'contact', 'contentType'] as const;

type Evaluation =
  | { stage: 'parse'; error: SipParseError; shell: SipRequest | undefined }
  | { stage: 'accessor'; error: SipParseError; accessor: string; message: Msg }
  | { stage: 'accepted'; message: Msg };

/** Parses and then touches every accessor; the first SipParseError is the refusal. */
function evaluate(buf: Buffer): Evaluation {
  const r = parseMessage(buf);
  if (!r.ok) return { stage: 'parse', error: r.error, shell: r.request };
  const m = r.message;
  const names: readonly string[] = m instanceof SipRequest ? REQUEST_ACCESSORS : RESPONSE_ACCESSORS;
  for (const name of names) {
    try {
      void (m as unknown as Record<string, unknown>)[name];
    } catch (err) {
      if (err instanceof SipParseError) return { stage: 'accessor', error: err, accessor: name, message: m };
      throw err;
    }
  }
  return { stage: 'accepted', message: m };
}

function describeEval(ev: Evaluation): string {
  if (ev.stage === 'parse') return `parse failed: ${ev.error.status} ${ev.error.reason} (shell: ${ev.shell ? 'yes' : 'no'})`;
  if (ev.stage === 'accessor') return `parsed, but .${ev.accessor} threw ${ev.error.status} ${ev.error.reason}`;
  return 'accepted';
}

function paramsObject(map: ReadonlyMap<string, string | null>): Params {
  return Object.fromEntries(map);
}

function checkUri(actual: SipUri, want: UriExpect, what: string): void {
  if (want.scheme !== undefined) expect(actual.scheme, `${what} scheme`).to.equal(want.scheme);
  if (want.user !== undefined) expect(actual.user, `${what} user`).to.equal(want.user);
  if (want.password !== undefined) expect(actual.password, `${what} password`).to.equal(want.password);
  if (want.host !== undefined) expect(actual.host, `${what} host`).to.equal(want.host);
  if (want.port !== undefined) expect(actual.port, `${what} port`).to.equal(want.port);
  if (want.params !== undefined) expect(paramsObject(actual.params), `${what} parameters`).to.deep.equal(want.params);
  if (want.headers !== undefined) expect(actual.headers, `${what} headers`).to.equal(want.headers);
}

function checkVia(actual: Via, want: ViaExpect, what: string): void {
  if (want.transport !== undefined) expect(actual.transport, `${what} transport`).to.equal(want.transport);
  if (want.host !== undefined) expect(actual.host, `${what} host`).to.equal(want.host);
  if (want.port !== undefined) expect(actual.port, `${what} port`).to.equal(want.port);
  if (want.branch !== undefined) expect(actual.branch, `${what} branch`).to.equal(want.branch ?? undefined);
  for (const [k, v] of Object.entries(want.params ?? {})) {
    expect(actual.params.has(k), `${what} has ;${k}`).to.equal(true);
    expect(actual.params.get(k), `${what} ;${k}`).to.equal(v);
  }
}

function checkAddr(actual: NameAddr, want: AddrExpect, what: string): void {
  if (want.displayName !== undefined) expect(actual.displayName, `${what} display name`).to.equal(want.displayName);
  if (want.uri !== undefined) checkUri(actual.uri, want.uri, `${what} URI`);
  if (want.params !== undefined) expect(paramsObject(actual.params), `${what} header parameters`).to.deep.equal(want.params);
}

function asRequest(m: Msg): SipRequest {
  expect(m, 'a request').to.be.instanceOf(SipRequest);
  return m as SipRequest;
}

function asResponse(m: Msg): SipResponse {
  expect(m, 'a response').to.be.instanceOf(SipResponse);
  return m as SipResponse;
}

/** Body octets as the fixture has them: after the first empty line, `length` octets. */
function fixtureBody(buf: Buffer, length: number): Buffer {
  const end = buf.indexOf('\r\n\r\n', 0, 'latin1');
  return buf.subarray(end + 4, end + 4 + length);
}

/** One named check per expected field. */
function fieldChecks(f: Fields, m: () => Msg, buf: Buffer): Array<[string, () => void]> {
  const c: Array<[string, () => void]> = [];
  const add = (title: string, fn: () => void): void => {
    c.push([title, fn]);
  };
  if (f.method !== undefined) add('method', () => expect(asRequest(m()).method).to.equal(f.method));
  if (f.requestUri !== undefined) add('Request-URI text', () => expect(asRequest(m()).uriText).to.equal(f.requestUri));
  if (f.uri !== undefined) add('Request-URI', () => checkUri(asRequest(m()).uri, f.uri!, 'Request-URI'));
  if (f.statusCode !== undefined) add('status code', () => expect(asResponse(m()).status).to.equal(f.statusCode));
  if (f.reasonPhrase !== undefined) add('reason phrase', () => expect(asResponse(m()).reason).to.equal(f.reasonPhrase));
  if (f.callId !== undefined) add('Call-ID', () => expect(m().callId).to.equal(f.callId));
  if (f.cseq !== undefined) add('CSeq', () => expect({ ...m().cseq }).to.deep.equal(f.cseq));
  if (f.toTag !== undefined) add('To tag', () => expect(m().to.tag).to.equal(f.toTag ?? undefined));
  if (f.fromTag !== undefined) add('From tag', () => expect(m().from.tag).to.equal(f.fromTag ?? undefined));
  if (f.toDisplayName !== undefined) add('To display name', () => expect(m().to.displayName).to.equal(f.toDisplayName));
  if (f.fromDisplayName !== undefined) add('From display name', () => expect(m().from.displayName).to.equal(f.fromDisplayName));
  if (f.toUri !== undefined) add('To URI', () => checkUri(m().to.uri, f.toUri!, 'To URI'));
  if (f.fromUri !== undefined) add('From URI', () => checkUri(m().from.uri, f.fromUri!, 'From URI'));
  if (f.toParams !== undefined) add('To parameters', () => expect(paramsObject(m().to.params)).to.deep.equal(f.toParams));
  if (f.fromParams !== undefined) add('From parameters', () => expect(paramsObject(m().from.params)).to.deep.equal(f.fromParams));
  if (f.maxForwards !== undefined) add('Max-Forwards', () => expect(asRequest(m()).maxForwards).to.equal(f.maxForwards ?? undefined));
  if (f.viaCount !== undefined) add('Via count', () => expect(m().vias.length).to.equal(f.viaCount));
  if (f.viaHosts !== undefined) add('Via hosts', () => expect(m().vias.map((v) => v.host)).to.deep.equal(f.viaHosts));
  f.vias?.forEach((want, i) => {
    if (Object.keys(want).length > 0) add(`Via[${i}]`, () => checkVia(m().vias[i]!, want, `Via[${i}]`));
  });
  if (f.contactCount !== undefined) add('Contact count', () => expect(m().contacts.length).to.equal(f.contactCount));
  f.contacts?.forEach((want, i) => add(`Contact[${i}]`, () => checkAddr(m().contacts[i]!, want, `Contact[${i}]`)));
  if (f.routeCount !== undefined) add('Route count', () => expect(m().routes.length).to.equal(f.routeCount));
  if (f.contentType !== undefined) add('Content-Type', () => expect(m().contentType?.essence).to.equal(f.contentType));
  if (f.contentTypeParams !== undefined) {
    add('Content-Type parameters', () => {
      for (const [k, v] of Object.entries(f.contentTypeParams!)) expect(m().contentType?.params.get(k), `;${k}`).to.equal(v);
    });
  }
  if (f.contentLength !== undefined) {
    add('Content-Length', () => {
      const text = m().getHeader('content-length');
      if (f.contentLength === null) expect(text).to.equal(undefined);
      else expect(Number(text?.trim())).to.equal(f.contentLength);
    });
  }
  if (f.bodyLength !== undefined) {
    add('body', () => {
      const body = m().body;
      expect(body.length, 'body length').to.equal(f.bodyLength);
      expect(body.equals(fixtureBody(buf, f.bodyLength!)), 'body octets as in the fixture').to.equal(true);
    });
  }
  if (f.bodyStartsWith !== undefined) {
    add('body start', () => expect(m().body.subarray(0, Buffer.byteLength(f.bodyStartsWith!)).toString('utf8')).to.equal(f.bodyStartsWith));
  }
  if (f.bodyEndsWith !== undefined) {
    add('body end', () => expect(m().body.subarray(m().body.length - Buffer.byteLength(f.bodyEndsWith!)).toString('utf8')).to.equal(f.bodyEndsWith));
  }
  for (const [name, value] of Object.entries(f.headerValues ?? {})) add(`header ${name}`, () => expect(m().getHeader(name)).to.equal(value));
  for (const [name, values] of Object.entries(f.headerLists ?? {})) add(`header list ${name}`, () => expect(m().getHeaders(name)).to.deep.equal(values));
  return c;
}

/** Thrown by a field check when the message did not parse at all (already reported once). */
class NotParsed extends Error {}

/**
 * `it`, or a pending test when the check is a known parser gap (and not STRICT). Field
 * checks of a message that did not parse are skipped: the "is accepted" test reports it.
 */
function check(name: string, title: string, fn: () => void): void {
  const gap = KNOWN_GAPS[`${name}: ${title}`];
  if (gap !== undefined && !STRICT) {
    it(`${title} — known parser gap: ${gap}`);
    return;
  }
  it(title, function () {
    try {
      fn();
    } catch (err) {
      if (err instanceof NotParsed) this.skip();
      throw err;
    }
  });
}

/** The parsed message of an evaluation, for field checks. */
function parsedOf(ev: () => Evaluation): () => Msg {
  return () => {
    const r = ev();
    if (r.stage === 'parse') throw new NotParsed(describeEval(r));
    return r.message;
  };
}

function isRefusal(e: Entry): e is Entry & { expect: Refusal } {
  return !e.valid;
}

describe('RFC 4475 torture tests', () => {
  it('index.json lists every fixture file exactly once', () => {
    const files = readdirSync(DIR).filter((f) => f.endsWith('.dat')).sort();
    expect(entries.map((e) => e.file).sort()).to.deep.equal(files);
    expect(new Set(entries.map((e) => e.name)).size).to.equal(entries.length);
  });

  for (const e of entries) {
    describe(`§${e.section} ${e.name} — ${e.title} (${e.valid ? 'valid' : 'invalid'})`, () => {
      const buf = fixture(e);

      it('fixture octets are intact (size and SHA-256 as in index.json)', () => {
        expect(buf.length).to.equal(e.size);
        expect(createHash('sha256').update(buf).digest('hex')).to.equal(e.sha256);
      });

      it('parseMessage does not throw', () => {
        expect(() => parseMessage(buf)).to.not.throw();
      });

      if (!isRefusal(e)) {
        const f = e.expect as Fields;
        let cached: Evaluation | undefined;
        const ev = (): Evaluation => (cached ??= evaluate(buf));
        const msg = parsedOf(ev);
        check(e.name, `is accepted as a well-formed ${e.kind}`, () => {
          const r = ev();
          expect(r.stage, describeEval(r)).to.equal('accepted');
          if (r.stage === 'accepted') expect(r.message).to.be.instanceOf(e.kind === 'request' ? SipRequest : SipResponse);
        });
        for (const [title, fn] of fieldChecks(f, msg, buf)) check(e.name, title, fn);
        return;
      }

      const want = e.expect;
      const acceptable = new Set<number | 'accept'>([...(want.status !== undefined ? [want.status] : []), ...(want.alsoAcceptable ?? [])]);

      const elementRefusal = ELEMENT_REFUSALS[e.name];
      if (want.parserMustAccept || elementRefusal) {
        let cached: Evaluation | undefined;
        const ev = (): Evaluation => (cached ??= evaluate(buf));
        const msg = parsedOf(ev);
        const by = elementRefusal?.by ?? 'application';
        check(e.name, `is accepted by the parser (the ${want.outcome === 'drop' ? 'drop' : want.status} is the ${by}'s job)`, () => {
          const r = ev();
          expect(r.stage, describeEval(r)).to.equal('accepted');
        });
        for (const [title, fn] of fieldChecks({ ...want.fields, ...elementRefusal?.fields }, msg, buf)) check(e.name, title, fn);
        return;
      }

      if (want.outcome === 'drop') {
        check(e.name, 'is refused with nothing to answer to (dropped)', () => {
          const r = evaluate(buf);
          // A response that fails anywhere is dropped (nothing answers a response); a
          // request must fail in the parser without leaving a shell to answer from.
          expect(r.stage, describeEval(r)).to.not.equal('accepted');
          if (e.kind === 'request') {
            expect(r.stage, describeEval(r)).to.equal('parse');
            if (r.stage === 'parse') expect(r.shell, 'no request shell').to.equal(undefined);
          }
        });
        return;
      }

      check(e.name, `is refused with ${[...acceptable].join(' or ')}`, () => {
        const r = evaluate(buf);
        if (r.stage === 'accepted') {
          expect(acceptable.has('accept'), `accepted, but the RFC wants ${want.status}`).to.equal(true);
          return;
        }
        expect(r.error.reason, 'a reason phrase').to.be.a('string').and.not.equal('');
        expect(acceptable.has(r.error.status), `${describeEval(r)}; RFC 4475 wants ${[...acceptable].join(' or ')}`).to.equal(true);
      });

      if (e.kind === 'request' && want.viaReadable !== false) {
        check(e.name, 'keeps enough of the request to answer it', () => {
          const r = evaluate(buf);
          if (r.stage !== 'parse') return; // parsed: the core has the whole request
          expect(r.shell, `${describeEval(r)}: no request shell to build the ${want.status} from`).to.be.instanceOf(SipRequest);
          expect(r.shell!.vias.length).to.be.greaterThan(0);
        });
      }
    });
  }
});
