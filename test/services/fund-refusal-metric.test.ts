import { describe, expect, it } from 'vitest';
import { DEFAULT_RISK_CONFIG_INPUT, parseRiskConfig } from '../../shared/domain/config.ts';
import { METRICS } from '../../shared/metrics.ts';
import { createPipeline } from '../support/pipeline.ts';

/**
 * A shortfall the fund refuses (at its floor, or past its draw cap per window) is counted by reason, so each pages
 * for itself (InsuranceFloorAlarm, InsuranceDrawCapAlarm). Found by a review of the alarms in session 31: nothing
 * counted a refusal, and a draw-cap refusal while the balance stood high showed only as ADL.
 */
async function bankruptcyThroughAGap(insurance: { drawCapPerWindow: string; floor: string }) {
  const config = parseRiskConfig({
    ...DEFAULT_RISK_CONFIG_INPUT,
    insurance: { ...insurance, windowSeconds: 3600 },
  });
  const p = createPipeline({ config });
  await p.fund('1000');
  await p.tick('ETH-USD', '200');
  await p.tick('ETH-USD', '200');
  await p.open('LONG', '10', '200', '200'); // bankrupt at 180
  await p.open('SHORT', '10', '200', '400'); // ADL's counterparty
  await p.tick('ETH-USD', '175');
  await p.drain();
  expect((await p.check()).violations).toEqual([]);
  const [liquidation] = p.adapters.liquidations.all();
  return { p, settlement: liquidation!.settlement! };
}

const refusals = (p: Awaited<ReturnType<typeof bankruptcyThroughAGap>>['p'], reason: string) =>
  p.telemetry.counts.get(`${METRICS.InsuranceFundRefusals.name}:${reason}`) ?? 0;

describe('shortfalls the fund refuses are counted by reason', () => {
  it('at its floor', async () => {
    const { p, settlement } = await bankruptcyThroughAGap({ drawCapPerWindow: '1000000', floor: '1000' });
    expect(settlement.shortfall).toBeGreaterThan(0n);
    expect(settlement.insurancePaid).toBe(0n);
    expect(settlement.adlCovered).toBe(settlement.shortfall);
    expect(refusals(p, 'insurance/floor')).toBe(1);
    expect(refusals(p, 'insurance/draw-cap')).toBe(0);
  });

  it('past its draw cap, with money in it', async () => {
    const { p, settlement } = await bankruptcyThroughAGap({ drawCapPerWindow: '10', floor: '0' });
    expect(settlement.insurancePaid).toBe(10_000_000n);
    expect(settlement.adlCovered).toBe(settlement.shortfall - 10_000_000n);
    expect(refusals(p, 'insurance/draw-cap')).toBe(1);
    expect(refusals(p, 'insurance/floor')).toBe(0);
  });

  it('not when the fund pays it all', async () => {
    const { p, settlement } = await bankruptcyThroughAGap({ drawCapPerWindow: '1000000', floor: '0' });
    expect(settlement.insurancePaid).toBe(settlement.shortfall);
    expect(p.telemetry.total(METRICS.InsuranceFundRefusals.name)).toBe(0);
  });
});
