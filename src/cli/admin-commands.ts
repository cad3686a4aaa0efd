import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { loadConfig, type Config } from '../config/config.js';
import { ControlClient, NoServerError } from '../control/control-client.js';
import { CONTROL_SOCKET } from '../control/control-protocol.js';
import { AdminError, StoreAdminOperations, type AdminOperations, type RuleInfo, type UserInfo } from '../control/operations.js';
import type { StoredListEntry, StoredListInfo } from '../lists/stored-lists.js';
import { PresenceRuleStore } from '../presence/rules/rule-store.js';
import { RULE_ACTIONS, type RuleAction } from '../presence/rules/rule-types.js';
import { dataDirHolder, openStore } from '../store/index.js';
import { createLogger } from '../util/logger.js';

export const ADMIN_USAGE = `  simple-presence user add USER [--password P] [--display-name N]   add an account (password prompted on a terminal)
  simple-presence user passwd USER [--password P]                   change a password
  simple-presence user del USER                                     delete an account and its rules
  simple-presence user list                                         list the accounts
  simple-presence rules allow|block|polite-block|confirm USER WATCHER [--hide-notes] [--hide-devices] [--basic-only]
                                                                    USER's rule about WATCHER (bob, bob@host, *@host, *)
  simple-presence rules list USER                                   USER's rules
  simple-presence rules del USER WATCHER                            delete a rule
  simple-presence lists show USER [NAME]                            USER's buddy lists (served at sip:USER+NAME@domain)
  simple-presence lists set USER NAME [URI...] [--display-name N]   create or replace a list (Blink's is NAME=presence)
  simple-presence lists add|remove USER NAME URI...                 add or remove members (bob, bob@host, sip:bob@host)
  simple-presence lists del USER NAME                               delete a list
  (all take --config FILE; they go through the running server's control socket in
   store.dataDir, or open the store themselves when no server runs; a server still starting
   is waited for, --wait SECONDS, default 10)`;

/** Where the commands write (the tests pass their own). */
export interface AdminIo {
  out(line: string): void;
  err(line: string): void;
  /** Reads a password: hidden on a terminal, the first line of stdin otherwise. */
  readPassword(prompt: string): Promise<string>;
}

export const PROCESS_IO: AdminIo = {
  out: (l) => console.log(l),
  err: (l) => console.error(l),
  readPassword: (prompt) => readPassword(prompt),
};

/** `simple-presence user ...`, `simple-presence rules ...` and `simple-presence lists ...`: exit code. */
export async function adminCommand(kind: 'user' | 'rules' | 'lists', args: string[], io: AdminIo = PROCESS_IO): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    strict: true,
    options: {
      config: { type: 'string', short: 'c' },
      password: { type: 'string', short: 'p' },
      'display-name': { type: 'string' },
      'hide-notes': { type: 'boolean' },
      'hide-devices': { type: 'boolean' },
      'basic-only': { type: 'boolean' },
      limit: { type: 'string' },
      wait: { type: 'string' },
    },
  });
  const [sub, ...rest] = positionals;
  const waitSeconds = values.wait === undefined ? CONTROL_START_WAIT_MS / 1000 : Number(values.wait);
  if (!Number.isFinite(waitSeconds) || waitSeconds < 0) {
    io.err(`simple-presence ${kind}: --wait takes a number of seconds\n${ADMIN_USAGE}`);
    return 2;
  }
  const config = loadConfig({ ...(values.config !== undefined ? { file: values.config } : {}) });
  let run: ((ops: AdminOperations) => Promise<void>) | undefined;
  const need = (n: number, what: string): boolean => {
    if (rest.length === n) return true;
    io.err(`simple-presence ${kind} ${sub}: expected ${what}\n${ADMIN_USAGE}`);
    return false;
  };
  if (kind === 'user') {
    switch (sub) {
      case 'add': {
        if (!need(1, 'USER')) return 2;
        const password = values.password ?? (await io.readPassword(`password for ${rest[0]}: `));
        run = async (ops) => {
          const u = await ops.addUser({ username: rest[0]!, password, ...(values['display-name'] !== undefined ? { displayName: values['display-name'] } : {}) });
          io.out(`added ${u.aor}`);
        };
        break;
      }
      case 'passwd': {
        if (!need(1, 'USER')) return 2;
        const password = values.password ?? (await io.readPassword(`new password for ${rest[0]}: `));
        run = async (ops) => {
          await ops.setPassword(rest[0]!, password);
          io.out(`password of ${rest[0]} changed`);
        };
        break;
      }
      case 'del':
        if (!need(1, 'USER')) return 2;
        run = async (ops) => {
          await ops.deleteUser(rest[0]!);
          io.out(`deleted ${rest[0]}`);
        };
        break;
      case 'list':
        if (!need(0, 'no argument')) return 2;
        run = async (ops) => {
          for (const u of await ops.listUsers(values.limit !== undefined ? { limit: Number(values.limit) } : {})) io.out(userLine(u));
        };
        break;
    }
  } else if (kind === 'lists') {
    run = listsCommand(sub, rest, values['display-name'], io);
    if (run === undefined && (sub === 'show' || sub === 'set' || sub === 'add' || sub === 'remove' || sub === 'del')) {
      io.err(`simple-presence lists ${sub}: expected ${sub === 'show' ? 'USER [NAME]' : sub === 'set' ? 'USER NAME [URI...]' : sub === 'del' ? 'USER NAME' : 'USER NAME URI...'}\n${ADMIN_USAGE}`);
      return 2;
    }
  } else {
    if (sub !== undefined && (RULE_ACTIONS as readonly string[]).includes(sub)) {
      if (!need(2, 'USER WATCHER')) return 2;
      run = async (ops) => {
        const { rule, affected } = await ops.setRule({
          presentity: rest[0]!,
          watcher: rest[1]!,
          action: sub as RuleAction,
          transformations: { hideNotes: values['hide-notes'] === true, hideDevices: values['hide-devices'] === true, basicOnly: values['basic-only'] === true },
        });
        io.out(`${ruleLine(rule)}${affected > 0 ? `  (${affected} subscription${affected === 1 ? '' : 's'} changed)` : ''}`);
      };
    } else if (sub === 'list') {
      if (!need(1, 'USER')) return 2;
      run = async (ops) => {
        for (const r of await ops.listRules(rest[0]!)) io.out(ruleLine(r));
      };
    } else if (sub === 'del') {
      if (!need(2, 'USER WATCHER')) return 2;
      run = async (ops) => {
        const { affected } = await ops.deleteRule(rest[0]!, rest[1]!);
        io.out(`rule deleted${affected > 0 ? `  (${affected} subscription${affected === 1 ? '' : 's'} changed)` : ''}`);
      };
    }
  }
  if (!run) {
    io.err(`simple-presence ${kind}: unknown subcommand "${sub ?? ''}"\n${ADMIN_USAGE}`);
    return 2;
  }
  try {
    await withOperations(config, run, waitSeconds * 1000);
    return 0;
  } catch (err) {
    if (err instanceof AdminError) {
      io.err(`simple-presence ${kind} ${sub}: ${err.message}`);
      return err.code === 'not-found' ? 3 : 1;
    }
    io.err(`simple-presence ${kind} ${sub}: ${(err as Error).message}`);
    return 1;
  }
}

/** What `simple-presence lists SUB ...` does, or undefined for a wrong count of arguments or an unknown SUB. */
function listsCommand(sub: string | undefined, rest: readonly string[], displayName: string | undefined, io: AdminIo): ((ops: AdminOperations) => Promise<void>) | undefined {
  const [user, name, ...uris] = rest;
  const changed = (affected: number): string => (affected > 0 ? `  (${affected} list subscription${affected === 1 ? '' : 's'} notified)` : '');
  switch (sub) {
    case 'show':
      if (user === undefined || rest.length > 2) return undefined;
      return async (ops) => {
        const lists = (await ops.listLists(user)).filter((l) => name === undefined || l.name === name);
        if (name !== undefined && lists.length === 0) throw new AdminError('not-found', `no list ${name} of ${user}`);
        for (const l of lists) for (const line of listLines(l)) io.out(line);
      };
    case 'set':
      if (user === undefined || name === undefined) return undefined;
      return async (ops) => {
        const { list, affected } = await ops.setList({ owner: user, name, ...(displayName !== undefined ? { displayName } : {}), entries: uris.map((uri) => ({ uri })) });
        io.out(`${list.uri}: ${list.entries.length} member${list.entries.length === 1 ? '' : 's'}${changed(affected)}`);
      };
    case 'add':
    case 'remove':
      if (user === undefined || name === undefined || uris.length === 0) return undefined;
      return async (ops) => {
        const current = (await ops.listLists(user)).find((l) => l.name === name);
        if (!current && sub === 'remove') throw new AdminError('not-found', `no list ${name} of ${user}`);
        let entries: StoredListEntry[] = [...(current?.entries ?? [])];
        if (sub === 'add') entries.push(...uris.map((uri) => ({ uri })));
        else {
          // The operations name members canonically; compare what they would store.
          const gone = new Set(uris.map((u) => u.replace(/^sips?:/i, '')));
          entries = entries.filter((e) => {
            const bare = e.uri.replace(/^sips?:/i, '');
            return !gone.has(bare) && !gone.has(bare.split('@')[0]!);
          });
        }
        const { list, affected } = await ops.setList({ owner: user, name, ...((displayName ?? current?.displayName) !== undefined ? { displayName: (displayName ?? current?.displayName)! } : {}), entries });
        io.out(`${list.uri}: ${list.entries.length} member${list.entries.length === 1 ? '' : 's'}${changed(affected)}`);
      };
    case 'del':
      if (user === undefined || name === undefined || uris.length > 0) return undefined;
      return async (ops) => {
        const { affected } = await ops.deleteList(user, name);
        io.out(`list deleted${changed(affected)}`);
      };
    default:
      return undefined;
  }
}

function listLines(l: StoredListInfo): string[] {
  return [`${l.uri}${l.displayName !== undefined ? ` "${l.displayName}"` : ''}`, ...l.entries.map((e) => `  ${e.uri}${e.displayName !== undefined ? ` "${e.displayName}"` : ''}`)];
}

/**
 * The running server's operations through its control socket, so a change takes effect at
 * once; the store itself when no server runs (the embedded store is one process's at a time).
 */
export async function withOperations(
  config: Config,
  run: (ops: AdminOperations) => Promise<void>,
  startWaitMs = CONTROL_START_WAIT_MS,
  requestTimeoutMs = 10_000,
): Promise<void> {
  const client = await connectControl(config, startWaitMs, requestTimeoutMs);
  if (client) {
    try {
      await run(client);
    } finally {
      client.close();
    }
    return;
  }
  const log = createLogger((process.env.LOG_LEVEL ?? 'warn') as Parameters<typeof createLogger>[0]);
  const store = await openStore({ ...(config.store.url ? { url: config.store.url } : { dataDir: config.store.dataDir }), logger: log });
  // A cluster's nodes hear of what is written here, as if a node had written it (docs/cluster.md).
  const cluster = config.cluster?.natsUrl
    ? await (await import('../cluster/cluster-caches.js')).ClusterCaches.sender(config.cluster.natsUrl, config.cluster.connectTimeoutMs, log)
    : undefined;
  try {
    await run(
      new StoreAdminOperations({
        accounts: store.accounts,
        rules: new PresenceRuleStore(store.db),
        database: store.db,
        lists: store.resourceLists,
        maxListMembers: config.presence?.maxListMembers ?? 1000,
        domain: config.sip.domain,
        realm: config.auth?.realm ?? config.sip.domain,
        logger: log,
        ...(cluster
          ? {
              effects: {
                rulesChanged: async (p: string, w: string) => (await cluster.news.rulesChanged(p, w), 0),
                accountDeleted: async (aor: string) => (await cluster.news.accountChanged(aor, true), 0),
                accountChanged: (aor: string) => cluster.news.accountChanged(aor, false),
              },
            }
          : {}),
      }),
    );
  } finally {
    await cluster?.close();
    await store.close();
  }
}

/** How long a CLI command waits for the control socket of a server that holds the data directory but is still starting. */
export const CONTROL_START_WAIT_MS = 10_000;

/**
 * The running server's control channel, or undefined when no server holds the data
 * directory. A server takes the data directory's lock first and opens its control socket
 * last, once its store is open: in between, the CLI waits for the socket (up to
 * `waitMs`) rather than failing on the lock ("in use by another process").
 */
async function connectControl(config: Config, waitMs: number, requestTimeoutMs: number): Promise<ControlClient | undefined> {
  const socket = join(config.store.dataDir, CONTROL_SOCKET);
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      return await ControlClient.connect(socket, requestTimeoutMs);
    } catch (err) {
      if (!(err instanceof NoServerError)) throw err;
    }
    // With PostgreSQL nothing is locked: the CLI may open the database beside a starting server.
    const holder = config.store.url ? undefined : dataDirHolder(config.store.dataDir);
    if (holder === undefined) return undefined;
    if (Date.now() >= deadline) {
      throw new AdminError('unavailable', `the server (pid ${holder}) holds data directory ${config.store.dataDir}, but its control socket ${socket} did not answer within ${waitMs / 1000} s (still starting, or stopping?)`);
    }
    await sleep(100);
  }
}

function userLine(u: UserInfo): string {
  return [u.aor, u.displayName ? JSON.stringify(u.displayName) : '-', u.hasPassword ? 'password' : 'no-password'].join('  ');
}

function ruleLine(r: RuleInfo): string {
  const t = r.transformations;
  const shown = [t.hideNotes ? 'hide-notes' : '', t.hideDevices ? 'hide-devices' : '', t.basicOnly ? 'basic-only' : ''].filter(Boolean);
  return [r.presentity, r.watcher, r.action, ...(shown.length ? [`[${shown.join(',')}]`] : [])].join('  ');
}

/** A hidden prompt on a terminal; the first line of stdin otherwise (scripts). */
function readPassword(prompt: string): Promise<string> {
  const stdin = process.stdin;
  if (!stdin.isTTY) {
    return new Promise((resolve, reject) => {
      const rl = createInterface({ input: stdin });
      let done = false;
      rl.once('line', (line) => {
        done = true;
        rl.close();
        resolve(line);
      });
      rl.once('close', () => {
        if (!done) reject(new AdminError('invalid', 'no password given (--password, or a line on stdin)'));
      });
    });
  }
  return new Promise((resolve) => {
    process.stderr.write(prompt);
    stdin.setRawMode(true);
    stdin.resume();
    let pw = '';
    const onData = (buf: Buffer): void => {
      for (const ch of buf.toString('utf8')) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') {
          stdin.setRawMode(false);
          stdin.pause();
          stdin.off('data', onData);
          process.stderr.write('\n');
          resolve(pw);
          return;
        }
        if (ch === '\u0003') process.exit(130);
        if (ch === '\u007f') pw = pw.slice(0, -1);
        else pw += ch;
      }
    };
    stdin.on('data', onData);
  });
}
