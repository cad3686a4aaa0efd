/**
 * Presence documents the page publishes and reads: PIDF (RFC 3863) with the RPID person
 * activities (RFC 4480) of the RFC 4479 data model. The page's four states map to
 * <basic> and <rpid:activities>: available = open and no activity, away and busy = open
 * with that activity, invisible = closed (the watcher sees the user offline).
 */

export const PIDF_NS = 'urn:ietf:params:xml:ns:pidf';
export const DM_NS = 'urn:ietf:params:xml:ns:pidf:data-model';
export const RPID_NS = 'urn:ietf:params:xml:ns:pidf:rpid';

export type MyStatus = 'available' | 'away' | 'busy' | 'invisible';
export type BuddyStatus = 'available' | 'away' | 'busy' | 'offline' | 'unknown';

export function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);
}

/** The PIDF body of PUBLISH for my status and note; ids stay the same for one page (one device). */
export function buildPidf(entity: string, status: MyStatus, note: string, ids: { tuple: string; person: string }): string {
  const open = status !== 'invisible';
  const activity = status === 'away' ? '<rpid:away/>' : status === 'busy' ? '<rpid:busy/>' : '';
  const noteXml = note && open ? `<note>${escapeXml(note)}</note>` : '';
  const now = new Date().toISOString();
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<presence xmlns="${PIDF_NS}" xmlns:dm="${DM_NS}" xmlns:rpid="${RPID_NS}" entity="${escapeXml(entity)}">\n` +
    `  <tuple id="${ids.tuple}"><status><basic>${open ? 'open' : 'closed'}</basic></status><contact>${escapeXml(entity)}</contact>${noteXml}<timestamp>${now}</timestamp></tuple>\n` +
    (open
      ? `  <dm:person id="${ids.person}">${activity ? `<rpid:activities>${activity}</rpid:activities>` : ''}${note ? `<dm:note>${escapeXml(note)}</dm:note>` : ''}<dm:timestamp>${now}</dm:timestamp></dm:person>\n`
      : '') +
    '</presence>\n'
  );
}

export interface BuddyPresence {
  readonly status: BuddyStatus;
  readonly note: string;
}

/**
 * What a NOTIFY's PIDF says about a buddy: offline unless some tuple is open (RFC 3863
 * §4.1.4); an RPID away or busy activity of the person wins over plain available; the
 * note is the person's, else the first tuple note, else a document note.
 */
export function readPidf(xml: string): BuddyPresence {
  const doc = new DOMParser().parseFromString(xml, 'application/xml');
  if (doc.getElementsByTagName('parsererror').length > 0 || doc.documentElement.namespaceURI !== PIDF_NS) return { status: 'unknown', note: '' };
  const basics = [...doc.getElementsByTagNameNS(PIDF_NS, 'basic')].map((b) => b.textContent?.trim());
  const open = basics.includes('open');
  const activities = new Set<string>();
  for (const a of doc.getElementsByTagNameNS(RPID_NS, 'activities')) for (const c of a.children) activities.add(c.localName);
  const notes = [
    ...doc.getElementsByTagNameNS(DM_NS, 'note'),
    ...[...doc.getElementsByTagNameNS(PIDF_NS, 'tuple')].flatMap((t) => [...t.children].filter((c) => c.localName === 'note' && c.namespaceURI === PIDF_NS)),
    ...[...doc.documentElement.children].filter((c) => c.localName === 'note' && c.namespaceURI === PIDF_NS),
  ];
  const note = notes.map((n) => n.textContent?.trim() ?? '').find((t) => t.length > 0) ?? '';
  if (!open) return { status: 'offline', note: '' };
  if (activities.has('busy') || activities.has('on-the-phone') || activities.has('meeting')) return { status: 'busy', note };
  if (activities.has('away') || activities.has('vacation') || activities.has('sleeping')) return { status: 'away', note };
  return { status: 'available', note };
}
