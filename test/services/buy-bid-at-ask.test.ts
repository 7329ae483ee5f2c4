import { describe, expect, it } from 'vitest';
import { METRICS } from '../../shared/metrics.ts';
import { createPipeline } from '../support/pipeline.ts';

/**
 * Found by the pipeline fuzzing, session 27: a BUY auction (closing a short) counted a provider as a bidder when it
 * could pay for a dust-sized piece at the auction's price of the moment, below the ask it takes at, mark x (1 + d).
 * One that could not pay at its ask kept the auction asleep until the price reached it (630 s here), then nobody
 * filled and ADL took the short late: a rise meanwhile turned a solvent close into a shortfall. It counts at its ask.
 */
describe('a BUY auction and a provider that cannot pay for dust at its own ask', () => {
  async function world() {
    const p = createPipeline(); // default rules: dust 0.001 ETH, buf 1.02, stairstep 0.99 per 90 s
    await p.tick('ETH-USD', '200');
    await p.tick('ETH-USD', '200');
    await p.fund('10000');
    const short = await p.open('SHORT', '10', '200', '200'); // liquidation ~214.63, bankrupt at 220
    await p.open('LONG', '10', '200', '1000'); // ADL's counterparty, in profit above 200
    // Dust at the auction's start (216 / 1.02 = 211.76) costs 0.211765 USD; at its ask (216 x 1.05 = 226.80),
    // 0.2268 USD. 0.22 USD pays for the first, never for the second.
    await p.provider('lp-1', '0.22', '0.05', '100');
    p.venue.faults.emptyBooks.add('ETH-USD'); // the market takes nothing: the slice goes on to the auction layer
    return { p, short };
  }

  it('starts no auction: ADL takes the short at once, at the mark it crossed', async () => {
    const { p, short } = await world();
    await p.tick('ETH-USD', '216');
    const started = p.clock.nowMs();
    await p.drain(6 * 3600);
    const liquidation = p.adapters.liquidations.all().find((l) => l.positionId === short.id)!;
    expect(p.adapters.auctions.all()).toEqual([]);
    expect(p.telemetry.total(METRICS.AuctionsSkipped.name)).toBe(1);
    expect(liquidation.state).toBe('SETTLED_ADL');
    expect(liquidation.history.at(-1)!.atMs - started).toBeLessThan(90_000);
    // Closed at 216, the short pays its 160 USD loss itself: nothing falls to the fund.
    expect(liquidation.settlement?.shortfall).toBe(0n);
    expect((await p.check()).violations).toEqual([]);
  });

  it('can still bid at its ask: the auction starts and waits for it', async () => {
    const { p } = await world();
    await p.provider('lp-2', '0.23', '0.05', '100'); // 0.2268 USD for dust at its ask: it pays
    await p.tick('ETH-USD', '216');
    await p.runUntil(p.clock.nowMs() + 1_000);
    expect(p.adapters.auctions.all().map((a) => a.state)).toEqual(['RUNNING']);
  });
});
