import { loadConfig, merge, type Json } from '../../src/config/config.js';
import { SimplePresenceServer } from '../../src/server.js';
import { createLogger } from '../../src/util/logger.js';
import type { Timers } from '../../src/util/timers.js';
import type { Store } from '../../src/store/index.js';

export interface TestServer {
  server: SimplePresenceServer;
  port: number;
  host: string;
  stop(): Promise<void>;
}

/** Starts the real server on an ephemeral loopback port (UDP and TCP share it). */
export async function startTestServer(overrides: Json = {}, options: { timers?: Timers; logLevel?: string; /** Memory-only by default; an open store, or 'config' to open the one the config names. */ store?: Store | false | 'config'; /** Control socket path (none by default). */ controlSocket?: string } = {}): Promise<TestServer> {
  // Authentication is off unless a test opts in with { auth: { required: true } }.
  const base: Json = { sip: { hosts: ['127.0.0.1'], port: 0, domain: 'example.com', drainTimeoutMs: 0 }, http: { host: '127.0.0.1', port: 0 }, auth: { required: false }, log: { level: 'silent' } };
  const config = loadConfig({ env: {}, overrides: merge(base, overrides) });
  const level = (process.env.TEST_LOG_LEVEL ?? options.logLevel ?? 'silent') as 'silent';
  const server = new SimplePresenceServer(config, {
    logger: createLogger(level),
    timers: options.timers,
    ...(options.store === 'config' ? {} : { store: options.store ?? false }),
    ...(options.controlSocket !== undefined ? { controlSocket: options.controlSocket } : {}),
  });
  const listeners = await server.start();
  const udp = listeners.find((l) => l.protocol === 'udp') ?? listeners[0]!;
  return { server, port: udp.port, host: udp.host, stop: () => server.stop() };
}
