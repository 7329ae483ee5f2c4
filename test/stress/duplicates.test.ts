import { describe, expect, it } from 'vitest';
import type { EmbeddedQueue } from '../../shared/adapters/embedded/index.ts';
import type { Tick } from '../../shared/domain/tick.ts';
import { parsePrice } from '../../shared/domain/units.ts';
import type { ReceivedMessage } from '../../shared/ports/index.ts';
import { Rng } from '../../shared/sim/random.ts';
import { recordFigures } from '../support/invariants.ts';
import { createPipeline, type Pipeline, syntheticBook } from '../support/pipeline.ts';

/**
 * Scenario 1, duplicate storms: every tick event and every queue message is delivered one to three times, in
 * shuffled order (seeded). Ticks are shuffled within windows of three (EventBridge does not order), so some
 * arrive after a newer one and are refused as out of order. Queue messages are duplicated three ways: the
 * embedded queue stores some twice (two deliveries of one message id, as SQS standard queues may), the consumer
 * runs some twice or three times in one shuffled batch, and some deletes are lost, so the message comes back
 * after its visibility timeout. Nothing may happen twice and nothing may be lost.
 */

const PATH = ['197', '193', '195', '189', '184', '186', '180', '176', '178', '172', '170', '168'];

function shuffle<T>(items: T[], rng: Rng): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = rng.int(0, i);
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

interface StormCounts {
  received: number;
  handlerRuns: number;
  lostDeletes: number;
  failedRuns: number;
}

/** One storm round over whatever is visible now on both queues; returns whether anything was received. */
async function stormRound(p: Pipeline, rng: Rng, counts: StormCounts): Promise<boolean> {
  const queues: [EmbeddedQueue, (m: ReceivedMessage) => Promise<unknown>][] = [
    [p.adapters.liquidationQueue, p.handlers.liquidation],
    [p.adapters.auctionQueue, p.handlers.auction],
  ];
  let any = false;
  for (const [queue, handle] of queues) {
    const batch = await queue.receive(10, 30);
    if (batch.length === 0) continue;
    any = true;
    counts.received += batch.length;
    const runs = shuffle(
      batch.flatMap((m) => Array.from({ length: rng.int(1, 3) }, () => m)),
      rng,
    );
    const succeeded = new Set<string>();
    for (const m of runs) {
      counts.handlerRuns += 1;
      try {
        await handle(m);
        succeeded.add(m.receiptHandle);
      } catch (error) {
        counts.failedRuns += 1;
        p.errors.push(`${queue.name}: ${(error as Error).message}`);
      }
    }
    for (const m of batch) {
      if (!succeeded.has(m.receiptHandle)) continue;
      // A lost delete: the message comes back after its visibility timeout (bounded below the DLQ threshold).
      if (m.receiveCount < 3 && rng.chance(0.2)) {
        counts.lostDeletes += 1;
        continue;
      }
      await queue.delete(m.receiptHandle);
    }
  }
  return any;
}

async function runStorm(seed: number) {
  const rng = new Rng(seed);
  const p = createPipeline();
  await p.tick('ETH-USD', '200', { sequence: 1 });
  p.seed(syntheticBook({ count: 300, seed, price: '200' }));
  await p.fund('2000000');
  await p.provider('lp-1', '20000000', '0.02', '1000');
  await p.provider('lp-2', '20000000', '0.04', '1000');
  // Queue-level duplicates: three in ten messages are stored twice.
  p.adapters.liquidationQueue.faults.duplicateWhen = () => rng.chance(0.3);
  p.adapters.auctionQueue.faults.duplicateWhen = () => rng.chance(0.3);

  // The feed: one event per price, 10 s apart, each delivered 1-3 times, shuffled within windows of three.
  const events: Tick[] = [];
  const deliveries: { event: Tick; at: number }[] = [];
  PATH.forEach((price, i) => {
    const event: Tick = {
      symbol: 'ETH-USD',
      markPrice: parsePrice(price),
      timestampMs: p.clock.nowMs() + (i + 1) * 10_000,
      sequence: i + 2,
      source: 'storm',
    };
    events.push(event);
  });
  for (let w = 0; w < events.length; w += 3) {
    const window = events
      .slice(w, w + 3)
      .flatMap((event) => Array.from({ length: rng.int(1, 3) }, () => ({ event, at: 0 })));
    deliveries.push(...shuffle(window, rng));
  }

  const counts: StormCounts = { received: 0, handlerRuns: 0, lostDeletes: 0, failedRuns: 0 };
  const outcomes: Record<string, number> = {};
  for (const d of deliveries) {
    p.clock.set(Math.max(p.clock.nowMs(), d.event.timestampMs) + rng.int(0, 5) * 1000);
    const outcome = await p.deliverTick(d.event);
    const key = outcome.status === 'accepted' ? 'accepted' : outcome.reason;
    outcomes[key] = (outcomes[key] ?? 0) + 1;
    // The consumers run between ticks on whatever is visible now.
    while (await stormRound(p, rng, counts)) {}
  }
  // Then until every queue is empty, with time moving through delays and visibility timeouts.
  for (let guard = 0; guard < 20_000 && !(await p.idle()); guard++) {
    if (!(await stormRound(p, rng, counts))) p.clock.advance(1000);
  }
  const report = await p.check();
  return { p, report, counts, outcomes, ticks: events.length, tickDeliveries: deliveries.length };
}

describe('scenario 1: duplicate storms', () => {
  it.each([1, 2, 3])(
    'delivers every tick and message 1-3 times, shuffled, and nothing happens twice (seed %i)',
    async (seed) => {
      const { p, report, counts, outcomes, ticks, tickDeliveries } = await runStorm(seed);

      expect(report.violations).toEqual([]);
      expect(p.errors).toEqual([]);
      expect(await p.idle()).toBe(true);
      // The storm really stormed: duplicates were delivered and refused, messages ran more than once.
      expect(tickDeliveries).toBeGreaterThan(ticks);
      expect(outcomes['tick/duplicate']).toBeGreaterThan(0);
      expect(counts.handlerRuns).toBeGreaterThan(counts.received);
      expect(report.figures.liquidations).toBeGreaterThan(50);
      // One market order per liquidation however often it ran: retries reuse the client order id.
      expect(report.figures.venueExecutions).toBe(report.figures.venueOrders);
      expect(report.figures.venueOrders).toBeLessThanOrEqual(report.figures.liquidations);
      expect(report.figures.inFlight).toBe(0);

      recordFigures(`1-duplicates-seed${seed}`, {
        seed,
        tickEvents: ticks,
        tickDeliveries,
        tickOutcomes: outcomes,
        messagesReceived: counts.received,
        handlerRuns: counts.handlerRuns,
        lostDeletes: counts.lostDeletes,
        failedRuns: counts.failedRuns,
        figures: report.figures,
        violations: report.violations,
      });
    },
  );
});
