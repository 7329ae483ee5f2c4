import { quoteOf } from '../shared/domain/config.ts';
import { PRICE_SCALE, QUOTE_SCALE } from '../shared/domain/units.ts';
import { type SimulationResult, type Strategy, slippageSummary, summaryJson } from '../shared/sim/results.ts';
import { SLIPPAGE_UNITS_PER_BP } from '../shared/sim/stats.ts';

/**
 * The report's chart data: the runs' exact results turned into plain numbers for plotting (display only,
 * never fed back into any amount). One entry per strategy; every series is per minute.
 */

export interface StrategyChartData {
  readonly strategy: Strategy;
  readonly time: number[];
  readonly mark: number[];
  /** [time, mark, liquidations started] for the minutes that started any. */
  readonly markers: [number, number, number][];
  readonly settled: Record<'market' | 'auction' | 'insurance' | 'adl' | 'badDebt' | 'cancelled', number[]>;
  readonly fund: number[];
  readonly badDebt: number[];
  readonly slippageHistogram: { readonly binBps: number; readonly counts: number[] };
  readonly summary: Record<string, unknown>;
  readonly totals: {
    readonly badDebt: number;
    readonly fundDrawdown: number;
    readonly insurancePaid: number;
  };
}

export interface ReportData {
  readonly title: string;
  readonly scenario: string;
  readonly symbol: string;
  /** The quote currency of every amount (the market's, the configuration's one). */
  readonly quote: string;
  readonly positions: number;
  readonly seed: number;
  readonly reference: { readonly time: number[]; readonly price: number[] };
  readonly strategies: StrategyChartData[];
}

const usd = (q: bigint): number => Number(q) / Number(QUOTE_SCALE);
const px = (p: bigint): number => Number(p) / Number(PRICE_SCALE);

/** Histogram bins of slippage: a bin width that gives about 40 bins up to the largest max, at least 5 bps. */
export function slippageBinBps(results: readonly SimulationResult[]): number {
  const max = Math.max(0, ...results.map((r) => slippageSummary(r.slippageSamples).max));
  const raw = Math.max(5, max / 40);
  const nice = [5, 10, 25, 50, 100, 250, 500, 1000];
  return nice.find((n) => n >= raw) ?? Math.ceil(raw / 1000) * 1000;
}

function histogram(samples: readonly number[], binBps: number, bins: number): number[] {
  const counts = new Array<number>(bins).fill(0);
  for (const s of samples) {
    const bps = Math.max(0, s / SLIPPAGE_UNITS_PER_BP);
    const i = Math.min(bins - 1, Math.floor(bps / binBps));
    counts[i] = counts[i]! + 1;
  }
  return counts;
}

export function reportData(results: readonly SimulationResult[]): ReportData {
  const first = results[0];
  if (!first) throw new Error('report/no-results: nothing to report');
  const binBps = slippageBinBps(results);
  const maxBps = Math.max(0, ...results.map((r) => slippageSummary(r.slippageSamples).max));
  const bins = Math.max(1, Math.floor(maxBps / binBps) + 1);
  return {
    title: `Backstop: ${first.scenario} (${first.symbol})`,
    scenario: first.scenario,
    symbol: first.symbol,
    quote: quoteOf(first.symbol),
    positions: first.positions,
    seed: first.seed,
    reference: { time: [...first.series.timestampMs], price: first.series.reference.map(px) },
    strategies: results.map((r) => {
      const s = r.series;
      const markers: [number, number, number][] = [];
      s.started.forEach((n, i) => {
        if (n > 0) markers.push([s.timestampMs[i]!, px(s.mark[i]!), n]);
      });
      return {
        strategy: r.strategy,
        time: [...s.timestampMs],
        mark: s.mark.map(px),
        markers,
        settled: {
          market: [...s.settled.market],
          auction: [...s.settled.auction],
          insurance: [...s.settled.insurance],
          adl: [...s.settled.adl],
          badDebt: [...s.settled.badDebt],
          cancelled: [...s.settled.cancelled],
        },
        fund: s.fund.map(usd),
        badDebt: s.badDebt.map(usd),
        slippageHistogram: { binBps, counts: histogram(r.slippageSamples, binBps, bins) },
        summary: summaryJson(r),
        totals: {
          badDebt: usd(r.badDebt),
          fundDrawdown: usd(r.insuranceFund.drawdown.fall),
          insurancePaid: usd(r.insurancePaid),
        },
      };
    }),
  };
}
