import { lotSizeOf, marketConfig, maxLeverage, type RiskConfig } from '../domain/config.ts';
import { isLiquidatable } from '../domain/margin.ts';
import type { Side } from '../domain/model.ts';
import {
  BASE_SCALE,
  floorToLot,
  NOTIONAL_TO_QUOTE,
  PRICE_SCALE,
  type PriceE8,
  QUOTE_SCALE,
} from '../domain/units.ts';
import type { PositionRecord } from '../ports/index.ts';
import { withLiquidationPrice } from '../services/margin-check.ts';
import { Rng } from './random.ts';

/**
 * A synthetic book of isolated-margin positions that looks like a perpetuals market before a crash.
 *
 * - Side: LONG with probability `longShare` (0.7): books lean long into a sell-off (funding was positive and
 *   long/short account ratios were well above 1 before 12 March 2020).
 * - Notional (USD): Pareto(xm = `minNotionalUsd`, alpha = `notionalAlpha`), capped at `maxNotionalUsd`.
 *   alpha 1.2 is the "many small, a few large" shape of exchange account sizes: with the defaults
 *   (xm 250 USD) the median is about 440 USD, the top 1 % of positions hold over a third of the open
 *   interest, and the largest are several hundred thousand USD, liquidated in slices. 20k positions hold
 *   about 26M USD of open interest; the simulated venue moves 1 % for about 0.3M USD (its config.ts).
 * - Leverage: log-normal with median `leverageMedian` (5x) and log-sd `leverageSigma` (0.7): about 90 %
 *   between 2x and 20x, about 10 % below 2x, and a tail up to the market's maximum 1 / initialMargin where
 *   it is clamped (about 2 % sit at the maximum, like real books). At least 1.1x.
 * - Entry: recent entries around the first price, entry = start * exp(`entrySpread` * N(0, 1)) (1 %).
 *   A position already liquidatable at the first price is redrawn (a live book holds none).
 * - collateral = ceil(notional / leverage) in QuoteE6; size = floor(notional / entry) in BaseE8, down to whole lots
 *   of the market's lotSize.
 *
 * Floats only shape the random draws; every record is exact bigint from `size` on. Deterministic per seed.
 */

export interface BookParams {
  readonly symbol: string;
  readonly positions: number;
  readonly startPrice: PriceE8;
  readonly seed: number;
  readonly longShare: number;
  readonly minNotionalUsd: number;
  readonly notionalAlpha: number;
  readonly maxNotionalUsd: number;
  readonly leverageMedian: number;
  readonly leverageSigma: number;
  readonly entrySpread: number;
}

export const DEFAULT_BOOK_PARAMS: Omit<BookParams, 'symbol' | 'positions' | 'startPrice' | 'seed'> = {
  longShare: 0.7,
  minNotionalUsd: 250,
  notionalAlpha: 1.2,
  maxNotionalUsd: 2_000_000,
  leverageMedian: 5,
  leverageSigma: 0.7,
  entrySpread: 0.01,
};

export class BookError extends Error {
  override readonly name = 'BookError';
}

/** Most positions one book holds (memory of the embedded index stays well under a gigabyte). */
export const MAX_POSITIONS = 1_000_000;
const MAX_REDRAWS = 20;

const pad = (i: number): string => String(i).padStart(7, '0');

export function generateBook(params: BookParams, config: RiskConfig): PositionRecord[] {
  const market = marketConfig(config, params.symbol);
  if (!Number.isSafeInteger(params.positions) || params.positions < 0 || params.positions > MAX_POSITIONS) {
    throw new BookError(`book/bad-count: ${params.positions} (0 to ${MAX_POSITIONS})`);
  }
  if (params.startPrice <= 0n) throw new BookError(`book/bad-price: ${params.startPrice}`);
  const rng = new Rng(params.seed).fork('book');
  const maxLev = Number(maxLeverage(market));
  const lot = lotSizeOf(market);
  const start = Number(params.startPrice) / Number(PRICE_SCALE);
  const book: PositionRecord[] = [];

  for (let i = 1; i <= params.positions; i++) {
    const side: Side = rng.chance(params.longShare) ? 'LONG' : 'SHORT';
    const notionalUsd = Math.min(
      params.maxNotionalUsd,
      rng.pareto(params.minNotionalUsd, params.notionalAlpha),
    );
    const leverage = Math.min(
      maxLev,
      Math.max(1.1, params.leverageMedian * Math.exp(params.leverageSigma * rng.normal())),
    );
    // ceil(notional / leverage): at max leverage the collateral meets the initial margin, never less.
    const collateral = BigInt(Math.ceil((notionalUsd / leverage) * Number(QUOTE_SCALE)));
    let record: PositionRecord | undefined;
    for (let attempt = 0; attempt <= MAX_REDRAWS && !record; attempt++) {
      const entryUsd = attempt === MAX_REDRAWS ? start : start * Math.exp(params.entrySpread * rng.normal());
      const entryPrice = BigInt(Math.max(1, Math.round(entryUsd * 100))) * (PRICE_SCALE / 100n);
      // Whole lots of the market's (a position opens as whole lots: admin.ts).
      const size = floorToLot((BigInt(Math.floor(notionalUsd * 1e6)) * NOTIONAL_TO_QUOTE) / entryPrice, lot);
      if (size <= 0n) break;
      const candidate = withLiquidationPrice(
        {
          id: `${params.symbol}-p${pad(i)}`,
          traderId: `trader-${pad(i)}`,
          symbol: params.symbol,
          side,
          size,
          entryPrice,
          collateral,
          state: 'OPEN',
          version: 0,
        },
        config,
      );
      if (!isLiquidatable(candidate, params.startPrice, market.maintenanceMargin)) record = candidate;
    }
    if (record) book.push(record);
  }
  // A book silently smaller than asked would make every figure of the run mean something else.
  if (book.length < params.positions) {
    throw new BookError(
      `book/undrawable: only ${book.length} of ${params.positions} positions could be drawn at a start price of ${start} (sizes round to nothing or every draw is liquidatable at once): is the price in USD?`,
    );
  }
  return book;
}

/** Open interest (sum of notional at `price`) per side, in whole USD, for summaries. */
export function openInterestUsd(
  book: readonly PositionRecord[],
  price: PriceE8,
): { long: number; short: number } {
  let long = 0n;
  let short = 0n;
  for (const p of book) {
    if (p.side === 'LONG') long += p.size * price;
    else short += p.size * price;
  }
  const usd = (e16: bigint): number => Number(e16 / (BASE_SCALE * PRICE_SCALE));
  return { long: usd(long), short: usd(short) };
}
