import { EMPTY_AUDIT, extendAudit } from '../domain/journal-audit.ts';
import { absBig, formatQuote, type QuoteE6 } from '../domain/units.ts';
import { METRICS } from '../metrics.ts';
import type { AccountBalance, JournalEntry, Ledger, Telemetry } from '../ports/index.ts';

export interface ReconcileReport {
  readonly account: string;
  readonly balance: QuoteE6;
  /** The balance's sequence: the journal is judged up to it. */
  readonly balanceSequence: number;
  /** The journal's audited prefix ends here: entries 1..auditedThrough chain. */
  readonly auditedThrough: number;
  /** Sum of entries 1..auditedThrough. */
  readonly journalSum: QuoteE6;
  /** Entries this run read. */
  readonly entries: number;
  /** Entries up to the balance's sequence this run did not reach (its page budget); the next run goes on. */
  readonly backlog: number;
  /** balance - journalSum once audited through the balance's sequence (anything but 0 is an alarm); else undefined. */
  readonly difference: QuoteE6 | undefined;
  /** Journal problems: a missing entry, an entry whose before/after do not chain, a balance below zero. */
  readonly problems: readonly string[];
  readonly minBalance: QuoteE6;
}

export interface ReconcileOptions {
  /**
   * 'checkpoint': go on from the audited prefix the last run stored (the scheduled job); 'start': audit the
   * journal again from its first entry (the default: a check that trusts nothing stored). Saved, a run from the
   * start replaces the checkpoint, so the scheduled runs that follow finish the audit it began.
   */
  readonly from?: 'checkpoint' | 'start';
  /** Store the audited prefix for the next run (the scheduled job only). */
  readonly saveCheckpoint?: boolean;
  /** Entries per read. */
  readonly pageSize?: number;
  /**
   * Entries one run reads at most (all by default), so a scheduled run ends within its timeout whatever the
   * journal's size; memory holds one page either way.
   */
  readonly maxEntries?: number;
  /** Waits before reading again an entry not found yet (an index's lag); then it is reported missing. */
  readonly missingRetriesMs?: readonly number[];
  readonly pause?: (ms: number) => Promise<void>;
}

const DEFAULTS = {
  pageSize: 1_000,
  maxEntries: Number.MAX_SAFE_INTEGER,
  missingRetriesMs: [50, 100, 200, 400, 800, 1_600, 3_200],
};

const realPause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export type JournalReader = Pick<
  Ledger,
  'balance' | 'journalAfter' | 'auditCheckpoint' | 'saveAuditCheckpoint'
>;

/**
 * Recomputes an account's balance from its immutable journal, a page at a time in sequence order: sequences
 * must run without gaps, each entry's balanceBefore must be the previous balanceAfter, and the sum must equal
 * the stored balance. Reports the lowest balance the journal shows (the fund must never go below zero).
 * Movements go on while it reads: the balance is read first, and the journal is judged up to that balance's
 * sequence (each entry commits with its balance, so those were all stored before the balance was read).
 * The audited prefix is a checkpoint; a prefix with a problem is never stored past it, so the problem is
 * reported by every run until fixed.
 */
export async function reconcileAccount(
  ledger: JournalReader,
  account: string,
  telemetry: Telemetry,
  options: ReconcileOptions = {},
): Promise<ReconcileReport> {
  const pageSize = options.pageSize ?? DEFAULTS.pageSize;
  const maxEntries = options.maxEntries ?? DEFAULTS.maxEntries;
  const retries = options.missingRetriesMs ?? DEFAULTS.missingRetriesMs;
  const pause = options.pause ?? realPause;
  const balance = await ledger.balance(account);
  const start =
    options.from === 'checkpoint' ? ((await ledger.auditCheckpoint(account)) ?? EMPTY_AUDIT) : EMPTY_AUDIT;
  const problems: string[] = [];
  if (start.sequence > balance.sequence) {
    problems.push(
      `balance at sequence ${balance.sequence} is behind the audited journal (${start.sequence})`,
    );
  }
  let audit = start;
  /** The furthest prefix with no problem in it: what the checkpoint may store. */
  let clean = start;
  let entries = 0;
  let missingAttempt = 0;
  while (audit.sequence < balance.sequence && entries < maxEntries) {
    const limit = Math.min(pageSize, balance.sequence - audit.sequence, maxEntries - entries);
    const page = await ledger.journalAfter(account, audit.sequence, limit);
    const step = extendAudit(audit, page, balance.sequence);
    const read = step.audit.sequence - audit.sequence;
    if (read === 0) {
      // The next entry is not there: an index that has not caught up yet, or an entry that was lost.
      if (missingAttempt < retries.length) {
        await pause(retries[missingAttempt++]!);
        continue;
      }
      problems.push(`entry ${audit.sequence + 1} missing (the balance is at sequence ${balance.sequence})`);
      break;
    }
    missingAttempt = 0;
    entries += read;
    problems.push(...step.problems);
    if (problems.length === 0) clean = step.audit;
    audit = step.audit;
  }
  const caughtUp = audit.sequence === balance.sequence;
  const difference = caughtUp ? balance.balance - audit.sum : undefined;
  const backlog = Math.max(0, balance.sequence - audit.sequence);
  // An audit from the start replaces the checkpoint, further along or not: a problem it found behind it alarms on
  // every run from then on, and the scheduled runs go on from where it stopped (its budget).
  const restarted = options.from !== 'checkpoint';
  if (options.saveCheckpoint && (restarted || clean.sequence > start.sequence))
    await ledger.saveAuditCheckpoint(account, clean, restarted);
  report(telemetry, account, balance, difference, problems, backlog);
  return {
    account,
    balance: balance.balance,
    balanceSequence: balance.sequence,
    auditedThrough: audit.sequence,
    journalSum: audit.sum,
    entries,
    backlog,
    difference,
    problems,
    minBalance: audit.minBalance,
  };
}

function report(
  telemetry: Telemetry,
  account: string,
  balance: AccountBalance,
  difference: QuoteE6 | undefined,
  problems: readonly string[],
  backlog: number,
): void {
  // Gauges in whole quote units for the dashboard; a broken journal is counted apart (its own alarm), so the
  // difference's tolerance never hides it. A run that did not reach the balance judges no difference.
  if (difference !== undefined) {
    telemetry.observe(
      METRICS.LedgerReconcileDifference.name,
      difference !== 0n ? Number(formatQuote(absBig(difference))) : 0,
    );
  }
  telemetry.observe(METRICS.LedgerJournalProblems.name, problems.length);
  telemetry.observe(METRICS.LedgerReconcileBacklog.name, backlog);
  telemetry.observe(METRICS.InsuranceFundBalance.name, Number(formatQuote(balance.balance)));
  if ((difference ?? 0n) !== 0n || problems.length > 0) {
    telemetry.warn('ledger does not reconcile', { account, difference: difference?.toString(), problems });
  }
}

/** A reader over a journal already in memory (a consistent snapshot): no checkpoint, nothing stored. */
export function journalSnapshot(balance: AccountBalance, journal: readonly JournalEntry[]): JournalReader {
  const ordered = [...journal].sort((a, b) => a.sequence - b.sequence);
  return {
    balance: async () => balance,
    journalAfter: async (_account, afterSequence, limit) =>
      ordered.filter((e) => e.sequence > afterSequence).slice(0, limit),
    auditCheckpoint: async () => undefined,
    saveAuditCheckpoint: async () => {},
  };
}
