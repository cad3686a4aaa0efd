/**
 * Escaping for the XML we write. Values may come from hostile peers (a display name, a
 * note): whatever they hold, the output stays well-formed.
 */

/** XML 1.0 §2.2 Char: code points that may not appear in a document at all. */
const ILLEGAL_CHARS = /[^\t\n\r\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;

/** Drops what XML cannot carry even escaped (control characters, lone surrogates, U+FFFE/F). */
export function stripIllegalChars(s: string): string {
  return s.replace(ILLEGAL_CHARS, '');
}

const TEXT_SPECIALS = /[&<>\r]/;
const ATTR_SPECIALS = /[&<>"\t\n\r]/;

/** Character data: `&` and `<` must be escaped, `>` is for `]]>`, CR so it survives §2.11 line-end handling. */
export function escapeText(s: string): string {
  const clean = stripIllegalChars(s);
  if (!TEXT_SPECIALS.test(clean)) return clean;
  return clean.replace(/[&<>\r]/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : '&#13;'));
}

/** A double-quoted attribute value: whitespace is escaped so §3.3.3 normalisation keeps it. */
export function escapeAttribute(s: string): string {
  const clean = stripIllegalChars(s);
  if (!ATTR_SPECIALS.test(clean)) return clean;
  return clean.replace(/[&<>"\t\n\r]/g, (c) => {
    switch (c) {
      case '&':
        return '&amp;';
      case '<':
        return '&lt;';
      case '>':
        return '&gt;';
      case '"':
        return '&quot;';
      case '\t':
        return '&#9;';
      case '\n':
        return '&#10;';
      default:
        return '&#13;';
    }
  });
}

/**
 * Makes peer-supplied text safe inside a SIP reason phrase (RFC 3261 §25.1): printable
 * ASCII only, short.
 */
export function forReason(s: string, max = 32): string {
  const printable = s.replace(/[^\x21-\x7e]/g, '?');
  return printable.length > max ? `${printable.slice(0, max)}...` : printable || '?';
}
