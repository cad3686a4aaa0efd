// The embedded store's own thread: PGlite (PostgreSQL in WebAssembly) runs here, so its
// work (every write-behind flush, every query) does not take the SIP thread's time.
// Protocol: one request a message, one answer each, in order (the caller serializes).
import { parentPort, workerData } from 'node:worker_threads';
import type { PGlite } from '@electric-sql/pglite';
import type { WorkerAnswer, WorkerRequest } from './engine-remote.js';

const port = parentPort!;
const { dataDir } = workerData as { dataDir?: string };

function errorOf(err: unknown): WorkerAnswer & { ok: false } {
  const e = err as Record<string, unknown>;
  const fields: Record<string, string> = {};
  for (const k of ['code', 'detail', 'hint', 'severity', 'constraint', 'table', 'column']) if (typeof e?.[k] === 'string') fields[k] = e[k] as string;
  return { id: 0, ok: false, message: err instanceof Error ? err.message : String(err), fields };
}

let pglite: PGlite;
try {
  const { PGlite: Ctor } = await import('@electric-sql/pglite');
  pglite = new Ctor(dataDir);
  await pglite.waitReady;
  port.postMessage({ id: 0, ok: true, ready: true } satisfies WorkerAnswer);
} catch (err) {
  port.postMessage(errorOf(err));
  process.exit(1);
}

port.on('message', (req: WorkerRequest) => {
  void (async () => {
    try {
      if (req.op === 'query') {
        const res = await pglite.query(req.sql, req.params);
        port.postMessage({
          id: req.id,
          ok: true,
          result: { rows: res.rows, fields: res.fields.map((f) => ({ name: f.name, dataTypeID: f.dataTypeID })), affectedRows: res.affectedRows, rowCount: (res as { rowCount?: number }).rowCount },
        } satisfies WorkerAnswer);
      } else if (req.op === 'exec') {
        await pglite.exec(req.sql);
        port.postMessage({ id: req.id, ok: true } satisfies WorkerAnswer);
      } else if (req.op === 'backup') {
        throw new Error('backup is not offered on PGlite');
      } else {
        await pglite.close();
        port.postMessage({ id: req.id, ok: true } satisfies WorkerAnswer);
        port.close();
      }
    } catch (err) {
      port.postMessage({ ...errorOf(err), id: req.id });
    }
  })();
});
