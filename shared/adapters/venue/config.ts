import type { BaseE8, PriceE8 } from '../../domain/units.ts';

/**
 * Market model of the simulated venue, one typed config with defaults. Prices and sizes of fills are exact
 * bigints; the model quantities (depth, volatility, impact) are plain Numbers, documented per field.
 *
 * Calibration of the depth (poolQuoteReserve): the book reproduces a constant-product pool x * y = k at the
 * current mid P (x = y / P base, y quote). Selling d base moves the marginal price to P * (x / (x + d))^2,
 * so the base that moves the price down by a share delta is d(delta) = x * (1 / sqrt(1 - delta) - 1), and
 * a sell of d fills at the average price P * x / (x + d) (slippage about d / x). Buying d moves it up to
 * P * (x / (x - d))^2, so d(delta) = x * (1 - 1 / sqrt(1 + delta)).
 * The Uniswap v2 ETH/DAI pool on 19 May 2021 (/work/shared/data/uniswap-v2-eth-dai-reserves-2021-05-19-10m.csv,
 * 144 rows every 10 min, price 2925 -> 2035) held y between 55.3M and 68.9M DAI, median 62.56M, with
 * sqrt(x * y) between 1.18M and 1.26M. With y = 62.5M USD: about 157k USD of sells move the price 0.5 %,
 * 315k move it 1 %, 1.63M move it 5 % and 3.38M move it 10 %. The quote reserve is held constant across
 * prices and symbols (a depth in USD), then thinned by volatility (depthShare below).
 */
export interface SimulatedMarketConfig {
  /** Price grid (PriceE8): every level and fill price is a multiple of it. */
  readonly priceTick: PriceE8;
  /** Size grid (BaseE8): every fill size is a multiple of it. */
  readonly lotSize: BaseE8;
  /** Levels on each side; the book ends beyond them (an order larger than the book fills partially). */
  readonly levels: number;
  /** Distance between adjacent levels, ppm of the mid. */
  readonly levelSpacingPpm: number;
  /** Quote reserve (USD) of the virtual constant-product pool whose depth the calm book reproduces. */
  readonly poolQuoteReserve: number;
  /** Half-spread in a calm market, ppm of the mid. */
  readonly baseHalfSpreadPpm: number;
  /** halfSpread = base + halfSpreadPerVol * vol (vol: EWMA of |log return| per tick), capped below. */
  readonly halfSpreadPerVol: number;
  readonly maxHalfSpreadPpm: number;
  /** depthShare = max(minDepthShare, 1 / (1 + vol / volHalvingDepth)): depth halves at this vol. */
  readonly volHalvingDepth: number;
  readonly minDepthShare: number;
  /** Half-life of the volatility EWMA, in ticks: lambda = 2^(-1 / halfLife). */
  readonly volHalfLifeTicks: number;
  /** Share of the price move an order walks that stays in the mid (1: like the pool, until arbitrage). */
  readonly impactRetention: number;
  /** Our impact decays back to the reference price: impact(t) = impact(t0) * 2^(-(t - t0) / halfLife). */
  readonly impactHalfLifeSeconds: number;
}

export const DEFAULT_SIMULATED_MARKET: SimulatedMarketConfig = {
  priceTick: 1_000_000n, // 0.01 USD
  lotSize: 1n,
  levels: 400,
  levelSpacingPpm: 500, // 5 bps: 400 levels cover 20 % of the mid
  poolQuoteReserve: 62_500_000,
  baseHalfSpreadPpm: 100, // 1 bp
  halfSpreadPerVol: 1,
  maxHalfSpreadPpm: 50_000, // 5 %
  volHalvingDepth: 0.005, // 0.5 % average |return| per tick halves the depth
  minDepthShare: 0.05,
  volHalfLifeTicks: 10,
  impactRetention: 1,
  impactHalfLifeSeconds: 300,
};

export class VenueConfigError extends Error {
  override readonly name = 'VenueConfigError';
}

/** Merges overrides onto the defaults and checks every field. */
export function resolveMarketConfig(overrides: Partial<SimulatedMarketConfig> = {}): SimulatedMarketConfig {
  const c = { ...DEFAULT_SIMULATED_MARKET, ...overrides };
  const fail = (field: string, rule: string): never => {
    throw new VenueConfigError(`venue/bad-config: ${field} ${rule}`);
  };
  if (typeof c.priceTick !== 'bigint' || c.priceTick <= 0n) fail('priceTick', 'must be a positive PriceE8');
  if (typeof c.lotSize !== 'bigint' || c.lotSize <= 0n) fail('lotSize', 'must be a positive BaseE8');
  if (!Number.isSafeInteger(c.levels) || c.levels < 1) fail('levels', 'must be a positive integer');
  const ppmFields = ['levelSpacingPpm', 'baseHalfSpreadPpm', 'maxHalfSpreadPpm'] as const;
  for (const f of ppmFields) {
    if (!Number.isSafeInteger(c[f]) || c[f] < 0 || c[f] >= 1_000_000)
      fail(f, 'must be an integer ppm in [0, 1e6)');
  }
  if (c.levelSpacingPpm === 0) fail('levelSpacingPpm', 'must be > 0');
  if (c.maxHalfSpreadPpm < c.baseHalfSpreadPpm) fail('maxHalfSpreadPpm', 'must be >= baseHalfSpreadPpm');
  const positive = [
    'poolQuoteReserve',
    'volHalvingDepth',
    'volHalfLifeTicks',
    'impactHalfLifeSeconds',
  ] as const;
  for (const f of positive) if (!(Number.isFinite(c[f]) && c[f] > 0)) fail(f, 'must be a positive number');
  if (!(Number.isFinite(c.halfSpreadPerVol) && c.halfSpreadPerVol >= 0))
    fail('halfSpreadPerVol', 'must be >= 0');
  for (const f of ['minDepthShare', 'impactRetention'] as const) {
    if (!(c[f] >= 0 && c[f] <= 1)) fail(f, 'must be in [0, 1]');
  }
  return Object.freeze(c);
}
