/**
 * `npm run bench:shed`: what a 503 from overload control costs the SIP thread, next to serving
 * the request, in one run. At 2 × the sustained rate the refused half must cost well under a
 * tenth of a served call each for the server to go on completing 90 % of its sustained rate
 * (docs/performance.md, Overload): this is the figure to check after changes to the parser or
 * the transaction layer.
 *
 * The server (store off, otherwise as configured by default: PIDF documents parsed on a thread
 * of their own) runs in a worker thread, so that the SIP thread's CPU time, the bottleneck, is
 * measured alone; this thread sends it initial PUBLISHes with a PIDF body over
 * loopback UDP, in bursts it answers before the next, and counts the answers. Once with
 * overload control refusing every new request (an injected reading far over the target), once
 * with it off. Usage: npm run bench:shed [-- REQUESTS]
 */
import dgram from 'node:dgram';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';

interface Run {
  readonly refuse: boolean;
}

if (isMainThread) await main();
else await serve(workerData as Run);

async function main(): Promise<void> {
  const n = Number(process.argv[2] ?? 20_000);
  const results: Array<{ mode: string; us: number; answers: Record<string, number> }> = [];
  for (const refuse of [true, false, true, false]) results.push(await measure(refuse, n));
  const best = (mode: string): number => Math.min(...results.filter((r) => r.mode === mode).map((r) => r.us));
  for (const r of results) console.log(`${r.mode.padEnd(7)} ${r.us.toFixed(1).padStart(7)} µs of SIP-thread CPU per initial PUBLISH   answers ${JSON.stringify(r.answers)}`);
  const refused = best('refused');
  const served = best('served');
  console.log(`a 503 costs ${((refused / served) * 100).toFixed(0)} % of serving (best of two runs each, ${n} requests a run)`);
}

async function measure(refuse: boolean, n: number): Promise<{ mode: string; us: number; answers: Record<string, number> }> {
  const worker = new Worker(new URL(import.meta.url), { workerData: { refuse } satisfies Run });
  const port = await new Promise<number>((resolve) => worker.once('message', (m: { port: number }) => resolve(m.port)));
  const client = dgram.createSocket('udp4');
  await new Promise<void>((r) => client.bind(0, '127.0.0.1', () => r()));
  const answers: Record<string, number> = {};
  let answered = 0;
  client.on('message', (data) => {
    const status = data.toString('latin1', 8, 11);
    answers[status] = (answers[status] ?? 0) + 1;
    answered++;
  });
  const local = client.address().port;
  const run = `${refuse ? 'r' : 's'}${process.hrtime.bigint()}`;
  const send = async (from: number, to: number): Promise<void> => {
    for (let i = from; i < to; i += 100) {
      const target = answered + Math.min(100, to - i);
      for (let j = i; j < Math.min(to, i + 100); j++) client.send(publish(j, run, local), port, '127.0.0.1');
      const deadline = Date.now() + 5000;
      while (answered < target && Date.now() < deadline) await new Promise((r) => setImmediate(r));
    }
  };
  await send(0, 2000); // warm-up: the JIT, the first allocations
  const before = await cpu(worker);
  await send(2000, 2000 + n);
  const after = await cpu(worker);
  client.close();
  await worker.terminate();
  return { mode: refuse ? 'refused' : 'served', us: (after - before) / n, answers };
}

function cpu(worker: Worker): Promise<number> {
  worker.postMessage('cpu');
  return new Promise((resolve) => worker.once('message', (m: { cpu: number }) => resolve(m.cpu)));
}

function publish(i: number, run: string, port: number): Buffer {
  const user = `user${i}x${run}`;
  const body =
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:${user}@127.0.0.1">\n` +
    '  <tuple id="t1"><status><basic>open</basic></status><note>benchmark</note></tuple>\n</presence>\n';
  return Buffer.from(
    `PUBLISH sip:${user}@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:${port};branch=z9hG4bK${run}-${i}\r\nMax-Forwards: 70\r\n` +
      `From: <sip:${user}@127.0.0.1>;tag=p${i}\r\nTo: <sip:${user}@127.0.0.1>\r\nCall-ID: ${i}-${run}@127.0.0.1\r\nCSeq: 1 PUBLISH\r\n` +
      `Event: presence\r\nExpires: 3600\r\nContent-Type: application/pidf+xml\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

async function serve(run: Run): Promise<void> {
  const { loadConfig } = await import('../src/config/config.js');
  const { SimplePresenceServer } = await import('../src/server.js');
  const { createLogger } = await import('../src/util/logger.js');
  const config = loadConfig({
    env: {},
    overrides: {
      sip: { hosts: ['127.0.0.1'], port: 0, transports: ['udp'] },
      http: { host: '127.0.0.1', port: 0 },
      auth: { required: false },
      limits: { rate: { requestsPerSecond: 1_000_000_000, burst: 1_000_000_000 } },
      overload: { enabled: run.refuse },
      log: { level: 'silent' },
    },
  });
  const server = new SimplePresenceServer(config, {
    logger: createLogger('silent'),
    store: false,
    controlSocket: false,
    // Far over any target, measured, no stall: every new request is refused from the first window on.
    overload: { delay: { read: () => ({ queueDelayMs: 10_000, measured: true, eventLoopLagMs: 0, cpuWaitMs: 0 }) } },
  });
  const listeners = await server.start();
  if (run.refuse) while (server.overload!.level < 1) await new Promise((r) => setTimeout(r, 20));
  parentPort!.on('message', () => {
    const { user, system } = process.threadCpuUsage();
    parentPort!.postMessage({ cpu: user + system });
  });
  parentPort!.postMessage({ port: listeners.find((l) => l.protocol === 'udp')!.port });
}
