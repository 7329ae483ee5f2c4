import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AccountingError, settleClose } from '../../shared/domain/accounting.ts';
import { boundedFills } from '../../shared/domain/fills.ts';
import type { Fill } from '../../shared/domain/model.ts';

const sizeOf = (fills: readonly Fill[]) => fills.reduce((t, f) => t + f.size, 0n);
const notionalOf = (fills: readonly Fill[]) => fills.reduce((t, f) => t + f.size * f.price, 0n);

const fillArb = fc.record({
  price: fc.bigInt({ min: 1n, max: 10n ** 13n }),
  size: fc.bigInt({ min: 1n, max: 10n ** 10n }),
});

describe('boundedFills', () => {
  it('keeps at most max fills, with the size and price x size of the venue answer to the unit', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fillArb, fc.constant({ price: 5n, size: 3n })), { maxLength: 300 }),
        fc.integer({ min: 2, max: 40 }),
        (fills, max) => {
          const kept = boundedFills(fills, max);
          expect(kept.length).toBeLessThanOrEqual(max);
          if (fills.length <= max) expect(kept).toBe(fills);
          expect(sizeOf(kept)).toBe(sizeOf(fills));
          expect(notionalOf(kept)).toBe(notionalOf(fills));
          // Every price within the answer's, so within the order's limit.
          const prices = fills.map((f) => f.price);
          for (const f of kept) {
            expect(f.size).toBeGreaterThan(0n);
            expect(prices.some((p) => p <= f.price)).toBe(true);
            expect(prices.some((p) => p >= f.price)).toBe(true);
          }
          // Folding what was folded changes nothing.
          expect(boundedFills(kept, max)).toEqual(kept);
        },
      ),
    );
  });

  it('settles a close exactly as the fills it stands for', () => {
    fc.assert(
      fc.property(
        fc.array(fillArb, { minLength: 1, maxLength: 200 }),
        fc.constantFrom('LONG', 'SHORT'),
        fc.bigInt({ min: 1n, max: 10n ** 13n }),
        fc.bigInt({ min: -(10n ** 12n), max: 10n ** 12n }),
        (fills, side, entryPrice, collateral) => {
          const position = { side, size: sizeOf(fills) + 1n, entryPrice, collateral } as const;
          expect(settleClose(position, boundedFills(fills, 10), 12_500n)).toEqual(
            settleClose(position, fills, 12_500n),
          );
        },
      ),
    );
  });

  it('merges neighbours at one price before folding: 10,000 trades on 3 levels stay 3 fills', () => {
    const trades = Array.from({ length: 10_000 }, (_, i) => ({
      price: 100n - BigInt(i % 3 === 0 ? 0 : i < 5_000 ? 1 : 2),
      size: 7n,
    }));
    const sorted = [...trades].sort((a, b) => Number(b.price - a.price));
    expect(boundedFills(sorted, 100)).toEqual([
      { price: 100n, size: 7n * 3_334n },
      { price: 99n, size: sizeOf(sorted.filter((f) => f.price === 99n)) },
      { price: 98n, size: sizeOf(sorted.filter((f) => f.price === 98n)) },
    ]);
  });

  it('refuses fills with a cost (they settle by it, not price x size) and a bound under 2', () => {
    const many = Array.from({ length: 5 }, (_, i) => ({ price: BigInt(i + 1), size: 1n }));
    expect(() => boundedFills([...many, { price: 9n, size: 1n, cost: 9n }], 3)).toThrow(AccountingError);
    expect(() => boundedFills(many, 1)).toThrow('accounting/bad-fill: at most 1 fills: keep at least 2');
    // Found by mutation testing (npm run mutate, session 49): an empty or free fill among many.
    expect(() => boundedFills([...many, { price: 9n, size: 0n }], 3)).toThrow(
      'accounting/bad-fill: fill 5: size 0 and price 9 must be > 0, and no cost',
    );
    expect(() => boundedFills([...many, { price: 0n, size: 1n }], 3)).toThrow(
      'accounting/bad-fill: fill 5: size 1 and price 0 must be > 0, and no cost',
    );
  });

  it('folds at the edges (worked examples): exactly max once merged, a fold at one price, a fold over two', () => {
    const at = (...prices: bigint[]) => prices.map((price) => ({ price, size: 1n }));
    // 1, 1, 2, 4 merge to 3 fills: max 3 keeps them.
    expect(boundedFills(at(1n, 1n, 2n, 4n), 3)).toEqual([
      { price: 1n, size: 2n },
      { price: 2n, size: 1n },
      { price: 4n, size: 1n },
    ]);
    // 2, 3, 4 fold to size 3, notional 9: all at 3, no empty fill at 4.
    expect(boundedFills(at(1n, 2n, 3n, 4n), 3)).toEqual([
      { price: 1n, size: 1n },
      { price: 3n, size: 3n },
    ]);
    // 2, 3, 5: notional 10 = 2 at 3 and 1 at 4.
    expect(boundedFills(at(1n, 2n, 3n, 5n), 3)).toEqual([
      { price: 1n, size: 1n },
      { price: 3n, size: 2n },
      { price: 4n, size: 1n },
    ]);
  });
});
