import { describe, expect, it } from 'vitest';
import { auctionStatus, startPrice } from '../../shared/domain/auction.ts';
import { accepts } from '../../shared/domain/clearing.ts';
import { DEFAULT_RISK_CONFIG } from '../../shared/domain/config.ts';
import { parsePpm, parsePrice, parseQuote } from '../../shared/domain/units.ts';
import type { ProviderRecord } from '../../shared/ports/index.ts';
import { handleAdmin } from '../../shared/services/admin.ts';
import { bestBid } from '../../shared/services/sleeping.ts';
import { createPipeline } from '../support/pipeline.ts';

/**
 * A bid beyond the auction's floor is never reached, at any mark: the SELL price never goes below
 * ceil(mark * floor) and the BUY price never above floor(mark / floor), both of the current mark, as is the bid.
 * With the default floor 0.5: a SELL discount above 50 %, a BUY premium above 100 %. Found by an auction review in
 * session 25: such a provider counted as a bidder, so an auction nobody could take was started and walked its whole
 * curve and resets (about 3.5 h) before the fund and ADL took over.
 */
describe('a bid the auction can never reach is no bidder', () => {
  const config = DEFAULT_RISK_CONFIG;
  const mark = parsePrice('184');
  const provider = (maxDiscount: string): ProviderRecord => ({
    id: 'lp-x',
    capital: parseQuote('100000'),
    maxDiscountPpm: parsePpm(maxDiscount),
    maxLot: 10n ** 12n,
    symbols: ['ETH-USD'],
    version: 0,
  });

  it.each([
    ['SELL', '0.6'],
    ['SELL', '1'],
    ['SELL', '1.5'],
    ['BUY', '1.5'],
  ] as const)('%s, discount %s: bestBid is undefined (the bid lies beyond the floor)', (direction, d) => {
    const auction = {
      direction,
      symbol: 'ETH-USD',
      top: startPrice(mark, direction, config.auction.buf),
      startedAtMs: 0,
    };
    // Sanity: at the floor, the best price the auction ever offers at this mark, the bid is not reached.
    const floorPrice = auctionStatus(auction, mark, 0, config.auction).floorPrice!;
    expect(accepts(provider(d), direction, floorPrice, mark)).toBe(false);
    const status = auctionStatus(auction, mark, 0, config.auction);
    expect(bestBid(auction, status, [provider(d)], config, 10n ** 9n, mark)).toBeUndefined();
  });

  it.each([
    ['SELL', '0.5'],
    ['BUY', '1'],
  ] as const)('%s, discount %s: a bid at the floor is a bidder', (direction, d) => {
    const auction = {
      direction,
      symbol: 'ETH-USD',
      top: startPrice(mark, direction, config.auction.buf),
      startedAtMs: 0,
    };
    const status = auctionStatus(auction, mark, 0, config.auction);
    expect(bestBid(auction, status, [provider(d)], config, 10n ** 9n, mark)).toBe(parsePpm(d));
  });

  it.each([
    ['LONG', '184', '0.6'],
    ['SHORT', '216', '1.5'],
  ] as const)(
    '%s liquidation (mark to %s), sole provider with discount %s: no auction is left running for it',
    async (side, crash, d) => {
      const p = createPipeline();
      await p.tick('ETH-USD', '200'); // a market's first print waits for a second
      await p.tick('ETH-USD', '200');
      await p.open(side, '10', '200', '200');
      await p.provider('lp-x', '100000', d, '100');
      p.venue.faults.emptyBooks.add('ETH-USD');
      await p.tick('ETH-USD', crash);
      await p.runUntil(p.clock.nowMs() + 3600_000);

      const [liquidation] = p.adapters.liquidations.all();
      // The crash started a liquidation, past the auction layer (with the book empty, its last resort waits).
      expect(liquidation).toBeDefined();
      expect(liquidation!.state).not.toMatch(/^(QUEUED|EXECUTING|AUCTION)$/);
      // Skipped at once, as without the provider (it was RUNNING an hour later, in AUCTION, before the fix): no
      // auction, or one that ended without a fill.
      const auction = await p.adapters.auctions.get(`${liquidation!.id}:auction`);
      if (auction !== undefined) expect(auction).toMatchObject({ fills: [], state: 'EXHAUSTED' });
    },
  );

  it('admin refuses a maxDiscount above 100 %', async () => {
    const p = createPipeline();
    const deps = { ...p.adapters, config: p.config, nowMs: () => p.clock.nowMs() };
    const result = await handleAdmin(
      {
        action: 'registerProvider',
        id: 'lp-x',
        capital: '100000',
        maxDiscount: '1.5',
        maxLot: '100',
        symbols: ['ETH-USD'],
      },
      deps,
    );
    expect(result).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/maxDiscount: 1.5 must be below 1/),
    });
    expect(await p.adapters.providers.get('lp-x')).toBeUndefined();
  });
});
