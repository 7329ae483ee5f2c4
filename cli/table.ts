import { quoteOf } from '../shared/domain/config.ts';
import {
  formatDecimal,
  formatPrice,
  formatQuoteGrouped,
  groupThousands,
  type PriceE8,
  QUOTE_SCALE,
  type QuoteE6,
} from '../shared/domain/units.ts';
import type { FundFigure, FundNeeded, FundTarget } from '../shared/sim/fund-needed.ts';
import { type SimulationResult, slippageSummary } from '../shared/sim/results.ts';

/** The readable summary: one column per strategy run on the same inputs. */

/** 1234567.891 -> "1,234,567.89" (display only: rounded half away from zero to cents). */
export function formatUsd(value: QuoteE6): string {
  const negative = value < 0n;
  const cents = ((negative ? -value : value) + QUOTE_SCALE / 200n) / (QUOTE_SCALE / 100n);
  return `${negative ? '-' : ''}${groupThousands(cents / 100n)}.${(cents % 100n).toString().padStart(2, '0')}`;
}

const count = (n: number): string => n.toLocaleString('en-US');
/** No market order, no slippage to show: '-' (0.00 would read as orders that filled at the mark). */
const slippageCell = (r: SimulationResult, at: 'p50' | 'p99' | 'max'): string =>
  r.slippageSamples.length === 0 ? '-' : bps(slippageSummary(r.slippageSamples)[at]);
/** A price exactly, with cents at least (87.30 beside 87.29, not 87.3). */
const markUsd = (p: PriceE8): string => {
  const [whole, fraction = ''] = formatPrice(p).split('.');
  return `${whole}.${fraction.padEnd(2, '0')}`;
};
const bps = (n: number): string => n.toFixed(2);

/** The deepest fall from a running peak, as a share of that peak. */
function drawdown(r: SimulationResult): string {
  const { fall, peak } = r.insuranceFund.drawdown;
  if (peak === 0n) return '-';
  return `${((Number(fall) / Number(peak)) * 100).toFixed(1)} %`;
}

/** Exactly 0 as 0.00; anything else in full (an error under half a cent must not read as none). */
const conservationError = (r: SimulationResult): string =>
  r.conservation.error === 0n ? '0.00' : formatDecimal(r.conservation.error, 6);

type Row = readonly [label: string, value: (r: SimulationResult) => string];

/** The rows, amounts labelled in the market's quote currency (the configuration's one). */
const rows = (quote: string): readonly (Row | 'rule')[] => [
  ['liquidations (slices)', (r) => count(r.liquidations)],
  ['  settled by market', (r) => count(r.settledBy.market)],
  ['  settled by auction', (r) => count(r.settledBy.auction)],
  ['  settled by insurance', (r) => count(r.settledBy.insurance)],
  ['  settled by ADL', (r) => count(r.settledBy.adl - r.adlBadDebtOnly)],
  ['  left as bad debt', (r) => count(r.adlBadDebtOnly)],
  ['  cancelled', (r) => count(r.cancelled)],
  ['  not terminal', (r) => count(r.nonTerminal)],
  ['positions liquidated', (r) => count(r.positionsLiquidated)],
  'rule',
  ['slippage p50 (bps)', (r) => slippageCell(r, 'p50')],
  ['slippage p99 (bps)', (r) => slippageCell(r, 'p99')],
  ['slippage max (bps)', (r) => slippageCell(r, 'max')],
  ['zero-price fills', (r) => count(r.zeroPriceFills)],
  [`lowest mark (${quote})`, (r) => (r.markLow === undefined ? '-' : markUsd(r.markLow))],
  'rule',
  // "closed", not "sold": a short's liquidation buys (leg 2 of the real crash liquidates shorts on its rebounds).
  [`closed on the market (${quote})`, (r) => formatUsd(r.marketVolume)],
  [`  last resort (${quote})`, (r) => formatUsd(r.lastResortVolume)],
  [`closed in auctions (${quote})`, (r) => formatUsd(r.auctionVolume)],
  [`closed by ADL (${quote})`, (r) => formatUsd(r.adlVolume)],
  [`given up vs the mark (${quote})`, (r) => formatUsd(r.executionCost)],
  'rule',
  ['insurance fund start', (r) => formatUsd(r.insuranceFund.start)],
  ['insurance fund end', (r) => formatUsd(r.insuranceFund.end)],
  ['insurance fund min', (r) => formatUsd(r.insuranceFund.min)],
  ['fund drawdown', drawdown],
  ['fees collected', (r) => formatUsd(r.feesCollected)],
  ['shortfall paid by fund', (r) => formatUsd(r.insurancePaid)],
  ['BAD DEBT (fund did not pay)', (r) => formatUsd(r.badDebt)],
  ['  covered by ADL', (r) => formatUsd(r.badDebt - r.badDebtUncovered)],
  ['  left uncovered', (r) => formatUsd(r.badDebtUncovered)],
  'rule',
  ['ticks rejected', (r) => count(Object.values(r.ticksRejected).reduce((a, b) => a + b, 0))],
  ['errors', (r) => count(Object.values(r.errors).reduce((a, b) => a + b, 0))],
  ['dead letters', (r) => count(r.deadLetters)],
  ['conservation error', conservationError],
];

/** Why a run's numbers cannot be trusted as they stand (nothing: they can), one line each. */
export function runProblems(results: readonly SimulationResult[]): string[] {
  return results.flatMap((r) => [
    ...(r.nonTerminal > 0 ? [`${r.strategy}: ${count(r.nonTerminal)} liquidations did not finish`] : []),
    ...(r.openCrossed > 0
      ? [
          `${r.strategy}: ${count(r.openCrossed)} positions past their liquidation price were never liquidated`,
        ]
      : []),
    ...(r.deadLetters > 0 ? [`${r.strategy}: ${count(r.deadLetters)} messages dead-lettered`] : []),
    ...(r.conservation.error !== 0n
      ? [
          `${r.strategy}: money does not add up (conservation error ${formatDecimal(r.conservation.error, 6)} ${quoteOf(r.symbol)})`,
        ]
      : []),
  ]);
}

/** The price series' step, from its first two ticks ("1 min", "10 min"). */
function tickInterval(r: SimulationResult): string {
  const [a, b] = r.series.timestampMs;
  if (a === undefined || b === undefined) return '1 min';
  const seconds = Math.round((b - a) / 1000);
  return seconds % 60 === 0 ? `${seconds / 60} min` : `${seconds} s`;
}

/** The ticks each run needed after the prices to finish its work, per strategy when they differ. */
function drain(results: readonly SimulationResult[]): string {
  const ticks = [...new Set(results.map((r) => r.drainTicks))];
  if (ticks.length === 1) return ticks[0]! > 0 ? ` (+${count(ticks[0]!)} to finish)` : '';
  return ` (+${results.map((r) => `${count(r.drainTicks)} ${r.strategy}`).join(', +')} to finish)`;
}

/** `riskConfig`: a line naming the risk configuration (a --config; none for the built-in one). */
export function renderComparison(results: readonly SimulationResult[], riskConfig?: string): string {
  const first = results[0];
  if (!first) return '';
  const quote = quoteOf(first.symbol);
  const tableRows = rows(quote);
  const header = [
    `Backstop simulation: ${first.scenario}, ${first.symbol}, ${count(first.ticks)} ticks of ${tickInterval(first)}` +
      `${drain(results)}, price ${formatPrice(first.series.reference[0] ?? 0n)} -> low ${formatPrice(first.priceLow)}`,
    `${count(first.positions)} positions, seed ${first.seed}, fund ${formatUsd(first.insuranceFund.start)} ${quote}`,
    ...(riskConfig === undefined ? [] : [riskConfig]),
    '',
  ];
  const labelWidth = Math.max(...tableRows.map((r) => (r === 'rule' ? 0 : r[0].length)));
  const cells = tableRows.map((row) => (row === 'rule' ? [] : results.map((r) => row[1](r))));
  const widths = results.map((r, i) => Math.max(r.strategy.length, ...cells.map((c) => (c[i] ?? '').length)));
  const line = (label: string, values: readonly string[]): string =>
    `${label.padEnd(labelWidth)}  ${values.map((v, i) => v.padStart(widths[i]!)).join('  ')}`.trimEnd();
  const rule = '-'.repeat(labelWidth + 2 + widths.reduce((a, w) => a + w + 2, -2));
  const body = tableRows.map((row, i) => (row === 'rule' ? rule : line(row[0], cells[i]!)));
  return [
    ...header,
    line(
      '',
      results.map((r) => r.strategy),
    ),
    rule,
    ...body,
    '',
  ].join('\n');
}

const FUND_TARGET_LABELS: Readonly<Record<FundTarget, string>> = {
  noUncoveredBadDebt: 'no bad debt left uncovered',
  noBadDebt: 'no bad debt at all (ADL covers no deficit)',
};

/** simulate --fund-needed: the two figures, what one step less left, and how the search went. */
export function renderFundNeeded(
  run: {
    readonly scenario: string;
    readonly symbol: string;
    readonly strategy: string;
    readonly seed: number;
    readonly ticks: number;
    readonly positions: number;
    readonly quote: string;
  },
  found: FundNeeded,
  riskConfig: string | undefined,
  seconds: number,
): string {
  const { quote } = run;
  // Every amount in full: a figure rounded to cents could read below the fund needed, a leftover as 0.00.
  const exact = formatQuoteGrouped;
  const target = (t: FundTarget): FundFigure => found.figures[t];
  const left = (t: FundTarget, f: FundFigure): string => {
    if (f.below === undefined) return '-';
    return exact(t === 'noBadDebt' ? f.below.badDebt : f.below.badDebtUncovered);
  };
  const rowsOf = (['noUncoveredBadDebt', 'noBadDebt'] as const).map((t) => {
    const f = target(t);
    const fund =
      f.fund === null
        ? 'none found'
        : f.resolved
          ? exact(f.fund)
          : `${exact(f.below?.fund ?? 0n)} to ${exact(f.fund)}`;
    return [FUND_TARGET_LABELS[t], fund, f.fund === null ? '-' : left(t, f)] as const;
  });
  const header = ['', `fund needed (${quote})`, `one step less leaves`] as const;
  const widths = [0, 1, 2].map((i) => Math.max(header[i]!.length, ...rowsOf.map((r) => r[i]!.length)));
  const line = (r: readonly string[]): string =>
    `${r[0]!.padEnd(widths[0]!)}  ${r[1]!.padStart(widths[1]!)}  ${r[2]!.padStart(widths[2]!)}`.trimEnd();
  const notes: string[] = [];
  for (const t of ['noUncoveredBadDebt', 'noBadDebt'] as const) {
    const f = target(t);
    if (f.unreachable === 'draw-cap')
      notes.push(
        `${FUND_TARGET_LABELS[t]}: none: at a fund of ${exact(f.below!.fund)} the fund refused shortfalls while its balance stayed above its floor (its draw cap per window refused them, which no bigger fund changes)`,
      );
    else if (f.unreachable === 'runs')
      notes.push(
        `${FUND_TARGET_LABELS[t]}: none within ${count(found.runs.length)} runs (the largest fund tried, ${exact(f.below?.fund ?? 0n)}, left some)`,
      );
    else if (f.fund !== null && !f.resolved)
      notes.push(`${FUND_TARGET_LABELS[t]}: the runs ran out before the bracket closed to the resolution`);
  }
  for (const n of found.notMonotone)
    notes.push(
      `NOT MONOTONE (${FUND_TARGET_LABELS[n.target]}): a fund of ${exact(n.higher.fund)} left ${exact(n.target === 'noBadDebt' ? n.higher.badDebt : n.higher.badDebtUncovered)}, more than the ${exact(n.target === 'noBadDebt' ? n.lower.badDebt : n.lower.badDebtUncovered)} ${exact(n.lower.fund)} left: the figure is where its bracket's runs changed, not proven the smallest`,
    );
  return [
    `Backstop fund sizing: ${run.scenario}, ${run.symbol}, ${count(run.ticks)} ticks, ${count(run.positions)} positions, seed ${run.seed}, ${run.strategy}`,
    ...(riskConfig === undefined ? [] : [riskConfig]),
    `the smallest starting insurance fund, to ${exact(found.resolution)} ${quote}, for which ${run.strategy} leaves`,
    '',
    line(header),
    ...rowsOf.map(line),
    '',
    `${count(found.runs.length)} simulations in ${seconds.toFixed(0)} s${found.notMonotone.length === 0 ? '; no larger fund left more than a smaller one' : ''}`,
    ...notes,
    '',
  ].join('\n');
}
