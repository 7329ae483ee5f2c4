import { describe, expect, it } from 'vitest';
import { DEFAULT_RISK_CONFIG_INPUT, parseRiskConfig } from '../../shared/domain/config.ts';
import { InjectedCrash } from '../../shared/ports/index.ts';
import { INSURANCE_ACCOUNT } from '../../shared/services/context.ts';
import { LATE_DELIVERY_MS } from '../../shared/services/liquidation.ts';
import { createPipeline, type Pipeline, T0 } from '../support/pipeline.ts';

const HOUR = 3_600_000;
const CAP = 10_000_000n; // 10 USD per hour

/**
 * Found by a review of time, session 27. A settlement freezes its inputs (context.settle: the fund, the mark, the
 * counterparties, its time) before any money moves. A delivery that died after the freeze comes back later (a
 * redelivery, a dead-letter redrive, a backlog) and applied the frozen plan as it was: its debit carried the draw
 * window of its freeze, which the ledger opened afresh when its stored window was older (one cap per stale
 * window, all paid within one real hour), and ADL closed counterparties at the frozen mark. A plan older than
 * LATE_DELIVERY_MS, or from another window, is now made again on the mark and window of now.
 */
describe('a frozen settlement applied late is planned again', () => {
  it('pays no more than the draw cap within one real window when stale frozen plans are applied late', async () => {
    const crashedFor = new Set<string>();
    let armed = false;
    const config = parseRiskConfig({
      ...DEFAULT_RISK_CONFIG_INPUT,
      insurance: { drawCapPerWindow: '10', windowSeconds: 3600, floor: '0' },
    });
    const p: Pipeline = createPipeline({
      config,
      // A dead delivery goes to the dead-letter queue at once (its redrive comes later, by an operator).
      maxReceiveCount: { liquidations: 1 },
      crashHook: (point) => {
        if (!armed || point !== 'transactor.commit') return;
        // Dies right after the freeze (SETTLING) commit, before any ledger movement.
        const frozen = p.adapters.liquidations
          .all()
          .find((l) => l.state === 'SETTLING' && l.context?.settle && !crashedFor.has(l.id));
        if (!frozen) return;
        crashedFor.add(frozen.id);
        throw new InjectedCrash(point);
      },
    });
    await p.fund('10000');
    await p.tick('ETH-USD', '200');
    await p.tick('ETH-USD', '200');

    // Hours 0, 1, 2: one bankrupt long each, frozen and dead after the freeze.
    const path = [
      { entry: '200', collateral: '200', crash: '175' },
      { entry: '175', collateral: '175', crash: '155' },
      { entry: '155', collateral: '155', crash: '137' },
    ];
    for (const [hour, leg] of path.entries()) {
      p.clock.set(T0 + hour * HOUR + 60_000);
      await p.tick('ETH-USD', leg.entry);
      await p.open('LONG', '10', leg.entry, leg.collateral);
      armed = true;
      await p.tick('ETH-USD', leg.crash);
      await p.runUntil(p.clock.nowMs() + 5_000);
      armed = false;
    }
    expect(crashedFor.size).toBe(3);
    expect((await p.adapters.ledger.balance(INSURANCE_ACCOUNT)).balance).toBe(10_000_000_000n);

    // Hour 3: the dead-lettered deliveries are redriven, and a fresh liquidation comes in.
    p.clock.set(T0 + 3 * HOUR + 60_000);
    const before = (await p.adapters.ledger.journal(INSURANCE_ACCOUNT)).length;
    // The last dead delivery's message moves to the dead-letter queue on its next receive.
    expect(await p.adapters.liquidationQueue.receive(10, 30)).toEqual([]);
    const redriven = await p.adapters.liquidationDeadLetters.receive(10, 30);
    expect(redriven.length).toBe(3);
    for (const m of redriven) await p.handlers.liquidation(m);
    await p.tick('ETH-USD', '137');
    await p.open('LONG', '10', '137', '137');
    await p.tick('ETH-USD', '121');
    await p.runUntil(p.clock.nowMs() + 60_000);

    const states = p.adapters.liquidations.all().map((l) => l.state);
    expect(states.filter((s) => s.startsWith('SETTLED_')).length).toBe(4);
    const hour3 = (await p.adapters.ledger.journal(INSURANCE_ACCOUNT)).slice(before);
    const paidOut = hour3.filter((e) => e.kind === 'shortfall-payout').reduce((s, e) => s - e.amount, 0n);
    // Everything above was paid out between 03:01 and 03:02: one window, cap 10 USD.
    expect(paidOut).toBeLessThanOrEqual(CAP);
  }, 60_000);

  // Hours later (other draw windows), and minutes later in the same window (past LATE_DELIVERY_MS alone).
  it.each([
    { gap: 'three hours', stepMs: HOUR },
    { gap: 'three minutes, in the same window', stepMs: 60_000 },
  ])(
    'closes an ADL counterparty at the latest mark, not at a mark frozen $gap earlier',
    async ({ stepMs }) => {
      expect(3 * stepMs).toBeGreaterThan(LATE_DELIVERY_MS);
      let armed = false;
      let crashed = false;
      const p: Pipeline = createPipeline({
        maxReceiveCount: { liquidations: 1 },
        crashHook: (point) => {
          if (!armed || point !== 'transactor.commit') return;
          if (!p.adapters.liquidations.all().some((l) => l.state === 'SETTLING' && l.context?.settle)) return;
          armed = false;
          crashed = true;
          throw new InjectedCrash(point);
        },
      });
      await p.fund('10000');
      await p.tick('ETH-USD', '200');
      await p.tick('ETH-USD', '200');
      const long = await p.open('LONG', '10', '200', '200'); // bankrupt at 180
      const short = await p.open('SHORT', '10', '200', '400'); // ADL's counterparty
      p.venue.faults.emptyBooks.add('ETH-USD'); // nothing fills, no providers: ADL takes the size at the mark
      armed = true;
      await p.tick('ETH-USD', '175');
      await p.runUntil(p.clock.nowMs() + 5_000);
      expect(crashed).toBe(true);
      const frozen = p.adapters.liquidations.all().find((l) => l.positionId === long.id)!;
      expect(frozen.state).toBe('SETTLING');
      expect(frozen.context?.settle?.mark).toBe(17_500_000_000n);

      // The market walks down (in band), the short deep in profit.
      for (const [i, px] of ['155', '137', '121'].entries()) {
        p.clock.set(T0 + (i + 1) * stepMs);
        await p.tick('ETH-USD', px);
        await p.tick('ETH-USD', px);
      }
      expect((await p.adapters.markets.get('ETH-USD'))?.lastTick?.markPrice).toBe(12_100_000_000n);

      // The dead-lettered delivery is redriven.
      expect(await p.adapters.liquidationQueue.receive(10, 30)).toEqual([]);
      const redriven = await p.adapters.liquidationDeadLetters.receive(10, 30);
      expect(redriven.length).toBe(1);
      for (const m of redriven) await p.handlers.liquidation(m);

      const settled = p.adapters.liquidations.all().find((l) => l.positionId === long.id)!;
      expect(settled.state).toMatch(/^SETTLED_/);
      const counterparty = (await p.adapters.positions.get(short.id))!;
      expect(counterparty.state).toBe('CLOSED');
      // Closed at 121 the short's 10 pay out 400 + (200 - 121) * 10 = 1,190 USD; at the frozen 175, 650.
      expect(counterparty.closedPayout).toBe(1_190_000_000n);
    },
    60_000,
  );
});
