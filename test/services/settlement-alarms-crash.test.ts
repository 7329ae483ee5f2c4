import { describe, expect, it } from 'vitest';
import { isTerminal } from '../../shared/domain/model.ts';
import { METRICS } from '../../shared/metrics.ts';
import { InjectedCrash, type LiquidationRecord } from '../../shared/ports/index.ts';
import { createPipeline, type Pipeline } from '../support/pipeline.ts';

/**
 * The BadDebt observation (BadDebtAlarm) and the AdlEvents count (AdlAlarm) are emitted after the commit that
 * settles. Found by a review of idempotency in session 26: a death right after that commit (on AWS a Lambda
 * timeout, or a lost answer whose retries fail) made SQS redeliver a terminal record, which only re-sent its
 * follow-ups: the loss stayed on the record and no alarm fired. A redelivery of a settled record reports it again.
 */

const badDebt = (p: Pipeline) =>
  p.telemetry.observations.filter((o) => o.metric === METRICS.BadDebt.name).reduce((a, o) => a + o.value, 0);

/** Dies right after the first commit that writes a record matching `when`. */
function dyingAfterCommit(when: (p: Pipeline) => boolean) {
  const state = { armed: false, died: 0, p: undefined as Pipeline | undefined };
  const hook = (point: string) => {
    if (!state.armed || point !== 'transactor.commit' || !state.p || !when(state.p)) return;
    state.armed = false;
    state.died += 1;
    throw new InjectedCrash(point);
  };
  return { state, hook };
}

describe('a death right after the commit that leaves bad debt', () => {
  it('settlement: the 65.90 USD loss of a settlement whose delivery died is reported by its redelivery', async () => {
    const run = async (die: boolean) => {
      const death = dyingAfterCommit((p) => p.adapters.liquidations.all().some((l) => isTerminal(l.state)));
      const p = createPipeline({ crashHook: death.hook });
      death.state.p = p;
      await p.tick('ETH-USD', '200');
      await p.tick('ETH-USD', '200');
      // A gap through bankruptcy (180) with an empty fund and no counterparty in profit: bad debt.
      await p.open('LONG', '10', '200', '200');
      death.state.armed = die;
      await p.tick('ETH-USD', '175');
      await p.drain();
      expect(death.state.died).toBe(die ? 1 : 0);
      return { p, liquidation: p.adapters.liquidations.all()[0] as LiquidationRecord };
    };
    const reference = await run(false);
    expect(reference.liquidation.settlement?.badDebt).toBe(65_900_000n);
    expect(badDebt(reference.p)).toBe(65.9);
    const died = await run(true);
    expect(died.liquidation).toMatchObject({ state: 'SETTLED_ADL', settlement: { badDebt: 65_900_000n } });
    expect((await died.p.check()).violations).toEqual([]);
    expect(badDebt(died.p)).toBe(65.9);
  });

  it('last ADL round: the deficit the rounds leave uncovered is reported by the redelivery', async () => {
    const run = async (die: boolean) => {
      // The commit of the last round: the record leaves its rounds (context.adlRounds set).
      const death = dyingAfterCommit((p) => p.adapters.liquidations.all().some((l) => l.context?.adlRounds));
      const p = createPipeline({ crashHook: death.hook });
      death.state.p = p;
      await p.tick('ETH-USD', '200');
      await p.tick('ETH-USD', '200');
      await p.open('LONG', '100', '200', '2000');
      // 120 shorts that give about 2.5 USD each: more than one transaction (90), less than the deficit.
      for (let i = 0; i < 120; i++) await p.open('SHORT', '0.1', '200', '1');
      death.state.armed = die;
      await p.tick('ETH-USD', '175');
      await p.drain();
      expect(death.state.died).toBe(die ? 1 : 0);
      return { p, liquidation: p.adapters.liquidations.all().find((l) => l.side === 'LONG')! };
    };
    const reference = await run(false);
    expect(reference.liquidation.context?.adlRounds).toBeGreaterThan(0);
    const left = Number(reference.liquidation.settlement!.badDebt) / 1e6;
    expect(left).toBeGreaterThan(0);
    expect(badDebt(reference.p)).toBe(left);
    const died = await run(true);
    expect(Number(died.liquidation.settlement!.badDebt) / 1e6).toBe(left);
    expect(badDebt(died.p)).toBe(left);
  });
});
