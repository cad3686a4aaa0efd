// The PIDF reader's own thread (reader-thread.ts): parses published documents off the SIP
// thread. Protocol: a ReaderBatch in (the documents of one turn of the SIP thread's loop, their
// bytes in one transferred buffer), ReaderAnswers out (for each the document, or with its
// verdict flag only what verdictOf keeps of it), one answer a batch, in order.
import { parentPort, workerData } from 'node:worker_threads';
import { parsePidf, verdictOf, type PidfLimits } from './parse-pidf.js';
import type { ReaderAnswers, ReaderBatch } from './reader-thread.js';

const port = parentPort!;
const limits = (workerData as { limits?: PidfLimits } | undefined)?.limits;

port.on('message', (batch: ReaderBatch) => {
  const results: ReaderAnswers['results'][number][] = [];
  let start = 0;
  for (let i = 0; i < batch.ids.length; i++) {
    const end = batch.ends[i]!;
    const result = parsePidf(Buffer.from(batch.data, start, end - start), limits);
    results.push(batch.verdicts[i] ? verdictOf(result) : result);
    start = end;
  }
  const answers: ReaderAnswers = { ids: batch.ids, results };
  port.postMessage(answers);
});
