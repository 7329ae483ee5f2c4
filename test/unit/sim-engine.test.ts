import { describe, expect, it } from 'vitest';
import { DEFAULT_RISK_CONFIG } from '../../shared/domain/config.ts';
import type { Side } from '../../shared/domain/model.ts';
import { base, PRICE_SCALE, price, usd } from '../../shared/domain/units.ts';
import type { PositionRecord, ProviderRecord } from '../../shared/ports/index.ts';
import type { PricePoint } from '../../shared/prices/parse.ts';
import { auctionIdOf } from '../../shared/services/liquidation.ts';
import { withLiquidationPrice } from '../../shared/services/margin-check.ts';
import { type EngineInput, runSimulation, SimulationError } from '../../shared/sim/engine.ts';
import { DueTimes } from '../../shared/sim/observe.ts';
import { SimulationRecorder } from '../../shared/sim/recorder.ts';
import {
  type SimulationResult,
  type Strategy,
  slippageSummary,
  summaryJson,
} from '../../shared/sim/results.ts';
import { prepareSimulation, simulate } from '../../shared/sim/setup.ts';
import { isZeroPriceFill, orderSlippage, percentile } from '../../shared/sim/stats.ts';

const T0 = Date.UTC(2020, 2, 12, 10, 0);
const config = DEFAULT_RISK_CONFIG;

/** 1-minute closes through the given prices, linearly between them, `perLeg` minutes per leg. */
function path(prices: readonly number[], perLeg: number): PricePoint[] {
  const points: PricePoint[] = [];
  for (let leg = 0; leg < prices.length - 1; leg++) {
    for (let i = 0; i < perLeg; i++) {
      const p = prices[leg]! + ((prices[leg + 1]! - prices[leg]!) * i) / perLeg;
      points.push({
        timestampMs: T0 + points.length * 60_000,
        price: BigInt(Math.round(p * 100)) * (PRICE_SCALE / 100n),
      });
    }
  }
  points.push({ timestampMs: T0 + points.length * 60_000, price: price(String(prices[prices.length - 1])) });
  return points;
}

function position(id: string, side: Side, size: string, entry: string, collateral: string): PositionRecord {
  return withLiquidationPrice(
    {
      id,
      traderId: `t-${id}`,
      symbol: 'ETH-USD',
      side,
      size: base(size),
      entryPrice: price(entry),
      collateral: usd(collateral),
      state: 'OPEN',
      version: 0,
    },
    config,
  );
}

const provider = (id: string, capital: string, discount: bigint, maxLot: string): ProviderRecord => ({
  id,
  capital: usd(capital),
  maxDiscountPpm: discount,
  maxLot: base(maxLot),
  symbols: ['ETH-USD'],
  version: 0,
});

function input(overrides: Partial<EngineInput>): EngineInput {
  return {
    scenario: 'test',
    symbol: 'ETH-USD',
    seed: 1,
    points: path([100, 80, 80], 20),
    book: [],
    providers: [],
    fundStart: usd('100000'),
    config,
    strategy: 'waterfall',
    ...overrides,
  };
}

function expectClean(r: SimulationResult): void {
  expect(r.nonTerminal).toBe(0);
  expect(r.errors).toEqual({});
  expect(r.deadLetters).toBe(0);
  expect(r.conservation.error).toBe(0n);
  expect(r.insuranceFund.min).toBeGreaterThanOrEqual(0n);
}

describe('runSimulation', () => {
  it('does nothing on a flat market: no liquidation, the fund untouched, one series entry per tick', async () => {
    const r = await runSimulation(
      input({ points: path([100, 100], 10), book: [position('a', 'LONG', '10', '100', '100')] }),
    );
    expectClean(r);
    expect(r.liquidations).toBe(0);
    expect(r.ticks).toBe(11);
    expect(r.drainTicks).toBe(0);
    expect(r.series.mark).toHaveLength(11);
    expect(r.insuranceFund).toEqual({
      start: usd('100000'),
      end: usd('100000'),
      min: usd('100000'),
      drawdown: { fall: 0n, peak: usd('100000') },
    });
    expect(slippageSummary(r.slippageSamples)).toEqual({ p50: 0, p99: 0, max: 0 });
  });

  it('liquidates a long the fall crosses, on both strategies, with money conserved exactly', async () => {
    for (const strategy of ['waterfall', 'market-only'] as const) {
      const r = await runSimulation(
        input({
          strategy,
          book: [position('a', 'LONG', '10', '100', '100'), position('b', 'SHORT', '10', '100', '500')],
        }),
      );
      expectClean(r);
      expect(r.liquidations).toBeGreaterThanOrEqual(1);
      expect(r.settledBy.market + r.settledBy.insurance).toBe(r.liquidations);
      expect(r.marketOrders).toBeGreaterThanOrEqual(1);
      expect(r.feesCollected).toBeGreaterThan(0n);
      // The liquidated trader lost, the venue bought below entry and gained: the sum is exactly zero.
      expect(r.conservation.traders).toBeLessThan(0n);
      expect(r.conservation.venue).toBeGreaterThan(0n);
      expect(r.series.started.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(1);
    }
  });

  it('starts every crossed position even when one tick crosses more than one invocation handles', async () => {
    const book = Array.from({ length: 12 }, (_, i) => position(`p${i}`, 'LONG', '1', '100', '10'));
    const r = await runSimulation(
      input({ book, maxPositionsPerInvocation: 5, points: path([100, 70, 70], 2) }),
    );
    expectClean(r);
    expect(r.liquidations).toBeGreaterThanOrEqual(12);
    expect(r.series.started.reduce((a, b) => a + b, 0)).toBe(r.liquidations);
  });

  it('hands what a thin book cannot take to the auction, and bounds slippage where market-only does not', async () => {
    // A venue with shallow depth: a 2,000 ETH long cannot be sold within the 3 % bound. The short side is
    // large enough for ADL to take what market-only leaves when it runs through the whole book.
    const venue = { poolQuoteReserve: 2_000_000 };
    const book = [
      position('whale', 'LONG', '2000', '100', '20000'),
      position('s', 'SHORT', '3000', '100', '100000'),
    ];
    const providers = [
      provider('lp1', '1000000', 30_000n, '5000'),
      provider('lp2', '1000000', 60_000n, '5000'),
    ];
    const run = (strategy: Strategy) =>
      runSimulation(input({ strategy, venue, book, providers, points: path([100, 85, 85], 20) }));
    const waterfall = await run('waterfall');
    const marketOnly = await run('market-only');
    const noAuction = await run('no-auction');
    expectClean(waterfall);
    expectClean(marketOnly);
    expectClean(noAuction);
    expect(waterfall.auctionVolume).toBeGreaterThan(0n);
    expect(waterfall.providerCapitalUsed).toBeGreaterThan(0n);
    expect(waterfall.conservation.providers).not.toBe(0n);
    expect(slippageSummary(waterfall.slippageSamples).max).toBeLessThanOrEqual(300);
    expect(slippageSummary(marketOnly.slippageSamples).max).toBeGreaterThan(300);
    expect(marketOnly.auctionVolume).toBe(0n);
    // The same waterfall without providers: within the bound too, and what the auction sold, ADL closes at the mark.
    expect(noAuction.auctionVolume).toBe(0n);
    expect(noAuction.providerCapitalUsed).toBe(0n);
    expect(noAuction.settledBy.auction).toBe(0);
    expect(slippageSummary(noAuction.slippageSamples).max).toBeLessThanOrEqual(300);
    expect(noAuction.adlVolume).toBeGreaterThan(waterfall.adlVolume);
  });

  it('reports the last resort: a thin book, no bid, no short in profit', async () => {
    const venue = { poolQuoteReserve: 2_000_000 };
    // The only short entered below the crash's low: it never holds a profit ADL could take size from.
    const book = [
      position('whale', 'LONG', '2000', '100', '20000'),
      position('s', 'SHORT', '10', '80', '500'),
    ];
    // To 80: at 85 the book, refilled over the cooldown between slices that carried size, takes it all.
    const r = await runSimulation(input({ venue, book, points: path([100, 80, 80], 20) }));
    expectClean(r);
    expect(r.lastResortOrders).toBeGreaterThan(0);
    expect(r.lastResortVolume).toBeGreaterThan(0n);
    expect(r.lastResortVolume).toBeLessThanOrEqual(r.marketVolume);
    // Within the last resort's bound (10 % of the mark), never at any price.
    expect(slippageSummary(r.slippageSamples).max).toBeLessThanOrEqual(1000);
    expect(r.auctionVolume).toBe(0n);
    expect(summaryJson(r)).toMatchObject({ lastResortOrders: r.lastResortOrders });
  });

  it('keeps ticking after the last price until every auction has finished', async () => {
    const venue = { poolQuoteReserve: 2_000_000 };
    const book = [
      position('whale', 'LONG', '2000', '100', '20000'),
      position('s', 'SHORT', '3000', '100', '100000'),
    ];
    const providers = [provider('lp1', '1000000', 30_000n, '5000')];
    const r = await runSimulation(input({ venue, book, providers, points: path([100, 85], 8) }));
    expectClean(r);
    expect(r.drainTicks).toBeGreaterThan(0);
    expect(r.series.timestampMs).toHaveLength(r.ticks + r.drainTicks);
  });

  it('is deterministic: the same inputs give the same result', async () => {
    const make = () =>
      runSimulation(
        input({ book: [position('a', 'LONG', '10', '100', '100'), position('b', 'LONG', '3', '99', '20')] }),
      );
    const [a, b] = [await make(), await make()];
    expect(JSON.stringify(summaryJson(a))).toBe(JSON.stringify(summaryJson(b)));
    expect(a.series).toEqual(b.series);
  });

  it('refuses an empty price path and a negative fund', async () => {
    await expect(runSimulation(input({ points: [] }))).rejects.toThrow(SimulationError);
    await expect(runSimulation(input({ fundStart: -1n }))).rejects.toThrow(SimulationError);
  });
});

describe('summary JSON', () => {
  it('has the contract keys, amounts as decimal strings', async () => {
    const r = await runSimulation(input({ book: [position('a', 'LONG', '10', '100', '100')] }));
    const json = summaryJson(r);
    for (const key of [
      'ticks',
      'positions',
      'liquidations',
      'settledBy',
      'cancelled',
      'nonTerminal',
      'badDebt',
      'insuranceFund',
      'slippageBps',
      'zeroPriceFills',
      'conservationError',
    ]) {
      expect(json).toHaveProperty(key);
    }
    expect(Object.keys(json.settledBy as object)).toEqual(['market', 'auction', 'insurance', 'adl']);
    expect(typeof json.badDebt).toBe('string');
    expect(json.conservationError).toBe('0');
    expect(Object.keys(json.insuranceFund as object)).toEqual([
      'start',
      'end',
      'min',
      'drawdown',
      'drawdownPeak',
    ]);
    expect(Object.keys(json.slippageBps as object)).toEqual(['p50', 'p99', 'max']);
  });
});

describe('statistics', () => {
  const mark = price('100');
  const cases: [string, 'BUY' | 'SELL', [string, string][], number][] = [
    ['a sell at the mark', 'SELL', [['100', '1']], 0],
    ['a sell 1 % under', 'SELL', [['99', '1']], 10_000],
    [
      'a sell across two levels',
      'SELL',
      [
        ['99', '1'],
        ['97', '1'],
      ],
      20_000,
    ],
    ['a sell above the mark', 'SELL', [['100.5', '2']], -5_000],
    ['a buy 0.01 % over', 'BUY', [['100.01', '1']], 100],
    ['a sell a third of a bp under, rounded up', 'SELL', [['99.99666', '1']], 34],
  ];
  for (const [name, direction, fills, expected] of cases) {
    it(`slippage of ${name}: ${expected / 100} bps`, () => {
      const f = fills.map(([p, s]) => ({ price: price(p), size: base(s) }));
      expect(orderSlippage(direction, f, mark)).toBe(expected);
    });
  }

  it('counts a fill as zero-price at 1 % of the mark and below (sell) or 100x and above (buy)', () => {
    expect(isZeroPriceFill('SELL', price('1.01'), mark)).toBe(false);
    expect(isZeroPriceFill('SELL', price('1'), mark)).toBe(true);
    expect(isZeroPriceFill('SELL', price('0.99'), mark)).toBe(true);
    expect(isZeroPriceFill('BUY', price('9999'), mark)).toBe(false);
    expect(isZeroPriceFill('BUY', price('10000'), mark)).toBe(true);
  });

  it('takes nearest-rank percentiles', () => {
    const xs = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(xs, 50)).toBe(50);
    expect(percentile(xs, 99)).toBe(99);
    expect(percentile(xs, 100)).toBe(100);
    expect(percentile([7], 99)).toBe(7);
    expect(percentile([], 50)).toBe(0);
    expect(slippageSummary([100, 200, 300])).toEqual({ p50: 2, p99: 3, max: 3 });
  });

  it('orders due times and drops the ones already handled', () => {
    const due = new DueTimes();
    for (const t of [50, 10, 30, 10, 40]) due.push(t);
    expect(due.nextAfter(0)).toBe(10);
    expect(due.nextAfter(10)).toBe(30);
    expect(due.nextAfter(35)).toBe(40);
    expect(due.nextAfter(50)).toBeUndefined();
  });
});

describe('execution cost against the mark', () => {
  it('adds what a sale gave up below the mark and a purchase paid above it, exactly (a better price lowers it)', () => {
    const recorder = new SimulationRecorder(price('100'));
    const order = (direction: 'BUY' | 'SELL', fills: { price: string; size: string }[], mark: string) => ({
      order: {
        clientOrderId: `o-${direction}-${mark}`,
        symbol: 'ETH-USD',
        direction,
        size: base('1'),
        limitPrice: 1n,
      },
      result: {
        clientOrderId: 'x',
        status: 'FILLED' as const,
        fills: fills.map((f) => ({ price: price(f.price), size: base(f.size) })),
      },
      mark: price(mark),
      atMs: 0,
    });
    recorder.onOrder(
      order(
        'SELL',
        [
          { price: '99', size: '2' },
          { price: '98.5', size: '0.5' },
        ],
        '100',
      ),
    );
    recorder.onOrder(order('BUY', [{ price: '101.25', size: '1' }], '101'));
    recorder.onOrder(order('SELL', [{ price: '100.1', size: '1' }], '100'));
    // 2 x 1 + 0.5 x 1.5 + 1 x 0.25 - 1 x 0.1 = 2.9 USD
    expect(recorder.executionCost).toBe(usd('2.9'));
  });
});

describe('auction volume', () => {
  // Found by a review in session 25: a liquidation the auction closed whole with no shortfall settles without
  // freezing its inputs, and the recorder then saw none of its fills (the demo showed 18 % less sold in auctions,
  // and less given up against the mark).
  it('counts every fill of every auction, those of liquidations settled unfrozen too (the demo run)', async () => {
    let soldInAuctions = 0n;
    let settledByAuction = 0;
    const result = await runSimulation({
      ...prepareSimulation({}),
      strategy: 'waterfall',
      inspect: async (adapters) => {
        for (const l of adapters.liquidations.all()) {
          const auction = await adapters.auctions.get(auctionIdOf(l.id));
          // What each fill's provider paid: the value the close settles at (audit46-volume-rounding).
          for (const f of auction?.fills ?? []) soldInAuctions += f.cost ?? 0n;
          if (l.state === 'SETTLED_AUCTION') settledByAuction += 1;
        }
      },
    });
    expect(settledByAuction).toBeGreaterThan(0);
    expect(settledByAuction).toBe(result.settledBy.auction);
    expect(result.auctionVolume).toBe(soldInAuctions);
    // What the providers paid out of their capital is what the auctions closed for, exactly.
    expect(result.providerCapitalUsed).toBe(result.auctionVolume);
  }, 120_000);
});

describe('the market-only baseline', () => {
  // Found by a review in session 25: when a thin book could not take a slice, ADL took the size (or the position
  // would never close) and covered the deficit the fund refused as well, flattering the baseline.
  it('never has ADL cover a deficit the fund refused, on a book thinner than its orders', async () => {
    const prepared = prepareSimulation({ positions: 5000, venue: { poolQuoteReserve: 2_000_000 } });
    const result = await simulate(prepared, 'market-only');
    expect(result.nonTerminal).toBe(0);
    expect(result.settledBy.adl).toBeGreaterThan(0);
    expect(result.badDebt).toBeGreaterThan(0n);
    expect(result.badDebt - result.badDebtUncovered).toBe(0n);
  }, 120_000);
});
