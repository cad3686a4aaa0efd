import { AdminError, type AdminOperations, type UserInfo } from '../control/operations.js';
import type { RuleAction, Transformations } from '../presence/rules/rule-types.js';
import { HttpError, type RouteContext, type RouteResult, type Router } from './router.js';

/** The body of a rule change (schemas/http/rule-set.schema.json). */
export interface RuleSetBody {
  readonly watcher: string;
  readonly action: RuleAction;
  readonly transformations?: Partial<Transformations>;
}

interface UserCreateBody {
  readonly username: string;
  readonly password: string;
  readonly displayName?: string;
}

/** AdminError codes as HTTP statuses. */
const STATUS: Record<AdminError['code'], number> = { invalid: 400, 'not-found': 404, exists: 409, unavailable: 503 };

/** Runs an operation, turning its refusals into HTTP errors with the same message. */
export async function operation<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof AdminError) throw new HttpError(STATUS[err.code], err.message);
    throw err;
  }
}

export function userJson(u: UserInfo): Record<string, unknown> {
  return { ...u, createdAt: new Date(u.createdAtMs).toISOString() };
}

/**
 * Users and their presence rules (RFC 5025), through the same AdminOperations the CLI
 * uses, so both front ends check and log alike. `operations` is asked per request: the
 * store behind it opens with the server.
 */
export function registerAccountRoutes(router: Router, operations: () => AdminOperations | undefined): void {
  const ops = (): AdminOperations => {
    const o = operations();
    if (!o) throw new HttpError(503, 'accounts are not available: the store is not open');
    return o;
  };
  const limit = (ctx: RouteContext): number | undefined => {
    const t = ctx.url.searchParams.get('limit');
    if (t === null) return undefined;
    if (!/^\d{1,5}$/.test(t) || Number(t) < 1 || Number(t) > 10_000) throw new HttpError(400, 'limit must be a whole number from 1 to 10000');
    return Number(t);
  };

  router.get('/api/users', async (ctx) => {
    const after = ctx.url.searchParams.get('after');
    const n = limit(ctx);
    const users = await operation(() => ops().listUsers({ ...(n !== undefined ? { limit: n } : {}), ...(after !== null ? { after } : {}) }));
    return { json: users.map(userJson) };
  });

  router.post('/api/users', async (ctx) => {
    const body = await ctx.body<UserCreateBody>('user-create');
    const user = await operation(() => ops().addUser(body));
    return { status: 201, json: userJson(user), headers: { Location: `/api/users/${encodeURIComponent(user.username)}` } };
  });

  router.delete('/api/users/:user', async (ctx) => {
    await operation(() => ops().deleteUser(ctx.params.user!));
    return { status: 204 };
  });

  router.put('/api/users/:user/password', async (ctx) => {
    const body = await ctx.body<{ password: string }>('user-password');
    await operation(() => ops().setPassword(ctx.params.user!, body.password));
    return { status: 204 };
  });

  router.get('/api/users/:user/rules', async (ctx) => ({ json: await operation(() => ops().listRules(ctx.params.user!)) }));

  router.put('/api/users/:user/rules', async (ctx) => setRule(ops(), ctx.params.user!, await ctx.body<RuleSetBody>('rule-set')));

  router.delete('/api/users/:user/rules/:watcher', async (ctx) => {
    const { affected } = await operation(() => ops().deleteRule(ctx.params.user!, ctx.params.watcher!));
    return { json: { deleted: true, affected } };
  });

  router.get('/api/users/:user/lists', async (ctx) => ({ json: await operation(() => ops().listLists(ctx.params.user!)) }));
  router.put('/api/users/:user/lists/:name', async (ctx) => setList(ops(), ctx.params.user!, ctx.params.name!, await ctx.body<ListSetBody>('list-set')));
  router.delete('/api/users/:user/lists/:name', async (ctx) => {
    const { affected } = await operation(() => ops().deleteList(ctx.params.user!, ctx.params.name!));
    return { json: { deleted: true, affected } };
  });
}

/** The body of a list PUT (schemas/http/list-set.schema.json). */
export interface ListSetBody {
  readonly displayName?: string;
  readonly entries: ReadonlyArray<{ readonly uri: string; readonly displayName?: string }>;
}

/** Creates or replaces one stored list; the answer says how many live list subscriptions got its new state. */
export async function setList(ops: AdminOperations, owner: string, name: string, body: ListSetBody): Promise<RouteResult> {
  const { list, affected } = await operation(() => ops.setList({ owner, name, ...(body.displayName !== undefined ? { displayName: body.displayName } : {}), entries: body.entries }));
  return { json: { list, affected } };
}

/** Creates or replaces one rule; the answer says how many live subscriptions changed. */
export async function setRule(ops: AdminOperations, presentity: string, body: RuleSetBody): Promise<RouteResult> {
  const { rule, affected } = await operation(() =>
    ops.setRule({ presentity, watcher: body.watcher, action: body.action, ...(body.transformations ? { transformations: body.transformations } : {}) }),
  );
  return { json: { rule, affected } };
}
