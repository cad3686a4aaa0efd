import net from 'node:net';
import { MAX_CONTROL_LINE, type ControlOp, type ControlRequest, type ControlResponse } from './control-protocol.js';
import { AdminError, type AdminErrorCode, type AdminOperations, type ListInput, type RuleInfo, type RuleInput, type UserInfo } from './operations.js';
import type { StoredListInfo } from '../lists/stored-lists.js';

/** No server listens on the control socket (the CLI then opens the store itself). */
export class NoServerError extends Error {
  override name = 'NoServerError';
}

const CODES: readonly string[] = ['invalid', 'not-found', 'exists', 'unavailable'];

/**
 * The CLI's end of the control channel: AdminOperations carried over the unix socket to
 * the running server, one connection per client.
 */
export class ControlClient implements AdminOperations {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private buf = '';

  private constructor(private readonly socket: net.Socket, private readonly timeoutMs: number) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('close', () => this.failAll(new AdminError('unavailable', 'control connection closed')));
    socket.on('error', () => undefined);
  }

  /** Connects; NoServerError when nobody listens there. */
  static connect(path: string, timeoutMs = 10_000): Promise<ControlClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(path);
      socket.once('connect', () => {
        socket.removeAllListeners('error');
        resolve(new ControlClient(socket, timeoutMs));
      });
      socket.once('error', (err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') reject(new NoServerError(`no server on ${path}`));
        else reject(err);
      });
    });
  }

  close(): void {
    this.socket.end();
  }

  listUsers(options: { limit?: number; after?: string } = {}): Promise<UserInfo[]> {
    return this.call('users.list', { ...options }) as Promise<UserInfo[]>;
  }

  addUser(input: { username: string; password: string; displayName?: string }): Promise<UserInfo> {
    return this.call('users.add', { ...input }) as Promise<UserInfo>;
  }

  async setPassword(username: string, password: string): Promise<void> {
    await this.call('users.passwd', { username, password });
  }

  async deleteUser(username: string): Promise<void> {
    await this.call('users.del', { username });
  }

  listRules(presentity: string): Promise<RuleInfo[]> {
    return this.call('rules.list', { presentity }) as Promise<RuleInfo[]>;
  }

  setRule(input: RuleInput): Promise<{ rule: RuleInfo; affected: number }> {
    return this.call('rules.set', { ...input }) as Promise<{ rule: RuleInfo; affected: number }>;
  }

  deleteRule(presentity: string, watcher: string): Promise<{ affected: number }> {
    return this.call('rules.del', { presentity, watcher }) as Promise<{ affected: number }>;
  }

  backup(file: string): Promise<{ file: string; bytes: number }> {
    return this.call('db.backup', { file }) as Promise<{ file: string; bytes: number }>;
  }

  exportTo(file: string): Promise<{ file: string; rows: number }> {
    return this.call('db.export', { file }) as Promise<{ file: string; rows: number }>;
  }

  listLists(owner: string): Promise<StoredListInfo[]> {
    return this.call('lists.list', { owner }) as Promise<StoredListInfo[]>;
  }

  setList(input: ListInput): Promise<{ list: StoredListInfo; affected: number }> {
    return this.call('lists.set', { ...input }) as Promise<{ list: StoredListInfo; affected: number }>;
  }

  deleteList(owner: string, name: string): Promise<{ affected: number }> {
    return this.call('lists.del', { owner, name }) as Promise<{ affected: number }>;
  }

  private call(op: ControlOp, args: Record<string, unknown>): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new AdminError('unavailable', `no answer from the server to ${op}`));
      }, this.timeoutMs);
      this.waiting.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      const request: ControlRequest = { id, op, args };
      this.socket.write(`${JSON.stringify(request)}\n`);
    });
  }

  private onData(chunk: string): void {
    this.buf += chunk;
    if (this.buf.length > MAX_CONTROL_LINE * 64) {
      this.socket.destroy();
      return;
    }
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      let res: ControlResponse;
      try {
        res = JSON.parse(line) as ControlResponse;
      } catch {
        continue;
      }
      const w = this.waiting.get(res.id);
      if (!w) continue;
      this.waiting.delete(res.id);
      if (res.ok) w.resolve(res.result);
      else w.reject(new AdminError((CODES.includes(res.error.code) ? res.error.code : 'unavailable') as AdminErrorCode, res.error.message));
    }
  }

  private failAll(err: Error): void {
    for (const w of this.waiting.values()) w.reject(err);
    this.waiting.clear();
  }
}
