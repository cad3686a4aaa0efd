#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, loadConfig, packageRoot, type Json } from '../config/config.js';
import { SimplePresenceServer } from '../server.js';
import { createLogger } from '../util/logger.js';
import { DB_USAGE, dbCommand } from './db-commands.js';
import { ADMIN_USAGE, adminCommand } from './admin-commands.js';
import { STATUS_USAGE, statusCommand } from './status-command.js';
import { CLIENT_USAGE, clientCommand, isClientCommand } from './client-commands.js';
import { notifySystemd } from './systemd-notify.js';
import { fitConnectionsToOpenFiles } from './open-files.js';
import { superviseWorkers, workerCount, workerPlace } from './workers.js';

const USAGE = `simple-presence: a SIMPLE presence and instant-messaging server

Usage:
  simple-presence serve [--config FILE] [--log-level LEVEL] [--workers N|auto]
                                                              run the server (--workers: N processes
                                                              sharing the ports; needs a cluster)
${DB_USAGE}
${ADMIN_USAGE}
${STATUS_USAGE}
${CLIENT_USAGE}
  simple-presence version                                     print the version
  simple-presence help                                        this text

Environment: SIP_HOST, SIP_PORT, SIP_TLS_PORT, HTTP_PORT, SIP_DOMAIN, DATABASE_URL, DATA_DIR, LOG_LEVEL, AUTH_REQUIRED, ADMIN_TOKEN,
NATS_URL, NODE_NAME, WORKERS
(they override config/default.json and --config).`;

function version(): string {
  const pkg = JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

/** Time a stop may take beyond the drain: closing listeners and the final store flush. */
const STOP_GRACE_MS = 10_000;

async function serve(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { config: { type: 'string', short: 'c' }, 'log-level': { type: 'string' }, workers: { type: 'string', short: 'w' } },
    strict: true,
  });
  const overrides: Record<string, Json> = values['log-level'] ? { log: { level: values['log-level'] } } : {};
  if (values.workers !== undefined) {
    const w = values.workers.trim();
    if (w !== 'auto' && !/^\d+$/.test(w)) throw new ConfigError(`--workers ${values.workers}: a number or "auto"`);
    overrides.cluster = { workers: w === 'auto' ? 'auto' : Number(w) };
  }
  const config = loadConfig({ file: values.config, overrides });
  // Coloured text for a person at a terminal; JSON lines when piped (or LOG_FORMAT=json).
  const log = createLogger(config.log.level, undefined, { pretty: process.stdout.isTTY === true && process.env.LOG_FORMAT !== 'json' });
  const worker = workerPlace();
  const count = workerCount(config.cluster.workers);
  if (!worker && count > 1) return superviseWorkers(config, count, log);
  const serverLog = worker ? log.child({ worker: worker.index }) : log;
  const server = await SimplePresenceServer.create(fitConnectionsToOpenFiles(config, serverLog), {
    logger: serverLog,
    ...(worker ? { worker, ...(worker.index === 1 ? {} : { controlSocket: false as const }) } : {}),
  });
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) {
      log.warn({ signal }, 'second signal, exiting now');
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, 'stopping');
    notifySystemd('stopping', `stopping on ${signal}`).catch((err: unknown) => log.warn({ err }, 'could not tell systemd'));
    // A stop that hangs (a database that never answers the final flush) still ends.
    const bound = config.sip.drainTimeoutMs + STOP_GRACE_MS;
    setTimeout(() => {
      log.error({ boundMs: bound }, 'stop took too long, exiting');
      process.exit(1);
    }, bound).unref();
    server.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'error while stopping');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  // A worker whose supervisor is gone stops too (no one would restart or stop it).
  if (worker) process.on('disconnect', () => stop('disconnect'));
  try {
    const listeners = await server.start();
    process.send?.({ listening: true, listeners: listeners.map((l) => `${l.protocol}:${l.host}:${l.port}`) });
  } catch (err) {
    log.fatal({ err }, `cannot start: ${(err as Error).message}`);
    await server.stop().catch(() => {});
    return 1;
  }
  // Type=notify units: ready once every listener is up and the saved state is back.
  const status = `listening on ${server.listeners.map((l) => `${l.protocol}:${l.port}`).join(' ')}`;
  notifySystemd('ready', status).catch((err: unknown) => log.warn({ err }, 'could not tell systemd that the server is ready'));
  return new Promise<number>(() => {}); // runs until a signal
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve':
      return serve(rest);
    case 'db':
      return dbCommand(rest);
    case 'user':
    case 'rules':
    case 'lists':
      return adminCommand(command, rest);
    case 'status':
      return statusCommand(rest);
    case 'publish':
    case 'watch':
    case 'message':
    case 'listen':
    case 'room':
      return isClientCommand(command) ? clientCommand(command, rest) : 2;
    case 'version':
    case '--version':
      console.log(version());
      return 0;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      console.log(USAGE);
      return 0;
    default:
      console.error(`simple-presence: unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof ConfigError) console.error(`simple-presence: ${err.message}`);
    else if (err instanceof Error && 'code' in err && String(err.code).startsWith('ERR_PARSE_ARGS')) console.error(`simple-presence: ${err.message}\n\n${USAGE}`);
    else console.error(err);
    process.exit(2);
  },
);
