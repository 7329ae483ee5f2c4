import { describe, expect, it } from 'vitest';
import { collectLiquidation } from '../../cli/ops/liquidation-show.ts';
import { itemBytes } from '../../shared/adapters/aws/item-size.ts';
import { liquidationItem } from '../../shared/adapters/aws/record-items.ts';
import { parseRiskConfig } from '../../shared/domain/config.ts';
import { parseBase, parsePrice, parseQuote } from '../../shared/domain/units.ts';
import type { LiquidationRecord } from '../../shared/ports/index.ts';
import { auctionIdOf } from '../../shared/services/liquidation.ts';
import { withLiquidationPrice } from '../../shared/services/margin-check.ts';
import { startedAuctionId } from '../support/invariants.ts';
import { createPipeline } from '../support/pipeline.ts';
import { AUCTION_ONLY } from '../support/risk-configs.ts';

/**
 * cost52-auction-id-derived: a liquidation's auction is auctionIdOf(its id), which the auction's start also stored in
 * the context: with a real exchange's ids (a 36-character position id) that is 61 bytes of an item every later write
 * rewrites whole, and took the bench's auction-settled liquidation past 1 KB (2 write units more). It is derived now.
 */
describe("a liquidation's auction, found by its id alone", () => {
  it('is not stored in the context; the auction, the invariants and show find it by the id', async () => {
    const p = createPipeline({ config: parseRiskConfig(AUCTION_ONLY) });
    await p.tick('ETH-USD', '200');
    await p.tick('ETH-USD', '200');
    await p.provider('a3c1f8e2-4b7d-4e59-9c21-7f0d2e6b8a41', '1000000', '0.01', '100');
    p.seed([
      withLiquidationPrice(
        {
          id: '5f2b9c47-8e1a-4d3b-a6f0-2c9e7d41b853',
          traderId: 'e81d4c2a-6b3f-4a97-8d05-1f9c3e7a2b64',
          symbol: 'ETH-USD',
          side: 'LONG',
          size: parseBase('10'),
          entryPrice: parsePrice('200'),
          collateral: parseQuote('200'),
          state: 'OPEN',
          version: 0,
        },
        p.config,
      ),
    ]);
    await p.tick('ETH-USD', '184');
    await p.drain();
    const [l] = p.adapters.liquidations.all();
    expect(l?.state).toBe('SETTLED_AUCTION');
    const written = p.observer.groups.flatMap((g) =>
      g.writes.flatMap((w) => (w.kind === 'liquidation' ? [w.after as LiquidationRecord] : [])),
    );
    expect(written.map((w) => w.state)).toContain('AUCTION');
    for (const w of written) expect(w.context?.auctionId, w.state).toBeUndefined();

    const auction = await p.adapters.auctions.get(auctionIdOf(l!.id));
    expect(auction?.liquidationId).toBe(l!.id);
    expect(auction?.fills.length).toBeGreaterThan(0);
    expect(startedAuctionId(l!)).toBe(auction!.id);
    expect((await collectLiquidation(p.adapters, l!.id))?.auction?.id).toBe(auction!.id);
    expect((await p.check()).violations).toEqual([]);

    // Stored as before, the settled item carried 61 bytes more.
    const stored = { ...l!, context: { ...l!.context!, auctionId: auction!.id } };
    expect(itemBytes(liquidationItem(stored)) - itemBytes(liquidationItem(l!))).toBe(61);
  });
});
