import { lotSizeOf, type MarketConfig } from './config.ts';
import { equityE16, type MarginPosition } from './margin.ts';
import {
  type BaseE8,
  ceilToLot,
  div,
  floorToLot,
  maxBig,
  minBig,
  NOTIONAL_TO_QUOTE,
  PPM_SCALE,
  type Ppm,
  type PriceE8,
  type QuoteE6,
} from './units.ts';

/**
 * How much of a liquidatable position to close in one step.
 *
 * Closing c of size q at the mark P realizes the PnL of c (it stays in the collateral) and pays the fee
 * f * c * P, so the remainder's equity is equity - fee. The step is the smallest c (rounded up) with
 *
 *   equity - f c P >= im (q - c) P   <=>   c >= (im q P - equity) / ((im - f) P)
 *
 * then adjusted by the market's slicing rules (see planLiquidationStep).
 */

export class SizingError extends Error {
  override readonly name = 'SizingError';
}

export type SizingReason =
  /** Closes exactly what restores initial margin. */
  | 'sizing/restore-initial-margin'
  /** Raised to minSliceNotional (or to the whole size when that is smaller). */
  | 'sizing/min-slice'
  /** Capped at maxCloseShare of the size: a large position is sliced. */
  | 'sizing/max-close-share'
  /** The remainder would be dust (below dustSize or minSliceNotional): closed in full. */
  | 'sizing/dust-remainder'
  /** equity <= 0: the position is bankrupt. */
  | 'sizing/insolvent'
  /** im <= f: every unit closed costs at least as much fee as the margin it frees. */
  | 'sizing/fee-exceeds-margin-relief'
  /** equity <= fee on (about) the whole size: no partial close restores initial margin. */
  | 'sizing/no-partial-restores';

export interface LiquidationStep {
  /** Size to close now: 0 < size <= position size. */
  readonly size: BaseE8;
  /** size == position size. */
  readonly full: boolean;
  readonly reason: SizingReason;
}

/**
 * Two QuoteE6 units in E22 (E16 * ppm) units: a bound on what the close's rounding takes from the exact equity, one
 * unit for the fee's ceiling and one for the closed part's PnL in whole units (a slice's is rounded up since session
 * 26, which only helps the rest; the slack is kept for a close settled whole).
 */
const CLOSE_ROUNDING_SLACK_E22 = 2n * NOTIONAL_TO_QUOTE * PPM_SCALE;

/** fee = f * size * P, ceiled: the fund never collects less than the rate says. */
export function liquidationFee(size: BaseE8, mark: PriceE8, rate: Ppm): QuoteE6 {
  return div(rate * size * mark, NOTIONAL_TO_QUOTE * PPM_SCALE, 'ceil');
}

/**
 * Plans one liquidation step at `mark` (the close is assumed to fill at the mark and pay market.liquidationFee):
 * 1. bankrupt (equity <= 0), im <= fee, or no partial close restores initial margin: close in full;
 * 2. otherwise c = ceil((im q P - equity + 2 units of rounding) / ((im - f) P)), up to a whole lot, at least one;
 * 3. raised to minSliceNotional / P (up to a whole lot), capped by the size;
 * 4. if the position's notional exceeds sliceAboveNotional: capped at floor(q * maxCloseShare) down to a whole lot
 *    (at least one lot). The cap wins over the minimum slice: bounded market impact is the point of slicing;
 * 5. a remainder below dustSize (whole lots), under one lot, or below minSliceNotional in notional, is closed too (no
 *    dust left behind; this wins over the cap, which is only reachable with a config where slices leave dust).
 * Small positions are not capped: they close as much as restores initial margin, up to all of it.
 * Every size rounds up (a larger close favours the fund) except the cap, which rounds down ("never more than").
 * A slice short of the whole position is whole lots (market.lotSize: the venue fills nothing else), so a position of
 * whole lots leaves a remainder of whole lots; one that is not (opened before its market had a lot) keeps its part
 * under a lot to its last slice, the whole rest.
 */
export function planLiquidationStep(p: MarginPosition, mark: PriceE8, market: MarketConfig): LiquidationStep {
  const q = p.size;
  if (q <= 0n) throw new SizingError(`sizing/empty-position: size ${q}`);
  if (mark <= 0n) throw new SizingError(`sizing/non-positive-mark: ${mark}`);
  const im = market.initialMargin;
  const f = market.liquidationFee;
  const full = (reason: SizingReason): LiquidationStep => ({ size: q, full: true, reason });

  const eq22 = equityE16(p, mark) * PPM_SCALE;
  if (eq22 <= 0n) return full('sizing/insolvent');
  if (im <= f) return full('sizing/fee-exceeds-margin-relief');

  const lot = lotSizeOf(market);
  const need = im * q * mark - eq22 + CLOSE_ROUNDING_SLACK_E22;
  let size = need <= 0n ? lot : ceilToLot(div(need, (im - f) * mark, 'ceil'), lot);
  if (size >= q) return full('sizing/no-partial-restores');
  let reason: SizingReason = 'sizing/restore-initial-margin';

  const minSlice16 = market.minSliceNotional * NOTIONAL_TO_QUOTE;
  if (size * mark < minSlice16) {
    const minSliceSize = ceilToLot(div(minSlice16, mark, 'ceil'), lot);
    size = minBig(minSliceSize, q);
    reason = 'sizing/min-slice';
  }

  if (q * mark > market.sliceAboveNotional * NOTIONAL_TO_QUOTE) {
    const cap = maxBig(floorToLot(div(q * market.maxCloseShare, PPM_SCALE, 'floor'), lot), lot);
    if (size > cap) {
      size = cap;
      reason = 'sizing/max-close-share';
    }
  }

  // dustSize is whole lots (config.ts): this counts the rest in lots. A rest under one lot (a position off the lot) no
  // order could sell: it goes with this slice, to the auction with the part under a lot, not a slice later.
  const rest = q - size;
  if (rest > 0n && (rest < market.dustSize || rest < lot || rest * mark < minSlice16)) {
    return full('sizing/dust-remainder');
  }
  return { size, full: size === q, reason };
}
