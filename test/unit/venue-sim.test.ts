import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../shared/adapters/embedded/clock.ts';
import { EmbeddedMarketRepository } from '../../shared/adapters/embedded/markets.ts';
import { MarkFollowingVenue } from '../../shared/adapters/venue/mark-following.ts';
import {
  DEFAULT_SIMULATED_MARKET,
  SimulatedVenue,
  VenueConfigError,
} from '../../shared/adapters/venue/simulated.ts';
import type { Fill } from '../../shared/domain/model.ts';
import { BASE_SCALE, base, NOTIONAL_TO_QUOTE, price } from '../../shared/domain/units.ts';
import { type MarketRepository, type OrderRequest, VenueError } from '../../shared/ports/index.ts';

const SYMBOL = 'ETH-USD';
const MARK = price('195');
const TICK = DEFAULT_SIMULATED_MARKET.priceTick;

function venueAt(mark = MARK) {
  const clock = new ManualClock(0);
  const venue = new SimulatedVenue({ clock });
  venue.onTick(SYMBOL, mark, 0);
  return { clock, venue };
}

let ids = 0;
const order = (direction: 'BUY' | 'SELL', size: string, limit: string, more: Partial<OrderRequest> = {}) => ({
  clientOrderId: `o${++ids}`,
  symbol: SYMBOL,
  direction,
  size: base(size),
  limitPrice: price(limit),
  ...more,
});

const filled = (fills: readonly Fill[]): bigint => fills.reduce((s, f) => s + f.size, 0n);
/** Average fill price times size, in 1e-16 quote: compare averages without dividing. */
const notional = (fills: readonly Fill[]): bigint => fills.reduce((s, f) => s + f.size * f.price, 0n);

describe('simulated venue: the book', () => {
  it('quotes a bid under and an ask over the reference, on the price grid', async () => {
    const { venue } = venueAt();
    const { bid, ask } = await venue.quote(SYMBOL);
    expect(bid! < MARK && MARK < ask!).toBe(true);
    expect(bid! % TICK).toBe(0n);
    expect(ask! % TICK).toBe(0n);
    expect(await venue.quote('BTC-USD')).toEqual({});
  });

  it('a large sell walks the bids level by level, exact on the grids, best price first', async () => {
    const { venue } = venueAt();
    const { bid } = await venue.quote(SYMBOL);
    const result = await venue.placeIoc(order('SELL', '500', '150'));
    expect(result.status).toBe('FILLED');
    expect(filled(result.fills)).toBe(base('500'));
    expect(result.fills.length).toBeGreaterThan(3);
    expect(result.fills[0]!.price).toBe(bid);
    for (let i = 1; i < result.fills.length; i += 1) {
      expect(result.fills[i]!.price < result.fills[i - 1]!.price).toBe(true);
    }
    for (const f of result.fills) expect(f.price % TICK).toBe(0n);
  });

  it('depth matches the constant-product calibration: selling d(1 %) moves the mid by 1 %', async () => {
    const { venue } = venueAt();
    // d = x (1 / sqrt(1 - 0.01) - 1), x = poolQuoteReserve / P.
    const x = DEFAULT_SIMULATED_MARKET.poolQuoteReserve / 195;
    const d = x * (1 / Math.sqrt(0.99) - 1);
    const size = BigInt(Math.round(d * Number(BASE_SCALE)));
    await venue.placeIoc({ ...order('SELL', '1', '100'), size });
    const mid = Number(venue.snapshot(SYMBOL)!.mid) / Number(MARK);
    expect(mid).toBeGreaterThan(0.989);
    expect(mid).toBeLessThan(0.991);
  });

  it.each([
    { name: 'sell', direction: 'SELL' as const, limit: '194' },
    { name: 'buy', direction: 'BUY' as const, limit: '196' },
  ])(
    'a $name never fills beyond its limit: the rest is cancelled (PARTIAL)',
    async ({ direction, limit }) => {
      const { venue } = venueAt();
      const result = await venue.placeIoc(order(direction, '100000', limit));
      expect(result.status).toBe('PARTIAL');
      const bound = price(limit);
      for (const f of result.fills)
        expect(direction === 'SELL' ? f.price >= bound : f.price <= bound).toBe(true);
    },
  );

  // Found by an audit of the market path in session 36: the last level's fill took what was left of the order,
  // off the lot grid the config promises.
  it('fills in whole lots only: what is left of an order below a lot is not filled', async () => {
    const lot = base('0.01');
    const venue = new SimulatedVenue({ clock: new ManualClock(0), defaults: { lotSize: lot } });
    venue.onTick(SYMBOL, MARK, 0);
    const result = await venue.placeIoc(order('SELL', '0.015', '150'));
    expect(filled(result.fills)).toBe(lot);
    expect(result.status).toBe('PARTIAL');
    for (const f of result.fills) expect(f.size % lot).toBe(0n);
    expect((await venue.placeIoc(order('SELL', '0.005', '150'))).status).toBe('NONE');
  });

  it('a limit better than the best price fills nothing (NONE) and moves nothing', async () => {
    const { venue } = venueAt();
    const result = await venue.placeIoc(order('SELL', '1', '195'));
    expect(result).toMatchObject({ status: 'NONE', fills: [] });
    expect(venue.snapshot(SYMBOL)!.impact).toBe(0);
  });

  it('fills respect limit, size and grids for any order, and fill iff the quote reaches the limit (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom<'BUY' | 'SELL'>('BUY', 'SELL'),
        fc.bigInt({ min: 1n, max: 5_000n * BASE_SCALE }),
        fc.integer({ min: 50, max: 400 }),
        fc.integer({ min: 0, max: 3 }),
        async (direction, size, limitUsd, warmups) => {
          const { venue, clock } = venueAt();
          for (let i = 0; i < warmups; i += 1) {
            await venue.placeIoc(order(i % 2 ? 'BUY' : 'SELL', '300', i % 2 ? '400' : '50'));
            clock.advance(10_000);
          }
          const limit = price(String(limitUsd));
          const { bid, ask } = await venue.quote(SYMBOL);
          const result = await venue.placeIoc({ ...order(direction, '1', '1'), size, limitPrice: limit });
          const total = filled(result.fills);
          expect(total <= size).toBe(true);
          // The quote tells whether an order at the limit fills at all: a waiting last resort relies on it.
          const reaches =
            direction === 'SELL' ? bid !== undefined && bid >= limit : ask !== undefined && ask <= limit;
          expect(total > 0n).toBe(reaches);
          expect(result.status).toBe(total === 0n ? 'NONE' : total === size ? 'FILLED' : 'PARTIAL');
          for (const f of result.fills) {
            expect(f.size > 0n).toBe(true);
            expect(f.price % TICK).toBe(0n);
            expect(direction === 'SELL' ? f.price >= limit : f.price <= limit).toBe(true);
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('simulated venue: idempotency', () => {
  it('a repeated client order id returns the first result and never executes twice', async () => {
    const { venue } = venueAt();
    const o = order('SELL', '200', '150');
    const first = await venue.placeIoc(o);
    const after = venue.snapshot(SYMBOL)!;
    const again = await venue.placeIoc({ ...o, size: base('999') });
    expect(again).toEqual(first);
    expect(venue.snapshot(SYMBOL)!.impact).toBe(after.impact);
  });
});

describe('simulated venue: market impact', () => {
  it('a cascade of sells fills each one lower than the last', async () => {
    const { venue } = venueAt();
    const averages: bigint[] = [];
    for (let i = 0; i < 3; i += 1) {
      const r = await venue.placeIoc(order('SELL', '300', '100'));
      averages.push(notional(r.fills) / filled(r.fills));
    }
    expect(averages[1]! < averages[0]! && averages[2]! < averages[1]!).toBe(true);
  });

  it('impact persists, halves each half-life and decays back to the reference', async () => {
    const { venue, clock } = venueAt();
    await venue.placeIoc(order('SELL', '1000', '100'));
    const hit = venue.snapshot(SYMBOL)!;
    expect(hit.mid < MARK).toBe(true);
    expect((await venue.quote(SYMBOL)).bid! < hit.mid).toBe(true);
    clock.advance(DEFAULT_SIMULATED_MARKET.impactHalfLifeSeconds * 1000);
    expect(venue.snapshot(SYMBOL)!.impact).toBeCloseTo(hit.impact / 2, 12);
    clock.advance(20 * DEFAULT_SIMULATED_MARKET.impactHalfLifeSeconds * 1000);
    const later = venue.snapshot(SYMBOL)!;
    expect(later.mid).toBe(MARK);
  });

  it('a new reference tick keeps our impact on top of it', async () => {
    const { venue } = venueAt();
    await venue.placeIoc(order('SELL', '1000', '100'));
    const impact = venue.snapshot(SYMBOL)!.impact;
    venue.onTick(SYMBOL, price('180'), 0);
    const s = venue.snapshot(SYMBOL)!;
    expect(s.reference).toBe(price('180'));
    expect(s.impact).toBe(impact);
    expect(s.mid < price('180')).toBe(true);
  });
});

describe('simulated venue: volatility', () => {
  it('the spread widens and the depth thins as realized volatility rises', async () => {
    const calm = venueAt().venue;
    const { venue: wild } = venueAt();
    const path = ['180', '195', '175', '190', '170', '185', '165', '180', '160', '175', '155', '170'];
    path.forEach((p, i) => {
      wild.onTick(SYMBOL, price(p), (i + 1) * 60_000);
    });
    wild.onTick(SYMBOL, MARK, 13 * 60_000);
    const [c, w] = [calm.snapshot(SYMBOL)!, wild.snapshot(SYMBOL)!];
    expect(w.volatility).toBeGreaterThan(0.02);
    expect(w.halfSpreadPpm).toBeGreaterThan(c.halfSpreadPpm);
    expect(w.depthShare).toBeLessThan(c.depthShare);
    const cq = await calm.quote(SYMBOL);
    const wq = await wild.quote(SYMBOL);
    expect(wq.ask! - wq.bid! > cq.ask! - cq.bid!).toBe(true);
    const cr = await calm.placeIoc(order('SELL', '300', '100'));
    const wr = await wild.placeIoc(order('SELL', '300', '100'));
    expect(notional(wr.fills) < notional(cr.fills)).toBe(true);
  });

  it('is deterministic: the same inputs give the same fills', async () => {
    const run = async () => {
      const { venue, clock } = venueAt();
      venue.onTick(SYMBOL, price('190'), 60_000);
      clock.set(60_000);
      return venue.placeIoc({ ...order('SELL', '700', '150'), clientOrderId: 'same' });
    };
    expect(await run()).toEqual(await run());
  });
});

describe('simulated venue: faults', () => {
  it.each([
    { fault: 'reject' as const, kind: 'rejected' },
    { fault: 'timeout' as const, kind: 'timeout' },
    { fault: 'unavailable' as const, kind: 'unavailable' },
  ])('$fault: throws VenueError($kind) without executing; a retry executes', async ({ fault, kind }) => {
    const { venue } = venueAt();
    venue.injectFaults(fault);
    const o = order('SELL', '10', '150');
    await expect(venue.placeIoc(o)).rejects.toMatchObject({ name: 'VenueError', kind });
    expect(venue.snapshot(SYMBOL)!.impact).toBe(0);
    expect((await venue.placeIoc(o)).status).toBe('FILLED');
  });

  it('timeout after the fill: the answer is lost, the retry returns the same fill', async () => {
    const { venue } = venueAt();
    venue.injectFaults('timeout-after-fill');
    const o = order('SELL', '10', '150');
    await expect(venue.placeIoc(o)).rejects.toBeInstanceOf(VenueError);
    const impact = venue.snapshot(SYMBOL)!.impact;
    expect(impact).toBeLessThan(0);
    const retry = await venue.placeIoc(o);
    expect(retry.status).toBe('FILLED');
    expect(venue.snapshot(SYMBOL)!.impact).toBe(impact);
  });

  it('a fill cap makes large orders partial', async () => {
    const { venue } = venueAt();
    venue.faults.maxFillPerOrder = base('2');
    const result = await venue.placeIoc(order('SELL', '10', '150'));
    expect(result.status).toBe('PARTIAL');
    expect(filled(result.fills)).toBe(base('2'));
  });

  it('an empty book fills nothing and quotes nothing', async () => {
    const { venue } = venueAt();
    venue.faults.emptyBooks.add(SYMBOL);
    expect(await venue.placeIoc(order('SELL', '10', '1'))).toMatchObject({ status: 'NONE', fills: [] });
    expect(await venue.quote(SYMBOL)).toEqual({});
  });

  it('a fault plan is asked for every new order with its number', async () => {
    const { venue } = venueAt();
    const seen: number[] = [];
    venue.faults.plan = (_o, n) => {
      seen.push(n);
      return n % 2 === 0 ? 'reject' : undefined;
    };
    await venue.placeIoc(order('SELL', '1', '150'));
    await expect(venue.placeIoc(order('SELL', '1', '150'))).rejects.toMatchObject({ kind: 'rejected' });
    expect(seen).toEqual([1, 2]);
  });

  it.each([
    { name: 'an unknown symbol', o: { symbol: 'DOGE-USD' }, reason: /venue\/unknown-symbol/ },
    { name: 'a zero size', o: { size: 0n }, reason: /venue\/bad-order/ },
    { name: 'a zero limit', o: { limitPrice: 0n }, reason: /venue\/bad-order/ },
  ])('rejects $name', async ({ o, reason }) => {
    const { venue } = venueAt();
    await expect(venue.placeIoc({ ...order('SELL', '1', '150'), ...o })).rejects.toThrow(reason);
  });

  it.each([
    { name: 'zero levels', c: { levels: 0 } },
    { name: 'a negative depth', c: { poolQuoteReserve: -1 } },
    { name: 'a retention above 1', c: { impactRetention: 1.5 } },
    { name: 'a zero price tick', c: { priceTick: 0n } },
  ])('refuses a config with $name', ({ c }) => {
    expect(() => new SimulatedVenue({ clock: new ManualClock(0), defaults: c })).toThrow(VenueConfigError);
  });
});

it('sells of our size stay far inside the notional arithmetic (sanity of the units)', async () => {
  const { venue } = venueAt();
  const r = await venue.placeIoc(order('SELL', '1', '150'));
  const quote = notional(r.fills) / NOTIONAL_TO_QUOTE;
  expect(quote > 194_000_000n && quote < 195_000_000n).toBe(true);
});

describe('mark-following venue (deployed and local stacks)', () => {
  /** A markets table at `mark` whose reads are counted. */
  async function marketsAt(mark: string) {
    const markets = new EmbeddedMarketRepository();
    await markets.acceptTick(
      SYMBOL,
      { sequence: 1, markPrice: price(mark), timestampMs: 1_000 },
      undefined,
      false,
    );
    let reads = 0;
    const counted: MarketRepository = Object.assign(Object.create(markets), {
      get: (symbol: string) => {
        reads += 1;
        return markets.get(symbol);
      },
    });
    return { markets: counted, reads: () => reads };
  }

  it("quotes around the caller's mark without a read, or around the last tick's with one", async () => {
    const { markets, reads } = await marketsAt('195');
    const venue = new MarkFollowingVenue(markets, new ManualClock(2_000));
    const atCallers = await venue.quote(SYMBOL, { mark: price('150'), atMs: 1_500 });
    expect(reads()).toBe(0);
    expect(atCallers.bid! < price('150') && price('150') < atCallers.ask!).toBe(true);

    const atTick = await new MarkFollowingVenue(markets, new ManualClock(2_000)).quote(SYMBOL);
    expect(reads()).toBe(1);
    expect(atTick.bid! < price('195') && price('195') < atTick.ask!).toBe(true);
  });

  it('follows marks forward only: an older mark does not take the book back', async () => {
    const { markets } = await marketsAt('195');
    const venue = new MarkFollowingVenue(markets, new ManualClock(2_000));
    const newer = await venue.quote(SYMBOL, { mark: price('150'), atMs: 1_500 });
    expect(await venue.quote(SYMBOL, { mark: price('195'), atMs: 1_000 })).toEqual(newer);
    expect(await venue.quote(SYMBOL)).toEqual(newer); // the table's tick (1,000) is older too
  });
});
