import { isLiquidatable, type MarginPosition } from './margin.ts';
import { withinBand } from './tick.ts';
import type { Ppm, PriceE8 } from './units.ts';

/**
 * An independent check of the feed's mark before a liquidation starts (Drift refuses liquidations while its mark and
 * oracle diverge by more than 10 %). The venue's price at which the close would execute (its best bid to sell a
 * long, its best ask to buy back a short) disputes the mark when the position is healthy at that price and it lies
 * beyond `band` of the mark: a bad print that the breaker let through (within its band, or persisted) would
 * liquidate healthy positions there. An empty side is no evidence either way (a crash empties books): no dispute.
 * A price on the side of the mark that makes the position less healthy only confirms it.
 */
export function venueDisputesMark(
  position: MarginPosition,
  mark: PriceE8,
  venuePrice: PriceE8 | undefined,
  maintenanceMargin: Ppm,
  band: Ppm,
): boolean {
  if (venuePrice === undefined || venuePrice <= 0n) return false;
  if (withinBand(venuePrice, mark, band)) return false;
  return !isLiquidatable(position, venuePrice, maintenanceMargin);
}
