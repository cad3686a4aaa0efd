import { parseDialogInfo } from '../presence/dialog-info/dialog-info-document.js';
import { parseMessageSummary } from '../presence/message-summary/message-summary-document.js';
import { readXml } from '../presence/pidf/read-xml.js';
import { attributeValue, childElements, textContent } from '../presence/pidf/xml-tree.js';
import { REGINFO_NS } from '../presence/reg/reginfo-document.js';
import type { SubscriptionStatus } from './client-subscription.js';

/** The packages a watcher reads as one line of state: busy lamp, message waiting, registrations. */
export type StateEvent = 'dialog' | 'message-summary' | 'reg';
export const STATE_EVENTS: readonly StateEvent[] = ['dialog', 'message-summary', 'reg'];

/** One NOTIFY of a dialog, message-summary or reg subscription, as a watcher sees it. */
export interface EventStateUpdate {
  readonly target: string;
  readonly event: StateEvent;
  readonly status: SubscriptionStatus;
  /** The body as received (empty while pending). */
  readonly body: Buffer;
  /** One line a person reads: `dialogs (full): d1 confirmed`, `waiting: yes; text-message 2/0`... */
  readonly summary: string;
  readonly receivedAt: Date;
}

/** The Accept header of each package's SUBSCRIBE (RFC 4235 §3.3, RFC 3842 §4.2, RFC 3680 §4.3). */
export const STATE_ACCEPT: Record<StateEvent, string> = {
  dialog: 'application/dialog-info+xml',
  'message-summary': 'application/simple-message-summary',
  reg: 'application/reginfo+xml',
};

/** The summary line of a body; says so when it does not read. */
export function summarizeEventState(event: StateEvent, body: Buffer): string {
  if (body.length === 0) return 'no state';
  if (event === 'dialog') {
    const r = parseDialogInfo(body);
    if (!r.ok) return `unreadable: ${r.reason}`;
    const d = r.document.dialogs.map((x) => `${x.id} ${x.state}${x.remote?.identity ? ` with ${x.remote.identity}` : ''}`);
    return `dialogs (${r.document.state}, version ${r.document.version}): ${d.length ? d.join(', ') : 'none'}`;
  }
  if (event === 'message-summary') {
    const r = parseMessageSummary(body);
    if (!r.ok) return `unreadable: ${r.reason}`;
    const counts = [...r.summary.counts].map(([cls, c]) => `${cls} ${c.newMessages}/${c.oldMessages}${c.newUrgent || c.oldUrgent ? ` (${c.newUrgent}/${c.oldUrgent})` : ''}`);
    return [`messages waiting: ${r.summary.waiting ? 'yes' : 'no'}`, ...counts].join('; ');
  }
  const r = readXml(body);
  if (!r.ok || r.root.ns !== REGINFO_NS || r.root.local !== 'reginfo') return 'unreadable: not reginfo';
  const parts: string[] = [];
  for (const reg of childElements(r.root, REGINFO_NS, 'registration')) {
    const contacts = childElements(reg, REGINFO_NS, 'contact').map((c) => {
      const uri = childElements(c, REGINFO_NS, 'uri')[0];
      return `${uri ? textContent(uri).trim() : '?'} ${attributeValue(c, 'state') ?? '?'} (${attributeValue(c, 'event') ?? '?'})`;
    });
    parts.push(`${attributeValue(reg, 'aor') ?? '?'} ${attributeValue(reg, 'state') ?? '?'}${contacts.length ? `: ${contacts.join(', ')}` : ''}`);
  }
  return `registrations (${attributeValue(r.root, 'state') ?? '?'}, version ${attributeValue(r.root, 'version') ?? '?'}): ${parts.join('; ') || 'none'}`;
}
