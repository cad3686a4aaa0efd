/**
 * Runs `send` for every item, at most `concurrency` at once (a room of a thousand members
 * or a long URI list must not open a thousand transactions in one go); resolves with the
 * results in the items' order.
 */
export async function fanOut<T, R>(items: readonly T[], concurrency: number, send: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await send(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, concurrency), items.length) }, worker));
  return results;
}
