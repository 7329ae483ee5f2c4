import { describe, expect, it } from 'vitest';
import { settleClose } from '../../shared/domain/accounting.ts';
import { clearAuctionStep } from '../../shared/domain/clearing.ts';
import { liquidationFee } from '../../shared/domain/sizing.ts';
import { base, NOTIONAL_TO_QUOTE, price, usd } from '../../shared/domain/units.ts';
import { decideWaterfall } from '../../shared/domain/waterfall.ts';
import { createPipeline } from '../support/pipeline.ts';

/**
 * Each provider pays (a SELL lot) or is paid (a BUY lot) its fill's cost in whole units, rounded against it; the
 * settlement counts those costs (Fill.cost), so no unit of the rounding is lost between them. Found by a review of
 * the money arithmetic in session 26: the settlement counted price x size and rounded once, so in the SELL case
 * below the fund paid a unit more shortfall than the money received left, and in the BUY case the trader paid a
 * unit the providers never received.
 */
const insurance = {
  account: 'insurance:ETH-USD',
  state: { balance: usd('1000000'), windowStartMs: 0, windowDrawn: 0n },
  config: { drawCapPerWindow: usd('1000000'), windowSeconds: 3600, floor: 0n },
};
const providers = [
  { id: 'p1', capital: usd('10000'), maxDiscountPpm: 0n, maxLot: base('0.5') },
  { id: 'p2', capital: usd('10000'), maxDiscountPpm: 0n, maxLot: base('0.5') },
];

function settleByAuction(side: 'LONG' | 'SHORT', at: bigint) {
  const step = clearAuctionStep({
    direction: side === 'LONG' ? 'SELL' : 'BUY',
    remainingLot: base('1'),
    price: at,
    mark: at,
    debt: side === 'LONG' ? usd('100000') : 0n,
    dust: 0n,
    providers,
  });
  const decision = decideWaterfall({
    liquidationId: 'l1',
    position: { side, size: base('1'), entryPrice: price('2000'), collateral: usd('100') },
    mark: at,
    market: { liquidationFee: 0n },
    stillLiquidatable: true,
    marketResult: { fills: [] },
    auctionResult: { fills: step.fills, finished: true },
    insurance,
    nowMs: 1000,
  });
  return { costs: step.fills.reduce((s, f) => s + f.cost, 0n), settlement: decision };
}

const decisionPaid = (d: ReturnType<typeof decideWaterfall>) => d.layers.insurance.shortfallPaid;

describe('auction fills settle at what the providers paid', () => {
  it('SELL: the fund pays the shortfall the money received leaves, not a unit more', () => {
    const { costs, settlement } = settleByAuction('LONG', price('1850.00000001'));
    expect(costs).toBe(usd('1850.000002')); // 2 x ceil(925.000000005)
    // LONG 1 ETH from 2000 with 100 USD owes 1900 USD.
    expect(decisionPaid(settlement)).toBe(usd('1900') - costs);
  });

  it('BUY: what the trader pays beyond the entry is what the providers received', () => {
    const { costs, settlement } = settleByAuction('SHORT', price('2050.00000001'));
    expect(costs).toBe(usd('2050')); // 2 x floor(1025.000000005)
    const traderLoss = usd('100') - (settlement.settlement?.traderPayout ?? 0n);
    expect(traderLoss).toBe(costs - usd('2000'));
    expect(decisionPaid(settlement)).toBe(0n);
  });

  it('charges the fee on price x size, not on a cost rounded against its provider', () => {
    // Found by the review of the session's diff: a BUY lot's cost is floored, and a fee on it could come out a unit
    // below the rate (20.5 instead of 20.500001 here).
    const position = {
      side: 'SHORT' as const,
      size: base('1'),
      entryPrice: price('2000'),
      collateral: usd('100'),
    };
    const at = price('2050.00000001');
    const costed = settleClose(position, [{ price: at, size: base('1'), cost: usd('2050') }], 10_000n);
    expect(costed.fee).toBe(liquidationFee(base('1'), at, 10_000n));
    expect(costed.fee).toBe(usd('20.500001'));
  });

  it('a fill without a cost counts price x size, and a negative cost is refused', () => {
    const position = {
      side: 'LONG' as const,
      size: base('1'),
      entryPrice: price('2000'),
      collateral: usd('100'),
    };
    const exact = settleClose(position, [{ price: price('1950'), size: base('1') }], 0n);
    const costed = settleClose(position, [{ price: price('1950'), size: base('1'), cost: usd('1950') }], 0n);
    expect(costed).toEqual(exact);
    expect(() => settleClose(position, [{ price: price('1950'), size: base('1'), cost: -1n }], 0n)).toThrow(
      /accounting\/bad-fill/,
    );
  });
});

describe('through the services: providers pay exactly what the settlement counts', () => {
  it.each([
    ['SELL (a long closed)', 'LONG', '184'],
    ['BUY (a short closed)', 'SHORT', '216'],
  ] as const)('%s', async (_name, side, crash) => {
    const p = createPipeline();
    await p.tick('ETH-USD', '200'); // a market's first print waits for a second
    await p.tick('ETH-USD', '200');
    const position = await p.open(side, '10.00000007', '200', '200');
    // Five providers with lots of 2.00000003 ETH: every fill's cost has a fraction to round.
    for (let i = 1; i <= 5; i++) await p.provider(`lp-${i}`, '100000', '0.02', '2.00000003');
    p.venue.faults.emptyBooks.add('ETH-USD'); // the market takes nothing: the slice goes to the auction

    await p.tick('ETH-USD', crash);
    await p.drain();

    const [liquidation] = p.adapters.liquidations.all();
    const auction = await p.adapters.auctions.get(`${liquidation?.id}:auction`);
    const fills = auction?.fills ?? [];
    expect(fills.length).toBeGreaterThan(1);
    let paid = 0n;
    for (let i = 1; i <= 5; i++)
      paid += usd('100000') - ((await p.adapters.providers.get(`lp-${i}`))?.capital ?? 0n);
    expect(fills.every((f) => f.cost !== undefined)).toBe(true);
    expect(paid).toBe(fills.reduce((s, f) => s + (f.cost ?? 0n), 0n));
    // The realized PnL is the providers' money against the entry, rounded once, as settleClose rounds it.
    const settlement = liquidation?.settlement;
    const closed = settlement?.auctionClosedSize ?? 0n;
    expect(closed).toBe(fills.reduce((s, f) => s + f.size, 0n));
    const expected = settleClose(
      { ...position, size: closed },
      [{ price: fills[0]!.price, size: closed, cost: paid }],
      0n,
    ).realizedPnl;
    expect(settlement?.realizedPnl).toBe(expected);
    // The case has a whole unit of rounding to lose: the costs differ from price x size by at least one unit.
    const exact16 = fills.reduce((s, f) => s + f.size * f.price, 0n);
    const residue16 = paid * NOTIONAL_TO_QUOTE - exact16;
    expect(side === 'LONG' ? residue16 : -residue16).toBeGreaterThanOrEqual(NOTIONAL_TO_QUOTE);
    expect((await p.check()).violations).toEqual([]);
  });
});
