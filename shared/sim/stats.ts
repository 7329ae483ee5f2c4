import type { Fill } from '../domain/model.ts';
import { div, type PriceE8 } from '../domain/units.ts';

/** Small exact statistics for the simulation's summary. */

/** Nearest-rank percentile of integer samples: the smallest value with at least p % of samples at or below it. */
export function percentile(sortedAscending: readonly number[], p: number): number {
  if (sortedAscending.length === 0) return 0;
  const rank = Math.max(1, Math.ceil((p / 100) * sortedAscending.length));
  return sortedAscending[Math.min(rank, sortedAscending.length) - 1]!;
}

/** Hundredths of a basis point in one unit of the slippage samples (1 bp = 100). */
export const SLIPPAGE_UNITS_PER_BP = 100;

/**
 * Slippage of an order's fills versus the mark, in hundredths of a basis point, rounded up (never understated):
 *   SELL: (mark * size - sum size_i * price_i) / (mark * size)      BUY: (sum size_i * price_i - mark * size) / ...
 * Negative when the order filled better than the mark.
 */
export function orderSlippage(direction: 'BUY' | 'SELL', fills: readonly Fill[], mark: PriceE8): number {
  let size = 0n;
  let value = 0n;
  for (const f of fills) {
    size += f.size;
    value += f.size * f.price;
  }
  if (size === 0n || mark <= 0n) return 0;
  const atMark = size * mark;
  const worse = direction === 'SELL' ? atMark - value : value - atMark;
  return Number(div(worse * 1_000_000n, atMark, 'ceil'));
}

/** A fill at or below 1 % of the mark (SELL), or at or above 100x the mark (BUY): Maker's "zero bid". */
export function isZeroPriceFill(direction: 'BUY' | 'SELL', price: PriceE8, mark: PriceE8): boolean {
  if (price <= 0n) return true;
  return direction === 'SELL' ? price * 100n <= mark : price >= mark * 100n;
}
