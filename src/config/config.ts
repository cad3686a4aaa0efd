import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Ajv, ValidateFunction } from 'ajv';

/** The merged, validated configuration (config/default.json, then --config FILE, then environment). */
export interface Config {
  sip: {
    hosts: string[];
    port: number;
    transports: Array<'udp' | 'tcp' | 'tls'>;
    domain: string;
    advertisedHost: string | null;
    timers: { t1: number; t2: number; t4: number };
    maxTransactions: number;
    /** Graceful stop: how long to wait for transactions in flight. */
    drainTimeoutMs: number;
  };
  tls: { port: number; cert: string | null; key: string | null };
  limits: {
    maxMessageSize: number;
    maxConnections: number;
    idleTimeoutMs: number;
    maxWriteBacklog: number;
    connectTimeoutMs: number;
    maxConnectionsPerSource: number;
    messageTimeoutMs: number;
    maxHeaders: number;
    maxVias: number;
    maxUriLength: number;
    maxBodySize: Record<string, number>;
    rate: { requestsPerSecond: number; burst: number };
  };
  auth: {
    required: boolean;
    realm: string | null;
    /** RFC 8760: digest algorithms challenged with, preferred first. */
    algorithms: Array<'SHA-256' | 'MD5'>;
    /** User-Agent substrings of clients challenged with MD5 only (they fail on any other algorithm). */
    md5OnlyUserAgents: string[];
    nonceLifetimeSeconds: number;
    /** Failed digests of one user from one address before that pair is blocked. */
    maxFailuresPerSourceUser: number;
    /** Distinct users failing from one address before the whole address is blocked (password spraying). */
    maxFailedUsersPerSource: number;
    maxFailuresPerUser: number;
    failureWindowSeconds: number;
    blockSeconds: number;
    defaultPolicy: 'allow' | 'block' | 'polite-block' | 'confirm';
  };
  presence: {
    publishMinExpires: number;
    publishMaxExpires: number;
    subscribeMinExpires: number;
    subscribeMaxExpires: number;
    defaultPolicy: 'open' | 'confirm';
    notifyMinIntervalMs: number;
    maxPublicationsPerPresentity: number;
    maxSubscriptionsPerWatcher: number;
    maxDocumentBytes: number;
    /** User part of the resource list server's address for request-contained lists (RFC 5367): sip:<rlsUser>@<domain>. */
    rlsUser?: string;
    /** Most members (entries and nested lists) of one resource list (RFC 4662); a larger list is refused with 413. */
    maxListMembers?: number;
    /** PIDF documents of PUBLISHes parsed on a worker thread (another core), not the SIP thread. */
    parseThread?: boolean;
  };
  registrar: { minExpires: number; maxExpires: number; defaultExpires: number; maxContactsPerAor: number };
  messaging: {
    maxUdpMessageSize: number;
    offlineMaxMessages: number;
    offlineMaxBytes: number;
    offlineTtlSeconds: number;
    /** Chat rooms (issue 22): messages kept per room, members per room, rooms a user may own. */
    rooms: { historySize: number; maxMembers: number; maxRoomsPerUser: number; maxRooms: number; maxMessagesPerMinute: number };
    /** The MESSAGE URI-list service (RFC 5365) at sip:<user>@<domain>. */
    uriList: { user: string; maxRecipients: number };
  };
  http: { host: string; port: number };
  /** The HTTP admin API: off while `token` is null (ADMIN_TOKEN sets it). */
  admin: { token: string | null };
  /** XCAP (RFC 4825) on the HTTP port under `root` (src/xcap/). */
  xcap: { enabled: boolean; root: string; maxDocumentBytes: number; maxDepth: number };
  /** SIP over WebSocket (RFC 7118): ws on the http port, wss on wssPort when tls.cert/key are set. */
  websocket: { allowedOrigins: string[]; wssPort: number | null; pingIntervalMs: number };
  /** Overload control (core/overload-control.ts): past capacity, 503 with Retry-After at once rather than late answers. */
  overload: {
    enabled: boolean;
    /** Standing receive delay (ms) the control holds the server to; above it, new work is refused. */
    targetDelayMs: number;
    /** How often the share of refused requests is adjusted (ms): the window the delay is read over. */
    intervalMs: number;
    /** How often the receive-delay probe runs (ms). */
    probeIntervalMs: number;
    /** Retry-After of the 503 (seconds): each answer carries a random value from this to twice this. */
    retryAfterSeconds: number;
  };
  store: { enabled: boolean; url: string | null; dataDir: string; flushWindowMs: number };
  log: { level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent' };
  /** Several processes and machines as one service (docs/cluster.md): on when natsUrl is set. */
  cluster: {
    natsUrl: string | null;
    nodeName: string | null;
    /** Processes on this machine sharing the ports (SO_REUSEPORT); `auto`: one per core. */
    workers: number | 'auto';
    replicas: number;
    requestTimeoutMs: number;
    connectTimeoutMs: number;
  };
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** The package root: the folder holding package.json, from src/ (tsx) or dist/src/ (built). */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    try {
      readFileSync(join(dir, 'package.json'));
      return dir;
    } catch {
      dir = dirname(dir);
    }
  }
  throw new Error('package root not found');
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function isObject(v: unknown): v is Record<string, Json> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Deep merge: objects merge key by key, everything else (arrays too) replaces. */
export function merge(base: Json, over: Json): Json {
  if (!isObject(base) || !isObject(over)) return over;
  const out: Record<string, Json> = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = k in base ? merge(base[k]!, v) : v;
  return out;
}

function readJson(path: string): Json {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(`cannot read config file ${path}: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text) as Json;
  } catch (e) {
    throw new ConfigError(`config file ${path} is not valid JSON: ${(e as Error).message}`);
  }
}

function intFromEnv(name: string, value: string): number {
  if (!/^\d+$/.test(value.trim())) throw new ConfigError(`environment ${name}=${value} is not a whole number`);
  return Number(value);
}

/** Environment variables for the common settings (names operators and scripts rely on). */
export function envOverrides(env: NodeJS.ProcessEnv): Json {
  const o: Record<string, Record<string, Json>> = {};
  const set = (section: string, key: string, value: Json): void => {
    (o[section] ??= {})[key] = value;
  };
  if (env.SIP_HOST) set('sip', 'hosts', env.SIP_HOST.split(',').map((h) => h.trim()).filter(Boolean));
  if (env.SIP_PORT) set('sip', 'port', intFromEnv('SIP_PORT', env.SIP_PORT));
  if (env.SIP_DOMAIN) set('sip', 'domain', env.SIP_DOMAIN);
  if (env.SIP_TLS_PORT) set('tls', 'port', intFromEnv('SIP_TLS_PORT', env.SIP_TLS_PORT));
  if (env.HTTP_PORT) set('http', 'port', intFromEnv('HTTP_PORT', env.HTTP_PORT));
  if (env.ADMIN_TOKEN) set('admin', 'token', env.ADMIN_TOKEN);
  if (env.DATABASE_URL) set('store', 'url', env.DATABASE_URL);
  if (env.DATA_DIR) set('store', 'dataDir', env.DATA_DIR);
  if (env.LOG_LEVEL) set('log', 'level', env.LOG_LEVEL);
  if (env.NATS_URL) set('cluster', 'natsUrl', env.NATS_URL);
  if (env.NODE_NAME) set('cluster', 'nodeName', env.NODE_NAME);
  if (env.WORKERS) set('cluster', 'workers', env.WORKERS.trim() === 'auto' ? 'auto' : intFromEnv('WORKERS', env.WORKERS));
  if (env.AUTH_REQUIRED) {
    const v = env.AUTH_REQUIRED.trim().toLowerCase();
    if (v !== 'true' && v !== 'false') throw new ConfigError(`environment AUTH_REQUIRED=${env.AUTH_REQUIRED} is not true or false`);
    set('auth', 'required', v === 'true');
  }
  return o;
}

let validator: ValidateFunction | undefined;

/** The validator the build wrote as code (write-config-validator.ts), beside this module. */
export const CONFIG_VALIDATOR_FILE = 'config-validator.cjs';

export function configSchemaText(): string {
  return readFileSync(join(packageRoot(), 'schemas', 'config.schema.json'), 'utf8');
}

export function schemaHash(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** The built validator while it matches the schema file; else the schema compiled here (sources, an edited schema). */
function configValidator(): ValidateFunction {
  const text = configSchemaText();
  try {
    const built = createRequire(import.meta.url)(`./${CONFIG_VALIDATOR_FILE}`) as ValidateFunction & { schemaHash?: string };
    if (built.schemaHash === schemaHash(text)) return built;
  } catch {
    // Not built (tests run the sources): compiled below.
  }
  return new (loadAjv())({ allErrors: true, strict: true }).compile(JSON.parse(text) as Record<string, unknown>);
}

/** Ajv (CommonJS, some sixty modules), loaded where a schema is first compiled rather than at every start. */
export function loadAjv(): typeof Ajv {
  return (createRequire(import.meta.url)('ajv') as { Ajv: typeof Ajv }).Ajv;
}

/** Validates against schemas/config.schema.json; the error names the bad key. */
export function validateConfig(candidate: Json): Config {
  validator ??= configValidator();
  if (!validator(candidate)) {
    const msgs = (validator.errors ?? []).map((e) => {
      const path = e.instancePath.replace(/^\//, '').replace(/\//g, '.');
      if (e.keyword === 'additionalProperties') {
        const extra = (e.params as { additionalProperty: string }).additionalProperty;
        return `unknown key "${path ? path + '.' : ''}${extra}"`;
      }
      return `"${path || '(root)'}" ${e.message ?? 'is invalid'}`;
    });
    throw new ConfigError(`invalid configuration: ${msgs.join('; ')}`);
  }
  const config = candidate as unknown as Config;
  // The schema requires only sip, limits and log: the other sections may be absent here
  // (loadConfig always has them from config/default.json).
  const p = config.presence as Config['presence'] | undefined;
  if (p && p.publishMinExpires > p.publishMaxExpires) throw new ConfigError('invalid configuration: "presence.publishMinExpires" is above publishMaxExpires');
  if (p && p.subscribeMinExpires > p.subscribeMaxExpires) throw new ConfigError('invalid configuration: "presence.subscribeMinExpires" is above subscribeMaxExpires');
  const c = config.cluster as Config['cluster'] | undefined;
  if (c?.natsUrl && config.store && (!config.store.url || !config.store.enabled)) {
    throw new ConfigError('invalid configuration: "cluster.natsUrl" needs "store.url" (DATABASE_URL): the nodes share accounts, rules and stored messages in PostgreSQL');
  }
  const r = config.registrar as Config['registrar'] | undefined;
  if (r && r.minExpires > r.maxExpires) throw new ConfigError('invalid configuration: "registrar.minExpires" is above maxExpires');
  return config;
}

export interface LoadOptions {
  /** Extra file given with --config. */
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** Last layer, for tests and CLI flags. */
  overrides?: Json;
}

/**
 * Keys renamed since an earlier version: a config file that still sets the old one keeps
 * working (its value goes to the new key) and is told so once, on stderr.
 */
const RENAMED_KEYS: ReadonlyArray<readonly [section: string, old: string, now: string]> = [
  // Lock-outs now count per (source, user) first (docs/security.md).
  ['auth', 'maxFailuresPerSource', 'maxFailuresPerSourceUser'],
];

/** `layer` with renamed keys under their new names (a new key set beside the old one wins). */
export function renameOldKeys(layer: Json, where: string): Json {
  if (!isObject(layer)) return layer;
  let out = layer;
  for (const [section, old, now] of RENAMED_KEYS) {
    const s = out[section];
    if (!isObject(s) || !(old in s)) continue;
    const { [old]: value, ...rest } = s;
    out = { ...out, [section]: now in rest ? rest : { ...rest, [now]: value! } };
    process.emitWarning(`${where}: "${section}.${old}" is now "${section}.${now}"; the old name is read for now`, 'DeprecationWarning');
  }
  return out;
}

export function loadConfig(opts: LoadOptions = {}): Config {
  let merged = readJson(join(packageRoot(), 'config', 'default.json'));
  if (opts.file) merged = merge(merged, renameOldKeys(readJson(opts.file), opts.file));
  merged = merge(merged, envOverrides(opts.env ?? process.env));
  if (opts.overrides) merged = merge(merged, opts.overrides);
  return validateConfig(merged);
}

export type { Json };
