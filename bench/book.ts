import { DEFAULT_RISK_CONFIG, type RiskConfig } from '../shared/domain/config.ts';
import { BASE_SCALE, PRICE_SCALE, type PriceE8, QUOTE_SCALE } from '../shared/domain/units.ts';
import type { PositionRecord } from '../shared/ports/index.ts';
import { withLiquidationPrice } from '../shared/services/margin-check.ts';

/**
 * A synthetic book for the margin-check benchmark, built so that one tick crosses an exact number of
 * positions: every position holds 1 ETH at an entry of 200 USD, and collaterals are all distinct (10 USD plus
 * a permutation of i * 50 USD / n), so liquidation prices are distinct and the k-th most endangered long
 * has a price strictly above the (k+1)-th. 70 % longs (liquidation prices about 140-195 USD), 30 % shorts
 * (about 205-260 USD, never crossed by the benchmark's falling ticks). Insertion order is shuffled so the
 * bulk load and the scan see no sorted input.
 */

export const BENCH_SYMBOL = 'ETH-USD';
const ENTRY: PriceE8 = 200n * PRICE_SCALE;
const COLLATERAL_BASE = 10n * QUOTE_SCALE;
/** Collaterals spread over 50 USD whatever the book size: 10-60 USD on 1 ETH is 3.3x to 20x leverage. */
const COLLATERAL_SPREAD = 50n * QUOTE_SCALE;
/** Coprime with every power of ten, so i -> i * STRIDE mod n is a permutation of 0..n-1. */
const STRIDE = 7919;

export interface BenchBook {
  readonly positions: readonly PositionRecord[];
  /** Liquidation prices of the longs, most endangered (highest) first. */
  readonly longPrices: readonly PriceE8[];
}

export function syntheticBook(n: number, config: RiskConfig = DEFAULT_RISK_CONFIG): BenchBook {
  if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`bench/bad-book-size: ${n}`);
  // At least 50 micro-USD apart (1M positions): about 5,000 PriceE8 units between liquidation prices.
  const step = COLLATERAL_SPREAD / BigInt(n);
  const positions: PositionRecord[] = [];
  const longPrices: PriceE8[] = [];
  for (let i = 0; i < n; i++) {
    const rank = BigInt((i * STRIDE) % n);
    const side = i % 10 < 7 ? 'LONG' : 'SHORT';
    const record = withLiquidationPrice(
      {
        id: `bench-${String(i).padStart(7, '0')}`,
        traderId: `trader-${i}`,
        symbol: BENCH_SYMBOL,
        side,
        size: BASE_SCALE,
        entryPrice: ENTRY,
        collateral: COLLATERAL_BASE + rank * step,
        state: 'OPEN',
        version: 0,
      },
      config,
    );
    positions.push(record);
    if (side === 'LONG') longPrices.push(record.liquidationPrice);
  }
  longPrices.sort((a, b) => (a > b ? -1 : a < b ? 1 : 0));
  return { positions, longPrices };
}

/**
 * The mark of a falling tick that crosses exactly `k` longs: the k-th highest liquidation price (longs are
 * crossed when liquidationPrice >= mark), or one unit above the highest for k = 0 (a near miss).
 */
export function markCrossing(book: BenchBook, k: number): PriceE8 {
  const prices = book.longPrices;
  const top = prices[0];
  if (top === undefined) throw new RangeError('bench/no-longs');
  if (k === 0) return top + 1n;
  const at = prices[k - 1];
  const next = prices[k];
  if (at === undefined) throw new RangeError(`bench/too-few-longs: ${k} of ${prices.length}`);
  if (next !== undefined && next >= at) throw new RangeError(`bench/tied-prices at rank ${k}`);
  return at;
}

/** A mark above every long's liquidation price and below every short's: a tick there crosses nothing. */
export const restingMark = (book: BenchBook): PriceE8 => (book.longPrices[0] ?? ENTRY) + PRICE_SCALE;
