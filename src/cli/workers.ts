import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import { freeUdpTcpPort } from '../transport/transport-layer.js';
import { notifySystemd } from './systemd-notify.js';

/** The environment variable that makes a `serve` process worker N of M (`N/M`). */
export const WORKER_ENV = 'SIMPLE_PRESENCE_WORKER';

/** Settings taken from the environment (config.ts envOverrides): a worker reads them from its file instead. */
const CONFIG_ENV = ['SIP_HOST', 'SIP_PORT', 'SIP_TLS_PORT', 'HTTP_PORT', 'SIP_DOMAIN', 'DATABASE_URL', 'DATA_DIR', 'LOG_LEVEL', 'ADMIN_TOKEN', 'AUTH_REQUIRED', 'NATS_URL', 'NODE_NAME', 'WORKERS'];

/** A worker that dies sooner than this after its start waits longer before the next (backoff). */
const HEALTHY_AFTER_MS = 10_000;
const MAX_RESTART_DELAY_MS = 30_000;
/**
 * A worker that has not said it listens by then is killed and started again. Two workers
 * joining a fresh cluster at once have hung at start, seldom (1 start in 8 to 14 of
 * test/cluster/workers.test.ts), with no error: the supervisor must not wait on it for ever.
 */
const START_TIMEOUT_MS = 20_000;

/** How many workers `--workers`/cluster.workers asks for (`auto`: one per core). */
export function workerCount(value: number | 'auto'): number {
  return value === 'auto' ? Math.max(1, os.availableParallelism()) : value;
}

/** This process's place among the workers, when the supervisor started it as one. */
export function workerPlace(env: NodeJS.ProcessEnv = process.env): { index: number; count: number } | undefined {
  const m = /^(\d+)\/(\d+)$/.exec(env[WORKER_ENV] ?? '');
  return m ? { index: Number(m[1]), count: Number(m[2]) } : undefined;
}

/**
 * What each of `count` workers runs with: one process of the cluster each (workers: 1). With
 * several, a PUBLISH's PIDF is parsed in line unless presence.parseThread says otherwise: the
 * other cores run the other workers, and a hop to a thread and back costs more CPU than the
 * parse (docs/cluster.md, "Scaling").
 */
export function workerConfig(config: Config, count: number): Config {
  const parseThread = config.presence.parseThread ?? count === 1;
  return { ...config, cluster: { ...config.cluster, workers: 1 }, presence: { ...config.presence, parseThread } };
}

interface Worker {
  readonly index: number;
  child?: ChildProcess;
  startedAt: number;
  delayMs: number;
  listening: boolean;
}

/**
 * `serve --workers N` (DESIGN: "Past one machine"): N processes on this machine, each a
 * full node of the cluster, all binding the same UDP/TCP/TLS/WebSocket ports with
 * SO_REUSEPORT so the kernel spreads clients over them and keeps one client's datagrams on
 * one worker. This process only watches them: a worker that dies is started again (its
 * place in the kernel's spread changes, and its clients' dialogs end with it: they
 * subscribe and register again); SIGTERM or SIGINT stops them all.
 */
export async function superviseWorkers(config: Config, count: number, log: Logger): Promise<number> {
  if (!config.cluster.natsUrl || !config.store.url) {
    log.fatal('--workers needs a cluster: set NATS_URL (cluster.natsUrl) and DATABASE_URL (store.url); see docs/cluster.md');
    return 1;
  }
  const resolved = await resolvePorts(config);
  const dir = mkdtempSync(join(os.tmpdir(), 'simple-presence-workers-'));
  const file = join(dir, 'config.json');
  // Holds the database URL and admin token: readable by us only, gone when we stop.
  writeFileSync(file, JSON.stringify(workerConfig(resolved, count)), { mode: 0o600 });
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of CONFIG_ENV) delete env[k];
  // systemd hears from this process only (the unit's main one), once every worker listens.
  delete env.NOTIFY_SOCKET;

  const workers: Worker[] = Array.from({ length: count }, (_, i) => ({ index: i + 1, startedAt: 0, delayMs: 1000, listening: false }));
  let stopping = false;
  let announced = false;

  const start = (w: Worker): void => {
    w.startedAt = Date.now();
    w.listening = false;
    const child = fork(process.argv[1]!, ['serve', '--config', file], {
      env: { ...env, [WORKER_ENV]: `${w.index}/${count}` },
      execArgv: process.execArgv,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    w.child = child;
    const startBound = setTimeout(() => {
      if (stopping || w.listening || w.child !== child) return;
      log.error({ worker: w.index, pid: child.pid, afterMs: START_TIMEOUT_MS }, 'worker not listening in time; killing it to start it again');
      child.kill('SIGKILL');
    }, START_TIMEOUT_MS);
    startBound.unref();
    child.on('message', (m: unknown) => {
      if ((m as { listening?: boolean }).listening !== true) return;
      w.listening = true;
      clearTimeout(startBound);
      if (!announced && workers.every((x) => x.listening)) {
        announced = true;
        const listeners = (m as { listeners?: string[] }).listeners ?? [];
        log.info({ workers: count, listeners, pid: process.pid }, 'simple-presence listening');
        notifySystemd('ready', `${count} workers listening on ${listeners.join(' ')}`).catch((err: unknown) => log.warn({ err }, 'could not tell systemd that the server is ready'));
      }
    });
    child.on('exit', (code, signal) => {
      w.child = undefined;
      if (stopping) return;
      // A worker that keeps dying at start waits longer each time.
      w.delayMs = Date.now() - w.startedAt < HEALTHY_AFTER_MS ? Math.min(w.delayMs * 2, MAX_RESTART_DELAY_MS) : 1000;
      log.error({ worker: w.index, code, signal, restartInMs: w.delayMs }, 'worker died; starting it again');
      setTimeout(() => {
        if (!stopping) start(w);
      }, w.delayMs).unref();
    });
  };
  for (const w of workers) start(w);

  return new Promise<number>((resolve) => {
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) return;
      stopping = true;
      log.info({ signal, workers: count }, 'stopping workers');
      notifySystemd('stopping', `stopping on ${signal}`).catch((err: unknown) => log.warn({ err }, 'could not tell systemd'));
      const alive = workers.filter((w) => w.child);
      if (alive.length === 0) finish();
      let left = alive.length;
      for (const w of alive) {
        w.child!.once('exit', () => {
          if (--left === 0) finish();
        });
        w.child!.kill('SIGTERM');
      }
      // Workers bound their own stop; this bounds ours should one hang anyway.
      setTimeout(() => {
        for (const w of workers) w.child?.kill('SIGKILL');
        finish();
      }, config.sip.drainTimeoutMs + 15_000).unref();
    };
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      rmSync(dir, { recursive: true, force: true });
      log.info('simple-presence workers stopped');
      resolve(0);
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });
}

/** Port 0 means "any free port": the workers must share one, so it is chosen here, once. */
async function resolvePorts(config: Config): Promise<Config> {
  const host = config.sip.hosts[0] ?? '0.0.0.0';
  const sipPort = config.sip.port === 0 ? await freeUdpTcpPort(host) : config.sip.port;
  const tlsPort = config.tls.port === 0 ? await freeTcpPort(host) : config.tls.port;
  const httpPort = config.http.port === 0 ? await freeTcpPort(config.http.host) : config.http.port;
  const wssPort = config.websocket.wssPort === 0 ? await freeTcpPort(config.http.host) : config.websocket.wssPort;
  return {
    ...config,
    sip: { ...config.sip, port: sipPort },
    tls: { ...config.tls, port: tlsPort },
    http: { ...config.http, port: httpPort },
    websocket: { ...config.websocket, wssPort },
  };
}

async function freeTcpPort(host: string): Promise<number> {
  const server = net.createServer();
  const port = await new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port: 0 }, () => resolve((server.address() as net.AddressInfo).port));
  });
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}
