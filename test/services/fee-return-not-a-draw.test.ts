import { describe, expect, it } from 'vitest';
import { DEFAULT_RISK_CONFIG_INPUT, parseRiskConfig } from '../../shared/domain/config.ts';
import { InjectedCrash } from '../../shared/ports/index.ts';
import { INSURANCE_ACCOUNT } from '../../shared/services/context.ts';
import { createPipeline, type Pipeline } from '../support/pipeline.ts';

/**
 * Found by the pipeline fuzzing, session 27: the invariant checker counted every negative fund entry as a draw
 * against drawCapPerWindow, a fee given back (a negative 'liquidation-fee' of a settlement planned again) included.
 * The product takes a fee given back with no draw window (planFeeReturn, replan-fee-floor in docs/RELIABILITY.md),
 * so a run it handles as designed failed the stress invariants with "ledger: window ... drew X, cap Y".
 */
describe('the invariant checker and a fee given back', () => {
  it('reports no draw-cap violation when the only debit in the window is a fee given back', async () => {
    let armed = false;
    const config = parseRiskConfig({
      ...DEFAULT_RISK_CONFIG_INPUT,
      insurance: { drawCapPerWindow: '0', windowSeconds: 3600, floor: '0' }, // the fund pays no shortfall at all
    });
    const p: Pipeline = createPipeline({
      config,
      crashHook: (point) => {
        // A's delivery dies right after its plan credited A's fee (A is solvent at 184: an 18.40 USD fee).
        if (!armed || point !== 'ledger.apply') return;
        armed = false;
        throw new InjectedCrash(point);
      },
    });
    await p.fund('100');
    await p.tick('ETH-USD', '200');
    await p.tick('ETH-USD', '200');
    const a = await p.open('LONG', '10', '200', '200'); // bankrupt at 180, liquidated below 184.6
    await p.open('SHORT', '10', '200', '400'); // ADL's counterparty
    p.venue.faults.emptyBooks.add('ETH-USD'); // no market fills, no providers: ADL takes the size
    armed = true;
    await p.tick('ETH-USD', '184');
    await p.runUntil(p.clock.nowMs() + 5_000);
    // The market falls through A's bankruptcy before the redelivery, a minute later (a frozen plan that old is
    // made again): planned again at 175, A owes no fee.
    p.clock.advance(55_000);
    await p.tick('ETH-USD', '175');
    await p.drain();

    const journal = await p.adapters.ledger.journal(INSURANCE_ACCOUNT);
    const ofA = journal
      .filter((e) => e.reference.startsWith(`${a.id}:`))
      .map((e) => [e.idempotencyKey, e.amount]);
    // The fee credited, then given back; no shortfall payout (cap 0).
    expect(ofA).toEqual([
      [`${a.id}:0:fee`, 18_400_000n],
      [`${a.id}:0:fee:r1`, -18_400_000n],
    ]);
    expect(journal.some((e) => e.kind === 'shortfall-payout' && e.amount !== 0n)).toBe(false);
    const report = await p.check();
    expect(report.violations).toEqual([]);
  });
});
