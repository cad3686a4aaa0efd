import type { SimplePresenceServer } from '../server.js';
import type { Router } from './router.js';

/** How long /readyz waits for the store's `SELECT 1` before calling it unreachable. */
const STORE_CHECK_TIMEOUT_MS = 2000;

export interface ReadinessCheck {
  readonly ok: boolean;
  readonly detail: string;
}

/** Is the store answering? A `SELECT 1` bounded by a timeout; memory-only servers have nothing to check. */
export async function checkStore(server: SimplePresenceServer, timeoutMs = STORE_CHECK_TIMEOUT_MS): Promise<ReadinessCheck> {
  const store = server.store;
  if (!store) return { ok: true, detail: 'no store (state in memory)' };
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<ReadinessCheck>((resolve) => {
    timer = setTimeout(() => resolve({ ok: false, detail: `${store.db.driver}: no answer in ${timeoutMs} ms` }), timeoutMs);
  });
  const query = store.db.query<{ one: number }>('SELECT 1 AS one').then(
    (r) => (r.rows[0]?.one === 1 ? { ok: true, detail: store.db.driver } : { ok: false, detail: `${store.db.driver}: unexpected answer` }),
    (err: unknown) => ({ ok: false, detail: `${store.db.driver}: ${(err as Error).message}` }),
  );
  try {
    return await Promise.race([query, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Are the SIP transports up? Every configured listener bound (and the server not stopping). */
export function checkTransports(server: SimplePresenceServer): ReadinessCheck {
  const listeners = server.listeners;
  if (listeners.length === 0) return { ok: false, detail: 'not listening' };
  return { ok: true, detail: listeners.map((l) => `${l.protocol}:${l.host.includes(':') ? `[${l.host}]` : l.host}:${l.port}`).join(' ') };
}

/**
 * /healthz: the process answers (liveness). /readyz: it can serve, the store reachable
 * and the transports listening (readiness); 503 naming what is not.
 */
export function registerHealthRoutes(router: Router, server: SimplePresenceServer, isStopping: () => boolean): void {
  router.get('/healthz', () => ({ json: { status: 'ok' } }));
  router.get('/readyz', async () => {
    const checks: Record<string, ReadinessCheck> = {
      transports: isStopping() ? { ok: false, detail: 'stopping' } : checkTransports(server),
      store: await checkStore(server),
    };
    const ok = Object.values(checks).every((c) => c.ok);
    return { status: ok ? 200 : 503, json: { status: ok ? 'ready' : 'not ready', checks } };
  });
}
