import { readFileSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { pino } from 'pino';
import { loadConfig } from '../config/config.js';
import type { PresenceUpdate } from '../ua/client-subscription.js';
import { SipRequestError } from '../ua/errors.js';
import { Pager } from '../ua/pager.js';
import { stateFromStatus } from '../ua/presence-state.js';
import { PresenceUserAgent } from '../ua/presence-user-agent.js';
import { refreshDelayMs } from '../ua/refresh.js';
import { Registration } from '../ua/registration.js';
import { UserAgent, type ClientTransport } from '../ua/user-agent.js';
import { WatcherUserAgent } from '../ua/watcher-user-agent.js';
import { STATE_EVENTS, type StateEvent } from '../ua/event-state.js';

/** The client roles as commands: `simple-presence publish | watch | message | listen`. */
export const CLIENT_COMMANDS = ['publish', 'watch', 'message', 'listen', 'room'] as const;
export type ClientCommand = (typeof CLIENT_COMMANDS)[number];

export function isClientCommand(c: string | undefined): c is ClientCommand {
  return (CLIENT_COMMANDS as readonly string[]).includes(c ?? '');
}

export const CLIENT_USAGE = `Client commands (talk to a running server over SIP):
  simple-presence publish --user alice [--status away] [--note TEXT]   publish presence until stopped
  simple-presence watch --user carol bob [dave ...] [--watchers]        a live table of their presence
  simple-presence watch --user carol --list presence                     one list subscription (RFC 4662) to sip:carol+presence@domain
  simple-presence watch --user carol --list rls bob dave                 the list in the SUBSCRIBE (RFC 5367) to sip:rls@domain
  simple-presence watch --user carol --event dialog|message-summary|reg [bob ...]
                                                                        busy lamp, message waiting or registrations
                                                                        (of carol herself when no one is named)
  simple-presence message --user alice bob "hi"                          send one instant message
  simple-presence listen --user bob                                      register and print incoming messages
  simple-presence room create|join|leave|members|destroy --user alice ROOM [--persistent]
  simple-presence room say|topic|ban|unban --user alice ROOM TEXT|USER   chat rooms (docs/messaging.md): the room's
                                                                        #commands sent as MESSAGEs to sip:ROOM@domain
Common options:
  --server HOST[:PORT]   the server (default 127.0.0.1 and sip.port of the config)
  --transport udp|tcp|tls (default udp)
  --user NAME|AOR        who we are: alice, alice@example.com or sip:alice@example.com
  --domain DOMAIN        domain of a bare user name (default sip.domain of the config)
  --password PW          digest password (or environment SIP_PASSWORD)
  --ca FILE              TLS: trust the server certificate's CA from this PEM file (default: the system's CAs)
  --insecure             TLS: do not check the server's certificate (testing only)
  --config FILE          read the defaults above from this config file
  --verbose, -v          log what the SIP stack does (JSON lines on stderr)
Status words: online, offline, or an RPID activity (away, busy, meeting, on-the-phone, ...).`;

/** Where a command writes, and what stops a long-running one. */
export interface CommandIo {
  out(line: string): void;
  err(line: string): void;
  /** Aborted by SIGINT/SIGTERM (or a test) to end publish, watch and listen. */
  readonly signal: AbortSignal;
  /** Redraw in place (a terminal) rather than print a line per change. */
  readonly tty?: boolean;
  readonly env?: NodeJS.ProcessEnv;
  /** How long the first request may go unanswered over UDP before we say so (default 3 s). */
  readonly noAnswerNoticeMs?: number;
}

const COMMON = {
  server: { type: 'string' },
  transport: { type: 'string' },
  user: { type: 'string', short: 'u' },
  domain: { type: 'string' },
  password: { type: 'string', short: 'p' },
  config: { type: 'string', short: 'c' },
  expires: { type: 'string' },
  ca: { type: 'string' },
  insecure: { type: 'boolean' },
  verbose: { type: 'boolean', short: 'v' },
} as const;

class UsageError extends Error {}

/** Ctrl-C before the server answered. */
class StoppedError extends Error {}

/** Over UDP a server that is not there stays silent until Timer F (32 s): say so after this long. */
const NO_ANSWER_NOTICE_MS = 3000;

/** Runs one client command; resolves with the exit code. Never throws for a SIP failure. */
export async function runClientCommand(command: ClientCommand, args: string[], io: CommandIo): Promise<number> {
  let ua: UserAgent | undefined;
  try {
    const extra: ParseArgsConfig['options'] = command === 'publish'
      ? { status: { type: 'string' }, note: { type: 'string' }, activity: { type: 'string', multiple: true }, pidf: { type: 'string' } }
      : command === 'watch'
        ? { watchers: { type: 'boolean' }, event: { type: 'string' }, list: { type: 'string' } }
        : command === 'room'
          ? { persistent: { type: 'boolean' } }
          : {};
    const { values, positionals } = parseArgs({ args, options: { ...COMMON, ...extra }, allowPositionals: true, strict: true });
    const v = values as Record<string, string | boolean | string[] | undefined>;
    ua = await openAgent(v, io);
    switch (command) {
      case 'message':
        return await message(ua, positionals, io);
      case 'listen':
        return await listen(ua, v, io);
      case 'publish':
        return await publish(ua, v, io);
      case 'room':
        return await room(ua, positionals, v.persistent === true, io);
      default:
        if (typeof v.event === 'string' && v.event !== 'presence') return await watchEvent(ua, v.event, positionals, io);
        return await watch(ua, positionals, v.watchers === true, io, typeof v.list === 'string' ? v.list : undefined);
    }
  } catch (err) {
    if (err instanceof StoppedError) return 130;
    io.err(`simple-presence ${command}: ${describe(err, ua)}`);
    return err instanceof UsageError ? 2 : 1;
  } finally {
    await ua?.close();
  }
}

function describe(err: unknown, ua: UserAgent | undefined): string {
  if (err instanceof SipRequestError) return err.message;
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'ECONNREFUSED') return `cannot connect to ${ua?.serverName ?? 'the server'}: connection refused (is the server running, with this transport and port?)`;
  if (e?.code?.startsWith?.('ERR_PARSE_ARGS')) return `${e.message}\n\n${CLIENT_USAGE}`;
  return e?.message ?? String(err);
}

async function openAgent(v: Record<string, string | boolean | string[] | undefined>, io: CommandIo): Promise<UserAgent> {
  const config = loadConfig({ file: typeof v.config === 'string' ? v.config : undefined, env: io.env ?? process.env });
  const user = typeof v.user === 'string' ? v.user : undefined;
  if (!user) throw new UsageError(`--user is required\n\n${CLIENT_USAGE}`);
  const domain = typeof v.domain === 'string' ? v.domain : config.sip.domain;
  const aor = /^sips?:/i.test(user) ? user : user.includes('@') ? `sip:${user}` : `sip:${user}@${domain}`;
  const transport = (typeof v.transport === 'string' ? v.transport.toLowerCase() : 'udp') as ClientTransport;
  if (!['udp', 'tcp', 'tls'].includes(transport)) throw new UsageError(`--transport must be udp, tcp or tls, not "${transport}"`);
  const { host, port } = parseServer(typeof v.server === 'string' ? v.server : undefined, transport === 'tls' ? config.tls.port : config.sip.port);
  const password = typeof v.password === 'string' ? v.password : (io.env ?? process.env).SIP_PASSWORD;
  let ca: Buffer | undefined;
  if (typeof v.ca === 'string') {
    try {
      ca = readFileSync(v.ca);
    } catch (err) {
      throw new UsageError(`--ca ${v.ca}: ${(err as Error).message}`);
    }
  }
  const tls = { ...(ca ? { ca } : {}), ...(v.insecure === true ? { insecure: true } : {}) };
  const logger = v.verbose === true ? pino({ level: 'debug' }, pino.destination(2)) : undefined;
  const ua = new UserAgent({ aor, server: { host, port, transport }, ...(password ? { password } : {}), ...(transport === 'tls' ? { tls } : {}), ...(logger ? { logger } : {}) });
  await ua.start();
  return ua;
}

/** `host`, `host:port`, `[v6]:port`. */
export function parseServer(text: string | undefined, defaultPort: number): { host: string; port: number } {
  if (!text) return { host: '127.0.0.1', port: defaultPort };
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(text) ?? /^([^:]+)(?::(\d+))?$/.exec(text);
  if (!m) throw new UsageError(`--server "${text}" is not HOST or HOST:PORT`);
  const port = m[2] !== undefined ? Number(m[2]) : defaultPort;
  if (!(port > 0 && port < 65536)) throw new UsageError(`--server "${text}": bad port`);
  return { host: m[1]!, port };
}

function expiresOf(v: Record<string, string | boolean | string[] | undefined>): number | undefined {
  if (typeof v.expires !== 'string') return undefined;
  if (!/^\d+$/.test(v.expires)) throw new UsageError(`--expires must be seconds, not "${v.expires}"`);
  return Number(v.expires);
}

/**
 * The first request of a command: ends early on Ctrl-C, and over UDP says so when the
 * server is slow to answer (a server that is not there is silent for 32 s).
 */
async function firstAnswer<T>(ua: UserAgent, io: CommandIo, pending: Promise<T>): Promise<T> {
  const notice = ua.destination.protocol === 'udp'
    ? setTimeout(() => io.err(`no answer from ${ua.serverName} yet; trying until 32 s have passed (Ctrl-C to stop)`), io.noAnswerNoticeMs ?? NO_ANSWER_NOTICE_MS)
    : undefined;
  try {
    return await Promise.race([pending, aborted(io.signal).then((): never => { throw new StoppedError('stopped'); })]);
  } finally {
    clearTimeout(notice);
  }
}

function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

/**
 * Waits for Ctrl-C, keeping the process alive meanwhile: when the TCP connection drops,
 * nothing else holds Node's event loop (our timers are unref'd), and the command would
 * end silently instead of registering or subscribing again.
 */
async function stopped(signal: AbortSignal): Promise<void> {
  const hold = setInterval(() => {}, 2 ** 30);
  try {
    await aborted(signal);
  } finally {
    clearInterval(hold);
  }
}

async function message(ua: UserAgent, positionals: string[], io: CommandIo): Promise<number> {
  const [to, ...words] = positionals;
  if (!to || words.length === 0) throw new UsageError(`usage: simple-presence message --user ME TO "text"`);
  const res = await firstAnswer(ua, io, new Pager(ua).send(to, words.join(' ')));
  io.out(res.stored ? `accepted for later delivery: ${ua.resolveTarget(to)} is offline (${res.status} ${res.reason})` : `delivered to ${ua.resolveTarget(to)} (${res.status} ${res.reason})`);
  return 0;
}

/** Room commands that answer with a line of text from the room (a MESSAGE to us). */
const ROOM_ANSWERS = new Set(['members', 'topic']);
/** How long `room members` waits for the room's answer. */
const ROOM_ANSWER_MS = 5000;

/**
 * `room VERB ROOM [ARG]`: the room's #commands (the way a phone sends them) or a message
 * to it. Commands whose answer is text (members, a topic asked for) register for a moment
 * so that the room's answer reaches us, print it, and unregister.
 */
async function room(ua: UserAgent, positionals: string[], persistent: boolean, io: CommandIo): Promise<number> {
  const [verb, name, ...words] = positionals;
  const verbs = ['create', 'join', 'leave', 'members', 'destroy', 'say', 'topic', 'ban', 'unban'];
  if (!verb || !verbs.includes(verb) || !name) throw new UsageError(`usage: simple-presence room ${verbs.join('|')} --user ME ROOM [TEXT]`);
  if ((verb === 'say' || verb === 'ban' || verb === 'unban') && words.length === 0) throw new UsageError(`usage: simple-presence room ${verb} --user ME ROOM ${verb === 'say' ? 'TEXT' : 'USER'}`);
  const target = ua.resolveTarget(name);
  const pager = new Pager(ua);
  const text = verb === 'say' ? words.join(' ') : `#${verb}${verb === 'create' && persistent ? ' persistent' : ''}${words.length > 0 ? ` ${words.join(' ')}` : ''}`;
  const wantsAnswer = ROOM_ANSWERS.has(verb) && words.length === 0;
  let reg: Registration | undefined;
  try {
    let answer: Promise<string> | undefined;
    if (wantsAnswer) {
      reg = new Registration(ua, { expires: 60 });
      await firstAnswer(ua, io, reg.register());
      answer = new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no answer from ${target} within ${ROOM_ANSWER_MS / 1000} s`)), ROOM_ANSWER_MS);
        pager.on('message', (m) => {
          if (m.from !== target) return;
          clearTimeout(timer);
          resolve(m.text);
        });
      });
    }
    const res = await firstAnswer(ua, io, pager.send(target, text));
    io.out(answer ? await answer : `${target}: ${res.status} ${res.reason}`);
    return 0;
  } finally {
    await reg?.unregister().catch(() => undefined);
  }
}

async function listen(ua: UserAgent, v: Record<string, string | boolean | string[] | undefined>, io: CommandIo): Promise<number> {
  const pager = new Pager(ua);
  pager.on('message', (m) => io.out(`[${m.receivedAt.toISOString()}] ${m.fromName ? `${m.fromName} <${m.from}>` : m.from}: ${m.text}`));
  const reg = new Registration(ua, { expires: expiresOf(v) ?? 600 });
  reg.on('error', (err) => io.err(`simple-presence listen: ${err.message}; retrying`));
  reg.on('flowFailed', (ms) => io.err(`connection to ${ua.serverName} lost; registering again${ms > 0 ? ` in ${Math.round(ms / 1000)} s` : ''}`));
  const granted = await firstAnswer(ua, io, reg.register());
  io.out(`registered ${ua.aor} at ${ua.serverName} for ${granted} s; waiting for messages (Ctrl-C to stop)`);
  await stopped(io.signal);
  await reg.unregister().catch(() => undefined);
  return 0;
}

async function publish(ua: UserAgent, v: Record<string, string | boolean | string[] | undefined>, io: CommandIo): Promise<number> {
  const base = stateFromStatus(typeof v.status === 'string' ? v.status : 'online', typeof v.note === 'string' ? v.note : undefined);
  const activities = [...(base.activities ?? []), ...(Array.isArray(v.activity) ? v.activity : [])];
  const state = { ...base, ...(activities.length > 0 ? { activities } : {}), ...(typeof v.pidf === 'string' ? { pidf: v.pidf } : {}) };
  const pua = new PresenceUserAgent(ua, { expires: expiresOf(v) ?? 3600 });
  pua.on('error', (err) => io.err(`simple-presence publish: refresh failed: ${err.message}; retrying`));
  const pub = await firstAnswer(ua, io, pua.publish(state));
  const what = [state.basic, ...(state.activities ?? [])].join(', ') + (state.note ? `, "${state.note}"` : '');
  io.out(`published ${ua.aor} (${what}) at ${ua.serverName} for ${pub.expires} s, refreshed every ${Math.round(refreshDelayMs(pub.expires) / 1000)} s; Ctrl-C to stop`);
  await stopped(io.signal);
  await pua.close().catch(() => undefined);
  io.out('unpublished');
  return 0;
}

interface Row {
  who: string;
  status: string;
  note: string;
  since: Date;
}

async function watch(ua: UserAgent, targets: string[], watchers: boolean, io: CommandIo, list?: string): Promise<number> {
  if (targets.length === 0 && !watchers && list === undefined) throw new UsageError('usage: simple-presence watch --user ME WHO [WHO ...] [--watchers] [--list NAME|RLS]');
  const wua = new WatcherUserAgent(ua);
  const rows = new Map<string, Row>();
  let closing = false;
  const draw = (changed: Row): void => {
    if (!io.tty) {
      io.out(`${changed.since.toISOString()}  ${changed.who}  ${changed.status}${changed.note ? `  "${changed.note}"` : ''}`);
      return;
    }
    const all = [...rows.values()];
    const w = Math.max(4, ...all.map((r) => r.who.length));
    const lines = [`${'WHO'.padEnd(w)}  ${'STATUS'.padEnd(22)}  ${'SINCE'.padEnd(8)}  NOTE`];
    for (const r of all) lines.push(`${r.who.padEnd(w)}  ${r.status.padEnd(22)}  ${r.since.toTimeString().slice(0, 8)}  ${r.note}`);
    io.out(`\x1b[H\x1b[2J${lines.join('\n')}`);
  };
  wua.on('presence', (u: PresenceUpdate) => {
    if (closing) return; // the final NOTIFYs after Ctrl-C: nothing to show
    const row = { who: u.presentity.replace(/^sips?:/, ''), status: statusText(u), note: u.summary?.note ?? '', since: u.receivedAt };
    const old = rows.get(row.who);
    if (old && old.status === row.status && old.note === row.note) return;
    rows.set(row.who, row);
    draw(row);
  });
  wua.on('watchers', (doc) => {
    for (const list of doc.watcherLists) {
      for (const w of list.watchers) io.out(`watcher ${w.uri}: ${w.status} (${w.event})`);
    }
  });
  wua.on('status', (target, status, reason) => {
    if (status === 'terminated' && reason && !closing) io.err(`subscription to ${target} ended: ${reason}`);
  });
  wua.on('error', (err, target) => io.err(`simple-presence watch ${target}: ${err.message}`));
  ua.on('connectionLost', () => {
    if (!closing) io.err(`connection to ${ua.serverName} lost; refreshing the subscriptions on a new one`);
  });
  // One refused target (unknown user, blocked) does not stop the others; a wrong password or
  // an absent server stops the command, since every other target would fail the same way.
  let watching = 0;
  // --list: one list subscription, stored (no WHO) or carried in the SUBSCRIBE (the WHOs) to the RLS.
  const all =
    list !== undefined
      ? [() => wua.watchList(list, targets.length > 0 ? targets : undefined), ...(watchers ? [() => wua.watchWatchers()] : [])]
      : [...targets.map((t) => () => wua.watch(t)), ...(watchers ? [() => wua.watchWatchers()] : [])];
  for (const start of all) {
    try {
      await firstAnswer(ua, io, start());
      watching++;
    } catch (err) {
      if (!(err instanceof SipRequestError) || [401, 407, 408, 503].includes(err.status) || all.length === 1) throw err;
      io.err(`simple-presence watch: ${err.message}`);
    }
  }
  if (watching === 0) return 1;
  await stopped(io.signal);
  closing = true;
  await wua.close().catch(() => undefined);
  return 0;
}

/**
 * `watch --event dialog|message-summary|reg`: one line per NOTIFY, `TIME  WHO  EVENT  SUMMARY`;
 * the user's own address when no target is named (message-summary and reg are only one's own).
 */
async function watchEvent(ua: UserAgent, event: string, targets: string[], io: CommandIo): Promise<number> {
  if (!(STATE_EVENTS as readonly string[]).includes(event)) throw new UsageError(`--event must be presence, ${STATE_EVENTS.join(', ')}`);
  const wua = new WatcherUserAgent(ua);
  let closing = false;
  wua.on('state', (u) => {
    if (closing) return;
    io.out(`${u.receivedAt.toISOString()}  ${u.target.replace(/^sips?:/, '')}  ${u.event}  ${u.status === 'pending' ? 'pending authorization' : u.summary}`);
  });
  wua.on('status', (target, status, reason) => {
    if (status === 'terminated' && reason && !closing) io.err(`subscription to ${target} ended: ${reason}`);
  });
  wua.on('error', (err, target) => io.err(`simple-presence watch ${target}: ${err.message}`));
  const all = targets.length === 0 ? [undefined] : targets;
  for (const t of all) await firstAnswer(ua, io, wua.watchEvent(event as StateEvent, t));
  await stopped(io.signal);
  closing = true;
  await wua.close().catch(() => undefined);
  return 0;
}

/** `open (away)`, `closed`, `pending` or `unknown` for a watch table. */
function statusText(u: PresenceUpdate): string {
  if (u.status === 'pending') return 'pending authorization';
  if (u.status === 'terminated') return 'not watched';
  const s = u.summary;
  if (!s || s.basic === undefined) return s?.activities.length ? s.activities.join(', ') : 'unknown';
  return s.activities.length ? `${s.basic} (${s.activities.join(', ')})` : s.basic;
}

/** The CLI entry: a client command with the process's streams, ended by SIGINT or SIGTERM. */
export function clientCommand(command: ClientCommand, args: string[]): Promise<number> {
  const abort = new AbortController();
  const stop = (): void => {
    if (abort.signal.aborted) process.exit(1); // a second signal: leave now
    abort.abort();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  return runClientCommand(command, args, {
    out: (line) => console.log(line),
    err: (line) => console.error(line),
    signal: abort.signal,
    tty: process.stdout.isTTY === true,
  });
}
