/**
 * `node --import tsx bench/list-bench.ts [MEMBERS]` (or `node dist/bench/list-bench.js`): one
 * list subscription (RFC 4662) with the list in the SUBSCRIBE (RFC 5367) to a server in this
 * process (store off, defaults otherwise), every member having published a PIDF document.
 * Reports the time from the SUBSCRIBE to the last NOTIFY that completes the first full state
 * (a list larger than one NOTIFY is split), how many NOTIFYs that took and their sizes, plain
 * and deflated (Accept-Encoding: deflate). Raw SIP over loopback TCP, answered at once; the
 * figures are this machine's, a measurement and not a test (docs/lists.md).
 */
import net from 'node:net';
import { inflateSync } from 'node:zlib';
import { loadConfig } from '../src/config/config.js';
import { parseListNotify } from '../src/lists/list-notify.js';
import { serializeResourceLists } from '../src/lists/resource-lists.js';
import { SimplePresenceServer } from '../src/server.js';
import type { SipRequest } from '../src/sip/message.js';
import { SipRequest as Request } from '../src/sip/message.js';
import { parseMessage } from '../src/sip/parser.js';
import { createResponse, randomToken } from '../src/sip/response.js';
import { StreamFramer } from '../src/transport/stream-framer.js';
import { createLogger } from '../src/util/logger.js';

const MEMBERS = Number(process.argv[2] ?? 500);

const pidf = (entity: string, i: number): string =>
  '<?xml version="1.0" encoding="UTF-8"?>\n' +
  `<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="${entity}">` +
  `<tuple id="t${i}"><status><basic>open</basic></status><contact>${entity}</contact></tuple>` +
  `<dm:person id="p${i}"><rpid:activities><rpid:away/></rpid:activities></dm:person><note>member ${i} at lunch</note></presence>`;

/** A raw SIP client on one TCP connection: sends requests, answers NOTIFYs 200, hands each message on. */
class Client {
  private readonly framer = new StreamFramer(1 << 22);
  private waiters: Array<(m: { req?: SipRequest; status?: number; size: number }) => boolean> = [];
  constructor(private readonly socket: net.Socket) {
    socket.on('data', (chunk) => {
      for (const ev of this.framer.push(chunk)) {
        if (ev.kind !== 'message') continue;
        const r = parseMessage(ev.data);
        if (!r.ok) continue;
        const m = r.message;
        if (m instanceof Request) {
          if (m.method === 'NOTIFY') socket.write(createResponse(m, 200).toBuffer());
          this.dispatch({ req: m, size: ev.data.length });
        } else {
          const status = (m as { status: number }).status;
          // A refused request would leave the bench waiting for ever: say what came back.
          if (status >= 300) console.error(`${m.getHeader('cseq')}: ${status} ${(m as { reason?: string }).reason ?? ''}`);
          this.dispatch({ status, size: ev.data.length });
        }
      }
    });
  }
  static async connect(port: number): Promise<Client> {
    const s = net.connect({ host: '127.0.0.1', port });
    await new Promise<void>((resolve, reject) => s.once('connect', resolve).once('error', reject));
    return new Client(s);
  }
  get local(): string {
    return `127.0.0.1:${this.socket.localPort}`;
  }
  send(req: Request): void {
    this.socket.write(req.toBuffer());
  }
  /** Resolves when `match` returns true for a message. */
  until(match: (m: { req?: SipRequest; status?: number; size: number }) => boolean): Promise<void> {
    return new Promise((resolve) => this.waiters.push((m) => (match(m) ? (resolve(), true) : false)));
  }
  private dispatch(m: { req?: SipRequest; status?: number; size: number }): void {
    this.waiters = this.waiters.filter((w) => !w(m));
  }
  close(): void {
    this.socket.destroy();
  }
}

function request(c: Client, method: string, uri: string, from: string, headers: Array<[string, string | number]>, body?: Buffer, contentType?: string): Request {
  const req = new Request(method, uri);
  req.addHeader('Via', `SIP/2.0/TCP ${c.local};branch=z9hG4bK${randomToken()}`);
  req.addHeader('Max-Forwards', 70);
  req.addHeader('From', `<${from}>;tag=${randomToken()}`);
  req.addHeader('To', `<${uri}>`);
  req.addHeader('Call-ID', `${randomToken(12)}@bench`);
  req.addHeader('CSeq', `1 ${method}`);
  req.addHeader('Contact', `<sip:bench@${c.local};transport=tcp>`);
  for (const [k, v] of headers) req.setHeader(k, v);
  if (body) {
    req.body = body;
    req.setHeader('Content-Type', contentType!);
  }
  return req;
}

async function run(deflate: boolean): Promise<void> {
  const config = loadConfig({ env: {}, overrides: { sip: { hosts: ['127.0.0.1'], port: 0, domain: 'example.com', drainTimeoutMs: 0 }, http: { host: '127.0.0.1', port: 0 }, auth: { required: false }, overload: { enabled: false }, store: { enabled: false }, limits: { rate: { requestsPerSecond: 1_000_000, burst: 1_000_000 } }, presence: { maxListMembers: Math.max(1000, MEMBERS) }, log: { level: 'silent' } } });
  const server = new SimplePresenceServer(config, { logger: createLogger('silent'), store: false });
  const listeners = await server.start();
  const port = listeners.find((l) => l.protocol === 'tcp')!.port;
  const c = await Client.connect(port);
  try {
    const uris = Array.from({ length: MEMBERS }, (_, i) => `sip:member${i}@example.com`);
    // Every member publishes (one PUBLISH at a time in windows of 50). From one address: the
    // per-source rate limit (limits.rate, 200/s) is lifted above, or it drops what passes it.
    for (let i = 0; i < uris.length; i += 50) {
      const batch = uris.slice(i, i + 50);
      let left = batch.length;
      const done = c.until((m) => m.status !== undefined && --left === 0);
      batch.forEach((u, k) => c.send(request(c, 'PUBLISH', u, u, [['Event', 'presence'], ['Expires', 3600]], Buffer.from(pidf(u, i + k)), 'application/pidf+xml')));
      await done;
    }
    const list = serializeResourceLists({ lists: [{ kind: 'list', members: uris.map((uri) => ({ kind: 'entry' as const, uri })) }] });
    const sizes: number[] = [];
    const bodies: number[] = [];
    const told = new Set<string>();
    const complete = c.until((m) => {
      if (m.req?.method !== 'NOTIFY') return false;
      sizes.push(m.size);
      let body = m.req.body;
      if (m.req.getHeader('content-encoding') === 'deflate') body = inflateSync(body);
      bodies.push(body.length);
      const r = parseListNotify(m.req.getHeader('content-type') ?? '', body);
      if (r.ok) for (const res of r.notify.rlmi.resources) if (res.instances[0]?.state === 'active' && res.instances[0].cid && r.notify.parts.has(res.instances[0].cid)) told.add(res.uri);
      return told.size === uris.length;
    });
    const t0 = performance.now();
    c.send(
      request(c, 'SUBSCRIBE', 'sip:rls@example.com', 'sip:watcher@example.com', [
        ['Event', 'presence'], ['Expires', 600], ['Supported', 'eventlist'], ['Require', 'recipient-list-subscribe'], ['Content-Disposition', 'recipient-list'],
        ['Accept', 'multipart/related, application/rlmi+xml, application/pidf+xml'], ...(deflate ? ([['Accept-Encoding', 'deflate']] as Array<[string, string]>) : []),
      ], list, 'application/resource-lists+xml'),
    );
    await complete;
    const ms = performance.now() - t0;
    const kb = (n: number): string => `${(n / 1024).toFixed(1)} KB`;
    console.log(
      `${MEMBERS} members, ${deflate ? 'deflate' : 'plain  '}: first full state in ${ms.toFixed(0)} ms, ${sizes.length} NOTIFY${sizes.length === 1 ? '' : 's'}, ` +
        `largest ${kb(Math.max(...sizes))} on the wire (body ${kb(Math.max(...bodies))} inflated), all together ${kb(sizes.reduce((a, b) => a + b, 0))}; list body ${kb(list.length)}`,
    );
  } finally {
    c.close();
    await server.stop();
  }
}

await run(false);
await run(true);
