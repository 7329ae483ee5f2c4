import { describe, expect, it } from 'vitest';
import { parseRiskConfig } from '../../shared/domain/config.ts';
import { type AuctionRecord, InjectedCrash } from '../../shared/ports/index.ts';
import { createPipeline } from '../support/pipeline.ts';
import { DEEP_AUCTION } from '../support/risk-configs.ts';

/**
 * A step that plans a sleep schedules its next message, commits (the auction's new wake mark), then covers the
 * market's wake mark (coverWake). Found by a review of idempotency in session 26: a death between the commit and
 * the cover left the sleeper uncovered for good (its message came back stale), so the tick that reached its mark
 * did not wake it and it sold 35.16 USD lower at its planned step. The stale redelivery now covers it.
 */

const NO_MARKET = parseRiskConfig({
  ...DEEP_AUCTION,
  markets: DEEP_AUCTION.markets.map((m) => ({ ...m, slippageBound: '0.000001' })),
});

async function run(dieAfterStepCommit: boolean) {
  let armed = false;
  const p = createPipeline({
    config: NO_MARKET,
    crashHook: (point) => {
      if (!armed || point !== 'transactor.commit') return;
      const auction = p.adapters.auctions.all()[0] as AuctionRecord | undefined;
      // Right after the woken step's commit (step 0 -> 1, asleep again with a new wake mark).
      if (auction?.step === 1 && auction.state === 'RUNNING') {
        armed = false;
        throw new InjectedCrash(point);
      }
    },
  });
  await p.tick('ETH-USD', '200');
  await p.open('LONG', '10', '200', '200');
  await p.provider('lp-1', '100000', '0.10', '100');
  await p.tick('ETH-USD', '184');
  const startedAt = p.clock.nowMs();
  await p.runUntil(startedAt + 600_000);
  // 193 wakes it (wake mark about 190.5); its bid (173.7) is short of the price: it sleeps on, wake mark 194.37.
  armed = dieAfterStepCommit;
  await p.tick('ETH-USD', '193');
  // Past the visibility timeout (30 s here): a step whose delivery died is delivered again.
  await p.runUntil(startedAt + 640_000);
  const asleep = p.adapters.auctions.all()[0]!;
  const market = await p.adapters.markets.get('ETH-USD');
  // 200 reaches 194.37: woken, the bid (180) takes step 6's price (176.70) at once.
  await p.tick('ETH-USD', '200');
  await p.drain();
  const auction = p.adapters.auctions.all()[0]!;
  const liquidation = (await p.adapters.liquidations.get(auction.liquidationId))!;
  return { p, asleep, market, auction, liquidation };
}

describe('a death between an auction step commit and its wake cover', () => {
  it("the step's redelivery covers the sleeper: the tick that reaches it wakes it, and it sells as if nothing had died", async () => {
    const reference = await run(false);
    // Woken by the 200 tick, it sells at once at the curve's price of then.
    expect(reference.auction.fills).toHaveLength(1);
    const died = await run(true);
    expect(died.p.errors).toEqual(['auctionSteps: transactor.commit']);
    expect(died.asleep).toMatchObject({ state: 'RUNNING', step: 1, wakeMark: reference.asleep.wakeMark });
    // Every sleeping auction's wake mark is covered by its market's (or no tick can wake it), and the sale is the
    // one the wake gives (with the cover lost it sold at its planned step, 35.16 USD lower).
    expect({
      covered: died.market?.wakeMarks?.SELL,
      fills: died.auction.fills.map((f) => f.price),
      shortfall: died.liquidation.settlement?.shortfall,
    }).toEqual({
      covered: died.asleep.wakeMark,
      fills: reference.auction.fills.map((f) => f.price),
      shortfall: reference.liquidation.settlement?.shortfall,
    });
  });
});
