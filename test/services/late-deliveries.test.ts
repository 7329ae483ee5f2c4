import { describe, expect, it } from 'vitest';
import { METRICS } from '../../shared/metrics.ts';
import { createPipeline, type Pipeline, T0 } from '../support/pipeline.ts';

const HOUR = 3_600_000;

/**
 * Found by a review of late deliveries, session 27: a message that comes back late (its delivery died: a
 * redelivery after the visibility timeout, a dead-letter redrive) acted on what it carried, not on now.
 * - ADL's confirming round (adl-index-lag) ranked at the mark of the finding it confirms however late it ran: an
 *   hour later it haircut a counterparty opened since, at a mark the market had left. It ranks at the mark of
 *   now once it is older than LATE_DELIVERY_MS.
 * - An auction's step priced its lot on a curve that had walked on while the step was late, far below the bids it
 *   was due to meet. Step messages carry when they were due; a late step moves its auction's curve on by its
 *   lateness (STEP_LATENESS_GRACE_MS aside), so it prices as it would have when due.
 */
async function auctionOf(late: boolean) {
  const p: Pipeline = createPipeline({ maxReceiveCount: { auctionSteps: 1 } });
  await p.fund('10000');
  await p.tick('ETH-USD', '200');
  await p.tick('ETH-USD', '200');
  await p.open('LONG', '10', '200', '200'); // bankrupt at 180
  await p.provider('lp-1', '100000', '0.05', '100'); // takes at 5 % under the mark
  p.venue.faults.emptyBooks.add('ETH-USD'); // the market takes nothing: the slice goes to the auction
  await p.tick('ETH-USD', '175');
  await p.runUntil(p.clock.nowMs());
  const [liquidation] = p.adapters.liquidations.all();
  expect(liquidation?.state).toBe('AUCTION');
  if (late) {
    // The step that reaches the bid is due: its delivery dies (received, never deleted), dead-lettered.
    let dying: readonly unknown[] = [];
    for (let i = 0; i < 1000 && dying.length === 0; i++) {
      p.clock.advance(1_000);
      dying = await p.adapters.auctionQueue.receive(10, 30);
    }
    expect(dying.length).toBe(1);
    // Redriven 20 minutes later (well within the auction's tail of an hour).
    p.clock.advance(20 * 60_000);
    expect(await p.adapters.auctionQueue.receive(10, 30)).toEqual([]);
    const redriven = await p.adapters.auctionDeadLetters.receive(10, 30);
    expect(redriven.length).toBe(1);
    for (const m of redriven) await p.handlers.auction(m);
  }
  await p.drain();
  const auction = await p.adapters.auctions.get(`${liquidation!.id}:auction`);
  const observed = (metric: string) =>
    p.telemetry.observations.filter((o) => o.metric === metric).map((o) => o.value);
  const durations = observed(METRICS.AuctionDurationSeconds.name);
  const lateness = observed(METRICS.AuctionStepLateness.name);
  return { auction, fund: await p.adapters.ledger.balance('insurance-fund'), durations, lateness };
}

describe('an auction step delivered late', () => {
  it('clears at no worse a price than the step that reached the bid would have', async () => {
    const onTime = await auctionOf(false);
    const late = await auctionOf(true);
    expect(onTime.auction?.state).toBe('CLEARED');
    expect(late.auction?.state).toBe('CLEARED');
    const priceOf = (a: typeof onTime.auction) => a!.fills[0]!.price;
    // On time: 164.73 (the first 1 % step under the bid at 166.25). Redriven 20 min later: about 13 % lower, and
    // the fund pays the difference on 10 ETH.
    expect(priceOf(late.auction)).toBeGreaterThanOrEqual(priceOf(onTime.auction));
    expect(late.fund.balance).toBeGreaterThanOrEqual(onTime.fund.balance);
    // Its duration counts the lateness, although its curve's start moved on by it.
    expect(late.durations.length).toBeGreaterThan(0);
    expect(Math.min(...late.durations)).toBeGreaterThanOrEqual(20 * 60);
    // Each step reports how late it ran (alarmed): on time, none; the redriven step, its 20 minutes and more.
    expect(onTime.lateness.length).toBeGreaterThan(0);
    expect(Math.max(...onTime.lateness)).toBeLessThan(5);
    expect(Math.max(...late.lateness)).toBeGreaterThanOrEqual(20 * 60);
  });
});

describe('a late ADL confirming round', () => {
  it('takes no haircut from a counterparty with no profit at the current mark when the confirm round is redriven an hour later', async () => {
    const p = createPipeline({ maxReceiveCount: { liquidations: 1 } });
    // As on AWS: ADL's orders are read from GSIs that may lag the writes.
    Object.assign(p.adapters.positions, { adlOrdersLagMs: 500 });
    await p.tick('ETH-USD', '200');
    await p.tick('ETH-USD', '200');
    const long = await p.open('LONG', '10', '200', '200'); // bankrupt at 180; no fund, no shorts: bad debt
    await p.tick('ETH-USD', '175');
    await p.runUntil(p.clock.nowMs());
    const settled = p.adapters.liquidations.all().find((l) => l.positionId === long.id)!;
    expect(settled.state).toMatch(/^SETTLED_/);
    expect(settled.settlement?.badDebt).toBeGreaterThan(0n);
    expect(settled.context?.adlRound?.confirm?.mark).toBe(17_500_000_000n);

    // The confirming round's delivery dies (received, never deleted): its message is dead-lettered.
    p.clock.advance(2_000);
    const dying = await p.adapters.liquidationQueue.receive(10, 30);
    expect(dying.length).toBe(1);

    // An hour later the market is back at 200; a short opens there (no profit at 200).
    p.clock.set(T0 + HOUR);
    await p.tick('ETH-USD', '190');
    await p.tick('ETH-USD', '200');
    const short = await p.open('SHORT', '10', '200', '100');

    // The operator redrives the dead letter.
    expect(await p.adapters.liquidationQueue.receive(10, 30)).toEqual([]);
    const redriven = await p.adapters.liquidationDeadLetters.receive(10, 30);
    expect(redriven.length).toBe(1);
    for (const m of redriven) await p.handlers.liquidation(m);

    const after = (await p.adapters.positions.get(short.id))!;
    // At the mark of now (200) the short has no profit: ADL may take nothing from it.
    expect(after.collateral).toBe(100_000_000n);
  });
});
