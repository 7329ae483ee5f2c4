import { describe, expect, it } from 'vitest';
import { formatQuote } from '../../shared/domain/units.ts';
import { METRICS } from '../../shared/metrics.ts';
import { INSURANCE_ACCOUNT } from '../../shared/services/context.ts';
import { crashOnceAt, createPipeline, type Pipeline } from '../support/pipeline.ts';

/**
 * Noticed in session 36: a settlement redelivered after its fund movement applied gauged InsuranceFundBalance with
 * the balance after that first application (the ledger answers a replayed key with its first entry), which may be
 * minutes old: a deposit meanwhile, or other settlements, made the gauge show a fund that no longer is.
 */
describe('a settlement redelivered after its fund movement applied', () => {
  it('does not gauge the fund with the first application balance', async () => {
    // The delivery dies right after its fee reached the fund, before its commit.
    const crash = crashOnceAt('ledger.apply');
    const p: Pipeline = createPipeline({ crashHook: crash.hook });
    await p.fund('1000');
    await p.tick('ETH-USD', '200');
    await p.tick('ETH-USD', '200');
    const a = await p.open('LONG', '10', '200', '200'); // liquidated below 184.6, solvent at 184
    await p.open('SHORT', '10', '200', '400');
    p.venue.faults.emptyBooks.add('ETH-USD'); // no market, no providers: ADL closes it
    crash.arm();
    await p.tick('ETH-USD', '184');
    await p.runUntil(p.clock.nowMs() + 5_000);
    const fee = (await p.adapters.ledger.journal(INSURANCE_ACCOUNT)).find((e) =>
      e.reference.startsWith(`${a.id}:`),
    );
    expect(fee?.kind).toBe('liquidation-fee');
    expect(crash.crashed()).toBe(true);
    await p.fund('500'); // the fund moves on before the redelivery
    await p.drain();

    const now = (await p.adapters.ledger.balance(INSURANCE_ACCOUNT)).balance;
    expect(now).toBe(fee!.balanceAfter + 500_000_000n);
    expect((await p.adapters.positions.get(a.id))?.state).toBe('CLOSED');
    const gauged = p.telemetry.observations
      .filter((o) => o.metric === METRICS.InsuranceFundBalance.name)
      .map((o) => o.value);
    expect(gauged).not.toContain(Number(formatQuote(fee!.balanceAfter)));
  });
});
