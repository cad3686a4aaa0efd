/** SIP white space (RFC 3261 §25.1: LWS = [*WSP CRLF] 1*WSP, WSP = SP / HTAB). */

/**
 * Strips SP and HTAB from both ends: the only white space of the SIP grammar (RFC 3261
 * §25.1 LWS). String.prototype.trim() would also eat a leading U+FEFF or U+00A0 that is
 * part of a value (RFC 4475 §3.1.1.2).
 */
export function trimLws(s: string): string {
  let start = 0;
  let end = s.length;
  while (start < end && isWsp(s.charCodeAt(start))) start++;
  while (end > start && isWsp(s.charCodeAt(end - 1))) end--;
  return start === 0 && end === s.length ? s : s.slice(start, end);
}

function isWsp(c: number): boolean {
  return c === 0x20 || c === 0x09;
}
