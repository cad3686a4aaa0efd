/**
 * The work (summed block hit counts of src/, see coverage.ts) an input of `length` bytes may
 * cost before it counts as a hang: linear in the length. The seeds cost at most about 12 a
 * byte; a parser that goes over its input hundreds of times a byte is the finding. Measured
 * in work, not time, so a loaded machine decides nothing.
 */
export const WORK_BOUND = (length: number): number => 20_000 + 300 * length;
