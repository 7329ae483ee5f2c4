import type { Position } from './model.ts';
import {
  div,
  NOTIONAL_TO_QUOTE,
  PPM_SCALE,
  type Ppm,
  type PriceE8,
  type QuoteE6,
  type Rounding,
} from './units.ts';

/**
 * Isolated-margin risk math for one position (size q > 0, entry E, collateral M, mark P, rate m):
 *
 *   equity        = M + q(P - E) (long)        M + q(E - P) (short)
 *   MM            = m * q * P
 *   liquidation   = (E - M/q) / (1 - m) (long)  (E + M/q) / (1 + m) (short)   where equity = MM
 *   bankruptcy    = E - M/q (long)              E + M/q (short)               where equity = 0
 *
 * Exact values live in "E16" units (1e-16 quote = BaseE8 * PriceE8). QuoteE6 * NOTIONAL_TO_QUOTE is E16.
 * Everything is allocation-free bigint arithmetic: isLiquidatable runs millions of times per tick replay.
 */

export type MarginPosition = Pick<
  Position,
  'side' | 'size' | 'entryPrice' | 'collateral' | 'collateralOverE16'
>;

/** The exact margin M16 in E16: the collateral less the sub-unit a slice's rounding left over on it (accounting.ts). */
export const marginE16 = (p: Pick<Position, 'collateral' | 'collateralOverE16'>): bigint =>
  p.collateral * NOTIONAL_TO_QUOTE - (p.collateralOverE16 ?? 0n);

/** The exact margin in whole units, floored: what a position can give (ADL) without giving a sub-unit it lacks. */
export const wholeMargin = (p: Pick<Position, 'collateral' | 'collateralOverE16'>): QuoteE6 =>
  div(marginE16(p), NOTIONAL_TO_QUOTE, 'floor');

export class MarginError extends Error {
  override readonly name = 'MarginError';
}

/** A rate must leave 1 - m > 0, or a long's margin requirement grows faster than its equity. */
function assertRate(m: Ppm): void {
  if (m < 0n || m >= PPM_SCALE) throw new MarginError(`margin/bad-rate: ${m} ppm is outside [0, 1)`);
}

function assertSize(p: MarginPosition): void {
  if (p.size <= 0n) throw new MarginError(`margin/empty-position: size ${p.size}`);
}

/** Exact equity in E16 units: M * 1e10 + q(P - E) for a long, M * 1e10 + q(E - P) for a short. */
export function equityE16(p: MarginPosition, mark: PriceE8): bigint {
  const pnl = p.side === 'LONG' ? p.size * (mark - p.entryPrice) : p.size * (p.entryPrice - mark);
  return marginE16(p) + pnl;
}

/** equity = M + q(P - E) (long) or M + q(E - P) (short), floored: the trader is never credited a sub-unit he lacks. */
export function equity(p: MarginPosition, mark: PriceE8): QuoteE6 {
  return div(equityE16(p, mark), NOTIONAL_TO_QUOTE, 'floor');
}

/**
 * notional = q * P. Ceil by default: notional feeds margin requirements and fees, where the larger
 * value favours the fund. Pass 'floor' where a smaller notional is the safe side (e.g. a cap).
 */
export function notional(p: MarginPosition, mark: PriceE8, rounding: Rounding = 'ceil'): QuoteE6 {
  return div(p.size * mark, NOTIONAL_TO_QUOTE, rounding);
}

/** MM = m * q * P, ceiled: the requirement is never understated. */
export function maintenanceMargin(p: MarginPosition, mark: PriceE8, m: Ppm): QuoteE6 {
  return div(m * p.size * mark, NOTIONAL_TO_QUOTE * PPM_SCALE, 'ceil');
}

/** equity < MM, exact: equity(E16) * 1e6 < m * q * P, no rounding anywhere. */
export function isBelowMaintenance(p: MarginPosition, mark: PriceE8, m: Ppm): boolean {
  return equityE16(p, mark) * PPM_SCALE < m * p.size * mark;
}

/**
 * Liquidation price, where equity = MM:
 *   long  L = 1e6 (qE - M16) / (q (1e6 - m)), ceiled;   short L = 1e6 (qE + M16) / (q (1e6 + m)), floored.
 * Rounded toward the mark so that the index (and isLiquidatable) acts no later than the exact formula.
 * A long with collateral >= notional at entry (qE <= M16) can never be liquidated at a positive price: 0n.
 * A short always has a finite liquidation price (1e6 + m > 0); it is <= 0 only for negative collateral
 * beyond the entry notional, in which case every positive mark is at or beyond it.
 * Throws MarginError for an empty position or m outside [0, 1).
 */
export function liquidationPrice(p: MarginPosition, m: Ppm): PriceE8 {
  assertSize(p);
  assertRate(m);
  const m16 = marginE16(p);
  if (p.side === 'LONG') {
    const num = PPM_SCALE * (p.size * p.entryPrice - m16);
    if (num <= 0n) return 0n;
    return div(num, p.size * (PPM_SCALE - m), 'ceil');
  }
  return div(PPM_SCALE * (p.size * p.entryPrice + m16), p.size * (PPM_SCALE + m), 'floor');
}

/**
 * Long: mark <= liquidationPrice(p, m); short: mark >= liquidationPrice(p, m). Identical by construction to
 * the positions index query, but computed without the division (x = N/D, D > 0):
 *   mark <= ceil(x)  <=>  (mark - 1) * D < N;      mark >= floor(x)  <=>  (mark + 1) * D > N.
 */
export function isLiquidatable(p: MarginPosition, mark: PriceE8, m: Ppm): boolean {
  assertSize(p);
  assertRate(m);
  const m16 = marginE16(p);
  if (p.side === 'LONG') {
    const num = PPM_SCALE * (p.size * p.entryPrice - m16);
    if (num <= 0n) return mark <= 0n;
    return (mark - 1n) * p.size * (PPM_SCALE - m) < num;
  }
  return (mark + 1n) * p.size * (PPM_SCALE + m) > PPM_SCALE * (p.size * p.entryPrice + m16);
}

/**
 * Bankruptcy price, where equity = 0: long (qE - M16) / q ceiled, short (qE + M16) / q floored; a long that
 * cannot go bankrupt at a positive price returns 0n.
 * Rounded toward the mark, this is the worst fill that still leaves equity >= 0: used as a limit price
 * (market order, ADL) it guarantees the fund pays nothing, whereas the other rounding could leave a sub-unit
 * shortfall for the fund to cover.
 */
export function bankruptcyPrice(p: MarginPosition): PriceE8 {
  assertSize(p);
  const m16 = marginE16(p);
  if (p.side === 'LONG') {
    const num = p.size * p.entryPrice - m16;
    if (num <= 0n) return 0n;
    return div(num, p.size, 'ceil');
  }
  return div(p.size * p.entryPrice + m16, p.size, 'floor');
}

/** Effective leverage as an exact ratio q * P / equity (both E16); undefined when equity <= 0 (unbounded). */
export function effectiveLeverage(
  p: MarginPosition,
  mark: PriceE8,
): { readonly numerator: bigint; readonly denominator: bigint } | undefined {
  const eq = equityE16(p, mark);
  if (eq <= 0n) return undefined;
  return { numerator: p.size * mark, denominator: eq };
}

/**
 * Effective leverage q * P / equity in ppm (5x = 5_000_000n), ceiled: risk is never understated (ADL ranks by it).
 * Undefined when equity <= 0.
 */
export function effectiveLeveragePpm(p: MarginPosition, mark: PriceE8): Ppm | undefined {
  const eq = equityE16(p, mark);
  if (eq <= 0n) return undefined;
  return div(p.size * mark * PPM_SCALE, eq, 'ceil');
}
