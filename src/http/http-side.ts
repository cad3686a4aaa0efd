import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { AdminOperations } from '../control/operations.js';
import type { SimplePresenceServer } from '../server.js';
import { registerAccountRoutes } from './accounts-api.js';
import { registerStateRoutes } from './admin-api.js';
import { registerHealthRoutes } from './health.js';
import { registerMeRoutes } from './me-api.js';
import { resolveAddress } from './addresses.js';
import { registerRoomAdminRoutes } from './rooms-api.js';
import { ServerMetrics } from './metrics.js';
import { HttpError, Router, send, sendError } from './router.js';
import { defaultWebRoot, StaticFiles } from './static-files.js';

export interface HttpSideOptions {
  readonly logger: Logger;
  /** The admin API's bearer token (config admin.token / ADMIN_TOKEN); null or absent: the API is off. */
  readonly adminToken?: string | null;
  /** Users and rules (src/control/operations.ts), asked per request: they need the open store. */
  readonly operations?: () => AdminOperations | undefined;
  /** The digest realm of the accounts' HA1s (auth.realm); the SIP domain by default. */
  readonly realm?: () => string;
  /** The built web client; dist/web or web/dist by default. */
  readonly webRoot?: string;
  /** Default process metrics (CPU, memory, event loop) in /metrics; default true. */
  readonly processMetrics?: boolean;
}

/**
 * The HTTP side of the server (DESIGN: http/), one request handler on the HTTP server the
 * WebSocket transport shares: the web client at `/`, the admin API under `/api/`, the
 * user's own `/api/me/`, Prometheus `/metrics`, `/healthz` and `/readyz`.
 */
export class HttpSide {
  readonly metrics: ServerMetrics;
  private readonly admin: Router;
  private readonly open: Router;
  private readonly files: StaticFiles;
  private readonly log: Logger;
  private readonly tokenDigest: Buffer | undefined;
  private stopping = false;

  constructor(private readonly server: SimplePresenceServer, options: HttpSideOptions) {
    this.log = options.logger;
    this.metrics = new ServerMetrics(server, { processMetrics: options.processMetrics ?? true });
    this.tokenDigest = options.adminToken ? sha256(options.adminToken) : undefined;
    const operations = options.operations ?? (() => undefined);

    this.open = new Router({ logger: this.log });
    registerHealthRoutes(this.open, server, () => this.stopping);
    // What the web client needs before login: the SIP domain (WebSocket is on this same port, path /).
    this.open.get('/client-config.json', () => ({ json: { domain: server.config.sip.domain } }));
    this.open.get('/metrics', async () => {
      const { contentType, body } = await this.metrics.render();
      return { body, contentType };
    });
    registerMeRoutes(this.open, {
      account: async (username) => server.store?.accounts.get(server.config.sip.domain, username),
      realm: options.realm ?? (() => server.config.sip.domain),
      operations,
      wallClock: server.location.wallClock,
      rooms: { service: () => server.rooms, aorOf: (username) => resolveAddress(username, server.domains) },
    });

    this.admin = new Router({ logger: this.log });
    registerStateRoutes(this.admin, server);
    registerAccountRoutes(this.admin, operations);
    registerRoomAdminRoutes(this.admin, server.rooms, (text) => resolveAddress(text, server.domains));

    this.files = new StaticFiles(options.webRoot ?? defaultWebRoot());
  }

  /** /readyz answers 503 from now on (a graceful stop has begun). */
  markStopping(): void {
    this.stopping = true;
  }

  /** The node:http request listener. Never throws. */
  readonly handle = (req: IncomingMessage, res: ServerResponse): void => {
    this.dispatch(req, res).catch((err: unknown) => {
      this.log.error({ err, method: req.method, url: req.url }, 'http: request failed');
      if (!res.headersSent) sendError(res, new HttpError(500, 'internal error'));
      else res.destroy();
    });
  };

  private async dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      sendError(res, new HttpError(400, 'malformed request target'));
      return;
    }
    res.on('finish', () => this.log.debug({ method: req.method, path: url.pathname, status: res.statusCode }, 'http request'));
    if (await this.open.handle(req, res, url)) return;
    if (url.pathname === '/api' || url.pathname.startsWith('/api/')) {
      const refusal = this.authorizeAdmin(req);
      if (refusal) {
        sendError(res, refusal);
        return;
      }
      if (!(await this.admin.handle(req, res, url))) sendError(res, new HttpError(404, `no such endpoint: ${req.method ?? ''} ${url.pathname}`));
      return;
    }
    if (url.pathname === '/favicon.ico') {
      send(res, { status: 204 });
      return;
    }
    await this.files.handle(req, res, url);
  }

  /** RFC 6750 bearer token; compared as digests in constant time. */
  private authorizeAdmin(req: IncomingMessage): HttpError | undefined {
    if (!this.tokenDigest) return new HttpError(404, 'the admin API is off: set admin.token in the config or ADMIN_TOKEN');
    const m = /^Bearer\s+(\S{1,1024})\s*$/i.exec(req.headers.authorization ?? '');
    if (m && timingSafeEqual(sha256(m[1]!), this.tokenDigest)) return undefined;
    return new HttpError(401, m ? 'wrong admin token' : 'admin token required (Authorization: Bearer <admin.token>)', {
      'WWW-Authenticate': `Bearer realm="simple-presence admin"${m ? ', error="invalid_token"' : ''}`,
    });
  }
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}
