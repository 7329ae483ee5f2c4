import type { SimulatedMarketConfig } from '../adapters/venue/simulated.ts';
import { ConfigError, DEFAULT_RISK_CONFIG, marketConfig, type RiskConfig } from '../domain/config.ts';
import { NOTIONAL_TO_QUOTE, type PriceE8, QUOTE_SCALE, type QuoteE6 } from '../domain/units.ts';
import type { PositionRecord } from '../ports/index.ts';
import type { PricePoint } from '../prices/parse.ts';
import { type BookParams, DEFAULT_BOOK_PARAMS, generateBook } from './book.ts';
import { type EngineInput, runSimulation } from './engine.ts';
import { DEFAULT_PROVIDER_PARAMS, generateProviders } from './providers.ts';
import type { SimulationResult, Strategy } from './results.ts';
import { builtInScenario } from './scenario.ts';

/**
 * One simulation setup, shared by the CLI, the tests and the report: the price path (a file or the built-in
 * scenario), the book, the providers and the fund, all from one seed. Both strategies run on identical inputs.
 */

export interface SimulationOptions {
  /** A parsed price file; absent: the built-in scenario. */
  readonly prices?: { readonly name: string; readonly points: readonly PricePoint[] };
  /** Market (must be configured); default ETH-USD. */
  readonly symbol?: string;
  readonly positions?: number;
  readonly seed?: number;
  /** Insurance fund at the start (default: a share of the open interest). */
  readonly fund?: QuoteE6;
  readonly providers?: number;
  /** Capital committed by all providers together, USD (default: a share of the open interest). */
  readonly providerCapitalUsd?: number;
  readonly config?: RiskConfig;
  readonly book?: Partial<Omit<BookParams, 'symbol' | 'positions' | 'startPrice' | 'seed'>>;
  readonly providerTerms?: Partial<typeof DEFAULT_PROVIDER_PARAMS>;
  /** Overrides of the simulated venue's market model. */
  readonly venue?: Partial<SimulatedMarketConfig>;
}

/**
 * Defaults, sized so `npm run demo` takes a few seconds: 20k positions (about 26M USD of open interest at the
 * first price). The fund and the providers' capital scale with the book's open interest (OI) unless given:
 * a fund of 0.75 % of OI (about 200k USD for the default book: enough for the waterfall through the built-in
 * crash, not for market-only liquidation) and providers committing 20 % of OI (about 5M USD).
 */
export const SIMULATION_DEFAULTS = {
  symbol: 'ETH-USD',
  positions: 20_000,
  seed: 1,
  providers: 8,
  /** Fund at the start, ppm of the open interest. */
  fundPpmOfOpenInterest: 7_500n,
  /** Capital all providers commit, ppm of the open interest. */
  providerCapitalPpmOfOpenInterest: 200_000n,
} as const;

/** Sum of |size| * price over the book at `price`, in QuoteE6 (floored). */
export function openInterest(book: readonly PositionRecord[], price: PriceE8): QuoteE6 {
  let e16 = 0n;
  for (const p of book) e16 += p.size * price;
  return e16 / NOTIONAL_TO_QUOTE;
}

export type PreparedSimulation = Omit<EngineInput, 'strategy' | 'onProgress' | 'telemetry'>;

export function prepareSimulation(options: SimulationOptions = {}): PreparedSimulation {
  const config = options.config ?? DEFAULT_RISK_CONFIG;
  const symbol = options.symbol ?? SIMULATION_DEFAULTS.symbol;
  const { lotSize } = marketConfig(config, symbol);
  // The simulated exchange trades the market's lot (unless the venue's model says otherwise).
  const venue = lotSize === undefined ? options.venue : { lotSize, ...options.venue };
  const seed = options.seed ?? SIMULATION_DEFAULTS.seed;
  const scenario =
    options.prices ??
    (() => {
      const s = builtInScenario(seed);
      // Its prices are one market's: another market's book on them would be reported under the wrong name.
      if (s.symbol !== symbol)
        throw new ConfigError(
          `the built-in scenario is ${s.symbol} prices: give a price file (--prices) to simulate ${symbol}`,
        );
      return { name: s.name, points: s.points };
    })();
  const startPrice = scenario.points[0]!.price;
  const book = generateBook(
    {
      ...DEFAULT_BOOK_PARAMS,
      ...options.book,
      symbol,
      positions: options.positions ?? SIMULATION_DEFAULTS.positions,
      startPrice,
      seed,
    },
    config,
  );
  const oi = openInterest(book, startPrice);
  const share = (ppm: bigint): QuoteE6 => (oi * ppm) / 1_000_000n / QUOTE_SCALE;
  const providers = generateProviders({
    ...DEFAULT_PROVIDER_PARAMS,
    ...options.providerTerms,
    symbol,
    count: options.providers ?? SIMULATION_DEFAULTS.providers,
    totalCapitalUsd:
      options.providerCapitalUsd ?? Number(share(SIMULATION_DEFAULTS.providerCapitalPpmOfOpenInterest)),
    startPrice,
    seed,
  });
  return {
    scenario: scenario.name,
    symbol,
    seed,
    points: scenario.points,
    book,
    providers,
    // Whole USD: a default fund reads as a round number in the summary.
    fundStart: options.fund ?? share(SIMULATION_DEFAULTS.fundPpmOfOpenInterest) * QUOTE_SCALE,
    config,
    ...(venue ? { venue } : {}),
  };
}

export function simulate(
  prepared: PreparedSimulation,
  strategy: Strategy,
  onProgress?: (done: number, total: number) => void,
): Promise<SimulationResult> {
  return runSimulation({ ...prepared, strategy, ...(onProgress ? { onProgress } : {}) });
}
