/**
 * `node dist/bench/room-fanout.js [MEMBERS] [MESSAGES]`: the fan-out cost of a chat room
 * (issue 22): how long from one MESSAGE to a room of MEMBERS members (default 1000) until
 * every other member has its copy, over loopback UDP.
 *
 * The server (store off, authentication off) runs in a worker thread, so that this thread's
 * clients do not share its event loop. Members register from 20 UDP sockets here (one
 * contact each), are made members through the room service, and answer every MESSAGE 200
 * at once. Then MESSAGES messages (default 10) are sent one after the other, each once the
 * last copy of the one before has come; the time of each is printed, and the median.
 */
import dgram from 'node:dgram';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { SipRequest } from '../src/sip/message.js';
import { parseMessage } from '../src/sip/parser.js';
import { createResponse } from '../src/sip/response.js';

const SOCKETS = 20;
const ROOM = 'sip:bench@example.com';

interface Setup {
  readonly members: number;
}

if (isMainThread) await main();
else await serve(workerData as Setup);

async function main(): Promise<void> {
  const members = Number(process.argv[2] ?? 1000);
  const messages = Number(process.argv[3] ?? 10);
  const worker = new Worker(new URL(import.meta.url), { workerData: { members } satisfies Setup });
  const port = await new Promise<number>((resolve) => worker.once('message', (m: { port: number }) => resolve(m.port)));
  const sockets = await Promise.all(Array.from({ length: SOCKETS }, () => bound()));
  let copies = 0;
  let registered = 0;
  for (const s of sockets) {
    s.on('message', (data, rinfo) => {
      const parsed = parseMessage(data);
      if (!parsed.ok) return;
      const m = parsed.message;
      if (m instanceof SipRequest) {
        s.send(createResponse(m, 200).toBuffer(), rinfo.port, rinfo.address);
        if (m.method === 'MESSAGE') copies++;
      } else if (m.cseq.method === 'REGISTER' && m.status === 200) registered++;
    });
  }
  // Member i registers from socket i % SOCKETS, a few hundred at a time.
  for (let i = 0; i < members; i += 200) {
    const target = Math.min(members, i + 200);
    for (let j = i; j < target; j++) sockets[j % SOCKETS]!.send(register(j, sockets[j % SOCKETS]!.address().port), port, '127.0.0.1');
    const deadline = Date.now() + 10_000;
    while (registered < target && Date.now() < deadline) await new Promise((r) => setTimeout(r, 1));
  }
  if (registered < members) throw new Error(`only ${registered} of ${members} registered`);
  worker.postMessage({ join: true });
  await new Promise((resolve) => worker.once('message', resolve));
  const times: number[] = [];
  for (let k = 0; k < messages; k++) {
    const want = copies + members - 1;
    const t0 = performance.now();
    sockets[0]!.send(message(k, sockets[0]!.address().port), port, '127.0.0.1');
    const deadline = Date.now() + 30_000;
    while (copies < want && Date.now() < deadline) await new Promise((r) => setImmediate(r));
    if (copies < want) throw new Error(`message ${k}: ${copies - (want - members + 1)} of ${members - 1} copies arrived`);
    times.push(performance.now() - t0);
  }
  const sorted = [...times].sort((a, b) => a - b);
  console.log(`${members} members, ${messages} messages: ms until every other member had its copy: ${times.map((t) => t.toFixed(1)).join(' ')}`);
  console.log(`median ${sorted[Math.floor(sorted.length / 2)]!.toFixed(1)} ms, best ${sorted[0]!.toFixed(1)} ms, worst ${sorted[sorted.length - 1]!.toFixed(1)} ms`);
  for (const s of sockets) s.close();
  await worker.terminate();
}

function bound(): Promise<dgram.Socket> {
  const s = dgram.createSocket('udp4');
  return new Promise((resolve) => s.bind(0, '127.0.0.1', () => resolve(s)));
}

function register(i: number, localPort: number): Buffer {
  return Buffer.from(
    `REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:${localPort};branch=z9hG4bKreg${i};rport\r\nMax-Forwards: 70\r\n` +
      `From: <sip:m${i}@example.com>;tag=r${i}\r\nTo: <sip:m${i}@example.com>\r\nCall-ID: reg-${i}@bench\r\nCSeq: 1 REGISTER\r\n` +
      `Contact: <sip:m${i}@127.0.0.1:${localPort}>\r\nExpires: 3600\r\nContent-Length: 0\r\n\r\n`,
  );
}

function message(k: number, localPort: number): Buffer {
  const body = `message ${k} to everyone in the room`;
  return Buffer.from(
    `MESSAGE ${ROOM} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:${localPort};branch=z9hG4bKmsg${k};rport\r\nMax-Forwards: 70\r\n` +
      `From: <sip:m0@example.com>;tag=s${k}\r\nTo: <${ROOM}>\r\nCall-ID: msg-${k}@bench\r\nCSeq: ${k + 1} MESSAGE\r\n` +
      `Content-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

async function serve(setup: Setup): Promise<void> {
  const { loadConfig } = await import('../src/config/config.js');
  const { SimplePresenceServer } = await import('../src/server.js');
  const { createLogger } = await import('../src/util/logger.js');
  const config = loadConfig({
    env: {},
    overrides: {
      sip: { hosts: ['127.0.0.1'], port: 0, domain: 'example.com', drainTimeoutMs: 0 },
      http: { host: '127.0.0.1', port: 0 },
      auth: { required: false },
      overload: { enabled: false },
      limits: { rate: { requestsPerSecond: 1_000_000, burst: 1_000_000 } },
      registrar: { maxExpires: 3600 },
      messaging: { rooms: { maxMembers: Math.max(1, setup.members), maxMessagesPerMinute: 1_000_000 } },
      log: { level: 'silent' },
    },
  });
  const server = new SimplePresenceServer(config, { logger: createLogger('silent'), store: false });
  const listeners = await server.start();
  parentPort!.on('message', async () => {
    for (let i = 0; i < setup.members; i++) {
      const r = await server.rooms.join(ROOM, `sip:m${i}@example.com`);
      if (!r.ok) throw new Error(`join ${i}: ${r.status} ${r.reason}`);
    }
    parentPort!.postMessage({ joined: true });
  });
  parentPort!.postMessage({ port: listeners.find((l) => l.protocol === 'udp')!.port });
}
