import { describe, expect, it } from 'vitest';
import { pnlE16 } from '../../shared/domain/accounting.ts';
import { DEFAULT_RISK_CONFIG_INPUT, parseRiskConfig } from '../../shared/domain/config.ts';
import { NOTIONAL_TO_QUOTE, parsePrice, parseQuote } from '../../shared/domain/units.ts';
import { createPipeline } from '../support/pipeline.ts';

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
      insurance: { ...DEFAULT_RISK_CONFIG_INPUT.insurance, drawCapPerWindow: '1000' },
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
    // The rest's shortfall is the position's loss alone: the fund's cap pays 1,000, ADL the rest (610.84 before).
    const last = slices.at(-1)!.settlement!;
    expect({
      shortfall: last.shortfall,
      insurancePaid: last.insurancePaid,
      adlCovered: last.adlCovered,
    }).toEqual({
      shortfall: parseQuote('1172.327255'),
      insurancePaid: parseQuote('1000'),
      adlCovered: parseQuote('172.327255'),
    });
    expect((await p.check()).violations).toEqual([]);
  });
});
