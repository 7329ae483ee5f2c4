import { describe, expect, it } from 'vitest';
import { createPipeline } from '../support/pipeline.ts';

/**
 * Found by the pipeline fuzz in session 32 (concurrent consumers, crashes and faults, seed 539764): where ADL's
 * index may lag its writes (adlOrdersLagMs, the AWS GSIs), a settlement that finds the side spent is confirmed by a
 * round a moment later, ranked at the finding's mark. That round skipped the mark's age check: a finding made at
 * 120 s of mark age deleveraged a counterparty a second later, on a mark 121 s old, past maxMarkAgeSeconds.
 */
describe('a confirming ADL round acts only on a fresh mark', () => {
  it('waits for a tick when the mark went stale since the finding, then deleverages', async () => {
    const p = createPipeline({ marks: 'as-configured' }); // maxMarkAgeSeconds 120
    Object.assign(p.adapters.positions, { adlOrdersLagMs: 1_000 });
    await p.tick('ETH-USD', '200'); // a market's first print waits for a second
    await p.tick('ETH-USD', '200');
    const long = await p.open('LONG', '10', '200', '200'); // bankrupt at 180
    await p.tick('ETH-USD', '175');
    // The liquidation runs late in the mark's life: the market closes the long below its bankruptcy price, the
    // fund is empty, and ADL finds nobody to give (no short in profit), at 119 s of mark age.
    p.clock.advance(119_000);
    await p.runUntil(p.clock.nowMs());
    const settled = p.adapters.liquidations.all().find((l) => l.positionId === long.id)!;
    expect(settled.context?.adlRound?.confirm).toBeDefined();
    // Meanwhile a short in profit appears (the index had not shown it): the round a second later could take it.
    const short = await p.open('SHORT', '10', '200', '100');
    p.clock.advance(2_000); // the mark is 121 s old
    await p.runUntil(p.clock.nowMs());
    expect((await p.adapters.positions.get(short.id))?.version).toBe(0);
    expect(p.adapters.liquidations.all().find((l) => l.id === settled.id)?.context?.adlRound).toBeDefined();
    // A fresh tick: the round goes on and deleverages the short.
    await p.tick('ETH-USD', '175');
    await p.drain();
    expect((await p.adapters.positions.get(short.id))?.version).toBeGreaterThan(0);
    expect(p.adapters.liquidations.all().find((l) => l.id === settled.id)?.context?.adlRound).toBeUndefined();
  });
});
