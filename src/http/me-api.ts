import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { computeHa1s } from '../auth/ha1.js';
import { FailureTracker } from '../auth/failure-tracker.js';
import type { AdminOperations } from '../control/operations.js';
import type { AccountRecord } from '../store/records.js';
import type { WallClock } from '../util/timers.js';
import { operation, setList, setRule, type ListSetBody, type RuleSetBody } from './accounts-api.js';
import type { RoomService } from '../messaging/rooms/room-service.js';
import { registerMeRoomRoutes } from './rooms-api.js';
import { HttpError, type RouteContext, type Router } from './router.js';

/** What the user endpoints need: the account of a name, the realm its HA1 is in, the operations. */
export interface MeApiOptions {
  /** The account of `username` in our domain, undefined when there is none (or no store). */
  readonly account: (username: string) => Promise<AccountRecord | undefined>;
  /** The digest realm the HA1s were computed in (RFC 3261 §22.4). */
  readonly realm: () => string;
  readonly operations: () => AdminOperations | undefined;
  readonly wallClock: WallClock;
  /** Chat rooms (/api/me/rooms) and the AoR a user name has in them. */
  readonly rooms?: { readonly service: () => RoomService | undefined; readonly aorOf: (username: string) => string };
}

/** Failed logins per client address: 10 a minute, then a minute's block (429). */
const LIMITS = { windowMs: 60_000, threshold: 10, blockMs: 60_000, maxKeys: 10_000 };

/**
 * The user's own endpoints, /api/me/...: a web client approves or blocks its watchers here
 * (XCAP clients change the same rules through pres-rules documents, src/xcap/). The client proves who it is with HTTP Basic carrying its SIP
 * user name and password (RFC 7617), checked against the account's stored HA1, so the
 * password itself is never stored; use it over HTTPS (or loopback) only.
 */
export function registerMeRoutes(router: Router, options: MeApiOptions): void {
  const failures = new FailureTracker(LIMITS, options.wallClock);

  const authenticate = async (ctx: RouteContext): Promise<string> => {
    const peer = ctx.req.socket.remoteAddress ?? 'unknown';
    const blocked = failures.blockedFor(peer);
    if (blocked > 0) throw new HttpError(429, 'too many failed logins, try again later', { 'Retry-After': String(Math.ceil(blocked / 1000)) });
    const creds = basicCredentials(ctx.req);
    const account = creds ? await options.account(creds.username) : undefined;
    if (!creds || !account || !passwordMatches(account, options.realm(), creds.password)) {
      if (creds) failures.fail(peer);
      throw new HttpError(401, 'SIP user name and password required (HTTP Basic)', { 'WWW-Authenticate': `Basic realm="${options.realm()}", charset="UTF-8"` });
    }
    return account.username;
  };
  const ops = (): AdminOperations => {
    const o = options.operations();
    if (!o) throw new HttpError(503, 'rules are not available: the store is not open');
    return o;
  };

  router.get('/api/me', async (ctx) => {
    const user = await authenticate(ctx);
    const rules = await operation(() => ops().listRules(user));
    return { json: { username: user, rules } };
  });
  router.get('/api/me/rules', async (ctx) => {
    const user = await authenticate(ctx);
    return { json: await operation(() => ops().listRules(user)) };
  });
  router.put('/api/me/rules', async (ctx) => {
    const user = await authenticate(ctx);
    return setRule(ops(), user, await ctx.body<RuleSetBody>('rule-set'));
  });
  router.delete('/api/me/rules/:watcher', async (ctx) => {
    const user = await authenticate(ctx);
    const { affected } = await operation(() => ops().deleteRule(user, ctx.params.watcher!));
    return { json: { deleted: true, affected } };
  });
  // The user's own buddy lists (RFC 4826), each served at sip:<user>+<name>@<domain>.
  router.get('/api/me/lists', async (ctx) => {
    const user = await authenticate(ctx);
    return { json: await operation(() => ops().listLists(user)) };
  });
  router.put('/api/me/lists/:name', async (ctx) => {
    const user = await authenticate(ctx);
    return setList(ops(), user, ctx.params.name!, await ctx.body<ListSetBody>('list-set'));
  });
  router.delete('/api/me/lists/:name', async (ctx) => {
    const user = await authenticate(ctx);
    const { affected } = await operation(() => ops().deleteList(user, ctx.params.name!));
    return { json: { deleted: true, affected } };
  });
  const rooms = options.rooms;
  if (rooms) registerMeRoomRoutes(router, rooms.service, async (ctx) => rooms.aorOf(await authenticate(ctx)));
}

/** RFC 7617 §2: `Basic base64(user-id ":" password)`. */
export function basicCredentials(req: IncomingMessage): { username: string; password: string } | undefined {
  const header = req.headers.authorization;
  if (!header || header.length > 2048) return undefined;
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (!m) return undefined;
  const text = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = text.indexOf(':');
  if (colon <= 0) return undefined;
  return { username: text.slice(0, colon), password: text.slice(colon + 1) };
}

/** Compares H(username:realm:password) with the stored HA1 in constant time (SHA-256 first, RFC 8760). */
export function passwordMatches(account: AccountRecord, realm: string, password: string): boolean {
  const computed = computeHa1s(account.username, realm, password);
  const pairs: Array<[string | undefined, string]> = [
    [account.ha1Sha256, computed.ha1Sha256],
    [account.ha1Md5, computed.ha1Md5],
  ];
  for (const [stored, mine] of pairs) {
    if (stored === undefined) continue;
    const a = Buffer.from(stored.toLowerCase());
    const b = Buffer.from(mine);
    return a.length === b.length && timingSafeEqual(a, b);
  }
  return false;
}
