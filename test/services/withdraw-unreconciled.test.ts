import { describe, expect, it } from 'vitest';
import { parseQuote } from '../../shared/domain/units.ts';
import type { Ledger } from '../../shared/ports/index.ts';
import {
  type AdminDeps,
  handleAdmin,
  WITHDRAWAL_AUDIT_MAX_ENTRIES,
  WITHDRAWAL_CHECKS,
} from '../../shared/services/admin.ts';
import { INSURANCE_ACCOUNT } from '../../shared/services/context.ts';
import { reconcileAccount } from '../../shared/services/reconcile.ts';
import { createPipeline, type Pipeline } from '../support/pipeline.ts';
import { adminDepsOf } from '../support/resume.ts';

/**
 * Found by an on-call drill in session 45: a withdrawal from a fund whose balance item no longer matched its
 * journal (written by hand, then liquidations settled) went through; the runbook says to move no money then. A
 * withdrawal is now refused while the balance does not reconcile with the journal, as ledger-reconcile judges it
 * from its checkpoint, and is written on exactly the balance checked (withdraw46-unreconciled). Embedded adapters.
 */

const usd = (v: string) => parseQuote(v, 'amount', { allowNegative: true });

function setup() {
  const p = createPipeline();
  const deps = adminDepsOf(p);
  const run = (request: unknown, d: AdminDeps = deps) => handleAdmin(request, d);
  const withdraw = (amount: string, key: string, d: AdminDeps = deps) =>
    run({ action: 'withdraw', amount, idempotencyKey: key, operator: 'ops' }, d);
  const deposit = (amount: string, key: string) =>
    run({ action: 'deposit', amount, idempotencyKey: key, operator: 'ops' });
  const fund = async () => ({
    balance: await p.adapters.ledger.balance(INSURANCE_ACCOUNT),
    journal: (await p.adapters.ledger.journal(INSURANCE_ACCOUNT)).map((e) => e.idempotencyKey),
  });
  return { p, deps, run, withdraw, deposit, fund };
}

/** A balance item raised `by` outside the journal, as the drill's write by hand. */
async function writeByHand(p: Pipeline, by: string): Promise<void> {
  const { balance } = await p.adapters.ledger.balance(INSURANCE_ACCOUNT);
  p.adapters.ledger.writeBalanceOutsideJournal(INSURANCE_ACCOUNT, { balance: balance + usd(by) });
}

/** Admin dependencies whose ledger runs `between` after a withdrawal's check and before its write, `times` times. */
function racing(p: Pipeline, between: () => Promise<void>, times = 1): AdminDeps {
  const ledger = p.adapters.ledger;
  let done = 0;
  return {
    ...adminDepsOf(p),
    ledger: new Proxy(ledger, {
      get: (target, key) =>
        key === 'apply'
          ? async (...args: Parameters<Ledger['apply']>) => {
              if (args[0].kind === 'withdraw' && done < times) {
                done += 1;
                await between();
              }
              return (ledger as Ledger).apply(...args);
            }
          : Reflect.get(target, key).bind(target),
    }),
  };
}

const RUNBOOK =
  'nothing moved. Withdrawals are refused until it does: do not move money to cover the difference (it would hide it); ' +
  'escalate (docs/DEPLOY.md, "Ledger difference"). Deposits are still taken';

describe('a withdrawal from a fund whose balance does not reconcile with its journal', () => {
  it('is refused once movements followed a balance written by hand (the latest entry chains from it)', async () => {
    const { p, withdraw, deposit, fund } = setup();
    expect(await deposit('100', 'd1')).toMatchObject({ ok: true });
    await writeByHand(p, '10');
    // The drill: the fund moved since (a fee, a deposit): entry 2 chains from the written balance.
    expect(await deposit('5', 'd2')).toMatchObject({ ok: true });
    const before = await fund();
    expect(await withdraw('30', 'w1')).toEqual({
      ok: false,
      reason:
        "admin/fund-not-reconciled: the fund's balance does not reconcile with its journal (balance 115.00 USD at " +
        "entry 2; difference +10.00 USD from the journal's sum; entry 2: balanceBefore 110.00 != 100.00, the sum of " +
        `the entries before it (+10.00)); ${RUNBOOK}`,
    });
    expect(await fund()).toEqual(before);
    // Adding money is never held: a deposit still goes (and the difference stays, for the escalation to find).
    expect(await deposit('50', 'd3')).toMatchObject({ ok: true, entry: { sequence: 3 } });
    expect(await withdraw('30', 'w1')).toMatchObject({ ok: false, reason: /admin\/fund-not-reconciled/ });
  });

  it('is refused on a balance written by hand with nothing moved since, by the difference', async () => {
    const { p, withdraw, deposit, fund } = setup();
    await deposit('100', 'd1');
    await writeByHand(p, '-0.01');
    const before = await fund();
    expect(await withdraw('1', 'w1')).toEqual({
      ok: false,
      reason:
        "admin/fund-not-reconciled: the fund's balance does not reconcile with its journal (balance 99.99 USD at " +
        `entry 1; difference -0.01 USD from the journal's sum); ${RUNBOOK}`,
    });
    expect(await fund()).toEqual(before);
  });

  it('is refused on a balance item set back behind its journal (a restore of that item alone)', async () => {
    const { p, withdraw, deposit, fund } = setup();
    await deposit('100', 'd1');
    await deposit('20', 'd2');
    // The item as it stood after entry 1: entry 2 is past it, a movement no balance counts.
    p.adapters.ledger.writeBalanceOutsideJournal(INSURANCE_ACCOUNT, { balance: usd('100'), sequence: 1 });
    const before = await fund();
    expect(await withdraw('1', 'w1')).toMatchObject({
      ok: false,
      reason: expect.stringContaining("entry 2 is past the balance's sequence 1"),
    });
    expect(await fund()).toEqual(before);
  });

  // final46-renumbered-journal: the embedded ledger listed entries by their place, entry n at n - 1; after a set-back
  // the check read the original entries 3 to 5 and not their namesakes, found the sum equal, and let this one go.
  it('is refused on a balance item set back two entries, as much moved since as the entries it left out', async () => {
    const { p, withdraw, deposit, fund } = setup();
    for (let i = 1; i <= 5; i++) await deposit('10', `d${i}`);
    p.adapters.ledger.writeBalanceOutsideJournal(INSURANCE_ACCOUNT, { balance: usd('20'), sequence: 2 });
    for (let i = 6; i <= 8; i++) await deposit('10', `d${i}`);
    const before = await fund();
    expect(await withdraw('1', 'w1')).toMatchObject({
      ok: false,
      reason: expect.stringContaining('entry 3 appears twice'),
    });
    expect(await fund()).toEqual(before);
  });

  it('goes through on a fund that reconciles, and the journal still does', async () => {
    const { p, withdraw, deposit, fund } = setup();
    await deposit('100', 'd1');
    expect(await withdraw('30', 'w1')).toMatchObject({
      ok: true,
      entry: { sequence: 2, balanceAfter: usd('70') },
    });
    expect((await fund()).balance.balance).toBe(usd('70'));
    const report = await reconcileAccount(p.adapters.ledger, INSURANCE_ACCOUNT, p.telemetry);
    expect([report.difference, report.problems]).toEqual([0n, []]);
  });

  // books51-kind-not-charted: ledger-reconcile pages for them; the money they moved chains and sums.
  it("goes through with entries the fund's chart of accounts refuses in the journal, which refuse nothing", async () => {
    const { p, withdraw, deposit } = setup();
    await deposit('100', 'd1');
    const byHand = (idempotencyKey: string, kind: string, amount: string) =>
      p.adapters.ledger.writeEntryByHand({
        account: INSURANCE_ACCOUNT,
        idempotencyKey,
        kind,
        amount: usd(amount),
        reference: 'by-hand',
        atMs: 1,
      });
    byHand('fee-by-hand', 'fee', '5');
    byHand('admin:minus', 'deposit', '-1');
    expect(await withdraw('30', 'w1')).toMatchObject({
      ok: true,
      entry: { sequence: 4, balanceAfter: usd('74') },
    });
    const report = await reconcileAccount(p.adapters.ledger, INSURANCE_ACCOUNT, p.telemetry);
    expect(report).toMatchObject({
      difference: 0n,
      problemCount: 2,
      chartProblems: 2,
      verdict: { reconciled: true },
    });
  });

  it('answers its key applied before as applied, moving nothing, though the fund stopped reconciling since', async () => {
    // The operator runs a withdrawal again with its key (the first run's answer was lost): it moved once.
    const { p, withdraw, deposit, fund } = setup();
    await deposit('100', 'd1');
    expect(await withdraw('30', 'w1')).toMatchObject({ ok: true });
    await writeByHand(p, '10');
    const before = await fund();
    expect(await withdraw('30', 'w1')).toMatchObject({
      ok: true,
      alreadyApplied: true,
      entry: { sequence: 2 },
    });
    // Another amount under it is the key reused, as before.
    expect(await withdraw('31', 'w1')).toMatchObject({ ok: false, reason: /admin\/idempotency-key-reused/ });
    expect(await fund()).toEqual(before);
  });

  it('reads only the journal past the checkpoint, and is not judged past its budget', async () => {
    const { p, withdraw, fund } = setup();
    const ledger = p.adapters.ledger;
    const deposit = (n: number) =>
      ledger.apply({
        account: INSURANCE_ACCOUNT,
        idempotencyKey: `fee-${n}`,
        amount: usd('1'),
        kind: 'liquidation-fee',
        reference: `p${n}`,
        atMs: n,
        floor: 0n,
      });
    for (let n = 1; n <= WITHDRAWAL_AUDIT_MAX_ENTRIES + 1; n++) await deposit(n);
    // No checkpoint (ledger-reconcile never ran, or stopped): more than a withdrawal reads.
    const before = await fund();
    expect(await withdraw('1', 'w1')).toEqual({
      ok: false,
      reason:
        "admin/fund-not-audited: the fund's journal is audited through entry 0 (ledger-reconcile has stored no " +
        "checkpoint), 20,001 entries short of its balance's entry 20001: more than the 20,000 entries a withdrawal " +
        'reads, so the fund is not judged; nothing moved. ledger-reconcile is behind or stopped, or the fund moved ' +
        'that much since its last run (a burst of settlements): run ledger-reconcile until its backlog is 0 ' +
        '(docs/DEPLOY.md, "Reconcile behind"), then withdraw again; deposits are still taken',
    });
    expect(await fund()).toEqual(before);
    // The scheduled run's checkpoint: the next withdrawal reads what was written since, and goes.
    await reconcileAccount(ledger, INSURANCE_ACCOUNT, p.telemetry, {
      from: 'checkpoint',
      saveCheckpoint: true,
    });
    for (let n = WITHDRAWAL_AUDIT_MAX_ENTRIES + 2; n <= WITHDRAWAL_AUDIT_MAX_ENTRIES + 4; n++)
      await deposit(n);
    const read: number[] = [];
    const counting = new Proxy(ledger, {
      get: (target, key) =>
        key === 'journalAfter'
          ? async (...args: Parameters<Ledger['journalAfter']>) => {
              const page = await ledger.journalAfter(...args);
              read.push(...page.map((e) => e.sequence));
              return page;
            }
          : Reflect.get(target, key).bind(target),
    });
    expect(await withdraw('1', 'w1', { ...adminDepsOf(p), ledger: counting })).toMatchObject({ ok: true });
    // The checkpoint's entry again (a page overlaps the audited prefix by one), the 3 since, then the balance's own
    // entry once more (a second copy of it?) and nothing past it: never the 20,001 audited before.
    expect(read).toEqual([20001, 20002, 20003, 20004, 20004]);
  });

  // review46-not-audited: the refusal counted only what was left past the 20,000 entries it read ("audited 3 entries
  // short ... more than a withdrawal reads"), not how far ledger-reconcile's checkpoint is behind, its backlog's count.
  it('says how far behind the balance the checkpoint is, as the reconcile counts its backlog', async () => {
    const { p, withdraw } = setup();
    const ledger = p.adapters.ledger;
    const fee = (n: number) =>
      ledger.apply({
        account: INSURANCE_ACCOUNT,
        idempotencyKey: `fee-${n}`,
        amount: usd('1'),
        kind: 'liquidation-fee',
        reference: `p${n}`,
        atMs: n,
        floor: 0n,
      });
    for (let n = 1; n <= 5; n++) await fee(n);
    await reconcileAccount(ledger, INSURANCE_ACCOUNT, p.telemetry, {
      from: 'checkpoint',
      saveCheckpoint: true,
    });
    // A burst of settlements since the scheduled run: more than a withdrawal reads.
    for (let n = 6; n <= WITHDRAWAL_AUDIT_MAX_ENTRIES + 8; n++) await fee(n);
    const refused = await withdraw('1', 'w1');
    expect(refused).toMatchObject({
      ok: false,
      reason: expect.stringContaining(
        "admin/fund-not-audited: the fund's journal is audited through entry 5 (ledger-reconcile's checkpoint), " +
          "20,003 entries short of its balance's entry 20008: more than the 20,000 entries a withdrawal reads",
      ),
    });
    // As the operator is told: ledger-reconcile until its backlog is 0, then the withdrawal goes.
    const run = await reconcileAccount(ledger, INSURANCE_ACCOUNT, p.telemetry, {
      from: 'checkpoint',
      saveCheckpoint: true,
    });
    expect([run.entries, run.backlog]).toEqual([20_003, 0]);
    expect(await withdraw('1', 'w1')).toMatchObject({ ok: true, entry: { sequence: 20_009 } });
  });
});

// withdraw46-not-indexed: on a stack deployed before session 27 that never ran `backstop fund index-journal`, the
// entries written before the journal's index by sequence are not in it; the check reads through that index and
// refused with "entry 1 missing ... escalate", where the fix is that command.
describe('a withdrawal from a fund whose journal its index by sequence does not wholly list', () => {
  /** Admin dependencies whose check reads the index again at once (its waits for the index's lag are real time). */
  const noWait = (p: Pipeline, ledger: Ledger = p.adapters.ledger): AdminDeps => ({
    ...adminDepsOf(p),
    ledger,
    pause: async () => {},
  });
  const INDEX_JOURNAL =
    'They were written before the index existed (a stack deployed before session 27) or by the previous version ' +
    'during a deploy: run `backstop fund index-journal` (a re-run changes nothing; docs/DEPLOY.md, "Journal not ' +
    'indexed"), then withdraw again; deposits are still taken';

  it('says to run index-journal, not to escalate, and goes once the journal is indexed', async () => {
    const { p, withdraw, deposit, fund } = setup();
    for (const key of ['d1', 'd2', 'd3']) await deposit('100', key);
    // As an earlier version wrote them; the one since (entry 4) is in the index.
    p.adapters.ledger.leaveOutOfJournalIndex(INSURANCE_ACCOUNT, [1, 2, 3]);
    await deposit('5', 'd4');
    const before = await fund();
    expect(await withdraw('30', 'w1', noWait(p))).toEqual({
      ok: false,
      reason:
        "admin/fund-not-indexed: the fund's journal holds entries its index by sequence does not list (3 of its 4 " +
        "entries, from entry 1), so a withdrawal's check, which reads the journal through that index, found entry 1 " +
        `missing and cannot judge the fund; nothing moved. ${INDEX_JOURNAL}`,
    });
    expect(await fund()).toEqual(before);
    expect(p.adapters.ledger.indexJournal(INSURANCE_ACCOUNT)).toEqual({ entries: 4, indexed: 3 });
    // Indexed, the journal is judged and reconciles; a withdrawal that goes never looks at the journal itself.
    let looks = 0;
    const ledger = p.adapters.ledger;
    const counting = new Proxy(ledger, {
      get: (target, key) =>
        key === 'unindexedEntries'
          ? (...args: Parameters<Ledger['unindexedEntries']>) => {
              looks += 1;
              return ledger.unindexedEntries(...args);
            }
          : Reflect.get(target, key).bind(target),
    });
    expect(await withdraw('30', 'w1', noWait(p, counting))).toMatchObject({
      ok: true,
      entry: { sequence: 5, balanceAfter: usd('275') },
    });
    expect(looks).toBe(0);
  });

  it('says so too with no entry in the index at all (nothing moved since the upgrade)', async () => {
    const { p, withdraw, deposit } = setup();
    await deposit('100', 'd1');
    await deposit('20', 'd2');
    p.adapters.ledger.leaveOutOfJournalIndex(INSURANCE_ACCOUNT, [1, 2]);
    expect(await withdraw('30', 'w1', noWait(p))).toEqual({
      ok: false,
      reason:
        "admin/fund-not-indexed: the fund's journal holds entries its index by sequence does not list (2 of its 2 " +
        "entries, from entry 1), so a withdrawal's check, which reads the journal through that index, found entry 1 " +
        `missing and cannot judge the fund; nothing moved. ${INDEX_JOURNAL}`,
    });
  });

  it('still refuses an entry missing from the journal itself as a break, and says the index is not the cause', async () => {
    const { p, withdraw, deposit, fund } = setup();
    for (const key of ['d1', 'd2', 'd3']) await deposit('100', key);
    // Entry 2 lost (a restore of the table without it): neither the index nor the journal has it.
    const ledger = p.adapters.ledger;
    const lost = new Proxy(ledger, {
      get: (target, key) =>
        key === 'journalAfter'
          ? async (...args: Parameters<Ledger['journalAfter']>) =>
              (await ledger.journalAfter(...args)).filter((e) => e.sequence !== 2)
          : Reflect.get(target, key).bind(target),
    });
    const before = await fund();
    expect(await withdraw('30', 'w1', noWait(p, lost))).toEqual({
      ok: false,
      reason:
        "admin/fund-not-reconciled: the fund's balance does not reconcile with its journal (balance 300.00 USD at " +
        "entry 3; entry 2 missing (the balance is at sequence 3); each of the journal's 3 entries is in its index by " +
        `sequence: the missing entry is not one left out of it); ${RUNBOOK}`,
    });
    expect(await fund()).toEqual(before);
  });

  it('names index-journal as a first step when its look for entries left out of the index did not read to the end', async () => {
    const { p, withdraw, deposit } = setup();
    for (const key of ['d1', 'd2']) await deposit('100', key);
    const ledger = p.adapters.ledger;
    // A journal longer than the look reads, none of the part read left out of the index.
    const long = new Proxy(ledger, {
      get: (target, key) =>
        key === 'journalAfter'
          ? async (...args: Parameters<Ledger['journalAfter']>) =>
              (await ledger.journalAfter(...args)).filter((e) => e.sequence !== 1)
          : key === 'unindexedEntries'
            ? async () => ({ read: WITHDRAWAL_AUDIT_MAX_ENTRIES, found: 0, complete: false })
            : Reflect.get(target, key).bind(target),
    });
    expect(await withdraw('30', 'w1', noWait(p, long))).toMatchObject({
      ok: false,
      reason: expect.stringContaining(
        'entry 1 missing (the balance is at sequence 2); none of the first 20,000 entries of the journal is left out ' +
          'of its index by sequence; on a stack deployed before session 27, run `backstop fund index-journal` first ' +
          '(a re-run changes nothing)); nothing moved. Withdrawals are refused until it does',
      ),
    });
  });

  // review46-look-agrees: the embedded ledger's look read every entry up to maxRead, by sequence; the AWS ledger's reads
  // them by key, 1,000 a Query, and stops after the first that finds one (test/contract/suite.ts holds both to the key
  // order; a journal of more than a page is too long for moto's contract run).
  it('the embedded look reads a page of 1,000 by key at a time, and stops after the first that finds one', async () => {
    const { p, deposit } = setup();
    // Keys d0000 .. d1499: entry n is d(n - 1), so key order is sequence order here.
    for (let i = 0; i < 1_500; i++) await deposit('1', `d${String(i).padStart(4, '0')}`);
    const ledger = p.adapters.ledger;
    ledger.leaveOutOfJournalIndex(INSURANCE_ACCOUNT, [1_200]);
    expect(await ledger.unindexedEntries(INSURANCE_ACCOUNT, 20_000)).toEqual({
      read: 1_500,
      found: 1,
      lowest: 1_200,
      complete: true,
    });
    ledger.leaveOutOfJournalIndex(INSURANCE_ACCOUNT, [700, 900]);
    expect(await ledger.unindexedEntries(INSURANCE_ACCOUNT, 20_000)).toEqual({
      read: 1_000,
      found: 2,
      lowest: 700,
      complete: false,
    });
    expect(await ledger.unindexedEntries(INSURANCE_ACCOUNT, 800)).toEqual({
      read: 800,
      found: 1,
      lowest: 700,
      complete: false,
    });
  });
});

describe('a withdrawal racing a change of the balance between its check and its write', () => {
  it('does not slip through when the balance is written by hand in between', async () => {
    const { p, withdraw, deposit, fund } = setup();
    await deposit('100', 'd1');
    const deps = racing(p, () => writeByHand(p, '10'));
    const result = await withdraw('30', 'w1', deps);
    expect(result).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/^admin\/fund-not-reconciled: .*difference \+10\.00 USD/),
    });
    expect(await fund()).toMatchObject({
      balance: { balance: usd('110'), sequence: 1 },
      journal: ['admin:d1'],
    });
  });

  it('checks again on what moved in between (a fee), and moves once on the balance it checked', async () => {
    const { p, withdraw, deposit, fund } = setup();
    await deposit('100', 'd1');
    const fee = () =>
      p.adapters.ledger
        .apply({
          account: INSURANCE_ACCOUNT,
          idempotencyKey: 'p1:0:fee',
          amount: usd('5'),
          kind: 'liquidation-fee',
          reference: 'p1:0',
          atMs: 1,
          floor: 0n,
        })
        .then(() => {});
    expect(await withdraw('30', 'w1', racing(p, fee))).toMatchObject({
      ok: true,
      entry: { sequence: 3, balanceBefore: usd('105'), balanceAfter: usd('75') },
    });
    expect(await fund()).toMatchObject({
      balance: { balance: usd('75') },
      journal: ['admin:d1', 'p1:0:fee', 'admin:w1'],
    });
    const report = await reconcileAccount(p.adapters.ledger, INSURANCE_ACCOUNT, p.telemetry);
    expect([report.difference, report.problems]).toEqual([0n, []]);
  });

  // review48-statement-withdraw-stamp: stamped before its checks, a withdrawal committed minutes after its stamp, and
  // a statement closing a quiet period by time (SETTLED_AFTER_MS) could miss it.
  it('is stamped at its write, not before its checks, however long they take', async () => {
    const { p, withdraw, deposit } = setup();
    await deposit('100', 'd1');
    // Each read of the journal by the check takes 4 minutes of the clock (a slow journal, a laptop's network).
    const slow: AdminDeps = {
      ...adminDepsOf(p),
      ledger: new Proxy(p.adapters.ledger, {
        get: (target, key) => {
          const method = Reflect.get(target, key);
          if (key !== 'journalAfter') return typeof method === 'function' ? method.bind(target) : method;
          return async (...args: Parameters<Ledger['journalAfter']>) => {
            p.clock.advance(4 * 60_000);
            return target.journalAfter(...args);
          };
        },
      }),
    };
    const asked = p.clock.nowMs();
    const result = await withdraw('30', 'w1', slow);
    expect(p.clock.nowMs()).toBeGreaterThan(asked);
    expect(result).toMatchObject({ ok: true, entry: { kind: 'withdraw', atMs: p.clock.nowMs() } });
  });

  it('gives up, moving nothing, when every check is outraced (the fund moving all the while)', async () => {
    const { p, withdraw, deposit, fund } = setup();
    await deposit('100', 'd1');
    let fees = 0;
    const fee = async () => {
      fees += 1;
      await p.adapters.ledger.apply({
        account: INSURANCE_ACCOUNT,
        idempotencyKey: `p${fees}:0:fee`,
        amount: usd('1'),
        kind: 'liquidation-fee',
        reference: `p${fees}:0`,
        atMs: fees,
        floor: 0n,
      });
    };
    expect(await withdraw('30', 'w1', racing(p, fee, WITHDRAWAL_CHECKS))).toEqual({
      ok: false,
      reason: `admin/fund-busy: the fund moved between its journal's check and the withdrawal ${WITHDRAWAL_CHECKS} times in a row; nothing moved: run it again with the same key`,
    });
    expect(await fund()).toMatchObject({ balance: { balance: usd('110') } });
    expect((await fund()).journal).not.toContain('admin:w1');
    // Once the fund is quiet for a moment, the same key goes.
    expect(await withdraw('30', 'w1')).toMatchObject({ ok: true, entry: { balanceAfter: usd('80') } });
  });

  it("leaves the services' own movements and deposits as they were: no check, no condition", async () => {
    const { p, deposit } = setup();
    await deposit('100', 'd1');
    await writeByHand(p, '10');
    // A shortfall payout and a fee on the unreconciled fund: the waterfall must not wait for the escalation.
    const entry = await p.adapters.ledger.apply({
      account: INSURANCE_ACCOUNT,
      idempotencyKey: 'p1:0:payout',
      amount: usd('-20'),
      kind: 'shortfall-payout',
      reference: 'p1:0',
      atMs: 1,
      floor: 0n,
    });
    expect(entry).toMatchObject({ balanceBefore: usd('110'), balanceAfter: usd('90') });
  });
});
