import type { SimplePresenceServer } from '../server.js';
import type { PublicationInfo, SubscriptionInfo } from '../presence/presence-service.js';
import type { SubscriptionFilter } from '../presence/subscriptions.js';
import type { RegistrationView } from '../registrar/location-service.js';
import { resolveAddress } from './addresses.js';
import { HttpError, type RouteContext, type Router } from './router.js';

/** Largest page a list endpoint returns (`?limit=`). */
const MAX_LIMIT = 10_000;
const DEFAULT_LIMIT = 1000;

function limitOf(ctx: RouteContext): number {
  const text = ctx.url.searchParams.get('limit');
  if (text === null) return DEFAULT_LIMIT;
  if (!/^\d{1,6}$/.test(text) || Number(text) < 1) throw new HttpError(400, `limit must be a whole number from 1 to ${MAX_LIMIT}`);
  return Math.min(Number(text), MAX_LIMIT);
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/**
 * The read side of the admin API and subscription termination: presentities, their
 * composed documents and publications, subscriptions, registrations, stored messages and
 * a status summary. Reads the services' own query methods; writes nothing but the
 * termination of a subscription (RFC 6665 §4.2.2: final NOTIFY, reason=deactivated).
 */
export function registerStateRoutes(router: Router, server: SimplePresenceServer): void {
  const now = (): number => server.location.wallClock.nowMs();
  const address = (text: string): string => resolveAddress(text, server.domains);

  const publication = (p: PublicationInfo): Record<string, unknown> => ({
    etag: p.etag,
    contentType: p.contentType,
    publishedAt: iso(p.publishedAtMs),
    expiresAt: iso(p.expiresAtMs),
    expiresIn: Math.max(0, Math.ceil((p.expiresAtMs - now()) / 1000)),
  });
  const subscription = (s: SubscriptionInfo): Record<string, unknown> => ({
    id: s.id,
    event: s.eventPackage,
    presentity: s.resource,
    watcher: s.watcher,
    watcherUri: s.watcherUri,
    state: s.status,
    view: s.view,
    createdAt: iso(s.createdAtMs),
    expiresAt: iso(s.expiresAtMs),
    expiresIn: Math.max(0, Math.ceil((s.expiresAtMs - now()) / 1000)),
    remoteTarget: s.remoteTarget,
    transport: s.transport,
  });

  router.get('/api/status', () => {
    const subscriptions: Record<string, number> = {};
    // List subscriptions (RFC 4662) count as the subscriptions they are.
    for (const s of [...server.presence.subscriptions.list(), ...server.presence.lists.subscriptions.list()]) subscriptions[s.status] = (subscriptions[s.status] ?? 0) + 1;
    const store = server.store;
    return {
      json: {
        domain: server.config.sip.domain,
        uptimeSeconds: Math.round(process.uptime()),
        listeners: server.listeners.map((l) => ({ protocol: l.protocol, host: l.host, port: l.port })),
        connections: server.transport.connections.countByProtocol(),
        registrations: { bindings: server.location.size, aors: server.location.aorCount },
        publications: server.presence.compositor.publications.size,
        presentities: server.presence.presentities().length,
        subscriptions,
        transactions: server.transactions.stats(),
        store: store ? { driver: store.db.driver, ...store.softState.stats() } : null,
        // Nodes, workers, their load and the NATS link (docs/cluster.md); null for one process.
        cluster: server.cluster?.status() ?? null,
      },
    };
  });

  router.get('/api/presentities', (ctx) => ({ json: server.presence.presentities().slice(0, limitOf(ctx)) }));

  router.get('/api/presentities/:presentity', (ctx) => {
    const presentity = address(ctx.params.presentity!);
    const summary = server.presence.presentities().find((p) => p.presentity === presentity);
    const document = server.presence.composedDocument(presentity).toString('utf8');
    return {
      json: {
        presentity,
        version: summary?.version ?? 0,
        document,
        publications: server.presence.publications(presentity).map(publication),
        watchers: server.presence.listSubscriptions({ resource: presentity }).map(subscription),
      },
    };
  });

  // The composed document itself (RFC 3863 PIDF), as a full-view watcher receives it.
  router.get('/api/presentities/:presentity/document', (ctx) => ({
    body: server.presence.composedDocument(address(ctx.params.presentity!)),
    contentType: 'application/pidf+xml',
  }));

  router.get('/api/presentities/:presentity/publications', (ctx) => ({
    json: server.presence.publications(address(ctx.params.presentity!)).map(publication),
  }));

  router.get('/api/subscriptions', (ctx) => {
    const q = ctx.url.searchParams;
    const filter: { -readonly [K in keyof SubscriptionFilter]: SubscriptionFilter[K] } = {};
    const presentity = q.get('presentity');
    const watcher = q.get('watcher');
    const event = q.get('event');
    if (presentity !== null) filter.resource = address(presentity);
    if (watcher !== null) filter.watcher = address(watcher);
    if (event !== null) filter.eventPackage = event;
    return { json: server.presence.listSubscriptions(filter).slice(0, limitOf(ctx)).map(subscription) };
  });

  router.get('/api/presentities/:presentity/subscriptions', (ctx) => ({
    json: server.presence.listSubscriptions({ resource: address(ctx.params.presentity!) }).slice(0, limitOf(ctx)).map(subscription),
  }));

  router.get('/api/watchers/:watcher/subscriptions', (ctx) => ({
    json: server.presence.listSubscriptions({ watcher: address(ctx.params.watcher!) }).slice(0, limitOf(ctx)).map(subscription),
  }));

  router.get('/api/subscriptions/:id', (ctx) => {
    const found = server.presence.listSubscriptions().find((s) => s.id === ctx.params.id);
    if (!found) throw new HttpError(404, `no live subscription ${ctx.params.id!}`);
    return { json: subscription(found) };
  });

  router.delete('/api/subscriptions/:id', (ctx) => {
    const reason = ctx.url.searchParams.get('reason') ?? 'deactivated';
    if (reason !== 'deactivated' && reason !== 'noresource' && reason !== 'rejected') {
      throw new HttpError(400, 'reason must be deactivated, noresource or rejected (RFC 6665 §4.2.2)');
    }
    if (!server.presence.terminateSubscription(ctx.params.id!, reason)) throw new HttpError(404, `no live subscription ${ctx.params.id!}`);
    ctx.log.info({ subscription: ctx.params.id, reason }, 'admin: subscription terminated');
    return { status: 204 };
  });

  // Times as ISO 8601 like the other endpoints; `expires` stays the seconds left (RFC 3261 §10.3).
  const registration = (r: RegistrationView): Record<string, unknown> => ({
    ...r,
    expiresAt: iso(now() + r.expires * 1000),
    updatedAt: iso(r.updatedAt),
  });

  router.get('/api/registrations', (ctx) => {
    const aor = ctx.url.searchParams.get('aor');
    return { json: server.location.registrations({ ...(aor !== null ? { aor: address(aor) } : {}), limit: limitOf(ctx) }).map(registration) };
  });

  router.get('/api/registrations/:aor', (ctx) => ({
    json: server.location.registrations({ aor: address(ctx.params.aor!), limit: limitOf(ctx) }).map(registration),
  }));

  // RFC 3428 store-and-forward: how many messages wait for each user.
  router.get('/api/messages', async (ctx) => ({
    json: (await server.messaging.storedMessageSummary()).slice(0, limitOf(ctx)).map((m) => ({ user: m.recipient, count: m.count, bytes: m.bytes })),
  }));

  router.get('/api/messages/:user', async (ctx) => {
    const user = address(ctx.params.user!);
    const usage = await server.messaging.storedMessages(user);
    return { json: { user, count: usage.count, bytes: usage.bytes } };
  });
}
