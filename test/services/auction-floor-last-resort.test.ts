import { describe, expect, it } from 'vitest';
import { DEFAULT_RISK_CONFIG } from '../../shared/domain/config.ts';
import { parsePrice } from '../../shared/domain/units.ts';
import { createPipeline } from '../support/pipeline.ts';

/**
 * Found by a review of the mechanisms in session 39: the default floor (0.5) let an auction sell a lot 32 % under
 * the mark (its curve's lowest before a reset) to a provider bidding that deep; the fund paid the shortfall that
 * price left, where ADL's close at the mark leaves only the gap to the bankruptcy price. The floor is now at least
 * 1 / (1 + lastResortSlippageBound): no auction trades further from the mark than the last resort would.
 */
describe('a provider bidding deeper than the last resort', () => {
  it('gets no auction: the lot goes to the fund and ADL at the mark', async () => {
    // A book 9 % wide: the market takes nothing within its 3 % bound.
    const p = createPipeline({
      venue: { defaults: { baseHalfSpreadPpm: 90_000, maxHalfSpreadPpm: 90_000 } },
    });
    await p.fund('100000');
    await p.tick('ETH-USD', '200');
    await p.tick('ETH-USD', '200');
    const long = await p.open('LONG', '10', '200', '100');
    // The counterparty ADL closes at the mark.
    await p.open('SHORT', '10', '200', '1000');
    // Willing to buy 30 % under the mark, with capital for the lot: the only bidder.
    await p.provider('deep', '100000', '0.30', '100');
    await p.tick('ETH-USD', '194');
    for (let i = 0; i < 200; i++) {
      await p.tick('ETH-USD', '194');
      await p.runUntil(p.clock.nowMs() + 90_000);
    }
    await p.drain();

    const [liquidation] = p.adapters.liquidations.all().filter((l) => l.positionId === long.id);
    // No auction: its curve, held at the floor (0.91 of the mark), never reaches the only bid, so none is started
    // (at the old floor of 0.5 it sold the lot at about 0.7 of the mark).
    expect(DEFAULT_RISK_CONFIG.auction.floor).toBe(910_000n);
    expect(p.adapters.auctions.all()).toEqual([]);
    expect(liquidation?.history.map((h) => h.state)).not.toContain('AUCTION');
    // ADL closed the lot at the mark: the fund paid the gap from the mark to the bankruptcy price, not 30 %.
    expect(liquidation?.state).toBe('SETTLED_ADL');
    const s = liquidation!.settlement!;
    expect(s.auctionClosedSize).toBe(0n);
    expect(s.adlClosedSize).toBe(long.size);
    // Equity at 194: 100 - 10 x 6 = 40, so no shortfall at all; sold 30 % under (135.8) it would owe 482.
    expect(s.shortfall).toBe(0n);
    expect(liquidation?.context?.settledMark).toBe(parsePrice('194'));
    expect((await p.check()).violations).toEqual([]);
  });
});
