import { XcapConflict } from './xcap-error.js';

/**
 * RFC 4825 §5.4 uniqueness constraints, checked the same way by every usage: the values
 * `valueOf` gives (undefined: not constrained) must differ; the first repeat is refused with
 * 409 `<uniqueness-failure>`, its field named by `fieldOf(i)` (a node selector) and a value
 * that would be unique offered as `<alt-value>` (§11.2).
 */
export function requireUnique<T>(items: readonly T[], valueOf: (item: T) => string | undefined, fieldOf: (index: number) => string): void {
  const seen = new Set<string>();
  items.forEach((item, i) => {
    const v = valueOf(item);
    if (v === undefined) return;
    if (seen.has(v)) {
      let n = 2;
      while (seen.has(`${v}-${n}`) || items.some((x) => valueOf(x) === `${v}-${n}`)) n++;
      throw new XcapConflict({ kind: 'uniqueness-failure', field: fieldOf(i), altValues: [`${v}-${n}`] });
    }
    seen.add(v);
  });
}
