/**
 * One client process of the held-connections bench (bench/connections.ts forks several: a
 * process may hold at most ~20,000 open files). Each connection, over TCP, TLS or WebSocket
 * from its own loopback source address, REGISTERs, SUBSCRIBEs to a buddy's presence, answers
 * the NOTIFYs, then stays idle but for keep-alives: CRLF CRLF pings on TCP/TLS (RFC 5626
 * §3.5.1, answered with one CRLF) and WebSocket pings (answered with pongs; the server's own
 * pings are answered by `ws`). Progress goes to the parent over IPC.
 */
import net from 'node:net';
import tls from 'node:tls';
import WebSocket from 'ws';

export type HeldTransport = 'tcp' | 'tls' | 'ws';

export interface ClientTask {
  readonly host: string;
  readonly ports: Readonly<Record<HeldTransport, number>>;
  readonly domain: string;
  /** Connection numbers [first, first + count) of the whole run. */
  readonly first: number;
  readonly count: number;
  /** All connections of the run (the buddy of n is n + 1 modulo this). */
  readonly total: number;
  /** Transport of connection n: transports[n % transports.length]. */
  readonly transports: readonly HeldTransport[];
  /** Connections from one source address (under the server's limits.maxConnectionsPerSource). */
  readonly perSource: number;
  /** Set-ups in flight at once in this process. */
  readonly concurrency: number;
  readonly keepAliveMs: number;
  readonly setupTimeoutMs: number;
}

export interface ClientCounts {
  opened: Record<HeldTransport, number>;
  registered: Record<HeldTransport, number>;
  subscribed: Record<HeldTransport, number>;
  notified: Record<HeldTransport, number>;
  /** Set-ups that failed (connection refused or closed, an error status, the time-out). */
  failed: Record<HeldTransport, number>;
  /** Connections closed after their set-up was done. */
  closedWhileHeld: Record<HeldTransport, number>;
  keepAlivesSent: Record<HeldTransport, number>;
  keepAlivesAnswered: Record<HeldTransport, number>;
  /** WebSocket pings from the server (answered by `ws`). */
  serverPings: number;
  /** Requests answered 503 and sent again after Retry-After. */
  retried: number;
  firstErrors: string[];
}

const zero = (): Record<HeldTransport, number> => ({ tcp: 0, tls: 0, ws: 0 });

export function emptyCounts(): ClientCounts {
  return {
    opened: zero(),
    registered: zero(),
    subscribed: zero(),
    notified: zero(),
    failed: zero(),
    closedWhileHeld: zero(),
    keepAlivesSent: zero(),
    keepAlivesAnswered: zero(),
    serverPings: 0,
    retried: 0,
    firstErrors: [],
  };
}

/** 127.a.b.c for source number s (c in 1..250: no .0, no .255). */
export function sourceAddress(s: number): string {
  const c = 1 + (s % 250);
  const rest = Math.floor(s / 250);
  return `127.${1 + Math.floor(rest / 250)}.${rest % 250}.${c}`;
}

interface Parsed {
  readonly start: string;
  readonly headers: Map<string, string>;
  readonly head: string;
}

function parse(text: string): Parsed {
  const end = text.indexOf('\r\n\r\n');
  const head = end >= 0 ? text.slice(0, end) : text;
  const lines = head.split('\r\n');
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    if (!headers.has(name)) headers.set(name, line.slice(colon + 1).trim());
  }
  return { start: lines[0] ?? '', headers, head };
}

/** The response to a request, with its Via, From, To, Call-ID and CSeq lines (RFC 3261 §8.2.6.2). */
function answer(req: Parsed, status: string): string {
  const copied = req.head
    .split('\r\n')
    .slice(1)
    .filter((l) => /^(via|v|from|f|to|t|call-id|i|cseq)\s*:/i.test(l));
  return `SIP/2.0 ${status}\r\n${copied.join('\r\n')}\r\nContent-Length: 0\r\n\r\n`;
}

class HeldConnection {
  private stream?: net.Socket;
  private ws?: WebSocket;
  private buf = '';
  private cseq = 1;
  private phase: 'connecting' | 'register' | 'subscribe' | 'held' | 'gone' = 'connecting';
  private subscribed = false;
  private notified = false;
  private keepAlive?: NodeJS.Timeout;
  private setupTimer?: NodeJS.Timeout;
  private readonly user: string;
  private readonly buddy: string;
  private readonly local: string;

  constructor(
    private readonly n: number,
    private readonly transport: HeldTransport,
    private readonly task: ClientTask,
    private readonly counts: ClientCounts,
    private readonly done: (ok: boolean) => void,
  ) {
    this.user = `held${n}`;
    this.buddy = `held${(n + 1) % task.total}`;
    this.local = sourceAddress(Math.floor(n / task.perSource));
  }

  start(): void {
    const { host, ports } = this.task;
    this.setupTimer = setTimeout(() => this.fail('set-up timed out'), this.task.setupTimeoutMs);
    const opened = (): void => {
      this.counts.opened[this.transport]++;
      this.phase = 'register';
      this.register();
    };
    if (this.transport === 'ws') {
      const ws = new WebSocket(`ws://${host}:${ports.ws}/`, ['sip'], { localAddress: this.local, perMessageDeflate: false });
      this.ws = ws;
      ws.on('open', opened);
      ws.on('message', (data: Buffer) => this.receive(data.toString('latin1')));
      ws.on('ping', () => this.counts.serverPings++);
      ws.on('pong', () => this.counts.keepAlivesAnswered.ws++);
      ws.on('error', (err) => this.fail(err.message));
      ws.on('close', () => this.closed());
      return;
    }
    const options = { host, port: ports[this.transport], localAddress: this.local };
    const socket = this.transport === 'tls' ? tls.connect({ ...options, rejectUnauthorized: false }) : net.connect(options);
    this.stream = socket;
    socket.setNoDelay(true);
    socket.once(this.transport === 'tls' ? 'secureConnect' : 'connect', opened);
    socket.on('data', (chunk: Buffer) => this.frame(chunk.toString('latin1')));
    socket.on('error', (err) => this.fail(err.message));
    socket.on('close', () => this.closed());
  }

  private get via(): string {
    const proto = this.transport.toUpperCase();
    const sentBy = this.transport === 'ws' ? `${this.user}.invalid` : `${this.local}:${this.stream?.localPort ?? 5060}`;
    return `Via: SIP/2.0/${proto} ${sentBy};rport;branch=z9hG4bK${this.n}x${this.cseq}x${Date.now() % 100000}`;
  }

  private get contact(): string {
    const at = this.transport === 'ws' ? `${this.user}.invalid` : `${this.local}:${this.stream?.localPort ?? 5060}`;
    return `<sip:${this.user}@${at};transport=${this.transport}>`;
  }

  private request(method: string, uri: string, to: string, extra: string[]): void {
    const d = this.task.domain;
    const msg = [
      `${method} ${uri} SIP/2.0`,
      this.via,
      'Max-Forwards: 70',
      `From: <sip:${this.user}@${d}>;tag=${method[0]}${this.n}`,
      `To: <sip:${to}@${d}>`,
      `Call-ID: ${method}-${this.n}@held.bench`,
      `CSeq: ${this.cseq++} ${method}`,
      `Contact: ${this.contact}`,
      ...extra,
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n');
    this.send(msg);
  }

  private register(): void {
    this.request('REGISTER', `sip:${this.task.domain}`, this.user, ['Expires: 3600']);
  }

  private subscribe(): void {
    this.request('SUBSCRIBE', `sip:${this.buddy}@${this.task.domain}`, this.buddy, ['Event: presence', 'Accept: application/pidf+xml', 'Expires: 3600']);
  }

  private send(text: string): void {
    if (this.ws) {
      if (this.ws.readyState === WebSocket.OPEN) this.ws.send(text);
    } else if (this.stream && !this.stream.destroyed) this.stream.write(text, 'latin1');
  }

  /** Cuts the stream by Content-Length; a lone CRLF is the answer to our CRLF CRLF ping. */
  private frame(text: string): void {
    this.buf += text;
    for (;;) {
      while (this.buf.startsWith('\r\n')) {
        this.counts.keepAlivesAnswered[this.transport]++;
        this.buf = this.buf.slice(2);
      }
      const end = this.buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const m = /\r\n(?:content-length|l)\s*:\s*(\d+)/i.exec(this.buf.slice(0, end));
      const total = end + 4 + (m ? Number(m[1]) : 0);
      if (this.buf.length < total) return;
      const msg = this.buf.slice(0, total);
      this.buf = this.buf.slice(total);
      this.receive(msg);
    }
  }

  private receive(text: string): void {
    if (/^[\r\n]*$/.test(text)) return;
    const msg = parse(text);
    if (msg.start.startsWith('SIP/2.0 ')) return this.response(msg);
    const method = msg.start.split(' ')[0];
    if (method === 'NOTIFY') {
      this.send(answer(msg, '200 OK'));
      if (!this.notified) {
        this.notified = true;
        this.counts.notified[this.transport]++;
        this.maybeHeld();
      }
      return;
    }
    this.send(answer(msg, method === 'OPTIONS' ? '200 OK' : '405 Method Not Allowed'));
  }

  private response(msg: Parsed): void {
    const status = Number(msg.start.split(' ')[1]);
    const method = (msg.headers.get('cseq') ?? '').split(/\s+/)[1];
    if (status < 200) return;
    if (status === 503) {
      // Overload control: send it again after Retry-After, as a client should (RFC 3261 §21.5.4).
      const after = Number(msg.headers.get('retry-after') ?? '1') || 1;
      this.counts.retried++;
      setTimeout(() => (method === 'REGISTER' ? this.register() : this.subscribe()), after * 1000 * (0.5 + Math.random())).unref();
      return;
    }
    if (status >= 300) return this.fail(`${method} answered ${msg.start}`);
    if (method === 'REGISTER' && this.phase === 'register') {
      this.counts.registered[this.transport]++;
      this.phase = 'subscribe';
      this.subscribe();
    } else if (method === 'SUBSCRIBE' && !this.subscribed) {
      this.subscribed = true;
      this.counts.subscribed[this.transport]++;
      this.maybeHeld();
    }
  }

  private maybeHeld(): void {
    if (!this.subscribed || !this.notified || this.phase === 'held' || this.phase === 'gone') return;
    this.phase = 'held';
    clearTimeout(this.setupTimer);
    // Keep-alives spread over the interval rather than all at once.
    const ping = (): void => {
      this.counts.keepAlivesSent[this.transport]++;
      if (this.ws) this.ws.ping();
      else this.stream?.write('\r\n\r\n');
    };
    this.keepAlive = setTimeout(() => {
      ping();
      this.keepAlive = setInterval(ping, this.task.keepAliveMs);
    }, Math.random() * this.task.keepAliveMs);
    this.done(true);
  }

  private fail(reason: string): void {
    if (this.phase === 'held' || this.phase === 'gone') return;
    this.phase = 'gone';
    clearTimeout(this.setupTimer);
    this.counts.failed[this.transport]++;
    if (this.counts.firstErrors.length < 10) this.counts.firstErrors.push(`${this.transport} ${this.local}: ${reason}`);
    this.close();
    this.done(false);
  }

  private closed(): void {
    clearTimeout(this.keepAlive);
    clearInterval(this.keepAlive);
    if (this.phase === 'held') {
      this.phase = 'gone';
      this.counts.closedWhileHeld[this.transport]++;
    } else this.fail('closed by the server');
  }

  close(): void {
    clearTimeout(this.keepAlive);
    clearInterval(this.keepAlive);
    this.ws?.terminate();
    this.stream?.destroy();
  }
}

/** Runs a task's set-ups (at most `concurrency` at once); resolves once each is held or failed. */
export function holdConnections(task: ClientTask, counts: ClientCounts): { ready: Promise<void>; close: () => void } {
  const conns: HeldConnection[] = [];
  let next = task.first;
  const end = task.first + task.count;
  let pending = task.count;
  let resolveReady!: () => void;
  const ready = new Promise<void>((r) => (resolveReady = r));
  if (pending === 0) resolveReady();
  const launch = (): void => {
    if (next >= end) return;
    const n = next++;
    const conn = new HeldConnection(n, task.transports[n % task.transports.length]!, task, counts, () => {
      if (--pending === 0) resolveReady();
      launch();
    });
    conns.push(conn);
    conn.start();
  };
  for (let k = 0; k < task.concurrency; k++) launch();
  return { ready, close: () => conns.forEach((c) => c.close()) };
}

// Forked by bench/connections.ts: the task comes as the first IPC message; progress goes back
// every second; 'stop' closes every connection and ends the process.
if (process.send && process.env.HELD_CONNECTIONS_CLIENT === '1') {
  const counts = emptyCounts();
  process.once('message', (task: ClientTask) => {
    const run = holdConnections(task, counts);
    const report = (): boolean => process.send!({ counts });
    const timer = setInterval(report, 1000);
    void run.ready.then(() => process.send!({ counts, ready: true }));
    process.on('message', (m: unknown) => {
      if (m === 'report') report();
      if (m === 'stop') {
        clearInterval(timer);
        run.close();
        process.send!({ counts, stopped: true }, () => process.exit(0));
      }
    });
  });
  process.on('disconnect', () => process.exit(0));
}
