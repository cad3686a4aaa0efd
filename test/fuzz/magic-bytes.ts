/**
 * A parser with a bug behind two nested byte comparisons (the engine's own test): blind
 * mutation needs tens of thousands of tries to reach it, a coverage-guided search a few hundred.
 */
export function magicBytes(b: Buffer): void {
  if (b.length >= 2 && b[0] === 0x46) {
    if (b[1] === 0x55) throw new TypeError('reached the planted bug');
  }
}
