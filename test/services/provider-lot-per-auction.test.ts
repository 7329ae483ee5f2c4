import { describe, expect, it } from 'vitest';
import { parseBase } from '../../shared/domain/units.ts';
import { createPipeline } from '../support/pipeline.ts';

/**
 * A provider's maxLot is the largest lot it takes of one auction (ProviderRecord), not of each step: found by an
 * auction review in session 25, when a provider with room for 1 ETH took a whole 10 ETH lot in ten 90 s steps,
 * each 1 % further from the mark.
 */
describe("a provider's maxLot bounds what it takes of one auction", () => {
  it.each([
    ['SELL (a long closed)', 'LONG', '184'],
    ['BUY (a short closed)', 'SHORT', '216'],
  ] as const)(
    '%s: a provider with maxLot 1 ETH takes at most 1 ETH of one auction',
    async (_name, side, crash) => {
      const p = createPipeline();
      await p.tick('ETH-USD', '200'); // a market's first print waits for a second
      await p.tick('ETH-USD', '200');
      await p.open(side, '10', '200', '200');
      // Plenty of capital; its per-auction lot room is 1 ETH.
      await p.provider('lp-1', '100000', '0.02', '1');
      p.venue.faults.emptyBooks.add('ETH-USD'); // the market takes nothing: the whole slice goes to the auction

      await p.tick('ETH-USD', crash);
      await p.drain();

      const [liquidation] = p.adapters.liquidations.all();
      const auction = await p.adapters.auctions.get(`${liquidation?.id}:auction`);
      expect(auction).toBeDefined();
      const taken = (auction?.fills ?? [])
        .filter((f) => f.providerId === 'lp-1')
        .reduce((sum, f) => sum + f.size, 0n);
      expect(taken).toBe(parseBase('1'));
      // The rest went on down the waterfall, and the provider's record keeps its own lot room.
      expect(auction?.remainingLot).toBe(parseBase('9'));
      expect((await p.adapters.providers.get('lp-1'))?.maxLot).toBe(parseBase('1'));
      expect(liquidation?.state).toMatch(/^SETTLED_/);
    },
  );
});
