import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type AuctionStepInput,
  accepts,
  ClearingError,
  type ClearingReason,
  type ClearingResult,
  clearAuctionStep,
  type ProviderBid,
} from '../../shared/domain/clearing.ts';
import {
  base,
  div,
  minBig,
  NOTIONAL_TO_QUOTE,
  notionalQuote,
  ppm,
  price,
  usd,
} from '../../shared/domain/units.ts';

const bid = (id: string, capital: string, maxDiscount: string, maxLot: string): ProviderBid => ({
  id,
  capital: usd(capital),
  maxDiscountPpm: ppm(maxDiscount),
  maxLot: base(maxLot),
});
const RICH = bid('rich', '1000000000', '0.1', '1000');
const P1000 = price('1000');

const step = (over: Partial<AuctionStepInput>): AuctionStepInput => ({
  direction: 'SELL',
  remainingLot: base('10'),
  price: P1000,
  mark: P1000,
  debt: usd('1000000000'),
  dust: base('0.001'),
  providers: [RICH],
  ...over,
});

const sizes = (r: ClearingResult) => r.fills.map((f) => [f.providerId, f.size]);

function reasonOf(fn: () => unknown): ClearingReason | undefined {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ClearingError);
    return (e as ClearingError).reason;
  }
  return undefined;
}

describe('clearAuctionStep: the debt cap (SELL never collects more than debt, Maker tab)', () => {
  const cases: Record<
    string,
    { debt: string; filled: string; collected: string; remaining: string; covered: boolean }
  > = {
    'under the debt: the whole lot sells': {
      debt: '10000.000001',
      filled: '10',
      collected: '10000',
      remaining: '0',
      covered: false,
    },
    'at the debt: the whole lot sells, debt covered': {
      debt: '10000',
      filled: '10',
      collected: '10000',
      remaining: '0',
      covered: true,
    },
    'just over (lot worth more than debt): stops at the debt': {
      debt: '9999',
      filled: '9.999',
      collected: '9999',
      remaining: '0.001',
      covered: true,
    },
    'well over: half the lot goes back': {
      debt: '5000',
      filled: '5',
      collected: '5000',
      remaining: '5',
      covered: true,
    },
    'covered with a returned lot below dust (Maker: dust does not apply once tab is paid)': {
      debt: '9999.5',
      filled: '9.9995',
      collected: '9999.5',
      remaining: '0.0005',
      covered: true,
    },
    'zero debt: nothing sells': { debt: '0', filled: '0', collected: '0', remaining: '10', covered: true },
  };
  for (const [name, c] of Object.entries(cases)) {
    it(name, () => {
      const r = clearAuctionStep(step({ debt: usd(c.debt) }));
      expect(r.filledSize).toBe(base(c.filled));
      expect(r.collected).toBe(usd(c.collected));
      expect(r.remainingLot).toBe(base(c.remaining));
      expect(r.debtCovered).toBe(c.covered);
    });
  }

  it('sizes the last slice so its rounded-up cost still fits the debt', () => {
    const r = clearAuctionStep(step({ price: price('3'), mark: price('3'), debt: usd('10') }));
    expect(r.filledSize).toBe(333_333_333n); // floor(10 / 3 * 1e8)
    expect(r.collected).toBe(usd('10')); // ceil(9.99999999) = 10.000000 <= debt
    expect(r.debtCovered).toBe(true);
  });

  it('shares the debt across providers in order', () => {
    const r = clearAuctionStep(
      step({ debt: usd('5000'), providers: [RICH, bid('a', '3000', '0.01', '100')] }),
    );
    expect(sizes(r)).toEqual([
      ['a', base('3')],
      ['rich', base('2')],
    ]);
    expect(r.collected).toBe(usd('5000'));
  });

  it('ignores the debt for a BUY lot', () => {
    const r = clearAuctionStep(step({ direction: 'BUY', debt: 0n }));
    expect(r.filledSize).toBe(base('10'));
    expect(r.debtCovered).toBe(false);
  });
});

describe("clearAuctionStep: a provider's terms (SELL: price >= mark(1 - d); BUY: price <= mark(1 + d))", () => {
  const five = bid('p', '1000000', '0.05', '100');
  const cases: Record<string, { dir: 'BUY' | 'SELL'; price: string; fills: boolean }> = {
    'SELL above the limit': { dir: 'SELL', price: '951', fills: true },
    'SELL at the limit': { dir: 'SELL', price: '950', fills: true },
    'SELL beyond the limit': { dir: 'SELL', price: '949.99999999', fills: false },
    'BUY under the limit': { dir: 'BUY', price: '1049.99999999', fills: true },
    'BUY at the limit': { dir: 'BUY', price: '1050', fills: true },
    'BUY beyond the limit': { dir: 'BUY', price: '1050.00000001', fills: false },
  };
  for (const [name, c] of Object.entries(cases)) {
    it(name, () => {
      const r = clearAuctionStep(step({ direction: c.dir, price: price(c.price), providers: [five] }));
      expect(r.filledSize).toBe(c.fills ? base('10') : 0n);
      expect(r.fills.every((f) => f.price === price(c.price))).toBe(true);
    });
  }
});

describe('clearAuctionStep: order, caps and rounding', () => {
  it('fills best terms first (smallest discount), then larger capital, then id', () => {
    const providers = [
      bid('b', '1000', '0.01', '0.5'),
      bid('a', '1000', '0.01', '0.5'),
      bid('c', '5000', '0.01', '0.5'),
      bid('d', '100', '0.005', '0.05'),
    ];
    const r = clearAuctionStep(step({ providers, dust: 0n }));
    expect(r.fills.map((f) => f.providerId)).toEqual(['d', 'c', 'a', 'b']);
  });

  it("limits each fill by the provider's maxLot and by its capital, rounded down", () => {
    const r = clearAuctionStep(
      step({
        remainingLot: base('100'),
        price: price('3'),
        mark: price('3'),
        providers: [bid('lot', '1000', '0', '1'), bid('cap', '100', '0.1', '100')],
      }),
    );
    expect(sizes(r)).toEqual([
      ['lot', base('1')],
      ['cap', 3_333_333_333n],
    ]);
    // ceil(33.33333333 * 3) = ceil(99.99999999) = 100.000000: exactly the capital, never more.
    expect(r.fills[1]?.cost).toBe(usd('100'));
  });

  it('rounds cost up for what a provider pays (SELL), down for what the backstop pays (BUY)', () => {
    const tiny = { remainingLot: 1n, price: price('1.5'), mark: price('1.5'), dust: 0n };
    expect(clearAuctionStep(step({ ...tiny, direction: 'SELL' })).fills[0]?.cost).toBe(1n);
    expect(clearAuctionStep(step({ ...tiny, direction: 'BUY' })).fills[0]?.cost).toBe(0n);
  });

  it('skips providers with nothing to give', () => {
    const r = clearAuctionStep(
      step({ providers: [bid('empty', '0', '0', '10'), bid('nolot', '1000', '0', '0')] }),
    );
    expect(r.fills).toEqual([]);
    expect(r.remainingLot).toBe(base('10'));
  });
});

describe("clearAuctionStep: dust (Maker's chost): never leave 0 < remaining < dust", () => {
  const cases: Record<
    string,
    { lot: string; providers: ProviderBid[]; fills: [string, string][]; remaining: string }
  > = {
    'providers take the whole lot': {
      lot: '10',
      providers: [bid('a', '1000000', '0', '8'), bid('b', '1000000', '0', '5')],
      fills: [
        ['a', '8'],
        ['b', '2'],
      ],
      remaining: '0',
    },
    'greedy leaves 1 < dust 3: the last fills are trimmed to leave exactly dust': {
      lot: '10',
      providers: [bid('a', '1000000', '0', '8'), bid('b', '1000000', '0', '1')],
      fills: [['a', '7']],
      remaining: '3',
    },
    'at dust: kept': {
      lot: '10',
      providers: [bid('a', '1000000', '0', '7')],
      fills: [['a', '7']],
      remaining: '3',
    },
    'just under dust: trimmed back to dust': {
      lot: '10',
      providers: [bid('a', '1000000', '0', '7.5')],
      fills: [['a', '7']],
      remaining: '3',
    },
    'over dust: untouched': {
      lot: '10',
      providers: [bid('a', '1000000', '0', '6')],
      fills: [['a', '6']],
      remaining: '4',
    },
    'a lot below dust is taken whole': {
      lot: '2',
      providers: [bid('a', '1000000', '0', '1'), bid('b', '1000000', '0', '1')],
      fills: [
        ['a', '1'],
        ['b', '1'],
      ],
      remaining: '0',
    },
    'or not at all': { lot: '2', providers: [bid('a', '1000000', '0', '1')], fills: [], remaining: '2' },
  };
  for (const [name, c] of Object.entries(cases)) {
    it(name, () => {
      const r = clearAuctionStep(
        step({ remainingLot: base(c.lot), dust: base('3'), providers: c.providers }),
      );
      expect(sizes(r)).toEqual(c.fills.map(([id, s]) => [id, base(s)]));
      expect(r.remainingLot).toBe(base(c.remaining));
      expect(r.collected).toBe(r.fills.reduce((sum, f) => sum + f.cost, 0n));
    });
  }
});

describe('clearAuctionStep: bad input is refused with a reason', () => {
  const cases: Record<string, { over: Partial<AuctionStepInput>; reason: ClearingReason }> = {
    'zero price': { over: { price: 0n }, reason: 'clearing/non-positive-price' },
    'negative price': { over: { price: -1n }, reason: 'clearing/non-positive-price' },
    'zero mark': { over: { mark: 0n }, reason: 'clearing/non-positive-mark' },
    'negative lot': { over: { remainingLot: -1n }, reason: 'clearing/invalid-amount' },
    'negative debt': { over: { debt: -1n }, reason: 'clearing/invalid-amount' },
    'negative dust': { over: { dust: -1n }, reason: 'clearing/invalid-amount' },
    'negative capital': {
      over: { providers: [{ ...RICH, capital: -1n }] },
      reason: 'clearing/invalid-provider',
    },
    'negative discount': {
      over: { providers: [{ ...RICH, maxDiscountPpm: -1n }] },
      reason: 'clearing/invalid-provider',
    },
    'empty id': { over: { providers: [{ ...RICH, id: '' }] }, reason: 'clearing/invalid-provider' },
    'duplicate id': { over: { providers: [RICH, RICH] }, reason: 'clearing/duplicate-provider' },
  };
  for (const [name, c] of Object.entries(cases)) {
    it(name, () => expect(reasonOf(() => clearAuctionStep(step(c.over)))).toBe(c.reason));
  }
});

const sameTerms = (p: ProviderBid): ProviderBid => ({ ...p, capital: 10n ** 12n, maxDiscountPpm: 0n });

describe('clearAuctionStep: properties', () => {
  const providerArb = fc.record({
    id: fc.stringMatching(/^[a-z]{1,3}$/),
    // Small pools of values make ties on terms common, so the tie-breaks are exercised.
    capital: fc.oneof(
      fc.constantFrom(10n ** 9n, 10n ** 12n),
      fc.bigInt({ min: 0n, max: 10n ** 9n }),
      fc.bigInt({ min: 0n, max: 10n ** 13n }),
    ),
    maxDiscountPpm: fc.oneof(fc.constantFrom(0n, 10_000n, 50_000n), fc.bigInt({ min: 0n, max: 1_200_000n })),
    maxLot: fc.oneof(fc.bigInt({ min: 0n, max: 10n ** 6n }), fc.bigInt({ min: 0n, max: 10n ** 11n })),
  });
  const inputArb: fc.Arbitrary<AuctionStepInput> = fc
    .record({
      direction: fc.constantFrom('BUY' as const, 'SELL' as const),
      remainingLot: fc.oneof(fc.bigInt({ min: 0n, max: 10n ** 6n }), fc.bigInt({ min: 0n, max: 10n ** 11n })),
      mark: fc.bigInt({ min: 1n, max: 10n ** 13n }),
      priceRatioPpm: fc.bigInt({ min: 1n, max: 2_000_000n }),
      debt: fc.oneof(fc.bigInt({ min: 0n, max: 10n ** 9n }), fc.bigInt({ min: 0n, max: 10n ** 15n })),
      dust: fc.oneof(fc.constant(0n), fc.bigInt({ min: 0n, max: 10n ** 6n })),
      providers: fc.uniqueArray(providerArb, { selector: (p) => p.id, maxLength: 8 }),
    })
    .map(({ priceRatioPpm, ...rest }) => ({
      ...rest,
      price: div(rest.mark * priceRatioPpm, 1_000_000n, 'ceil'),
    }));

  it('respects the lot, each maxLot, capital and terms; SELL collects at most debt; no dust left', () => {
    fc.assert(
      fc.property(inputArb, (input) => {
        const r = clearAuctionStep(input);
        const byId = new Map(input.providers.map((p) => [p.id, p]));
        const rounding = input.direction === 'SELL' ? 'ceil' : 'floor';
        expect(r.filledSize).toBe(r.fills.reduce((s, f) => s + f.size, 0n));
        expect(r.filledSize <= input.remainingLot).toBe(true);
        expect(r.remainingLot).toBe(input.remainingLot - r.filledSize);
        expect(r.collected).toBe(r.fills.reduce((s, f) => s + f.cost, 0n));
        expect(new Set(r.fills.map((f) => f.providerId)).size).toBe(r.fills.length);
        for (const f of r.fills) {
          const p = byId.get(f.providerId)!;
          expect(f.size > 0n && f.size <= p.maxLot).toBe(true);
          expect(f.cost).toBe(notionalQuote(f.size, input.price, rounding));
          expect(f.cost <= p.capital).toBe(true);
          expect(f.price).toBe(input.price);
          expect(accepts(p, input.direction, f.price, input.mark)).toBe(true);
        }
        if (input.direction === 'SELL') expect(r.collected <= input.debt).toBe(true);
        // Covered leaves less than one base unit's price of debt unpaid.
        if (r.debtCovered) expect((input.debt - r.collected) * NOTIONAL_TO_QUOTE < input.price).toBe(true);
        else expect(r.debtCovered).toBe(false);
        const untouchedSmallLot = r.filledSize === 0n && input.remainingLot < input.dust;
        expect(
          r.remainingLot === 0n || r.remainingLot >= input.dust || r.debtCovered || untouchedSmallLot,
        ).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('is deterministic whatever the order of the providers', () => {
    // Half the cases give every provider the same terms, so only the id breaks the tie.
    const tiedOrNot = fc
      .tuple(inputArb, fc.boolean())
      .map(([input, tie]) => (tie ? { ...input, providers: input.providers.map(sameTerms) } : input));
    const withPermutation = tiedOrNot.chain((input) =>
      fc
        .shuffledSubarray([...input.providers], {
          minLength: input.providers.length,
          maxLength: input.providers.length,
        })
        .map((shuffled) => [input, { ...input, providers: shuffled }] as const),
    );
    fc.assert(
      fc.property(withPermutation, ([a, b]) => {
        expect(clearAuctionStep(b)).toEqual(clearAuctionStep(a));
      }),
      { numRuns: 300 },
    );
  });

  it('fills all it can when neither dust nor debt binds: min(lot, sum of eligible capacity)', () => {
    fc.assert(
      fc.property(inputArb, (generated) => {
        const input = { ...generated, direction: 'BUY' as const, dust: 0n };
        const capacity = input.providers
          .filter((p) => accepts(p, 'BUY', input.price, input.mark))
          .reduce((s, p) => {
            const byCapital = div(p.capital * NOTIONAL_TO_QUOTE, input.price, 'floor');
            return s + minBig(p.maxLot, byCapital);
          }, 0n);
        const want = minBig(input.remainingLot, capacity);
        expect(clearAuctionStep(input).filledSize).toBe(want);
      }),
      { numRuns: 300 },
    );
  });
});
