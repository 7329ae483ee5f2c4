import { describe, expect, it } from 'vitest';
import { marketConfig } from '../../shared/domain/config.ts';
import { parseBase } from '../../shared/domain/units.ts';
import { createPipeline } from '../support/pipeline.ts';

/**
 * Found by the pipeline fuzzing in session 27, fixed in session 28: a venue that fills only slivers (a per-order
 * cap) ran a sliced position's slices back to back. Each slice closed a sliver on the market, no provider or
 * counterparty took the rest, it was carried to the next slice, which started at once: 23,829 slices in 6
 * simulated hours, each an order into the same spent book. A slice that leaves size to carry now waits for the
 * market's cooldown before the next one, as a slice that needed the last resort does.
 */
describe('slices of a position the book cannot absorb', () => {
  it('the next slice waits for the cooldown when a slice carried size, and the position keeps closing', async () => {
    const p = createPipeline();
    const cooldownSeconds = marketConfig(p.config, 'ETH-USD').lastResortCooldownSeconds;
    await p.fund('1000000');
    await p.tick('ETH-USD', '200'); // a market's first print waits for a second
    await p.tick('ETH-USD', '200');
    // 1,000 ETH at 200 (200k notional: sliced, 25 % a slice), liquidatable below about 185; no provider, no
    // counterparty: what the market does not fill is carried.
    const whale = await p.open('LONG', '1000', '200', '20000');
    p.venue.faults.maxFillPerOrder = parseBase('0.5');
    await p.tick('ETH-USD', '184');
    const crashedAt = p.clock.nowMs();
    const windowSeconds = 10 * cooldownSeconds;
    await p.runUntil(crashedAt + windowSeconds * 1000);

    const slices = p.adapters.liquidations.all();
    const carried = slices.filter((l) => (l.settlement?.carriedSize ?? 0n) > 0n);
    const position = (await p.adapters.positions.get(whale.id))!;
    expect(carried.length).toBeGreaterThan(0);
    // Each slice places its order a cooldown after the one before it settled: one per cooldown (the first at
    // once), not hundreds back to back.
    const executedAt = slices
      .flatMap((l) => l.history.filter((h) => h.state === 'EXECUTING').map((h) => h.atMs))
      .sort((a, b) => a - b);
    expect(executedAt.length).toBe(windowSeconds / cooldownSeconds + 1);
    for (let i = 1; i < executedAt.length; i++)
      expect(executedAt[i]! - executedAt[i - 1]!).toBeGreaterThanOrEqual(cooldownSeconds * 1000);
    // Still closing: each slice took its slivers.
    expect(position.size).toBeLessThan(whale.size);
    expect(position.state).toBe('LIQUIDATING');
    expect((await p.check()).violations).toEqual([]);
  });
});
