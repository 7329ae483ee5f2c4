import { describe, expect, it } from 'vitest';
import { topForAdl } from '../../shared/domain/adl.ts';
import { parseBase, parsePrice, parseQuote } from '../../shared/domain/units.ts';
import type { PositionRecord } from '../../shared/ports/index.ts';
import { AdlSnapshots } from '../../shared/services/adl-snapshots.ts';
import { withLiquidationPrice } from '../../shared/services/margin-check.ts';
import { createPipeline } from '../support/pipeline.ts';

/**
 * A container's ADL queue holds the side's best 2,000 at a mark; a member ADL itself changes is read again and
 * moved to its rank now. Found by an ADL review in session 25: when that rank fell below the last the queue held
 * (positions it never held rank above it), the queue still served the member first.
 *
 *   X  short 1 @200, 5 USD: ranks first; the first plan closes 0.9 of it, its 0.1 left ranks below every member.
 *   M  1,999 shorts 0.1 @200, 1 USD: the rest of the queue.
 *   Z  short 0.1 @200, 2 USD: 2,001st when ranked (not in the queue), yet far above what is left of X.
 *
 * Once ADL has spent the members (all at mark 175, within the queue's 2 s: the manual clock never moves), the
 * next 0.1 to deleverage goes to Z, the best-ranked short (profit x leverage, adl.ts), as without the cache.
 */
describe('ADL queue: a member ADL moved below the queue horizon', () => {
  it('is not served ahead of a better-ranked position the incomplete queue does not hold', async () => {
    const p = createPipeline({ adlSnapshots: new AdlSnapshots() });
    await p.tick('ETH-USD', '200'); // a market's first print waits for a second
    await p.tick('ETH-USD', '200');
    const x = await p.open('SHORT', '1', '200', '5');
    const z = await p.open('SHORT', '0.1', '200', '2');
    const members: PositionRecord[] = [];
    for (let i = 0; i < 1999; i++)
      members.push(
        withLiquidationPrice(
          {
            id: `m${String(i).padStart(4, '0')}`,
            traderId: `tm${i}`,
            symbol: 'ETH-USD',
            side: 'SHORT',
            size: parseBase('0.1'),
            entryPrice: parsePrice('200'),
            collateral: parseQuote('1'),
            state: 'OPEN',
            version: 0,
          },
          p.config,
        ),
      );
    p.seed(members);
    // No book: ADL takes every slice at the mark (no deficit: each long is liquidatable, not bankrupt).
    p.venue.faults.emptyBooks.add('ETH-USD');

    // 1. ADL closes 0.9 of X (ranked first): the queue is ranked now, X is left with 0.1 and 27.5 USD.
    await p.open('LONG', '0.9', '200', '24');
    await p.tick('ETH-USD', '175');
    await p.runUntil(p.clock.nowMs());
    expect((await p.adapters.positions.get(x.id))?.size).toBe(parseBase('0.1'));

    // 2. ADL spends the 1,999 members (22 x 90 + 19), on the same queue.
    for (let i = 0; i < 22; i++) await p.open('LONG', '9', '200', '240');
    await p.open('LONG', '1.9', '200', '50');
    await p.tick('ETH-USD', '175');
    await p.runUntil(p.clock.nowMs());
    const open = p.adapters.positions.scanCrossed('ETH-USD', 'SHORT', 10n ** 30n);
    expect(open.map((r) => r.id).sort()).toEqual([x.id, z.id].sort());
    // The rule's order now: Z first, far above what is left of X.
    const ranked = topForAdl(open, parsePrice('175'), 'LONG', 2);
    expect(ranked.map((r) => r.id)).toEqual([z.id, x.id]);

    // 3. One more 0.1 to deleverage at the same mark.
    const last = await p.open('LONG', '0.1', '200', '2.8');
    await p.tick('ETH-USD', '175');
    await p.runUntil(p.clock.nowMs());
    const settled = p.adapters.liquidations.all().find((l) => l.positionId === last.id)!;
    expect(settled.settlement?.adlClosedSize).toBe(parseBase('0.1'));
    const zAfter = (await p.adapters.positions.get(z.id))!;
    const xAfter = (await p.adapters.positions.get(x.id))!;
    // The best-ranked short (Z) is deleveraged, X is left alone (X was taken before the fix).
    expect({ z: zAfter.state, x: xAfter.state }).toEqual({ z: 'CLOSED', x: 'OPEN' });
    expect((await p.check()).violations).toEqual([]);
  }, 120_000);
});
