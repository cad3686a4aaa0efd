/** RFC 3842 §5: the message summary body type. */
export const MESSAGE_SUMMARY_CONTENT_TYPE = 'application/simple-message-summary';

/**
 * RFC 3842 §5.2 / RFC 3458 §6.2: the message context classes a summary counts in. Pager
 * messages stored for a user are `text-message`.
 */
export const MESSAGE_CLASSES = ['voice-message', 'fax-message', 'pager-message', 'multimedia-message', 'text-message', 'none'] as const;
export type MessageClass = (typeof MESSAGE_CLASSES)[number];

/** RFC 3842 §5.2 msg-summary-line: new/old, and urgent new/old among them. */
export interface MessageCounts {
  readonly newMessages: number;
  readonly oldMessages: number;
  readonly newUrgent: number;
  readonly oldUrgent: number;
}

export interface MessageSummary {
  readonly waiting: boolean;
  readonly account?: string;
  readonly counts: ReadonlyMap<MessageClass, MessageCounts>;
}

export type ParseMessageSummaryResult = { readonly ok: true; readonly summary: MessageSummary } | { readonly ok: false; readonly reason: string };

/** Lines of a summary read before the blank line, at most (one a class and a few headers). */
const MAX_LINES = 32;
const MAX_LINE = 512;
const COUNT = /^(\d{1,9})\/(\d{1,9})(?:[ \t]*\((\d{1,9})\/(\d{1,9})\))?$/;
const CLASSES: ReadonlySet<string> = new Set(MESSAGE_CLASSES);

/**
 * Reads a message summary (RFC 3842 §5.2) as a voicemail system publishes it; never
 * throws. Only the status part is read: the optional message headers after the blank
 * line are not kept (they are not merged into anyone's summary).
 */
export function parseMessageSummary(body: Buffer | string, maxBytes = 8192): ParseMessageSummaryResult {
  if (body.length > maxBytes) return { ok: false, reason: 'Invalid message-summary: too large' };
  const text = typeof body === 'string' ? body : body.toString('utf8');
  const lines = text.split(/\r?\n/);
  let waiting: boolean | undefined;
  let account: string | undefined;
  const counts = new Map<MessageClass, MessageCounts>();
  let read = 0;
  for (const raw of lines) {
    if (raw.trim() === '') {
      if (waiting === undefined) continue; // leading blank lines
      break;
    }
    if (++read > MAX_LINES || raw.length > MAX_LINE) return { ok: false, reason: 'Invalid message-summary: too many or too long lines' };
    const colon = raw.indexOf(':');
    if (colon <= 0) return { ok: false, reason: 'Invalid message-summary: a line without a name' };
    const name = raw.slice(0, colon).trim().toLowerCase();
    const value = raw.slice(colon + 1).trim();
    if (name === 'messages-waiting') {
      const v = value.toLowerCase();
      if (v !== 'yes' && v !== 'no') return { ok: false, reason: 'Invalid message-summary: Messages-Waiting must be yes or no' };
      waiting = v === 'yes';
    } else if (name === 'message-account') {
      account = value;
    } else if (CLASSES.has(name)) {
      const m = COUNT.exec(value);
      if (!m) return { ok: false, reason: `Invalid message-summary: bad counts for ${name}` };
      counts.set(name as MessageClass, { newMessages: +m[1]!, oldMessages: +m[2]!, newUrgent: +(m[3] ?? 0), oldUrgent: +(m[4] ?? 0) });
    }
    // Other lines (extension headers) are allowed and ignored.
  }
  if (waiting === undefined) return { ok: false, reason: 'Invalid message-summary: no Messages-Waiting line' };
  return { ok: true, summary: { waiting, ...(account !== undefined ? { account } : {}), counts } };
}

/** Summaries added up: counts per class, waiting if any says so or has new messages (RFC 3842 §5.2). */
export function mergeSummaries(summaries: Iterable<MessageSummary>): MessageSummary {
  const counts = new Map<MessageClass, MessageCounts>();
  let waiting = false;
  for (const s of summaries) {
    waiting ||= s.waiting;
    for (const [cls, c] of s.counts) {
      const b = counts.get(cls);
      counts.set(cls, b ? { newMessages: b.newMessages + c.newMessages, oldMessages: b.oldMessages + c.oldMessages, newUrgent: b.newUrgent + c.newUrgent, oldUrgent: b.oldUrgent + c.oldUrgent } : c);
    }
  }
  for (const c of counts.values()) if (c.newMessages > 0) waiting = true;
  return { waiting, counts };
}

const CLASS_NAMES: Record<MessageClass, string> = {
  'voice-message': 'Voice-Message',
  'fax-message': 'Fax-Message',
  'pager-message': 'Pager-Message',
  'multimedia-message': 'Multimedia-Message',
  'text-message': 'Text-Message',
  none: 'None',
};

/** The body (RFC 3842 §5.2), with `account` as Message-Account; classes in RFC 3458's order. */
export function serializeMessageSummary(summary: MessageSummary, account: string): Buffer {
  let s = `Messages-Waiting: ${summary.waiting ? 'yes' : 'no'}\r\nMessage-Account: ${account.replace(/[\r\n]/g, '')}\r\n`;
  for (const cls of MESSAGE_CLASSES) {
    const c = summary.counts.get(cls);
    if (!c) continue;
    s += `${CLASS_NAMES[cls]}: ${c.newMessages}/${c.oldMessages}`;
    if (c.newUrgent > 0 || c.oldUrgent > 0) s += ` (${c.newUrgent}/${c.oldUrgent})`;
    s += '\r\n';
  }
  return Buffer.from(s);
}
