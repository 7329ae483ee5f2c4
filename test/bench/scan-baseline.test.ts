import { describe, expect, it, vi } from 'vitest';
import { BENCH_SYMBOL, markCrossing, restingMark, syntheticBook } from '../../bench/book.ts';
import { ScanningPositions } from '../../bench/margin.ts';
import { createEmbeddedAdapters } from '../../shared/adapters/embedded/index.ts';
import { DEFAULT_RISK_CONFIG } from '../../shared/domain/config.ts';
import { silentTelemetry } from '../../shared/ports/index.ts';
import { handleTick, type MarginCheckDeps } from '../../shared/services/margin-check.ts';

/**
 * Part 1's full-scan baseline reads the book once per tick: a tick queries both sides, and a scanning bot reads its
 * table once for both. Found by a review of the benchmark in session 25: each side's query scanned the whole book,
 * doubling the baseline's cost (and the index's ratio against it).
 */
describe('margin-check benchmark: the full-scan baseline', () => {
  it('reads the book once per tick crossing nothing', async () => {
    const book = syntheticBook(1_000);
    const adapters = createEmbeddedAdapters();
    adapters.positions.createMany(book.positions);
    const deps: MarginCheckDeps = {
      positions: new ScanningPositions(adapters.positions),
      markets: adapters.markets,
      liquidations: adapters.liquidations,
      liquidationQueue: adapters.liquidationQueue,
      auctions: adapters.auctions,
      auctionQueue: adapters.auctionQueue,
      config: DEFAULT_RISK_CONFIG,
      telemetry: silentTelemetry,
      maxPositionsPerInvocation: 1000,
    };
    let sequence = 0;
    let now = Date.UTC(2020, 2, 12);
    const tick = (mark: bigint) => {
      sequence += 1;
      now += 1000;
      return handleTick(
        { symbol: BENCH_SYMBOL, markPrice: mark, timestampMs: now, sequence, source: 'bench' },
        deps,
        now,
      );
    };
    await tick(restingMark(book)); // first print
    await tick(restingMark(book));
    const passes = vi.spyOn(adapters.positions, 'scanCrossedBothSides');
    const perSide = vi.spyOn(adapters.positions, 'scanCrossed');
    const outcome = await tick(markCrossing(book, 0));
    expect(outcome.status).toBe('accepted');
    // Each scan iterates every record of the book: one per tick.
    expect(passes).toHaveBeenCalledTimes(1);
    expect(perSide).not.toHaveBeenCalled();
  });
});
