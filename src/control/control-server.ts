import { chmodSync, unlinkSync } from 'node:fs';
import { makeDir } from '../util/make-dir.js';
import { dirname } from 'node:path';
import net from 'node:net';
import type { Logger } from 'pino';
import { MAX_CONTROL_LINE, runControlOp, type ControlResponse } from './control-protocol.js';
import { AdminError, type AdminOperations } from './operations.js';

/** Control connections open at once (local administrators, not the network). */
const MAX_CONNECTIONS = 16;
/** Requests of one connection waiting for their answers. */
const MAX_IN_FLIGHT = 8;

/**
 * The running server's end of the control channel: a unix socket only its owner may use
 * (mode 0600), JSON lines, each request run on the admin operations.
 */
export class ControlServer {
  private server?: net.Server;
  private readonly sockets = new Set<net.Socket>();

  constructor(private readonly path: string, private readonly ops: AdminOperations, private readonly log: Logger) {}

  async start(): Promise<void> {
    // A socket file left by a server that died: nobody answers on it, so it can go.
    if (await answers(this.path)) throw new Error(`another server holds the control socket ${this.path}`);
    // With PostgreSQL nothing else may have made the data directory yet.
    makeDir(dirname(this.path), 0o700);
    try {
      unlinkSync(this.path);
    } catch {
      /* not there */
    }
    const server = net.createServer((socket) => this.accept(socket));
    server.maxConnections = MAX_CONNECTIONS;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      // The socket is created with the process umask; it is made owner-only before anyone is served.
      server.listen(this.path, () => {
        server.off('error', reject);
        resolve();
      });
    });
    chmodSync(this.path, 0o600);
    server.on('error', (err) => this.log.error({ err }, 'control socket error'));
    this.server = server;
    this.log.info({ path: this.path }, 'control socket listening');
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((r) => server.close(() => r()));
  }

  private accept(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    socket.setTimeout(60_000, () => socket.destroy());
    let buf = '';
    let inFlight = 0;
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        // A line over the bound closes the connection, whether or not its end came with it.
        if (nl > MAX_CONTROL_LINE) {
          socket.destroy();
          return;
        }
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (!line) continue;
        if (inFlight >= MAX_IN_FLIGHT) {
          socket.destroy();
          return;
        }
        inFlight++;
        void this.handle(line).then((res) => {
          inFlight--;
          if (!socket.destroyed) socket.write(`${JSON.stringify(res)}\n`);
        });
      }
      if (buf.length > MAX_CONTROL_LINE) socket.destroy();
    });
  }

  private async handle(line: string): Promise<ControlResponse> {
    let id = 0;
    try {
      const req = JSON.parse(line) as unknown;
      if (typeof req !== 'object' || req === null || Array.isArray(req)) throw new AdminError('invalid', 'a request is a JSON object');
      const r = req as Record<string, unknown>;
      id = typeof r.id === 'number' ? r.id : 0;
      if (typeof r.op !== 'string') throw new AdminError('invalid', '"op" missing');
      const args = typeof r.args === 'object' && r.args !== null && !Array.isArray(r.args) ? (r.args as Record<string, unknown>) : {};
      const result = await runControlOp(this.ops, r.op, args);
      this.log.debug({ op: r.op }, 'control request');
      return { id, ok: true, result: result ?? null };
    } catch (err) {
      if (err instanceof AdminError) return { id, ok: false, error: { code: err.code, message: err.message } };
      if (err instanceof SyntaxError) return { id, ok: false, error: { code: 'invalid', message: 'not JSON' } };
      this.log.error({ err }, 'control request failed');
      return { id, ok: false, error: { code: 'internal', message: (err as Error).message } };
    }
  }
}

/** True when a server answers on the socket at `path`. */
export function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
