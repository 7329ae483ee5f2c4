import { describe, expect, it, vi } from 'vitest';
import { base } from '../../shared/domain/units.ts';
import { createPipeline } from '../support/pipeline.ts';

/**
 * Found by an audit of slices in session 37: a slice whose last resort filled nothing waits for the book, and every
 * later delivery only asked the venue again. ADL had found nobody in profit when the wait began; as the crash went
 * on, the other side came into profit, but the slice never planned again: it waited out its budget (4 h) and was
 * dead-lettered, the position left past its bankruptcy price with a counterparty able to take it.
 */
describe('a slice waiting for the book', () => {
  it('is planned again, ADL first, once the mark puts the other side in profit', async () => {
    const p = createPipeline();
    await p.fund('1000000');
    await p.tick('ETH-USD', '200');
    await p.tick('ETH-USD', '200');
    const whale = await p.open('LONG', '1000', '200', '20000'); // bankrupt at 180
    const short = await p.open('SHORT', '500', '178', '20000'); // in profit below 178 only
    p.venue.faults.emptyBooks.add('ETH-USD'); // no book, no providers
    await p.tick('ETH-USD', '184');
    await p.runUntil(p.clock.nowMs() + 10_000);
    const first = p.adapters.liquidations.all().find((l) => l.positionId === whale.id)!;
    // Nothing could take the slice at 184: its last resort filled nothing and it waits for the book.
    expect(first.context?.lastResortAttempt).toBe(1);
    expect(first.state).toBe('MARKET_EXECUTED');

    for (const price of ['180', '176', '172', '170']) {
      await p.tick('ETH-USD', price);
      await p.runUntil(p.clock.nowMs() + 10_000);
    }
    await p.runUntil(p.clock.nowMs() + 30 * 60_000);
    const settled = (await p.adapters.liquidations.get(first.id))!;
    expect(settled.state).toBe('SETTLED_ADL');
    expect(settled.settlement?.adlClosedSize).toBe(base('250'));
    // The short gave all it had to the slices; the rest of the whale waits for liquidity nobody has.
    expect((await p.adapters.positions.get(short.id))?.state).toBe('CLOSED');
    expect((await p.adapters.positions.get(whale.id))?.size).toBe(base('500'));
  });

  it("does not plan again while the mark has not moved the other side's way", async () => {
    const p = createPipeline();
    await p.fund('1000000');
    await p.tick('ETH-USD', '200');
    await p.tick('ETH-USD', '200');
    const whale = await p.open('LONG', '1000', '200', '20000');
    await p.open('SHORT', '500', '178', '20000');
    p.venue.faults.emptyBooks.add('ETH-USD');
    await p.tick('ETH-USD', '184');
    await p.runUntil(p.clock.nowMs() + 10_000);
    const reads = vi.spyOn(p.adapters.positions, 'queryAdlOrder');
    // The mark goes back up: the short is further from profit, no plan is made again on the waits.
    await p.tick('ETH-USD', '186');
    await p.runUntil(p.clock.nowMs() + 30 * 60_000);
    expect(reads).not.toHaveBeenCalled();
    const first = p.adapters.liquidations.all().find((l) => l.positionId === whale.id)!;
    expect(first.state).toBe('MARKET_EXECUTED');
  });
});
