/**
 * A parser with a bug behind two nested byte comparisons (the engine's own test): blind
 * mutation needs tens of thousands of tries to reach it, a coverage-guided search a few hundred.
 */
export function magicBytes(b: Buffer): void {
  if (b.length >= 2 && b[0] === 0x46) {
    if (b[1] === 0x55) throw new TypeError('reached the planted bug');
  }
}

/** A parser that compares every byte with every other (the work bound's own test): quadratic work. */
export function quadratic(b: Buffer): number {
  let same = 0;
  for (let i = 0; i < b.length; i++) {
    for (let j = 0; j < b.length; j++) {
      if (b[i] === b[j]) same++;
    }
  }
  return same;
}
