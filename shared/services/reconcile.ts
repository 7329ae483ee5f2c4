import { absBig, formatQuote, type QuoteE6 } from '../domain/units.ts';
import { METRICS } from '../metrics.ts';
import type { Ledger, Telemetry } from '../ports/index.ts';

export interface ReconcileReport {
  readonly account: string;
  readonly balance: QuoteE6;
  readonly journalSum: QuoteE6;
  readonly entries: number;
  /** balance - journalSum: anything but 0 is an alarm. */
  readonly difference: QuoteE6;
  /** Journal problems: a gap in sequences, an entry whose before/after do not chain, a balance below zero. */
  readonly problems: readonly string[];
  readonly minBalance: QuoteE6;
}

/**
 * Recomputes an account's balance from its immutable journal: the sum of the amounts must equal the stored
 * balance, sequences must run 1..n without gaps, and each entry's balanceBefore must be the previous
 * balanceAfter. Reports the lowest balance the journal ever shows (the fund must never go below its floor).
 * Movements go on while it reads: the balance is read first, and the journal is judged up to that balance's
 * sequence (each entry commits with its balance, so those were all stored before the balance was read).
 */
export async function reconcileAccount(
  ledger: Pick<Ledger, 'balance' | 'journal'>,
  account: string,
  telemetry: Telemetry,
): Promise<ReconcileReport> {
  const balance = await ledger.balance(account);
  const journal = (await ledger.journal(account)).filter((entry) => entry.sequence <= balance.sequence);
  let sum = 0n;
  let minBalance = 0n;
  const problems: string[] = [];
  journal.forEach((entry, index) => {
    if (entry.sequence !== index + 1) problems.push(`sequence ${entry.sequence} at position ${index + 1}`);
    if (entry.balanceBefore !== sum)
      problems.push(`entry ${entry.sequence}: balanceBefore ${entry.balanceBefore} != ${sum}`);
    if (entry.balanceAfter !== entry.balanceBefore + entry.amount) {
      problems.push(`entry ${entry.sequence}: balanceAfter != balanceBefore + amount`);
    }
    sum += entry.amount;
    if (sum < minBalance) {
      // The fund never goes below its floor, and no floor is below zero: a journal that shows it paid money it
      // did not have.
      if (minBalance === 0n) problems.push(`entry ${entry.sequence}: balance ${sum} below zero`);
      minBalance = sum;
    }
  });
  const difference = balance.balance - sum;
  // Gauges in whole quote units for the dashboard; a broken journal is counted apart (its own alarm), so the
  // difference's tolerance never hides it.
  telemetry.observe(
    METRICS.LedgerReconcileDifference.name,
    difference !== 0n ? Number(formatQuote(absBig(difference))) : 0,
  );
  telemetry.observe(METRICS.LedgerJournalProblems.name, problems.length);
  telemetry.observe(METRICS.InsuranceFundBalance.name, Number(formatQuote(balance.balance)));
  if (difference !== 0n || problems.length > 0) {
    telemetry.warn('ledger does not reconcile', { account, difference: difference.toString(), problems });
  }
  return {
    account,
    balance: balance.balance,
    journalSum: sum,
    entries: journal.length,
    difference,
    problems,
    minBalance,
  };
}
