import type { Fill } from '../../domain/model.ts';
import { BASE_SCALE, type BaseE8, div, PRICE_SCALE, type PriceE8 } from '../../domain/units.ts';
import type { SimulatedMarketConfig } from './config.ts';

/**
 * The simulated book as pure functions of (mid, volatility, config). Model quantities are Numbers (this is
 * the market model, not money); level prices and sizes come out as exact bigints on the price and lot grids.
 */

const PPM = 1_000_000;

/** vol' = lambda * vol + (1 - lambda) * |ln(mark / previous)|, lambda = 2^(-1 / halfLifeTicks). */
export function nextVolatility(vol: number, previous: PriceE8, mark: PriceE8, halfLifeTicks: number): number {
  const lambda = 2 ** (-1 / halfLifeTicks);
  return lambda * vol + (1 - lambda) * Math.abs(Math.log(Number(mark) / Number(previous)));
}

/** impact(t) = impact(t0) * 2^(-elapsed / halfLife): the venue's arbitrage refills what we took. */
export function decayImpact(impact: number, elapsedMs: number, halfLifeSeconds: number): number {
  if (impact === 0 || elapsedMs <= 0) return impact;
  return impact * 2 ** (-elapsedMs / 1000 / halfLifeSeconds);
}

/** depthShare = max(minDepthShare, 1 / (1 + vol / volHalvingDepth)). */
export const depthShare = (vol: number, c: SimulatedMarketConfig): number =>
  Math.max(c.minDepthShare, 1 / (1 + vol / c.volHalvingDepth));

/** halfSpread = min(max, base + halfSpreadPerVol * vol), in whole ppm. */
export const halfSpreadPpm = (vol: number, c: SimulatedMarketConfig): number =>
  Math.min(c.maxHalfSpreadPpm, Math.round(c.baseHalfSpreadPpm + c.halfSpreadPerVol * vol * PPM));

/** mid = reference * e^impact, on the price grid (nearest tick, at least one tick). */
export function impactedMid(reference: PriceE8, impact: number, tick: PriceE8): PriceE8 {
  if (impact === 0) return reference;
  const ticks = BigInt(Math.round((Number(reference) * Math.exp(impact)) / Number(tick)));
  return (ticks > 0n ? ticks : 1n) * tick;
}

export interface BookShape {
  readonly mid: PriceE8;
  readonly halfSpreadPpm: number;
  /** Base reserve x of the virtual pool at the mid after thinning, in whole base units (coins). */
  readonly baseReserve: number;
}

export function bookShape(mid: PriceE8, vol: number, c: SimulatedMarketConfig): BookShape {
  const midQuote = Number(mid) / Number(PRICE_SCALE);
  return {
    mid,
    halfSpreadPpm: halfSpreadPpm(vol, c),
    baseReserve: (c.poolQuoteReserve / midQuote) * depthShare(vol, c),
  };
}

export type BookSide = 'bid' | 'ask';

/** Cumulative pool base that moves the marginal price by share delta: bid x(1/sqrt(1-d) - 1), ask x(1 - 1/sqrt(1+d)). */
const cumulative = (side: BookSide, delta: number): number =>
  side === 'bid' ? 1 / Math.sqrt(1 - delta) - 1 : 1 - 1 / Math.sqrt(1 + delta);

/**
 * Level i of a side: price = mid * (1 -/+ (halfSpread + i * spacing)), rounded away from the mid to the
 * tick (bids down, asks up: the venue never gives the taker more than the model); size = the pool's base
 * for the band [i * spacing, (i + 1) * spacing], rounded down to the lot. Undefined past the book's end.
 */
export function level(
  shape: BookShape,
  c: SimulatedMarketConfig,
  side: BookSide,
  i: number,
): Fill | undefined {
  if (i >= c.levels) return undefined;
  const offsetPpm = shape.halfSpreadPpm + i * c.levelSpacingPpm;
  const bandEnd = ((i + 1) * c.levelSpacingPpm) / PPM;
  if (side === 'bid' && (offsetPpm >= PPM || bandEnd >= 1)) return undefined;
  const factor = BigInt(side === 'bid' ? PPM - offsetPpm : PPM + offsetPpm);
  const price =
    div(shape.mid * factor, BigInt(PPM) * c.priceTick, side === 'bid' ? 'floor' : 'ceil') * c.priceTick;
  if (price <= 0n) return undefined;
  const band = cumulative(side, bandEnd) - cumulative(side, (i * c.levelSpacingPpm) / PPM);
  const lots = Math.floor((shape.baseReserve * band * Number(BASE_SCALE)) / Number(c.lotSize));
  return { price, size: BigInt(lots) * c.lotSize };
}

/**
 * Log move of the marginal pool price after taking `filled` base: sell 2 ln(x / (x + d)), buy
 * 2 ln(x / (x - d)), times the retention share.
 */
export function impactOf(shape: BookShape, side: BookSide, filled: BaseE8, retention: number): number {
  const d = Number(filled) / Number(BASE_SCALE);
  const x = shape.baseReserve;
  if (d <= 0 || x <= 0) return 0;
  const ratio = side === 'bid' ? x / (x + d) : x / Math.max(x - d, x * 1e-9);
  return 2 * Math.log(ratio) * retention;
}
