import { parseArgs } from 'node:util';
import { loadConfig } from '../config/config.js';

export const STATUS_USAGE = `  simple-presence status [--url URL] [--token TOKEN] [--json] [--config FILE]
                                                              what a running server holds (admin API)`;

/** How long the CLI waits for each answer of the admin API. */
const TIMEOUT_MS = 5000;

interface StatusJson {
  domain: string;
  uptimeSeconds: number;
  listeners: Array<{ protocol: string; host: string; port: number }>;
  connections: Record<string, number>;
  registrations: { bindings: number; aors: number };
  publications: number;
  presentities: number;
  subscriptions: Record<string, number>;
  transactions: { server: number; client: number; refused: number };
  store: ({ driver: string; pending: number; inFlight: number; flushes: number; lastFlushMs?: number; failures: number } & Record<string, unknown>) | null;
  /** Absent from servers older than the cluster. */
  cluster?: ClusterJson | null;
}

interface ClusterJson {
  node: string;
  nats: { state: string; downForMs: number; server?: string };
  nodes: Array<{
    name: string;
    host: string;
    pid: number;
    worker?: number;
    workers?: number;
    updatedAtMs: number;
    load: { cpu: number; rssBytes: number; subscriptions: number; registrations: number; followed: number; connections: number; requestsPerSecond: number };
  }>;
  stats: { kvWrites: number; kvConflicts: number; relayed: number; relayedHere: number };
}

interface PresentityJson {
  presentity: string;
  publications: number;
  watchers: number;
}

interface RegistrationJson {
  aor: string;
  contact: string;
  expires: number;
  transport: string;
}

interface StoredJson {
  user: string;
  count: number;
  bytes: number;
}

/** Everything `status` shows, read from the admin API. */
export interface ServerStatus {
  readonly status: StatusJson;
  readonly presentities: PresentityJson[];
  readonly registrations: RegistrationJson[];
  readonly messages: StoredJson[];
}

export class StatusError extends Error {
  override name = 'StatusError';
}

/** Reads a running server's state through its admin API (Authorization: Bearer). */
export async function fetchStatus(baseUrl: string, token: string, limit = 50): Promise<ServerStatus> {
  const get = async <T>(path: string): Promise<T> => {
    let res: Response;
    try {
      res = await fetch(new URL(path, baseUrl), { headers: { Authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(TIMEOUT_MS) });
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
      throw new StatusError(`cannot reach the server at ${baseUrl}: ${cause}`);
    }
    const text = await res.text();
    if (!res.ok) {
      let message = text.trim();
      try {
        message = (JSON.parse(text) as { error?: string }).error ?? message;
      } catch {
        // not JSON: show the text as it came
      }
      throw new StatusError(`${path}: ${res.status} ${message}`);
    }
    return JSON.parse(text) as T;
  };
  const [status, presentities, registrations, messages] = await Promise.all([
    get<StatusJson>('/api/status'),
    get<PresentityJson[]>(`/api/presentities?limit=${limit}`),
    get<RegistrationJson[]>(`/api/registrations?limit=${limit}`),
    get<StoredJson[]>(`/api/messages?limit=${limit}`),
  ]);
  return { status, presentities, registrations, messages };
}

function table(rows: string[][]): string {
  if (rows.length === 0) return '';
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => '  ' + r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n');
}

function duration(s: number): string {
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  return d > 0 ? `${d}d ${h}h ${m}m` : h > 0 ? `${h}h ${m}m` : `${m}m ${s % 60}s`;
}

/** The human-readable report. */
export function formatStatus(s: ServerStatus): string {
  const st = s.status;
  const subs = Object.entries(st.subscriptions);
  const lines = [
    `domain         ${st.domain}`,
    `up             ${duration(st.uptimeSeconds)}`,
    `listening      ${st.listeners.map((l) => `${l.protocol}:${l.host.includes(':') ? `[${l.host}]` : l.host}:${l.port}`).join(' ')}`,
    `connections    ${Object.entries(st.connections).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}`,
    `registrations  ${st.registrations.bindings} contacts of ${st.registrations.aors} users`,
    `presence       ${st.publications} publications of ${st.presentities} presentities; subscriptions ${subs.length > 0 ? subs.map(([k, v]) => `${k} ${v}`).join(', ') : 'none'}`,
    `transactions   ${st.transactions.server} server, ${st.transactions.client} client, ${st.transactions.refused} refused (overload)`,
    `store          ${st.store ? `${st.store.driver}, ${st.store.pending + st.store.inFlight} writes queued, ${st.store.flushes} flushes${st.store.lastFlushMs !== undefined ? ` (last ${st.store.lastFlushMs.toFixed(1)} ms)` : ''}, ${st.store.failures} failed` : 'none (state in memory)'}`,
  ];
  const c = st.cluster;
  if (c) {
    const workers = new Map<string, number>();
    for (const n of c.nodes) workers.set(n.host, (workers.get(n.host) ?? 0) + 1);
    lines.push(
      `cluster        node ${c.node}; NATS ${c.nats.state}${c.nats.state === 'connected' ? '' : ` for ${Math.round(c.nats.downForMs / 1000)}s`}; ${c.nodes.length} nodes on ${workers.size} machines (${[...workers].map(([h, n]) => `${h}: ${n}`).join(', ')})`,
      `               this node: ${c.stats.kvWrites} bucket writes (${c.stats.kvConflicts} lost a race), ${c.stats.relayed} MESSAGE branches relayed out, ${c.stats.relayedHere} in`,
      '',
      'nodes',
      table([
        ['NODE', 'HOST', 'PID', 'WORKER', 'CPU', 'RSS MB', 'REQ/S', 'SUBSCRIPTIONS', 'REGISTRATIONS', 'CONNECTIONS'],
        ...c.nodes.map((n) => [
          n.name,
          n.host,
          String(n.pid),
          n.worker !== undefined ? `${n.worker}/${n.workers}` : '-',
          `${Math.round(n.load.cpu * 100)}%`,
          String(Math.round(n.load.rssBytes / 1048576)),
          String(n.load.requestsPerSecond),
          String(n.load.subscriptions),
          String(n.load.registrations),
          String(n.load.connections),
        ]),
      ]),
    );
  }
  if (s.presentities.length > 0) {
    lines.push('', 'presentities', table([['PRESENTITY', 'PUBLICATIONS', 'WATCHERS'], ...s.presentities.map((p) => [p.presentity, String(p.publications), String(p.watchers)])]));
  }
  if (s.registrations.length > 0) {
    lines.push('', 'registrations', table([['AOR', 'CONTACT', 'TRANSPORT', 'EXPIRES'], ...s.registrations.map((r) => [r.aor, r.contact, r.transport, `${r.expires}s`])]));
  }
  if (s.messages.length > 0) {
    lines.push('', 'stored messages', table([['USER', 'MESSAGES', 'BYTES'], ...s.messages.map((m) => [m.user, String(m.count), String(m.bytes)])]));
  }
  return lines.join('\n');
}

/** `simple-presence status`: the URL and token default to the config (http.port, admin.token / ADMIN_TOKEN). */
export async function statusCommand(args: string[], out: (line: string) => void = console.log, err: (line: string) => void = console.error): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { url: { type: 'string' }, token: { type: 'string' }, json: { type: 'boolean' }, config: { type: 'string', short: 'c' }, limit: { type: 'string' } },
    strict: true,
  });
  const config = loadConfig({ file: values.config });
  const token = values.token ?? config.admin?.token ?? null;
  if (!token) {
    err('simple-presence status: no admin token: set admin.token in the config or ADMIN_TOKEN, or pass --token');
    return 2;
  }
  const host = ['0.0.0.0', '::', ''].includes(config.http.host) ? '127.0.0.1' : config.http.host;
  const url = values.url ?? `http://${host.includes(':') ? `[${host}]` : host}:${config.http.port}`;
  const limit = values.limit !== undefined ? Number(values.limit) : 50;
  if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) {
    err('simple-presence status: --limit must be a whole number from 1 to 10000');
    return 2;
  }
  try {
    const status = await fetchStatus(url, token, limit);
    out(values.json ? JSON.stringify(status, null, 2) : formatStatus(status));
    return 0;
  } catch (e) {
    if (e instanceof StatusError) {
      err(`simple-presence status: ${e.message}`);
      return 1;
    }
    throw e;
  }
}
