/**
 * Runs `work` on each of `items`, at most `inFlight` at once (at least one), begun in order: many calls of a few ms
 * each take the time of a few instead of one after another. Once an item throws no other begins, and the first error
 * is thrown once the items in flight are done: nothing goes on behind a caller that was told it failed
 * (tidy45-pool-after-failure). `stop`: asked before each item but the first; true, no more begin.
 */
export async function eachInFlight<T>(
  items: readonly T[],
  inFlight: number,
  work: (item: T, index: number) => Promise<void>,
  stop?: () => boolean,
): Promise<void> {
  let next = 0;
  let failure: { readonly error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (failure === undefined && next < items.length) {
      if (next > 0 && stop?.()) return;
      const at = next++;
      try {
        await work(items[at]!, at);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, inFlight), items.length) }, worker));
  if (failure !== undefined) throw failure.error;
}

/** `items` in runs of `size` (at least one), in order, the last shorter: BatchGetItem's 100 keys a call. */
export function chunksOf<T>(items: readonly T[], size: number): T[][] {
  const step = Math.max(1, size);
  const chunks: T[][] = [];
  for (let i = 0; i < items.length; i += step) chunks.push(items.slice(i, i + step));
  return chunks;
}
