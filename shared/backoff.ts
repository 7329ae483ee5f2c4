/**
 * Waits between attempts, one rule for every retry loop of ours that draws its own (the feed's PutEvents entries,
 * BatchGetItem's unprocessed keys): nothing of the SDK imported, so a function bundles only this.
 */

/**
 * The wait before retry `retry` (1, 2, ...): `firstMs` doubling each retry, capped at `maxMs`, with equal jitter: half
 * of it fixed and half drawn (`random`, in [0, 1): AWS's "Exponential Backoff And Jitter"). Callers throttled together
 * ask again apart, and each keeps at least half its wait (a draw near 0 on each would spend a bounded run of
 * retries at once).
 */
export function equalJitterDelayMs(
  retry: number,
  firstMs: number,
  maxMs: number,
  random: () => number,
): number {
  const full = Math.min(maxMs, firstMs * 2 ** (retry - 1));
  return Math.round(full / 2 + (full / 2) * random());
}

/** A real wait of `ms` (the default of every `sleep`/`pause` option tests replace). */
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
