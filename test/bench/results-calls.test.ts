import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { BenchResults } from '../../bench/results.ts';

/**
 * The committed results: the calls per liquidation settled on the market are of one scenario, a liquidation alone
 * (the calls its tick makes beyond a tick crossing nothing, and its settlement alone). Found by a review of the
 * benchmark in session 25: they added a burst's tick share (1.12) to a lone settlement (6), a scenario nobody ran.
 */
describe('bench results: calls per liquidation settled on the market', () => {
  const results = JSON.parse(
    readFileSync(new URL('../../bench/results.json', import.meta.url), 'utf8'),
  ) as BenchResults;
  const a = results.apiCalls!;
  const lone = a.detail.crossing.find((c) => c.crossed === 1)!;

  it('is the tick share and the settlement of the same scenario (one liquidation alone)', () => {
    const loneTickShare = (lone.tickCalls - a.tickNoCross) / lone.crossed;
    const loneLiquidation = loneTickShare + a.detail.layers.market.settleCallsPerLiquidation;
    expect(a.liquidationMarket).toBe(loneLiquidation);
  });
});
