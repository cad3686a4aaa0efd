/**
 * Held connections (issue 21): N idle connections, TCP, TLS and WebSocket mixed, from many
 * loopback source addresses, each registered and subscribed, held on one server (or
 * `serve --workers W` sharing the ports), while the SIP latency of other traffic (OPTIONS and
 * REGISTER over UDP) is measured before and during the hold. Prints and returns: connections
 * held per transport, server memory (RSS and PSS summed over its processes, after a full
 * garbage collection) before and after, bytes per connection, keep-alives answered,
 * set-up time.
 *
 *   node dist/bench/connections.js --connections 100000 --workers 6
 *   node dist/bench/connections.js --connections 3000 --transports tls     (one transport's share)
 *
 * --workers > 1 needs a cluster: a nats-server of its own (JetStream, fresh directory) and a
 * PostgreSQL schema of its own (DATABASE_URL, or postgres://postgres@127.0.0.1:5432/postgres),
 * both gone at the end. With one worker the server runs alone with its store off.
 */
import { execFileSync, fork, spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { emptyCounts, type ClientCounts, type ClientTask, type HeldTransport } from './connection-client.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const FROM_SOURCE = import.meta.url.endsWith('.ts');
const ROOT = FROM_SOURCE ? join(HERE, '..') : join(HERE, '..', '..');
const HOST = '127.0.0.1';
const TRANSPORTS: readonly HeldTransport[] = ['tcp', 'tls', 'ws'];
/** What a Ctrl-C must not leave behind: the server (its workers stop with it), the nats-server and schema, the clients. */
const leftovers = new Set<() => void>();

export interface ConnectionsOptions {
  readonly connections: number;
  readonly workers: number;
  readonly transports: readonly HeldTransport[];
  /** Client processes (each under the per-process open-file limit). */
  readonly clients?: number;
  readonly perSource?: number;
  /** Seconds the connections are held after the memory reading (latency, keep-alives). */
  readonly holdSeconds?: number;
  readonly keepAliveMs?: number;
  /** WebSocket pings from the server (websocket.pingIntervalMs). */
  readonly serverPingMs?: number;
  /** Latency probes a second (UDP OPTIONS and REGISTER, alternating). */
  readonly probeRate?: number;
  readonly probeSeconds?: number;
  readonly concurrency?: number;
  readonly log?: (line: string) => void;
}

export interface Latency {
  readonly sent: number;
  readonly answered: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

export interface ConnectionsReport {
  readonly connections: number;
  readonly workers: number;
  readonly transports: readonly HeldTransport[];
  readonly counts: ClientCounts;
  readonly held: Record<HeldTransport, number>;
  readonly heldTotal: number;
  readonly setupSeconds: number;
  readonly memory: {
    /** A fresh server; after the warm-up connections; with all held. */
    readonly fresh: Memory;
    readonly before: Memory;
    readonly after: Memory;
    /** Connections held between `before` and `after`: the bytes each are the growth over them. */
    readonly measuredOver: number;
    readonly rssBytesEach: number;
    readonly pssBytesEach: number;
    readonly heapBytesEach: number;
    readonly heapTotalBytesEach: number;
    readonly externalBytesEach: number;
  };
  readonly latency: { readonly before: Latency; readonly during: Latency };
  readonly load: string;
}

interface Memory {
  readonly rssKb: number;
  readonly pssKb: number;
  readonly pids: number[];
  /** The JS heap in use and the memory outside it that V8 knows of (Buffers): one server process only. */
  readonly heapUsedKb?: number;
  /** The heap V8 has taken from the system (used or not). */
  readonly heapTotalKb?: number;
  readonly externalKb?: number;
}

function sum(rows: Array<Record<HeldTransport, number>>): Record<HeldTransport, number> {
  const out = { tcp: 0, tls: 0, ws: 0 };
  for (const r of rows) for (const t of TRANSPORTS) out[t] += r[t];
  return out;
}

function addCounts(all: ClientCounts[]): ClientCounts {
  const out = emptyCounts();
  for (const key of ['opened', 'registered', 'subscribed', 'notified', 'failed', 'closedWhileHeld', 'keepAlivesSent', 'keepAlivesAnswered'] as const) {
    out[key] = sum(all.map((c) => c[key]));
  }
  out.serverPings = all.reduce((a, c) => a + c.serverPings, 0);
  out.retried = all.reduce((a, c) => a + c.retried, 0);
  out.firstErrors = all.flatMap((c) => c.firstErrors).slice(0, 10);
  return out;
}

function smaps(pid: number, field: 'Rss' | 'Pss'): number {
  try {
    const line = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8')
      .split('\n')
      .find((l) => l.startsWith(`${field}:`));
    return line ? Number(line.split(/\s+/)[1]) : 0;
  } catch {
    return 0;
  }
}

function children(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function freeTcpPort(): Promise<number> {
  const s = net.createServer();
  const port = await new Promise<number>((r) => s.listen(0, HOST, () => r((s.address() as net.AddressInfo).port)));
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function freeUdpTcpPort(): Promise<number> {
  for (;;) {
    const port = await freeTcpPort();
    const u = dgram.createSocket('udp4');
    const ok = await new Promise<boolean>((r) => {
      u.once('error', () => r(false));
      u.bind(port, HOST, () => r(true));
    });
    u.close();
    if (ok) return port;
  }
}

function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/**
 * OPTIONS and REGISTER over UDP at `rate` a second for `seconds`, from 8 sockets (so that
 * SO_REUSEPORT spreads them over the workers): round-trip p50 and p99.
 */
async function probe(port: number, domain: string, rate: number, seconds: number): Promise<Latency> {
  const sockets = await Promise.all(
    Array.from({ length: 8 }, async () => {
      const s = dgram.createSocket('udp4');
      await new Promise<void>((r) => s.bind(0, HOST, () => r()));
      return s;
    }),
  );
  const sentAt = new Map<string, number>();
  const rtts: number[] = [];
  for (const s of sockets) {
    s.on('message', (m) => {
      const text = m.toString('latin1');
      if (!text.startsWith('SIP/2.0 ')) return;
      const id = /\r\nCall-ID:\s*(\S+)/i.exec(text)?.[1];
      const t = id ? sentAt.get(id) : undefined;
      if (t === undefined || Number(text.slice(8, 11)) < 200) return;
      sentAt.delete(id!);
      rtts.push(performance.now() - t);
    });
  }
  const total = Math.max(1, Math.round(rate * seconds));
  for (let k = 0; k < total; k++) {
    const s = sockets[k % sockets.length]!;
    const lport = s.address().port;
    const method = k % 2 === 0 ? 'OPTIONS' : 'REGISTER';
    const user = `probe${k % 64}`;
    const id = `probe-${k}-${Date.now()}`;
    const msg = [
      `${method} sip:${domain} SIP/2.0`,
      `Via: SIP/2.0/UDP ${HOST}:${lport};rport;branch=z9hG4bKprobe${k}x${Date.now()}`,
      'Max-Forwards: 70',
      `From: <sip:${user}@${domain}>;tag=p${k}`,
      `To: <sip:${user}@${domain}>`,
      `Call-ID: ${id}`,
      `CSeq: ${k + 1} ${method}`,
      `Contact: <sip:${user}@${HOST}:${lport}>`,
      ...(method === 'REGISTER' ? ['Expires: 300'] : []),
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n');
    sentAt.set(id, performance.now());
    s.send(msg, port, HOST);
    await sleep(1000 / rate);
  }
  // Answers still on their way: up to 2 s (a lost one counts as unanswered).
  for (let k = 0; k < 20 && sentAt.size > 0; k++) await sleep(100);
  for (const s of sockets) s.close();
  rtts.sort((a, b) => a - b);
  return { sent: total, answered: rtts.length, p50Ms: round(percentile(rtts, 0.5), 2), p99Ms: round(percentile(rtts, 0.99), 2) };
}

const round = (x: number, digits = 0): number => Math.round(x * 10 ** digits) / 10 ** digits;

interface Cluster {
  readonly env: Record<string, string>;
  stop(): void;
}

/** A nats-server and a PostgreSQL schema of the run's own (serve --workers needs a cluster). */
async function startCluster(dir: string): Promise<Cluster> {
  const natsPort = await freeTcpPort();
  const nats = spawn(process.env.NATS_SERVER ?? 'nats-server', ['-js', '-sd', join(dir, 'nats'), '-a', HOST, '-p', String(natsPort)], { stdio: 'ignore' });
  const url = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
  const schema = `sp_bench_held_${process.pid}_${Date.now() % 1e8}`;
  execFileSync('psql', [url, '-v', 'ON_ERROR_STOP=1', '-qc', `CREATE SCHEMA ${schema}`]);
  for (let k = 0; k < 50; k++) {
    const up = await new Promise<boolean>((r) => {
      const c = net.connect(natsPort, HOST, () => {
        c.destroy();
        r(true);
      });
      c.on('error', () => r(false));
    });
    if (up) break;
    await sleep(100);
  }
  const db = `${url}${url.includes('?') ? '&' : '?'}options=${encodeURIComponent(`-c search_path=${schema}`)}`;
  const stop = (): void => {
    leftovers.delete(stop);
    nats.kill('SIGTERM');
    try {
      execFileSync('psql', [url, '-v', 'ON_ERROR_STOP=1', '-qc', `DROP SCHEMA IF EXISTS ${schema} CASCADE`], { stdio: 'ignore' });
    } catch {
      /* left for the next run to see */
    }
  };
  leftovers.add(stop);
  return { env: { NATS_URL: `nats://${HOST}:${natsPort}`, DATABASE_URL: db, NODE_NAME: 'held' }, stop };
}

interface Server {
  readonly proc: ChildProcess;
  readonly ports: Record<HeldTransport, number>;
  readonly udpPort: number;
  /** The processes that serve: the process itself, or its workers. */
  pids(): number[];
  stop(): Promise<void>;
}

async function startServer(dir: string, o: Required<Omit<ConnectionsOptions, 'log' | 'clients'>>, say: (l: string) => void): Promise<Server> {
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=localhost', '-days', '1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
  const sip = await freeUdpTcpPort();
  const ports = { tcp: sip, tls: await freeTcpPort(), ws: await freeTcpPort() };
  const base = JSON.parse(readFileSync(join(ROOT, 'bench', 'server-config.json'), 'utf8')) as Record<string, Record<string, unknown>>;
  // Each process holds its share: connections spread over the workers, with room for the spread.
  const perWorker = Math.min(19_000, Math.ceil((o.connections / o.workers) * 1.2) + 1000);
  const config = {
    ...base,
    sip: { ...base.sip, hosts: [HOST], port: sip, transports: ['udp', 'tcp', 'tls'] },
    tls: { port: ports.tls, cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') },
    http: { host: HOST, port: ports.ws },
    websocket: { wssPort: null, pingIntervalMs: o.serverPingMs },
    limits: { ...base.limits, maxConnections: perWorker },
    ...(o.workers > 1 ? {} : { store: { enabled: false } }),
    log: { level: 'info' },
  };
  const file = join(dir, 'server.json');
  writeFileSync(file, JSON.stringify(config));
  const cluster = o.workers > 1 ? await startCluster(dir) : undefined;
  const gc = pathToFileURL(join(ROOT, 'bench', 'gc-on-signal.mjs')).href;
  const entry = FROM_SOURCE ? ['--import', 'tsx', join(ROOT, 'src', 'cli', 'main.ts')] : [join(ROOT, 'dist', 'src', 'cli', 'entry.js')];
  const env: NodeJS.ProcessEnv = { ...process.env, AUTH_REQUIRED: 'false', LOG_FORMAT: 'json', WORKERS: String(o.workers), DATA_DIR: join(dir, 'data'), ...(cluster?.env ?? {}) };
  if (!cluster) delete env.DATABASE_URL;
  // The schema migrated once, before the workers start: workers that each migrate a fresh
  // schema at the same moment were seen to leave one waiting for good.
  else execFileSync(process.execPath, [...entry, 'db', 'migrate'], { cwd: ROOT, env, stdio: 'ignore' });
  // BENCH_NODE_FLAGS (as for run-bench.py): e.g. --heapsnapshot-signal=SIGUSR1 to see what a connection holds.
  // The V8 options of production (config/node-flags, as bin/simple-presence gives them), then BENCH_NODE_FLAGS.
  const flags = `${readFileSync(join(ROOT, 'config', 'node-flags'), 'utf8')} ${process.env.BENCH_NODE_FLAGS ?? ''}`.split(/\s+/).filter(Boolean);
  const proc = spawn(process.execPath, ['--expose-gc', `--import=${gc}`, ...flags, ...entry, 'serve', '--config', file], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const killServer = (): void => void proc.kill('SIGTERM');
  leftovers.add(killServer);
  proc.once('exit', () => leftovers.delete(killServer));
  const logLines: string[] = [];
  let listening = false;
  let tail = '';
  const onData = (chunk: Buffer): void => {
    tail += chunk.toString();
    let nl;
    while ((nl = tail.indexOf('\n')) >= 0) {
      const line = tail.slice(0, nl);
      tail = tail.slice(nl + 1);
      if (logLines.length < 200) logLines.push(line);
      if (line.includes('"simple-presence listening"')) listening = true;
      if (line.includes('open-file limit') && (o.workers === 1 || line.includes('"worker":1,'))) say(`# server: ${(JSON.parse(line) as { msg: string }).msg}`);
      if (/"level":(50|60)/.test(line)) say(`# server: ${line}`);
    }
  };
  proc.stdout!.on('data', onData);
  proc.stderr!.on('data', onData);
  // Up to 10 minutes: a cluster of workers on a busy machine takes its time.
  for (let k = 0; k < 6000 && !listening; k++) {
    if (proc.exitCode !== null) break;
    await sleep(100);
  }
  if (!listening) {
    proc.kill('SIGKILL');
    cluster?.stop();
    throw new Error(`server did not start:\n${logLines.join('\n')}`);
  }
  const pids = (): number[] => (o.workers > 1 ? [proc.pid!, ...children(proc.pid!)] : [proc.pid!]);
  return {
    proc,
    ports,
    udpPort: sip,
    pids,
    stop: async () => {
      const exited = new Promise<void>((r) => (proc.exitCode !== null ? r() : proc.once('exit', () => r())));
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(t);
      cluster?.stop();
    },
  };
}

async function memory(server: Server): Promise<Memory> {
  const pids = server.pids();
  // A full collection in each (bench/gc-on-signal.mjs), so garbage is not counted as held.
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGUSR2');
    } catch {
      /* gone */
    }
  }
  await sleep(500);
  const heap = pids.length === 1 ? await heapFigures(server.ports.ws) : {};
  return { rssKb: pids.reduce((a, p) => a + smaps(p, 'Rss'), 0), pssKb: pids.reduce((a, p) => a + smaps(p, 'Pss'), 0), pids, ...heap };
}

/** nodejs_heap_size_used_bytes and nodejs_external_memory_bytes from the server's /metrics. */
async function heapFigures(httpPort: number): Promise<{ heapUsedKb?: number; heapTotalKb?: number; externalKb?: number }> {
  try {
    const text = await (await fetch(`http://${HOST}:${httpPort}/metrics`)).text();
    const read = (name: string): number | undefined => {
      const m = new RegExp(`^${name} (\\S+)`, 'm').exec(text);
      return m ? Math.round(Number(m[1]) / 1024) : undefined;
    };
    // Where the heap V8 took lies (new, old, large objects...): size / used, MB.
    const spaces = [...text.matchAll(/^nodejs_heap_space_size_(total|used)_bytes\{space="(\w+)"\} (\S+)/gm)];
    const bySpace = new Map<string, { total: number; used: number }>();
    for (const [, kind, space, v] of spaces) {
      const e = bySpace.get(space!) ?? { total: 0, used: 0 };
      e[kind as 'total' | 'used'] = Number(v) / 1048576;
      bySpace.set(space!, e);
    }
    if (bySpace.size > 0) console.log(`# heap spaces (MB taken / used): ${[...bySpace].filter(([, e]) => e.total >= 1).map(([n, e]) => `${n} ${e.total.toFixed(1)}/${e.used.toFixed(1)}`).join(', ')}`);
    return { heapUsedKb: read('nodejs_heap_size_used_bytes'), heapTotalKb: read('nodejs_heap_size_total_bytes'), externalKb: read('nodejs_external_memory_bytes') };
  } catch {
    return {};
  }
}

export async function runConnections(options: ConnectionsOptions): Promise<ConnectionsReport> {
  const say = options.log ?? ((l: string) => console.log(l));
  const o = {
    connections: options.connections,
    workers: options.workers,
    transports: options.transports,
    perSource: options.perSource ?? 90,
    holdSeconds: options.holdSeconds ?? 30,
    keepAliveMs: options.keepAliveMs ?? 15_000,
    serverPingMs: options.serverPingMs ?? 30_000,
    probeRate: options.probeRate ?? 100,
    probeSeconds: options.probeSeconds ?? 10,
    concurrency: options.concurrency ?? 100,
  };
  const dir = mkdtempSync(join(os.tmpdir(), 'sp-held-'));
  const server = await startServer(dir, o, say);
  const procs: ChildProcess[] = [];
  const counts: ClientCounts[] = [];
  const clientEntry = join(HERE, FROM_SOURCE ? 'connection-client.ts' : 'connection-client.js');
  /** Connections [first, first + count) over client processes of at most 15,000 each (the open-file limit here is 20,000). */
  const launch = (first: number, count: number): Array<Promise<void>> => {
    const clients = Math.max(1, Math.ceil(count / (options.clients ? Math.ceil(o.connections / options.clients) : 15_000)));
    // Each process starts on a source-address boundary: no address is shared by two.
    const per = Math.ceil(count / clients / o.perSource) * o.perSource;
    const ready: Array<Promise<void>> = [];
    for (let from = first; from < first + count; from += per) {
      const task: ClientTask = {
        host: HOST,
        ports: server.ports,
        domain: 'localhost',
        first: from,
        count: Math.min(per, first + count - from),
        total: o.connections,
        transports: o.transports,
        perSource: o.perSource,
        concurrency: o.concurrency,
        keepAliveMs: o.keepAliveMs,
        setupTimeoutMs: 120_000,
      };
      const c = counts.length;
      counts.push(emptyCounts());
      const child = fork(clientEntry, [], { env: { ...process.env, HELD_CONNECTIONS_CLIENT: '1' }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      const killClient = (): void => void child.kill('SIGKILL');
      leftovers.add(killClient);
      child.once('exit', () => leftovers.delete(killClient));
      procs.push(child);
      ready.push(
        new Promise<void>((resolve, reject) => {
          child.on('message', (m: { counts: ClientCounts; ready?: boolean }) => {
            counts[c] = m.counts;
            if (m.ready) resolve();
          });
          child.once('exit', (code) => reject(new Error(`client ${c} exited (${code})`)));
        }),
      );
      child.send(task);
    }
    return ready;
  };
  const heldNow = (c: ClientCounts): Record<HeldTransport, number> => {
    const h = { tcp: 0, tls: 0, ws: 0 };
    for (const t of TRANSPORTS) h[t] = Math.min(c.subscribed[t], c.notified[t]) - c.closedWhileHeld[t];
    return h;
  };
  const total = (h: Record<HeldTransport, number>): number => TRANSPORTS.reduce((a, t) => a + h[t], 0);
  const mb = (m: Memory): string => `RSS ${round(m.rssKb / 1024, 1)} MB, PSS ${round(m.pssKb / 1024, 1)} MB${m.heapUsedKb !== undefined ? `, JS heap ${round(m.heapUsedKb / 1024, 1)} MB` : ''}`;
  try {
    say(`# server up (${o.workers} worker${o.workers > 1 ? 's' : ''}, pids ${server.pids().join(' ')}); latency before: ${o.probeSeconds} s of UDP OPTIONS/REGISTER at ${o.probeRate}/s`);
    // A first probe warms the server up (code compiled, cluster connections made), unmeasured.
    await probe(server.udpPort, 'localhost', o.probeRate, Math.min(2, o.probeSeconds));
    const before = await probe(server.udpPort, 'localhost', o.probeRate, o.probeSeconds);
    const memFresh = await memory(server);
    say(`# before: p50 ${before.p50Ms} ms, p99 ${before.p99Ms} ms (${before.answered}/${before.sent}); server ${mb(memFresh)}`);

    const t0 = performance.now();
    const progress = setInterval(() => {
      const all = addCounts(counts);
      const held = sum([all.notified]);
      say(`# ${round((performance.now() - t0) / 1000)} s: opened ${TRANSPORTS.map((t) => all.opened[t]).join('/')}, held ${TRANSPORTS.map((t) => held[t]).join('/')} (tcp/tls/ws), failed ${TRANSPORTS.map((t) => all.failed[t]).join('/')}, 503 retried ${all.retried}`);
    }, options.connections >= 5000 ? 10_000 : 2000);
    // A first tenth (warm-up): the heap's young generation, code and pools grow to their size
    // under this load once; memory read after it leaves only what each connection adds.
    const warm = Math.min(o.connections - 1, Math.max(o.perSource, Math.round(o.connections / 10 / o.perSource) * o.perSource));
    let memBefore: Memory;
    let warmHeld: number;
    try {
      await Promise.all(launch(0, warm));
      await sleep(1000);
      warmHeld = total(heldNow(addCounts(counts)));
      memBefore = await memory(server);
      say(`# warm-up: ${warmHeld} held; server ${mb(memBefore)}`);
      await Promise.all(launch(warm, o.connections - warm));
    } finally {
      clearInterval(progress);
    }
    const setupSeconds = round((performance.now() - t0) / 1000, 1);
    let all = addCounts(counts);
    say(`# set-up done in ${setupSeconds} s; failed ${TRANSPORTS.map((t) => all.failed[t]).join('/')}${all.firstErrors.length ? `; first errors: ${all.firstErrors.slice(0, 3).join('; ')}` : ''}`);
    // Other traffic is timed first, then memory read: the reading's full collections (several
    // seconds of CPU with 15,000 connections a worker on a busy machine) are the bench's, not the hold's.
    await sleep(1000);
    say(`# held ${total(heldNow(addCounts(counts)))}; latency during the hold (${o.probeSeconds} s)`);
    const during = await probe(server.udpPort, 'localhost', o.probeRate, o.probeSeconds);
    const memAfter = await memory(server);
    const heldAtReading = total(heldNow(addCounts(counts)));
    say(`# held ${heldAtReading}: server ${mb(memAfter)}`);
    const rest = Math.max(0, o.holdSeconds - o.probeSeconds - 2);
    if (rest > 0) await sleep(rest * 1000);
    for (const p of procs) p.send('report');
    await sleep(500);
    all = addCounts(counts);
    const held = heldNow(all);
    const heldTotal = total(held);
    const added = heldAtReading - warmHeld;
    const each = (kb: (m: Memory) => number | undefined): number =>
      added > 0 && kb(memAfter) !== undefined ? Math.round(((kb(memAfter)! - kb(memBefore)!) * 1024) / added) : NaN;
    return {
      connections: o.connections,
      workers: o.workers,
      transports: o.transports,
      counts: all,
      held,
      heldTotal,
      setupSeconds,
      memory: {
        fresh: memFresh,
        before: memBefore,
        after: memAfter,
        measuredOver: added,
        rssBytesEach: each((m) => m.rssKb),
        pssBytesEach: each((m) => m.pssKb),
        heapBytesEach: each((m) => m.heapUsedKb),
        heapTotalBytesEach: each((m) => m.heapTotalKb),
        externalBytesEach: each((m) => m.externalKb),
      },
      latency: { before, during },
      load: os.loadavg().map((x) => x.toFixed(2)).join(' '),
    };
  } finally {
    await Promise.all(
      procs.map(
        (p) =>
          new Promise<void>((r) => {
            if (p.exitCode !== null || !p.connected) return r();
            const t = setTimeout(() => {
              p.kill('SIGKILL');
              r();
            }, 10_000);
            p.once('exit', () => {
              clearTimeout(t);
              r();
            });
            p.send('stop');
          }),
      ),
    );
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export function summary(r: ConnectionsReport): string {
  const c = r.counts;
  return [
    `held ${r.heldTotal} of ${r.connections} (tcp ${r.held.tcp}, tls ${r.held.tls}, ws ${r.held.ws}) on ${r.workers} worker(s), set up in ${r.setupSeconds} s`,
    `server memory (fresh / after warm-up / all held): RSS ${[r.memory.fresh, r.memory.before, r.memory.after].map((m) => round(m.rssKb / 1024, 1)).join(' / ')} MB, PSS ${[r.memory.fresh, r.memory.before, r.memory.after].map((m) => round(m.pssKb / 1024, 1)).join(' / ')} MB`,
    `a connection adds (over the last ${r.memory.measuredOver}): ${r.memory.rssBytesEach} B RSS, ${r.memory.pssBytesEach} B PSS${Number.isNaN(r.memory.heapBytesEach) ? '' : `, of which JS heap ${r.memory.heapBytesEach} B (taken from the system: ${r.memory.heapTotalBytesEach} B) and Buffers ${r.memory.externalBytesEach} B`}`,
    `keep-alives answered: ${TRANSPORTS.map((t) => `${t} ${c.keepAlivesAnswered[t]}/${c.keepAlivesSent[t]}`).join(', ')}; server WebSocket pings ${c.serverPings}; closed while held ${TRANSPORTS.map((t) => c.closedWhileHeld[t]).join('/')}`,
    `UDP OPTIONS/REGISTER latency: before p50 ${r.latency.before.p50Ms} ms p99 ${r.latency.before.p99Ms} ms (${r.latency.before.answered}/${r.latency.before.sent}); while held p50 ${r.latency.during.p50Ms} ms p99 ${r.latency.during.p99Ms} ms (${r.latency.during.answered}/${r.latency.during.sent})`,
    `load average at the end: ${r.load}`,
  ].join('\n');
}

async function main(): Promise<void> {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      for (const f of [...leftovers].reverse()) f();
      process.exit(130);
    });
  }
  const { values } = parseArgs({
    options: {
      connections: { type: 'string', default: '3000' },
      workers: { type: 'string', default: '1' },
      transports: { type: 'string', default: 'tcp,tls,ws' },
      clients: { type: 'string' },
      'per-source': { type: 'string' },
      hold: { type: 'string' },
      'keepalive-ms': { type: 'string' },
      'probe-rate': { type: 'string' },
      'probe-seconds': { type: 'string' },
      concurrency: { type: 'string' },
      json: { type: 'string' },
    },
    strict: true,
  });
  const num = (v: string | undefined): number | undefined => (v === undefined ? undefined : Number(v));
  const transports = values.transports.split(',').map((t) => t.trim()) as HeldTransport[];
  for (const t of transports) if (!TRANSPORTS.includes(t)) throw new Error(`--transports: ${t} is not one of ${TRANSPORTS.join(', ')}`);
  const r = await runConnections({
    connections: Number(values.connections),
    workers: Number(values.workers),
    transports,
    clients: num(values.clients),
    perSource: num(values['per-source']),
    holdSeconds: num(values.hold),
    keepAliveMs: num(values['keepalive-ms']),
    probeRate: num(values['probe-rate']),
    probeSeconds: num(values['probe-seconds']),
    concurrency: num(values.concurrency),
  });
  console.log(summary(r));
  if (values.json) writeFileSync(values.json, JSON.stringify(r, null, 2));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
