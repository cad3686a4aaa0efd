// The PIDF reader's own thread (reader-thread.ts): parses published documents off the SIP
// thread. Protocol: `{ id, body, verdict? }` in, `{ id, result }` out (the document, or with
// `verdict` only what verdictOf keeps of it), one answer a request, in order.
import { parentPort, workerData } from 'node:worker_threads';
import { parsePidf, verdictOf, type PidfLimits } from './parse-pidf.js';

const port = parentPort!;
const limits = (workerData as { limits?: PidfLimits } | undefined)?.limits;

port.on('message', (req: { id: number; body: Uint8Array; verdict?: boolean }) => {
  const body = Buffer.from(req.body.buffer, req.body.byteOffset, req.body.byteLength);
  const result = parsePidf(body, limits);
  port.postMessage({ id: req.id, result: req.verdict ? verdictOf(result) : result });
});
