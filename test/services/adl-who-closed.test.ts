import { describe, expect, it } from 'vitest';
import { adlClosesOf } from '../../cli/ops/liquidation-show.ts';
import type { AdlEvents } from '../../shared/domain/model.ts';
import { InjectedCrash } from '../../shared/ports/index.ts';
import { createPipeline, type Pipeline } from '../support/pipeline.ts';

/**
 * adl47-who-closed: a counterparty ADL reduced or closed names, on its own record, the liquidation that did it (and
 * the round), written by the commit that reduced it. Before, only the liquidation's frozen plan told, and only for
 * its settlement's counterparties: nothing on the position, so "why was my position closed?" needed a scan.
 */
describe('who ADL closed', () => {
  it("records the settlement's counterparties as its plan derives them, once though the delivery dies after the commit", async () => {
    let crashed = 0;
    const p: Pipeline = createPipeline({
      crashHook: (point) => {
        // Right after the commit that settled by ADL, before the delivery answers: the message comes back.
        if (crashed > 0 || point !== 'transactor.commit') return;
        if (p.adapters.liquidations.all().some((l) => l.state === 'SETTLED_ADL')) {
          crashed += 1;
          throw new InjectedCrash(point);
        }
      },
    });
    await p.tick('ETH-USD', '200');
    const long = await p.open('LONG', '10', '200', '200');
    const small = await p.open('SHORT', '3', '200', '40');
    const large = await p.open('SHORT', '20', '200', '900');
    // No book, no provider, no fund: ADL takes the long at the mark, the more leveraged short first.
    p.venue.faults.emptyBooks.add('ETH-USD');
    await p.tick('ETH-USD', '175');
    await p.drain();
    expect(crashed).toBe(1);

    const [liquidation] = p.adapters.liquidations.all().filter((l) => l.positionId === long.id);
    expect(liquidation?.state).toBe('SETTLED_ADL');
    const { fills } = adlClosesOf(liquidation!);
    expect(fills?.map((f) => f.id).sort()).toEqual([large.id, small.id].sort());
    for (const f of fills!) {
      const c = (await p.adapters.positions.get(f.id))!;
      expect(c.adlEvents).toEqual({
        total: 1,
        recent: [
          {
            liquidationId: liquidation!.id,
            round: 0,
            size: f.size,
            price: f.price,
            mark: liquidation!.context!.settle!.mark,
            given: f.pnlGiven,
            haircut: f.haircut,
            atMs: expect.any(Number),
          },
        ],
      });
    }
    // The smaller short was closed whole: its record names the liquidation and keeps what it was paid.
    const closed = (await p.adapters.positions.get(small.id))!;
    expect(closed.state).toBe('CLOSED');
    expect((closed.adlEvents as AdlEvents | undefined)?.recent[0]?.size).toBe(small.size);
    expect(closed.closedPayout).toBeGreaterThan(0n);
    // Positions ADL did not touch record nothing.
    expect((await p.adapters.positions.get(long.id))?.adlEvents).toBeUndefined();
    // One event per counterparty write, none changed by any other write (the invariants' adl events check).
    expect((await p.check()).violations).toEqual([]);
  });
});
