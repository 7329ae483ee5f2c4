import { describe, expect, it } from 'vitest';
import type { VenueFault } from '../../shared/adapters/venue/simulated.ts';
import { marketConfig } from '../../shared/domain/config.ts';
import { type BaseE8, div, PPM_SCALE, parseBase } from '../../shared/domain/units.ts';
import { decodeContext } from '../../shared/services/context.ts';
import { auctionIdOf } from '../../shared/services/liquidation.ts';
import { Rng } from '../../shared/sim/random.ts';
import { recordFigures } from '../support/invariants.ts';
import { createPipeline, syntheticBook } from '../support/pipeline.ts';

/**
 * Scenario 4, venue faults: timeouts (before the order executes, and after it executed with the answer lost),
 * rejections, outages, partial fills (a cap per order) and an empty book for part of the crash. The consumer tries
 * the venue at most venueAttempts times with the same client order id, then hands the rest to the auction. Every
 * fill the venue made must be recorded exactly once, and the auction's lot must be exactly what the venue left.
 *
 * Known bug (reported): when the LAST attempt times out after executing, the consumer gives up without the
 * answer, records no fill and auctions the whole slice: the venue's fill is recorded nowhere and the size is sold
 * twice ('fill-lost-after-timeouts'). Recognised below by its exact symptom; the failing test at the end passes
 * while the bug is there.
 */

const VENUE_ATTEMPTS = 3;
const LOST = /^venue: .*'s order executed but its answer was lost/;

function faultPlan(seed: number): (order: unknown, n: number) => VenueFault | undefined {
  const rng = new Rng(seed);
  return () => {
    const x = rng.next();
    if (x < 0.15) return 'timeout';
    if (x < 0.25) return 'timeout-after-fill';
    if (x < 0.35) return 'reject';
    if (x < 0.4) return 'unavailable';
    return undefined;
  };
}

async function runFaults(seed: number) {
  const p = createPipeline({ venueAttempts: VENUE_ATTEMPTS });
  await p.tick('ETH-USD', '200', { sequence: 1 });
  p.seed(syntheticBook({ count: 300, seed: 100 + seed, price: '200' }));
  await p.fund('5000000');
  await p.provider('lp-1', '50000000', '0.02', '1000');
  await p.provider('lp-2', '50000000', '0.05', '1000');
  p.venue.faults.plan = faultPlan(seed);
  p.venue.faults.maxFillPerOrder = parseBase('40'); // partial fills of the larger slices
  const path = ['196', '192', '188', '184', '180', '176'];
  for (const [i, price] of path.entries()) {
    // The book empties for two ticks in the middle of the crash.
    if (i === 2) p.venue.faults.emptyBooks.add('ETH-USD');
    if (i === 4) p.venue.faults.emptyBooks.delete('ETH-USD');
    p.clock.advance(60_000);
    await p.tick('ETH-USD', price);
    await p.drain();
  }
  return { p, report: await p.check() };
}

describe('scenario 4: venue faults', () => {
  it.each([1, 2, 3])(
    'timeouts, rejections, outages, partial fills and an empty book: bounded retries, then the auction (seed %i)',
    async (seed) => {
      const { p, report } = await runFaults(seed);
      const lost = report.violations.filter((v) => LOST.test(v));
      expect(report.violations.filter((v) => !LOST.test(v))).toEqual([]);
      expect(p.errors).toEqual([]);
      expect(report.figures.inFlight).toBe(0);

      const market = marketConfig(p.config, 'ETH-USD');
      let handedOver = 0;
      let partial = 0;
      let retried = 0;
      const faults: Record<string, number> = {};
      for (const [id, log] of p.orders.orders) {
        // Bounded: never more than venueAttempts calls per order (one delivery reached the venue).
        expect(log.calls, id).toBeLessThanOrEqual(VENUE_ATTEMPTS);
        if (log.calls > 1) retried += 1;
        faults[`${log.errors} failed call(s)`] = (faults[`${log.errors} failed call(s)`] ?? 0) + 1;
      }
      for (const l of p.adapters.liquidations.all()) {
        if (l.state === 'CANCELLED') continue;
        const context = decodeContext(l)!;
        const filled = l.marketFills.reduce((t, f) => t + f.size, 0n);
        // Within the slippage bound of the mark the order was priced against.
        const limit = div(context.executionMark * (PPM_SCALE - market.slippageBound), PPM_SCALE, 'ceil');
        for (const fill of l.marketFills) expect(fill.price, l.id).toBeGreaterThanOrEqual(limit);
        if (filled === context.plannedSize) continue;
        // What the venue left is exactly the auction's lot.
        const auction = await p.adapters.auctions.get(auctionIdOf(l.id));
        const lot: BaseE8 | undefined = auction?.lot;
        expect(lot, l.id).toBe(context.plannedSize - filled);
        if (filled === 0n) handedOver += 1;
        else partial += 1;
      }
      expect(handedOver).toBeGreaterThan(0);
      expect(partial).toBeGreaterThan(0);
      expect(retried).toBeGreaterThan(0);

      recordFigures(`4-venue-faults-seed${seed}`, {
        seed,
        orders: p.orders.orders.size,
        venueCalls: report.figures.venueCalls,
        ordersRetried: retried,
        callsByOrder: faults,
        handedOverWhole: handedOver,
        partialThenAuction: partial,
        knownBugFillsLost: lost.length,
        figures: report.figures,
      });
    },
  );

  it('a timeout after the order executed is recovered by the retry with the same client order id', async () => {
    const p = createPipeline({ venueAttempts: VENUE_ATTEMPTS });
    await p.tick('ETH-USD', '200');
    await p.open('LONG', '10', '200', '200');
    p.venue.injectFaults('timeout-after-fill');
    await p.tick('ETH-USD', '184');
    await p.drain();
    const report = await p.check();
    expect(report.violations).toEqual([]);
    const [log] = p.orders.orders.values();
    expect(log).toMatchObject({ calls: 2, errors: 1, executed: true });
    expect(p.adapters.liquidations.all()[0]?.state).toBe('SETTLED_MARKET');
  });

  it.fails('BUG fill-lost-after-timeouts: a last attempt that executed is never lost', async () => {
    const p = createPipeline({ venueAttempts: VENUE_ATTEMPTS });
    await p.tick('ETH-USD', '200');
    await p.provider('lp-1', '100000', '0.02', '100');
    await p.open('LONG', '10', '200', '200');
    p.venue.injectFaults('timeout', 'timeout', 'timeout-after-fill');
    await p.tick('ETH-USD', '184');
    await p.drain();
    const report = await p.check();
    expect(report.violations).toEqual([]);
  });
});
