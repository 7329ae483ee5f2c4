import { sleep } from '../backoff.ts';
import { chartProblem, givesBack, movedByItsPlan } from '../domain/fund-statement.ts';
import {
  EMPTY_AUDIT,
  extendAudit,
  type JournalAudit,
  judgeReconciliation,
  missingEntryProblem,
  type Reconciliation,
} from '../domain/journal-audit.ts';
import { absBig, formatQuote, formatQuoteGrouped, type QuoteE6 } from '../domain/units.ts';
import { METRICS } from '../metrics.ts';
import type {
  AccountBalance,
  ChartFindings,
  JournalEntry,
  Ledger,
  Telemetry,
  UnindexedEntries,
} from '../ports/index.ts';

export interface ReconcileReport {
  readonly account: string;
  readonly balance: QuoteE6;
  /** The balance's sequence: the journal is judged up to it. */
  readonly balanceSequence: number;
  /** The journal's audited prefix ends here: entries 1..auditedThrough chain. */
  readonly auditedThrough: number;
  /** Sum of entries 1..auditedThrough. */
  readonly journalSum: QuoteE6;
  /**
   * The furthest prefix audited with no break in it (what a checkpoint may store; an entry the chart of accounts
   * refuses is no break: chartProblems): a caller that checks again
   * goes on from it (admin.ts withdrawalChecker), reading again only the entries where problems were found.
   */
  readonly clean: JournalAudit;
  /** Entries this run read. */
  readonly entries: number;
  /** Entries up to the balance's sequence this run did not reach (its page budget); the next run goes on. */
  readonly backlog: number;
  /** balance - journalSum once audited through the balance's sequence (anything but 0 is an alarm); else undefined. */
  readonly difference: QuoteE6 | undefined;
  /**
   * Problems: a missing entry, two entries of one sequence, an entry whose before/after do not chain, a balance
   * below zero, an entry past the balance's sequence, a window's drawn amount out of its bounds. At most
   * MAX_PROBLEMS_LISTED, then one line with how many more (problemCount has them all).
   */
  readonly problems: readonly string[];
  /** Every problem found (the journal-problems metric). */
  readonly problemCount: number;
  /**
   * Of problemCount, the entries the fund's chart of accounts refuses (chartProblem: a kind it does not name, a sign
   * its kind never moves), listed after the breaks. The journal still sums as it did: the verdict does not count them,
   * so no withdrawal is refused for them, and the checkpoint goes past them (each is reported by the run that reads
   * it, and by every run from the start).
   */
  readonly chartProblems: number;
  /**
   * The chart's findings through the clean prefix, what the checkpoint keeps: the stored checkpoint's (none when this
   * run began the audit again) and this run's up to `clean` (those past it are found again by the next run).
   */
  readonly chart: ChartFindings;
  readonly minBalance: QuoteE6;
  /**
   * The entry the audit looked for and did not find, after its waits, where it stopped: a lost entry, or one the
   * reader's index does not list (Ledger.unindexedEntries). Undefined when none was missing.
   */
  readonly missing?: number;
  /**
   * What the look for entries the index lacks found (Ledger.unindexedEntries), made only when an entry was missing:
   * some found, the missing entry is the index's (the problem says so, and the command).
   */
  readonly look?: UnindexedEntries;
  /** The fund judged on this report (judgeReconciliation), as a withdrawal's check judges it. */
  readonly verdict: Reconciliation;
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
  /**
   * An entry an earlier read of this journal already waited for and did not find: reported missing at once, its
   * waits (for an index's lag, seconds at most) not made again (a check made every few seconds: review46-status-watch).
   */
  readonly waitedFor?: number;
  /**
   * The configured draw cap per window (the risk config's insurance drawCapPerWindow and windowSeconds) and the
   * time of the run: the balance's windowDrawn stays within the cap while its window lasts. A window that has
   * ended counts as drawn 0 (the ledger starts the next one at the next draw): judged after it, a cap lowered
   * meanwhile alarmed until some later shortfall, weeks in a calm market, hiding new journal problems.
   */
  readonly drawCap?: { readonly cap: QuoteE6; readonly windowSeconds: number; readonly nowMs: number };
  /**
   * The balance read again before an entry past it is called a problem (the reader's by default): a reader over a
   * snapshot passes the live ledger's, as a movement may have committed since the snapshot was taken; a withdrawal's
   * check (admin.ts `checkFund`) passes the ledger's, its reader keeping the first read, the balance it judged.
   */
  readonly balanceAgain?: (account: string) => Promise<AccountBalance>;
  /**
   * Entries the look for ones the index lacks reads at most, once an entry is missing (maxEntries by default: a run's
   * own budget); 1,000 a read, stopping after the first read that finds one.
   */
  readonly unindexedLookMax?: number;
  /**
   * A problem as the caller's operator reads it: ledger-reconcile gives the commands a problem names its stack's target
   * flags (ops47-reconcile-advice), in its line, the service's warning and the report alike. As found by default.
   */
  readonly advice?: (problem: string) => string;
}

/** Entries one journalAfter asks for: a few hundred KB of items, under a Query's 1 MB (the fund statement's too). */
export const JOURNAL_PAGE = 1_000;

/**
 * The waits for the index's lag before an entry it does not list is said missing (6.35 s in all; the fund
 * statement's too, at the journal's end).
 */
export const MISSING_ENTRY_WAITS_MS: readonly number[] = [50, 100, 200, 400, 800, 1_600, 3_200];

const DEFAULTS = {
  pageSize: JOURNAL_PAGE,
  maxEntries: Number.MAX_SAFE_INTEGER,
  missingRetriesMs: MISSING_ENTRY_WAITS_MS,
};

export type JournalReader = Pick<
  Ledger,
  'balance' | 'journalAfter' | 'unindexedEntries' | 'auditCheckpoint' | 'saveAuditCheckpoint' | 'entriesOf'
>;

/**
 * Recomputes an account's balance from its immutable journal, a page at a time in sequence order: sequences
 * must run without gaps or repeats, each entry's balanceBefore must be the previous balanceAfter, and the sum must
 * equal the stored balance. Reports the lowest balance the journal shows (the fund must never go below zero).
 * Movements go on while it reads: the balance is read before the journal, which is judged up to that balance's
 * sequence (each entry commits with its balance, so those were all stored before the balance was read); an entry
 * past it still there once the balance is read again is one no balance counts (a balance item lost or set back).
 * The audited prefix is a checkpoint; a prefix with a break is never stored past it, so the break is reported by
 * every run until fixed. An entry the fund's chart of accounts refuses is reported by the run that reads it, and
 * counted with the checkpoint (`chart`). A fee or a draw given back (`:r<n>`) is judged on its liquidation's entries
 * (entriesOf: one read per liquidation that has one, rare), as the ledger judged it.
 */
export async function reconcileAccount(
  ledger: JournalReader,
  account: string,
  telemetry: Telemetry,
  options: ReconcileOptions = {},
): Promise<ReconcileReport> {
  // The checkpoint before the balance: a concurrent run may store one further along in between, past the balance
  // read first (a false "behind the audited journal"; a review in session 37).
  const stored = options.from === 'checkpoint' ? await ledger.auditCheckpoint(account) : undefined;
  const balance = await ledger.balance(account);
  const start: JournalAudit = stored ?? EMPTY_AUDIT;
  const problems = new Set<string>();
  if (start.sequence > balance.sequence) {
    problems.add(`balance at sequence ${balance.sequence} is behind the audited journal (${start.sequence})`);
  }
  const walk = await walkJournal(ledger, account, start, balance.sequence, options);
  for (const problem of walk.problems) problems.add(problem);
  const { audit, clean, entries, missing } = walk;
  // A missing entry may be one the index lacks, not a lost one: the journal itself says (withdraw46-not-indexed).
  const look =
    missing === undefined
      ? undefined
      : await ledger.unindexedEntries(
          account,
          options.unindexedLookMax ?? options.maxEntries ?? DEFAULTS.maxEntries,
        );
  const unindexed = look?.lowest === undefined ? undefined : { ...look, lowest: look.lowest };
  if (missing !== undefined) problems.add(missingEntryProblem(missing, balance.sequence, unindexed));
  const caughtUp = audit.sequence === balance.sequence;
  if (caughtUp) {
    const again = options.balanceAgain ?? ((a: string) => ledger.balance(a));
    for (const problem of await pastTheBalance(ledger, account, balance, again)) problems.add(problem);
  }
  for (const problem of windowProblems(balance, options.drawCap)) problems.add(problem);
  const difference = caughtUp ? balance.balance - audit.sum : undefined;
  const backlog = Math.max(0, balance.sequence - audit.sequence);
  // An audit from the start replaces the checkpoint, further along or not: a problem it found behind it alarms on
  // every run from then on, and the scheduled runs go on from where it stopped (its budget). The clean prefix
  // never passes the balance's sequence (the walk stops at it).
  const restarted = options.from !== 'checkpoint';
  const chart = withFindings(
    stored === undefined
      ? { count: 0, countedAfter: 0 }
      : (stored.chart ?? { count: 0, countedAfter: stored.sequence }),
    walk.chartFound.filter((sequence) => sequence <= clean.sequence),
  );
  if (options.saveCheckpoint && (restarted || clean.sequence > start.sequence))
    await ledger.saveAuditCheckpoint(account, { ...clean, chart }, restarted ? 'restart' : stored);
  const advice = options.advice ?? ((problem: string) => problem);
  const breaks = listed([...problems]).map(advice);
  const found = listed([...problems, ...walk.chartProblems]).map(advice);
  const problemCount = problems.size + walk.chartProblems.length;
  const verdict = judgeReconciliation({
    balance: balance.balance,
    sequence: balance.sequence,
    audit,
    // The problems the report lists (20, then how many more), not every one: status shows the verdict's. An entry the
    // chart refuses moved the money it says, chained: no break of the balance (books51-kind-not-charted).
    problems: breaks,
    ...(unindexed === undefined ? {} : { unindexed: unindexed.lowest }),
  });
  const charted = walk.chartProblems.length;
  report(telemetry, account, balance, difference, found, problemCount, charted, backlog, verdict);
  return {
    account,
    balance: balance.balance,
    balanceSequence: balance.sequence,
    auditedThrough: audit.sequence,
    journalSum: audit.sum,
    clean: walk.clean,
    entries,
    backlog,
    difference,
    problems: found,
    problemCount,
    chartProblems: charted,
    chart,
    minBalance: audit.minBalance,
    ...(missing === undefined ? {} : { missing }),
    ...(look === undefined ? {} : { look }),
    verdict,
  };
}

/**
 * Problems a report lists. One balance written outside the journal breaks the chain of every entry after it: a
 * run reported each (99,999 lines, 6 MB), past a log event's 1 MB and a synchronous response's 6 MB.
 */
export const MAX_PROBLEMS_LISTED = 20;

const listed = (problems: readonly string[]): string[] =>
  problems.length <= MAX_PROBLEMS_LISTED
    ? [...problems]
    : [
        ...problems.slice(0, MAX_PROBLEMS_LISTED),
        `... and ${problems.length - MAX_PROBLEMS_LISTED} more problems`,
      ];

interface Walk {
  readonly audit: JournalAudit;
  /** The furthest prefix with no break in it (chartProblems are none): what the checkpoint may store. */
  readonly clean: JournalAudit;
  readonly entries: number;
  readonly problems: readonly string[];
  /** Entries the chart of accounts refuses (chartProblem), among those audited: not problems of the chain or sum. */
  readonly chartProblems: readonly string[];
  /** Their sequences, each once. */
  readonly chartFound: readonly number[];
  /** The entry not found, where the walk stopped (a problem, named by reconcileAccount). */
  readonly missing?: number;
}

/** Audits the journal from `start` up to `through`, a page at a time, within the run's budget. */
async function walkJournal(
  ledger: JournalReader,
  account: string,
  start: JournalAudit,
  through: number,
  options: ReconcileOptions,
): Promise<Walk> {
  const pageSize = options.pageSize ?? DEFAULTS.pageSize;
  const maxEntries = options.maxEntries ?? DEFAULTS.maxEntries;
  const retries = options.missingRetriesMs ?? DEFAULTS.missingRetriesMs;
  const pause = options.pause ?? sleep;
  const problems = new Set<string>();
  const chartProblems = new Set<string>();
  const chartFound = new Set<number>();
  // Each liquidation's entries, read once per run for its give-backs.
  const plans = new Map<string, Promise<readonly JournalEntry[]>>();
  const planOf = (reference: string) => {
    const plan = plans.get(reference) ?? ledger.entriesOf(account, reference);
    plans.set(reference, plan);
    return plan;
  };
  let audit = start;
  let clean = start;
  let entries = 0;
  let missingAttempt = 0;
  let overlap = true;
  let missing: number | undefined;
  while (audit.sequence < through && entries < maxEntries) {
    // Each page begins at the prefix's last entry, read again: a second entry of its sequence is seen wherever a
    // page (or the checkpoint) ends.
    const back = overlap && audit.sequence > 0 ? 1 : 0;
    // An entry an earlier read waited for and did not find is asked for alone, the page past it only once it is there:
    // `status --watch` asks on every refresh while it is missing (status48-journal-remembered).
    const waited = audit.sequence + 1 === options.waitedFor;
    const limit = (waited ? 1 : Math.min(pageSize, through - audit.sequence, maxEntries - entries)) + back;
    const page = await ledger.journalAfter(account, audit.sequence - back, limit);
    const step = extendAudit(audit, page, through);
    for (const problem of step.problems) problems.add(problem);
    const read = step.audit.sequence - audit.sequence;
    overlap = true;
    if (read === 0) {
      // A page of copies of the prefix's last entry (reported): the next one reads past them.
      if (back === 1 && page.length === limit) {
        overlap = false;
        continue;
      }
      // The next entry is not there: an index that has not caught up yet, or an entry that was lost.
      if (missingAttempt < retries.length && audit.sequence + 1 !== options.waitedFor) {
        await pause(retries[missingAttempt++]!);
        continue;
      }
      // Its problem is reconcileAccount's, once it has looked whether the index lacks it.
      missing = audit.sequence + 1;
      break;
    }
    missingAttempt = 0;
    entries += read;
    // The entries this page audited, each once (the page's first, read again, was the last page's).
    for (const entry of page) {
      if (entry.sequence <= audit.sequence || entry.sequence > step.audit.sequence) continue;
      const planMoved = givesBack(entry) ? movedByItsPlan(entry, await planOf(entry.reference)) : undefined;
      const problem = chartProblem(entry, planMoved);
      if (problem === undefined) continue;
      chartProblems.add(problem);
      chartFound.add(entry.sequence);
    }
    // Not held back by the chart's problems: held, a booking error that moved no money wrongly would, 20,000 entries
    // on, refuse withdrawals as not audited, and 100,000 on stop the balance being judged at all.
    if (problems.size === 0) clean = step.audit;
    audit = step.audit;
  }
  return {
    audit,
    clean,
    entries,
    problems: [...problems],
    chartProblems: [...chartProblems],
    chartFound: [...chartFound],
    ...(missing === undefined ? {} : { missing }),
  };
}

/** `chart` with the entries at `sequences` found too (entries past those it counted). */
export function withFindings(chart: ChartFindings, sequences: readonly number[]): ChartFindings {
  if (sequences.length === 0) return chart;
  // A loop, not Math.min(...sequences): spreading throws past about 125,000 arguments.
  let first = chart.first ?? Number.POSITIVE_INFINITY;
  let last = chart.last ?? 0;
  for (const sequence of sequences) {
    if (sequence < first) first = sequence;
    if (sequence > last) last = sequence;
  }
  return { count: chart.count + sequences.length, first, last, countedAfter: chart.countedAfter };
}

/**
 * What lies past the audited balance: a second entry at its sequence, and an entry above it. Each entry commits
 * with its balance, so an entry above that is still above once the balance is read again (the journal's index may
 * show an entry the first read did not count yet, never one that is not committed) is a movement no balance
 * counts: the balance item lost (read as 0 at sequence 0, the next movement numbered 1 again) or set back.
 */
async function pastTheBalance(
  ledger: JournalReader,
  account: string,
  balance: AccountBalance,
  balanceAgain: (account: string) => Promise<AccountBalance>,
): Promise<readonly string[]> {
  const problems: string[] = [];
  const at = balance.sequence;
  if (at > 0) {
    const copies = (await ledger.journalAfter(account, at - 1, 2)).filter((e) => e.sequence === at);
    if (copies.length > 1) problems.push(`entry ${at} appears twice`);
  }
  const [above] = await ledger.journalAfter(account, at, 1);
  if (above) {
    const again = await balanceAgain(account);
    if (again.sequence < above.sequence)
      problems.push(`entry ${above.sequence} is past the balance's sequence ${again.sequence}`);
  }
  return problems;
}

/**
 * The draw window's accounting: what the window drew is never below zero (a draw given back lowers it to 0 at
 * most) nor above the cap (every draw is refused past it). The journal cannot check it exactly: an entry does not
 * say which window it counted against (a late retry counts against the stored one, and a draw given back lowers
 * the window only while it is the stored one). A cap lowered within a window alarms until that window ends.
 */
function windowProblems(balance: AccountBalance, drawCap: ReconcileOptions['drawCap']): readonly string[] {
  const drawn = balance.windowDrawn;
  // In quote units, as status shows the fund: micro-units read as a sum a million times larger.
  if (drawn < 0n) return [`window drawn ${formatQuoteGrouped(drawn)} is below zero`];
  const above = aboveDrawCap(balance, drawCap);
  return above === undefined ? [] : [above];
}

/**
 * The stored window, while it lasts, drawn above the configured cap (a cap lowered within it), or undefined: a
 * reconcile's problem that refuses no withdrawal (a withdrawal does not draw on the cap); `backstop status` shows it
 * beside the window's draws.
 */
export function aboveDrawCap(
  balance: AccountBalance,
  drawCap: ReconcileOptions['drawCap'],
): string | undefined {
  if (drawCap === undefined || drawCap.nowMs >= balance.windowStartMs + drawCap.windowSeconds * 1000)
    return undefined;
  const drawn = balance.windowDrawn;
  return drawn > drawCap.cap
    ? `window drawn ${formatQuoteGrouped(drawn)} is above the draw cap ${formatQuoteGrouped(drawCap.cap)}`
    : undefined;
}

function report(
  telemetry: Telemetry,
  account: string,
  balance: AccountBalance,
  difference: QuoteE6 | undefined,
  problems: readonly string[],
  problemCount: number,
  chartProblems: number,
  backlog: number,
  verdict: Reconciliation,
): void {
  // Gauges in whole quote units for the dashboard; a broken journal is counted apart (its own alarm), so the
  // difference's tolerance never hides it. A run that did not reach the balance judges no difference.
  if (difference !== undefined) {
    telemetry.observe(
      METRICS.LedgerReconcileDifference.name,
      difference !== 0n ? Number(formatQuote(absBig(difference))) : 0,
    );
  }
  telemetry.observe(METRICS.LedgerJournalProblems.name, problemCount);
  telemetry.observe(METRICS.LedgerReconcileBacklog.name, backlog);
  telemetry.observe(METRICS.InsuranceFundBalance.name, Number(formatQuote(balance.balance)));
  if ((difference ?? 0n) !== 0n || problemCount > 0) {
    // Entries the chart refuses alone break no balance: said as what they are, not as a ledger that does not reconcile.
    const booking = (difference ?? 0n) === 0n && problemCount === chartProblems;
    telemetry.warn(
      booking ? "journal entries the fund's chart of accounts refuses" : 'ledger does not reconcile',
      {
        account,
        // In quote units, as ledger-reconcile's own line says it (drill45-reconcile-units: 1e-6 units before).
        difference: difference === undefined ? undefined : formatQuote(difference),
        problemCount,
        problems,
        verdict: verdict.reconciled ? 'reconciled' : verdict.reason,
      },
    );
  }
}
