import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type AuditedEntry,
  EMPTY_AUDIT,
  entriesWord,
  extendAudit,
  judgeReconciliation,
  missingEntryProblem,
} from '../../shared/domain/journal-audit.ts';

/**
 * What a withdrawal is judged on (withdraw46-unreconciled): the balance item against the journal's audited prefix,
 * as ledger-reconcile judges it. Pure.
 */

const USD = 1_000_000n;

/** A journal chained from 0 by `amounts`, as the ledger writes it. */
function chained(amounts: readonly bigint[]): AuditedEntry[] {
  let balance = 0n;
  return amounts.map((amount, i) => {
    const entry = { sequence: i + 1, amount, balanceBefore: balance, balanceAfter: balance + amount };
    balance += amount;
    return entry;
  });
}

describe('judgeReconciliation', () => {
  it('an empty fund with no journal reconciles', () => {
    expect(judgeReconciliation({ balance: 0n, sequence: 0, audit: EMPTY_AUDIT, problems: [] })).toEqual({
      reconciled: true,
    });
  });

  it('reconciles when audited up to the balance, with no problem and the balance at the sum', () => {
    const audit = { sequence: 3, sum: 60n * USD, minBalance: 0n };
    expect(judgeReconciliation({ balance: 60n * USD, sequence: 3, audit, problems: [] })).toEqual({
      reconciled: true,
    });
  });

  it('a balance off the sum is a difference (balance - sum), signed', () => {
    const audit = { sequence: 3, sum: 60n * USD, minBalance: 0n };
    expect(judgeReconciliation({ balance: 70n * USD, sequence: 3, audit, problems: [] })).toEqual({
      reconciled: false,
      reason: 'unreconciled',
      difference: 10n * USD,
      problems: [],
    });
    expect(judgeReconciliation({ balance: 59n * USD, sequence: 3, audit, problems: [] })).toMatchObject({
      difference: -1n * USD,
    });
  });

  it('any problem refuses, with the difference when judged, and before a prefix short of the balance', () => {
    const audit = { sequence: 3, sum: 60n * USD, minBalance: 0n };
    const problems = ['entry 2: balanceBefore 110.00 != 100.00, the sum of the entries before it (+10.00)'];
    expect(judgeReconciliation({ balance: 70n * USD, sequence: 3, audit, problems })).toEqual({
      reconciled: false,
      reason: 'unreconciled',
      difference: 10n * USD,
      problems,
    });
    // The balance equal to the sum does not hide a broken chain (the drill's write, then a movement).
    expect(judgeReconciliation({ balance: 60n * USD, sequence: 3, audit, problems })).toStrictEqual({
      reconciled: false,
      reason: 'unreconciled',
      problems,
    });
    // A problem found in the part read is a refusal, however much is left unread.
    expect(judgeReconciliation({ balance: 70n * USD, sequence: 9, audit, problems })).toStrictEqual({
      reconciled: false,
      reason: 'unreconciled',
      problems,
    });
  });

  it('a prefix short of the balance is not judged: not a yes', () => {
    const audit = { sequence: 3, sum: 60n * USD, minBalance: 0n };
    expect(judgeReconciliation({ balance: 60n * USD, sequence: 20_003, audit, problems: [] })).toEqual({
      reconciled: false,
      reason: 'not-audited',
      behind: 20_000,
    });
  });

  // withdraw46-not-indexed: a table deployed before the journal's index by sequence (session 27) and never indexed
  // reads through that index as "entry 1 missing", which is not a break.
  it('a journal whose index lacks entries is not judged: not a yes, and not a break, whatever the index made of it', () => {
    const audit = { sequence: 0, sum: 0n, minBalance: 0n };
    const problems = ['entry 1 missing (the balance is at sequence 5)'];
    expect(judgeReconciliation({ balance: 60n * USD, sequence: 5, audit, problems, unindexed: 1 })).toEqual({
      reconciled: false,
      reason: 'not-indexed',
      lowest: 1,
    });
    // Without it the same audit is a break.
    expect(judgeReconciliation({ balance: 60n * USD, sequence: 5, audit, problems })).toMatchObject({
      reason: 'unreconciled',
    });
  });

  it('a balance behind the audited journal (an item set back) does not reconcile', () => {
    const audit = { sequence: 5, sum: 60n * USD, minBalance: 0n };
    expect(judgeReconciliation({ balance: 60n * USD, sequence: 4, audit, problems: [] })).toEqual({
      reconciled: false,
      reason: 'unreconciled',
      problems: ['balance at sequence 4 is behind the audited journal (5)'],
    });
  });

  it('on any journal the ledger writes: reconciled at its sum, refused at any other balance', () => {
    fc.assert(
      fc.property(
        fc.array(fc.bigInt({ min: -1_000n * USD, max: 1_000n * USD }), { minLength: 1, maxLength: 40 }),
        fc.bigInt({ min: -5n * USD, max: 5n * USD }).filter((d) => d !== 0n),
        (amounts, off) => {
          const journal = chained(amounts);
          const { audit, problems } = extendAudit(EMPTY_AUDIT, journal, journal.length);
          // Only the chain and the sum matter here (a journal below zero is extendAudit's own problem).
          const chainProblems = problems.filter((p) => !p.endsWith('below zero'));
          const last = journal.at(-1)!;
          const at = { sequence: last.sequence, audit, problems: chainProblems };
          expect(judgeReconciliation({ ...at, balance: last.balanceAfter })).toEqual({ reconciled: true });
          expect(judgeReconciliation({ ...at, balance: last.balanceAfter + off })).toEqual({
            reconciled: false,
            reason: 'unreconciled',
            difference: off,
            problems: [],
          });
        },
      ),
    );
  });

  it('a balance written by hand before the last movement: the last entry agrees, the chain does not', () => {
    // 100 deposited, the item raised 10 by hand, then 5 more: entry 2 chains from 110 and ends at the balance, 115.
    const journal: AuditedEntry[] = [
      { sequence: 1, amount: 100n * USD, balanceBefore: 0n, balanceAfter: 100n * USD },
      { sequence: 2, amount: 5n * USD, balanceBefore: 110n * USD, balanceAfter: 115n * USD },
    ];
    const { audit, problems } = extendAudit(EMPTY_AUDIT, journal, 2);
    expect(judgeReconciliation({ balance: 115n * USD, sequence: 2, audit, problems })).toEqual({
      reconciled: false,
      reason: 'unreconciled',
      difference: 10n * USD,
      problems: ['entry 2: balanceBefore 110.00 != 100.00, the sum of the entries before it (+10.00)'],
    });
  });
});

// Each problem extendAudit reports, at its edge (session 49's mutation testing found them untested here).
describe('extendAudit', () => {
  it('a fund emptied to exactly 0 is no problem', () => {
    const { audit, problems } = extendAudit(EMPTY_AUDIT, chained([100n * USD, -100n * USD]), 2);
    expect(problems).toEqual([]);
    expect(audit).toEqual({ sequence: 2, sum: 0n, minBalance: 0n });
  });

  it('one unit below zero is reported, once', () => {
    const { audit, problems } = extendAudit(EMPTY_AUDIT, chained([100n * USD, -100n * USD - 1n, -1n]), 3);
    expect(problems).toEqual(['entry 2: balance -0.000001 below zero']);
    expect(audit).toEqual({ sequence: 3, sum: -2n, minBalance: -2n });
  });

  it('an entry whose balanceAfter is not balanceBefore + amount', () => {
    const [first, second] = chained([100n * USD, 5n * USD]);
    const { problems } = extendAudit(EMPTY_AUDIT, [first!, { ...second!, balanceAfter: 106n * USD }], 2);
    expect(problems).toEqual(['entry 2: balanceAfter != balanceBefore + amount']);
  });

  it('a second entry of one sequence', () => {
    const [first, second] = chained([100n * USD, 5n * USD]);
    const { audit, problems } = extendAudit(EMPTY_AUDIT, [first!, second!, { ...second! }], 2);
    expect(problems).toEqual(['entry 2 appears twice']);
    expect(audit.sum).toBe(105n * USD);
  });

  // Found by mutation testing (npm run mutate, session 49): how a page of entries is read.
  it("reads a page in sequence order, from the prefix's last entry to `through`, and stops at a missing one", () => {
    const journal = chained([10n * USD, 20n * USD, 30n * USD, 40n * USD]);
    const [e1, e2, e3, e4] = journal;
    // Out of order; the 4th past `through`.
    expect(extendAudit(EMPTY_AUDIT, [e4!, e3!, e1!, e2!], 3)).toEqual({
      audit: { sequence: 3, sum: 60n * USD, minBalance: 0n },
      problems: [],
    });
    // A page from the start, over a prefix audited to 2: entry 1 is ignored, entry 2 read again is no problem.
    const prefix = extendAudit(EMPTY_AUDIT, [e1!, e2!], 2).audit;
    expect(extendAudit(prefix, journal, 4)).toEqual({
      audit: { sequence: 4, sum: 100n * USD, minBalance: 0n },
      problems: [],
    });
    // A second entry 2 on a page that begins at the prefix's last entry.
    expect(extendAudit(prefix, [e2!, { ...e2! }, e3!], 3).problems).toEqual(['entry 2 appears twice']);
    // Entry 3 missing: the audit stops at 2.
    expect(extendAudit(EMPTY_AUDIT, [e1!, e2!, e4!], 4).audit.sequence).toBe(2);
  });

  it("says by how much, signed, an entry's balanceBefore is off the sum before it", () => {
    const [first, second] = chained([10n * USD, 5n * USD]);
    const off = (by: bigint) =>
      extendAudit(EMPTY_AUDIT, [first!, { ...second!, balanceBefore: second!.balanceBefore + by }], 2)
        .problems[0];
    expect(off(USD)).toBe('entry 2: balanceBefore 11.00 != 10.00, the sum of the entries before it (+1.00)');
    expect(off(-USD)).toBe('entry 2: balanceBefore 9.00 != 10.00, the sum of the entries before it (-1.00)');
  });
});

// Found by mutation testing (npm run mutate, session 49): the advice a missing entry gets, read by operators.
describe('missingEntryProblem', () => {
  const run =
    'run `backstop fund index-journal` (a re-run changes nothing; docs/DEPLOY.md, "Journal not indexed")';
  const why =
    'written before the index existed (a stack deployed before session 27) or by the previous version during a deploy';

  it('says the entry is missing; with the index lacking it, not lost; lacking others, maybe lost', () => {
    expect(missingEntryProblem(3, 5)).toBe('entry 3 missing (the balance is at sequence 5)');
    expect(missingEntryProblem(1, 4, { lowest: 1, found: 3, read: 4, complete: true })).toBe(
      `entry 1 missing (the balance is at sequence 4) from the journal's index by sequence, which does not list entries the journal holds (3 of its 4 entries, from entry 1): ${why}, not lost; ${run}`,
    );
    expect(missingEntryProblem(2, 30_000, { lowest: 5, found: 1, read: 20_000, complete: false })).toBe(
      `entry 2 missing (the balance is at sequence 30000) from the journal's index by sequence, which does not list entries the journal holds (1 of the 20,000 entries read, from entry 5): ${why}; entry 2 itself may be lost: ${run}, then a run that still finds it missing has lost it`,
    );
    expect(entriesWord(1)).toBe('1 entry');
  });
});
