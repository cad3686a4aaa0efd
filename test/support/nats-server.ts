import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A nats-server with JetStream that a test started, on a free loopback port, with a store directory of its own. */
export interface NatsServer {
  readonly url: string;
  readonly port: number;
  /** Stops it (SIGTERM); `start` brings it back on the same port and store (a NATS restart). */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops it for good and removes its store. */
  close(): Promise<void>;
}

/** The nats-server binary: NATS_SERVER, else on PATH (test/support/ensure-tools.mjs installs Debian's). */
export function natsServerBinary(): string {
  const candidates = [process.env.NATS_SERVER, ...(process.env.PATH ?? '').split(':').map((d) => d && join(d, 'nats-server')), '/usr/sbin/nats-server'];
  const bin = candidates.find((p): p is string => typeof p === 'string' && p !== '' && existsSync(p));
  if (!bin) throw new Error('no nats-server: apt-get install -y nats-server (or set NATS_SERVER); npm test installs it (test/support/ensure-tools.mjs)');
  return bin;
}

async function freeTcpPort(): Promise<number> {
  const s = net.createServer();
  const port = await new Promise<number>((resolve, reject) => {
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => resolve((s.address() as net.AddressInfo).port));
  });
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export async function startNatsServer(): Promise<NatsServer> {
  const bin = natsServerBinary();
  const port = await freeTcpPort();
  const store = mkdtempSync(join(tmpdir(), 'sp-nats-'));
  let child: ChildProcess | undefined;
  const start = async (): Promise<void> => {
    const c = spawn(bin, ['-js', '-sd', store, '-a', '127.0.0.1', '-p', String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = c;
    let out = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`nats-server did not start:\n${out}`)), 30_000);
      const onData = (d: Buffer): void => {
        out += d.toString();
        if (out.includes('Server is ready')) {
          clearTimeout(timer);
          resolve();
        }
      };
      c.stdout!.on('data', onData);
      c.stderr!.on('data', onData);
      c.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`nats-server exited (${code}):\n${out}`));
      });
    });
  };
  const stop = async (): Promise<void> => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill('SIGTERM');
    await exited;
  };
  await start();
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    start,
    stop,
    close: async () => {
      await stop();
      rmSync(store, { recursive: true, force: true });
    },
  };
}
