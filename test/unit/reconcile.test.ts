import { describe, expect, it } from 'vitest';
import { METRICS } from '../../shared/metrics.ts';
import type { AccountBalance, JournalEntry, Telemetry } from '../../shared/ports/index.ts';
import { reconcileAccount } from '../../shared/services/reconcile.ts';

const USD = 1_000_000n;

function recording(): Telemetry & { observed: Map<string, number[]> } {
  const observed = new Map<string, number[]>();
  const put = (name: string, value: number) => observed.set(name, [...(observed.get(name) ?? []), value]);
  return {
    observed,
    count: (name, value = 1) => put(name, value),
    observe: (name, value) => put(name, value),
    info: () => {},
    warn: () => {},
  };
}

const entry = (sequence: number, amount: bigint, before: bigint): JournalEntry => ({
  account: 'insurance',
  idempotencyKey: `k${sequence}`,
  amount,
  balanceBefore: before,
  balanceAfter: before + amount,
  kind: 'test',
  reference: 'r',
  atMs: sequence,
  sequence,
});

/** A reconcile alarms on what it checks (a review's finding: the lowest balance was computed, then dropped). */
describe('ledger reconcile reports what it checks', () => {
  it('a journal that shows the fund below zero raises the reconcile alarm metric (minBalance is computed, then dropped)', async () => {
    // Chains and sums correctly, but the fund paid 50 USD it did not have: 0 -> -50 -> +50.
    const journal = [entry(1, -50n * USD, 0n), entry(2, 100n * USD, -50n * USD)];
    const balance: AccountBalance = {
      account: 'insurance',
      balance: 50n * USD,
      sequence: 2,
      windowStartMs: 0,
      windowDrawn: 0n,
    };
    const telemetry = recording();
    const report = await reconcileAccount(
      { balance: async () => balance, journal: async () => journal },
      'insurance',
      telemetry,
    );
    expect(report.minBalance).toBe(-50n * USD);
    expect(report.problems).toEqual(['entry 1: balance -50000000 below zero']);
    // Its own alarm (LedgerJournalAlarm, >= 1), apart from the difference's tolerance.
    expect(telemetry.observed.get(METRICS.LedgerJournalProblems.name)).toEqual([1]);
    expect(telemetry.observed.get(METRICS.LedgerReconcileDifference.name)).toEqual([0]);
  });
});
