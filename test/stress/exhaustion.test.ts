import { describe, expect, it } from 'vitest';
import { DEFAULT_RISK_CONFIG_INPUT, parseRiskConfig } from '../../shared/domain/config.ts';
import { parseQuote, type QuoteE6 } from '../../shared/domain/units.ts';
import type { SettlementAmounts } from '../../shared/domain/waterfall.ts';
import { INSURANCE_ACCOUNT } from '../../shared/services/context.ts';
import { recordFigures } from '../support/invariants.ts';
import { createPipeline, syntheticBook } from '../support/pipeline.ts';

/**
 * Scenario 7, exhaustion: an insurance fund far too small for the crash. The fund holds 8,000 with a floor of
 * 1,000 and may pay at most 5,000 per hour. Two waves of gapped longs an hour apart: the first wave's draws stop
 * exactly at the cap, the second's exactly at the floor, and ADL takes the rest of every shortfall, exactly.
 * The book is empty and no provider bids, so every lot goes through an auction that exhausts and ADL closes it
 * at the mark against the profitable shorts.
 */

const config = parseRiskConfig({
  ...DEFAULT_RISK_CONFIG_INPUT,
  auction: {
    ...DEFAULT_RISK_CONFIG_INPUT.auction,
    curve: { kind: 'stairstep', cut: '0.99', stepSeconds: 30 },
    tailSeconds: 600,
    maxResets: 1,
  },
  insurance: { drawCapPerWindow: '5000', windowSeconds: 3600, floor: '1000' },
});
const FUND = parseQuote('8000');
const CAP = parseQuote('5000');
const FLOOR = parseQuote('1000');
const HOUR = 3_600_000;

const sum = (values: readonly QuoteE6[]): QuoteE6 => values.reduce((t, v) => t + v, 0n);
const amount = (s: SettlementAmounts | undefined, key: keyof SettlementAmounts): QuoteE6 => {
  if (!s) throw new Error(`no settlement amounts (for ${key})`);
  return s[key];
};

describe('scenario 7: exhaustion', () => {
  it('draws stop exactly at the cap, then exactly at the floor; ADL takes the rest, exactly', async () => {
    const p = createPipeline({ config });
    // The clock starts on a window boundary (09:00), so wave 1 settles inside one window.
    await p.tick('ETH-USD', '200');
    // Wave 1: 10x-19x longs (crossed at 178, bankrupt from 180); wave 2: 6x-7x longs (crossed at 165, bankrupt
    // from 166.7). Large 3x shorts take the ADL.
    p.seed([
      ...syntheticBook({
        count: 30,
        seed: 71,
        price: '200',
        longShare: 1,
        minLeverage: 10,
        maxLeverage: 19,
        idPrefix: 'w1-',
      }),
      ...syntheticBook({
        count: 30,
        seed: 72,
        price: '200',
        longShare: 1,
        minLeverage: 6,
        maxLeverage: 7,
        idPrefix: 'w2-',
      }),
      ...syntheticBook({
        count: 10,
        seed: 73,
        price: '200',
        longShare: 0,
        minLeverage: 3,
        maxLeverage: 3,
        minNotional: 200_000,
        maxNotional: 400_000,
        idPrefix: 's-',
      }),
    ]);
    await p.fund('8000');
    p.venue.faults.emptyBooks.add('ETH-USD');

    const wave = async (prices: readonly string[]) => {
      for (const price of prices) {
        p.clock.advance(60_000);
        await p.tick('ETH-USD', price);
      }
      await p.drain();
    };
    await wave(['198', '178']);
    const first = p.adapters.liquidations.all();
    const paid1 = sum(first.map((l) => amount(l.settlement, 'insurancePaid')));
    const shortfall1 = sum(first.map((l) => amount(l.settlement, 'shortfall')));
    // Wave 1 ran within one draw window: the window its draws opened has not ended yet.
    const window1 = await p.adapters.ledger.balance(INSURANCE_ACCOUNT);
    expect(window1.windowDrawn).toBe(CAP);
    expect(p.clock.nowMs()).toBeLessThan(window1.windowStartMs + HOUR);

    // An hour later, a new window: draws resume until the floor.
    p.clock.set(Math.floor(p.clock.nowMs() / HOUR) * HOUR + HOUR + 60_000);
    await wave(['172', '165']);
    const all = p.adapters.liquidations.all();
    const second = all.filter((l) => !first.some((f) => f.id === l.id));

    const report = await p.check();
    expect(report.violations).toEqual([]);
    expect(p.errors).toEqual([]);
    expect(first.length).toBe(30);
    expect(second.length).toBe(30);

    // Wave 1 needed more than the cap and got exactly the cap.
    expect(shortfall1).toBeGreaterThan(CAP);
    expect(paid1).toBe(CAP);
    // Wave 2 needed more than the room above the floor and got exactly down to the floor.
    const fees = sum(all.map((l) => amount(l.settlement, 'fee')));
    const paid = sum(all.map((l) => amount(l.settlement, 'insurancePaid')));
    const fund = await p.adapters.ledger.balance(INSURANCE_ACCOUNT);
    expect(fund.balance).toBe(FLOOR);
    expect(paid).toBe(FUND + fees - FLOOR);
    expect(report.figures.maxWindowDraw).toBe(CAP);
    expect(report.figures.fundMin).toBeGreaterThanOrEqual(0n);
    // ADL and bad debt take exactly what the fund refused, liquidation by liquidation (checked by the invariants)
    // and in total.
    const shortfall = sum(all.map((l) => amount(l.settlement, 'shortfall')));
    const adl = sum(all.map((l) => amount(l.settlement, 'adlCovered')));
    const badDebt = sum(all.map((l) => amount(l.settlement, 'badDebt')));
    expect(adl + badDebt).toBe(shortfall - paid);
    expect(adl).toBeGreaterThan(0n);
    expect(all.every((l) => l.state === 'SETTLED_ADL' || l.state === 'SETTLED_INSURANCE')).toBe(true);

    recordFigures('7-exhaustion', {
      liquidations: all.length,
      wave1: { liquidations: first.length, shortfall: shortfall1, paid: paid1 },
      wave2: {
        liquidations: second.length,
        shortfall: sum(second.map((l) => amount(l.settlement, 'shortfall'))),
        paid: sum(second.map((l) => amount(l.settlement, 'insurancePaid'))),
      },
      fundStart: FUND,
      fundEnd: fund.balance,
      cap: CAP,
      floor: FLOOR,
      shortfall,
      paid,
      adlCovered: adl,
      badDebt,
      figures: report.figures,
    });
  });

  it('adl-haircut-twice: a counterparty haircut by two ADLs never holds negative collateral', async () => {
    // Formerly deleverage() took pnlGiven out of collateral, beyond what the position realized: collateral went
    // negative and a second ADL ranked the same unrealized profit again. adl.ts now caps each haircut at
    // collateral + the profit realized by the close.
    const p = createPipeline();
    await p.tick('ETH-USD', '200');
    await p.open('LONG', '10', '200', '200');
    await p.open('LONG', '20', '200', '400');
    await p.open('SHORT', '10', '200', '100');
    await p.tick('ETH-USD', '175');
    await p.drain();
    const report = await p.check();
    expect(report.violations).toEqual([]);
  });
});
