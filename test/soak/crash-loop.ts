/**
 * Crash-loop soak (issue 21): a real server process under mixed load (PUBLISH, SUBSCRIBE,
 * MESSAGE to offline users) killed with SIGKILL at moments a seeded PRNG picks, restarted on
 * the same data directory (embedded SQLite) or database (PostgreSQL), round after round.
 * Every 2xx the load got is recorded; after the last round the offline recipients register
 * and collect their messages, and the invariants of docs/store.md are checked:
 * - a message accepted (2xx to MESSAGE) is delivered: never lost, and never twice, but for
 *   the one case no server avoids: a kill between the recipient's 2xx and the commit of the
 *   removal, after which the same request (From tag, Call-ID, CSeq) comes again, counted;
 * - a publication accepted longer than the flush window before a kill is still there
 *   (its entity-tag, or a newer one, refreshes after the restart);
 * - a subscription created longer than the flush window before a kill is still there, and
 *   what a restored subscription sends agrees with what its watcher heard: NOTIFY CSeq goes
 *   up within a dialog (RFC 3261 §12.2.1.1), the body's version goes up (RFC 3857 §5.4,
 *   RFC 4235 §4.1, RFC 3680 §5.2), Subscription-State expires stays within what was granted
 *   (RFC 6665 §4.1.2.1), and a dialog the watcher saw terminated stays terminated.
 *
 * Long form: `npm run soak -- --rounds 100 --store sqlite,postgres --seed 42`;
 * short form: test/soak/crash-loop.test.ts.
 */
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import type { SipRequest, SipResponse } from '../../src/sip/message.js';
import { createResponse } from '../../src/sip/response.js';
import { freePort, spawnServerProcess, type SpawnedServer } from '../support/server-process.js';
import { TestUa } from '../support/test-ua.js';

export type SoakStore = 'sqlite' | 'postgres';

export interface SoakOptions {
  readonly rounds: number;
  readonly store: SoakStore;
  readonly seed: number;
  /** PostgreSQL server (the postgres store works in a schema of its own in it). */
  readonly databaseUrl?: string;
  /** The server's store.flushWindowMs. */
  readonly flushWindowMs?: number;
  /**
   * Slack on top of the flush window before soft state counts as "older than the window":
   * the flush's own transaction and the loaded machine's event-loop lag.
   */
  readonly marginMs?: number;
  /** Load runs this long (uniform, from the PRNG) before the kill. */
  readonly minRunMs?: number;
  readonly maxRunMs?: number;
  /** Share of rounds killed while the server starts (restoring state), not under load. */
  readonly startKillShare?: number;
  readonly log?: (line: string) => void;
  /** Runs the built server (dist/, `npm run build` first) rather than src/ through tsx: starts faster. */
  readonly dist?: boolean;
  /** Appends every server process's log lines to this file (debugging a seed). */
  readonly serverLog?: string;
}

export interface SoakSummary {
  readonly store: SoakStore;
  readonly seed: number;
  readonly rounds: number;
  readonly kills: number;
  readonly killsWhileStarting: number;
  /** Requests the load sent, and how many got a 2xx. */
  readonly requests: number;
  readonly accepted: number;
  readonly notifies: number;
  readonly messagesStored: number;
  readonly messagesUnanswered: number;
  readonly messagesDelivered: number;
  /** Delivered again after a kill that fell between the recipient's 2xx and the removal (the same request again). */
  readonly messagesRedelivered: number;
  readonly publicationsProbed: number;
  readonly subscriptionsProbed: number;
  readonly violations: readonly string[];
  /** The flush window, and how old (2xx to kill) soft state must be to count as written. */
  readonly flushWindowMs: number;
  readonly thresholdMs: number;
  /** Answers by method and status ("PUBLISH 412", "MESSAGE unanswered"). */
  readonly statuses: Readonly<Record<string, number>>;
  readonly ms: number;
}

/** mulberry32: small, seedable, good enough to pick moments. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const DOMAIN = 'example.com';
const PIDF = 'application/pidf+xml';
const DIALOG_INFO = 'application/dialog-info+xml';
const WINFO = 'application/watcherinfo+xml';
const REGINFO = 'application/reginfo+xml';
const SUB_EXPIRES = 3600;
const PUB_EXPIRES = 3600;
const TXN_MS = 3000;

const pidf = (entity: string, note: string): string =>
  `<?xml version="1.0" encoding="UTF-8"?>\n<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="${entity}">` +
  `<tuple id="t1"><status><basic>open</basic></status><note>${note}</note></tuple></presence>`;
const dialogInfo = (entity: string, version: number, id: string): string =>
  `<?xml version="1.0"?>\n<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="${version}" state="full" entity="${entity}">` +
  `<dialog id="${id}"><state>confirmed</state></dialog></dialog-info>`;

/** An entity-tag the server handed out, and when its 2xx arrived. */
interface Accepted {
  readonly etag: string;
  readonly at: number;
  /** The server process (its start's number) that accepted it. */
  readonly life: number;
  readonly mark: string;
}

/** One publisher's stream of one event package: entity-tags in the order they were accepted. */
interface PublishStream {
  readonly ua: TestUa;
  readonly event: 'presence' | 'dialog';
  /** Since the last probe; the last is the live one. */
  history: Accepted[];
  n: number;
  /** A PUBLISH went unanswered while its server lived: it may have been done late, changing the entity-tag. */
  uncertain: boolean;
}

interface NotifySeen {
  readonly cseq: number;
  readonly version: number | undefined;
  readonly state: string;
  readonly expires: number | undefined;
  readonly at: number;
  readonly round: number;
  readonly body: string;
}

/** One SUBSCRIBE dialog as its watcher sees it. */
interface WatchDialog {
  readonly ua: TestUa;
  readonly event: string;
  readonly target: string;
  readonly accept: string;
  readonly callId: string;
  readonly fromTag: string;
  toTag?: string;
  cseq: number;
  /** When the 2xx that created it arrived, and in which server process's life. */
  createdAt?: number;
  createdLife?: number;
  /** Each grant (2xx to a SUBSCRIBE): when it arrived, in which server's life, and its end (arrival + Expires). */
  grants: Array<{ at: number; life: number; until: number }>;
  /** Expires asked by a SUBSCRIBE still waiting for its answer (its NOTIFY may come first). */
  asking?: number;
  /** The watcher asked to end it (Expires: 0). */
  unsubscribed?: boolean;
  /** The watcher saw it end (terminated NOTIFY, or a 2xx to its Expires: 0), at this time. */
  endedAt?: number;
  endedLife?: number;
  notifies: NotifySeen[];
}

interface Sent {
  readonly id: string;
  readonly to: string;
  status: 'stored' | 'refused' | 'unanswered';
}

class Collector {
  readonly violations: string[] = [];
  requests = 0;
  accepted = 0;
  notifies = 0;
  publicationsProbed = 0;
  subscriptionsProbed = 0;
  round = 0;
  readonly statuses = new Map<string, number>();
  count(what: string): void {
    this.statuses.set(what, (this.statuses.get(what) ?? 0) + 1);
  }
  violate(what: string): void {
    this.violations.push(`round ${this.round}: ${what}`);
  }
}

export async function runCrashLoop(opts: SoakOptions): Promise<SoakSummary> {
  const t0 = Date.now();
  const log = opts.log ?? (() => {});
  // Kill moments from their own stream, so a seed gives the same kills however the load ran.
  const killRand = prng(opts.seed);
  const rand = prng(opts.seed ^ 0x5bd1e995);
  const windowMs = opts.flushWindowMs ?? 200;
  const threshold = windowMs + (opts.marginMs ?? 500);
  // How late this process's timers ran in the 2 s before each kill: the machine's stalls,
  // which delay the server's flushes as much (both run at the same priority).
  const lags: Array<{ at: number; lag: number }> = [];
  let tick = Date.now();
  const lagTimer = setInterval(() => {
    const now = Date.now();
    lags.push({ at: now, lag: Math.max(0, now - tick - 50) });
    if (lags.length > 200) lags.shift();
    tick = now;
  }, 50);
  const stallBefore = new Map<number, number>();
  const minRun = opts.minRunMs ?? 300;
  const maxRun = opts.maxRunMs ?? 2500;
  const startKillShare = opts.startKillShare ?? 0.15;
  const c = new Collector();
  const dir = mkdtempSync(join(tmpdir(), 'sp-soak-'));
  const port = await freePort();
  let schema: string | undefined;
  let storeUrl: string | null = null;
  if (opts.store === 'postgres') {
    if (!opts.databaseUrl) throw new Error('the postgres store needs a database URL (DATABASE_URL)');
    schema = `soak_${opts.seed}_${Math.random().toString(36).slice(2, 8)}`;
    await adminQuery(opts.databaseUrl, `CREATE SCHEMA ${schema}`);
    const u = new URL(opts.databaseUrl);
    u.searchParams.set('options', `-c search_path=${schema}`);
    storeUrl = u.toString();
  }
  const config = {
    sip: { hosts: ['127.0.0.1'], port, domain: DOMAIN },
    http: { host: '127.0.0.1', port: 0 },
    store: { dataDir: join(dir, 'data'), flushWindowMs: windowMs, url: storeUrl },
    // Every message the load sends is stored: the per-user limits (480 past them) are not what is tested.
    messaging: { offlineMaxMessages: 1_000_000, offlineMaxBytes: 1 << 30 },
    log: { level: 'info' },
  };
  let server: SpawnedServer | undefined;
  const uas: TestUa[] = [];
  const spawn = (): SpawnedServer => {
    if (server && opts.serverLog) appendFileSync(opts.serverLog, `--- life ${life}\n${server.lines.join('\n')}\n`);
    life++;
    killed = new Promise((resolve) => (onKilled = () => resolve(undefined)));
    server = spawnServerProcess(dir, config, { AUTH_REQUIRED: 'false', LOG_LEVEL: 'info' }, { dist: opts.dist === true });
    return server;
  };
  const ua = async (user: string): Promise<TestUa> => {
    const u = await TestUa.create({ port, user, domain: DOMAIN });
    uas.push(u);
    return u;
  };

  /** Resolves when the running server is killed: what waits on it gets no answer. */
  let killed: Promise<undefined> = new Promise(() => {});
  let onKilled = (): void => {};
  /** Sends and waits; undefined when nothing came (the server died meanwhile). */
  const transact = async (u: TestUa, req: SipRequest): Promise<SipResponse | undefined> => {
    c.requests++;
    try {
      const res = await Promise.race([u.transact(req, TXN_MS), killed]);
      if (!res) throw new Error('killed');
      if (res.status < 300) c.accepted++;
      c.count(`${req.method} ${res.status}`);
      return res;
    } catch {
      c.count(`${req.method} unanswered`);
      return undefined;
    }
  };

  // ---- the actors ----------------------------------------------------------------
  const publishers = await Promise.all(['p0', 'p1', 'p2'].map((n) => ua(n)));
  const watchers = await Promise.all(['w0', 'w1', 'w2'].map((n) => ua(n)));
  const senders = await Promise.all(['s0', 's1'].map((n) => ua(n)));
  // Registered users whose own second device watches their registrations (RFC 3680).
  const registrants = await Promise.all(['r0', 'r1'].map((n) => ua(n)));
  const regWatchers = await Promise.all(['r0', 'r1'].map((n) => ua(n)));
  const offline = ['o0', 'o1', 'o2', 'o3', 'o4', 'o5', 'o6', 'o7'];
  // Recipients that come and go (REGISTER, then Expires: 0): their stored messages are
  // delivered while kills happen, and what reaches them while registered goes straight.
  const roaming = await Promise.all(['q0', 'q1'].map((n) => ua(n)));
  /**
   * Each message id's deliveries by the server's client transaction (branch): a
   * retransmission carries the branch of the first, a new delivery has its own.
   */
  const deliveries = new Map<string, Map<string, { life: number; at: number; identity: string }>>();
  const onMessage = (req: SipRequest): SipResponse => {
    const m = /^soak (m\d+)$/.exec(req.body.toString('utf8'));
    if (m) {
      const byBranch = deliveries.get(m[1]!) ?? new Map<string, { life: number; at: number; identity: string }>();
      const branch = req.topVia.branch ?? '';
      // What a UA tells a request it already handled by (RFC 3261 §8.2.2.2): From tag, Call-ID, CSeq.
      if (!byBranch.has(branch)) byBranch.set(branch, { life, at: Date.now(), identity: `${req.from.tag} ${req.callId} ${req.cseq.seq}` });
      deliveries.set(m[1]!, byBranch);
    }
    lastDeliveryAt = Date.now();
    return createResponse(req, 200);
  };
  let lastDeliveryAt = Date.now();
  for (const q of roaming) q.autoAnswer('MESSAGE', onMessage);
  const targets = [...offline, ...roaming.map((q) => q.user)];
  const streams: PublishStream[] = publishers.flatMap((p) => [
    { ua: p, event: 'presence' as const, history: [], n: 0, uncertain: false },
    { ua: p, event: 'dialog' as const, history: [], n: 0, uncertain: false },
  ]);
  const dialogs = new Map<string, WatchDialog>();
  const sent = new Map<string, Sent>();
  let msgSeq = 0;
  let dialogSeq = 0;

  // Watchers (and publishers, for their winfo) answer NOTIFY 200 in dialogs they hold and
  // 481 in those they saw end (RFC 6665 §4.1.3), recording each.
  const onNotify = (req: SipRequest): SipResponse => {
    const d = dialogs.get(req.callId);
    if (!d) return createResponse(req, 481);
    c.notifies++;
    const ss = req.getHeader('subscription-state') ?? '';
    const state = ss.split(';')[0]!.trim().toLowerCase();
    const exp = /;\s*expires\s*=\s*(\d+)/i.exec(ss);
    const body = req.body.toString('utf8');
    const v = /<(?:watcherinfo|dialog-info|reginfo)\b[^>]*?\sversion="(\d+)"/.exec(body);
    if (state === 'terminated') c.count(`NOTIFY ${ss.replace(/\s/g, '')}`);
    const seen: NotifySeen = { cseq: req.cseq.seq, version: v ? Number(v[1]) : undefined, state, expires: exp ? Number(exp[1]) : undefined, at: Date.now(), round: c.round, body };
    checkNotify(d, seen, req);
    d.notifies.push(seen);
    d.toTag ??= req.from.tag;
    // RFC 6665 §4.1.3: a final NOTIFY is answered 200 (after an unsubscribe too); others in a
    // dialog the watcher ended, 481.
    if (d.endedAt !== undefined && state !== 'terminated') return createResponse(req, 481);
    if (state === 'terminated' && d.endedAt === undefined) {

      // Ended by the server while granted, not asked to: a restored subscription lost its grant.
      const reason = /;\s*reason\s*=\s*([\w-]+)/i.exec(ss)?.[1];
      const granted = Math.max(0, ...d.grants.map((g) => g.until));
      if (!d.unsubscribed && granted - seen.at > 60_000) c.violate(`${d.event} dialog ${d.callId}: ended by the server (reason=${reason ?? 'none'}, CSeq ${seen.cseq}) ${Math.round((granted - seen.at) / 1000)} s before its grant ran out`);
      d.endedAt = seen.at;
      d.endedLife = life;
    }
    return createResponse(req, 200);
  };
  const checkNotify = (d: WatchDialog, n: NotifySeen, req: SipRequest): void => {
    const prev = d.notifies;
    const same = prev.find((p) => p.cseq === n.cseq);
    // A retransmission carries the same CSeq and the same request; anything else is a new one.
    if (same) {
      if (same.body !== n.body || same.state !== n.state) c.violate(`${d.event} dialog ${d.callId}: NOTIFY CSeq ${n.cseq} reused for a different NOTIFY (was sent in round ${same.round})`);
      return;
    }
    const maxCseq = Math.max(-1, ...prev.map((p) => p.cseq));
    if (n.cseq < maxCseq) c.violate(`${d.event} dialog ${d.callId}: NOTIFY CSeq ${n.cseq} after ${maxCseq}`);
    if (n.version !== undefined) {
      const versions = prev.map((p) => p.version).filter((x): x is number => x !== undefined);
      const maxV = Math.max(-1, ...versions);
      if (n.version <= maxV) c.violate(`${d.event} dialog ${d.callId}: body version ${n.version} after ${maxV} (CSeq ${n.cseq})`);
    }
    // The server holds the newest grant, or (a crash losing the last window) one back to the
    // newest grant older than the window: never one longer than those.
    let from = 0;
    for (let i = d.grants.length - 1; i >= 0; i--) {
      if (durable(d.grants[i]!.at, d.grants[i]!.life)) {
        from = i;
        break;
      }
    }
    const bound = Math.max(0, ...d.grants.slice(from).map((g) => g.until), d.asking !== undefined ? n.at + d.asking * 1000 : 0);
    if (n.expires !== undefined && n.at + n.expires * 1000 > bound + 1500) {
      c.violate(`${d.event} dialog ${d.callId}: Subscription-State expires=${n.expires} (CSeq ${n.cseq}) reaches ${Math.round((n.at + n.expires * 1000 - bound) / 1000)} s beyond the grants it may hold`);
    }
    if (d.endedAt !== undefined && n.state !== 'terminated' && n.at - d.endedAt > 0) {
      // Ended longer than the window before a kill and back: a resurrection.
      if (durable(d.endedAt, d.endedLife)) c.violate(`${d.event} dialog ${d.callId}: ${n.state} NOTIFY (CSeq ${n.cseq}) after the watcher saw it end`);
    }
    void req;
  };
  for (const u of [...watchers, ...publishers, ...regWatchers]) u.autoAnswer('NOTIFY', onNotify);

  const subscribe = async (d: WatchDialog, expires: number): Promise<SipResponse | undefined> => {
    const req = d.ua.request('SUBSCRIBE', d.target, {
      callId: d.callId,
      fromTag: d.fromTag,
      toTag: d.toTag,
      cseq: ++d.cseq,
      to: `<${d.target}>`,
      headers: { Event: d.event, Expires: expires, Accept: d.accept },
    });
    if (expires === 0) d.unsubscribed = true;
    d.asking = expires;
    const sentAt = Date.now();
    const res = await transact(d.ua, req);
    d.asking = undefined;
    // Unanswered, it may still have been granted (late, or its 2xx lost with the server).
    if (!res && expires > 0) d.grants.push({ at: sentAt, life: -1, until: Date.now() + expires * 1000 });
    if (res && res.status < 300) {
      const now = Date.now();
      d.toTag ??= res.to.tag;
      if (d.createdAt === undefined) {
        d.createdAt = now;
        d.createdLife = life;
      }
      const granted = Number(res.getHeader('expires') ?? expires);
      if (expires === 0 && d.endedAt === undefined) {
        d.endedAt = now;
        d.endedLife = life;
      }
      else d.grants.push({ at: now, life, until: now + granted * 1000 });
    }
    return res;
  };
  const newDialog = (u: TestUa, event: string, target: string, accept: string): WatchDialog => {
    const d: WatchDialog = { ua: u, event, target, accept, callId: `soak-${u.user}-${event}-${++dialogSeq}@test`, fromTag: `f${dialogSeq}`, cseq: 0, grants: [], notifies: [] };
    dialogs.set(d.callId, d);
    return d;
  };
  /** The live dialogs each watcher keeps: presence of every publisher, dialog of p0; each publisher its winfo. */
  const wanted: Array<{ ua: TestUa; event: string; target: string; accept: string; current?: WatchDialog }> = [
    ...watchers.flatMap((w) => publishers.map((p) => ({ ua: w, event: 'presence', target: p.aor, accept: PIDF }))),
    ...watchers.map((w) => ({ ua: w, event: 'dialog', target: publishers[0]!.aor, accept: DIALOG_INFO })),
    ...publishers.map((p) => ({ ua: p, event: 'presence.winfo', target: p.aor, accept: WINFO })),
    ...regWatchers.map((r) => ({ ua: r, event: 'reg', target: r.aor, accept: REGINFO })),
  ];

  const publish = async (s: PublishStream, withBody: boolean): Promise<void> => {
    const live = s.history.at(-1);
    const headers: Record<string, string | number> = { Event: s.event, Expires: PUB_EXPIRES };
    if (live) headers['SIP-If-Match'] = live.etag;
    const mark = `${s.ua.user}-${s.event}-${++s.n}`;
    let body: string | undefined;
    if (withBody || !live) {
      headers['Content-Type'] = s.event === 'presence' ? PIDF : DIALOG_INFO;
      body = s.event === 'presence' ? pidf(s.ua.aor, mark) : dialogInfo(s.ua.aor, s.n, mark);
    }
    const req = s.ua.request('PUBLISH', s.ua.aor, { to: `<${s.ua.aor}>`, headers, body });
    req.removeHeader('contact');
    const res = await transact(s.ua, req);
    if (!res) {
      s.uncertain = true;
      return;
    }
    if (res.status < 300) {
      const etag = res.getHeader('sip-etag');
      if (etag) s.history.push({ etag, at: Date.now(), mark, life });
    } else if (res.status === 412 && live) {
      if (!s.uncertain) c.violate(`PUBLISH ${s.event} of ${s.ua.user}: entity-tag ${live.etag} (accepted ${Date.now() - live.at} ms ago, no restart since) refused with 412`);
      s.history = [];
      s.uncertain = false;
    }
  };

  const sendMessage = async (u: TestUa): Promise<void> => {
    const id = `m${++msgSeq}`;
    const to = `sip:${targets[Math.floor(rand() * targets.length)]}@${DOMAIN}`;
    const record: Sent = { id, to, status: 'unanswered' };
    sent.set(id, record);
    const req = u.request('MESSAGE', to, { headers: { 'Content-Type': 'text/plain' }, body: `soak ${id}` });
    req.removeHeader('contact');
    const res = await transact(u, req);
    if (res) record.status = res.status < 300 ? 'stored' : 'refused';
  };

  // ---- after each restart: what must have survived the kill -------------------------
  /** Server processes started so far, and when each was killed. */
  let life = 0;
  const killedAt = new Map<number, number>();
  /** Changed longer than the flush window (and the margin) before its server was killed. */
  const durable = (at: number, inLife: number | undefined): boolean => {
    const k = inLife !== undefined ? killedAt.get(inLife) : undefined;
    return k !== undefined && at < k - threshold;
  };
  const before = (at: number, inLife: number): string =>
    `${killedAt.get(inLife)! - at} ms before its server was killed (this process's timers ran up to ${stallBefore.get(inLife) ?? '?'} ms late in the 2 s before)`;
  const probe = async (): Promise<void> => {
    await Promise.all(
      streams.map(async (s) => {
        if (s.history.length === 0) return;
        c.publicationsProbed++;
        // One entity-tag of the chain is live at most: the newest the store has.
        for (let i = s.history.length - 1; i >= 0; i--) {
          const a = s.history[i]!;
          const req = s.ua.request('PUBLISH', s.ua.aor, { to: `<${s.ua.aor}>`, headers: { Event: s.event, Expires: PUB_EXPIRES, 'SIP-If-Match': a.etag } });
          req.removeHeader('contact');
          const res = await transact(s.ua, req);
          if (res && res.status < 300) {
            const newer = s.history.slice(i + 1).filter((x) => durable(x.at, x.life));
            if (newer.length > 0) c.violate(`PUBLISH ${s.event} of ${s.ua.user}: restored ${a.mark}, but ${newer.at(-1)!.mark} was accepted ${before(newer.at(-1)!.at, newer.at(-1)!.life)}`);
            s.history = [{ etag: res.getHeader('sip-etag') ?? a.etag, at: Date.now(), mark: a.mark, life }];
            s.uncertain = false;
            return;
          }
          if (!res) {
            // No answer: the next restart (or a 412) tells.
            s.uncertain = true;
            return;
          }
        }
        const old = s.history.filter((x) => durable(x.at, x.life));
        // An unanswered PUBLISH may have replaced them all, and its answer was lost with the server.
        if (old.length > 0 && !s.uncertain) c.violate(`PUBLISH ${s.event} of ${s.ua.user}: none of its entity-tags refreshes; ${old.at(-1)!.mark} was accepted ${before(old.at(-1)!.at, old.at(-1)!.life)}`);
        s.history = [];
        s.uncertain = false;
      }),
    );
    await Promise.all(
      wanted.map(async (w) => {
        const d = w.current;
        if (!d || d.endedAt !== undefined || d.createdAt === undefined) return;
        c.subscriptionsProbed++;
        const res = await subscribe(d, SUB_EXPIRES);
        if (!res) return;
        if (res.status === 481 || res.status >= 400) {
          if (durable(d.createdAt, d.createdLife) && d.endedAt === undefined) c.violate(`${d.event} subscription ${d.callId}: created ${before(d.createdAt, d.createdLife!)}, refresh answered ${res.status}`);
          if (d.endedAt === undefined) {
            d.endedAt = Date.now();
            d.endedLife = life;
          }
        }
      }),
    );
  };

  // ---- the load --------------------------------------------------------------------
  let running = false;
  const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
  const loops = (): Array<Promise<void>> => [
    ...streams.map(async (s) => {
      while (running) {
        await publish(s, rand() < 0.7);
        await pause(20 + rand() * 80);
      }
    }),
    ...wanted.map(async (w) => {
      while (running) {
        const d = w.current;
        if (!d || d.endedAt !== undefined || d.createdAt === undefined) {
          w.current = newDialog(w.ua, w.event, w.target, w.accept);
          const res = await subscribe(w.current, SUB_EXPIRES);
          if (!res || res.status >= 300) w.current = undefined;
        } else {
          const r = rand();
          // Mostly refreshes, for shorter or longer; now and then an unsubscribe (a new dialog follows).
          await subscribe(d, r < 0.1 ? 0 : r < 0.4 ? 600 : r < 0.7 ? 1800 : SUB_EXPIRES);
        }
        await pause(100 + rand() * 300);
      }
    }),
    ...registrants.map(async (u) => {
      while (running) {
        const req = u.request('REGISTER', `sip:${DOMAIN}`, { to: `<${u.aor}>`, callId: `reg-${u.user}-${u.localPort}@test`, headers: { Expires: 600 } });
        await transact(u, req);
        await pause(200 + rand() * 600);
      }
    }),
    ...roaming.map(async (q) => {
      while (running) {
        await transact(q, q.request('REGISTER', `sip:${DOMAIN}`, { to: `<${q.aor}>`, callId: `reg-${q.user}-${q.localPort}@test`, headers: { Expires: 600 } }));
        await pause(200 + rand() * 800);
        if (!running) break;
        await transact(q, q.request('REGISTER', `sip:${DOMAIN}`, { to: `<${q.aor}>`, callId: `reg-${q.user}-${q.localPort}@test`, headers: { Expires: 0 } }));
        await pause(200 + rand() * 800);
      }
    }),
    ...senders.map(async (u) => {
      while (running) {
        await sendMessage(u);
        await pause(10 + rand() * 40);
      }
    }),
  ];

  let killsWhileStarting = 0;
  let kills = 0;
  try {
    for (let round = 1; round <= opts.rounds; round++) {
      c.round = round;
      const s = spawn();
      if (round > 1 && killRand() < startKillShare) {
        // Killed while it starts: loading and restoring the soft state, NOTIFYing watchers.
        await pause(200 + killRand() * 2000);
        killedAt.set(life, Date.now());
        stallBefore.set(life, Math.max(0, ...lags.filter((l) => l.at > Date.now() - 2000).map((l) => l.lag)));
        await s.stop('SIGKILL');
        onKilled();
        kills++;
        killsWhileStarting++;
        log(`round ${round}: killed while starting`);
        continue;
      }
      const spawnedAt = Date.now();
      await s.listening(120_000);
      const startMs = Date.now() - spawnedAt;
      if (round > 1) await probe();
      const runMs = minRun + killRand() * (maxRun - minRun);
      running = true;
      const load = loops();
      await pause(runMs);
      killedAt.set(life, Date.now());
      stallBefore.set(life, Math.max(0, ...lags.filter((l) => l.at > Date.now() - 2000).map((l) => l.lag)));
      await s.stop('SIGKILL');
      onKilled();
      kills++;
      running = false;
      await Promise.all(load);
      log(`round ${round}: started in ${startMs} ms, killed after ${Math.round(runMs)} ms of load; ${c.requests} requests so far, ${c.violations.length} violations`);
    }
    // The last start: check what the last kill left, collect the stored messages.
    c.round = opts.rounds + 1;
    const s = spawn();
    await s.listening(120_000);
    await probe();
    const recipients = await Promise.all(offline.map((n) => ua(n)));
    for (const r of recipients) r.autoAnswer('MESSAGE', onMessage);
    for (const r of [...recipients, ...roaming]) {
      const reg = r.request('REGISTER', `sip:${DOMAIN}`, { to: `<${r.aor}>`, callId: `reg-${r.user}-${r.localPort}@test`, headers: { Expires: 600 } });
      const res = await transact(r, reg);
      if (!res || res.status >= 300) c.violate(`REGISTER of ${r.user} answered ${res?.status ?? 'nothing'}`);
    }
    lastDeliveryAt = Date.now();
    // Delivery goes on until nothing came for two seconds (retransmissions of the 200s included).
    const deadline = Date.now() + 60_000;
    while (Date.now() - lastDeliveryAt < 2000 && Date.now() < deadline) await pause(200);
    // Restored NOTIFYs of the last start have come by now too.
    await pause(500);
    let stored = 0;
    let unanswered = 0;
    let redelivered = 0;
    for (const m of sent.values()) {
      const n = deliveries.get(m.id)?.size ?? 0;
      if (m.status === 'stored') {
        stored++;
        if (n === 0) c.violate(`message ${m.id} to ${m.to}: accepted (2xx) but never delivered`);
      }
      if (m.status === 'unanswered') unanswered++;
      if (m.status === 'refused' && n > 0) c.violate(`message ${m.id}: refused, yet delivered`);
      if (n > 1) {
        const ds = [...deliveries.get(m.id)!.values()].sort((x, y) => x.at - y.at);
        const same = new Set(ds.map((d) => d.identity)).size === 1;
        // The one duplicate no server can avoid: the kill fell between the recipient's 2xx and
        // the commit of the removal. It comes again in the next life as the same request
        // (From tag, Call-ID, CSeq), which the recipient can tell; anything else is a violation.
        const cutShort = ds.slice(0, -1).every((d, i) => {
          const k = killedAt.get(d.life);
          return k !== undefined && k - d.at < threshold && ds[i + 1]!.life > d.life;
        });
        if (same && cutShort) redelivered++;
        else {
          const where = ds.map((d) => `life ${d.life}${killedAt.has(d.life) ? ` (${killedAt.get(d.life)! - d.at} ms before its kill)` : ''}`).join(', ');
          c.violate(`message ${m.id} to ${m.to}: delivered ${n} times, in ${where}, ${same ? 'with the same From tag, Call-ID and CSeq' : 'as different requests'}`);
        }
      }
    }
    for (const id of deliveries.keys()) if (!sent.has(id)) c.violate(`message ${id}: delivered but never sent`);
    const messagesDelivered = [...deliveries.values()].reduce((a, b) => a + b.size, 0);
    await s.stop('SIGTERM');
    if (opts.serverLog) appendFileSync(opts.serverLog, `--- life ${life}\n${s.lines.join('\n')}\n`);
    return {
      store: opts.store,
      seed: opts.seed,
      rounds: opts.rounds,
      kills,
      killsWhileStarting,
      requests: c.requests,
      accepted: c.accepted,
      notifies: c.notifies,
      messagesStored: stored,
      messagesUnanswered: unanswered,
      messagesDelivered,
      messagesRedelivered: redelivered,
      publicationsProbed: c.publicationsProbed,
      subscriptionsProbed: c.subscriptionsProbed,
      violations: c.violations,
      flushWindowMs: windowMs,
      thresholdMs: threshold,
      statuses: Object.fromEntries([...c.statuses].sort(([a], [b]) => a.localeCompare(b))),
      ms: Date.now() - t0,
    };
  } catch (err) {
    if (server) log(server.lines.slice(-20).join('\n'));
    throw err;
  } finally {
    clearInterval(lagTimer);
    running = false;
    await server?.stop('SIGKILL');
    for (const u of uas) await u.close();
    rmSync(dir, { recursive: true, force: true });
    if (schema && opts.databaseUrl) await adminQuery(opts.databaseUrl, `DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => undefined);
  }
}

async function adminQuery(url: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

export function formatSummary(s: SoakSummary): string {
  return [
    `store ${s.store}, seed ${s.seed}: ${s.rounds} rounds, ${s.kills} SIGKILLs (${s.killsWhileStarting} while starting), ${(s.ms / 60_000).toFixed(1)} min`,
    `  requests ${s.requests} (2xx ${s.accepted}), NOTIFYs received ${s.notifies}`,
    `  answers: ${Object.entries(s.statuses).map(([k, v]) => `${k} x${v}`).join(', ')}`,
    `  messages accepted ${s.messagesStored}, unanswered at a kill ${s.messagesUnanswered}, deliveries ${s.messagesDelivered}` +
      ` (of which ${s.messagesRedelivered} again after a kill between the recipient's 2xx and the removal, as the same request)`,
    `  probed after restarts: publications ${s.publicationsProbed}, subscriptions ${s.subscriptionsProbed} (flush window ${s.flushWindowMs} ms; written if accepted ${s.thresholdMs} ms before the kill)`,
    `  violations ${s.violations.length}${s.violations.length ? ':' : ''}`,
    ...s.violations.slice(0, 50).map((v) => `    ${v}`),
    ...(s.violations.length > 50 ? [`    ... and ${s.violations.length - 50} more`] : []),
  ].join('\n');
}

async function main(argv: readonly string[]): Promise<number> {
  const arg = (name: string): string | undefined => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const rounds = Number(arg('rounds') ?? 100);
  const stores = (arg('store') ?? 'sqlite,postgres').split(',').map((s) => s.trim()) as SoakStore[];
  const seed = Number(arg('seed') ?? Math.floor(Math.random() * 2 ** 31));
  const flushWindowMs = arg('flush-window-ms') !== undefined ? Number(arg('flush-window-ms')) : undefined;
  const databaseUrl = process.env.DATABASE_URL || undefined;
  const serverLog = arg('server-log');
  const marginMs = arg('margin-ms') !== undefined ? Number(arg('margin-ms')) : undefined;
  const dist = argv.includes('--dist');
  console.log(`crash-loop soak: seed ${seed} (repeat with --seed ${seed}), ${rounds} rounds, stores ${stores.join(',')}, server from ${dist ? 'dist/' : 'src/ (tsx)'}`);
  let failed = false;
  for (const store of stores) {
    if (store !== 'sqlite' && store !== 'postgres') throw new Error(`unknown store ${store as string}`);
    if (store === 'postgres' && !databaseUrl) {
      console.log('postgres: skipped (set DATABASE_URL)');
      continue;
    }
    const summary = await runCrashLoop({ rounds, store, seed, databaseUrl, flushWindowMs, marginMs, dist, ...(serverLog ? { serverLog: `${serverLog}.${store}` } : {}), log: (l) => console.log(`[${store}] ${l}`) });
    console.log(formatSummary(summary));
    if (summary.violations.length > 0) failed = true;
  }
  return failed ? 1 : 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err) => {
      console.error(err);
      process.exit(2);
    },
  );
}
