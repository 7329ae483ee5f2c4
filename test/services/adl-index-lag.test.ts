import { describe, expect, it } from 'vitest';
import { EmbeddedPositionRepository } from '../../shared/adapters/embedded/positions.ts';
import type { PositionRecord } from '../../shared/ports/index.ts';
import { createPipeline, type Pipeline } from '../support/pipeline.ts';

/**
 * On AWS, ADL's orders are read from GSIs (eventually consistent): a ranking may see a position as it was before a
 * write of the last moments. Found by a review of the AWS adapters in session 25: a ranking that found the side
 * spent froze `adlExhausted` and no round followed, so a deficit stayed bad debt while a short ADL had just funded
 * (a close realized its profit into collateral) could still give. A ranking that finds nobody left is now
 * confirmed by a round a moment later (docs/RELIABILITY.md, adl-index-lag).
 *
 * The GSI is modelled by a replica that shows each position as it was LAG_MS earlier, on the ADL orders only;
 * everything else reads the store as it is. The scenario is haircut-queue-complete's (test/services/adl-rounds
 * .test.ts) without a cached queue: the second settlement, 100 ms after the first, ranks the side from the index.
 */
const LAG_MS = 500;

function lagAdlIndexes(p: Pipeline): void {
  const store = p.adapters.positions;
  // As the AWS adapter declares its GSIs' lag (adlOrdersLagMs), this replica declares its own.
  Object.assign(store, { adlOrdersLagMs: LAG_MS });
  const history = new Map<string, { atMs: number; record: PositionRecord }[]>();
  const write = store.write.bind(store);
  Object.assign(store, {
    write: (current: PositionRecord | undefined, next: PositionRecord) => {
      write(current, next);
      const list = history.get(next.id) ?? [];
      list.push({ atMs: p.clock.nowMs(), record: next });
      history.set(next.id, list);
    },
  });
  Object.assign(store, {
    queryAdlOrder: async (...args: Parameters<typeof store.queryAdlOrder>) => {
      const visibleAt = p.clock.nowMs() - LAG_MS;
      const replica = new EmbeddedPositionRepository();
      const view: PositionRecord[] = [];
      for (const versions of history.values()) {
        const seen = versions.filter((v) => v.atMs <= visibleAt).at(-1);
        if (seen) view.push(seen.record);
      }
      replica.createMany(view);
      return replica.queryAdlOrder(...args);
    },
  });
}

describe('ADL ranks counterparties from an eventually consistent index (AWS GSI)', () => {
  it('a deficit 100 ms after ADL funded a short is covered by that short, not reported as bad debt', async () => {
    const p = createPipeline();
    lagAdlIndexes(p);
    await p.tick('ETH-USD', '200'); // a market's first print waits for a second
    await p.tick('ETH-USD', '200');
    const l1 = await p.open('LONG', '10', '200', '200'); // bankrupt at 180
    // S1: profit at 175 (250 USD), no collateral (a haircut took it): gives only by closing.
    const s1 = await p.open('SHORT', '10', '200', '10');
    const stored = (await p.adapters.positions.get(s1.id))!;
    await p.adapters.positions.replace(
      { ...stored, collateral: 0n, version: stored.version + 1 },
      stored.version,
    );
    // S2: gives 5 USD out of its collateral, once.
    await p.open('SHORT', '1', '200', '5');
    p.clock.advance(5_000); // the index has every position
    await p.tick('ETH-USD', '175');
    await p.runUntil(p.clock.nowMs());
    const first = p.adapters.liquidations.all().find((l) => l.positionId === l1.id)!;
    expect(first.settlement?.badDebt).toBeGreaterThan(0n); // right then: nobody else could give
    const l2 = await p.open('LONG', '1', '200', '28'); // liquidatable at 175, bankrupt at 172
    p.clock.advance(5_000); // the index has caught up with L1's settlement

    // L2: the book is empty, ADL closes 1 of S1 at 175 (no deficit): S1 realizes 25 USD into its collateral.
    p.venue.faults.emptyBooks.add('ETH-USD');
    await p.tick('ETH-USD', '175');
    await p.runUntil(p.clock.nowMs());
    expect(p.adapters.liquidations.all().find((l) => l.positionId === l2.id)?.settlement?.adlClosedSize).toBe(
      100_000_000n,
    );
    const s1After = (await p.adapters.positions.get(s1.id))!;
    expect(s1After.collateral).toBeGreaterThan(0n);
    const covered = () =>
      p.adapters.liquidations.all().reduce((sum, l) => sum + (l.settlement?.adlCovered ?? 0n), 0n);
    const coveredBefore = covered();

    // L3, crossed by the next print 100 ms later: the market closes it, ADL only takes a haircut.
    p.venue.faults.emptyBooks.delete('ETH-USD');
    const l3 = await p.open('LONG', '10', '200', '200');
    p.clock.advance(100);
    await p.tick('ETH-USD', '175');
    await p.runUntil(p.clock.nowMs());
    await p.drain();
    const third = p.adapters.liquidations.all().find((l) => l.positionId === l3.id)!;
    expect(third.settlement?.adlClosedSize).toBe(0n);
    expect(third.settlement?.badDebt).toBeGreaterThan(0n);
    const s1Final = (await p.adapters.positions.get(s1.id))!;
    // S1's 25 USD cover a deficit (L1's, whose rounds confirm a moment later too, or L3's) instead of staying with
    // S1 while bad debt is reported final. Every liquidation's rounds ended.
    expect({ covered: covered() - coveredBefore, s1Collateral: s1Final.collateral }).toEqual({
      covered: s1After.collateral,
      s1Collateral: 0n,
    });
    expect(p.adapters.liquidations.all().filter((l) => l.context?.adlRound)).toEqual([]);
  });
});
