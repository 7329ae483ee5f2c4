import { describe, expect, it } from 'vitest';
import { auctionStatus } from '../../shared/domain/auction.ts';
import { price } from '../../shared/domain/units.ts';
import { createPipeline } from '../support/pipeline.ts';

/**
 * Found by an audit of the auction's clearing, session 44 (auction44-pay-as-bid): every provider whose bid the price
 * had reached filled at the auction's price, however far below its bid. A mark that rebounds while the curve is low
 * (a V in a crash) put the bids far above the price, and the providers bought there: the fund paid the difference.
 * A standing bid is a resting order: it fills at its own price, mark x (1 - d), rounded up to a whole tick.
 */
describe('a SELL auction whose mark rebounds while its price is low', () => {
  it('fills the provider at its own bid, not at the auction price far below it', async () => {
    const p = createPipeline(); // default rules: buf 1.02, stairstep 0.99 per 90 s
    await p.tick('ETH-USD', '200'); // a market's first print waits for a second
    await p.tick('ETH-USD', '200');
    await p.fund('10000');
    await p.open('LONG', '10', '200', '200'); // liquidation ~184.6, bankrupt at 180
    await p.provider('lp-1', '100000', '0.02', '100');
    p.venue.faults.emptyBooks.add('ETH-USD'); // the market takes nothing: the slice goes to the auction

    await p.tick('ETH-USD', '184'); // the auction opens at 187.68; the bid, 180.32, is 4 steps down
    await p.runUntil(p.clock.nowMs() + 60_000);
    const [started] = p.adapters.auctions.all();
    expect(started?.state).toBe('RUNNING');
    await p.tick('ETH-USD', '170'); // the bid falls to 166.60, 12 steps down
    await p.runUntil(started!.startedAtMs + 10 * 90_000 + 30_000);
    const low = (await p.adapters.auctions.get(started!.id))!;
    expect(low.fills).toEqual([]);
    const priceNow = auctionStatus(low, price('184'), p.clock.nowMs(), p.config.auction).price;
    expect(priceNow).toBeLessThan(price('170')); // step 10: 187.68 x 0.99^10 = 169.73

    await p.tick('ETH-USD', '184'); // the rebound: the bid, 180.32 again, is far above the price
    await p.drain();
    const ended = (await p.adapters.auctions.get(started!.id))!;
    expect(ended.state).toBe('CLEARED');
    expect(ended.fills.map((f) => [f.providerId, f.price, f.size])).toEqual([
      ['lp-1', price('180.32'), 10n * 10n ** 8n],
    ]);
    expect(ended.fills[0]?.cost).toBe(1_803_200_000n); // 1,803.20 USD paid by lp-1
    const [liquidation] = p.adapters.liquidations.all();
    expect(liquidation?.state).toBe('SETTLED_AUCTION');
    expect((await p.check()).violations).toEqual([]);
  });
});
