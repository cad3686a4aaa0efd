import { readdirSync, readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';

/**
 * Descriptors kept back from connections: the store's files and database connections, NATS,
 * the control socket, admin HTTP requests, log files.
 */
export const RESERVED_FILES = 100;

/** The process's open-file limit (RLIMIT_NOFILE) and the descriptors it holds now. */
export interface OpenFiles {
  readonly soft: number;
  readonly hard: number;
  readonly inUse: number;
}

/**
 * Read from /proc (Linux); undefined where the system does not tell. Node.js raises its soft
 * limit to the hard one as it starts, so `soft` is already the most this process can have;
 * only the hard limit (`ulimit -Hn`, systemd `LimitNOFILE=`) can give more.
 */
export function openFiles(proc = '/proc/self'): OpenFiles | undefined {
  try {
    const line = readFileSync(`${proc}/limits`, 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const m = line && /^Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/.exec(line);
    if (!m) return undefined;
    const n = (s: string): number => (s === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(s));
    return { soft: n(m[1]!), hard: n(m[2]!), inUse: readdirSync(`${proc}/fd`).length };
  } catch {
    return undefined;
  }
}

/** Connections (one descriptor each) the limit leaves room for. */
export function connectionRoom(files: OpenFiles): number {
  return Math.max(0, files.soft - files.inUse - RESERVED_FILES);
}

/**
 * Says at start-up how many connections the open-file limit allows, and caps
 * limits.maxConnections there when it asks for more: past the limit, accepting fails
 * (EMFILE) and so does every file and database connection the server opens, where a
 * connection refused at the cap costs nothing else.
 */
export function fitConnectionsToOpenFiles(config: Config, log: Logger, files = openFiles()): Config {
  const asked = config.limits.maxConnections;
  if (!files) {
    log.info({ maxConnections: asked }, `open-file limit unknown on this system; limits.maxConnections ${asked}`);
    return config;
  }
  const room = connectionRoom(files);
  const fields = { openFiles: files.soft, openFilesHard: files.hard, filesInUse: files.inUse, reserved: RESERVED_FILES, connectionRoom: room };
  if (asked <= room) {
    log.info({ ...fields, maxConnections: asked }, `open-file limit ${files.soft}: room for ${room} connections; limits.maxConnections ${asked} caps them`);
    return config;
  }
  log.warn(
    { ...fields, maxConnections: room, configuredMaxConnections: asked },
    `open-file limit ${files.soft} caps connections at ${room}, below limits.maxConnections ${asked}: raise the limit (ulimit -n, systemd LimitNOFILE=) or lower limits.maxConnections`,
  );
  return { ...config, limits: { ...config.limits, maxConnections: room } };
}
