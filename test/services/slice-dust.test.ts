import { describe, expect, it } from 'vitest';
import { marketConfig } from '../../shared/domain/config.ts';
import { planLiquidationStep } from '../../shared/domain/sizing.ts';
import { parseBase, parsePrice } from '../../shared/domain/units.ts';
import { createPipeline } from '../support/pipeline.ts';

/**
 * sizing.ts closes in full a position whose remainder would be dust. Found by a review of slicing in session 25: when
 * the market filled all but a sliver of such a slice that no other layer could take, the sliver was carried and,
 * healthy with all the trader's collateral behind it, left OPEN as dust for good (liquidation price 0). It is now
 * the next slice, closed whatever its health (docs/RELIABILITY.md, slice-dust-carry).
 */
describe('a carried remainder below dust', () => {
  for (const [side, crossing] of [
    ['LONG', '190'],
    ['SHORT', '210'],
  ] as const) {
    it(`a ${side} planned in full because its remainder would be dust is not left OPEN as dust`, async () => {
      const p = createPipeline();
      const eth = marketConfig(p.config, 'ETH-USD');
      await p.tick('ETH-USD', '200');
      await p.tick('ETH-USD', '200');
      // 6 ETH at 200 with 80 USD: at the crossing mark equity 20 USD, above the fee on the whole size
      // (so partial closes restore), but closing the ~5 ETH that restores initial margin would leave
      // ~1 ETH (< 1,000 USD = minSliceNotional): planned in full ('sizing/dust-remainder').
      const opened = await p.open(side, '6', '200', '80');
      const plan = planLiquidationStep(opened, parsePrice(crossing), eth);
      expect(plan).toMatchObject({ full: true, reason: 'sizing/dust-remainder' });
      // A thin book fills all but 0.0005 ETH (half the 0.001 dust size); no provider, no counterparty.
      p.venue.faults.maxFillPerOrder = parseBase('5.9995');
      await p.tick('ETH-USD', crossing);
      await p.drain();

      const [slice] = p.adapters.liquidations.all();
      expect(slice?.state).toBe('SETTLED_MARKET');
      expect(slice?.settlement?.carriedSize).toBe(parseBase('0.0005'));
      const after = await p.adapters.positions.get(opened.id);
      // The sliver is the next slice, closed on the market, its collateral paid out to the trader.
      expect(after?.state).toBe('CLOSED');
      const slices = p.adapters.liquidations.all();
      expect(slices.map((l) => l.state)).toEqual(['SETTLED_MARKET', 'SETTLED_MARKET']);
      expect(eth.dustSize).toBeGreaterThan(parseBase('0.0005'));
      expect((await p.check()).violations).toEqual([]);
    });
  }
});
