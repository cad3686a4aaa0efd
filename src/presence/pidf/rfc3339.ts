/**
 * RFC 3339 §5.6 date-time, the form RFC 3863 §4.1.7 and RFC 4479 give timestamps
 * (xs:dateTime in the schemas, but always with a zone offset in practice).
 */

const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|[+-](\d{2}):(\d{2}))$/;

/** RFC 3339 §5.7: days in a month, leap years included. */
function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/** True when `s` is an RFC 3339 date-time with a valid calendar date and time of day. */
export function isDateTime(s: string): boolean {
  const m = DATE_TIME.exec(s);
  if (!m) return false;
  const year = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  const hour = Number(m[4]);
  const minute = Number(m[5]);
  const second = Number(m[6]);
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return false;
  // RFC 3339 §5.7: a leap second is 60; hour 24 is not allowed.
  if (hour > 23 || minute > 59 || second > 60) return false;
  if (m[9] !== undefined && (Number(m[9]) > 23 || Number(m[10]) > 59)) return false;
  return true;
}

/** Milliseconds since the epoch of a valid date-time, or NaN. */
export function dateTimeMs(s: string): number {
  return isDateTime(s) ? Date.parse(s.replace(/:60(?=[.Zz+-])/, ':59')) : Number.NaN;
}
