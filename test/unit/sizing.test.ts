import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { settleClose } from '../../shared/domain/accounting.ts';
import {
  DEFAULT_RISK_CONFIG,
  DEFAULT_RISK_CONFIG_INPUT,
  type MarketConfig,
  marketConfig,
  parseRiskConfig,
} from '../../shared/domain/config.ts';
import { equityE16, isLiquidatable, type MarginPosition } from '../../shared/domain/margin.ts';
import type { Side } from '../../shared/domain/model.ts';
import { liquidationFee, planLiquidationStep, SizingError } from '../../shared/domain/sizing.ts';
import { base, div, NOTIONAL_TO_QUOTE, PPM_SCALE, price, usd } from '../../shared/domain/units.ts';

const ETH = marketConfig(DEFAULT_RISK_CONFIG, 'ETH-USD');

/** ETH-USD with some fields overridden, validated through the real config parser. */
function market(patch: Record<string, unknown>): MarketConfig {
  const [eth, btc] = DEFAULT_RISK_CONFIG_INPUT.markets;
  return marketConfig(
    parseRiskConfig({ ...DEFAULT_RISK_CONFIG_INPUT, markets: [{ ...eth, ...patch }, btc] }),
    'ETH-USD',
  );
}

const pos = (side: Side, size: string, entry: string, collateral: string): MarginPosition => ({
  side,
  size: base(size),
  entryPrice: price(entry),
  collateral: usd(collateral),
});

/** Exact: equity after the close (fee ceiled) >= im * remainder * mark. */
function remainderMeetsInitialMargin(
  p: MarginPosition,
  mark: bigint,
  size: bigint,
  m: MarketConfig,
): boolean {
  // As the settlement closes it: the closed part's PnL and the fee in whole units (settleClose).
  const s = settleClose(p, [{ price: mark, size }], m.liquidationFee);
  const remainder = { ...p, size: s.remaining.size, collateral: s.remaining.collateral };
  return equityE16(remainder, mark) * PPM_SCALE >= m.initialMargin * remainder.size * mark;
}

describe('liquidationFee', () => {
  it('is f * size * mark, rounded up', () => {
    expect(liquidationFee(base('10'), price('970'), ETH.liquidationFee)).toBe(usd('97'));
    // 1e-8 ETH at 1 USD at 1 %: 1e-10 USD -> one micro-dollar.
    expect(liquidationFee(1n, price('1'), ETH.liquidationFee)).toBe(1n);
    expect(liquidationFee(0n, price('1'), ETH.liquidationFee)).toBe(0n);
  });
});

describe('planLiquidationStep: one case per reason (defaults: im 5 %, fee 1 %, share 25 %, min slice 1000)', () => {
  // 10 ETH long from 1000 with 500 USD: at 970 equity is 200 (MM 242.5).
  const TEN = pos('LONG', '10', '1000', '500');
  // 200 ETH long from 1000 with 10,000 USD: 200k notional, above the 100k slicing threshold.
  const BIG = pos('LONG', '200', '1000', '10000');

  const cases: [string, MarginPosition, string, MarketConfig, string, boolean, string | undefined][] = [
    // [name, position, mark, market, reason, full, exact size]
    ['insolvent long', TEN, '940', ETH, 'sizing/insolvent', true, '10'],
    ['insolvent short', pos('SHORT', '10', '1000', '500'), '1060', ETH, 'sizing/insolvent', true, '10'],
    ['equity exactly zero', TEN, '950', ETH, 'sizing/insolvent', true, '10'],
    ['equity below the fee on the whole size', TEN, '951', ETH, 'sizing/no-partial-restores', true, '10'],
    // (0.05 * 10 * 970 - 200) / (0.04 * 970) = 7.34536082...; plus the fee-rounding unit.
    ['restore initial margin', TEN, '970', ETH, 'sizing/restore-initial-margin', false, undefined],
    // healthy-ish: 0.5 ETH would do, but a slice is at least 1000 USD = 1 ETH.
    [
      'raised to the minimum slice',
      pos('LONG', '10', '1000', '480'),
      '1000',
      ETH,
      'sizing/min-slice',
      false,
      '1',
    ],
    // 1 ETH at 974: the minimum slice (1.0267 ETH) exceeds the size: close it all.
    [
      'minimum slice above the size',
      pos('LONG', '1', '1000', '50'),
      '974',
      ETH,
      'sizing/min-slice',
      true,
      '1',
    ],
    ['large position capped at 25 %', BIG, '970', ETH, 'sizing/max-close-share', false, '50'],
    ['remainder below dustSize', TEN, '970', market({ dustSize: '3' }), 'sizing/dust-remainder', true, '10'],
    [
      'remainder below the minimum slice',
      TEN,
      '970',
      market({ minSliceNotional: '3000' }),
      'sizing/dust-remainder',
      true,
      '10',
    ],
    [
      'fee at least the initial margin',
      TEN,
      '970',
      market({ maintenanceMargin: '0.01', initialMargin: '0.02', liquidationFee: '0.05' }),
      'sizing/fee-exceeds-margin-relief',
      true,
      '10',
    ],
  ];

  it.each(cases)('%s', (_name, p, mark, m, reason, full, size) => {
    const step = planLiquidationStep(p, price(mark), m);
    expect(step.reason).toBe(reason);
    expect(step.full).toBe(full);
    if (size !== undefined) expect(step.size).toBe(base(size));
  });

  it('restores initial margin with the smallest close, up to the fee-rounding slack', () => {
    const mark = price('970');
    const step = planLiquidationStep(TEN, mark, ETH);
    expect(step.size > base('7.34536082') && step.size <= base('7.34536082') + 30n).toBe(true);
    expect(remainderMeetsInitialMargin(TEN, mark, step.size, ETH)).toBe(true);
    expect(remainderMeetsInitialMargin(TEN, mark, base('7.34536082'), ETH)).toBe(false);
  });

  it('is symmetric for a short', () => {
    // 10 ETH short from 1000 with 500 USD: at 1030 equity is 200 (MM 257.5).
    const short = pos('SHORT', '10', '1000', '500');
    const mark = price('1030');
    expect(isLiquidatable(short, mark, ETH.maintenanceMargin)).toBe(true);
    const step = planLiquidationStep(short, mark, ETH);
    expect(step.reason).toBe('sizing/restore-initial-margin');
    expect(remainderMeetsInitialMargin(short, mark, step.size, ETH)).toBe(true);
    expect(remainderMeetsInitialMargin(short, mark, step.size - 100n, ETH)).toBe(false);
  });

  it.each([
    [
      'an empty position',
      { ...pos('LONG', '1', '1000', '50'), size: 0n },
      price('1000'),
      /sizing\/empty-position/,
    ],
    ['a zero mark', pos('LONG', '1', '1000', '50'), 0n, /sizing\/non-positive-mark/],
  ])('refuses %s', (_name, p, mark, reason) => {
    expect(() => planLiquidationStep(p, mark, ETH)).toThrow(SizingError);
    expect(() => planLiquidationStep(p, mark, ETH)).toThrow(reason);
  });
});

describe('planLiquidationStep: properties', () => {
  const arbMarket: fc.Arbitrary<MarketConfig> = fc
    .record({
      maintenanceMargin: fc.bigInt({ min: 1n, max: 500_000n }),
      imExtra: fc.bigInt({ min: 1n, max: 500_000n }),
      liquidationFee: fc.bigInt({ min: 0n, max: 100_000n }),
      maxCloseShare: fc.bigInt({ min: 1n, max: 1_000_000n }),
      minSliceNotional: fc.bigInt({ min: 0n, max: usd('20000') }),
      sliceAboveNotional: fc.bigInt({ min: 0n, max: usd('1000000') }),
      dustSize: fc.bigInt({ min: 0n, max: base('5') }),
    })
    .map(({ imExtra, ...r }) => ({
      ...ETH,
      ...r,
      initialMargin: r.maintenanceMargin + imExtra,
    }));

  const arbPosition: fc.Arbitrary<MarginPosition> = fc
    .record({
      side: fc.constantFrom<Side>('LONG', 'SHORT'),
      size: fc.bigInt({ min: 1n, max: base('5000') }),
      entryPrice: fc.bigInt({ min: price('0.01'), max: price('100000') }),
      share: fc.bigInt({ min: 0n, max: 300_000n }),
    })
    .map(({ side, size, entryPrice, share }) => ({
      side,
      size,
      entryPrice,
      collateral: (size * entryPrice * share) / (NOTIONAL_TO_QUOTE * PPM_SCALE),
    }));

  /** A mark within +-20 % of entry: where liquidations happen. */
  const arbCase = fc
    .tuple(arbPosition, arbMarket, fc.integer({ min: 800_000, max: 1_200_000 }))
    .map(([p, m, f]) => [p, (p.entryPrice * BigInt(f)) / PPM_SCALE + 1n, m] as const);

  it('0 < size <= position size, and full <=> size == position size', () => {
    fc.assert(
      fc.property(arbCase, ([p, mark, m]) => {
        const step = planLiquidationStep(p, mark, m);
        expect(step.size > 0n && step.size <= p.size).toBe(true);
        expect(step.full).toBe(step.size === p.size);
      }),
      { numRuns: 500 },
    );
  });

  it('leaves nothing, or a non-dust remainder at or above initial margin unless capped by maxCloseShare', () => {
    fc.assert(
      fc.property(arbCase, ([p, mark, m]) => {
        const step = planLiquidationStep(p, mark, m);
        const rest = p.size - step.size;
        if (rest === 0n) return;
        expect(rest >= m.dustSize).toBe(true);
        expect(rest * mark >= m.minSliceNotional * NOTIONAL_TO_QUOTE).toBe(true);
        if (step.reason !== 'sizing/max-close-share') {
          expect(remainderMeetsInitialMargin(p, mark, step.size, m)).toBe(true);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('slices a large position at maxCloseShare unless the position must go in full', () => {
    fc.assert(
      fc.property(arbCase, ([p, mark, m]) => {
        const step = planLiquidationStep(p, mark, m);
        const large = p.size * mark > m.sliceAboveNotional * NOTIONAL_TO_QUOTE;
        if (!large || step.full) return;
        const cap = div(p.size * m.maxCloseShare, PPM_SCALE, 'floor');
        expect(step.size <= (cap > 0n ? cap : 1n)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('never slices below minSliceNotional unless it closes everything or is capped', () => {
    fc.assert(
      fc.property(arbCase, ([p, mark, m]) => {
        const step = planLiquidationStep(p, mark, m);
        if (step.full || step.reason === 'sizing/max-close-share') return;
        expect(step.size * mark >= m.minSliceNotional * NOTIONAL_TO_QUOTE).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('closes no more than needed: the size minus the rounding slack would not restore initial margin', () => {
    fc.assert(
      fc.property(arbCase, ([p, mark, m]) => {
        const step = planLiquidationStep(p, mark, m);
        if (step.reason !== 'sizing/restore-initial-margin') return;
        // The close's rounding (the fee's ceiling, the PnL's floor) is budgeted as two extra micro-dollars: at
        // most this many extra units.
        const slack = div(
          2n * NOTIONAL_TO_QUOTE * PPM_SCALE,
          (m.initialMargin - m.liquidationFee) * mark,
          'ceil',
        );
        const smaller = step.size - slack - 1n;
        if (smaller <= 0n) return;
        const after = equityE16(p, mark) * PPM_SCALE - m.liquidationFee * smaller * mark;
        expect(after >= m.initialMargin * (p.size - smaller) * mark).toBe(false);
      }),
      { numRuns: 500 },
    );
  });

  it('closes in full when equity is gone', () => {
    fc.assert(
      fc.property(arbCase, ([p, mark, m]) => {
        fc.pre(equityE16(p, mark) <= 0n);
        expect(planLiquidationStep(p, mark, m)).toEqual({
          size: p.size,
          full: true,
          reason: 'sizing/insolvent',
        });
      }),
      { numRuns: 200 },
    );
  });
});

// Found by a review of the money arithmetic in session 26: the slack covered the fee's ceiling only, and the
// settlement's floor of the closed part's PnL left the remainder 0.397 micro-USD below initial margin.
describe('planLiquidationStep: the close restores initial margin after the settlement rounds', () => {
  it('the planned close, settled at the mark, leaves the remainder at initial margin or above', () => {
    const eth = marketConfig(DEFAULT_RISK_CONFIG, 'ETH-USD'); // im 5 %, mm 2.5 %, fee 1 %
    const p = {
      side: 'SHORT' as const,
      size: base('10.0891759'),
      entryPrice: price('2014'),
      collateral: usd('467'),
    };
    const mark = price('2035.14');
    expect(isLiquidatable(p, mark, eth.maintenanceMargin)).toBe(true);
    const step = planLiquidationStep(p, mark, eth);
    expect(step.reason).toBe('sizing/restore-initial-margin');

    const s = settleClose(p, [{ price: mark, size: step.size }], eth.liquidationFee);
    const remainder = { ...p, size: s.remaining.size, collateral: s.remaining.collateral };
    const equity22 = equityE16(remainder, mark) * PPM_SCALE;
    const initialMargin22 = eth.initialMargin * remainder.size * mark;
    // equity >= im * q * P is what the step promises (one unit less closed missed it by 0.397 micro-USD).
    expect(equity22 >= initialMargin22).toBe(true);
  });
});

// Each rule at its boundary, where `<` and `<=` part (session 49's mutation testing found none tested). Sizes
// worked out by hand: c = ceil((im q P - equity + 2e-6) / ((im - f) P)) with im 5 %, f 1 %.
describe('planLiquidationStep: at each boundary', () => {
  const TEN = pos('LONG', '10', '1000', '500');

  it('a remainder of exactly dustSize is not dust', () => {
    // At 970: (485 - 200 + 0.000002) / 38.8 = 7.345360876..., ceiled to 7.34536088; the rest is 2.65463912.
    const at = planLiquidationStep(TEN, price('970'), market({ dustSize: '2.65463912' }));
    expect(at).toEqual({ size: base('7.34536088'), full: false, reason: 'sizing/restore-initial-margin' });
    const above = planLiquidationStep(TEN, price('970'), market({ dustSize: '2.65463913' }));
    expect(above).toEqual({ size: base('10'), full: true, reason: 'sizing/dust-remainder' });
  });

  it('a remainder worth exactly minSliceNotional is not dust', () => {
    // At 1000 with 480: 0.5 ETH restores; raised to the 5,000 USD minimum slice, 5 ETH, the rest is worth 5,000.
    const p = pos('LONG', '10', '1000', '480');
    expect(planLiquidationStep(p, price('1000'), market({ minSliceNotional: '5000' }))).toEqual({
      size: base('5'),
      full: false,
      reason: 'sizing/min-slice',
    });
  });

  it('a close worth exactly minSliceNotional is not raised', () => {
    // At 1000 with 460.000002: (500 - 460.000002 + 0.000002) / 40 = 1 ETH exactly, 1,000 USD, the minimum slice.
    const p = pos('LONG', '10', '1000', '460.000002');
    expect(planLiquidationStep(p, price('1000'), ETH)).toEqual({
      size: base('1'),
      full: false,
      reason: 'sizing/restore-initial-margin',
    });
  });

  it('a close of exactly the whole size is no partial close', () => {
    // At 1000 with 100.000002: (500 - 100.000002 + 0.000002) / 40 = 10 ETH, the whole position.
    const p = pos('LONG', '10', '1000', '100.000002');
    expect(planLiquidationStep(p, price('1000'), ETH)).toEqual({
      size: base('10'),
      full: true,
      reason: 'sizing/no-partial-restores',
    });
  });

  it('a fee equal to the initial margin closes in full (no division by im - f = 0)', () => {
    const m = market({ maintenanceMargin: '0.01', initialMargin: '0.02', liquidationFee: '0.02' });
    expect(planLiquidationStep(TEN, price('970'), m)).toEqual({
      size: base('10'),
      full: true,
      reason: 'sizing/fee-exceeds-margin-relief',
    });
  });

  it('a position worth exactly sliceAboveNotional is not sliced', () => {
    // 200 ETH at 970 = 194,000 USD. (9,700 - 4,000 + 0.000002) / 38.8 = 146.907216546..., ceiled.
    const big = pos('LONG', '200', '1000', '10000');
    expect(planLiquidationStep(big, price('970'), market({ sliceAboveNotional: '194000' }))).toEqual({
      size: base('146.90721655'),
      full: false,
      reason: 'sizing/restore-initial-margin',
    });
    expect(planLiquidationStep(big, price('970'), market({ sliceAboveNotional: '193999.999999' }))).toEqual({
      size: base('50'),
      full: false,
      reason: 'sizing/max-close-share',
    });
  });

  // Found by mutation testing (npm run mutate, session 49).
  it('a sliced position closes what restores initial margin when that is within the cap, the cap included', () => {
    // 200 ETH at 970 (194,000 USD, above 100,000: cap 50 ETH). With 15,312.000002: equity 9,312.000002,
    // (9,700 - 9,312.000002 + 0.000002) / 38.8 = 10 ETH; with 13,760.000002, 1,940 / 38.8 = 50 ETH, the cap itself.
    const within = planLiquidationStep(pos('LONG', '200', '1000', '15312.000002'), price('970'), ETH);
    expect(within).toEqual({ size: base('10'), full: false, reason: 'sizing/restore-initial-margin' });
    const atCap = planLiquidationStep(pos('LONG', '200', '1000', '13760.000002'), price('970'), ETH);
    expect(atCap).toEqual({ size: base('50'), full: false, reason: 'sizing/restore-initial-margin' });
  });

  it('a position needing nothing but the rounding slack still closes one unit', () => {
    // 2 units at 1 USD with an exact margin of 0.000002001 (3 units less 0.999 of one): im q P = 1e13 and the 2e16 of
    // slack are its equity x 1e6, so the need is exactly 0: the step is the minimum, one unit, never 0.
    const p = { ...pos('LONG', '0.00000002', '1', '0.000003'), collateralOverE16: 9_990_000_000n };
    const m = market({ minSliceNotional: '0', dustSize: '0' });
    expect(planLiquidationStep(p, price('1'), m)).toEqual({
      size: 1n,
      full: false,
      reason: 'sizing/restore-initial-margin',
    });
    expect(new SizingError('m').name).toBe('SizingError');
  });

  it('the cap is at least one unit, even when size x maxCloseShare floors to 0', () => {
    // 0.005 ETH x 1 ppm = 0.005 units: the cap is 1 unit, not 0 (a step that closes nothing).
    const m = market({
      maxCloseShare: '0.000001',
      sliceAboveNotional: '0',
      minSliceNotional: '0',
      dustSize: '0',
    });
    expect(planLiquidationStep(pos('LONG', '0.005', '1000', '0.25'), price('970'), m)).toEqual({
      size: 1n,
      full: false,
      reason: 'sizing/max-close-share',
    });
  });
});

// lot51-sizing-whole-lots: with the market's lot (the exchange fills whole lots only) every slice short of the whole
// position is whole lots. Sizes worked out by hand, lot 0.001, im 5 %, f 1 %.
describe('planLiquidationStep: in whole lots of the market', () => {
  const inLots = (patch: Record<string, unknown> = {}) => market({ lotSize: '0.001', ...patch });
  const TEN = pos('LONG', '10', '1000', '500');

  it('rounds the close that restores initial margin up to the lot', () => {
    // 7.34536088 ETH restores at 970 (the boundary cases above): 7.346 in lots.
    expect(planLiquidationStep(TEN, price('970'), inLots())).toEqual({
      size: base('7.346'),
      full: false,
      reason: 'sizing/restore-initial-margin',
    });
  });

  it('closes one lot when nothing is needed', () => {
    // 600 USD at 1000: equity 600 is above the initial margin (500); no minimum slice.
    expect(
      planLiquidationStep(pos('LONG', '10', '1000', '600'), price('1000'), inLots({ minSliceNotional: '0' })),
    ).toEqual({ size: base('0.001'), full: false, reason: 'sizing/restore-initial-margin' });
  });

  it('closes one lot when only the rounding slack is needed, which may be the whole position', () => {
    // The boundary case above (a need of exactly 0) with a lot of 2 units: one lot is the whole position.
    const p = { ...pos('LONG', '0.00000002', '1', '0.000003'), collateralOverE16: 9_990_000_000n };
    const m = market({ minSliceNotional: '0', dustSize: '0', lotSize: '0.00000002' });
    expect(planLiquidationStep(p, price('1'), m)).toEqual({
      size: 2n,
      full: true,
      reason: 'sizing/no-partial-restores',
    });
  });

  it('raises a close to the minimum slice rounded up to the lot', () => {
    // 780 USD at 970: equity 480, (485 - 480) / 38.8 = 0.129 ETH (125 USD); the 1,000 USD minimum is
    // 1.03092784 ETH, 1.031 in lots.
    expect(planLiquidationStep(pos('LONG', '10', '1000', '780'), price('970'), inLots())).toEqual({
      size: base('1.031'),
      full: false,
      reason: 'sizing/min-slice',
    });
  });

  it('caps a large position at its share rounded down to the lot', () => {
    // 200 ETH x 0.249999 = 49.9998 ETH: 49.999 in lots.
    const big = pos('LONG', '200', '1000', '10000');
    expect(planLiquidationStep(big, price('970'), inLots({ maxCloseShare: '0.249999' }))).toEqual({
      size: base('49.999'),
      full: false,
      reason: 'sizing/max-close-share',
    });
  });

  it('caps at one lot at least', () => {
    // 0.005 ETH x 1 ppm floors to 0 lots: the cap is one lot (0.004 would restore).
    const m = inLots({
      maxCloseShare: '0.000001',
      sliceAboveNotional: '0',
      minSliceNotional: '0',
      dustSize: '0',
    });
    expect(planLiquidationStep(pos('LONG', '0.005', '1000', '0.25'), price('970'), m)).toEqual({
      size: base('0.001'),
      full: false,
      reason: 'sizing/max-close-share',
    });
  });

  it('closes a rest under one lot with its slice (a position off the lot), even beyond the cap', () => {
    // 0.00100001 ETH, opened before the lot, no dust and no minimum slice: one lot restores and is the cap, and the
    // rest, one unit, no order could sell. Sliced, it became a slice of its own after this one, re-checked and sent
    // to the auction and ADL only then (a healthy rest went back open, under a lot): it goes with this slice.
    const m = inLots({
      minSliceNotional: '0',
      dustSize: '0',
      sliceAboveNotional: '0',
      maxCloseShare: '0.25',
    });
    expect(planLiquidationStep(pos('LONG', '0.00100001', '1000', '0.05'), price('970'), m)).toEqual({
      size: base('0.00100001'),
      full: true,
      reason: 'sizing/dust-remainder',
    });
    // A rest of one lot or more is sliced as before.
    expect(planLiquidationStep(pos('LONG', '0.00200001', '1000', '0.1'), price('970'), m)).toEqual({
      size: base('0.001'),
      full: false,
      reason: 'sizing/max-close-share',
    });
  });

  it('a position not in whole lots keeps its part under a lot to its last slice, the whole rest', () => {
    // 10.0005 ETH (opened before the lot): the slice is whole lots, the rest is not.
    const odd = pos('LONG', '10.0005', '1000', '500');
    const step = planLiquidationStep(odd, price('970'), inLots());
    expect(step.full).toBe(false);
    expect(step.size % base('0.001')).toBe(0n);
    expect((odd.size - step.size) % base('0.001')).toBe(base('0.0005'));
    // Its rest, under the minimum slice, goes whole.
    const rest = pos('LONG', '0.9995', '1000', '50');
    expect(planLiquidationStep(rest, price('970'), inLots())).toMatchObject({
      size: base('0.9995'),
      full: true,
    });
  });

  it('every slice of a position in whole lots is whole lots, and so is its rest (a property)', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 1n, max: 1_000_000n }),
        fc.bigInt({ min: 1n, max: 100_000n }),
        fc.bigInt({ min: 0n, max: 1_000n }),
        fc.constantFrom<Side>('LONG', 'SHORT'),
        fc.bigInt({ min: 0n, max: 300_000n }),
        fc.integer({ min: 850_000, max: 1_150_000 }),
        fc.bigInt({ min: 1n, max: 1_000_000n }),
        (lot, lots, dustLots, side, share, move, maxCloseShare) => {
          const size = lot * lots;
          const entryPrice = price('1000');
          const m = {
            ...ETH,
            lotSize: lot,
            dustSize: lot * dustLots,
            maxCloseShare,
            sliceAboveNotional: usd('50000'),
          };
          const p: MarginPosition = {
            side,
            size,
            entryPrice,
            collateral: (size * entryPrice * share) / (NOTIONAL_TO_QUOTE * PPM_SCALE),
          };
          const step = planLiquidationStep(p, (entryPrice * BigInt(move)) / PPM_SCALE, m);
          expect(step.size % lot).toBe(0n);
          expect((size - step.size) % lot).toBe(0n);
          expect(step.size > 0n).toBe(true);
        },
      ),
      { numRuns: 500 },
    );
  });
});
