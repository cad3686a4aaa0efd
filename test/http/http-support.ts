import type { SimplePresenceServer } from '../../src/server.js';

export const TOKEN = 'test-admin-token-0123456789';

/** The base URL of the server's HTTP side (the listener the WebSocket transport reports as ws). */
export function httpBase(server: SimplePresenceServer): string {
  const l = server.listeners.find((x) => x.protocol === 'ws');
  if (!l) throw new Error('no http listener');
  return `http://${l.host.includes(':') ? `[${l.host}]` : l.host}:${l.port}`;
}

export interface ApiAnswer {
  status: number;
  headers: Headers;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
}

/** One HTTP request; the JSON body parsed when there is one. */
export async function call(
  base: string,
  method: string,
  path: string,
  opts: { token?: string | null; body?: unknown; rawBody?: string; contentType?: string; headers?: Record<string, string> } = {},
): Promise<ApiAnswer> {
  const headers: Record<string, string> = { ...opts.headers };
  const token = opts.token === undefined ? TOKEN : opts.token;
  if (token !== null) headers.Authorization = `Bearer ${token}`;
  let body: string | undefined;
  if (opts.body !== undefined) {
    body = JSON.stringify(opts.body);
    headers['Content-Type'] = opts.contentType ?? 'application/json';
  } else if (opts.rawBody !== undefined) {
    body = opts.rawBody;
    headers['Content-Type'] = opts.contentType ?? 'application/json';
  }
  const res = await fetch(base + path, { method, headers, body });
  const text = await res.text();
  let json: unknown;
  if ((res.headers.get('content-type') ?? '').startsWith('application/json')) json = JSON.parse(text);
  return { status: res.status, headers: res.headers, text, json };
}

/** An Authorization header for HTTP basic authentication (the /api/me endpoints). */
export function basic(user: string, password: string): Record<string, string> {
  return { Authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` };
}
