import { describe, expect, it } from 'vitest';
import { EmbeddedLedger } from '../../shared/adapters/embedded/ledger.ts';
import { parseQuote } from '../../shared/domain/units.ts';
import { fundStatus, LAST_ENTRIES } from '../../shared/local/status.ts';
import { type Ledger, silentTelemetry } from '../../shared/ports/index.ts';
import { WITHDRAWAL_AUDIT_MAX_ENTRIES, withdrawalRefusal } from '../../shared/services/admin.ts';
import { INSURANCE_ACCOUNT } from '../../shared/services/context.ts';
import { reconcileAccount } from '../../shared/services/reconcile.ts';

/**
 * status46-journal-bounded: `backstop status` read the fund's whole journal on every read (`--watch`: every 2 s). It
 * now judges the fund as a withdrawal does, from ledger-reconcile's checkpoint, and reads the last entries it shows
 * newest first. Embedded ledger; the moto run with the real SDK is test/integration/status-journal-bounded.test.ts.
 */

const usd = (v: string) => parseQuote(v, 'amount', { allowNegative: true });

/** The ledger, and how many entries its reads returned (the whole journal counted as such). */
function counted(ledger: EmbeddedLedger) {
  const read = { entries: 0, wholeJournal: 0 };
  const proxy = new Proxy(ledger, {
    get: (target, key) => {
      const method = Reflect.get(target, key);
      if (typeof method !== 'function') return method;
      if (!['journal', 'journalAfter', 'latestEntries', 'entriesOf'].includes(String(key)))
        return method.bind(target);
      return async (...args: unknown[]) => {
        const entries = (await method.apply(target, args)) as readonly unknown[];
        read.entries += entries.length;
        if (key === 'journal') read.wholeJournal += 1;
        return entries;
      };
    },
  }) as Ledger;
  return { ledger: proxy, read };
}

const fee = (ledger: Ledger, n: number, amount = '1', floor = 0n) =>
  ledger.apply({
    account: INSURANCE_ACCOUNT,
    idempotencyKey: `fee-${n}`,
    amount: usd(amount),
    kind: amount.startsWith('-') ? 'shortfall-payout' : 'liquidation-fee',
    reference: `p${n}`,
    atMs: n,
    floor,
  });

describe('the fund in backstop status, on a long journal (embedded ledger)', () => {
  it('reads past the checkpoint and the last few entries, and finds a break and a difference past it', async () => {
    const embedded = new EmbeddedLedger();
    const long = 5_000;
    for (let n = 1; n <= long; n++) await fee(embedded, n);
    await reconcileAccount(embedded, INSURANCE_ACCOUNT, silentTelemetry, {
      from: 'checkpoint',
      saveCheckpoint: true,
    });
    await fee(embedded, long + 1);
    embedded.writeBalanceOutsideJournal(INSURANCE_ACCOUNT, { balance: usd(String(long + 1 + 10)) });
    await fee(embedded, long + 2);
    const { ledger, read } = counted(embedded);
    const { fund, check } = await fundStatus(ledger, 0);
    // Before: the whole journal, 5,002 entries; now the 2 past the checkpoint, its entry and the balance's read
    // again, and the last LAST_ENTRIES.
    expect(read).toEqual({ entries: 3 + 1 + LAST_ENTRIES, wholeJournal: 0 });
    expect(fund).toMatchObject({
      balance: String(long + 2 + 10),
      sequence: long + 2,
      reconciled: false,
      verdict: 'unreconciled',
      difference: '10',
      problems: [
        `entry ${long + 2}: balanceBefore 5,011.00 != 5,001.00, the sum of the entries before it (+10.00)`,
      ],
      audit: { checkpoint: long, read: 2, through: long + 2 },
      minBalance: '0',
    });
    expect(fund.lastEntries.map((e) => e.sequence)).toEqual([4_998, 4_999, 5_000, 5_001, 5_002]);
    expect(withdrawalRefusal(check, 'USD')?.code).toBe('admin/fund-not-reconciled');
  });

  // books52-status-chart: status said nothing of the entries the chart of accounts refuses.
  it("says the entries the fund's chart refuses from the checkpoint's count and those past it, reading no more", async () => {
    const embedded = new EmbeddedLedger();
    const long = 2_000;
    for (let n = 1; n <= long; n++) await fee(embedded, n);
    const byHand = (idempotencyKey: string, kind: string, amount: string) =>
      embedded.writeEntryByHand({
        account: INSURANCE_ACCOUNT,
        idempotencyKey,
        kind,
        amount: usd(amount),
        reference: 'x',
        atMs: 1,
      });
    byHand('x:fee:r1', 'liquidation-fee', '-1');
    byHand('x:7', 'rebate', '1');
    await reconcileAccount(embedded, INSURANCE_ACCOUNT, silentTelemetry, {
      from: 'checkpoint',
      saveCheckpoint: true,
    });
    byHand('admin:w', 'withdraw', '2');
    const { ledger, read } = counted(embedded);
    const { fund } = await fundStatus(ledger, 0);
    // The checkpoint's two and the one past it: as any status reads (the entry past the checkpoint, its entry and the
    // balance's read again, the last few), none of the journal before the checkpoint and nothing for the count.
    expect(read).toEqual({ entries: 1 + 2 + LAST_ENTRIES, wholeJournal: 0 });
    expect(fund).toMatchObject({
      reconciled: true,
      audit: { checkpoint: long + 2, read: 1, through: long + 3 },
      chartRefused: { count: 3, firstSequence: long + 1, lastSequence: long + 3, countedAfter: 0 },
    });
    // None: null.
    const clean = new EmbeddedLedger();
    await fee(clean, 1);
    expect((await fundStatus(clean, 0)).fund.chartRefused).toBeNull();
  });

  it('keeps the lowest balance past the checkpoint: the checkpoint carries it for the entries before', async () => {
    const embedded = new EmbeddedLedger();
    for (let n = 1; n <= 50; n++) await fee(embedded, n);
    await reconcileAccount(embedded, INSURANCE_ACCOUNT, silentTelemetry, {
      from: 'checkpoint',
      saveCheckpoint: true,
    });
    // A payout past the checkpoint that took the fund below zero (a floor below zero: a configuration's bug).
    await fee(embedded, 51, '-60', usd('-100'));
    await fee(embedded, 52);
    const { ledger, read } = counted(embedded);
    const { fund } = await fundStatus(ledger, 0);
    expect(read.wholeJournal).toBe(0);
    expect(fund).toMatchObject({
      reconciled: false,
      verdict: 'unreconciled',
      difference: '0',
      minBalance: '-10',
      problems: ['entry 51: balance -10.00 below zero'],
      audit: { checkpoint: 50, read: 2, through: 52 },
    });
  });

  it('with no checkpoint stored, reads from the first entry, 20,000 at most, and says the rest is not judged', async () => {
    const embedded = new EmbeddedLedger();
    const total = WITHDRAWAL_AUDIT_MAX_ENTRIES + 8;
    for (let n = 1; n <= total; n++) await fee(embedded, n);
    const { ledger, read } = counted(embedded);
    const { fund, check } = await fundStatus(ledger, 0);
    // 20 pages of 1,000, each after the first reading the previous page's last entry again (19), and the last few.
    expect(read).toEqual({ entries: WITHDRAWAL_AUDIT_MAX_ENTRIES + 19 + LAST_ENTRIES, wholeJournal: 0 });
    expect(fund).toMatchObject({
      sequence: total,
      reconciled: false,
      verdict: 'not-audited',
      difference: 'not judged',
      problems: [],
      audit: { checkpoint: null, read: WITHDRAWAL_AUDIT_MAX_ENTRIES, through: WITHDRAWAL_AUDIT_MAX_ENTRIES },
    });
    expect(fund.lastEntries.map((e) => e.sequence)).toEqual([20_004, 20_005, 20_006, 20_007, 20_008]);
    expect(withdrawalRefusal(check, 'USD')?.reason).toContain(
      "the fund's journal is audited through entry 0 (ledger-reconcile has stored no checkpoint), 20,008 entries short",
    );
  });
});
