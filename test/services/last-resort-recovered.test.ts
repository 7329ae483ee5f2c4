import { describe, expect, it } from 'vitest';
import { createPipeline } from '../support/pipeline.ts';

/**
 * A slice nobody could close waits for the book (the last resort's waits: about 4 hours in all). When the mark
 * recovers meanwhile and nothing has executed, the position is healthy: it is cancelled as a queued one would be,
 * not sold within the last resort's wider bound once the book returns (last-resort-recovered).
 */
describe('a last resort waiting for the book, on a position healthy again', () => {
  it('is cancelled when nothing executed, and places no further order', async () => {
    const p = createPipeline();
    await p.fund('100000');
    await p.tick('ETH-USD', '200'); // a market's first print waits for a second
    await p.tick('ETH-USD', '200');
    const long = await p.open('LONG', '10', '200', '200'); // liquidated below 184.6
    await p.open('SHORT', '10', '170', '400'); // no profit at 184: no ADL counterparty (healthy at 190)
    p.venue.faults.emptyBooks.add('ETH-USD'); // no market fill, no bid: the last resort fills nothing and waits
    await p.tick('ETH-USD', '184');
    await p.runUntil(p.clock.nowMs() + 10_000);
    const waiting = p.adapters.liquidations.all().find((l) => l.positionId === long.id)!;
    expect(waiting.state).not.toMatch(/^(SETTLED_|CANCELLED)/);
    expect(waiting.context?.lastResortAttempt).toBe(1);
    // The mark recovers (the book is still empty): at its next wait the slice is healthy.
    await p.tick('ETH-USD', '190');
    await p.drain(8 * 3600);
    const done = p.adapters.liquidations.all().find((l) => l.positionId === long.id)!;
    expect(done.state).toBe('CANCELLED');
    expect(await p.adapters.positions.get(long.id)).toMatchObject({ state: 'OPEN', size: long.size });
    expect([...p.orders.orders.keys()].filter((id) => id.startsWith(done.id))).toEqual([
      `${done.id}:market`,
      `${done.id}:last-resort:0`,
    ]);
    expect(p.errors).toEqual([]);
    expect((await p.check()).violations).toEqual([]);
  }, 60_000);
});
