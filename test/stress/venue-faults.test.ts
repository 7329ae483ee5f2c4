import { describe, expect, it } from 'vitest';
import type { VenueFault } from '../../shared/adapters/venue/simulated.ts';
import { marketConfig } from '../../shared/domain/config.ts';
import { type BaseE8, div, PPM_SCALE, parseBase } from '../../shared/domain/units.ts';
import { auctionIdOf } from '../../shared/services/liquidation.ts';
import { Rng } from '../../shared/sim/random.ts';
import { recordFigures } from '../support/invariants.ts';
import { createPipeline, syntheticBook } from '../support/pipeline.ts';

/**
 * Scenario 4, venue faults: timeouts (before the order executes, and after it executed with the answer lost),
 * rejections, outages, partial fills (a cap per order) and an empty book for part of the crash. The consumer tries
 * the venue at most venueAttempts times per delivery with the same client order id. When every attempt was refused
 * (rejected, unavailable), the order did not execute and the whole slice goes to the auction. When one of them
 * timed out, the order may have executed: the delivery fails, and SQS redelivers the message, which asks the venue
 * again with the same id (a venue that never answers ends in the dead-letter queue after maxReceiveCount
 * receives). Every fill the venue made must be recorded exactly once, and the auction's lot must be exactly what
 * the venue left.
 */

const VENUE_ATTEMPTS = 3;
/** A delivery that gave up on a timeout: the handler's error, as Lambda reports it. */
const TIMED_OUT = /^liquidations: venue\/timeout: (\S+:market)( \(executed, answer lost\))?$/;

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
    'timeouts, rejections, outages, partial fills and an empty book: bounded retries, then redelivery or the auction (seed %i)',
    async (seed) => {
      const { p, report } = await runFaults(seed);
      expect(report.violations).toEqual([]);
      expect(report.figures.inFlight).toBe(0);
      expect(report.figures.deadLetters).toBe(0);

      // The only failures are deliveries that gave up on a timeout; count them per client order id.
      const redelivered = new Map<string, number>();
      let answersLost = 0;
      for (const error of p.errors) {
        const match = TIMED_OUT.exec(error);
        expect(match, error).not.toBeNull();
        redelivered.set(match![1]!, (redelivered.get(match![1]!) ?? 0) + 1);
        if (match![2]) answersLost += 1;
      }

      const market = marketConfig(p.config, 'ETH-USD');
      let handedOver = 0;
      let refusedWhole = 0;
      let partial = 0;
      let retried = 0;
      let redeliveredExecuted = 0;
      const faults: Record<string, number> = {};
      for (const [id, log] of p.orders.orders) {
        // Bounded: venueAttempts calls per delivery. Each failed delivery used all of them, the last one at least one.
        const failed = redelivered.get(id) ?? 0;
        expect(log.calls, id).toBeGreaterThan(failed * VENUE_ATTEMPTS);
        expect(log.calls, id).toBeLessThanOrEqual((failed + 1) * VENUE_ATTEMPTS);
        if (log.calls > 1) retried += 1;
        if (failed > 0 && log.executed) redeliveredExecuted += 1;
        faults[`${log.errors} failed call(s)`] = (faults[`${log.errors} failed call(s)`] ?? 0) + 1;
      }
      for (const l of p.adapters.liquidations.all()) {
        if (l.state === 'CANCELLED') continue;
        const context = l.context!;
        const filled = l.marketFills.reduce((t, f) => t + f.size, 0n);
        // Within the slippage bound of the mark the order was priced against.
        const limit = div(context.executionMark * (PPM_SCALE - market.slippageBound), PPM_SCALE, 'ceil');
        for (const fill of l.marketFills) expect(fill.price, l.id).toBeGreaterThanOrEqual(limit);
        if (filled === context.plannedSize) continue;
        // What the venue left is exactly the auction's lot.
        const auction = await p.adapters.auctions.get(auctionIdOf(l.id));
        const lot: BaseE8 | undefined = auction?.lot;
        expect(lot, l.id).toBe(context.plannedSize - filled);
        if (filled === 0n) {
          handedOver += 1;
          // Handed over whole: the venue refused every attempt (never executed), or filled nothing (empty book).
          const log = p.orders.orders.get(`${l.id}:market`);
          if (log?.executed) expect(log.result?.fills, l.id).toEqual([]);
          else refusedWhole += 1;
        } else partial += 1;
      }
      expect(handedOver).toBeGreaterThan(0);
      expect(partial).toBeGreaterThan(0);
      expect(retried).toBeGreaterThan(0);
      // The seeds hit the case the redelivery exists for: a delivery that gave up after the venue had executed.
      expect(answersLost).toBeGreaterThan(0);
      expect(redeliveredExecuted).toBeGreaterThan(0);

      recordFigures(`4-venue-faults-seed${seed}`, {
        seed,
        orders: p.orders.orders.size,
        venueCalls: report.figures.venueCalls,
        ordersRetried: retried,
        callsByOrder: faults,
        deliveriesGivenUpOnTimeout: p.errors.length,
        ordersRedelivered: redelivered.size,
        givenUpAfterExecution: answersLost,
        redeliveredOrdersExecuted: redeliveredExecuted,
        handedOverWhole: handedOver,
        handedOverAfterRefusals: refusedWhole,
        partialThenAuction: partial,
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

  it('rejections and an outage on every attempt: no redelivery, the whole slice goes to the auction', async () => {
    const p = createPipeline({ venueAttempts: VENUE_ATTEMPTS });
    await p.tick('ETH-USD', '200');
    await p.provider('lp-1', '100000', '0.02', '100');
    await p.open('LONG', '10', '200', '200');
    p.venue.injectFaults('reject', 'unavailable', 'reject');
    await p.tick('ETH-USD', '184');
    await p.drain();
    const report = await p.check();
    expect(report.violations).toEqual([]);
    expect(p.errors).toEqual([]);
    const [log] = p.orders.orders.values();
    expect(log).toMatchObject({ calls: VENUE_ATTEMPTS, errors: VENUE_ATTEMPTS, executed: false });
    const [l] = p.adapters.liquidations.all();
    expect(l?.state).toBe('SETTLED_AUCTION');
    expect((await p.adapters.auctions.get(auctionIdOf(l!.id)))?.lot).toBe(parseBase('10'));
  });

  it('fill-lost-after-timeouts: a last attempt that executed is never lost', async () => {
    // Formerly the consumer gave up after the third attempt without the answer and auctioned the whole slice.
    const p = createPipeline({ venueAttempts: VENUE_ATTEMPTS });
    await p.tick('ETH-USD', '200');
    await p.provider('lp-1', '100000', '0.02', '100');
    await p.open('LONG', '10', '200', '200');
    p.venue.injectFaults('timeout', 'timeout', 'timeout-after-fill');
    await p.tick('ETH-USD', '184');
    await p.drain();
    const report = await p.check();
    expect(report.violations).toEqual([]);
    // The delivery gave up on the timeout; its redelivery got the answer with the same id: no auction.
    const id = p.adapters.liquidations.all()[0]!.id;
    expect(p.errors).toEqual([`liquidations: venue/timeout: ${id}:market (executed, answer lost)`]);
    const [log] = p.orders.orders.values();
    expect(log).toMatchObject({ calls: 4, errors: 3, executed: true });
    expect(p.adapters.liquidations.all().map((l) => l.state)).toEqual(['SETTLED_MARKET']);
    expect(p.adapters.auctions.all()).toEqual([]);
  });

  it('a venue that never answers: redelivered with the same id, then dead-lettered; a redrive settles it once', async () => {
    const p = createPipeline({ venueAttempts: VENUE_ATTEMPTS });
    await p.tick('ETH-USD', '200');
    await p.provider('lp-1', '100000', '0.02', '100');
    await p.open('LONG', '10', '200', '200');
    p.venue.faults.plan = () => 'timeout';
    await p.tick('ETH-USD', '184');
    await p.drain();
    const [liquidation] = p.adapters.liquidations.all();
    const id = liquidation!.id;
    const receives = 5; // the liquidations queue's maxReceiveCount (topology.ts)

    // Each receive tried the venue venueAttempts times with the same id, then failed on the timeout.
    expect(p.errors).toEqual(Array(receives).fill(`liquidations: venue/timeout: ${id}:market`));
    expect(p.orders.orders.get(`${id}:market`)).toMatchObject({
      calls: receives * VENUE_ATTEMPTS,
      executed: false,
    });
    // Dead-lettered with the reason the records give (`backstop dlq list`): EXECUTING, its order fixed; nothing
    // was handed to the auction and the position waits, LIQUIDATING.
    const dead = p.adapters.liquidationDeadLetters.pending();
    expect(dead.map((d) => [JSON.parse(d.body).liquidationId, d.receiveCount])).toEqual([[id, receives]]);
    expect(liquidation).toMatchObject({ state: 'EXECUTING', marketFills: [] });
    expect(liquidation!.history.at(-1)?.note).toMatch(/^size \d+ limit \d+$/);
    expect(p.adapters.auctions.all()).toEqual([]);
    expect((await p.adapters.positions.get(liquidation!.positionId))?.state).toBe('LIQUIDATING');
    const stuck = await p.check(1);
    expect(stuck.violations).toEqual([`stranded: ${id} is EXECUTING with no message in flight`]);

    // The venue is back; the operator redrives the dead letter (receive, resend, delete, as `dlq redrive` does).
    p.venue.faults.plan = undefined;
    for (const m of await p.adapters.liquidationDeadLetters.receive(10, 30)) {
      await p.adapters.liquidationQueue.send(m.body);
      await p.adapters.liquidationDeadLetters.delete(m.receiptHandle);
    }
    await p.drain();
    const report = await p.check();
    expect(report.violations).toEqual([]);
    expect(p.adapters.liquidations.all().map((l) => l.state)).toEqual(['SETTLED_MARKET']);
    expect(p.orders.orders.get(`${id}:market`)).toMatchObject({
      calls: receives * VENUE_ATTEMPTS + 1,
      executed: true,
    });
    expect(report.figures.venueExecutions).toBe(1);
  });
});
