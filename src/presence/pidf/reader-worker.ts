// The PIDF reader's own thread (reader-thread.ts): parses published documents off the SIP
// thread. Protocol: `{ id, body }` in, `{ id, result }` out, one answer a request, in order.
import { parentPort, workerData } from 'node:worker_threads';
import { parsePidf, type PidfLimits } from './parse-pidf.js';

const port = parentPort!;
const limits = (workerData as { limits?: PidfLimits } | undefined)?.limits;

port.on('message', (req: { id: number; body: Uint8Array }) => {
  const body = Buffer.from(req.body.buffer, req.body.byteOffset, req.body.byteLength);
  port.postMessage({ id: req.id, result: parsePidf(body, limits) });
});
