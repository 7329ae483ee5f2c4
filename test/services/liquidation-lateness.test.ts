import { describe, expect, it } from 'vitest';
import { parseRiskConfig } from '../../shared/domain/config.ts';
import { METRICS } from '../../shared/metrics.ts';
import { createPipeline, type Pipeline } from '../support/pipeline.ts';
import { AUCTION_ONLY } from '../support/risk-configs.ts';

/**
 * How late each liquidation message runs, measured by the consumer from when it was due (LiquidationsLateAlarm).
 * Found by a review of the alarms in session 31: the liquidation queue's age alarm (120 s) read a queue that holds
 * messages sent up to 900 s ahead (the last resort's waits for the book), so it could not tell a consumer behind
 * from a wait.
 */
const lateness = (p: Pipeline) =>
  p.telemetry.observations.filter((o) => o.metric === METRICS.LiquidationLateness.name).map((o) => o.value);

describe('liquidation lateness', () => {
  it("counts a new liquidation's from its tick: a consumer 200 s behind shows 200 s", async () => {
    const p = createPipeline();
    await p.tick('ETH-USD', '200');
    await p.tick('ETH-USD', '200');
    await p.open('LONG', '10', '200', '200');
    await p.tick('ETH-USD', '184');
    p.clock.advance(200_000);
    await p.drain();
    expect(lateness(p)[0]).toBe(200);
    expect((await p.check()).violations).toEqual([]);
  });

  it('is nothing for messages sent ahead (waits for the book) that run when due', async () => {
    const p = createPipeline({ config: parseRiskConfig(AUCTION_ONLY) });
    await p.tick('ETH-USD', '200');
    await p.tick('ETH-USD', '200');
    await p.open('LONG', '10', '200', '200');
    p.venue.faults.emptyBooks.add('ETH-USD');
    await p.tick('ETH-USD', '184');
    await p.runUntil(p.clock.nowMs() + 10 * 60_000);
    expect(p.telemetry.total(METRICS.LastResortWaits.name)).toBe(4);
    p.venue.faults.emptyBooks.delete('ETH-USD');
    await p.drain();
    // The start, then the four waits' messages (60 to 480 s ahead), the last of which sells: each within the
    // second the harness steps by.
    expect(lateness(p)).toHaveLength(5);
    for (const seconds of lateness(p)) expect(seconds).toBeLessThanOrEqual(1);
  });

  it('is nothing for a message that waited for a fresh mark: the wait is the feed’s, counted apart', async () => {
    const p = createPipeline({ marks: 'as-configured' });
    await p.tick('ETH-USD', '200');
    await p.tick('ETH-USD', '200');
    await p.open('LONG', '10', '200', '200');
    await p.tick('ETH-USD', '184');
    // The feed stops before the consumer runs: past maxMarkAgeSeconds (120 s) the message waits, 30 s at a time.
    p.clock.advance(121_000);
    await p.runUntil(p.clock.nowMs() + 5 * 60_000);
    expect(p.telemetry.total(METRICS.StaleMarkWaits.name)).toBeGreaterThan(3);
    const [first, ...waits] = lateness(p);
    expect(first).toBe(121);
    expect(waits.length).toBeGreaterThan(3);
    for (const seconds of waits) expect(seconds).toBeLessThanOrEqual(1);
  });
});

describe('liquidation lateness of a delivery that runs out of time', () => {
  // Review of metrics-per-market in session 40: the lateness moved to the delivery's end (once the record named its
  // market), so a delivery the function's timeout ends (a venue that hangs) never stored it, and the deadline's
  // flush had nothing to publish: LiquidationsLateAlarm lost exactly the deliveries that run out of time.
  it('is stored once the record is read, before the venue answers, and only once', async () => {
    let hang = false;
    let hung = 0;
    const p = createPipeline({
      wrapVenue: (venue) => ({
        placeIoc: (order) => {
          if (!hang) return venue.placeIoc(order);
          hung += 1;
          return new Promise(() => {});
        },
        quote: (symbol, reference) => venue.quote(symbol, reference),
      }),
    });
    await p.tick('ETH-USD', '200');
    await p.tick('ETH-USD', '200');
    await p.open('LONG', '10', '200', '200');
    await p.tick('ETH-USD', '184');
    p.clock.advance(200_000);
    hang = true;
    const [message] = await p.adapters.liquidationQueue.receive(1, 30);
    if (!message) throw new Error('no liquidation message');
    void p.handlers.liquidation(message);
    for (let i = 0; i < 50; i++) await new Promise((resolve) => setImmediate(resolve));
    expect(hung).toBe(1);
    // The delivery waits on the venue: what a deadline's flush publishes must hold its lateness.
    expect(lateness(p)).toEqual([200]);
    expect(p.telemetry.unmarked).toEqual(new Set());
    hang = false;
  });
});
