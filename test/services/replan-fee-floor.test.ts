import { describe, expect, it } from 'vitest';
import { InjectedCrash } from '../../shared/ports/index.ts';
import { INSURANCE_ACCOUNT } from '../../shared/services/context.ts';
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
