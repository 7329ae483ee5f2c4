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
  PPM_SCALE,
  type PriceE8,
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

/**
 * Unless a test sets the mark, it sits so the price has walked past every bid used here: SELL price = 0.8 mark
 * (reaches every bid with d <= 20%), BUY price = 1.25 mark (d <= 25%). The terms then do not bind by accident.
 */
const pastEveryBid = (direction: 'BUY' | 'SELL', p: PriceE8): PriceE8 =>
  direction === 'SELL' ? div(p * 5n, 4n, 'ceil') : div(p * 4n, 5n, 'floor');

const step = (over: Partial<AuctionStepInput>): AuctionStepInput => {
  const direction = over.direction ?? 'SELL';
  const p = over.price ?? P1000;
  return {
    direction,
    remainingLot: base('10'),
    price: p,
    mark: pastEveryBid(direction, p),
    debt: usd('1000000000'),
    dust: base('0.001'),
    providers: [RICH],
    ...over,
  };
};

/**
 * Independent oracle for `accepts`: the bid rounded to a whole tick toward the side it can be reached from
 * (SELL floor, BUY ceil); an integer price reaches the exact bid iff it reaches that tick.
 */
function reached(p: ProviderBid, direction: 'BUY' | 'SELL', auctionPrice: PriceE8, mark: PriceE8): boolean {
  return direction === 'SELL'
    ? auctionPrice <= div(mark * (PPM_SCALE - p.maxDiscountPpm), PPM_SCALE, 'floor')
    : auctionPrice >= div(mark * (PPM_SCALE + p.maxDiscountPpm), PPM_SCALE, 'ceil');
}

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
  // Price 1000 against a mark of 1250: 20% down, below RICH's bid at 1125, so only the debt binds.
  it('the default SELL step is below the bid', () => {
    expect(step({}).mark).toBe(price('1250'));
    expect(reached(RICH, 'SELL', P1000, price('1250'))).toBe(true);
  });

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

  it('caps at the debt with the price exactly at the bid, and a tick above it sells nothing', () => {
    // d = 20% against mark 1250: the bid is exactly 1000.
    const edge = bid('edge', '1000000000', '0.2', '1000');
    const at = clearAuctionStep(step({ debt: usd('5000'), providers: [edge] }));
    expect(sizes(at)).toEqual([['edge', base('5')]]);
    expect(at.collected).toBe(usd('5000'));
    expect(at.remainingLot).toBe(base('5'));
    expect(at.debtCovered).toBe(true);
    const above = price('1000.00000001');
    const none = clearAuctionStep(
      step({ price: above, mark: price('1250'), debt: usd('5000'), providers: [edge] }),
    );
    expect(none.fills).toEqual([]);
    expect(none.debtCovered).toBe(false);
  });

  it('sizes the last slice so its rounded-up cost still fits the debt', () => {
    const r = clearAuctionStep(step({ price: price('3'), debt: usd('10') }));
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

describe("clearAuctionStep: a provider's bid (SELL: takes once price <= mark(1 - d); BUY: price >= mark(1 + d))", () => {
  // mark 1000, d = 5%: the SELL bid is 950, the BUY bid 1050. Off-tick: mark 1000.00000001 puts the SELL bid at
  // 950.0000000095 and the BUY bid at 1050.0000000105, between two ticks, so no rounding of the bid may creep in.
  const OFF = '1000.00000001';
  const cases: Record<
    string,
    { dir: 'BUY' | 'SELL'; price: string; fills: boolean; mark?: string; d?: string }
  > = {
    'SELL at the mark: above the bid, not reached yet': { dir: 'SELL', price: '1000', fills: false },
    'SELL a tick above the bid': { dir: 'SELL', price: '950.00000001', fills: false },
    'SELL at the bid': { dir: 'SELL', price: '950', fills: true },
    'SELL a tick below the bid': { dir: 'SELL', price: '949.99999999', fills: true },
    'SELL far below the bid: takes at the auction price': { dir: 'SELL', price: '500', fills: true },
    'SELL off-tick bid: the tick above it is not reached': {
      dir: 'SELL',
      price: '950.00000001',
      mark: OFF,
      fills: false,
    },
    'SELL off-tick bid: the tick below it is': { dir: 'SELL', price: '950', mark: OFF, fills: true },
    'SELL d = 0 bids the mark: takes at the mark': { dir: 'SELL', price: '1000', d: '0', fills: true },
    'SELL d = 0: not a tick above the mark': { dir: 'SELL', price: '1000.00000001', d: '0', fills: false },
    'SELL d = 100% bids zero: never reached': { dir: 'SELL', price: '0.00000001', d: '1', fills: false },
    'BUY at the mark: below the bid, not reached yet': { dir: 'BUY', price: '1000', fills: false },
    'BUY a tick below the bid': { dir: 'BUY', price: '1049.99999999', fills: false },
    'BUY at the bid': { dir: 'BUY', price: '1050', fills: true },
    'BUY a tick above the bid': { dir: 'BUY', price: '1050.00000001', fills: true },
    'BUY far above the bid: takes at the auction price': { dir: 'BUY', price: '2000', fills: true },
    'BUY off-tick bid: the tick below it is not reached': {
      dir: 'BUY',
      price: '1050.00000001',
      mark: OFF,
      fills: false,
    },
    'BUY off-tick bid: the tick above it is': { dir: 'BUY', price: '1050.00000002', mark: OFF, fills: true },
    'BUY d = 0 bids the mark: takes at the mark': { dir: 'BUY', price: '1000', d: '0', fills: true },
    'BUY d = 0: not a tick below the mark': { dir: 'BUY', price: '999.99999999', d: '0', fills: false },
  };
  for (const [name, c] of Object.entries(cases)) {
    it(name, () => {
      const provider = bid('p', '1000000', c.d ?? '0.05', '100');
      const at = price(c.price);
      const mark = price(c.mark ?? '1000');
      expect(accepts(provider, c.dir, at, mark)).toBe(c.fills);
      expect(reached(provider, c.dir, at, mark)).toBe(c.fills);
      const r = clearAuctionStep(step({ direction: c.dir, price: at, mark, providers: [provider] }));
      expect(r.filledSize).toBe(c.fills ? base('10') : 0n);
      expect(r.fills.map((f) => f.price)).toEqual(c.fills ? [at] : []);
      if (c.fills)
        expect(r.collected).toBe(notionalQuote(base('10'), at, c.dir === 'SELL' ? 'ceil' : 'floor'));
    });
  }

  // near: d = 3%, far: d = 5%; each takes up to 4 of the 10. The auction reaches the nearer bid first.
  const book = [bid('far', '1000000', '0.05', '4'), bid('near', '1000000', '0.03', '4')];
  const walk: Record<string, { dir: 'BUY' | 'SELL'; price: string; fills: string[] }> = {
    'SELL 980: no bid reached': { dir: 'SELL', price: '980', fills: [] },
    'SELL 970: the near bid': { dir: 'SELL', price: '970', fills: ['near'] },
    'SELL 960: still only the near bid': { dir: 'SELL', price: '960', fills: ['near'] },
    'SELL 950: both, near first': { dir: 'SELL', price: '950', fills: ['near', 'far'] },
    'BUY 1020: no bid reached': { dir: 'BUY', price: '1020', fills: [] },
    'BUY 1030: the near bid': { dir: 'BUY', price: '1030', fills: ['near'] },
    'BUY 1040: still only the near bid': { dir: 'BUY', price: '1040', fills: ['near'] },
    'BUY 1050: both, near first': { dir: 'BUY', price: '1050', fills: ['near', 'far'] },
  };
  for (const [name, c] of Object.entries(walk)) {
    it(`walks the book: ${name}`, () => {
      const r = clearAuctionStep(
        step({ direction: c.dir, price: price(c.price), mark: P1000, providers: book, dust: 0n }),
      );
      expect(sizes(r)).toEqual(c.fills.map((id) => [id, base('4')]));
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
    const tiny = { remainingLot: 1n, price: price('1.5'), dust: 0n };
    expect(clearAuctionStep(step({ ...tiny, direction: 'SELL' })).fills[0]?.cost).toBe(1n);
    expect(clearAuctionStep(step({ ...tiny, direction: 'BUY' })).fills[0]?.cost).toBe(0n);
  });

  it('skips providers with nothing to give', () => {
    const providers = [bid('empty', '0', '0', '10'), bid('nolot', '1000', '0', '0')];
    const input = step({ providers });
    // Both bids are reached: only capital and maxLot stop them.
    expect(providers.every((p) => accepts(p, 'SELL', input.price, input.mark))).toBe(true);
    const r = clearAuctionStep(input);
    expect(r.fills).toEqual([]);
    expect(r.remainingLot).toBe(base('10'));
  });

  it('fills at most maxFills providers, in order of best terms, and says when more would have taken the rest', () => {
    const providers = Array.from({ length: 5 }, (_, i) => bid(`lp-${i}`, '1000000', '0.01', '1'));
    const capped = clearAuctionStep(step({ providers, remainingLot: base('4'), maxFills: 3 }));
    expect(capped.fills.map((f) => f.providerId)).toEqual(['lp-0', 'lp-1', 'lp-2']);
    expect(capped.remainingLot).toBe(base('1'));
    expect(capped.fillsCapped).toBe(true);
    // The cap reached with nothing left to fill, or only crumbs left to bid: not capped.
    expect(clearAuctionStep(step({ providers, remainingLot: base('3'), maxFills: 3 })).fillsCapped).toBe(
      false,
    );
    const crumbs = [...providers.slice(0, 3), bid('crumb', '0.000001', '0', '1')];
    const left = clearAuctionStep(step({ providers: crumbs, remainingLot: base('4'), maxFills: 3 }));
    expect(left.remainingLot).toBe(base('1'));
    expect(left.fillsCapped).toBe(false);
    // A provider with nothing to take (maxLot 0, no capital) never counts towards the cap, even without dust.
    const withdrawn = Array.from({ length: 3 }, (_, i) => bid(`gone-${i}`, '1000000', '0', '0'));
    const buy = clearAuctionStep({
      direction: 'BUY',
      remainingLot: base('1'),
      price: price('1250'),
      mark: P1000,
      debt: 0n,
      dust: 0n,
      providers: [...withdrawn, bid('real', '1000000', '0.01', '100')],
      maxFills: 3,
    });
    expect(buy.fills.map((f) => f.providerId)).toEqual(['real']);
    expect(buy.fillsCapped).toBe(false);
    // Without a cap every bid reached fills.
    const all = clearAuctionStep(step({ providers, remainingLot: base('4') }));
    expect(all.fills).toHaveLength(4);
    expect(all.fillsCapped).toBe(false);
  });
});

describe("clearAuctionStep: dust (Maker's chost): never leave 0 < remaining < dust", () => {
  // Price 1000, mark 1250: below every d = 0 bid (1250), so only dust and maxLot shape the fills.
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
    'a lot below dust is taken whole, by one provider': {
      lot: '2',
      providers: [bid('a', '1000000', '0', '1'), bid('b', '1000000', '0', '2')],
      fills: [['b', '2']],
      remaining: '0',
    },
    'not in crumbs by several': {
      lot: '2',
      providers: [bid('a', '1000000', '0', '1'), bid('b', '1000000', '0', '1')],
      fills: [],
      remaining: '2',
    },
    'a provider with room for less than dust takes nothing of a larger lot': {
      lot: '10',
      providers: [bid('a', '1000000', '0', '2'), bid('b', '1000000', '0', '6')],
      fills: [['b', '6']],
      remaining: '4',
    },
    'the whole rest may be below dust': {
      lot: '10',
      providers: [bid('a', '1000000', '0', '8'), bid('b', '1000000', '0', '2')],
      fills: [
        ['a', '8'],
        ['b', '2'],
      ],
      remaining: '0',
    },
    'a trim that would leave a fill below dust takes it back whole': {
      lot: '10',
      providers: [bid('a', '1000000', '0', '5'), bid('b', '1000000', '0', '4')],
      fills: [['a', '5']],
      remaining: '5',
    },
    'or not at all': { lot: '2', providers: [bid('a', '1000000', '0', '1')], fills: [], remaining: '2' },
    'a bid not yet reached does not help take it whole (b bids 625)': {
      lot: '2',
      providers: [bid('a', '1000000', '0', '1'), bid('b', '1000000', '0.5', '1')],
      fills: [],
      remaining: '2',
    },
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
    'zero maxFills': { over: { maxFills: 0 }, reason: 'clearing/invalid-amount' },
    'fractional maxFills': { over: { maxFills: 1.5 }, reason: 'clearing/invalid-amount' },
  };
  for (const [name, c] of Object.entries(cases)) {
    it(name, () => expect(reasonOf(() => clearAuctionStep(step(c.over)))).toBe(c.reason));
  }
});

const sameTerms = (p: ProviderBid): ProviderBid => ({ ...p, capital: 10n ** 12n, maxDiscountPpm: 0n });

/** Best terms first: smaller d (the bid the auction reaches first), then larger capital, then id. */
const betterOrEqual = (a: ProviderBid, b: ProviderBid): boolean =>
  a.maxDiscountPpm !== b.maxDiscountPpm
    ? a.maxDiscountPpm < b.maxDiscountPpm
    : a.capital !== b.capital
      ? a.capital > b.capital
      : a.id <= b.id;

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
  // Prices from just above 0 to 2x the mark: each side of every bid, SELL and BUY, is well covered.
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

  it('respects the lot, each maxLot, capital and bid; SELL collects at most debt; no dust left', () => {
    const runsWithFills = { BUY: 0, SELL: 0 };
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
        // No fill at a price outside a provider's terms, by the independent oracle.
        const filled = new Set(r.fills.map((f) => f.providerId));
        for (const p of input.providers) {
          if (!reached(p, input.direction, input.price, input.mark)) expect(filled.has(p.id)).toBe(false);
        }
        if (input.direction === 'SELL') expect(r.collected <= input.debt).toBe(true);
        // Covered leaves less than one base unit's price of debt unpaid.
        if (r.debtCovered) expect((input.debt - r.collected) * NOTIONAL_TO_QUOTE < input.price).toBe(true);
        if (input.direction === 'BUY') expect(r.debtCovered).toBe(false);
        // No crumbs: a fill below dust takes the whole rest of the lot or pays off the debt, and is the last.
        r.fills.forEach((f, i) => {
          if (f.size >= input.dust) return;
          expect(i).toBe(r.fills.length - 1);
          expect(r.remainingLot === 0n || r.debtCovered).toBe(true);
        });
        const untouchedSmallLot = r.filledSize === 0n && input.remainingLot < input.dust;
        expect(
          r.remainingLot === 0n || r.remainingLot >= input.dust || r.debtCovered || untouchedSmallLot,
        ).toBe(true);
        if (r.fills.length > 0) runsWithFills[input.direction]++;
      }),
      { numRuns: 500 },
    );
    // Not vacuous: both sides of the book actually fill in a good share of the runs.
    expect(runsWithFills.SELL).toBeGreaterThan(25);
    expect(runsWithFills.BUY).toBeGreaterThan(25);
  });

  it('fills in order of best terms: smaller d (bid reached first), then larger capital, then id', () => {
    fc.assert(
      fc.property(inputArb, (input) => {
        const byId = new Map(input.providers.map((p) => [p.id, p]));
        const filled = clearAuctionStep(input).fills.map((f) => byId.get(f.providerId)!);
        for (let i = 1; i < filled.length; i++) expect(betterOrEqual(filled[i - 1]!, filled[i]!)).toBe(true);
      }),
      { numRuns: 300 },
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

  it('fills all it can when neither dust nor debt binds: min(lot, capacity of the bids reached)', () => {
    fc.assert(
      fc.property(inputArb, (generated) => {
        // A debt no lot here can reach, so for SELL only the bids, capital and maxLot bind.
        const input = { ...generated, dust: 0n, debt: 10n ** 40n };
        const capacity = input.providers
          .filter((p) => reached(p, input.direction, input.price, input.mark))
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

  it('accepts matches the bid rounded to a tick, and once reached a bid stays reached as the auction walks on', () => {
    fc.assert(
      fc.property(
        providerArb,
        fc.constantFrom('BUY' as const, 'SELL' as const),
        fc.bigInt({ min: 1n, max: 10n ** 13n }),
        fc.bigInt({ min: 2n, max: 2n * 10n ** 13n }),
        (p, direction, mark, at) => {
          expect(accepts(p, direction, at, mark)).toBe(reached(p, direction, at, mark));
          // SELL walks down, BUY up: the next tick on is reached whenever this one is.
          const next = direction === 'SELL' ? at - 1n : at + 1n;
          if (accepts(p, direction, at, mark)) expect(accepts(p, direction, next, mark)).toBe(true);
        },
      ),
      { numRuns: 500 },
    );
  });
});
