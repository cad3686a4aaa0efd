/** A final answer on one branch of a forked request, as the response context sees it. */
export interface FinalAnswer {
  readonly status: number;
}

/**
 * RFC 3261 §16.7 step 6: among final non-2xx answers, choose from the 6xx if any, else from
 * the lowest class; within 4xx prefer the ones that tell how to resubmit (401, 407, 415,
 * 420, 484). Ties go to the first received. Undefined for an empty list.
 */
export function chooseBest<T extends FinalAnswer>(answers: readonly T[]): T | undefined {
  const sixxx = answers.find((a) => a.status >= 600);
  if (sixxx) return sixxx;
  let best: T | undefined;
  for (const a of answers) {
    if (!best || classOf(a.status) < classOf(best.status)) best = a;
  }
  if (best && classOf(best.status) === 4) {
    const informative = answers.find((a) => RESUBMIT_HINTS.has(a.status));
    if (informative) return informative;
  }
  return best;
}

const RESUBMIT_HINTS = new Set([401, 407, 415, 420, 484]);

function classOf(status: number): number {
  return Math.floor(status / 100);
}
