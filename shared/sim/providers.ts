import { NOTIONAL_TO_QUOTE, type PriceE8, QUOTE_SCALE, type QuoteE6 } from '../domain/units.ts';
import type { ProviderRecord } from '../ports/index.ts';
import { Rng } from './random.ts';

/**
 * Backstop liquidity providers with committed capital and standing bid terms:
 * - capital: `totalCapitalUsd` split with weights Pareto(1, 1.5): a few large market makers, a long tail;
 * - maxDiscountPpm: uniform between `minDiscount` and `maxDiscount` of the mark (0.5 % to 5 %): its standing bid's
 *   discount, the price it takes a lot at (clearing fills the smallest discounts first, each at its own bid);
 * - maxLot: `lotShare` of its capital at the first price, in base units: no single auction takes all of it.
 * Deterministic per seed.
 */

export interface ProviderParams {
  readonly symbol: string;
  readonly count: number;
  readonly totalCapitalUsd: number;
  readonly startPrice: PriceE8;
  readonly seed: number;
  readonly minDiscount: number;
  readonly maxDiscount: number;
  readonly lotShare: number;
}

export const DEFAULT_PROVIDER_PARAMS: Omit<
  ProviderParams,
  'symbol' | 'count' | 'totalCapitalUsd' | 'startPrice' | 'seed'
> = {
  minDiscount: 0.005,
  maxDiscount: 0.05,
  lotShare: 0.25,
};

export class ProviderParamsError extends Error {
  override readonly name = 'ProviderParamsError';
}

export const MAX_PROVIDERS = 1000;

export function generateProviders(params: ProviderParams): ProviderRecord[] {
  if (!Number.isSafeInteger(params.count) || params.count < 0 || params.count > MAX_PROVIDERS) {
    throw new ProviderParamsError(`providers/bad-count: ${params.count} (0 to ${MAX_PROVIDERS})`);
  }
  if (!(params.totalCapitalUsd >= 0))
    throw new ProviderParamsError(`providers/bad-capital: ${params.totalCapitalUsd}`);
  if (params.count === 0) return [];
  const rng = new Rng(params.seed).fork('providers');
  const weights = Array.from({ length: params.count }, () => rng.pareto(1, 1.5));
  const discounts = Array.from({ length: params.count }, () =>
    rng.uniform(params.minDiscount, params.maxDiscount),
  );
  const total = weights.reduce((a, b) => a + b, 0);
  const totalE6 = BigInt(Math.round(params.totalCapitalUsd)) * QUOTE_SCALE;
  const capitals = weights.map((w) => BigInt(Math.floor((w / total) * Number(totalE6))));
  // Whatever the float split left over goes to the first provider, so the total is exact.
  capitals[0] = capitals[0]! + (totalE6 - capitals.reduce((a, b) => a + b, 0n));
  return capitals.map(
    (capital, i): ProviderRecord => ({
      id: `provider-${String(i + 1).padStart(3, '0')}`,
      capital,
      maxDiscountPpm: BigInt(Math.round(discounts[i]! * 1e6)),
      maxLot: lotSize(capital, params.startPrice, params.lotShare),
      symbols: [params.symbol],
      version: 0,
    }),
  );
}

/** floor(capital * share / price) in BaseE8. */
function lotSize(capital: QuoteE6, price: PriceE8, share: number): bigint {
  const shareE6 = BigInt(Math.round(share * 1e6));
  return (capital * shareE6 * NOTIONAL_TO_QUOTE) / (price * 1_000_000n);
}
