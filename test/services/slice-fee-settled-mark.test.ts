import { describe, expect, it } from 'vitest';
import { pnlE16 } from '../../shared/domain/accounting.ts';
import { DEFAULT_RISK_CONFIG_INPUT, parseRiskConfig } from '../../shared/domain/config.ts';
import { NOTIONAL_TO_QUOTE, parsePrice, parseQuote } from '../../shared/domain/units.ts';
import { InjectedCrash } from '../../shared/ports/index.ts';
import { INSURANCE_ACCOUNT } from '../../shared/services/context.ts';
import { createPipeline, type Pipeline } from '../support/pipeline.ts';

/**
 * Found by an audit of economic attacks in session 39: a slice's fee was capped by the whole position's equity at
 * the mark the slice was planned at. A slice the auction settles minutes later, after the mark fell, paid a fee on
 * a position bankrupt at its own settlement; the rest owed it back as deficit, paid by the fund (its fee income and
 * its shortfall both inflated) or, once the fund's draw cap bound, by ADL's counterparties.
 */
describe('a slice settled after the mark fell', () => {
  it('charges no fee the whole position cannot pay at the settlement mark; ADL covers the loss alone', async () => {
    const config = parseRiskConfig({
      ...DEFAULT_RISK_CONFIG_INPUT,
      insurance: { ...DEFAULT_RISK_CONFIG_INPUT.insurance, drawCapPerWindow: '500' },
    });
    // A book 9 % wide: the market takes nothing within the slippage bound, the slice goes to the auction.
    const p = createPipeline({
      config,
      venue: { defaults: { baseHalfSpreadPpm: 90_000, maxHalfSpreadPpm: 90_000 } },
    });
    await p.fund('100000');
    await p.tick('ETH-USD', '200');
    await p.tick('ETH-USD', '200');
    // 200,000 USD of notional: liquidated in slices of 250 ETH.
    const long = await p.open('LONG', '1000', '200', '20000');
    // ADL's counterparty once the fund's cap binds.
    await p.open('SHORT', '1000', '200', '40000');
    // Capital for the first slice only, 2 % under the mark.
    await p.provider('lp', '45000', '0.02', '250');
    await p.tick('ETH-USD', '184.5');
    await p.runUntil(p.clock.nowMs() + 60_000);
    for (let i = 0; i < 40; i++) {
      await p.tick('ETH-USD', '180');
      await p.runUntil(p.clock.nowMs() + 30_000);
    }
    await p.drain();

    const slices = p.adapters.liquidations.all().filter((l) => l.positionId === long.id);
    const first = slices[0]!;
    expect(first.state).toBe('SETTLED_AUCTION');
    expect(first.context?.executionMark).toBe(parsePrice('184.5'));
    expect(first.context?.settledMark).toBe(parsePrice('180'));
    const s = first.settlement!;
    // The whole position at the settlement's mark, before any fee: the slice's equity and the rest's PnL there.
    const rest = long.size - first.context!.plannedSize;
    const wholeBeforeFee =
      s.traderPayout + s.fee + pnlE16('LONG', rest, long.entryPrice, parsePrice('180')) / NOTIONAL_TO_QUOTE;
    expect(wholeBeforeFee).toBeLessThan(0n);
    // Before: a fee of 438.513445, owed back by the rest.
    expect(s.fee).toBe(0n);
    // The rest's shortfall is the position's loss alone: the fund's cap pays 500, ADL the rest. (Before session 44 the
    // slice sold below its provider's bid, at the curve's price: a shortfall of 1,172.33, the cap then 1,000 with ADL
    // covering 172.33, and 610.84 before the fix above.)
    expect((await p.adapters.auctions.get(`${first.id}:auction`))?.fills).toEqual([
      expect.objectContaining({ price: parsePrice('176.4') }), // the bid, 2 % under the mark of 180
    ]);
    const last = slices.at(-1)!.settlement!;
    expect({
      shortfall: last.shortfall,
      insurancePaid: last.insurancePaid,
      adlCovered: last.adlCovered,
    }).toEqual({
      shortfall: parseQuote('918.367346'),
      insurancePaid: parseQuote('500'),
      adlCovered: parseQuote('418.367346'),
    });
    expect((await p.check()).violations).toEqual([]);
  });
});

/**
 * Found by the review of the fix above, the same day: the first version valued the rest at the mark of now on the
 * path that settles without a freeze (a slice the market closed), a mark each delivery reads afresh. A delivery
 * that credited the fee and died came back at a lower mark and planned another fee under the same key: the ledger
 * kept the first (money no settlement recorded) or refused the second for ever (dead-lettered, the position left
 * LIQUIDATING). Such a settlement values the rest at stored marks only: the claim's, an ended auction's.
 */
describe('a slice settled by a redelivery after the mark fell', () => {
  async function redelivered(redeliveryMark: string) {
    let armed = false;
    const p: Pipeline = createPipeline({
      crashHook: (point) => {
        // The first delivery dies right after its plan credited the slice's fee, before its commit.
        if (!armed || point !== 'ledger.apply') return;
        armed = false;
        throw new InjectedCrash(point);
      },
    });
    await p.fund('100000');
    await p.tick('ETH-USD', '200');
    await p.tick('ETH-USD', '200');
    const long = await p.open('LONG', '1000', '200', '20000');
    armed = true;
    await p.tick('ETH-USD', '184.5');
    await p.runUntil(p.clock.nowMs() + 5_000);
    expect(armed).toBe(false);
    // The mark falls before SQS delivers the message again (visibility timeout 30 s).
    p.clock.advance(20_000);
    await p.tick('ETH-USD', redeliveryMark);
    await p.runUntil(p.clock.nowMs() + 40_000);
    const first = p.adapters.liquidations.all().filter((l) => l.positionId === long.id)[0]!;
    const journal = await p.adapters.ledger.journal(INSURANCE_ACCOUNT);
    const fee = journal
      .filter((e) => e.reference === first.id && e.kind === 'liquidation-fee')
      .reduce((sum, e) => sum + e.amount, 0n);
    return { p, first, fee };
  }

  it.each([
    ['178', 'the whole position pays no fee there (the fund kept one the settlement never charged)'],
    ['179.4', 'the fee is capped there (the redelivery met its own key with another amount, for ever)'],
  ])("at %s, where %s: the fee credited once is the settlement's", async (at) => {
    const { p, first, fee } = await redelivered(at);
    expect(p.errors.filter((e) => e !== 'liquidations: ledger.apply')).toEqual([]);
    expect(first.state).toBe('SETTLED_MARKET');
    expect(first.settlement!.fee).toBeGreaterThan(0n);
    expect(fee).toBe(first.settlement!.fee);
    expect(first.context?.settledMark).toBe(parsePrice('184.5'));
    expect((await p.check()).violations).toEqual([]);
  });
});
