import { describe, expect, it } from 'vitest';
import { auctionStatus } from '../../shared/domain/auction.ts';
import { marketConfig } from '../../shared/domain/config.ts';
import type { LiquidationState } from '../../shared/domain/model.ts';
import { parsePrice, parseQuote } from '../../shared/domain/units.ts';
import { METRICS } from '../../shared/metrics.ts';
import { InjectedCrash, type PositionRecord } from '../../shared/ports/index.ts';
import { STALE_MARK_WAIT_SECONDS } from '../../shared/services/context.ts';

/**
 * A pipeline on the configured mark bound whose delivery dies once, right after the commit that leaves a
 * liquidation in `state`, while `death.armed`.
 */
function dyingOnceAfterCommitIn(state: LiquidationState, armed: boolean) {
  const death = { armed };
  const p: Pipeline = createPipeline({
    marks: 'as-configured',
    crashHook: (point) => {
      if (!death.armed || point !== 'transactor.commit') return;
      if (!p.adapters.liquidations.all().some((l) => l.state === state)) return;
      death.armed = false;
      throw new InjectedCrash(point);
    },
  });
  return { p, death };
}

import { createPipeline, type Pipeline } from '../support/pipeline.ts';

/**
 * During a feed outage the last mark grows old. Acting on it could liquidate a position that is healthy at the
 * real price, or sell, pay and deleverage at a price the market has left (Drift treats an oracle older than about
 * 60 s as stale). Past the market's maxMarkAgeSeconds, liquidations and auction steps wait for a fresh tick.
 */

const staleAfterMs = (p: Pipeline) => marketConfig(p.config, 'ETH-USD').maxMarkAgeSeconds * 1000;

async function openMarket(p: Pipeline): Promise<void> {
  await p.fund('100000');
  await p.tick('ETH-USD', '200'); // a market's first print waits for a second
  await p.tick('ETH-USD', '200');
}

/**
 * A 10 ETH long crossed at 184 over an empty book, and one provider bidding 5 % under the mark: the default curve
 * (1.02, 0.99 every 90 s) reaches it after minutes, so its auction sleeps.
 */
async function auctionAt184(): Promise<Pipeline> {
  const p = createPipeline({ marks: 'as-configured' });
  await openMarket(p);
  await p.open('LONG', '10', '200', '200');
  await p.provider('lp', '1000000', '0.05', '100');
  p.venue.faults.emptyBooks.add('ETH-USD');
  await p.tick('ETH-USD', '184');
  return p;
}

describe('a mark older than maxMarkAgeSeconds', () => {
  it('is not liquidated on: the liquidation waits, and a fresh tick where the position is healthy cancels it', async () => {
    const p = createPipeline({ marks: 'as-configured' });
    await openMarket(p);
    const position = await p.open('LONG', '10', '200', '200'); // liquidation price about 184.62
    expect((await p.tick('ETH-USD', '184')).status).toBe('accepted');
    const crossedAt = p.clock.nowMs();
    // The consumer gets to it only after the feed went quiet (a backlog, an outage of its own).
    p.clock.set(crossedAt + staleAfterMs(p) + 1000);
    await p.runUntil(p.clock.nowMs() + 10 * 60_000);

    const [waiting] = p.adapters.liquidations.all();
    expect(waiting?.state).toBe('QUEUED');
    expect((await p.adapters.positions.get(position.id))?.state).toBe('LIQUIDATING');
    expect(p.orders.orders.size).toBe(0);
    // One wait a STALE_MARK_WAIT_SECONDS over the ten minutes, no failure: nothing walks to a dead-letter queue.
    expect(p.telemetry.total(METRICS.StaleMarkWaits.name)).toBe((10 * 60) / STALE_MARK_WAIT_SECONDS + 1);
    expect(p.errors).toEqual([]);

    // The feed comes back where the position is healthy: the re-check cancels instead of selling at 184.
    expect((await p.tick('ETH-USD', '195')).status).toBe('accepted');
    await p.drain();
    const [cancelled] = p.adapters.liquidations.all();
    expect(cancelled?.state).toBe('CANCELLED');
    expect((await p.adapters.positions.get(position.id))?.state).toBe('OPEN');
    expect(p.orders.orders.size).toBe(0);
    expect((await p.check()).violations).toEqual([]);
  });

  it('is acted on up to maxMarkAgeSeconds: a liquidation exactly that late still closes on the market', async () => {
    const p = createPipeline({ marks: 'as-configured' });
    await openMarket(p);
    await p.open('LONG', '10', '200', '200');
    await p.tick('ETH-USD', '184');
    p.clock.advance(staleAfterMs(p));
    await p.runUntil(p.clock.nowMs());
    const [liquidation] = p.adapters.liquidations.all();
    expect(liquidation?.state).toBe('SETTLED_MARKET');
    expect(p.telemetry.total(METRICS.StaleMarkWaits.name)).toBe(0);
  });

  it('pauses an auction: no step fills on it, and the auction goes on at the price it paused at', async () => {
    const run = async (outage: boolean) => {
      const p = await auctionAt184();
      const crossedAt = p.clock.nowMs();
      if (outage) {
        // No tick for an hour: every step due meanwhile waits.
        await p.runUntil(crossedAt + 3600_000);
        const [liquidation] = p.adapters.liquidations.all();
        const auction = await p.adapters.auctions.get(`${liquidation?.id}:auction`);
        expect(auction?.state).toBe('RUNNING');
        expect(auction?.fills).toEqual([]);
        expect((await p.adapters.providers.get('lp'))?.capital).toBe(parseQuote('1000000'));
        expect(p.telemetry.total(METRICS.StaleMarkWaits.name)).toBeGreaterThan(0);
        await p.tick('ETH-USD', '184'); // the feed is back, at the same price
      } else {
        // A live feed at the same price for the same hour.
        for (let minute = 1; minute <= 60; minute++) {
          await p.runUntil(crossedAt + minute * 60_000);
          await p.tick('ETH-USD', '184');
        }
      }
      await p.drain();
      const [liquidation] = p.adapters.liquidations.all();
      const auction = await p.adapters.auctions.get(`${liquidation?.id}:auction`);
      expect(p.errors).toEqual([]);
      expect((await p.check()).violations).toEqual([]);
      // No step ran late: a wait for a fresh mark is the feed's (StaleMarkWaits), not the consumer's, and paged
      // as late before (AuctionStepsLateAlarm), though every step ran when it was due or sent back.
      const lateness = p.telemetry.observations.filter((o) => o.metric === METRICS.AuctionStepLateness.name);
      expect(lateness.length).toBeGreaterThan(outage ? 10 : 0);
      for (const o of lateness) expect(o.value).toBeLessThanOrEqual(1);
      return { state: liquidation?.state, fills: auction?.fills.map(({ price, size }) => ({ price, size })) };
    };
    const live = await run(false);
    // The provider took the lot; the fund paid what its bid left below the bankruptcy price.
    expect(live.state).toBe('SETTLED_INSURANCE');
    expect(live.fills?.length).toBeGreaterThan(0);
    // The curve's clock stood still while the mark was stale: the same fills at the same prices.
    expect(await run(true)).toEqual(live);
  });

  it('holds ADL rounds still owed: none ranks or haircuts at a stale mark, and they go on once the feed is back', async () => {
    const p = createPipeline({ marks: 'as-configured' });
    await p.tick('ETH-USD', '200');
    await p.tick('ETH-USD', '200');
    // No fund: a long whose close leaves about 668 USD of deficit, and 800 shorts that can give 1 USD each (90 a
    // round, 4 rounds a delivery: the rest comes in a message of its own, a second later).
    const long = await p.open('LONG', '100', '200', '2000');
    const shorts: PositionRecord[] = [];
    for (let i = 0; i < 800; i++) shorts.push(await p.open('SHORT', '0.1', '200', '1'));
    await p.tick('ETH-USD', '175');
    await p.runUntil(p.clock.nowMs());
    const owing = p.adapters.liquidations.all().find((l) => l.positionId === long.id)!;
    expect(owing.context?.adlRound).toBeDefined();
    const collateralOf = async () =>
      Promise.all(shorts.map(async (s) => (await p.adapters.positions.get(s.id))!.collateral));
    const before = await collateralOf();

    p.clock.advance(staleAfterMs(p) + 1000);
    await p.runUntil(p.clock.nowMs() + 5 * 60_000);
    expect(p.adapters.liquidations.all().find((l) => l.id === owing.id)?.version).toBe(owing.version);
    expect(await collateralOf()).toEqual(before);
    expect(p.telemetry.total(METRICS.StaleMarkWaits.name)).toBeGreaterThan(0);

    await p.tick('ETH-USD', '175');
    await p.drain();
    const settled = p.adapters.liquidations.all().find((l) => l.id === owing.id)!;
    expect(settled.context?.adlRound).toBeUndefined();
    expect(settled.settlement?.adlCovered).toBe(settled.settlement?.shortfall);
    expect(p.errors).toEqual([]);
    expect((await p.check()).violations).toEqual([]);
  });

  // Found by the review of the guard (session 30): a step sent due now (here a tick's wake at the end of the
  // outage) was not late, so the curve was priced as if it had walked through the outage: 159.80 instead of
  // 173.18, and the fund paid about 134 USD more. Since each bid fills at its own price (session 44), the curve's price
  // decides which bids a step reaches, no longer what they pay: the price the step ran at is read off the curve as
  // the step moved it on (its start, later by the lateness) at the time the step settled the liquidation.
  it('a tick that ends the outage and wakes the auction goes on at the price the curve paused at', async () => {
    const run = async (backAt: string) => {
      const p = await auctionAt184();
      await p.runUntil(p.clock.nowMs() + 25 * 60_000); // the feed is silent
      await p.tick('ETH-USD', backAt);
      await p.drain();
      const [liquidation] = p.adapters.liquidations.all();
      const auction = (await p.adapters.auctions.get(`${liquidation?.id}:auction`))!;
      expect((await p.check()).violations).toEqual([]);
      const steppedAtMs = liquidation!.history.find((h) => h.state === 'SETTLING')!.atMs;
      return {
        woken: p.telemetry.total(METRICS.AuctionsWoken.name),
        curve: auctionStatus(auction, parsePrice(backAt), steppedAtMs, p.config.auction).price,
        prices: auction.fills.map((f) => f.price),
      };
    };
    // Back at 184: no wake, the planned step (re-sent through the outage) runs, late by the outage.
    const paused = await run('184');
    expect(paused.woken).toBe(0);
    // Back at 186: the tick reaches the sleeper's wake mark and wakes it.
    const woken = await run('186');
    expect(woken.woken).toBeGreaterThan(0);
    expect(woken.curve).toBe(paused.curve);
    expect(paused.curve).toBeGreaterThan(parsePrice('173')); // walked through the outage, it was 159.80
    // Each at its bid at its mark: 184 x 0.95 and 186 x 0.95.
    expect([paused.prices, woken.prices]).toEqual([[parsePrice('174.8')], [parsePrice('176.7')]]);
  });

  // Found by the same review: a claimed order redelivered on a stale mark was placed, and every wait took and
  // released the order lease (two writes) and asked the venue again.
  it('holds a claimed order whose delivery died: no order and no write until the feed is back', async () => {
    const { p, death } = dyingOnceAfterCommitIn('EXECUTING', false); // dies right after the claim
    await openMarket(p);
    await p.open('LONG', '10', '200', '200');
    await p.tick('ETH-USD', '184');
    // The consumer gets to it 100 s later (a backlog): the mark still fresh, it claims, then dies.
    p.clock.advance(100_000);
    death.armed = true;
    await p.runUntil(p.clock.nowMs());
    const [claimed] = p.adapters.liquidations.all();
    expect(claimed?.state).toBe('EXECUTING');

    // The feed stopped: the redelivery, after the visibility timeout, meets a stale mark.
    await p.runUntil(p.clock.nowMs() + 10 * 60_000);
    const [waiting] = p.adapters.liquidations.all();
    expect(p.telemetry.total(METRICS.StaleMarkWaits.name)).toBeGreaterThan(0);
    expect({ state: waiting?.state, version: waiting?.version, orders: p.orders.orders.size }).toEqual({
      state: 'EXECUTING',
      version: claimed?.version,
      orders: 0,
    });

    // Back: the claimed order is placed and the liquidation settles.
    await p.tick('ETH-USD', '184');
    await p.drain();
    const [settled] = p.adapters.liquidations.all();
    expect(settled?.state).toBe('SETTLED_MARKET');
    expect(p.orders.orders.size).toBe(1);
    expect((await p.check()).violations).toEqual([]);
  });

  // Found by the stale-mark fuzzing (session 30): a plan frozen by a delivery that then died was applied by its
  // redelivery within LATE_DELIVERY_MS of the freeze, on a mark that had gone stale meanwhile (20 haircuts).
  it('applies no frozen plan on a stale mark: the redelivery of a delivery that died after its freeze waits', async () => {
    const { p } = dyingOnceAfterCommitIn('SETTLING', true); // dies right after the freeze
    await p.tick('ETH-USD', '200');
    await p.tick('ETH-USD', '200');
    // No fund: the long's deficit goes to ADL, planned (frozen) with the 20 shorts it haircuts.
    const long = await p.open('LONG', '100', '200', '2000');
    const shorts: PositionRecord[] = [];
    for (let i = 0; i < 20; i++) shorts.push(await p.open('SHORT', '1', '200', '50'));
    await p.tick('ETH-USD', '175');
    // The consumer gets to it 100 s later: fresh, it freezes its plan, then dies; the redelivery comes 30 s on.
    p.clock.advance(100_000);
    await p.runUntil(p.clock.nowMs());
    const frozen = p.adapters.liquidations.all().find((l) => l.positionId === long.id)!;
    expect(frozen.state).toBe('SETTLING');
    await p.runUntil(p.clock.nowMs() + 200_000);
    const collateral = async () =>
      Promise.all(shorts.map(async (s) => (await p.adapters.positions.get(s.id))!.collateral));
    expect(p.adapters.liquidations.all().find((l) => l.id === frozen.id)?.version).toBe(frozen.version);
    expect(await collateral()).toEqual(shorts.map((s) => s.collateral));
    expect(p.telemetry.total(METRICS.StaleMarkWaits.name)).toBeGreaterThan(0);

    await p.tick('ETH-USD', '175');
    await p.drain();
    const settled = p.adapters.liquidations.all().find((l) => l.id === frozen.id)!;
    expect(settled.state).toBe('SETTLED_ADL');
    expect((await collateral()).some((c, i) => c < shorts[i]!.collateral)).toBe(true);
    expect((await p.check()).violations).toEqual([]);
  });
});
