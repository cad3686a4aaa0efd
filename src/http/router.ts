import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { SchemaValidators } from './schemas.js';

/** An error a handler throws to answer with a status and a JSON message. */
export class HttpError extends Error {
  override name = 'HttpError';
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
  }
}

/** What a handler answers: JSON (`json`), or raw bytes with their type. */
export interface RouteResult {
  readonly status?: number;
  readonly json?: unknown;
  readonly body?: Buffer | string;
  readonly contentType?: string;
  readonly headers?: Readonly<Record<string, string>>;
}

export interface RouteContext {
  readonly req: IncomingMessage;
  readonly url: URL;
  /** Path parameters (`:name`), percent-decoded. */
  readonly params: Readonly<Record<string, string>>;
  readonly log: Logger;
  /** Reads the JSON body and validates it against schemas/http/<schema>.schema.json; 4xx otherwise. */
  body<T>(schema: string): Promise<T>;
}

export type RouteHandler = (ctx: RouteContext) => RouteResult | undefined | Promise<RouteResult | undefined>;

interface Route {
  readonly method: string;
  readonly parts: readonly string[];
  readonly handler: RouteHandler;
}

export interface RouterOptions {
  readonly logger: Logger;
  /** Largest request body read (bytes); bigger gets 413. */
  readonly maxBodyBytes?: number;
  readonly schemas?: SchemaValidators;
}

const DEFAULT_MAX_BODY = 64 * 1024;

/**
 * A small router over node:http: `GET /api/users/:user` style patterns, JSON in and out,
 * bodies bounded and validated against a JSON schema, every error a JSON `{ error }` with
 * its status. Nothing a client sends makes it throw past `handle`.
 */
export class Router {
  private readonly routes: Route[] = [];
  private readonly log: Logger;
  private readonly maxBody: number;
  private readonly schemas: SchemaValidators;

  constructor(options: RouterOptions) {
    this.log = options.logger;
    this.maxBody = options.maxBodyBytes ?? DEFAULT_MAX_BODY;
    this.schemas = options.schemas ?? new SchemaValidators();
  }

  add(method: string, pattern: string, handler: RouteHandler): this {
    this.routes.push({ method: method.toUpperCase(), parts: split(pattern), handler });
    return this;
  }

  get(pattern: string, handler: RouteHandler): this {
    return this.add('GET', pattern, handler);
  }

  post(pattern: string, handler: RouteHandler): this {
    return this.add('POST', pattern, handler);
  }

  put(pattern: string, handler: RouteHandler): this {
    return this.add('PUT', pattern, handler);
  }

  delete(pattern: string, handler: RouteHandler): this {
    return this.add('DELETE', pattern, handler);
  }

  /** Finds the route; `undefined` when no pattern matches the path (the caller may serve something else). */
  match(method: string, path: string): { route: Route; params: Record<string, string> } | { allow: string[] } | undefined {
    const parts = split(path);
    const allow: string[] = [];
    for (const route of this.routes) {
      const params = matchParts(route.parts, parts);
      if (!params) continue;
      if (route.method === method || (method === 'HEAD' && route.method === 'GET')) return { route, params };
      allow.push(route.method);
    }
    return allow.length > 0 ? { allow: [...new Set(allow)] } : undefined;
  }

  /** Answers the request; resolves false when no route matched its path (nothing was sent). */
  async handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> {
    let found;
    try {
      found = this.match(req.method ?? 'GET', url.pathname);
    } catch (err) {
      sendError(res, err instanceof HttpError ? err : new HttpError(400, 'malformed path'));
      return true;
    }
    if (!found) return false;
    if ('allow' in found) {
      sendError(res, new HttpError(405, `method ${req.method ?? ''} not allowed on ${url.pathname}`, { Allow: found.allow.join(', ') }));
      return true;
    }
    const ctx: RouteContext = {
      req,
      url,
      params: found.params,
      log: this.log,
      body: <T>(schema: string) => this.readBody<T>(req, schema),
    };
    try {
      const result = (await found.route.handler(ctx)) ?? { status: 204 };
      send(res, result, req.method === 'HEAD');
    } catch (err) {
      if (!(err instanceof HttpError)) this.log.error({ err, method: req.method, path: url.pathname }, 'http: request failed');
      sendError(res, err instanceof HttpError ? err : new HttpError(500, 'internal error'));
    }
    return true;
  }

  private async readBody<T>(req: IncomingMessage, schema: string): Promise<T> {
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/json') throw new HttpError(415, 'request body must be application/json');
    const declared = Number(req.headers['content-length'] ?? NaN);
    if (declared > this.maxBody) throw new HttpError(413, `request body over ${this.maxBody} bytes`, { Connection: 'close' });
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size > this.maxBody) throw new HttpError(413, `request body over ${this.maxBody} bytes`, { Connection: 'close' });
      chunks.push(chunk as Buffer);
    }
    let value: unknown;
    try {
      value = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch (err) {
      throw new HttpError(400, `request body is not valid JSON: ${(err as Error).message}`);
    }
    const problem = this.schemas.check(schema, value);
    if (problem) throw new HttpError(400, problem);
    return value as T;
  }
}

function split(path: string): string[] {
  return path.split('/').filter((p) => p.length > 0);
}

function matchParts(pattern: readonly string[], parts: readonly string[]): Record<string, string> | undefined {
  if (pattern.length !== parts.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i]!;
    if (p.startsWith(':')) {
      try {
        params[p.slice(1)] = decodeURIComponent(parts[i]!);
      } catch {
        throw new HttpError(400, `malformed percent-encoding in "${parts[i]!}"`);
      }
    } else if (p !== parts[i]) return undefined;
  }
  return params;
}

/** Sends a route result. */
export function send(res: ServerResponse, result: RouteResult, headOnly = false): void {
  if (res.headersSent) return;
  const status = result.status ?? 200;
  let body: Buffer | undefined;
  let type = result.contentType;
  if (result.json !== undefined) {
    body = Buffer.from(JSON.stringify(result.json, null, 2) + '\n');
    type ??= 'application/json; charset=utf-8';
  } else if (result.body !== undefined) {
    body = typeof result.body === 'string' ? Buffer.from(result.body) : result.body;
  }
  const headers: Record<string, string | number> = { 'Cache-Control': 'no-store', ...result.headers };
  if (type) headers['Content-Type'] = type;
  if (body && status !== 204 && status !== 304) headers['Content-Length'] = body.length;
  res.writeHead(status, headers);
  res.end(headOnly || status === 204 || status === 304 ? undefined : body);
}

export function sendError(res: ServerResponse, err: HttpError): void {
  send(res, { status: err.status, json: { error: err.message, status: err.status }, headers: err.headers });
}
