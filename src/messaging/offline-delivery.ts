import type { Logger } from 'pino';
import { SipRequest } from '../sip/message.js';
import type { LocationStore } from '../registrar/location-store.js';
import type { WallClock } from '../util/timers.js';
import { isFlowFailure, type Forker } from './fork.js';
import type { OfflineMessageStore, StoredMessage } from './offline-message-store.js';

/** Recipients asked about in one `recipientsWithMessages` question. */
const RECIPIENTS_PER_QUESTION = 1000;

/**
 * Delivers stored messages when their recipient registers: oldest first, each forked to
 * every reachable contact, each deleted only once a contact answered 2xx. One run per
 * recipient at a time; a registration during a run asks for one more run after it.
 *
 * Most registrations are of users with nothing stored, and on a busy server they come by
 * the thousand a second: the recipients registered meanwhile wait for one question (which
 * of them have messages?) while the previous one is answered, so the store sees one
 * statement per burst instead of a lookup per REGISTER. An idle server asks at once.
 */
export class OfflineDelivery {
  private readonly running = new Set<string>();
  private readonly again = new Set<string>();
  /** Registered recipients waiting for the next question; a Set, so bounded by the users. */
  private readonly asked = new Set<string>();
  private asking = false;
  private closed = false;

  constructor(
    private store: OfflineMessageStore,
    private readonly location: LocationStore,
    private readonly forker: Forker,
    private readonly wallClock: WallClock,
    private readonly log?: Logger,
  ) {}

  /** Switches to another store (the durable one, once it is open). */
  useStore(store: OfflineMessageStore): void {
    this.store = store;
  }

  /** The recipient may be reachable now (a REGISTER was answered 200). */
  trigger(aor: string): void {
    if (this.closed) return;
    if (this.running.has(aor)) {
      this.again.add(aor);
      return;
    }
    this.asked.add(aor);
    if (!this.asking) void this.ask();
  }

  /** True while a delivery run is active. */
  get busy(): boolean {
    return this.running.size > 0 || this.asking;
  }

  close(): void {
    this.closed = true;
  }

  /** Asks which of the registered recipients have messages, until none waits; starts their runs. */
  private async ask(): Promise<void> {
    this.asking = true;
    try {
      while (this.asked.size > 0 && !this.closed) {
        const batch: string[] = [];
        for (const aor of this.asked) {
          if (batch.length >= RECIPIENTS_PER_QUESTION) break;
          batch.push(aor);
          this.asked.delete(aor);
        }
        let have: readonly string[];
        try {
          have = await this.store.recipientsWithMessages(batch, this.wallClock.nowMs());
        } catch (err) {
          // As a failed run: these recipients' messages wait for their next registration.
          this.log?.error({ err, recipients: batch.length }, 'offline delivery: stored messages not looked up');
          continue;
        }
        for (const aor of have) {
          if (this.running.has(aor)) this.again.add(aor);
          else void this.run(aor);
        }
      }
    } finally {
      this.asking = false;
    }
  }

  private async run(aor: string): Promise<void> {
    this.running.add(aor);
    try {
      do {
        this.again.delete(aor);
        await this.deliverAll(aor);
      } while (this.again.has(aor) && !this.closed);
    } catch (err) {
      this.log?.error({ err, aor }, 'offline delivery failed');
    } finally {
      this.running.delete(aor);
      this.again.delete(aor);
    }
  }

  private async deliverAll(aor: string): Promise<void> {
    const messages = await this.store.listFor(aor, this.wallClock.nowMs());
    for (const m of messages) {
      if (this.closed) return;
      const bindings = await this.location.lookup(aor);
      if (bindings.length === 0) return;
      // A contact that answers 2xx after it was given up as silent has it after all.
      const results = await this.forker.fork(deliveryRequest(m), bindings, undefined, () => void this.withdraw(aor, m.id));
      if (results.some((r) => r.status >= 200 && r.status < 300)) {
        await this.store.remove(m.id);
        this.log?.debug({ aor, id: m.id }, 'stored message delivered');
      } else if (results.every(isFlowFailure)) {
        // Unreachable again: the rest waits for the next registration.
        return;
      } else {
        this.log?.debug({ aor, id: m.id, status: results.map((r) => r.status) }, 'stored message refused; kept');
      }
    }
  }

  /**
   * Removes a stored message that a contact turned out to have (a 2xx after its branch was
   * given up as silent). `log` is the request's, when a request is behind it (its Call-ID).
   */
  async withdraw(aor: string, id: string, log: Logger | undefined = this.log): Promise<void> {
    try {
      if (await this.store.remove(id)) log?.info({ aor, id }, 'stored message delivered late; removed');
    } catch (err) {
      log?.error({ err, aor, id }, 'stored message not removed');
    }
  }
}

/**
 * The MESSAGE that delivers a stored one: its original From, To, Call-ID, CSeq, body type
 * and end-to-end headers, and a Date of when we received it (RFC 3261 §20.17). The
 * Request-URI is the AoR here; the forker sets each contact.
 */
export function deliveryRequest(m: StoredMessage): SipRequest {
  const req = new SipRequest('MESSAGE', m.recipient);
  req.addHeader('Max-Forwards', 70);
  req.addHeader('From', m.from);
  req.addHeader('To', m.to);
  req.addHeader('Call-ID', m.callId);
  req.addHeader('CSeq', `${m.cseq} MESSAGE`);
  req.addHeader('Date', new Date(m.receivedAt).toUTCString());
  if (m.contentType !== undefined) req.addHeader('Content-Type', m.contentType);
  for (const [name, value] of m.headers) req.addHeader(name, value);
  req.body = m.body;
  return req;
}
