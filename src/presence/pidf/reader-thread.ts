import type { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { startModuleWorker } from '../../util/module-worker.js';
import { parsePidf, verdictOf, type ParsePidfResult, type PidfLimits, type PidfVerdict } from './parse-pidf.js';

/** Documents waiting for the thread, at most; past that they are parsed in line. */
const MAX_IN_FLIGHT = 1024;

/** A document unanswered this long means the thread is stuck (a parse takes well under 1 ms). */
const STUCK_AFTER_MS = 5000;
/** Before its first answer the thread may still be starting (loading its modules). */
const START_GRACE_MS = 30_000;

interface Waiting {
  readonly body: Buffer;
  readonly sentAt: number;
  /** Only the verdict was asked for (`check`). */
  readonly verdict: boolean;
  readonly resolve: (r: ParsePidfResult | PidfVerdict) => void;
}

/**
 * Parses published PIDF documents on a worker thread of their own (reader-worker.ts), so
 * that the XML work of every PUBLISH — the largest part of its cost — runs on another core
 * than the SIP thread. The thread starts at the first document. The answer is the same as
 * `parsePidf` in line, which is also what happens when the thread is busy past its bound,
 * has died, stays silent past STUCK_AFTER_MS (it is then ended), or is closed: every
 * document gets its answer.
 */
export class PidfReaderThread {
  private worker?: Worker;
  private watchdog?: NodeJS.Timeout;
  private dead = false;
  private answered = false;
  private nextId = 1;
  private readonly waiting = new Map<number, Waiting>();

  constructor(
    private readonly limits?: PidfLimits,
    private readonly log?: Logger,
    private readonly stuckAfterMs = STUCK_AFTER_MS,
  ) {}

  parse(body: Buffer): Promise<ParsePidfResult> {
    return this.ask(body, false) as Promise<ParsePidfResult>;
  }

  /** `parse` reduced to its verdict (verdictOf), which is all that crosses back from the thread. */
  check(body: Buffer): Promise<PidfVerdict> {
    return this.ask(body, true) as Promise<PidfVerdict>;
  }

  private ask(body: Buffer, verdict: boolean): Promise<ParsePidfResult | PidfVerdict> {
    if (this.dead || this.waiting.size >= MAX_IN_FLIGHT) return Promise.resolve(this.inLine(body, verdict));
    const worker = this.worker ?? this.start();
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.waiting.set(id, { body, sentAt: performance.now(), verdict, resolve });
      // A copy of its own: a view would carry its whole underlying buffer (the datagram's) across.
      worker.postMessage(verdict ? { id, body: new Uint8Array(body), verdict } : { id, body: new Uint8Array(body) });
    });
  }

  private inLine(body: Buffer, verdict: boolean): ParsePidfResult | PidfVerdict {
    const r = parsePidf(body, this.limits);
    return verdict ? verdictOf(r) : r;
  }

  /** Documents sent to the thread and not answered yet. */
  get inFlight(): number {
    return this.waiting.size;
  }

  async close(): Promise<void> {
    const worker = this.worker;
    this.stop();
    if (worker) await worker.terminate();
  }

  /** The oldest document still waiting is too old: the thread is stuck; end it, parse here. */
  private checkStuck(): void {
    const oldest = this.waiting.values().next().value;
    const limit = this.answered ? this.stuckAfterMs : Math.max(this.stuckAfterMs, START_GRACE_MS);
    if (!oldest || performance.now() - oldest.sentAt < limit) return;
    this.log?.error({ waiting: this.waiting.size }, 'PIDF reader thread stuck; documents are parsed on the SIP thread from now on');
    const worker = this.worker;
    this.stop();
    void worker?.terminate();
  }

  private start(): Worker {
    const worker = startModuleWorker(import.meta.url, 'reader-worker', { limits: this.limits });
    worker.on('message', (a: { id: number; result: ParsePidfResult | PidfVerdict }) => {
      this.answered = true;
      const w = this.waiting.get(a.id);
      if (!w) return;
      this.waiting.delete(a.id);
      w.resolve(a.result);
    });
    worker.on('error', (err) => {
      this.log?.error({ err }, 'PIDF reader thread failed; documents are parsed on the SIP thread from now on');
      this.stop();
    });
    worker.on('exit', () => this.stop());
    // The thread must not keep the process alive on its own, nor its watchdog.
    worker.unref();
    this.watchdog = setInterval(() => this.checkStuck(), Math.max(10, this.stuckAfterMs / 5));
    this.watchdog.unref();
    this.worker = worker;
    return worker;
  }

  /** No more thread: what it still held is parsed here. */
  private stop(): void {
    this.dead = true;
    this.worker = undefined;
    clearInterval(this.watchdog);
    this.watchdog = undefined;
    const waiting = [...this.waiting.values()];
    this.waiting.clear();
    for (const w of waiting) w.resolve(this.inLine(w.body, w.verdict));
  }
}
