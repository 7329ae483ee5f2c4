import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  bankruptcyPrice,
  effectiveLeverage,
  effectiveLeveragePpm,
  equity,
  equityE16,
  isBelowMaintenance,
  isLiquidatable,
  liquidationPrice,
  MarginError,
  type MarginPosition,
  maintenanceMargin,
  notional,
} from '../../shared/domain/margin.ts';
import type { Side } from '../../shared/domain/model.ts';
import { base, NOTIONAL_TO_QUOTE, ppm, price, usd } from '../../shared/domain/units.ts';

const RUNS = { numRuns: 400 };
const M = ppm('0.025');

const pos = (side: Side, size: string, entry: string, collateral: string): MarginPosition => ({
  side,
  size: base(size),
  entryPrice: price(entry),
  collateral: usd(collateral),
});

const LONG = pos('LONG', '1', '100', '10');
const SHORT = pos('SHORT', '1', '100', '10');

/**
 * Positions from dust to 10k units, prices from 1e-8 to 100k, collateral from 0 to twice the entry notional; a
 * third of them a slice's rest, whose collateral overstates its exact margin by a sub-unit (collateralOverE16).
 */
const arbPosition: fc.Arbitrary<MarginPosition> = fc
  .record({
    side: fc.constantFrom<Side>('LONG', 'SHORT'),
    size: fc.bigInt({ min: 1n, max: 10n ** 12n }),
    entryPrice: fc.bigInt({ min: 1n, max: 10n ** 13n }),
    share: fc.bigInt({ min: 0n, max: 2_000_000n }),
    over: fc.oneof(fc.constant(0n), fc.constant(0n), fc.bigInt({ min: 1n, max: NOTIONAL_TO_QUOTE - 1n })),
  })
  .map(({ side, size, entryPrice, share, over }) => {
    // collateral = share (ppm) of the entry notional, at least 0; a rest's exact margin too.
    const collateral = (size * entryPrice * share) / (NOTIONAL_TO_QUOTE * 1_000_000n);
    return {
      side,
      size,
      entryPrice,
      collateral,
      ...(over > 0n && collateral > 0n ? { collateralOverE16: over } : {}),
    };
  });
const arbRate = fc.bigInt({ min: 0n, max: 500_000n });
/** A mark near the position's entry (within a factor of 3 either way), or anywhere. */
const arbMark = (p: MarginPosition) =>
  fc.oneof(fc.bigInt({ min: 1n, max: p.entryPrice * 3n }), fc.bigInt({ min: 1n, max: 10n ** 14n }));
const arbCase = arbPosition.chain((p) => fc.tuple(fc.constant(p), arbMark(p), arbRate));

describe('equity, maintenance margin, notional (worked example: 1 ETH, entry 100, collateral 10)', () => {
  it.each([
    ['LONG at 95', LONG, '95', '5', '2.375'],
    ['LONG at 105', LONG, '105', '15', '2.625'],
    ['SHORT at 95', SHORT, '95', '15', '2.375'],
    ['SHORT at 115', SHORT, '115', '-5', '2.875'],
  ])('%s', (_name, p, mark, eq, mm) => {
    expect(equity(p, price(mark))).toBe(usd(eq));
    expect(maintenanceMargin(p, price(mark), M)).toBe(usd(mm));
  });

  it('equity rounds down and maintenance margin rounds up (sub-micro-dollar amounts)', () => {
    const p = { ...LONG, size: 3n }; // 3e-8 ETH: a 1e-8 price move is 3e-16 USD.
    expect(equityE16(p, p.entryPrice - 1n)).toBe(usd('10') * NOTIONAL_TO_QUOTE - 3n);
    expect(equity(p, p.entryPrice - 1n)).toBe(usd('10') - 1n);
    expect(equity(p, p.entryPrice + 1n)).toBe(usd('10'));
    // m q P = 0.025 * 3e-8 * 100 = 7.5e-8 USD: ceil to 1 micro-dollar.
    expect(maintenanceMargin(p, p.entryPrice, M)).toBe(1n);
    expect(notional(p, p.entryPrice)).toBe(3n);
    expect(notional(p, p.entryPrice + 1n)).toBe(4n);
    expect(notional(p, p.entryPrice + 1n, 'floor')).toBe(3n);
  });

  it('notional of 2.5 ETH at 1520.5 is 3801.25 USD', () => {
    expect(notional(pos('LONG', '2.5', '1', '0'), price('1520.5'))).toBe(usd('3801.25'));
  });

  it('equity is floor(E16 / 1e10) and MM is ceil(m q P / 1e16)', () => {
    fc.assert(
      fc.property(arbCase, ([p, mark, m]) => {
        const e16 = equityE16(p, mark);
        const eq = equity(p, mark);
        expect(eq * NOTIONAL_TO_QUOTE <= e16 && e16 < (eq + 1n) * NOTIONAL_TO_QUOTE).toBe(true);
        const mm = maintenanceMargin(p, mark, m);
        const exact = m * p.size * mark;
        const unit = NOTIONAL_TO_QUOTE * 1_000_000n;
        expect((mm - 1n) * unit < exact && exact <= mm * unit).toBe(true);
      }),
      RUNS,
    );
  });
});

describe('liquidationPrice', () => {
  it.each([
    // long (100 - 10) / 0.975 = 92.307692307..., ceiled
    ['LONG', LONG, '92.30769231'],
    // short (100 + 10) / 1.025 = 107.317073170..., floored
    ['SHORT', SHORT, '107.31707317'],
  ])('%s example', (_name, p, expected) => {
    expect(liquidationPrice(p, M)).toBe(price(expected));
  });

  it.each([
    // [name, position, mark, liquidatable, below maintenance]
    ['long one unit above', LONG, '92.30769232', false, false],
    ['long at the rounded price', LONG, '92.30769231', true, false],
    ['long one unit below', LONG, '92.3076923', true, true],
    ['short one unit below', SHORT, '107.31707316', false, false],
    ['short at the rounded price', SHORT, '107.31707317', true, false],
    ['short one unit above', SHORT, '107.31707318', true, true],
  ])('boundary: %s', (_name, p, mark, liquidatable, below) => {
    expect(isLiquidatable(p, price(mark), M)).toBe(liquidatable);
    expect(isBelowMaintenance(p, price(mark), M)).toBe(below);
  });

  it.each([
    // (102.5 - 5) / 0.975 = 100 exactly; (97.5 + 5) / 1.025 = 100 exactly.
    ['long', pos('LONG', '1', '102.5', '5'), -1n],
    ['short', pos('SHORT', '1', '97.5', '5'), 1n],
  ])('an exact %s liquidation price is not rounded: over, at, under', (_name, p, adverse) => {
    const l = price('100');
    expect(liquidationPrice(p, M)).toBe(l);
    expect(isLiquidatable(p, l - adverse, M)).toBe(false);
    expect(isLiquidatable(p, l, M)).toBe(true);
    expect(isLiquidatable(p, l + adverse, M)).toBe(true);
    expect(isBelowMaintenance(p, l, M)).toBe(false);
    expect(isBelowMaintenance(p, l + adverse, M)).toBe(true);
  });

  it('a long with collateral >= entry notional is never liquidatable: 0n', () => {
    const p = pos('LONG', '1', '100', '100');
    expect(liquidationPrice(p, M)).toBe(0n);
    expect(isLiquidatable(p, 1n, M)).toBe(false);
    expect(isBelowMaintenance(p, 1n, M)).toBe(false);
    expect(liquidationPrice(pos('LONG', '1', '100', '99.999999'), M)).toBeGreaterThan(0n);
  });

  it('a short always has a finite price; with no collateral it sits just below entry', () => {
    expect(liquidationPrice(pos('SHORT', '1', '100', '0'), M)).toBe(price('97.56097560'));
    expect(liquidationPrice(pos('SHORT', '1', '100', '1000000'), M)).toBe(price('975707.31707317'));
  });

  it.each([
    ['empty position', { ...LONG, size: 0n }, M, /margin\/empty-position/],
    ['rate of 100 %', LONG, 1_000_000n, /margin\/bad-rate/],
    ['negative rate', SHORT, -1n, /margin\/bad-rate/],
  ])('refuses %s', (_name, p, m, reason) => {
    expect(() => liquidationPrice(p, m)).toThrow(MarginError);
    expect(() => liquidationPrice(p, m)).toThrow(reason);
    expect(() => isLiquidatable(p, price('100'), m)).toThrow(reason);
  });
});

describe('liquidation properties', () => {
  it('isLiquidatable(P) <=> P at or beyond liquidationPrice (what the index queries)', () => {
    fc.assert(
      fc.property(arbCase, ([p, mark, m]) => {
        const l = liquidationPrice(p, m);
        expect(isLiquidatable(p, mark, m)).toBe(p.side === 'LONG' ? mark <= l : mark >= l);
      }),
      { numRuns: 500 },
    );
  });

  it("a slice's rest a sub-unit below maintenance by its exact margin is liquidatable, though its collateral is not", () => {
    // 1 ETH long at 200, 0.5 %, at 190.00000003: the collateral one unit above maintenance, overstating the exact
    // margin by all but 1e-16 of a unit (the review's case, session 35).
    const m = 5_000n;
    const size = 100_000_000n;
    const entryPrice = 20_000_000_000n;
    const mark = 19_000_000_003n;
    const pnl16 = size * (mark - entryPrice);
    const collateral = (m * size * mark) / 1_000_000n / NOTIONAL_TO_QUOTE - pnl16 / NOTIONAL_TO_QUOTE + 1n;
    const stored: MarginPosition = { side: 'LONG', size, entryPrice, collateral };
    const rest: MarginPosition = { ...stored, collateralOverE16: NOTIONAL_TO_QUOTE - 1n };
    const exact16 = collateral * NOTIONAL_TO_QUOTE - (NOTIONAL_TO_QUOTE - 1n) + pnl16;
    expect(exact16 * 1_000_000n < m * size * mark).toBe(true);
    expect(isLiquidatable(stored, mark, m)).toBe(false);
    expect(isLiquidatable(rest, mark, m)).toBe(true);
    expect(liquidationPrice(rest, m)).toBeGreaterThanOrEqual(mark);
  });

  it("judges a slice's rest on its exact margin: below maintenance by it, liquidatable (review, session 35)", () => {
    fc.assert(
      fc.property(arbCase, ([p, mark, m]) => {
        // By hand: the collateral less the sub-unit a slice's rounding left over on it, plus the PnL at the mark.
        const pnl16 = p.side === 'LONG' ? p.size * (mark - p.entryPrice) : p.size * (p.entryPrice - mark);
        const exact16 = p.collateral * NOTIONAL_TO_QUOTE - (p.collateralOverE16 ?? 0n) + pnl16;
        if (exact16 * 1_000_000n < m * p.size * mark) expect(isLiquidatable(p, mark, m)).toBe(true);
      }),
      { numRuns: 2_000 },
    );
  });

  it('isBelowMaintenance(P) => isLiquidatable(P)', () => {
    fc.assert(
      fc.property(arbCase, ([p, mark, m]) => {
        if (isBelowMaintenance(p, mark, m)) expect(isLiquidatable(p, mark, m)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('liquidatable but not below maintenance only at the rounded price, one unit from a breach', () => {
    // Search at the liquidation price itself, where the two can differ.
    fc.assert(
      fc.property(arbPosition, arbRate, (p, m) => {
        const l = liquidationPrice(p, m);
        fc.pre(l > 1n);
        for (const mark of [l - 1n, l, l + 1n]) {
          if (isLiquidatable(p, mark, m) && !isBelowMaintenance(p, mark, m)) {
            expect(mark).toBe(l);
            // One price unit further the exact rule breaches: the exact price is within 1e-8 of l.
            expect(isBelowMaintenance(p, p.side === 'LONG' ? mark - 1n : mark + 1n, m)).toBe(true);
          }
        }
      }),
      { numRuns: 500 },
    );
  });

  it('brackets the exact price: not below maintenance at l, below one unit further', () => {
    fc.assert(
      fc.property(arbPosition, arbRate, (p, m) => {
        const l = liquidationPrice(p, m);
        if (p.side === 'LONG') {
          if (l === 0n) {
            // Never liquidatable: not even at 1e-8.
            expect(isBelowMaintenance(p, 1n, m)).toBe(false);
            return;
          }
          expect(isBelowMaintenance(p, l, m)).toBe(false);
          expect(isBelowMaintenance(p, l - 1n, m)).toBe(true);
        } else {
          expect(isBelowMaintenance(p, l, m)).toBe(false);
          expect(isBelowMaintenance(p, l + 1n, m)).toBe(true);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('is monotone in the mark: further in the adverse direction stays liquidatable', () => {
    fc.assert(
      fc.property(arbCase, fc.bigInt({ min: 0n, max: 10n ** 13n }), ([p, mark, m], step) => {
        fc.pre(isLiquidatable(p, mark, m));
        const further = p.side === 'LONG' ? mark - step : mark + step;
        fc.pre(further > 0n);
        expect(isLiquidatable(p, further, m)).toBe(true);
        expect(isBelowMaintenance(p, further, m) || !isBelowMaintenance(p, mark, m)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });
});

describe('bankruptcyPrice', () => {
  it.each([
    ['long', LONG, '90'],
    ['short', SHORT, '110'],
    ['long, 3 units, rounded up', pos('LONG', '0.00000003', '100', '0.000001'), '66.66666667'],
    ['short, 3 units, rounded down', pos('SHORT', '0.00000003', '100', '0.000001'), '133.33333333'],
    ['long that cannot go bankrupt', pos('LONG', '1', '100', '150'), '0'],
  ])('%s', (_name, p, expected) => {
    expect(bankruptcyPrice(p)).toBe(expected === '0' ? 0n : price(expected));
  });

  it('is the worst mark with equity >= 0: a fill there never needs the fund', () => {
    fc.assert(
      fc.property(arbPosition, (p) => {
        const b = bankruptcyPrice(p);
        if (p.side === 'LONG') {
          if (b === 0n) {
            expect(equityE16(p, 0n) >= 0n).toBe(true);
            return;
          }
          expect(equityE16(p, b) >= 0n).toBe(true);
          expect(equityE16(p, b - 1n) < 0n).toBe(true);
        } else {
          expect(equityE16(p, b) >= 0n).toBe(true);
          expect(equityE16(p, b + 1n) < 0n).toBe(true);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('lies beyond the liquidation price (liquidation comes first)', () => {
    fc.assert(
      fc.property(arbPosition, arbRate, (p, m) => {
        const b = bankruptcyPrice(p);
        const l = liquidationPrice(p, m);
        expect(p.side === 'LONG' ? b <= l : b >= l).toBe(true);
      }),
      RUNS,
    );
  });
});

describe('effective leverage', () => {
  it('1 ETH at 100 with 10 USD equity is 10x', () => {
    expect(effectiveLeveragePpm(LONG, price('100'))).toBe(10_000_000n);
    expect(effectiveLeverage(LONG, price('100'))).toEqual({
      numerator: base('1') * price('100'),
      denominator: usd('10') * NOTIONAL_TO_QUOTE,
    });
    // 105 / 15 = 7x; 95 / 5 = 19x.
    expect(effectiveLeveragePpm(LONG, price('105'))).toBe(7_000_000n);
    expect(effectiveLeveragePpm(LONG, price('95'))).toBe(19_000_000n);
  });

  it('rounds up, and is undefined once equity is gone', () => {
    // 100 / 3 = 33.3333333...x -> 33.333334x.
    expect(effectiveLeveragePpm(pos('LONG', '1', '100', '3'), price('100'))).toBe(33_333_334n);
    expect(effectiveLeveragePpm(LONG, price('90'))).toBeUndefined();
    expect(effectiveLeverage(SHORT, price('111'))).toBeUndefined();
    // Equity exactly 0 (10 of collateral, 10 lost): unbounded, not a ratio over 0.
    expect(effectiveLeverage(LONG, price('90'))).toBeUndefined();
  });
});

// Found by mutation testing (npm run mutate, session 49): edges no other test reached.
describe('margin: edges', () => {
  it('a long that cannot be liquidated at a positive price is at its liquidation price 0 when the mark is 0', () => {
    // mark <= liquidationPrice, what the index queries, holds at 0 = 0.
    const p = pos('LONG', '1', '100', '200');
    expect(liquidationPrice(p, M)).toBe(0n);
    expect(isLiquidatable(p, 0n, M)).toBe(true);
  });

  it('bankruptcyPrice refuses an empty position, long or short', () => {
    expect(() => bankruptcyPrice({ ...LONG, size: 0n })).toThrow('margin/empty-position: size 0');
    expect(() => bankruptcyPrice({ ...SHORT, size: 0n })).toThrow(MarginError);
    expect(new MarginError('m').name).toBe('MarginError');
  });
});
