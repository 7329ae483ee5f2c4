import { describe, expect, it } from 'vitest';
import { crashOnceAt, createPipeline, type Pipeline } from '../support/pipeline.ts';

/**
 * A frozen settlement whose ADL counterparty was taken by another settlement is planned again (refreeze) at the FROZEN
 * mark. At that mark nobody is left to close the slice, so the plan goes to the last resort, whose limit is bounded
 * around the frozen mark, not "the mark of then" (liquidation/last-resort.ts lastResort's contract). Once the price has
 * moved away, the book can never reach that limit: the slice waits, then dead-letters with waterfall/no-liquidity, and
 * the position stays LIQUIDATING, although a liquidation planned at the latest mark would close it at once.
 */
describe('a settlement planned again plans at the mark of then (replan-stale-mark)', () => {
  it('a plan whose counterparty was taken, with nobody left at the frozen mark, closes within the bound of the latest mark', async () => {
    // A's delivery dies right after the fund paid its part of A's shortfall (its plan froze the short).
    const crash = crashOnceAt('ledger.apply');
    const p: Pipeline = createPipeline({ crashHook: crash.hook });
    await p.fund('20'); // pays 20 of A's 50 USD shortfall; ADL is to cover the rest
    crash.arm();
    await p.tick('ETH-USD', '200'); // a market's first print waits for a second
    await p.tick('ETH-USD', '200');
    const a = await p.open('LONG', '10', '200', '200'); // p1, bankrupt at 180
    const b = await p.open('LONG', '10', '200', '200'); // p2, the same
    await p.open('SHORT', '10', '200', '400'); // p3: takes one of them, not both
    p.venue.faults.emptyBooks.add('ETH-USD'); // no market fills, no providers: ADL takes the size
    await p.tick('ETH-USD', '175');
    // A freezes on the short and dies; B then settles against the same short and closes it.
    await p.runUntil(p.clock.nowMs() + 5_000);
    expect(crash.crashed()).toBe(true);
    expect(p.adapters.liquidations.all().find((l) => l.positionId === a.id)?.state).toBe('SETTLING');
    const settledB = p.adapters.liquidations.all().find((l) => l.positionId === b.id);
    expect(settledB?.state).toBe('SETTLED_ADL');
    // The market moves on (two steps within the breaker's band), and the book is back (around 140).
    await p.tick('ETH-USD', '150');
    await p.tick('ETH-USD', '140');
    p.venue.faults.emptyBooks.delete('ETH-USD');
    await p.drain(8 * 3600);

    const liquidationA = p.adapters.liquidations.all().find((l) => l.positionId === a.id)!;
    const position = await p.adapters.positions.get(a.id);
    // A closes (the book is there, within the bound of the latest mark), and the 20 USD the fund paid for it are
    // in its settlement. Planned again at the frozen 175, its last resort was bound to 157.5 and never filled: it
    // dead-lettered SETTLING with the fund's 20 USD recorded in no settlement.
    expect(liquidationA.state).toMatch(/^SETTLED_/);
    expect(position?.state).toBe('CLOSED');
    expect(p.errors).toEqual(['liquidations: ledger.apply']); // the injected crash alone
    expect((await p.check(1)).violations).toEqual([]);
  }, 60_000);
});
