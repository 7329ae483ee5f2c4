import { describe, expect, it } from 'vitest';
import {
  DEFAULT_RISK_CONFIG,
  DEFAULT_RISK_CONFIG_INPUT,
  marketConfig,
  maxLeverage,
  parseRiskConfig,
} from '../../shared/domain/config.ts';
import { isLiquidatable, liquidationPrice } from '../../shared/domain/margin.ts';
import { base, NOTIONAL_TO_QUOTE, PRICE_SCALE, price, QUOTE_SCALE } from '../../shared/domain/units.ts';
import { BookError, DEFAULT_BOOK_PARAMS, generateBook } from '../../shared/sim/book.ts';
import {
  DEFAULT_PROVIDER_PARAMS,
  generateProviders,
  ProviderParamsError,
} from '../../shared/sim/providers.ts';
import { RandomError, Rng } from '../../shared/sim/random.ts';
import {
  bridgePath,
  builtInScenario,
  ETH_MARCH_2020_ANCHORS,
  ScenarioError,
} from '../../shared/sim/scenario.ts';
import { prepareSimulation } from '../../shared/sim/setup.ts';

const config = DEFAULT_RISK_CONFIG;
const ETH = marketConfig(config, 'ETH-USD');

describe('Rng (mulberry32)', () => {
  it('repeats its stream for a seed and differs between seeds', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const c = new Rng(43);
    const xs = Array.from({ length: 100 }, () => a.nextUint32());
    expect(Array.from({ length: 100 }, () => b.nextUint32())).toEqual(xs);
    expect(Array.from({ length: 100 }, () => c.nextUint32())).not.toEqual(xs);
  });

  it('matches the reference mulberry32 (Tommy Ettinger) for seed 1', () => {
    const r = new Rng(1);
    expect([r.nextUint32(), r.nextUint32(), r.nextUint32()]).toEqual([2693262067, 11749833, 2265367787]);
  });

  it('stays in range and looks uniform and normal', () => {
    const r = new Rng(7);
    let sum = 0;
    let sq = 0;
    for (let i = 0; i < 20_000; i++) {
      const u = r.next();
      expect(u).toBeGreaterThanOrEqual(0);
      expect(u).toBeLessThan(1);
      const n = r.normal();
      sum += n;
      sq += n * n;
      const k = r.int(3, 5);
      expect(k === 3 || k === 4 || k === 5).toBe(true);
    }
    expect(Math.abs(sum / 20_000)).toBeLessThan(0.05);
    expect(Math.abs(sq / 20_000 - 1)).toBeLessThan(0.05);
  });

  it('forks independent, reproducible streams', () => {
    const a = new Rng(9).fork('book').nextUint32();
    expect(new Rng(9).fork('book').nextUint32()).toBe(a);
    expect(new Rng(9).fork('providers').nextUint32()).not.toBe(a);
  });

  it('refuses a seed that is not a safe integer and an empty range', () => {
    expect(() => new Rng(1.5)).toThrow(RandomError);
    expect(() => new Rng(1).int(5, 4)).toThrow(RandomError);
  });
});

describe('built-in scenario', () => {
  const s = builtInScenario(1);

  it('runs minute by minute from the first to the last anchor and hits every anchor exactly', () => {
    const first = Date.parse(ETH_MARCH_2020_ANCHORS[0]!.at);
    const last = Date.parse(ETH_MARCH_2020_ANCHORS[ETH_MARCH_2020_ANCHORS.length - 1]!.at);
    expect(s.points).toHaveLength((last - first) / 60_000 + 1);
    for (const [i, p] of s.points.entries()) expect(p.timestampMs).toBe(first + i * 60_000);
    const byTime = new Map(s.points.map((p) => [p.timestampMs, p.price]));
    for (const a of ETH_MARCH_2020_ANCHORS) {
      expect(byTime.get(Date.parse(a.at))).toBe(price(String(a.price)));
    }
  });

  it('is the crash of the published facts: about 195 down to about 90, in whole cents', () => {
    let low = s.points[0]!.price;
    for (const p of s.points) if (p.price < low) low = p.price;
    expect(s.points[0]!.price).toBe(price('195'));
    expect(low).toBeGreaterThanOrEqual(price('80'));
    expect(low).toBeLessThanOrEqual(price('90'));
    for (const p of s.points) expect(p.price % (PRICE_SCALE / 100n)).toBe(0n);
  });

  it('never moves more than the price band in one minute (the replay is not a string of bad prints)', () => {
    for (let i = 1; i < s.points.length; i++) {
      const a = s.points[i - 1]!.price;
      const b = s.points[i]!.price;
      const move = a > b ? a - b : b - a;
      expect(move * 1_000_000n).toBeLessThanOrEqual(ETH.priceBand * a);
    }
  });

  it('is deterministic per seed and seeded', () => {
    expect(builtInScenario(1)).toEqual(s);
    expect(builtInScenario(2).points).not.toEqual(s.points);
  });

  it('refuses anchors that are not whole, increasing minutes or not positive', () => {
    expect(() => bridgePath([{ at: '2020-01-01T00:00:00Z', price: 1 }], 1)).toThrow(ScenarioError);
    expect(() =>
      bridgePath(
        [
          { at: '2020-01-01T00:00:30Z', price: 1 },
          { at: '2020-01-01T00:01:30Z', price: 1 },
        ],
        1,
      ),
    ).toThrow(ScenarioError);
    expect(() =>
      bridgePath(
        [
          { at: '2020-01-01T00:01:00Z', price: 1 },
          { at: '2020-01-01T00:01:00Z', price: 1 },
        ],
        1,
      ),
    ).toThrow(ScenarioError);
    expect(() =>
      bridgePath(
        [
          { at: '2020-01-01T00:00:00Z', price: 0 },
          { at: '2020-01-01T00:01:00Z', price: 1 },
        ],
        1,
      ),
    ).toThrow(ScenarioError);
  });
});

describe('synthetic book', () => {
  const start = price('195');
  const params = { ...DEFAULT_BOOK_PARAMS, symbol: 'ETH-USD', positions: 5000, startPrice: start, seed: 3 };
  const book = generateBook(params, config);
  const notional = (p: (typeof book)[number]) => Number((p.size * p.entryPrice) / NOTIONAL_TO_QUOTE) / 1e6;
  const leverage = (p: (typeof book)[number]) => notional(p) / (Number(p.collateral) / Number(QUOTE_SCALE));

  it('holds the requested positions, OPEN, unique, with the index key of margin.ts', () => {
    expect(book).toHaveLength(5000);
    expect(new Set(book.map((p) => p.id)).size).toBe(5000);
    for (const p of book) {
      expect(p.state).toBe('OPEN');
      expect(p.version).toBe(0);
      expect(p.size).toBeGreaterThan(0n);
      expect(p.liquidationPrice).toBe(liquidationPrice(p, ETH.maintenanceMargin));
    }
  });

  it('holds no position that is already liquidatable at the first price', () => {
    for (const p of book) expect(isLiquidatable(p, start, ETH.maintenanceMargin)).toBe(false);
  });

  it('leans long (about 70 %) with entries around the first price', () => {
    const longs = book.filter((p) => p.side === 'LONG').length / book.length;
    expect(longs).toBeGreaterThan(0.66);
    expect(longs).toBeLessThan(0.74);
    for (const p of book) {
      expect(p.entryPrice).toBeGreaterThan(price('180'));
      expect(p.entryPrice).toBeLessThan(price('210'));
    }
  });

  it('has leverage mostly 2-20x with a tail up to the market maximum and never above it', () => {
    const max = Number(maxLeverage(ETH));
    const levs = book.map(leverage);
    const inBody = levs.filter((l) => l >= 2 && l <= 20).length / levs.length;
    expect(inBody).toBeGreaterThan(0.8);
    for (const l of levs) {
      expect(l).toBeGreaterThanOrEqual(1.09);
      expect(l).toBeLessThanOrEqual(max + 1e-6);
    }
    expect(levs.filter((l) => l > max * 0.9).length).toBeGreaterThan(0);
  });

  it('has heavy-tailed sizes: many small, a few large', () => {
    const sizes = book.map(notional).sort((a, b) => a - b);
    const total = sizes.reduce((a, b) => a + b, 0);
    const median = sizes[sizes.length >> 1]!;
    const top1 = sizes.slice(-Math.ceil(sizes.length / 100)).reduce((a, b) => a + b, 0);
    expect(median).toBeLessThan(total / sizes.length);
    expect(top1 / total).toBeGreaterThan(0.15);
    expect(sizes[0]!).toBeGreaterThanOrEqual(params.minNotionalUsd * 0.99);
    expect(sizes[sizes.length - 1]!).toBeLessThanOrEqual(params.maxNotionalUsd);
  });

  it('is deterministic per seed', () => {
    expect(generateBook(params, config)).toEqual(book);
    expect(generateBook({ ...params, seed: 4 }, config)).not.toEqual(book);
  });

  // lot51-open-whole-lots: a position opens in whole lots of its market's lot (admin.ts refuses another).
  it("draws whole lots of the market's lot when it has one, the same book down to the lot; any size without", () => {
    const lot = base('0.01');
    const withLot = parseRiskConfig({
      ...DEFAULT_RISK_CONFIG_INPUT,
      markets: DEFAULT_RISK_CONFIG_INPUT.markets.map((m) =>
        m.symbol === 'ETH-USD' ? { ...m, lotSize: '0.01', dustSize: '0.01' } : m,
      ),
    });
    const inLots = generateBook({ ...params, positions: 500 }, withLot);
    const anySize = book.slice(0, 500);
    expect(inLots.map((p) => p.size)).toEqual(anySize.map((p) => p.size - (p.size % lot)));
    expect(anySize.some((p) => p.size % lot !== 0n)).toBe(true);
    // The simulated exchange trades the market's lot, unless the venue's model is given another.
    expect(prepareSimulation({ positions: 10, config: withLot }).venue).toEqual({ lotSize: lot });
    expect(prepareSimulation({ positions: 10, config: withLot, venue: { lotSize: 1n } }).venue).toEqual({
      lotSize: 1n,
    });
    expect(prepareSimulation({ positions: 10 }).venue).toBeUndefined();
  });

  it('refuses a bad count, price or market', () => {
    expect(() => generateBook({ ...params, positions: -1 }, config)).toThrow(BookError);
    expect(() => generateBook({ ...params, positions: 1.5 }, config)).toThrow(BookError);
    expect(() => generateBook({ ...params, startPrice: 0n }, config)).toThrow(BookError);
    expect(() => generateBook({ ...params, symbol: 'DOGE-USD' }, config)).toThrow('unknown market');
  });
});

describe('providers', () => {
  const params = {
    ...DEFAULT_PROVIDER_PARAMS,
    symbol: 'ETH-USD',
    count: 8,
    totalCapitalUsd: 5_000_000,
    startPrice: price('195'),
    seed: 1,
  };
  const providers = generateProviders(params);

  it('commit exactly the total capital, with terms in the configured ranges', () => {
    expect(providers).toHaveLength(8);
    expect(providers.reduce((a, p) => a + p.capital, 0n)).toBe(5_000_000n * QUOTE_SCALE);
    for (const p of providers) {
      expect(p.capital).toBeGreaterThan(0n);
      expect(p.maxDiscountPpm).toBeGreaterThanOrEqual(5_000n);
      expect(p.maxDiscountPpm).toBeLessThanOrEqual(50_000n);
      expect(p.maxLot).toBeGreaterThan(0n);
      // maxLot is a quarter of the capital at the first price, rounded down.
      expect(p.maxLot * params.startPrice).toBeLessThanOrEqual((p.capital * NOTIONAL_TO_QUOTE) / 4n);
      expect(p.symbols).toEqual(['ETH-USD']);
    }
  });

  it('is deterministic per seed; none for a count of 0', () => {
    expect(generateProviders(params)).toEqual(providers);
    expect(generateProviders({ ...params, count: 0 })).toEqual([]);
  });

  it('refuses a bad count or capital', () => {
    expect(() => generateProviders({ ...params, count: -1 })).toThrow(ProviderParamsError);
    expect(() => generateProviders({ ...params, totalCapitalUsd: Number.NaN })).toThrow(ProviderParamsError);
  });
});
