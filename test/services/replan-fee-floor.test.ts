import { describe, expect, it } from 'vitest';
import { DEFAULT_RISK_CONFIG } from '../../shared/domain/config.ts';
import { base, price, usd } from '../../shared/domain/units.ts';
import { InjectedCrash, type LiquidationContext, type LiquidationRecord } from '../../shared/ports/index.ts';
import { INSURANCE_ACCOUNT } from '../../shared/services/context.ts';
import { checkSettlement } from '../support/invariants.ts';
import { createPipeline, type Pipeline } from '../support/pipeline.ts';

/**
 * A settlement planned again after an earlier plan of it credited the liquidation fee, at a mark where the trader is
 * now bankrupt (no fee), while the fund sits at its floor. Giving the fee back is a debit the floor refuses; a plan
 * that asked for it anyway was refused, planned again the same way, and dead-lettered SETTLING (replan-fee-floor).
 */
describe('a settlement planned again keeps a fee the fund cannot give back (replan-fee-floor)', () => {
  it('settles, charging the trader the fee credited before, when the fund is at its floor', async () => {
    let armed = false;
    let crashed = false;
    const p: Pipeline = createPipeline({
      crashHook: (point) => {
        // A's delivery dies right after its plan credited A's fee (A is solvent at 184: a 18.40 USD fee).
        if (!armed || point !== 'ledger.apply') return;
        armed = false;
        crashed = true;
        throw new InjectedCrash(point);
      },
    });
    await p.fund('5');
    await p.tick('ETH-USD', '200'); // a market's first print waits for a second
    await p.tick('ETH-USD', '200');
    const a = await p.open('LONG', '10', '200', '200'); // p1: bankrupt at 180, liquidated below 184.6
    const b = await p.open('LONG', '10', '200', '220'); // p2: bankrupt at 178, liquidated below 182.6
    await p.open('SHORT', '10', '200', '400'); // p3: ADL's only counterparty, for one of them
    p.venue.faults.emptyBooks.add('ETH-USD'); // no market fills, no providers: ADL takes the size
    armed = true;
    await p.tick('ETH-USD', '184');
    await p.runUntil(p.clock.nowMs() + 5_000);
    expect(crashed).toBe(true);
    const liquidationOf = (id: string) => p.adapters.liquidations.all().find((l) => l.positionId === id);
    expect(liquidationOf(a.id)?.state).toBe('SETTLING');
    expect((await p.adapters.ledger.balance(INSURANCE_ACCOUNT)).balance).toBe(23_400_000n);
    // B's 30 USD shortfall at 175 takes the fund (5 + A's fee) to its floor, and B closes the short A froze.
    await p.tick('ETH-USD', '175');
    await p.runUntil(p.clock.nowMs() + 5_000);
    expect(liquidationOf(b.id)?.state).toBe('SETTLED_ADL');
    expect((await p.adapters.ledger.balance(INSURANCE_ACCOUNT)).balance).toBe(0n);
    // The market falls on (two steps within the breaker's band), where A is bankrupt, and the book is back.
    await p.tick('ETH-USD', '160');
    await p.tick('ETH-USD', '140');
    p.venue.faults.emptyBooks.delete('ETH-USD');
    await p.drain(8 * 3600);

    const settledA = liquidationOf(a.id)!;
    expect(settledA.state).toMatch(/^SETTLED_/);
    expect((await p.adapters.positions.get(a.id))?.state).toBe('CLOSED');
    // The fee stays with the fund (it could not give it back), so A's settlement records it, and its shortfall
    // grows by it: the fund paid none of it (at its floor) and ADL had nobody left, so it is bad debt.
    expect(settledA.settlement?.fee).toBe(18_400_000n);
    expect(settledA.settlement?.insurancePaid).toBe(0n);
    expect(settledA.settlement?.badDebt).toBe(settledA.settlement?.shortfall);
    expect((await p.adapters.ledger.balance(INSURANCE_ACCOUNT)).balance).toBe(0n);
    expect(p.errors).toEqual(['liquidations: ledger.apply']); // the injected crash alone
    expect((await p.check(1)).violations).toEqual([]);
  }, 60_000);
});

/**
 * Pipeline form of fee-return-before-give-back.test.ts. A's first plan (bankrupt at 175) pays 20 of its 50
 * shortfall and dies; B takes its ADL counterparty. Planned again at 186 (solvent: an 18.60 fee, no shortfall) it
 * credits the fee and dies before giving the 20 back. Its new counterparty is written by someone else and the fund
 * is withdrawn to its floor. Planned again at 185 (solvent: an 18.50 fee, 31.50 payout), with applied { fee 18.60,
 * shortfall paid 20 }: the fund gets the 20 back in this very plan, yet the 0.10 fee difference is planned (and
 * applied) before it, against a fund at its floor, so it is "kept" and charged to A's payout.
 */
describe('a plan made again gives a fee back out of the payout it gives back (replan-fee-floor)', () => {
  it('charges a solvent trader only the fee due when the fund gets a shortfall back in the same plan', async () => {
    let armed = false;
    const p: Pipeline = createPipeline({
      crashHook: (point) => {
        if (!armed || point !== 'ledger.apply') return;
        armed = false;
        throw new InjectedCrash(point);
      },
    });
    await p.fund('20');
    await p.tick('ETH-USD', '200'); // a market's first print waits for a second
    await p.tick('ETH-USD', '200');
    const a = await p.open('LONG', '10', '200', '200'); // bankrupt at 180
    const b = await p.open('LONG', '10', '200', '200');
    await p.open('SHORT', '10', '200', '400'); // takes one of A and B at 175
    const p4 = await p.open('SHORT', '10', '200', '400'); // A's counterparty when planned again
    p.venue.faults.emptyBooks.add('ETH-USD'); // ADL takes the size
    const liquidationOf = (id: string) => p.adapters.liquidations.all().find((l) => l.positionId === id)!;
    armed = true; // A dies right after the fund paid 20 of its shortfall
    await p.tick('ETH-USD', '175');
    await p.runUntil(p.clock.nowMs() + 5_000);
    expect(liquidationOf(a.id).state).toBe('SETTLING');
    expect(liquidationOf(b.id).state).toBe('SETTLED_ADL');
    await p.tick('ETH-USD', '186');
    armed = true; // A, planned again at 186, dies right after crediting its 18.60 fee (before giving the 20 back)
    for (let i = 0; i < 120 && p.errors.length < 2; i++) await p.runUntil(p.clock.nowMs() + 1_000);
    const id = liquidationOf(a.id).id;
    expect(
      (await p.adapters.ledger.entriesOf(INSURANCE_ACCOUNT, id)).map((e) => [e.idempotencyKey, e.amount]),
    ).toEqual([
      [`${id}:shortfall`, -20_000_000n],
      [`${id}:fee:r1`, 18_600_000n],
    ]);
    // A's counterparty is written meanwhile (a version bump), and the fund is withdrawn to its floor (0).
    const counterparty = (await p.adapters.positions.get(p4.id))!;
    await p.adapters.positions.replace(
      { ...counterparty, version: counterparty.version + 1 },
      counterparty.version,
    );
    const balance = (await p.adapters.ledger.balance(INSURANCE_ACCOUNT)).balance;
    await p.adapters.ledger.apply({
      account: INSURANCE_ACCOUNT,
      idempotencyKey: 'admin:withdraw-1',
      amount: -balance,
      kind: 'withdraw',
      reference: 'admin',
      atMs: p.clock.nowMs(),
      floor: 0n,
    });
    await p.tick('ETH-USD', '185');
    await p.drain(8 * 3600);

    const settled = liquidationOf(a.id);
    expect(settled.state).toMatch(/^SETTLED_/);
    // At 185: equity 50, fee due 18.50, payout 31.50. With the 20 given back first, the 0.10 goes back too: the
    // fund ends at 19.90 (it ends at 20.00 now, the 0.10 charged to A, fee 18.60, payout 31.40).
    expect((await p.adapters.ledger.balance(INSURANCE_ACCOUNT)).balance).toBe(19_900_000n);
    expect(settled.settlement?.fee).toBe(18_500_000n);
    expect(settled.settlement?.traderPayout).toBe(31_500_000n);
    expect((await p.check(1)).violations).toEqual([]);
  }, 60_000);
});

/**
 * Stored-record compatibility of replan-fee-floor. Before the change, a settlement planned again because its ADL
 * counterparty changed (refreeze with keepInsurance) froze `settle.insurance` = the FIRST plan's fund state, i.e.
 * a state that does NOT hold what earlier plans applied. The change's decideAndSettle re-decides every frozen plan
 * with `applied` and assumes `settle.insurance` already holds it. A SETTLING record frozen by the old code and
 * delivered by the new one is planned on a fund that lacks the fee credited before.
 *
 * World (as test/services/replan-fee-floor.test.ts): A's first plan credits an 18.40 fee on a 5 USD fund, its
 * delivery dies; 100 USD is deposited; B settles on A's counterparty (fund 93.40); the market falls, A is
 * bankrupt (431 shortfall). A's redelivery plans again (r1) and its delivery dies right after the freeze commit.
 * The r1 record is then rewritten as the old code stored it: settle.insurance = the first plan's (5 USD).
 */
async function scenario(): Promise<{ p: Pipeline; aId: string; r1: LiquidationRecord }> {
  let mode: 'off' | 'fee' | 'r1freeze' = 'off';
  let aId = '';
  const p: Pipeline = createPipeline({
    crashHook: (point) => {
      if (mode === 'fee' && point === 'ledger.apply') {
        mode = 'off';
        throw new InjectedCrash(point);
      }
      if (mode === 'r1freeze' && point === 'transactor.commit') {
        const l = p.adapters.liquidations.all().find((x) => x.positionId === aId);
        if (l?.state === 'SETTLING' && l.context?.settle?.applied && !l.context.settle.superseded) {
          mode = 'off';
          throw new InjectedCrash(point);
        }
      }
    },
  });
  await p.fund('5');
  await p.tick('ETH-USD', '200');
  await p.tick('ETH-USD', '200');
  const a = await p.open('LONG', '10', '200', '200');
  aId = a.id;
  const b = await p.open('LONG', '10', '200', '220');
  await p.open('SHORT', '10', '200', '400');
  p.venue.faults.emptyBooks.add('ETH-USD');
  mode = 'fee';
  await p.tick('ETH-USD', '184');
  await p.runUntil(p.clock.nowMs() + 5_000);
  const liquidationOf = (id: string) => p.adapters.liquidations.all().find((l) => l.positionId === id)!;
  const firstPlan = liquidationOf(a.id);
  expect(firstPlan.state).toBe('SETTLING');
  const firstInsurance = firstPlan.context!.settle!.insurance;
  expect(firstInsurance.balance).toBe(5_000_000n);
  await p.fund('100');
  await p.tick('ETH-USD', '175');
  await p.runUntil(p.clock.nowMs() + 5_000);
  expect(liquidationOf(b.id).state).toBe('SETTLED_ADL');
  expect((await p.adapters.ledger.balance(INSURANCE_ACCOUNT)).balance).toBe(93_400_000n);
  await p.tick('ETH-USD', '160');
  await p.tick('ETH-USD', '140');
  p.venue.faults.emptyBooks.delete('ETH-USD');
  mode = 'r1freeze';
  for (let i = 0; i < 120 && p.errors.length < 2; i++) await p.runUntil(p.clock.nowMs() + 1_000);
  const frozen = liquidationOf(a.id);
  expect(frozen.state).toBe('SETTLING');
  expect(frozen.context?.settle?.applied).toEqual({ [`${frozen.id}:fee`]: 18_400_000n });
  // What the code before the change stored here (refreeze(..., keepInsurance = true)): the first plan's state.
  const r1: LiquidationRecord = {
    ...frozen,
    version: frozen.version + 1,
    // (and without the marker the new code writes: insuranceHoldsApplied)
    context: {
      ...frozen.context!,
      settle: { ...frozen.context!.settle!, insurance: firstInsurance, insuranceHoldsApplied: undefined },
    },
  };
  await p.adapters.liquidations.replace(r1, frozen.version);
  return { p, aId: a.id, r1 };
}

describe('a SETTLING record planned again before replan-fee-floor, delivered after it', () => {
  it('settles as a record frozen by the new code would: the fee given back, the fund paying what it can', async () => {
    const { p, aId } = await scenario();
    await p.drain(8 * 3600);
    const settled = p.adapters.liquidations.all().find((l) => l.positionId === aId)!;
    expect(settled.state).toMatch(/^SETTLED_/);
    // The fund holds 93.40 with the fee in it: a record frozen by the new code gives the 18.40 back and pays 75
    // (bad debt 356). Planned on the stale 5 USD state, the fee is kept (13.40) and the fund pays nothing: bad
    // debt 444.40, and p.check() sees nothing wrong.
    expect(settled.settlement?.fee).toBe(0n);
    expect(settled.settlement?.insurancePaid).toBe(75_000_000n);
    expect(settled.settlement?.badDebt).toBe(356_000_000n);
  }, 60_000);

  it('keeps the journal equal to the settlement when the old delivery had moved its first difference', async () => {
    const { p, r1 } = await scenario();
    // The old code's r1 plan (on 5 USD: pay 5 of the 431, give the 18.40 fee back, in that order) had applied its
    // first movement before its delivery died.
    await p.adapters.ledger.apply({
      account: INSURANCE_ACCOUNT,
      idempotencyKey: `${r1.id}:shortfall:r1`,
      amount: -5_000_000n,
      kind: 'shortfall-payout',
      reference: r1.id,
      atMs: r1.context!.settle!.nowMs,
      floor: 0n,
      drawWindow: { windowStartMs: 1584003600000, cap: p.config.insurance.drawCapPerWindow },
      fence: { liquidationId: r1.id, version: r1.version },
    });
    await p.drain(8 * 3600);
    const report = await p.check(1);
    expect(report.violations).toEqual([]);
  }, 60_000);
});

/**
 * The invariants accept a fee kept by a plan made again only as far as the fund the plan saw (settle.insurance)
 * could not give it back above its floor: a fee kept with room for it is a violation.
 */
describe('checkSettlement and a kept fee (replan-fee-floor)', () => {
  const id = 'p1:0';
  // LONG 10 at 200 with 200 collateral, closed at 136.90: pnl -631, bankrupt (shortfall 431), so no fee is due.
  const settle = {
    // The fund the replan was made on: 93.40, the 18.40 fee credited before included; floor 0.
    insurance: { balance: usd('93.4'), windowStartMs: 0, windowDrawn: 0n },
    nowMs: 0,
    mark: price('140'),
    position: { size: base('10'), collateral: usd('200'), entryPrice: price('200'), version: 1 },
    applied: { [`${id}:fee`]: usd('18.4') },
    replans: 1,
  };
  const context = {
    plannedSize: base('10'),
    executionMark: price('140'),
    settle,
  } as unknown as LiquidationContext;
  /** The settlement as recorded with `fee` kept (the fund paying nothing, the rest bad debt). */
  const problemsWith = (fee: string, shortfall: string): string[] =>
    checkSettlement(
      {
        id,
        symbol: 'ETH-USD',
        state: 'SETTLED_ADL',
        marketFills: [{ size: base('10'), price: price('136.9') }],
        settlement: {
          marketClosedSize: base('10'),
          lastResortClosedSize: base('10'),
          auctionClosedSize: 0n,
          adlClosedSize: 0n,
          carriedSize: 0n,
          realizedPnl: -usd('631'),
          fee: usd(fee),
          shortfall: usd(shortfall),
          insurancePaid: 0n,
          adlCovered: 0n,
          badDebt: usd(shortfall),
          traderPayout: 0n,
        },
      } as unknown as LiquidationRecord,
      context,
      { side: 'LONG', entryPrice: price('200'), collateral: usd('200') },
      undefined,
      DEFAULT_RISK_CONFIG,
    ).problems;

  it('flags a fee kept while the fund the plan saw could give it back, and accepts the fee given back', () => {
    // 13.40 of the 18.40 kept, though the fund had 93.40 above its floor: the fund would then pay nothing.
    expect(problemsWith('13.4', '444.4')).toEqual([
      `settle: ${id} records pnl/fee/shortfall/payout -631000000/13400000/444400000/0, fills give -631000000/0/431000000/0`,
      `settle: ${id} shortfall 431000000 != paid 0 + adl 0 + bad debt 444400000`,
    ]);
    // Keeping the whole fee is as wrong; giving it all back is right.
    expect(problemsWith('18.4', '449.4')[0]).toMatch(
      /records pnl\/fee\/shortfall\/payout -631000000\/18400000/,
    );
    expect(problemsWith('0', '431')).toEqual([]);
  });
});
