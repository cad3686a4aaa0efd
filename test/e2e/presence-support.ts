import { expect } from 'chai';
import type { Json } from '../../src/config/config.js';
import type { SipRequest, SipResponse } from '../../src/sip/message.js';
import { ManualTimers } from '../../src/util/timers.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { TestUa, type UaProtocol } from '../support/test-ua.js';

/**
 * What the presence end-to-end tests share: a PUA's PUBLISH, a watcher's SUBSCRIBE with its
 * dialog, and a driven clock moved only while the network is quiet.
 */

export const PIDF = 'application/pidf+xml';

export function pidf(entity: string, basic: 'open' | 'closed', tuple = 't1', note?: string): string {
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="${entity}">` +
    `<tuple id="${tuple}"><status><basic>${basic}</basic></status>${note ? `<note>${note}</note>` : ''}</tuple>` +
    '</presence>'
  );
}

/** Lets datagrams in flight reach their socket. */
export const network = (): Promise<void> => new Promise((r) => setTimeout(r, 20));

/**
 * Waits until the server has no more than `unanswered` NOTIFYs waiting for an answer, so
 * the driven clock never fires a retransmission or timeout for a NOTIFY whose 200 is
 * still on its way.
 */
export async function quiet(srv: TestServer, unanswered = 0): Promise<void> {
  const end = Date.now() + 3000;
  await network();
  while (srv.server.presence.subscriptions.notifier.inFlight > unanswered && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
}

/** Moves the driven clock in steps, letting the network settle between them. */
export async function advance(srv: TestServer, timers: ManualTimers, ms: number, step = 1000, unanswered = 0): Promise<void> {
  for (let done = 0; done < ms; done += step) {
    await quiet(srv, unanswered);
    timers.advance(Math.min(step, ms - done));
  }
  await quiet(srv, unanswered);
}

export const isNotify = (callId?: string) => (r: SipRequest) => r.method === 'NOTIFY' && (callId === undefined || r.callId === callId);

/** A presence test bench: one server, UAs made per test, users fresh per test. */
export class Bench {
  uas: TestUa[] = [];
  n = 0;
  srv!: TestServer;
  constructor(srv?: TestServer) {
    if (srv) this.srv = srv;
  }

  /** Registers the hooks of a describe block: one server (config `overrides`) for the block, UAs closed after each test. */
  static perSuite(overrides: Json = {}): Bench {
    const b = new Bench();
    before(async () => {
      b.srv = await startTestServer(overrides);
    });
    after(async () => {
      await b.srv.stop();
    });
    afterEach(async () => {
      await b.closeAll();
    });
    return b;
  }

  user(base: string): string {
    return `${base}${++this.n}`;
  }

  async ua(user: string, protocol: UaProtocol = 'udp'): Promise<TestUa> {
    const u = await TestUa.create({ protocol, port: this.srv.port, user, domain: 'example.com' });
    this.uas.push(u);
    return u;
  }

  async closeAll(): Promise<void> {
    for (const u of this.uas) await u.close();
    this.uas = [];
  }
}

/** A server on a driven clock, started by each test that calls `start`, stopped after it. */
export interface DrivenBench {
  readonly srv: TestServer;
  readonly timers: ManualTimers;
  readonly b: Bench;
}

/** Registers the hooks of a describe block whose tests start their own server on a driven clock. */
export function drivenPerTest(): { start(overrides?: Json): Promise<DrivenBench> } {
  let current: DrivenBench | undefined;
  afterEach(async () => {
    await current?.b.closeAll();
    await current?.srv.stop();
    current = undefined;
  });
  return {
    async start(overrides: Json = {}) {
      const timers = new ManualTimers();
      const srv = await startTestServer(overrides, { timers });
      current = { srv, timers, b: new Bench(srv) };
      return current;
    },
  };
}

/** PUBLISH (RFC 3903) from `ua` for `presentity`. */
export function publishReq(ua: TestUa, presentity: string, opts: { body?: string; etag?: string; expires?: number; event?: string | null; contentType?: string; uri?: string } = {}): SipRequest {
  const headers: Record<string, string | number> = {};
  if (opts.event !== null) headers.Event = opts.event ?? 'presence';
  if (opts.expires !== undefined) headers.Expires = opts.expires;
  if (opts.etag !== undefined) headers['SIP-If-Match'] = opts.etag;
  if (opts.body !== undefined) headers['Content-Type'] = opts.contentType ?? PIDF;
  const req = ua.request('PUBLISH', opts.uri ?? presentity, { to: `<${presentity}>`, headers, body: opts.body });
  req.removeHeader('contact');
  return req;
}

/** The body type each package's NOTIFYs carry (winfo for the rest). */
const ACCEPT_OF: Record<string, string> = {
  presence: PIDF,
  dialog: 'application/dialog-info+xml',
  'message-summary': 'application/simple-message-summary',
  reg: 'application/reginfo+xml',
};

export interface Watch {
  ua: TestUa;
  callId: string;
  fromTag: string;
  toTag: string;
  cseq: number;
  res: SipResponse;
  first: SipRequest;
  presentity: string;
  event: string;
}

/** SUBSCRIBE (RFC 6665) from `ua` to `presentity`; resolves with the 200 and the first NOTIFY. */
export async function watch(ua: TestUa, presentity: string, opts: { event?: string; expires?: number; accept?: string; answer?: boolean } = {}): Promise<Watch> {
  const event = opts.event ?? 'presence';
  if (opts.answer !== false) ua.autoAnswer('NOTIFY', 200);
  const callId = `w-${ua.user}-${Math.random().toString(36).slice(2)}@test`;
  const fromTag = `ft${Math.random().toString(36).slice(2)}`;
  const headers: Record<string, string | number> = { Event: event, Expires: opts.expires ?? 600 };
  headers.Accept = opts.accept ?? ACCEPT_OF[event] ?? 'application/watcherinfo+xml';
  const req = ua.request('SUBSCRIBE', presentity, { callId, fromTag, cseq: 1, headers });
  const first = ua.waitRequest(isNotify(callId));
  const res = await ua.transact(req);
  expect(res.status, `SUBSCRIBE answered ${res.status} ${res.reason}`).to.equal(200);
  const notify = await first;
  // The 200 reached the watcher before the NOTIFY (sip.js rejects a NOTIFY that overtakes it).
  const arrival = (prefix: string) => ua.raw.findIndex((d) => d.toString('latin1').startsWith(prefix) && d.toString('latin1').includes(callId));
  expect(arrival('SIP/2.0 200')).to.be.within(0, arrival('NOTIFY ') - 1);
  return { ua, callId, fromTag, toTag: res.to.tag!, cseq: 1, res, first: notify, presentity, event };
}

/** A SUBSCRIBE in the watch's dialog (refresh, or unsubscribe with 0). */
export function inDialog(w: Watch, expires: number): SipRequest {
  w.cseq++;
  const target = w.res.contacts[0]!.uri.raw;
  return w.ua.request('SUBSCRIBE', target, {
    callId: w.callId,
    fromTag: w.fromTag,
    toTag: w.toTag,
    to: `<${w.presentity}>`,
    cseq: w.cseq,
    headers: { Event: w.event, Expires: expires },
  });
}

export function basics(body: Buffer): string[] {
  return [...body.toString().matchAll(/<basic>\s*(open|closed)\s*<\/basic>/g)].map((m) => m[1]!);
}
