import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type AuctionStepInput,
  accepts,
  ClearingError,
  type ClearingReason,
  type ClearingResult,
  clearAuctionStep,
  fillLeavingWholeLots,
  type ProviderBid,
  smallestFill,
} from '../../shared/domain/clearing.ts';
import {
  base,
  div,
  maxBig,
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

/**
 * Independent oracle for a fill's price: the provider's own bid at the mark, rounded to a whole tick in the fund's
 * favour (SELL up: the provider pays less than 1e-8 quote per base unit above its exact bid; BUY down).
 */
const ownBid = (p: ProviderBid, direction: 'BUY' | 'SELL', mark: PriceE8): PriceE8 =>
  direction === 'SELL'
    ? div(mark * (PPM_SCALE - p.maxDiscountPpm), PPM_SCALE, 'ceil')
    : div(mark * (PPM_SCALE + p.maxDiscountPpm), PPM_SCALE, 'floor');

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
  // Price 1000 against a mark of 1250: 20% down, exactly AT_PRICE's bid (it fills at 1000), so only the debt binds.
  const AT_PRICE = bid('at-price', '1000000000', '0.2', '1000');
  it('the default SELL step reaches the bid, which is the price', () => {
    expect(step({}).mark).toBe(price('1250'));
    expect(reached(AT_PRICE, 'SELL', P1000, price('1250'))).toBe(true);
    expect(reached(AT_PRICE, 'SELL', P1000 + 1n, price('1250'))).toBe(false);
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
      const r = clearAuctionStep(step({ debt: usd(c.debt), providers: [AT_PRICE] }));
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
    const r = clearAuctionStep(step({ price: price('3'), debt: usd('10'), providers: [AT_PRICE] }));
    expect(r.filledSize).toBe(333_333_333n); // floor(10 / 3 * 1e8)
    expect(r.collected).toBe(usd('10')); // ceil(9.99999999) = 10.000000 <= debt
    expect(r.debtCovered).toBe(true);
  });

  it('shares the debt across providers in order', () => {
    // Same bid and capital: 'a' before 'at-price' by id (across bids at different prices: the pay-as-bid tests).
    const r = clearAuctionStep(
      step({ debt: usd('5000'), providers: [AT_PRICE, bid('a', '1000000000', '0.2', '3')] }),
    );
    expect(sizes(r)).toEqual([
      ['a', base('3')],
      ['at-price', base('2')],
    ]);
    expect(r.collected).toBe(usd('5000'));
  });

  // Found by mutation testing (npm run mutate, session 49): a step no bid accepts had no domain test of its verdict.
  it('a step no bid accepts: covered when the debt is paid, or buys no unit at the price of a lot left', () => {
    // Price 1000 = mark: RICH bids 900, not reached.
    const none = (over: Partial<AuctionStepInput>) => clearAuctionStep(step({ mark: P1000, ...over }));
    const nothing = { fills: [], filledSize: 0n, collected: 0n, fillsCapped: false };
    expect(none({ debt: 0n })).toEqual({ ...nothing, remainingLot: base('10'), debtCovered: true });
    expect(none({ debt: 0n, remainingLot: 0n }).debtCovered).toBe(true);
    // 0.000001 USD buys no unit at 1000 (0.00001 a unit): covered while a lot is left, not without one.
    expect(none({ debt: 1n }).debtCovered).toBe(true);
    expect(none({ debt: 1n, remainingLot: 0n }).debtCovered).toBe(false);
    expect(none({}).debtCovered).toBe(false);
    expect(none({ direction: 'BUY', debt: 0n, price: P1000 }).debtCovered).toBe(false);
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
    'SELL far below the bid: fills at its bid': { dir: 'SELL', price: '500', fills: true },
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
    'BUY far above the bid: fills at its bid': { dir: 'BUY', price: '2000', fills: true },
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
      // At its own bid (rounded in the fund's favour), wherever the auction's price is past it.
      const own = ownBid(provider, c.dir, mark);
      expect(r.fills.map((f) => f.price)).toEqual(c.fills ? [own] : []);
      if (c.fills)
        expect(r.collected).toBe(notionalQuote(base('10'), own, c.dir === 'SELL' ? 'ceil' : 'floor'));
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
        // cap bids 3.75 x 0.8 = 3, the price: its capital buys at 3.
        providers: [bid('lot', '1000', '0', '1'), bid('cap', '100', '0.2', '100')],
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

// auction44-pay-as-bid: a standing bid is a resting order, so it fills at its own price when the auction's descending
// ask (ascending bid, BUY) crosses it, not at the auction's price however far beyond.
describe('clearAuctionStep: each bid fills at its own price (pay as bid)', () => {
  const MARK = P1000;
  it('SELL: a bid above the auction price fills at the bid, and pays for its size there', () => {
    const p = bid('p', '1000000', '0.05', '100'); // bids 950
    const r = clearAuctionStep(step({ price: price('800'), mark: MARK, providers: [p] }));
    expect(r.fills).toEqual([{ providerId: 'p', size: base('10'), price: price('950'), cost: usd('9500') }]);
    expect(r.collected).toBe(usd('9500'));
  });

  it('BUY: an ask below the auction price fills at the ask: the backstop pays the ask', () => {
    const p = bid('p', '1000000', '0.05', '100'); // asks 1050
    const r = clearAuctionStep(
      step({ direction: 'BUY', price: price('1300'), mark: MARK, debt: 0n, providers: [p] }),
    );
    expect(r.fills).toEqual([
      { providerId: 'p', size: base('10'), price: price('1050'), cost: usd('10500') },
    ]);
  });

  it('rounds an off-tick bid in the fund’s favour: SELL up, BUY down, by less than a tick', () => {
    const off = price('1000.00000001'); // bids 950.0000000095 (SELL), asks 1050.0000000105 (BUY)
    const p = bid('p', '1000000', '0.05', '100');
    const sell = clearAuctionStep(step({ price: price('900'), mark: off, providers: [p] }));
    expect(sell.fills[0]?.price).toBe(price('950.00000001'));
    const buy = clearAuctionStep(step({ direction: 'BUY', price: price('1100'), mark: off, providers: [p] }));
    expect(buy.fills[0]?.price).toBe(price('1050.00000001'));
  });

  it('a bid exactly at the auction price fills at that price', () => {
    const p = bid('p', '1000000', '0.05', '100');
    expect(clearAuctionStep(step({ price: price('950'), mark: MARK, providers: [p] })).fills[0]?.price).toBe(
      price('950'),
    );
  });

  it('walks the book: the highest bid fills first at its price, then the next at its own', () => {
    const providers = [bid('far', '1000000', '0.05', '4'), bid('near', '1000000', '0.03', '4')];
    const sell = clearAuctionStep(step({ price: price('900'), mark: MARK, providers, dust: 0n }));
    expect(sell.fills.map((f) => [f.providerId, f.price, f.cost])).toEqual([
      ['near', price('970'), usd('3880')],
      ['far', price('950'), usd('3800')],
    ]);
    expect(sell.collected).toBe(usd('7680'));
    const buy = clearAuctionStep(
      step({ direction: 'BUY', price: price('1100'), mark: MARK, providers, dust: 0n }),
    );
    expect(buy.fills.map((f) => [f.providerId, f.price])).toEqual([
      ['near', price('1030')],
      ['far', price('1050')],
    ]);
  });

  it('limits each fill by the capital at its own price, not at the lower auction price', () => {
    // 1,900 USD buys 2 at its bid of 950 (3.8 at the auction's 500).
    const p = bid('p', '1900', '0.05', '100');
    const r = clearAuctionStep(step({ price: price('500'), mark: MARK, providers: [p] }));
    expect(sizes(r)).toEqual([['p', base('2')]]);
    expect(r.fills[0]?.cost).toBe(usd('1900'));
    // BUY at its ask of 1050: 2,100 USD of capital puts up 2 (1.75 at the auction's 1200).
    const q = bid('q', '2100', '0.05', '100');
    const b = clearAuctionStep(step({ direction: 'BUY', price: price('1200'), mark: MARK, providers: [q] }));
    expect(sizes(b)).toEqual([['q', base('2')]]);
    expect(b.fills[0]?.cost).toBe(usd('2100'));
  });

  it('a provider whose capital pays for dust only below its bid takes nothing (a crumb at its price)', () => {
    // 0.9 USD: dust (0.001) costs 0.95 at its bid, though 0.5 at the auction's price.
    const poor = bid('poor', '0.9', '0.05', '100');
    const r = clearAuctionStep(step({ price: price('500'), mark: MARK, providers: [poor] }));
    expect(r.fills).toEqual([]);
  });

  it('the debt cuts the first bid it reaches at that bid’s price; a lower bid is not sold around it', () => {
    // near bids 970, far 950; a debt of 5,000 buys 5.15463917 at 970: covered, the rest goes back.
    const providers = [bid('far', '1000000', '0.05', '100'), bid('near', '1000000', '0.03', '100')];
    const r = clearAuctionStep(step({ price: price('900'), mark: MARK, providers, debt: usd('5000') }));
    expect(sizes(r)).toEqual([['near', 515_463_917n]]);
    expect(r.collected).toBe(usd('4999.999995')); // ceil(5.15463917 x 970) = 4999.9999949
    expect(r.debtCovered).toBe(true);
    expect(r.remainingLot).toBe(base('10') - 515_463_917n);
    // (debt - collected) x 1e10 = 0.000005 USD is below one base unit at 970 (0.0000097): no unit more fits.
    expect((usd('5000') - r.collected) * NOTIONAL_TO_QUOTE).toBeLessThan(price('970'));
  });

  it('shares the debt across bids in order, each at its own price', () => {
    // near takes 3 at 970 (2,910), far the rest of 5,000 at 950: 2.2 (2,090).
    const providers = [bid('far', '1000000', '0.05', '100'), bid('near', '1000000', '0.03', '3')];
    const r = clearAuctionStep(step({ price: price('900'), mark: MARK, providers, debt: usd('5000') }));
    expect(sizes(r)).toEqual([
      ['near', base('3')],
      ['far', base('2.2')],
    ]);
    expect(r.collected).toBe(usd('5000'));
    expect(r.debtCovered).toBe(true);
  });

  it('a debt below one unit at the best bid reached is covered, with no fill', () => {
    // 0.000009 USD buys no base unit at 970 (0.0000097), though it would at the auction's 800 (0.000008).
    const near = bid('near', '1000000', '0.03', '100');
    const r = clearAuctionStep(step({ price: price('800'), mark: MARK, providers: [near], debt: 9n }));
    expect(r.fills).toEqual([]);
    expect(r.debtCovered).toBe(true);
  });

  it('trims for dust at each fill’s own price', () => {
    // near 970 takes 8, far 950 takes 1.5: 0.5 < dust 1 left, so far gives back 0.5 and pays for 1 at 950.
    const providers = [bid('near', '1000000', '0.03', '8'), bid('far', '1000000', '0.05', '1.5')];
    const r = clearAuctionStep(step({ price: price('900'), mark: MARK, providers, dust: base('1') }));
    expect(r.fills.map((f) => [f.providerId, f.size, f.price, f.cost])).toEqual([
      ['near', base('8'), price('970'), usd('7760')],
      ['far', base('1'), price('950'), usd('950')],
    ]);
    expect(r.remainingLot).toBe(base('1'));
    expect(r.collected).toBe(usd('8710'));
  });

  it('maxFills stops at the cap with the fills before it at their own prices', () => {
    const providers = [
      bid('a', '1000000', '0.01', '1'),
      bid('b', '1000000', '0.02', '1'),
      bid('c', '1000000', '0.03', '1'),
    ];
    const r = clearAuctionStep(step({ price: price('900'), mark: MARK, providers, maxFills: 2 }));
    expect(r.fills.map((f) => [f.providerId, f.price])).toEqual([
      ['a', price('990')],
      ['b', price('980')],
    ]);
    expect(r.fillsCapped).toBe(true);
  });
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
    'negative maxLot': {
      over: { providers: [{ ...RICH, maxLot: -1n }] },
      reason: 'clearing/invalid-provider',
    },
    'empty id': { over: { providers: [{ ...RICH, id: '' }] }, reason: 'clearing/invalid-provider' },
    'id not a string': {
      over: { providers: [{ ...RICH, id: 7 as unknown as string }] },
      reason: 'clearing/invalid-provider',
    },
    'duplicate id': { over: { providers: [RICH, RICH] }, reason: 'clearing/duplicate-provider' },
    'zero maxFills': { over: { maxFills: 0 }, reason: 'clearing/invalid-amount' },
    'fractional maxFills': { over: { maxFills: 1.5 }, reason: 'clearing/invalid-amount' },
    'zero lot': { over: { lot: 0n }, reason: 'clearing/invalid-amount' },
  };
  for (const [name, c] of Object.entries(cases)) {
    it(name, () => expect(reasonOf(() => clearAuctionStep(step(c.over)))).toBe(c.reason));
  }

  // The message names the field and its value (what an operator reads in a log), after the reason.
  const messages: [Partial<AuctionStepInput>, string][] = [
    [{ price: 0n }, 'clearing/non-positive-price: price 0'],
    [{ maxFills: 0 }, 'clearing/invalid-amount: maxFills 0 must be a positive integer'],
    [{ mark: -2n }, 'clearing/non-positive-mark: mark -2'],
    [{ remainingLot: -1n }, 'clearing/invalid-amount: remainingLot -1 is negative'],
    [{ debt: -3n }, 'clearing/invalid-amount: debt -3 is negative'],
    [{ dust: -4n }, 'clearing/invalid-amount: dust -4 is negative'],
    [{ lot: -5n }, 'clearing/invalid-amount: lot -5 must be > 0'],
    [{ providers: [{ ...RICH, id: '' }] }, 'clearing/invalid-provider: provider without an id'],
    [
      { providers: [{ ...RICH, capital: -1n }] },
      'clearing/invalid-provider: rich: negative capital, maxLot or maxDiscountPpm',
    ],
    [{ providers: [RICH, RICH] }, 'clearing/duplicate-provider: rich'],
  ];
  it.each(messages)('says what was wrong: %o', (over, message) => {
    const error = (() => {
      try {
        clearAuctionStep(step(over));
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(ClearingError);
    expect((error as ClearingError).name).toBe('ClearingError');
    expect((error as ClearingError).message).toBe(message);
  });
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
          expect(f.cost).toBe(notionalQuote(f.size, f.price, rounding));
          expect(f.cost <= p.capital).toBe(true);
          // At its own bid (pay as bid): never beyond the auction's price, never a tick past the exact bid.
          expect(accepts(p, input.direction, input.price, input.mark)).toBe(true);
          expect(f.price).toBe(ownBid(p, input.direction, input.mark));
          const exact = input.mark * (PPM_SCALE + (input.direction === 'SELL' ? -1n : 1n) * p.maxDiscountPpm);
          const past = input.direction === 'SELL' ? f.price * PPM_SCALE - exact : exact - f.price * PPM_SCALE;
          expect(past >= 0n && past < PPM_SCALE).toBe(true);
          expect(input.direction === 'SELL' ? f.price >= input.price : f.price <= input.price).toBe(true);
        }
        // The highest bid first (SELL), the lowest ask first (BUY).
        r.fills.forEach((f, i) => {
          const before = r.fills[i - 1];
          if (before)
            expect(input.direction === 'SELL' ? before.price >= f.price : before.price <= f.price).toBe(true);
        });
        // No fill at a price outside a provider's terms, by the independent oracle.
        const filled = new Set(r.fills.map((f) => f.providerId));
        for (const p of input.providers) {
          if (!reached(p, input.direction, input.price, input.mark)) expect(filled.has(p.id)).toBe(false);
        }
        if (input.direction === 'SELL') expect(r.collected <= input.debt).toBe(true);
        // Covered leaves less than one base unit's price of debt unpaid, at the best bid reached (the price the next
        // unit would sell at) or, with none, the auction's.
        const bestReached = input.providers
          .filter((p) => reached(p, input.direction, input.price, input.mark))
          .reduce((best, p) => maxBig(best, ownBid(p, input.direction, input.mark)), input.price);
        if (r.debtCovered) expect((input.debt - r.collected) * NOTIONAL_TO_QUOTE < bestReached).toBe(true);
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
            const byCapital = div(
              p.capital * NOTIONAL_TO_QUOTE,
              ownBid(p, input.direction, input.mark),
              'floor',
            );
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

// The debt's two stopping rules at their edges (session 49's mutation testing found them untested).
describe('clearAuctionStep: where the debt stops the sale', () => {
  it('a bid whose room the debt fills exactly stops the sale: the residual buys no unit at a lower bid', () => {
    // near bids 970 for at most 3 ETH: 2,910 USD. The debt 2,910.000009 buys exactly 3 ETH there (the residual
    // 0.000009 is below one base unit at 970, 0.0000097), though it would buy one at far's 500 (0.000005).
    const providers = [bid('near', '1000000', '0.03', '3'), bid('far', '1000000', '0.5', '100')];
    const r = clearAuctionStep(
      step({ price: price('500'), mark: P1000, providers, debt: usd('2910.000009') }),
    );
    expect(sizes(r)).toEqual([['near', base('3')]]);
    expect(r.collected).toBe(usd('2910'));
    expect(r.debtCovered).toBe(true);
  });

  it('a provider with no room cuts nothing, even with no dust: the debt buys its unit at the next bid', () => {
    // empty (maxLot 0) bids 1,237.5, where the debt 0.000012 buys no unit (0.0000123750); far bids 1,125, where
    // it buys one for ceil(0.00001125) = 0.000012: paid in full there, not stopped at empty.
    const providers = [bid('empty', '1000000', '0.01', '0'), bid('far', '1000000', '0.1', '100')];
    const r = clearAuctionStep(step({ providers, debt: 12n, dust: 0n }));
    expect(r.fills).toEqual([{ providerId: 'far', size: 1n, price: price('1125'), cost: 12n }]);
    expect(r.debtCovered).toBe(true);
  });

  it('a residual that buys no unit at the next bid is no fill: it neither counts towards maxFills nor caps', () => {
    // Both bid 1,237.5 (a unit: 0.000012375). The debt 0.000025 buys 2 units at that price (0.000025 rounded up),
    // a holds 1 (0.000013); the residual 0.000012 buys none at b's same bid: the debt stops the sale there,
    // with the cap of 1 fill reached but nothing more to fill.
    const providers = [bid('a', '1000000', '0', '0.00000001'), bid('b', '1000', '0', '100')];
    const p = price('1237.5');
    for (const maxFills of [1, undefined]) {
      const r = clearAuctionStep(step({ price: p, mark: p, providers, debt: 25n, dust: 0n, maxFills }));
      expect(r.fills).toEqual([{ providerId: 'a', size: 1n, price: p, cost: 13n }]);
      expect(r.debtCovered).toBe(true);
      expect(r.fillsCapped).toBe(false);
    }
  });

  it('providers spent with a residual below one unit at the auction price: covered', () => {
    // One base unit at 150 costs 0.0000015, ceiled to 0.000002; the residual 0.000001 of a 0.000003 debt buys none.
    const one = { id: 'one', capital: usd('1000'), maxDiscountPpm: 0n, maxLot: 1n };
    const r = clearAuctionStep(
      step({ price: price('150'), mark: price('150'), providers: [one], debt: 3n, dust: 0n }),
    );
    expect(r.fills).toEqual([{ providerId: 'one', size: 1n, price: price('150'), cost: 2n }]);
    expect(r.remainingLot).toBe(base('10') - 1n);
    expect(r.debtCovered).toBe(true);
  });
});

// lot51-auction-whole-lots: with the market's lot (the exchange fills whole lots only) every fill leaves whole lots of
// the lot, so what the auction leaves the last resort can sell. Lot 1 ETH here; price 1000 and mark 1250 as above.
describe("clearAuctionStep: in whole lots of the market's lot", () => {
  const LOT = base('1');
  const AT_PRICE = bid('at-price', '1000000000', '0.2', '1000');
  const inLots = (over: Partial<AuctionStepInput>) =>
    clearAuctionStep(step({ lot: LOT, dust: base('3'), ...over }));

  it("floors a fill to whole lots, by the provider's room and by its capital", () => {
    const room = inLots({ providers: [bid('a', '1000000', '0', '6.5')] });
    expect(sizes(room)).toEqual([['a', base('6')]]);
    expect(room.remainingLot).toBe(base('4'));
    // 5,875 USD at its bid of 1,250 is 4.7 ETH: 4.
    const capital = inLots({ providers: [bid('a', '5875', '0', '10')] });
    expect(sizes(capital)).toEqual([['a', base('4')]]);
    expect(capital.collected).toBe(usd('5000'));
  });

  it('the first fill that can takes the part under a lot, so the rest is whole lots', () => {
    // 10.4: a takes 0.4 and 4 lots of its 5; b 3 of its 3.5; 3 left.
    const r = inLots({
      remainingLot: base('10.4'),
      providers: [bid('a', '1000000', '0', '5'), bid('b', '1000000', '0', '3.5')],
    });
    expect(sizes(r)).toEqual([
      ['a', base('4.4')],
      ['b', base('3')],
    ]);
    expect(r.remainingLot).toBe(base('3'));
  });

  it('a rest all under a lot is taken whole, by a provider with the room for it, or by none', () => {
    const providers = [bid('a', '1000000', '0', '0.3'), bid('b', '1000000', '0', '1')];
    expect(sizes(inLots({ remainingLot: base('0.4'), providers }))).toEqual([['b', base('0.4')]]);
    expect(sizes(inLots({ remainingLot: base('0.4'), providers: providers.slice(0, 1) }))).toEqual([]);
  });

  it('a whole lot floored below dust is a crumb: no fill', () => {
    // Room 3.5 of 10 is 3 lots, at dust: a fill; room 2.9 is 2 lots, under dust 3: none.
    expect(sizes(inLots({ providers: [bid('a', '1000000', '0', '3.5')] }))).toEqual([['a', base('3')]]);
    expect(sizes(inLots({ providers: [bid('a', '1000000', '0', '2.9')] }))).toEqual([]);
  });

  it('a trim for dust gives back whole lots, even with a dust between lots', () => {
    // Dust 2.5: a takes 8 of 10, 2 left; 0.5 short of dust, the trim gives back a whole lot: 3 left.
    const r = inLots({ dust: base('2.5'), providers: [bid('a', '1000000', '0', '8')] });
    expect(sizes(r)).toEqual([['a', base('7')]]);
    expect(r.remainingLot).toBe(base('3'));
  });

  it('the debt stops the sale at whole lots: covered, what it buys short of a lot goes back', () => {
    // 4,500 USD buys 4.5 ETH at the bid (1,000): 4 lots sell, the debt is covered with 6 left.
    const r = inLots({ debt: usd('4500'), providers: [AT_PRICE] });
    expect(sizes(r)).toEqual([['at-price', base('4')]]);
    expect(r.collected).toBe(usd('4000'));
    expect(r.debtCovered).toBe(true);
    expect(r.remainingLot).toBe(base('6'));
  });

  it('a residual that buys less than a lot at the price is covered; one that buys the part under a lot is not', () => {
    // Providers spent: 5 sold at 1,000 of a debt of 5,600; the 600 left buys 0.6, under a lot.
    const spent = inLots({ debt: usd('5600'), providers: [bid('at-price', '1000000000', '0.2', '5')] });
    expect(spent.collected).toBe(usd('5000'));
    expect(spent.debtCovered).toBe(true);
    // No bid reached (mark 1000): 500 USD buys 0.5, under a lot of 10 left, and under the 0.75 of 10.75; not under
    // the 0.5 of 10.5.
    const none = (remainingLot: string) =>
      inLots({ mark: P1000, debt: usd('500'), remainingLot: base(remainingLot) }).debtCovered;
    expect(none('10')).toBe(true);
    expect(none('10.75')).toBe(true);
    expect(none('10.5')).toBe(false);
  });

  it('fillLeavingWholeLots and smallestFill: the sizes as clearing sizes them', () => {
    const lot = base('0.001');
    expect(fillLeavingWholeLots(base('2.0007'), base('6.0005'), lot)).toBe(base('2.0005'));
    expect(fillLeavingWholeLots(base('0.0004'), base('6.0005'), lot)).toBe(0n);
    expect(fillLeavingWholeLots(base('0.0005'), base('6.0005'), lot)).toBe(base('0.0005'));
    expect(fillLeavingWholeLots(base('2.0007'), base('6'), lot)).toBe(base('2'));
    expect(fillLeavingWholeLots(base('2.0007'), base('6'), 1n)).toBe(base('2.0007'));
    // Dust, or the whole rest when less; up to what leaves whole lots; one unit (one lot) at least.
    expect(smallestFill(base('6'), base('0.002'), lot)).toBe(base('0.002'));
    expect(smallestFill(base('6.0005'), base('0.002'), lot)).toBe(base('0.0025'));
    expect(smallestFill(base('6.0005'), 0n, lot)).toBe(base('0.0005'));
    expect(smallestFill(base('0.0005'), base('0.002'), lot)).toBe(base('0.0005'));
    expect(smallestFill(base('6'), 0n, lot)).toBe(lot);
    expect(smallestFill(base('6'), 0n)).toBe(1n);
    expect(smallestFill(base('6'), base('0.002'))).toBe(base('0.002'));
    expect(smallestFill(base('0.0015'), base('0.002'))).toBe(base('0.0015'));
  });

  it('leaves whole lots of every lot it clears, and fills no provider below smallestFill (a property)', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 1n, max: 10n ** 6n }),
        fc.bigInt({ min: 0n, max: 1000n }),
        fc.bigInt({ min: 0n, max: 10n ** 6n - 1n }),
        fc.bigInt({ min: 0n, max: 20n }),
        fc.constantFrom('BUY' as const, 'SELL' as const),
        fc.array(
          fc.record({
            capital: fc.bigInt({ min: 0n, max: 10n ** 12n }),
            maxLot: fc.bigInt({ min: 0n, max: 10n ** 9n }),
          }),
          { maxLength: 6 },
        ),
        (lot, lots, under, dustLots, direction, terms) => {
          const odd = under % lot;
          const remainingLot = lot * lots + odd;
          const providers = terms.map((t, i) => ({ id: `p${i}`, maxDiscountPpm: 0n, ...t }));
          const dust = lot * dustLots;
          const r = clearAuctionStep(step({ direction, lot, dust, remainingLot, providers }));
          const first = smallestFill(remainingLot, dust, lot);
          // At most one fill off the grid (the one with the part under a lot): the rest stays whole, or as it was.
          expect(r.fills.filter((f) => f.size % lot !== 0n).length <= 1).toBe(true);
          expect([0n, odd]).toContain(r.remainingLot % lot);
          if (odd === 0n) for (const f of r.fills) expect(f.size % lot).toBe(0n);
          if (r.fills.length > 0) expect(r.fills[0]!.size >= first).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });
});
