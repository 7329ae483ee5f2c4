import { readFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { renderComparison } from '../../cli/table.ts';
import { renderReport } from '../../report/html.ts';
import { readPriceFile } from '../../shared/prices/file.ts';
import { runSimulation } from '../../shared/sim/engine.ts';
import type { SimulationResult, Strategy } from '../../shared/sim/results.ts';
import { type PreparedSimulation, prepareSimulation } from '../../shared/sim/setup.ts';
import {
  type Audit,
  type AuditedReplay,
  type AuditInput,
  auditReplay,
  least,
  type ReplayStores,
  readStores,
} from '../support/replay-audit.ts';

/**
 * A risk analyst's audit of the crash replay (session 46): every number of `npm run demo`'s table and of its
 * report.html worked out again from the records the replay's stores hold at its end (test/support/replay-audit.ts:
 * the liquidations, auctions, the fund's journal, positions and providers; none of the recorder's aggregation),
 * and matched to the micro-dollar, cell by cell, for each strategy: the demo itself (README's block, byte for byte),
 * a seed where the fund runs dry and ADL covers, both real ETH legs of 12-13 March 2020, and a book too thin for
 * the market layer (the last resort). It also holds README's account of what the backstop saves against market-only
 * to these runs.
 */

const repoRoot = path.resolve(import.meta.dirname, '..', '..');
const readme = readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
/** README's prose, its line breaks as spaces. */
const prose = readme.replace(/\s+/g, ' ');
const dataFile = (name: string): string => path.resolve(repoRoot, '..', 'shared', 'data', name);
const STRATEGIES: readonly Strategy[] = ['waterfall', 'no-auction', 'market-only'];

interface Audited {
  readonly result: SimulationResult;
  readonly audit: Audit;
  /** What the audit read: doctored, it must say what is wrong. */
  readonly input: AuditInput;
}

async function runAudited(prepared: PreparedSimulation, strategy: Strategy): Promise<Audited> {
  let stores: Awaited<ReturnType<typeof readStores>> | undefined;
  const result = await runSimulation({
    ...prepared,
    strategy,
    inspect: async (adapters) => {
      stores = await readStores(adapters, prepared.book, prepared.providers);
    },
  });
  const input: AuditInput = {
    strategy,
    symbol: prepared.symbol,
    config: prepared.config,
    book: prepared.book,
    // Without providers no auction starts: the run puts none in its store.
    providers: strategy === 'no-auction' ? [] : prepared.providers,
    fundStart: prepared.fundStart,
    marks: result.series.mark,
    stores: stores!,
  };
  return { result, audit: auditReplay(input), input };
}

/**
 * The stores with one more unit of fee credited for `liquidationId` (its settlement and its journal entry, the
 * entries after it and the balance moved with it: a chain that adds up), taken from nobody.
 */
function withOneMoreFeeUnit(stores: ReplayStores, liquidationId: string): ReplayStores {
  const at = stores.journal.findIndex((e) => e.reference === liquidationId && e.kind === 'liquidation-fee');
  expect(at).toBeGreaterThanOrEqual(0);
  return {
    ...stores,
    liquidations: stores.liquidations.map((l) =>
      l.id === liquidationId && l.settlement
        ? { ...l, settlement: { ...l.settlement, fee: l.settlement.fee + 1n } }
        : l,
    ),
    journal: stores.journal.map((e, i) =>
      i < at
        ? e
        : {
            ...e,
            amount: i === at ? e.amount + 1n : e.amount,
            balanceBefore: i === at ? e.balanceBefore : e.balanceBefore + 1n,
            balanceAfter: e.balanceAfter + 1n,
          },
    ),
    balance: { ...stores.balance, balance: stores.balance.balance + 1n },
  };
}

// --- formatting of our own, to compare the printed cells --------------------------------------------------------

const group = (n: bigint): string => n.toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',');
/** Micro-dollars to cents, half away from zero, grouped: "1,234.57". */
const cents = (micro: bigint): string => {
  const negative = micro < 0n;
  const c = ((negative ? -micro : micro) + 5_000n) / 10_000n;
  return `${negative ? '-' : ''}${group(c / 100n)}.${(c % 100n).toString().padStart(2, '0')}`;
};
/** Micro-dollars to whole dollars, half up, grouped (README's prose): "49,544". */
const dollars = (micro: bigint): string => group((micro + 500_000n) / 1_000_000n);
const count = (n: number): string => group(BigInt(n));
/** A decimal string in quote units (the JSON's) to micro-dollars, exactly. */
const micro = (text: unknown): bigint => {
  const m = /^(-?)(\d+)(?:\.(\d{1,6}))?$/.exec(String(text));
  if (!m) throw new Error(`not an amount: ${String(text)}`);
  const value = BigInt(m[2]!) * 1_000_000n + BigInt((m[3] ?? '').padEnd(6, '0'));
  return m[1] ? -value : value;
};
/** PriceE8 as the table prints a mark: at least cents. */
const markText = (p: bigint): string => {
  const whole = p / 100_000_000n;
  const fraction = (p % 100_000_000n).toString().padStart(8, '0').replace(/0+$/, '');
  return `${whole}.${fraction.padEnd(2, '0')}`;
};
/** PriceE8 as the header prints a price: no trailing zeros. */
const priceText = (p: bigint): string =>
  markText(p)
    .replace(/\.?0+$/, '')
    .replace(/\.$/, '');
/** Nearest rank, as a share of the samples (hundredths of a bp), in bps. */
const percentileBps = (sorted: readonly number[], p: number): number =>
  sorted[Math.max(1, Math.ceil((p / 100) * sorted.length)) - 1]! / 100;

/** What each of the table's rows must print for a run, from its audit (and the run's own inputs). */
function expectedRows(r: SimulationResult, n: AuditedReplay, lowestMark: bigint): Map<string, string> {
  const slip = (p: number): string =>
    n.slippageSamples.length === 0 ? '-' : percentileBps(n.slippageSamples, p).toFixed(2);
  return new Map([
    ['liquidations (slices)', count(n.liquidations)],
    ['settled by market', count(n.settledBy.market)],
    ['settled by auction', count(n.settledBy.auction)],
    ['settled by insurance', count(n.settledBy.insurance)],
    ['settled by ADL', count(n.settledBy.adl - n.adlBadDebtOnly)],
    ['left as bad debt', count(n.adlBadDebtOnly)],
    ['cancelled', count(n.cancelled)],
    ['not terminal', count(n.nonTerminal)],
    ['positions liquidated', count(n.positionsLiquidated)],
    ['slippage p50 (bps)', slip(50)],
    ['slippage p99 (bps)', slip(99)],
    ['slippage max (bps)', slip(100)],
    ['zero-price fills', count(n.zeroPriceFills)],
    ['lowest mark (USD)', markText(lowestMark)],
    ['closed on the market (USD)', cents(n.volume.market)],
    ['last resort (USD)', cents(n.volume.lastResort)],
    ['closed in auctions (USD)', cents(n.volume.auction)],
    ['closed by ADL (USD)', cents(n.volume.adl)],
    ['given up vs the mark (USD)', cents(n.executionCost)],
    ['insurance fund start', cents(n.fund.start)],
    ['insurance fund end', cents(n.fund.end)],
    ['insurance fund min', cents(n.fund.min)],
    [
      'fund drawdown',
      n.fund.peak === 0n ? '-' : `${((Number(n.fund.fall) / Number(n.fund.peak)) * 100).toFixed(1)} %`,
    ],
    ['fees collected', cents(n.fees)],
    ['shortfall paid by fund', cents(n.insurancePaid)],
    ['BAD DEBT (fund did not pay)', cents(n.badDebt)],
    ['covered by ADL', cents(n.badDebtCovered)],
    ['left uncovered', cents(n.badDebtUncovered)],
    ['ticks rejected', count(Object.values(r.ticksRejected).reduce((a, b) => a + b, 0))],
    ['errors', '0'],
    ['dead letters', '0'],
    ['conservation error', '0.00'],
  ]);
}

/**
 * The lowest accepted mark: every tick's mark but the market's first print, which is refused. A run whose breaker
 * refused more (our own impact on a thin book) says which: its own figure, one of the marks it fed.
 */
function lowestAcceptedMark(r: SimulationResult): bigint {
  const rejected = Object.entries(r.ticksRejected);
  if (rejected.length === 1 && rejected[0]![0] === 'tick/unconfirmed' && rejected[0]![1] === 1)
    return least(r.series.mark.slice(1));
  expect(r.series.mark).toContain(r.markLow);
  return r.markLow!;
}

/** Each row of a printed table, its cells by column (the label first, trimmed). */
function tableRows(table: string): Map<string, string[]> {
  const rows = new Map<string, string[]>();
  for (const line of table.split('\n').slice(4)) {
    if (line === '' || /^-+$/.test(line)) continue;
    const [label, ...cells] = line.trim().split(/\s{2,}/);
    rows.set(label!, cells);
  }
  return rows;
}

/** The run's numbers are its records', and its problems none. */
function expectRunIsItsRecords({ result: r, audit }: Audited): void {
  const n = audit.numbers;
  expect({ strategy: r.strategy, problems: audit.problems }).toEqual({ strategy: r.strategy, problems: [] });
  expect({
    liquidations: r.liquidations,
    settledBy: r.settledBy,
    adlBadDebtOnly: r.adlBadDebtOnly,
    cancelled: r.cancelled,
    nonTerminal: r.nonTerminal,
    positionsLiquidated: r.positionsLiquidated,
    marketVolume: r.marketVolume,
    lastResortVolume: r.lastResortVolume,
    auctionVolume: r.auctionVolume,
    adlVolume: r.adlVolume,
    marketOrders: r.marketOrders,
    lastResortOrders: r.lastResortOrders,
    zeroPriceFills: r.zeroPriceFills,
    executionCost: r.executionCost,
    providerCapitalUsed: r.providerCapitalUsed,
    fund: [r.insuranceFund.start, r.insuranceFund.end, r.insuranceFund.min],
    fees: r.feesCollected,
    insurancePaid: r.insurancePaid,
    badDebt: r.badDebt,
    badDebtUncovered: r.badDebtUncovered,
    traders: r.conservation.traders,
    fundChange: r.conservation.fund,
  }).toEqual({
    liquidations: n.liquidations,
    settledBy: n.settledBy,
    adlBadDebtOnly: n.adlBadDebtOnly,
    cancelled: n.cancelled,
    nonTerminal: n.nonTerminal,
    positionsLiquidated: n.positionsLiquidated,
    marketVolume: n.volume.market,
    lastResortVolume: n.volume.lastResort,
    auctionVolume: n.volume.auction,
    adlVolume: n.volume.adl,
    marketOrders: n.marketOrders,
    lastResortOrders: n.lastResortOrders,
    zeroPriceFills: n.zeroPriceFills,
    executionCost: n.executionCost,
    providerCapitalUsed: n.providerCapitalUsed,
    fund: [n.fund.start, n.fund.end, n.fund.min],
    fees: n.fund.earned,
    insurancePaid: n.fund.paid,
    badDebt: n.badDebt,
    badDebtUncovered: n.badDebtUncovered,
    traders: n.tradersChange,
    fundChange: n.fund.end - n.fund.start,
  });
  // The settlements say what the fund's journal says.
  expect([n.fees, n.insurancePaid]).toEqual([n.fund.earned, n.fund.paid]);
  // The deepest relative fall: the same share (a tie may pick another peak).
  expect(r.insuranceFund.drawdown.fall * n.fund.peak).toBe(n.fund.fall * r.insuranceFund.drawdown.peak);
  expect(r.slippageSamples).toEqual(n.slippageSamples);
  // What providers paid out of their capital is what their fills cost, which is what the auctions closed for.
  expect(n.providerCost).toBe(n.providerCapitalUsed);
  // Every money identity a risk committee reads off the table holds.
  expect(n.shortfall).toBe(n.insurancePaid + n.badDebt);
  expect(n.fund.end).toBe(n.fund.start + n.fees - n.insurancePaid);
  expect(r.conservation.error).toBe(0n);
  expect(r.errors).toEqual({});
  expect(r.openCrossed).toBe(0);
  // "Left as bad debt" counts every settlement that left some: none left any after ADL closed or covered some.
  expect(n.settlementsWithUncovered).toBe(n.adlBadDebtOnly);
  if (r.strategy === 'market-only') expect(n.badDebtCovered).toBe(0n);
  // Each settlement's money was worked out again from its fills (none here was planned twice).
  expect(n.settlementsRederived).toBe(n.liquidations - n.cancelled);
}

/** The table, cell by cell, from the audits. */
function expectTable(table: string, runs: readonly Audited[]): void {
  const rows = tableRows(table);
  const expected = runs.map(({ result, audit }) =>
    expectedRows(result, audit.numbers, lowestAcceptedMark(result)),
  );
  expect([...rows.keys()]).toEqual([...expected[0]!.keys()]);
  for (const [label, cells] of rows)
    expect({ label, cells }).toEqual({ label, cells: expected.map((e) => e.get(label)) });
  const first = runs[0]!.result;
  const points = first.series.reference.slice(0, first.ticks);
  const low = least(points);
  expect(table.split('\n')[1]).toBe(
    `${count(first.positions)} positions, seed ${first.seed}, fund ${cents(runs[0]!.audit.numbers.fund.start)} USD`,
  );
  const header = table.split('\n')[0]!;
  expect(header).toContain(`, ${count(first.ticks)} ticks of 1 min`);
  expect(header.slice(header.lastIndexOf(', price '))).toBe(
    `, price ${priceText(points[0]!)} -> low ${priceText(low)}`,
  );
}

/** The report's data and summary table, from the audits. */
function expectReport(html: string, runs: readonly Audited[]): void {
  const json = /<script type="application\/json" id="report-data">(.*?)<\/script>/s.exec(html)?.[1];
  const data = JSON.parse(json!) as {
    strategies: {
      strategy: string;
      summary: Record<string, unknown>;
      settled: Record<string, number[]>;
      fund: number[];
      badDebt: number[];
      markers: [number, number, number][];
      totals: Record<string, number>;
    }[];
  };
  expect(data.strategies.map((s) => s.strategy)).toEqual(runs.map((r) => r.result.strategy));
  const usd = (q: bigint): number => Number(q) / 1e6;
  for (const [i, s] of data.strategies.entries()) {
    const n = runs[i]!.audit.numbers;
    const j = s.summary;
    const fund = j.insuranceFund as Record<string, string>;
    const volume = j.volume as Record<string, string>;
    expect({
      liquidations: j.liquidations,
      settledBy: j.settledBy,
      adlBadDebtOnly: j.adlBadDebtOnly,
      cancelled: j.cancelled,
      nonTerminal: j.nonTerminal,
      positionsLiquidated: j.positionsLiquidated,
      badDebt: micro(j.badDebt),
      badDebtUncovered: micro(j.badDebtUncovered),
      fund: [micro(fund.start), micro(fund.end), micro(fund.min)],
      fees: micro(j.feesCollected),
      insurancePaid: micro(j.insurancePaid),
      volume: [micro(volume.market), micro(volume.lastResort), micro(volume.auction), micro(volume.adl)],
      executionCost: micro(j.executionCost),
      providerCapitalUsed: micro(j.providerCapitalUsed),
      zeroPriceFills: j.zeroPriceFills,
      marketOrders: j.marketOrders,
      lastResortOrders: j.lastResortOrders,
      conservationError: j.conservationError,
      deadLetters: j.deadLetters,
    }).toEqual({
      liquidations: n.liquidations,
      settledBy: n.settledBy,
      adlBadDebtOnly: n.adlBadDebtOnly,
      cancelled: n.cancelled,
      nonTerminal: n.nonTerminal,
      positionsLiquidated: n.positionsLiquidated,
      badDebt: n.badDebt,
      badDebtUncovered: n.badDebtUncovered,
      fund: [n.fund.start, n.fund.end, n.fund.min],
      fees: n.fees,
      insurancePaid: n.insurancePaid,
      volume: [n.volume.market, n.volume.lastResort, n.volume.auction, n.volume.adl],
      executionCost: n.executionCost,
      providerCapitalUsed: n.providerCapitalUsed,
      zeroPriceFills: n.zeroPriceFills,
      marketOrders: n.marketOrders,
      lastResortOrders: n.lastResortOrders,
      conservationError: '0',
      deadLetters: 0,
    });
    const sum = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0);
    // The per-minute charts add up to the totals.
    expect({
      market: sum(s.settled.market!),
      auction: sum(s.settled.auction!),
      insurance: sum(s.settled.insurance!),
      adl: sum(s.settled.adl!),
      badDebt: sum(s.settled.badDebt!),
      cancelled: sum(s.settled.cancelled!),
      started: sum(s.markers.map((m) => m[2])),
      fundEnd: s.fund.at(-1),
      badDebtEnd: s.badDebt.at(-1),
      totals: s.totals,
    }).toEqual({
      market: n.settledBy.market,
      auction: n.settledBy.auction,
      insurance: n.settledBy.insurance,
      adl: n.settledBy.adl - n.adlBadDebtOnly,
      badDebt: n.adlBadDebtOnly,
      cancelled: n.cancelled,
      started: n.liquidations,
      fundEnd: usd(n.fund.end),
      badDebtEnd: usd(n.badDebt),
      totals: {
        badDebt: usd(n.badDebt),
        fundDrawdown: usd(n.fund.fall),
        insurancePaid: usd(n.insurancePaid),
      },
    });
  }
  // The summary table as the page shows it.
  const cells = (label: string): string[] => {
    const row = new RegExp(`<tr><th scope="row">${label.replace(/[()/]/g, '\\$&')}</th>(.*?)</tr>`).exec(
      html,
    );
    return [...(row?.[1] ?? '').matchAll(/<td>(.*?)<\/td>/g)].map((m) => m[1]!);
  };
  const each = (f: (n: AuditedReplay) => string | number): string[] =>
    runs.map((r) => String(f(r.audit.numbers)));
  expect(cells('Liquidations')).toEqual(each((n) => n.liquidations));
  expect(cells('Settled by market')).toEqual(each((n) => n.settledBy.market));
  expect(cells('Settled by auction')).toEqual(each((n) => n.settledBy.auction));
  expect(cells('Settled by insurance')).toEqual(each((n) => n.settledBy.insurance));
  expect(cells('Settled by ADL')).toEqual(each((n) => n.settledBy.adl - n.adlBadDebtOnly));
  expect(cells('Left as bad debt')).toEqual(each((n) => n.adlBadDebtOnly));
  expect(cells('Not terminal')).toEqual(each((n) => n.nonTerminal));
  expect(cells('Shortfall paid by the fund (USD)').map(micro)).toEqual(
    runs.map((r) => r.audit.numbers.insurancePaid),
  );
  expect(cells('Bad debt the fund did not pay (USD)').map(micro)).toEqual(
    runs.map((r) => r.audit.numbers.badDebt),
  );
  expect(cells('Insurance fund start / end / min (USD)').map((c) => c.split(' / ').map(micro))).toEqual(
    runs.map(({ audit: { numbers: n } }) => [n.fund.start, n.fund.end, n.fund.min]),
  );
}

describe('the demo, audited: npm run demo (built-in crash, 20,000 positions, seed 1)', () => {
  let runs: Audited[];

  beforeAll(async () => {
    // The CLI's runs: `simulate` with no option, its strategy first (cli/simulate.ts), on the same inputs.
    const prepared = prepareSimulation({});
    runs = [];
    for (const strategy of STRATEGIES) runs.push(await runAudited(prepared, strategy));
  });

  it('ends every liquidation in one terminal state, nothing queued, the journal and the records consistent', () => {
    for (const run of runs) expectRunIsItsRecords(run);
  });

  it("prints README's block byte for byte, every cell the records' number", () => {
    // What `npm run demo` writes: the table on stdout, then the report's line on stderr.
    const stdout = renderComparison(runs.map((r) => r.result));
    const block = /```\n(Backstop simulation:[^`]*)```/.exec(readme)?.[1];
    expect(`${stdout}report written to report.html\n`).toBe(block);
    expectTable(stdout, runs);
  });

  it('writes report.html with the same numbers', () => {
    expectReport(renderReport(runs.map((r) => r.result)), runs);
  });

  it('says in README what the backstop saves against market-only, as the records have it', () => {
    const [waterfall, noAuction, marketOnly] = runs.map((r) => r.audit.numbers) as [
      AuditedReplay,
      AuditedReplay,
      AuditedReplay,
    ];
    // Market-only leaves bad debt nobody covers; the waterfall none, and keeps more of the fund.
    expect(marketOnly.badDebtUncovered - waterfall.badDebtUncovered).toBe(marketOnly.badDebtUncovered);
    expect(prose).toContain(`market-only leaves ${dollars(marketOnly.badDebtUncovered)} USD on seed 1`);
    expect(waterfall.fund.end).toBeGreaterThan(marketOnly.fund.end);
    expect(prose).toContain(
      `On seed 1 the fund ends at ${dollars(noAuction.fund.end)} USD without the auction and at ${dollars(waterfall.fund.end)} with it`,
    );
    expect(prose).toContain(
      `${count(noAuction.settledBy.adl - noAuction.adlBadDebtOnly)} ADL events close ${dollars(noAuction.volume.adl)} USD`,
    );
    // What providers took: their discount under the mark, of all that was given up against it.
    expect(prose).toContain(
      `on seed 1, ${dollars(waterfall.providersDiscount)} USD of the ${dollars(waterfall.executionCost)} given up vs the mark`,
    );
    // Against the mark each slice's liquidation started at (its market order's), not its step's: what the wait for a bid
    // cost too (risk51-auction-cost-told).
    const { stores } = runs[0]!.input;
    const startMark = new Map(stores.liquidations.map((l) => [l.id, l.context?.executionMark]));
    let fromStart16 = 0n;
    for (const a of stores.auctions) {
      const mark = startMark.get(a.liquidationId);
      if (mark === undefined) throw new Error(`${a.id}: its liquidation has no execution mark`);
      for (const f of a.fills)
        fromStart16 += (a.direction === 'SELL' ? mark - f.price : f.price - mark) * f.size;
    }
    expect(fromStart16).toBeGreaterThan(waterfall.providersDiscount * 10n ** 10n);
    expect(prose).toContain(
      `seed 1's auction fills gave up ${dollars(fromStart16 / 10n ** 10n)} USD, not ${dollars(waterfall.providersDiscount)}`,
    );
    // "Settled by" counts a slice by the last layer that acted: README says how many more the auction took part in.
    expect(waterfall.auctionSettledBy).toEqual({
      market: 0,
      auction: waterfall.settledBy.auction,
      insurance: waterfall.acted.auction - waterfall.settledBy.auction,
      adl: 0,
    });
    expect(prose).toContain(
      `the auction sold part of ${count(waterfall.acted.auction)} of the waterfall's slices and settled ${count(waterfall.settledBy.auction)} of them, and the fund paid a shortfall on the other ${count(waterfall.acted.auction - waterfall.settledBy.auction)}`,
    );
  });

  it('fails a unit the fund or an ADL counterparty got from nobody (review46-adl-rounding-exact, -counterparties-money)', () => {
    // No-auction: ADL closes 1,404 slices' rest on counterparties, and covers none of their deficits (the fund pays).
    const { input, audit } = runs[1]!;
    expect(audit.numbers.closedSize.adl).toBeGreaterThan(0n);
    // A settlement ADL closed some of, crediting the fund with what the closes rounded away (and a fee).
    const settled = input.stores.liquidations.find(
      (l) =>
        (l.settlement?.adlClosedSize ?? 0n) > 0n &&
        (l.settlement?.fee ?? 0n) > 0n &&
        (l.context?.settle?.candidates?.length ?? 0) > 1,
    )!;
    // One more unit credited than the closes rounded away: the bound of a unit a counterparty let it pass.
    const credited = auditReplay({ ...input, stores: withOneMoreFeeUnit(input.stores, settled.id) });
    expect(credited.problems).toEqual([
      expect.stringMatching(new RegExp(`^${settled.id}: fee .* units of ADL's rounding$`)),
    ]);
    // A counterparty ADL closed some of keeps a unit more: its side of the money was checked only when ADL closed
    // nothing.
    const liquidated = new Set(input.stores.liquidations.map((l) => l.positionId));
    const counterparty = input.book.find((p) => {
      const now = input.stores.positions.get(p.id);
      return !liquidated.has(p.id) && now?.state === 'OPEN' && now.size < p.size;
    })!;
    const positions = new Map(input.stores.positions);
    const now = positions.get(counterparty.id)!;
    positions.set(counterparty.id, { ...now, collateral: now.collateral + 1n });
    const kept = auditReplay({ ...input, stores: { ...input.stores, positions } });
    expect(kept.problems).toEqual([expect.stringMatching(/^ADL's counterparties' wealth moved by/)]);
  });
});

describe('seed 4, audited: the fund runs dry under the waterfall and ADL covers the rest', () => {
  let runs: Audited[];

  beforeAll(async () => {
    const prepared = prepareSimulation({ seed: 4 });
    runs = [await runAudited(prepared, 'waterfall'), await runAudited(prepared, 'market-only')];
  });

  it('matches the records, the table and the report, to the micro-dollar', () => {
    for (const run of runs) expectRunIsItsRecords(run);
    const results = runs.map((r) => r.result);
    expectTable(renderComparison(results), runs);
    expectReport(renderReport(results), runs);
    // What ADL covered came out of its counterparties' collateral (haircuts), checked unit for unit by the audit.
    expect(runs[0]!.audit.numbers.badDebtCovered).toBeGreaterThan(0n);
    expect(runs[0]!.audit.numbers.adlCounterparties).toBeGreaterThan(0);
  });

  it('is told in README as it went: here market-only does better', () => {
    const [waterfall, marketOnly] = runs.map((r) => r.audit.numbers) as [AuditedReplay, AuditedReplay];
    expect(waterfall.badDebtUncovered).toBe(0n);
    expect(marketOnly.badDebt).toBe(0n);
    expect(marketOnly.fund.end).toBeGreaterThan(waterfall.fund.end);
    expect(prose).toContain(
      `Seed 4 goes the other way: market-only leaves no bad debt there and its fund ends at ${dollars(marketOnly.fund.end)} USD, where the waterfall's ends at ${dollars(waterfall.fund.end)} and ADL takes ${dollars(waterfall.badDebtCovered)} USD from profitable traders`,
    );
    // All of it haircuts: ADL closes no size here, more than ADL at the bankruptcy price would take (risk51-adl-haircut-told).
    expect(waterfall.closedSize.adl).toBe(0n);
    expect(prose).toContain(
      `on seed 4 of the built-in crash all ${dollars(waterfall.badDebtCovered)} USD that ADL covers are haircuts of ${count(waterfall.adlCounterparties)} positions it closes none of`,
    );
  });
});

// The real crash: both ETH legs, on books of 10,000 positions (leg 1: ADL closes and covers; leg 2: shorts liquidated
// on its rebounds, buying, and slices carried past ADL).
for (const leg of ['leg1', 'leg2'] as const) {
  describe(`the real ETH ${leg} of 12-13 March 2020, audited (10,000 positions)`, () => {
    let runs: Audited[];

    beforeAll(async () => {
      const file = `eth-usdt-perp-2020-03-12-${leg}-1m.csv`;
      const prepared = prepareSimulation({
        prices: { name: file, points: readPriceFile(dataFile(file)) },
        symbol: 'ETH-USD',
        positions: 10_000,
      });
      runs = [];
      for (const strategy of STRATEGIES) runs.push(await runAudited(prepared, strategy));
    });

    it('matches the records, the table and the report, to the micro-dollar', () => {
      for (const run of runs) expectRunIsItsRecords(run);
      const results = runs.map((r) => r.result);
      expectTable(renderComparison(results), runs);
      expectReport(renderReport(results), runs);
      const [waterfall, noAuction] = runs.map((r) => r.audit.numbers) as [AuditedReplay, AuditedReplay];
      if (leg === 'leg1') {
        expect(waterfall.closedSize.adl).toBeGreaterThan(0n);
        expect(waterfall.badDebtCovered).toBeGreaterThan(0n);
      } else {
        expect(waterfall.shortSettlements).toBeGreaterThan(0);
        expect(noAuction.closedSize.carried).toBeGreaterThan(0n);
      }
    });
  });
}

describe('a book too thin for the market layer, audited: the last resort', () => {
  it('matches the records, the table and the report, to the micro-dollar', async () => {
    const prepared = prepareSimulation({ positions: 5000, venue: { poolQuoteReserve: 2_000_000 } });
    const runs: Audited[] = [];
    for (const strategy of STRATEGIES) runs.push(await runAudited(prepared, strategy));
    for (const run of runs) expectRunIsItsRecords(run);
    expect(runs[1]!.audit.numbers.lastResortOrders).toBeGreaterThan(0);
    const results = runs.map((r) => r.result);
    expectTable(renderComparison(results), runs);
    expectReport(renderReport(results), runs);
  });
});
