import { describe, expect, it } from 'vitest';
import { EmbeddedLedger } from '../../shared/adapters/embedded/ledger.ts';
import { METRICS } from '../../shared/metrics.ts';
import type { AccountBalance, JournalEntry, Telemetry } from '../../shared/ports/index.ts';
import { type JournalReader, journalSnapshot, reconcileAccount } from '../../shared/services/reconcile.ts';

const USD = 1_000_000n;
const FUND = 'insurance';

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
  account: FUND,
  idempotencyKey: `k${sequence}`,
  amount,
  balanceBefore: before,
  balanceAfter: before + amount,
  kind: 'test',
  reference: 'r',
  atMs: sequence,
  sequence,
});

const balanceOf = (balance: bigint, sequence: number): AccountBalance => ({
  account: FUND,
  balance,
  sequence,
  windowStartMs: 0,
  windowDrawn: 0n,
});

/** A fund ledger with `n` deposits of 1..n USD, and a reader that counts the entries it hands out. */
async function fundWith(n: number) {
  const ledger = new EmbeddedLedger();
  for (let i = 1; i <= n; i++) {
    await ledger.apply({
      account: FUND,
      idempotencyKey: `d${i}`,
      amount: BigInt(i) * USD,
      kind: 'deposit',
      reference: 'r',
      atMs: i,
      floor: 0n,
    });
  }
  const reads: number[] = [];
  const reader: JournalReader = {
    balance: (account) => ledger.balance(account),
    auditCheckpoint: (account) => ledger.auditCheckpoint(account),
    saveAuditCheckpoint: (account, audit, restart) => ledger.saveAuditCheckpoint(account, audit, restart),
    journalAfter: async (account, after, limit) => {
      const page = await ledger.journalAfter(account, after, limit);
      reads.push(page.length);
      return page;
    },
  };
  return { ledger, reader, reads };
}

const noPause = { pause: async () => {} };

/** A reconcile alarms on what it checks (a review's finding: the lowest balance was computed, then dropped). */
describe('ledger reconcile reports what it checks', () => {
  it('a journal that shows the fund below zero raises the reconcile alarm metric (minBalance is computed, then dropped)', async () => {
    // Chains and sums correctly, but the fund paid 50 USD it did not have: 0 -> -50 -> +50.
    const journal = [entry(1, -50n * USD, 0n), entry(2, 100n * USD, -50n * USD)];
    const telemetry = recording();
    const report = await reconcileAccount(journalSnapshot(balanceOf(50n * USD, 2), journal), FUND, telemetry);
    expect(report.minBalance).toBe(-50n * USD);
    expect(report.problems).toEqual(['entry 1: balance -50000000 below zero']);
    // Its own alarm (LedgerJournalAlarm, >= 1), apart from the difference's tolerance.
    expect(telemetry.observed.get(METRICS.LedgerJournalProblems.name)).toEqual([1]);
    expect(telemetry.observed.get(METRICS.LedgerReconcileDifference.name)).toEqual([0]);
  });

  it('reports entries that do not chain, and a balance that differs from the sum', async () => {
    const journal = [entry(1, 10n * USD, 0n), entry(2, 5n * USD, 11n * USD)];
    const telemetry = recording();
    const report = await reconcileAccount(journalSnapshot(balanceOf(16n * USD, 2), journal), FUND, telemetry);
    expect(report.problems).toEqual(['entry 2: balanceBefore 11000000 != 10000000']);
    expect(report.difference).toBe(1n * USD);
    expect(telemetry.observed.get(METRICS.LedgerReconcileDifference.name)).toEqual([1]);
  });
});

/**
 * The scheduled reconcile read the whole journal every 5 minutes into memory (about 580k entries fit in its
 * 512 MB): it now reads a page at a time from the checkpoint the last run stored.
 */
describe('ledger reconcile from its checkpoint', () => {
  it('a second run reads only the entries written since the first, and judges the whole sum', async () => {
    const { ledger, reader, reads } = await fundWith(7);
    const options = { from: 'checkpoint', saveCheckpoint: true, pageSize: 3, ...noPause } as const;
    const first = await reconcileAccount(reader, FUND, recording(), options);
    expect(first).toMatchObject({ entries: 7, auditedThrough: 7, difference: 0n, problems: [], backlog: 0 });
    expect(reads).toEqual([3, 3, 1]);
    expect(await ledger.auditCheckpoint(FUND)).toEqual({ sequence: 7, sum: 28n * USD, minBalance: 0n });
    await ledger.apply({
      account: FUND,
      idempotencyKey: 'w1',
      amount: -20n * USD,
      kind: 'withdraw',
      reference: 'r',
      atMs: 8,
      floor: 0n,
    });
    reads.length = 0;
    const second = await reconcileAccount(reader, FUND, recording(), options);
    expect(reads).toEqual([1]);
    expect(second).toMatchObject({ entries: 1, auditedThrough: 8, journalSum: 8n * USD, difference: 0n });
    // A run with nothing new reads nothing and still judges the balance.
    reads.length = 0;
    const third = await reconcileAccount(reader, FUND, recording(), options);
    expect(reads).toEqual([]);
    expect(third).toMatchObject({ entries: 0, difference: 0n, problems: [] });
  });

  it('a run within its budget leaves a backlog (no difference judged) and the next one goes on from it', async () => {
    const { ledger, reader } = await fundWith(5);
    const options = {
      from: 'checkpoint',
      saveCheckpoint: true,
      pageSize: 2,
      maxEntries: 3,
      ...noPause,
    } as const;
    const telemetry = recording();
    const first = await reconcileAccount(reader, FUND, telemetry, options);
    expect(first).toMatchObject({
      entries: 3,
      auditedThrough: 3,
      backlog: 2,
      difference: undefined,
      problems: [],
    });
    expect(telemetry.observed.get(METRICS.LedgerReconcileDifference.name)).toBeUndefined();
    expect(telemetry.observed.get(METRICS.LedgerReconcileBacklog.name)).toEqual([2]);
    expect((await ledger.auditCheckpoint(FUND))?.sequence).toBe(3);
    const second = await reconcileAccount(reader, FUND, telemetry, options);
    expect(second).toMatchObject({ entries: 2, auditedThrough: 5, backlog: 0, difference: 0n });
    expect(telemetry.observed.get(METRICS.LedgerReconcileBacklog.name)).toEqual([2, 0]);
  });

  it('never stores a checkpoint past a problem: every run reports it again', async () => {
    const journal = [
      entry(1, 10n * USD, 0n),
      entry(2, 5n * USD, 10n * USD),
      entry(3, 1n * USD, 99n * USD),
      entry(4, 1n * USD, 16n * USD),
    ];
    const saved: number[] = [];
    const reader: JournalReader = {
      ...journalSnapshot(balanceOf(17n * USD, 4), journal),
      saveAuditCheckpoint: async (_account, audit) => void saved.push(audit.sequence),
    };
    const options = { from: 'checkpoint', saveCheckpoint: true, pageSize: 2, ...noPause } as const;
    const report = await reconcileAccount(reader, FUND, recording(), options);
    expect(report.problems).toEqual([`entry 3: balanceBefore ${99n * USD} != ${15n * USD}`]);
    expect(saved).toEqual([2]);
  });

  it("an index's lag is waited out: the entry the balance counts arrives, with no problem", async () => {
    const { reader } = await fundWith(4);
    let hidden = 3;
    const lagging: JournalReader = {
      ...reader,
      // The newest entry is not in the index for the first three reads (the first read brings 1..3).
      journalAfter: async (account, after, limit) =>
        (await reader.journalAfter(account, after, limit)).filter((e) => e.sequence < 4 || hidden-- <= 0),
    };
    const pauses: number[] = [];
    const report = await reconcileAccount(lagging, FUND, recording(), {
      missingRetriesMs: [5, 10, 20],
      pause: async (ms) => void pauses.push(ms),
    });
    expect(report).toMatchObject({ auditedThrough: 4, difference: 0n, problems: [] });
    expect(pauses).toEqual([5, 10]);
  });

  it('an entry still missing after the waits is a problem, and the difference is not judged on a part', async () => {
    const journal = [entry(1, 10n * USD, 0n), entry(3, 1n * USD, 15n * USD)];
    const telemetry = recording();
    const pauses: number[] = [];
    const report = await reconcileAccount(
      journalSnapshot(balanceOf(16n * USD, 3), journal),
      FUND,
      telemetry,
      {
        missingRetriesMs: [5, 10],
        pause: async (ms) => void pauses.push(ms),
      },
    );
    expect(pauses).toEqual([5, 10]);
    expect(report).toMatchObject({ auditedThrough: 1, difference: undefined, backlog: 2 });
    expect(report.problems).toEqual(['entry 2 missing (the balance is at sequence 3)']);
    expect(telemetry.observed.get(METRICS.LedgerJournalProblems.name)).toEqual([1]);
    expect(telemetry.observed.get(METRICS.LedgerReconcileDifference.name)).toBeUndefined();
  });

  it('a checkpoint ahead of the balance is a problem (the balance went back)', async () => {
    const { ledger, reader } = await fundWith(2);
    await ledger.saveAuditCheckpoint(FUND, { sequence: 5, sum: 15n * USD, minBalance: 0n });
    const report = await reconcileAccount(reader, FUND, recording(), { from: 'checkpoint', ...noPause });
    expect(report.problems).toEqual(['balance at sequence 2 is behind the audited journal (5)']);
  });

  it('a saved run from the start replaces the checkpoint, and the scheduled runs finish its audit (its budget)', async () => {
    const { ledger, reader } = await fundWith(5);
    await reconcileAccount(reader, FUND, recording(), {
      from: 'checkpoint',
      saveCheckpoint: true,
      ...noPause,
    });
    expect((await ledger.auditCheckpoint(FUND))?.sequence).toBe(5);
    const full = await reconcileAccount(reader, FUND, recording(), {
      from: 'start',
      saveCheckpoint: true,
      maxEntries: 2,
      ...noPause,
    });
    expect(full).toMatchObject({ auditedThrough: 2, backlog: 3, difference: undefined });
    expect((await ledger.auditCheckpoint(FUND))?.sequence).toBe(2);
    const next = await reconcileAccount(reader, FUND, recording(), {
      from: 'checkpoint',
      saveCheckpoint: true,
      ...noPause,
    });
    expect(next).toMatchObject({ entries: 3, auditedThrough: 5, difference: 0n, problems: [] });
  });

  it("'start' audits the whole journal again whatever the checkpoint says", async () => {
    const { ledger, reader, reads } = await fundWith(3);
    // A checkpoint that lies about the prefix's sum: trusted from it, the balance looks 94 USD off.
    await ledger.saveAuditCheckpoint(FUND, { sequence: 2, sum: 100n * USD, minBalance: 0n });
    const trusting = await reconcileAccount(reader, FUND, recording(), { from: 'checkpoint', ...noPause });
    expect(trusting.difference).toBe(-97n * USD);
    reads.length = 0;
    const full = await reconcileAccount(reader, FUND, recording(), {
      from: 'start',
      saveCheckpoint: true,
      ...noPause,
    });
    expect(reads).toEqual([3]);
    expect(full).toMatchObject({ entries: 3, difference: 0n, problems: [] });
    expect(await ledger.auditCheckpoint(FUND)).toEqual({ sequence: 3, sum: 6n * USD, minBalance: 0n });
  });
});
