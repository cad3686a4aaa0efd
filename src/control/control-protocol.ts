import { AdminError, type AdminOperations } from './operations.js';
import { RULE_ACTIONS, type RuleAction, type Transformations } from '../presence/rules/rule-types.js';
import type { StoredListEntry } from '../lists/stored-lists.js';

/**
 * The local control channel (a unix socket in the data directory, like kamcmd's for
 * Kamailio): one JSON object a line each way. Requests `{id, op, args}`, answers
 * `{id, ok: true, result}` or `{id, ok: false, error: {code, message}}`.
 */
export const CONTROL_SOCKET = 'control.sock';

/** A request line longer than this closes the connection. */
export const MAX_CONTROL_LINE = 64 * 1024;

export type ControlOp = 'users.list' | 'users.add' | 'users.passwd' | 'users.del' | 'rules.list' | 'rules.set' | 'rules.del' | 'db.backup' | 'db.export' | 'lists.list' | 'lists.set' | 'lists.del';

export interface ControlRequest {
  readonly id: number;
  readonly op: ControlOp;
  readonly args: Record<string, unknown>;
}

export type ControlResponse =
  | { readonly id: number; readonly ok: true; readonly result: unknown }
  | { readonly id: number; readonly ok: false; readonly error: { readonly code: string; readonly message: string } };

function str(args: Record<string, unknown>, key: string): string {
  const v = args[key];
  if (typeof v !== 'string') throw new AdminError('invalid', `"${key}" must be a string`);
  return v;
}

function optStr(args: Record<string, unknown>, key: string): string | undefined {
  const v = args[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new AdminError('invalid', `"${key}" must be a string`);
  return v;
}

function transformations(v: unknown): Partial<Transformations> {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw new AdminError('invalid', '"transformations" must be an object');
  const o = v as Record<string, unknown>;
  const out: { hideNotes?: boolean; hideDevices?: boolean; basicOnly?: boolean } = {};
  for (const k of ['hideNotes', 'hideDevices', 'basicOnly'] as const) {
    if (o[k] === undefined) continue;
    if (typeof o[k] !== 'boolean') throw new AdminError('invalid', `"transformations.${k}" must be true or false`);
    out[k] = o[k];
  }
  return out;
}

function listEntries(v: unknown): StoredListEntry[] {
  if (!Array.isArray(v)) throw new AdminError('invalid', '"entries" must be a list');
  return v.map((e: unknown) => {
    if (typeof e !== 'object' || e === null) throw new AdminError('invalid', 'an entry must be an object');
    const o = e as Record<string, unknown>;
    const displayName = optStr(o, 'displayName');
    return { uri: str(o, 'uri'), ...(displayName !== undefined ? { displayName } : {}) };
  });
}

/** Runs one control request on the operations (the same calls the HTTP API makes). */
export async function runControlOp(ops: AdminOperations, op: string, args: Record<string, unknown>): Promise<unknown> {
  switch (op) {
    case 'users.list': {
      const limit = args.limit;
      return ops.listUsers({ ...(typeof limit === 'number' ? { limit } : {}), ...(optStr(args, 'after') !== undefined ? { after: optStr(args, 'after')! } : {}) });
    }
    case 'users.add': {
      const displayName = optStr(args, 'displayName');
      return ops.addUser({ username: str(args, 'username'), password: str(args, 'password'), ...(displayName !== undefined ? { displayName } : {}) });
    }
    case 'users.passwd':
      await ops.setPassword(str(args, 'username'), str(args, 'password'));
      return null;
    case 'users.del':
      await ops.deleteUser(str(args, 'username'));
      return null;
    case 'rules.list':
      return ops.listRules(str(args, 'presentity'));
    case 'rules.set': {
      const action = str(args, 'action');
      if (!(RULE_ACTIONS as readonly string[]).includes(action)) throw new AdminError('invalid', `action must be one of ${RULE_ACTIONS.join(', ')}`);
      return ops.setRule({ presentity: str(args, 'presentity'), watcher: str(args, 'watcher'), action: action as RuleAction, transformations: transformations(args.transformations) });
    }
    case 'rules.del':
      return ops.deleteRule(str(args, 'presentity'), str(args, 'watcher'));
    case 'db.backup':
      return ops.backup(str(args, 'file'));
    case 'db.export':
      return ops.exportTo(str(args, 'file'));
    case 'lists.list':
      return ops.listLists(str(args, 'owner'));
    case 'lists.set': {
      const displayName = optStr(args, 'displayName');
      return ops.setList({ owner: str(args, 'owner'), name: str(args, 'name'), ...(displayName !== undefined ? { displayName } : {}), entries: listEntries(args.entries) });
    }
    case 'lists.del':
      return ops.deleteList(str(args, 'owner'), str(args, 'name'));
    default:
      throw new AdminError('invalid', `unknown operation "${op}"`);
  }
}
