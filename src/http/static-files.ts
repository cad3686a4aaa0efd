import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join, normalize, sep } from 'node:path';
import { packageRoot } from '../config/config.js';
import { send, sendError, HttpError } from './router.js';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
};

/** Largest file served (the bundle is about 1 MB). */
const MAX_FILE_BYTES = 16 * 1024 * 1024;

/** Where the built web client is: dist/web (npm run build), else web/dist. */
export function defaultWebRoot(): string | undefined {
  const root = packageRoot();
  return [join(root, 'dist', 'web'), join(root, 'web', 'dist')].find((d) => existsSync(join(d, 'index.html')));
}

/**
 * Serves the web client's files (GET and HEAD only), never outside `root`: the path is
 * decoded, normalized and checked to stay below it. `/` is index.html.
 */
export class StaticFiles {
  constructor(private readonly root: string | undefined) {}

  async handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendError(res, new HttpError(405, `method ${req.method ?? ''} not allowed on ${url.pathname}`, { Allow: 'GET, HEAD' }));
      return;
    }
    if (!this.root) {
      sendError(res, new HttpError(404, 'the web client is not built: run npm run build'));
      return;
    }
    let rel: string;
    try {
      rel = decodeURIComponent(url.pathname);
    } catch {
      sendError(res, new HttpError(400, 'malformed percent-encoding in path'));
      return;
    }
    if (rel.includes('\0')) {
      sendError(res, new HttpError(400, 'NUL in path'));
      return;
    }
    if (rel.endsWith('/')) rel += 'index.html';
    const file = normalize(join(this.root, rel));
    if (file !== this.root && !file.startsWith(this.root + sep)) {
      sendError(res, new HttpError(404, `not found: ${url.pathname}`));
      return;
    }
    try {
      const info = await stat(file);
      if (!info.isFile() || info.size > MAX_FILE_BYTES) throw new Error('not a file');
      const body = await readFile(file);
      send(res, { body, contentType: TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream', headers: { 'Cache-Control': 'no-cache', 'X-Content-Type-Options': 'nosniff' } }, req.method === 'HEAD');
    } catch {
      sendError(res, new HttpError(404, `not found: ${url.pathname}`));
    }
  }
}
