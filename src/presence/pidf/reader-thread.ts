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

/** Documents asked for in one turn of the event loop, crossing to the thread in one message. */
export interface ReaderBatch {
  readonly ids: readonly number[];
  readonly verdicts: readonly boolean[];
  /** Where each body ends in `data` (the first starts at 0). */
  readonly ends: readonly number[];
  /** The bodies one after the other, in memory of its own (transferred, not copied). */
  readonly data: ArrayBuffer;
}

/** The thread's answers to one batch, in its order. */
export interface ReaderAnswers {
  readonly ids: readonly number[];
  readonly results: ReadonlyArray<ParsePidfResult | PidfVerdict>;
}

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
 * than the SIP thread. The thread starts at the first document. The documents of one turn of
 * the event loop (the SIP thread reads up to 32 datagrams a turn) cross in one message and
 * come back in one: a message each way cost both threads more than the parse itself. The answer is the same as
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
  /** Asked for in this turn, not sent yet (ids into `waiting`). */
  private batch: number[] = [];

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
    if (!this.worker) this.start();
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.waiting.set(id, { body, sentAt: performance.now(), verdict, resolve });
      // Sent once the loop has read what it reads this turn (setImmediate runs after the poll phase).
      if (this.batch.length === 0) setImmediate(this.flush);
      this.batch.push(id);
    });
  }

  /** The turn's documents to the thread: their bytes copied once, into memory the message takes along. */
  private readonly flush = (): void => {
    const ids = this.batch;
    this.batch = [];
    const worker = this.worker;
    const items: Waiting[] = [];
    const sent: number[] = [];
    for (const id of ids) {
      const w = this.waiting.get(id);
      if (w) {
        items.push(w);
        sent.push(id);
      }
    }
    if (!worker || items.length === 0) return;
    let total = 0;
    for (const w of items) total += w.body.length;
    // Not Buffer.allocUnsafe: a small one is a slice of Node's shared pool, which must not be transferred.
    const data = new Uint8Array(total);
    const ends: number[] = [];
    let at = 0;
    for (const w of items) {
      data.set(w.body, at);
      at += w.body.length;
      ends.push(at);
    }
    const batch: ReaderBatch = { ids: sent, verdicts: items.map((w) => w.verdict), ends, data: data.buffer };
    worker.postMessage(batch, [data.buffer]);
  };

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
    worker.on('message', (a: ReaderAnswers) => {
      this.answered = true;
      for (let i = 0; i < a.ids.length; i++) {
        const id = a.ids[i]!;
        const w = this.waiting.get(id);
        if (!w) continue;
        this.waiting.delete(id);
        w.resolve(a.results[i]!);
      }
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
    this.batch = [];
    for (const w of waiting) w.resolve(this.inLine(w.body, w.verdict));
  }
}
