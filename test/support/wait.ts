/** Resolves when `cond` holds, polling the event loop every `everyMs` (for state the test cannot await). */
export async function until(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 3000, everyMs = 5): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Resolves with the first event value that passes `match`. */
export function next<T>(subscribe: (fn: (v: T) => void) => void, match: (v: T) => boolean = () => true, timeoutMs = 3000): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('event did not come')), timeoutMs);
    subscribe((v) => {
      if (match(v)) {
        clearTimeout(t);
        resolve(v);
      }
    });
  });
}
