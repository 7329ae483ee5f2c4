import { describe, expect, it } from 'vitest';
import { parseRiskConfig } from '../../shared/domain/config.ts';
import { parsePrice } from '../../shared/domain/units.ts';
import { METRICS } from '../../shared/metrics.ts';
import { InjectedCrash } from '../../shared/ports/index.ts';
import { createPipeline, type Pipeline } from '../support/pipeline.ts';
import { DEEP_AUCTION } from '../support/risk-configs.ts';

/**
 * A tick's side effects after its conditional write (the sleepers' wake, the breaker's alarm) are done again by a
 * retry of the tick: EventBridge retries an invocation that died after the write, and the retry finds the tick
 * recorded (the duplicate path) or pending (resumeTick). Found by a review of idempotency in session 26: neither
 * path woke the sleepers the mark reached (the auction sold 69.63 USD lower) nor counted the trip (no alarm).
 */

const NO_MARKET = parseRiskConfig({
  ...DEEP_AUCTION,
  markets: DEEP_AUCTION.markets.map((m) => ({ ...m, slippageBound: '0.000001' })),
});

/** The process dies right after the first side effect named `point` once armed. */
function dyingAfter(point: string) {
  const state = { armed: false, died: 0 };
  const hook = (at: string) => {
    if (state.armed && at === point) {
      state.armed = false;
      state.died += 1;
      throw new InjectedCrash(at);
    }
  };
  return { state, hook };
}

/** Delivers a tick as EventBridge does: once, and again if the invocation died. */
async function deliverWithRetry(p: Pipeline, price: string, sequence: number) {
  const tick = {
    symbol: 'ETH-USD',
    markPrice: parsePrice(price),
    timestampMs: p.clock.nowMs(),
    sequence,
    source: 'test',
  };
  try {
    return await p.deliverTick(tick);
  } catch (error) {
    expect(error).toBeInstanceOf(InjectedCrash);
    return p.deliverTick(tick);
  }
}

/**
 * A long auctioned from 184 sleeps on one provider bidding 10 % under the mark (docs: sleeping auctions); 600 s
 * later a tick at 200 reaches its wake mark (about 190.5): woken, it sells at once, at the provider's bid at 200
 * (180; the curve's price then, step 6, is 176.70). `crossing`: a short the 200 tick liquidates as well (the tick
 * is pending: resumeTick path).
 */
async function sleeperWokenAt200(dieAfterAccept: boolean, crossing: boolean) {
  const death = dyingAfter('markets.acceptTick');
  const p = createPipeline({ config: NO_MARKET, crashHook: death.hook });
  await p.tick('ETH-USD', '200');
  await p.open('LONG', '10', '200', '200');
  await p.provider('lp-1', '100000', '0.10', '100');
  await p.tick('ETH-USD', '184');
  if (crossing) await p.open('SHORT', '1', '184', '20'); // liquidatable from about 199
  const startedAt = p.clock.nowMs();
  await p.runUntil(startedAt + 600_000);
  death.state.armed = dieAfterAccept;
  await deliverWithRetry(p, '200', 4);
  expect(death.state.died).toBe(dieAfterAccept ? 1 : 0);
  await p.drain();
  const auction = p.adapters.auctions.all().find((a) => a.direction === 'SELL')!;
  const liquidation = (await p.adapters.liquidations.get(auction.liquidationId))!;
  return { p, auction, liquidation };
}

describe('a tick retried after its write', () => {
  it.each([
    ['duplicate path', false],
    ['resumeTick path', true],
  ] as const)(
    '%s: the retry wakes the sleeper the tick reached, which sells as if nothing had died',
    async (_path, crossing) => {
      const reference = await sleeperWokenAt200(false, crossing);
      expect(reference.auction.fills.map((f) => f.price)).toEqual([parsePrice('180')]); // its bid, at once
      const settledAtMs = (l: typeof reference.liquidation) => l.history.at(-1)!.atMs;
      const died = await sleeperWokenAt200(true, crossing);
      expect(died.p.errors).toEqual([]);
      // resumeTick path: the short the 200 tick crossed was liquidated by the retry.
      expect(died.p.adapters.liquidations.all().some((l) => l.side === 'SHORT')).toBe(crossing);
      expect((await died.p.adapters.markets.get('ETH-USD'))?.lastTick?.markPrice).toBe(parsePrice('200'));
      // The wake the tick owed is done, or at least reported as failed (AuctionWakeFailures).
      const accounted =
        died.p.telemetry.total(METRICS.AuctionsWoken.name) +
        died.p.telemetry.total(METRICS.AuctionWakeFailures.name);
      // A lost wake sells at the same bid (the mark stays at 200), but only at the step planned before the tick.
      expect({
        accounted,
        fills: died.auction.fills.map((f) => f.price),
        shortfall: died.liquidation.settlement?.shortfall,
        settledAtMs: settledAtMs(died.liquidation),
      }).toEqual({
        accounted: 1,
        fills: [parsePrice('180')],
        shortfall: reference.liquidation.settlement?.shortfall,
        settledAtMs: settledAtMs(reference.liquidation),
      });
    },
  );

  it('a market halted by a trip whose invocation died still raises CircuitBreakerAlarm (the retry counts it)', async () => {
    const death = dyingAfter('markets.tripBreaker');
    const p = createPipeline({ config: parseRiskConfig(DEEP_AUCTION), crashHook: death.hook });
    await p.tick('ETH-USD', '200');
    await p.tick('ETH-USD', '200');
    death.state.armed = true;
    // 300 is 50 % from the last mark (band 15 %): the breaker trips instead of liquidating on a bad print.
    const outcome = await deliverWithRetry(p, '300', 3);
    expect(death.state.died).toBe(1);
    expect((await p.adapters.markets.get('ETH-USD'))?.breaker?.tick.sequence).toBe(3);
    expect({ outcome, tripped: p.telemetry.total(METRICS.CircuitBreakerTripped.name) }).toMatchObject({
      outcome: { status: 'rejected', reason: 'tick/duplicate' },
      tripped: 1,
    });
    // Another print carrying that number (a rebase renumbers the breaker's tick to the held print's) is no retry of
    // the trip: no second page.
    expect(await p.tick('ETH-USD', '200', { sequence: 3 })).toMatchObject({ reason: 'tick/duplicate' });
    expect(p.telemetry.total(METRICS.CircuitBreakerTripped.name)).toBe(1);
  });
});
