import type { Logger } from 'pino';
import type { LocalDomains } from '../../core/local-domains.js';
import type { RequestContext } from '../../core/services.js';
import { parseMultipart, type ParsedPart } from '../../lists/multipart.js';
import { flattenEntries, parseResourceLists, RESOURCE_LISTS_TYPE, serializeResourceLists, type FlatEntry, type ListEntry } from '../../lists/resource-lists.js';
import { canonicalAor } from '../../registrar/aor.js';
import type { UserDirectory } from '../../registrar/user-directory.js';
import { parseMediaType, quote, type MediaType } from '../../sip/header-values.js';
import type { SipRequest } from '../../sip/message.js';
import { randomToken } from '../../sip/response.js';
import { tryParseUri } from '../../sip/uri.js';
import type { WallClock } from '../../util/timers.js';
import { isComposingIndication } from '../content-types.js';
import { fanOut } from '../fan-out.js';
import type { DeliveryOutcome, MessageTarget } from '../messaging-service.js';
import type { StoredMessage } from '../offline-message-store.js';
import { buildMultipartMixed } from './multipart-mixed.js';

/** RFC 5365 §5: the option tag of a MESSAGE that carries its recipients. */
export const RECIPIENT_LIST_MESSAGE = 'recipient-list-message';
/** RFC 5363: the disposition of the list of recipients in the request. */
const RECIPIENT_LIST = 'recipient-list';
/** RFC 5365: the disposition of the list each recipient is given (who else got it). */
const RECIPIENT_LIST_HISTORY = 'recipient-list-history';
/** RFC 5364 anonymize: an anonymized recipient is shown as the anonymous URI of RFC 3323 §4.1.1.3. */
const ANONYMOUS_URI = 'sip:anonymous@anonymous.invalid';

export interface UriListSettings {
  /** The service's user part: `sip:<user>@<domain>`. */
  readonly user: string;
  readonly maxRecipients: number;
  readonly offlineTtlSeconds: number;
}

/** How one recipient's copy ended: a delivery outcome, or not sent at all. */
export type RecipientOutcome = DeliveryOutcome | 'not-found' | 'not-ours';

export interface UriListServiceOptions {
  readonly domains: LocalDomains;
  readonly users: UserDirectory;
  readonly deliver: (m: StoredMessage, options: { readonly transient: boolean; readonly log?: Logger }) => Promise<DeliveryOutcome>;
  readonly settings: UriListSettings;
  readonly wallClock: WallClock;
}

/** Copies in flight at once for one request. */
const FANOUT_CONCURRENCY = 32;

/**
 * The MESSAGE URI-list service (RFC 5365): a MESSAGE to `sip:uri-list@<domain>` whose
 * multipart/mixed body holds the message and a resource list of recipients; each recipient
 * of our domain gets its own MESSAGE (stored when offline, as any MESSAGE), From the
 * sender, with the list of the other recipients minus the bcc ones (RFC 5365 §4,
 * RFC 5364 copyControl). The sender gets 202 at once; outcomes go to the log and metrics.
 */
export class UriListService implements MessageTarget {
  readonly supported = [RECIPIENT_LIST_MESSAGE] as const;
  /** Copies per outcome since start (metrics). */
  readonly outcomes: Record<RecipientOutcome, number> = { delivered: 0, stored: 0, refused: 0, dropped: 0, full: 0, 'not-found': 0, 'not-ours': 0 };

  constructor(private readonly options: UriListServiceOptions) {}

  /** The service's own address, canonical. */
  get uri(): string {
    return `sip:${this.options.settings.user}@${this.options.domains.primary.toLowerCase()}`;
  }

  claims(aor: string): boolean {
    return aor === this.uri;
  }

  async handle(ctx: RequestContext): Promise<void> {
    const req = ctx.request;
    // RFC 5365 §6: the request says it carries its recipients; without that tag a client
    // may not know what it talks to (RFC 3261 §21.4.15: 421 names the extension needed).
    if (!req.getHeaders('require').some((t) => t.toLowerCase() === RECIPIENT_LIST_MESSAGE)) {
      ctx.reply(421, 'Extension Required', { headers: [['Require', RECIPIENT_LIST_MESSAGE]] });
      return;
    }
    const type = req.contentType;
    if (type?.essence !== 'multipart/mixed') {
      ctx.reply(415, 'Unsupported Media Type', { headers: [['Accept', 'multipart/mixed']] });
      return;
    }
    const parsed = parseMultipart(req.getHeader('content-type')!, req.body, 8);
    if (!parsed.ok) {
      ctx.reply(400, `Bad multipart body: ${parsed.reason}`);
      return;
    }
    const lists = parsed.parts.filter(isRecipientList);
    const messages = parsed.parts.filter((p) => !isRecipientList(p));
    if (lists.length !== 1 || messages.length !== 1) {
      ctx.reply(400, 'One Message And One Recipient List Expected');
      return;
    }
    const doc = parseResourceLists(lists[0]!.body, { maxMembers: this.options.settings.maxRecipients, duplicates: 'drop' });
    if (!doc.ok) {
      ctx.reply(doc.tooLarge ? 413 : 400, doc.tooLarge ? 'Too Many Recipients' : `Bad resource list: ${doc.reason}`);
      return;
    }
    const flat = flattenEntries(doc.document);
    // Only URIs: references to lists kept elsewhere (XCAP) are not resolved here.
    if (flat.entryRefs.length > 0 || flat.externals.length > 0) {
      ctx.reply(403, 'List References Not Supported');
      return;
    }
    if (flat.entries.length === 0) {
      ctx.reply(400, 'No Recipients');
      return;
    }
    const message = messages[0]!;
    const contentType = message.contentType ?? 'text/plain';
    const transient = isComposingIndication(safeMediaType(contentType), message.body);
    // RFC 3428 §7 / RFC 5365 §7: accepted for delivery, not delivered yet.
    ctx.reply(202, 'Accepted');

    const receivedAt = this.options.wallClock.nowMs();
    const history = historyFor(flat.entries);
    const body = history
      ? buildMultipartMixed([
          { headers: partHeaders(message), body: message.body },
          { headers: [['Content-Type', RESOURCE_LISTS_TYPE], ['Content-Disposition', `${RECIPIENT_LIST_HISTORY}; handling=optional`]], body: history },
        ])
      : { contentType, body: message.body };
    const from = fromOf(req);
    const results = await fanOut(flat.entries, FANOUT_CONCURRENCY, async (entry): Promise<{ uri: string; copyControl: string; outcome: RecipientOutcome }> => {
      const outcome = await this.sendTo(entry, { from, contentType: body.contentType, body: body.body, receivedAt, transient, log: ctx.log, callIdBase: req.callId });
      this.outcomes[outcome]++;
      return { uri: entry.uri, copyControl: entry.copyControl ?? 'to', outcome };
    });
    ctx.log.info({ recipients: results }, 'uri-list message fanned out');
  }

  private async sendTo(
    entry: FlatEntry,
    m: { from: string; contentType: string; body: Buffer; receivedAt: number; transient: boolean; log: Logger; callIdBase: string },
  ): Promise<RecipientOutcome> {
    const uri = tryParseUri(entry.uri);
    const aor = uri ? canonicalAor(uri, this.options.domains) : undefined;
    // We are not an open relay: recipients are users of our domain.
    if (aor === undefined) return 'not-ours';
    if (aor === this.uri || !(await this.options.users.exists(aor))) return 'not-found';
    const copy: StoredMessage = {
      id: randomToken(12),
      recipient: aor,
      from: m.from,
      to: `<${entry.uri}>`,
      callId: `${randomToken(12)}@${this.options.domains.primary}`,
      cseq: 1,
      contentType: m.contentType,
      headers: [],
      body: m.body,
      receivedAt: m.receivedAt,
      expiresAt: m.receivedAt + this.options.settings.offlineTtlSeconds * 1000,
    };
    try {
      return await this.options.deliver(copy, { transient: m.transient, log: m.log });
    } catch (err) {
      m.log.error({ err, recipient: aor }, 'uri-list copy failed');
      return 'refused';
    }
  }
}

/** RFC 5363: the part whose disposition is recipient-list (or, lacking one, of the list type). */
function isRecipientList(p: ParsedPart): boolean {
  const disposition = p.headers.get('content-disposition')?.split(';')[0]?.trim().toLowerCase();
  if (disposition !== undefined) return disposition === RECIPIENT_LIST;
  return p.contentType?.split(';')[0]?.trim().toLowerCase() === RESOURCE_LISTS_TYPE;
}

/**
 * RFC 5365 §4 with RFC 5364: the list each recipient gets: the to and cc entries (bcc
 * ones left out, so no one learns of them), anonymized ones shown as anonymous; none when
 * nobody is left to show.
 */
export function historyFor(entries: readonly FlatEntry[]): Buffer | undefined {
  const shown: ListEntry[] = [];
  for (const e of entries) {
    if (e.copyControl === 'bcc') continue;
    shown.push({
      kind: 'entry',
      uri: e.anonymize ? ANONYMOUS_URI : e.uri,
      ...(e.displayName !== undefined && !e.anonymize ? { displayName: { text: e.displayName } } : {}),
      copyControl: e.copyControl ?? 'to',
    });
  }
  if (shown.length === 0) return undefined;
  return serializeResourceLists({ lists: [{ kind: 'list', members: shown }] });
}

/** The message part's MIME headers as they came (Content-Type first, default text/plain). */
function partHeaders(p: ParsedPart): Array<[string, string]> {
  const out: Array<[string, string]> = [['Content-Type', p.contentType ?? 'text/plain']];
  for (const [name, value] of p.headers) if (name !== 'content-type' && name.startsWith('content-')) out.push([name, value]);
  return out;
}

/** The copies' From: the sender as it wrote itself, with a tag of ours (a new request each). */
function fromOf(req: SipRequest): string {
  const from = req.from;
  const name = from.displayName !== undefined ? `${quote(from.displayName)} ` : '';
  return `${name}<${from.uri.raw}>;tag=${randomToken()}`;
}

/** A part's Content-Type read as a media type; undefined when it does not parse. */
function safeMediaType(text: string): MediaType | undefined {
  try {
    return parseMediaType(text);
  } catch {
    return undefined;
  }
}
