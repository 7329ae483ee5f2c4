import { describe, expect, it } from 'vitest';
import { base, price } from '../../shared/domain/units.ts';
import { createPipeline } from '../support/pipeline.ts';

/**
 * Found by a review of auction44-pay-as-bid (session 44, review44c-tab-follows-mark): each bid fills at its own price,
 * mark x (1 - d), so after the mark rises a fill can be priced above the curve's top. The SELL tab (Maker's, the most
 * a step may collect) was still the lot at the start's top plus the penalty: a bid above it was cut, the auction
 * ended covered with lot left, and that rest went to ADL or the next slice while the provider would have bought it.
 */
describe('a SELL auction whose mark jumps past its top plus the penalty', () => {
  it('sells the whole lot to the bid that pays for it, not only the tab of the top it started at', async () => {
    const p = createPipeline(); // default rules: buf 1.02, penalty 0.13, a 15 % band with a 5 s breaker
    await p.tick('ETH-USD', '200');
    await p.tick('ETH-USD', '200');
    await p.fund('10000');
    await p.open('LONG', '10', '200', '200'); // liquidation ~184.6
    await p.open('SHORT', '5', '230', '400'); // in profit at 225: ADL's counterparty for a rest
    await p.provider('lp-1', '100000', '0.02', '100');
    p.venue.faults.emptyBooks.add('ETH-USD'); // the market takes nothing: the slice goes to the auction

    await p.tick('ETH-USD', '184'); // opens at 187.68: its tab, 187.68 x 1.13 = 212.08 a unit; the bid 180.32 waits
    await p.runUntil(p.clock.nowMs() + 60_000);
    const [started] = p.adapters.auctions.all();
    expect(started?.state).toBe('RUNNING');
    expect(started?.fills).toEqual([]);

    // A confirmed jump to 225 (the breaker holds the first print): the bid, 220.50, is above the tab's 212.08.
    await p.tick('ETH-USD', '225');
    p.clock.advance(6_000);
    await p.tick('ETH-USD', '225');
    await p.drain();
    const ended = (await p.adapters.auctions.get(started!.id))!;
    expect(ended.fills.map((f) => [f.providerId, f.price])).toEqual([['lp-1', price('220.5')]]);
    expect({ state: ended.state, sold: ended.fills[0]?.size, left: ended.remainingLot }).toEqual({
      state: 'CLEARED',
      sold: base('10'),
      left: 0n,
    });
    // The provider takes it all: ADL deleverages nobody (it closed the rest, 0.38193198, against the short before).
    const [liquidation] = p.adapters.liquidations.all();
    expect(liquidation?.state).toBe('SETTLED_AUCTION');
    expect(liquidation?.settlement?.adlClosedSize).toBe(0n);
    expect((await p.check()).violations).toEqual([]);
  });
});
