import { describe, expect, it, vi } from 'vitest';
import { METRICS } from '../../shared/metrics.ts';
import { ConditionFailedError, type LedgerMovement } from '../../shared/ports/index.ts';
import { MAX_CONTENDED_DELIVERIES } from '../../shared/services/liquidation.ts';
import { createPipeline } from '../support/pipeline.ts';

/**
 * Found by a drill of the operator runbook in session 38: with settlements racing for the fund (a crash), a
 * delivery whose debits kept meeting another settlement's planned again until its transitions ran out and failed
 * (`liquidation/too-many-transitions`): a failed record pages, and five of them dead-letter a healthy settlement.
 * The delivery now sends the liquidation back after a short, spread delay; only one that stays contended for
 * MAX_CONTENDED_DELIVERIES deliveries is stuck.
 */
async function racingForTheFund(refusals: number) {
  const p = createPipeline();
  await p.fund('10000');
  await p.tick('ETH-USD', '200');
  await p.tick('ETH-USD', '200');
  await p.open('LONG', '10', '200', '200'); // bankrupt at 180: a fall to 175 leaves a shortfall for the fund
  const apply = p.adapters.ledger.apply.bind(p.adapters.ledger);
  let refused = 0;
  // Another settlement's debit lands first, every time, `refusals` times.
  vi.spyOn(p.adapters.ledger, 'apply').mockImplementation(async (movement: LedgerMovement) => {
    if (movement.amount < 0n && refused < refusals) {
      refused += 1;
      throw new ConditionFailedError('ledger/version: another settlement drew the fund first');
    }
    return apply(movement);
  });
  await p.tick('ETH-USD', '175');
  await p.runUntil(p.clock.nowMs() + 30 * 60_000);
  const [liquidation] = p.adapters.liquidations.all();
  return { p, liquidation, refused };
}

describe('a settlement racing for the fund', () => {
  it('comes back after a short delay instead of failing, and settles once', async () => {
    const { p, liquidation, refused } = await racingForTheFund(12);
    expect(refused).toBe(12);
    expect(liquidation?.state).toBe('SETTLED_INSURANCE');
    expect(p.telemetry.total(METRICS.LiquidationsContended.name)).toBeGreaterThanOrEqual(1);
    expect(p.errors).toEqual([]);
    expect(liquidation?.lastFailure).toBeUndefined();
    expect((await p.adapters.liquidationDeadLetters.depth()).visible).toBe(0);
  });

  it('is stuck, failed and dead-lettered in the end, only when it stays contended delivery after delivery', async () => {
    const { p, liquidation } = await racingForTheFund(Number.MAX_SAFE_INTEGER);
    expect(p.telemetry.total(METRICS.LiquidationsContended.name)).toBe(MAX_CONTENDED_DELIVERIES);
    expect(p.errors.some((e) => /liquidation\/too-many-transitions/.test(e))).toBe(true);
    expect(liquidation?.state).not.toMatch(/^SETTLED_/);
  });
});

describe('contended deliveries across a stale mark', () => {
  it('is called stuck after MAX_CONTENDED_DELIVERIES even when a stale mark comes between (review, session 38: the count started again)', async () => {
    const p = createPipeline({ marks: 'as-configured' });
    await p.fund('10000');
    await p.tick('ETH-USD', '200');
    await p.tick('ETH-USD', '200');
    await p.open('LONG', '10', '200', '200');
    const apply = p.adapters.ledger.apply.bind(p.adapters.ledger);
    vi.spyOn(p.adapters.ledger, 'apply').mockImplementation(async (movement: LedgerMovement) => {
      if (movement.amount < 0n) throw new ConditionFailedError('ledger/version: refused for ever');
      return apply(movement);
    });
    await p.tick('ETH-USD', '175');
    // A feed that ticks every 110 to 170 s (the mark is stale past 120 s some of the time), for 3 hours.
    const end = p.clock.nowMs() + 3 * 3600_000;
    let i = 0;
    while (p.clock.nowMs() < end) {
      await p.runUntil(p.clock.nowMs() + (i % 2 === 0 ? 110_000 : 170_000));
      await p.tick('ETH-USD', '175');
      i++;
    }
    const contended = p.telemetry.total(METRICS.LiquidationsContended.name);
    const stale = p.telemetry.total(METRICS.StaleMarkWaits.name);
    expect(stale).toBeGreaterThan(0);
    expect(contended).toBeLessThanOrEqual(MAX_CONTENDED_DELIVERIES * 2);
    expect(p.errors.some((e) => /too-many-transitions/.test(e))).toBe(true);
  });
});
