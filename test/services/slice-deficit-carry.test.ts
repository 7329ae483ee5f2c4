import { describe, expect, it } from 'vitest';
import { equity } from '../../shared/domain/margin.ts';
import { formatQuote, parsePrice, parseQuote } from '../../shared/domain/units.ts';
import { INSURANCE_ACCOUNT } from '../../shared/services/context.ts';
import { createPipeline } from '../support/pipeline.ts';

/**
 * A slice of a position that keeps size after it carries its deficit to the rest of the position (negative
 * collateral) instead of having the fund pay it: the fund pays only what the position leaves once closed whole.
 * Found by a review of the mechanisms in session 26: a slice sold by the last resort below its own bankruptcy
 * price had the fund pay 57.92 USD, then the mark rebounded, the next slice was cancelled as healthy, and the
 * trader kept 215.85 USD of equity on the rest while the fund had paid the loss of the slice before it.
 *
 * Defaults, with a book whose half-spread (9 %) keeps the 3 % market layer out: no provider, no counterparty in
 * profit, so the last resort (10 %) sells. Long 100 ETH at 200 with 2,000: at 184.5 the position is solvent
 * (equity 450); sizing plans 64.02 ETH; the last resort sells them at about 167.86, below the slice's bankruptcy
 * price (168.76).
 */
/**
 * Long 100 ETH at 200 with 2,000 in a book whose half-spread keeps the market layer out; at 184.5 its first slice
 * (64.02 ETH) is sold by the last resort below its bankruptcy price. The next slice waits out its 30 s cooldown.
 */
async function firstSliceUnderWater() {
  const p = createPipeline({
    venue: { defaults: { baseHalfSpreadPpm: 90_000, maxHalfSpreadPpm: 90_000 } },
  });
  await p.fund('10000');
  await p.tick('ETH-USD', '200');
  await p.tick('ETH-USD', '200');
  const position = await p.open('LONG', '100', '200', '2000');
  await p.tick('ETH-USD', '184.5');
  await p.runUntil(p.clock.nowMs() + 5_000);
  return { p, position };
}

describe('a slice whose position keeps size', () => {
  it('carries its deficit to the rest; a rebound that makes the rest healthy leaves the debt with the trader, not the fund', async () => {
    const { p, position } = await firstSliceUnderWater();
    expect(formatQuote(equity(position, parsePrice('184.5')))).toBe('450');
    const [first] = p.adapters.liquidations.all();
    expect(first?.settlement).toMatchObject({ shortfall: 0n, insurancePaid: 0n, carriedSize: 0n });
    const rest = await p.adapters.positions.get(position.id);
    // The rest starts with the slice's deficit: 57.92 USD below zero.
    expect(formatQuote(rest!.collateral)).toBe('-57.920336');
    expect(rest!.collateral).toBe(first!.settlement!.traderPayout);

    // 210 (within the breaker's band): the rest's profit (359.76) covers the debt and its maintenance margin (189):
    // the next slice is cancelled.
    await p.tick('ETH-USD', '210');
    await p.drain();
    const after = await p.adapters.positions.get(position.id);
    expect(after).toMatchObject({ state: 'OPEN', collateral: rest!.collateral });
    expect(equity(after!, parsePrice('210'))).toBeGreaterThan(0n);
    // The fund paid nothing: before, it paid the 57.92 and the trader kept the rest whole.
    const fund = await p.adapters.ledger.balance(INSURANCE_ACCOUNT);
    expect(fund.balance).toBe(parseQuote('10000'));
    expect((await p.check()).violations).toEqual([]);
  });

  it('leaves the deficit to the fund when the rest is closed at a loss too: paid once, at the end', async () => {
    const { p } = await firstSliceUnderWater();
    await p.tick('ETH-USD', '180');
    await p.drain();
    const [first, ...rest] = p.adapters.liquidations.all();
    expect(first?.settlement?.insurancePaid).toBe(0n);
    const last = rest[rest.length - 1]?.settlement;
    // The last slice pays what the whole position left below zero, once.
    expect(last?.insurancePaid).toBeGreaterThan(first!.settlement!.traderPayout * -1n);
    expect((await p.check()).violations).toEqual([]);
  });

  // Found by the review of the session's diff: ADL took a rest carrying a deficit as a counterparty, took its
  // profit without regard to the debt, and its close wiped the debt out (money created, 9.92 USD in this case).
  it('keeps a rest carrying a deficit out of ADL: nothing is taken from it, its debt stays', async () => {
    const { p, position: long } = await firstSliceUnderWater();
    await p.tick('ETH-USD', '210');
    await p.drain();
    const rest = (await p.adapters.positions.get(long.id))!;
    expect(rest).toMatchObject({ state: 'OPEN', collateral: -57_920_336n });

    // A short goes under at 216 with no book within the bound and no provider: the rest is the only long in
    // profit, but it owes; ADL leaves it be, and the fund pays the short's deficit.
    const short = await p.open('SHORT', '3', '210', '30');
    await p.tick('ETH-USD', '216');
    await p.drain();
    const [settled] = p.adapters.liquidations.all().filter((l) => l.positionId === short.id);
    expect(settled?.settlement?.adlClosedSize).toBe(0n);
    expect(settled?.settlement?.insurancePaid).toBeGreaterThan(0n);
    expect(await p.adapters.positions.get(long.id)).toMatchObject({
      state: 'OPEN',
      size: rest.size,
      collateral: rest.collateral,
    });
    expect((await p.check()).violations).toEqual([]);
  });
});
