import { loadConfig, merge, type Json } from '../../src/config/config.js';
import { SimplePresenceServer, type ServerOptions } from '../../src/server.js';
import { createLogger } from '../../src/util/logger.js';
import type { Timers } from '../../src/util/timers.js';
import type { Store } from '../../src/store/index.js';

export interface TestServer {
  server: SimplePresenceServer;
  port: number;
  host: string;
  stop(): Promise<void>;
}

/**
 * Starts the real server on an ephemeral loopback port (UDP and TCP share it).
 * Authentication is off unless a test opts in with { auth: { required: true } }, and so is
 * overload control ({ overload: { enabled: true } }): how busy the test machine is must not
 * decide whether a test's request is answered or refused with 503.
 */
export async function startTestServer(overrides: Json = {}, options: { timers?: Timers; logLevel?: string; /** Memory-only by default; an open store, or 'config' to open the one the config names. */ store?: Store | false | 'config'; /** Control socket path (none by default). */ controlSocket?: string } & Pick<ServerOptions, 'services' | 'overload'> = {}): Promise<TestServer> {
  const base: Json = { sip: { hosts: ['127.0.0.1'], port: 0, domain: 'example.com', drainTimeoutMs: 0 }, http: { host: '127.0.0.1', port: 0 }, auth: { required: false }, overload: { enabled: false }, log: { level: 'silent' } };
  const config = loadConfig({ env: {}, overrides: merge(base, overrides) });
  const level = (process.env.TEST_LOG_LEVEL ?? options.logLevel ?? 'silent') as 'silent';
  const server = new SimplePresenceServer(config, {
    logger: createLogger(level),
    timers: options.timers,
    ...(options.store === 'config' ? {} : { store: options.store ?? false }),
    ...(options.controlSocket !== undefined ? { controlSocket: options.controlSocket } : {}),
    ...(options.services ? { services: options.services } : {}),
    ...(options.overload ? { overload: options.overload } : {}),
  });
  const listeners = await server.start();
  const udp = listeners.find((l) => l.protocol === 'udp') ?? listeners[0]!;
  return { server, port: udp.port, host: udp.host, stop: () => server.stop() };
}
