/**
 * RFC 3994 message composition indication: an `application/im-iscomposing+xml` MESSAGE
 * says `active` when typing starts (and again each refresh interval while it goes on) and
 * `idle` after a quiet spell; a received text message also means idle (§3.3).
 */

export const ISCOMPOSING_TYPE = 'application/im-iscomposing+xml';
const NS = 'urn:ietf:params:xml:ns:im-iscomposing';

/** RFC 3994 §3.2: idle after 15 s without typing; refresh `active` every 60 s. */
export const IDLE_TIMEOUT_MS = 15_000;
export const REFRESH_S = 60;

export function buildIsComposing(state: 'active' | 'idle'): string {
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<isComposing xmlns="${NS}"><state>${state}</state><contenttype>text/plain</contenttype>` +
    (state === 'active' ? `<refresh>${REFRESH_S}</refresh>` : '') +
    '</isComposing>\n'
  );
}

/** The state and refresh (seconds) of a received indication, or undefined. */
export function readIsComposing(xml: string): { state: 'active' | 'idle'; refresh: number } | undefined {
  const doc = new DOMParser().parseFromString(xml, 'application/xml');
  if (doc.getElementsByTagName('parsererror').length > 0 || doc.documentElement.namespaceURI !== NS) return undefined;
  const state = doc.getElementsByTagNameNS(NS, 'state')[0]?.textContent?.trim();
  if (state !== 'active' && state !== 'idle') return undefined;
  const refresh = Number(doc.getElementsByTagNameNS(NS, 'refresh')[0]?.textContent ?? '');
  // §4: without a refresh the receiver waits 120 s before assuming idle.
  return { state, refresh: Number.isFinite(refresh) && refresh > 0 ? refresh : 120 };
}

/**
 * The sending side for one conversation: `typed()` on each key stroke sends `active`
 * when composition starts or the refresh is due, and `idle` once typing stops for 15 s.
 */
export class ComposingSender {
  private active = false;
  private lastActiveSent = 0;
  private idleTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly send: (state: 'active' | 'idle') => void) {}

  typed(): void {
    const now = Date.now();
    if (!this.active || now - this.lastActiveSent > (REFRESH_S * 1000) / 2) {
      this.active = true;
      this.lastActiveSent = now;
      this.send('active');
    }
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => this.stop(true), IDLE_TIMEOUT_MS);
  }

  /** Composition ended: by timeout (an idle indication goes out) or by sending the message (none needed, §3.3). */
  stop(sendIdle: boolean): void {
    clearTimeout(this.idleTimer);
    if (this.active && sendIdle) this.send('idle');
    this.active = false;
  }
}
