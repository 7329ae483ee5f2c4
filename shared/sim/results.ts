import type { Layer } from '../domain/model.ts';
import { formatPrice, formatQuote, type PriceE8, type QuoteE6 } from '../domain/units.ts';
import { percentile, SLIPPAGE_UNITS_PER_BP } from './stats.ts';

/** What one simulation run produced: the summary (JSON) and the per-minute series (report). */

/**
 * `waterfall`: the backstop. `no-auction`: the same waterfall with no liquidity providers (market within the bound,
 * then the fund and ADL): what the auction layer adds, measured on the same inputs. `market-only`: the naive baseline.
 */
export type Strategy = 'waterfall' | 'no-auction' | 'market-only';
export const STRATEGIES: readonly Strategy[] = ['waterfall', 'no-auction', 'market-only'];

/** Per-minute series, one entry per tick (price ticks, then the ticks that drain the remaining work). */
export interface MinuteSeries {
  readonly timestampMs: number[];
  /** External price (file or scenario). */
  readonly reference: PriceE8[];
  /** Mark fed to the margin check: the venue's mid, the reference moved by our own impact. */
  readonly mark: PriceE8[];
  readonly fund: QuoteE6[];
  /** Liquidations started by the tick. */
  readonly started: number[];
  /** Liquidations that reached a terminal state during the minute, by state. */
  readonly settled: Record<Layer | 'badDebt' | 'cancelled', number[]>;
  /** Cumulative bad debt at the end of the minute. */
  readonly badDebt: QuoteE6[];
}

export interface Conservation {
  /** Traders' wealth change: collateral left in open positions plus payouts, minus the collateral they started with. */
  readonly traders: QuoteE6;
  readonly fund: QuoteE6;
  /** Counterparty of market fills (receives -realized PnL of what it bought or sold), with rounding residues. */
  readonly venue: QuoteE6;
  /** Counterparty of auction fills. */
  readonly providers: QuoteE6;
  /** ADL: counterparty of the closes at the mark, minus the loss nobody covered. */
  readonly adl: QuoteE6;
  /** traders + fund + venue + providers + adl: must be 0. */
  readonly error: QuoteE6;
}

export interface SimulationResult {
  readonly scenario: string;
  readonly symbol: string;
  readonly strategy: Strategy;
  readonly seed: number;
  readonly ticks: number;
  readonly drainTicks: number;
  readonly ticksRejected: Readonly<Record<string, number>>;
  readonly positions: number;
  /** Positions at least one settled liquidation (slice) closed some of. */
  readonly positionsLiquidated: number;
  readonly liquidations: number;
  readonly settledBy: Readonly<Record<Layer, number>>;
  /** Of settledBy.adl: deficits ADL closed and covered nothing of (left as bad debt; the baseline's every one). */
  readonly adlBadDebtOnly: number;
  readonly cancelled: number;
  readonly nonTerminal: number;
  /** OPEN positions past their liquidation price at the last accepted mark when the run ended (never started). */
  readonly openCrossed: number;
  /** Shortfall the insurance fund did not pay: socialized through ADL or left uncovered. */
  readonly badDebt: QuoteE6;
  /** The part of badDebt that even ADL could not cover. */
  readonly badDebtUncovered: QuoteE6;
  readonly insuranceFund: {
    readonly start: QuoteE6;
    readonly end: QuoteE6;
    readonly min: QuoteE6;
    /** The deepest fall from a running peak of the balance (relative to that peak), and the peak. */
    readonly drawdown: { readonly fall: QuoteE6; readonly peak: QuoteE6 };
  };
  readonly feesCollected: QuoteE6;
  readonly insurancePaid: QuoteE6;
  /** Slippage samples (one per market order that filled), hundredths of a basis point, ascending. */
  readonly slippageSamples: readonly number[];
  readonly zeroPriceFills: number;
  readonly marketOrders: number;
  readonly marketVolume: QuoteE6;
  /** Market orders of the waterfall's last resort (its wide bound) that filled, and what they sold; part of the above. */
  readonly lastResortOrders: number;
  readonly lastResortVolume: QuoteE6;
  readonly auctionVolume: QuoteE6;
  /** What market and auction fills gave up against the mark of their time (sold below, bought above it). */
  readonly executionCost: QuoteE6;
  readonly adlVolume: QuoteE6;
  readonly providerCapitalUsed: QuoteE6;
  readonly priceLow: PriceE8;
  /** The lowest accepted mark; none when no tick was accepted. */
  readonly markLow?: PriceE8;
  readonly conservation: Conservation;
  /** Service errors by name (each one is a retried message, as on Lambda). */
  readonly errors: Readonly<Record<string, number>>;
  /** First occurrence of each error, with its stack (diagnostics; not in the JSON summary). */
  readonly errorSamples: Readonly<Record<string, string>>;
  readonly deadLetters: number;
  readonly series: MinuteSeries;
}

const bps = (units: number): number => units / SLIPPAGE_UNITS_PER_BP;

/** Nearest-rank p50, p99 and the maximum of the (ascending) slippage samples, in basis points. */
export function slippageSummary(samples: readonly number[]): { p50: number; p99: number; max: number } {
  return {
    p50: bps(percentile(samples, 50)),
    p99: bps(percentile(samples, 99)),
    max: bps(percentile(samples, 100)),
  };
}

/** The summary as plain JSON: amounts as decimal strings in quote units, slippage in basis points. */
export function summaryJson(r: SimulationResult): Record<string, unknown> {
  const q = formatQuote;
  return {
    scenario: r.scenario,
    symbol: r.symbol,
    strategy: r.strategy,
    seed: r.seed,
    ticks: r.ticks,
    drainTicks: r.drainTicks,
    ticksRejected: r.ticksRejected,
    positions: r.positions,
    positionsLiquidated: r.positionsLiquidated,
    liquidations: r.liquidations,
    settledBy: r.settledBy,
    adlBadDebtOnly: r.adlBadDebtOnly,
    cancelled: r.cancelled,
    nonTerminal: r.nonTerminal,
    openCrossed: r.openCrossed,
    badDebt: q(r.badDebt),
    badDebtUncovered: q(r.badDebtUncovered),
    insuranceFund: {
      start: q(r.insuranceFund.start),
      end: q(r.insuranceFund.end),
      min: q(r.insuranceFund.min),
      drawdown: q(r.insuranceFund.drawdown.fall),
      drawdownPeak: q(r.insuranceFund.drawdown.peak),
    },
    feesCollected: q(r.feesCollected),
    insurancePaid: q(r.insurancePaid),
    slippageBps: slippageSummary(r.slippageSamples),
    zeroPriceFills: r.zeroPriceFills,
    marketOrders: r.marketOrders,
    lastResortOrders: r.lastResortOrders,
    volume: {
      market: q(r.marketVolume),
      lastResort: q(r.lastResortVolume),
      auction: q(r.auctionVolume),
      adl: q(r.adlVolume),
    },
    executionCost: q(r.executionCost),
    providerCapitalUsed: q(r.providerCapitalUsed),
    priceLow: formatPrice(r.priceLow),
    markLow: r.markLow === undefined ? null : formatPrice(r.markLow),
    conservationError: q(r.conservation.error),
    conservation: Object.fromEntries(Object.entries(r.conservation).map(([k, v]) => [k, q(v)])),
    errors: r.errors,
    deadLetters: r.deadLetters,
  };
}
