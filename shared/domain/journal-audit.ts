import { formatQuoteGrouped, type QuoteE6 } from './units.ts';

/** What the audit reads of a journal entry. */
export interface AuditedEntry {
  readonly sequence: number;
  readonly amount: QuoteE6;
  readonly balanceBefore: QuoteE6;
  readonly balanceAfter: QuoteE6;
}

/**
 * The audited prefix of an account's journal: entries 1..sequence chain, and sum to `sum`. A reconcile carries
 * it forward (a checkpoint), so each run reads only the entries written since the last one.
 */
export interface JournalAudit {
  readonly sequence: number;
  readonly sum: QuoteE6;
  /** The lowest balance the prefix ever shows (0 if it never went below). */
  readonly minBalance: QuoteE6;
}

export const EMPTY_AUDIT: JournalAudit = { sequence: 0, sum: 0n, minBalance: 0n };

export interface AuditStep {
  readonly audit: JournalAudit;
  /** Entries that do not chain, or a balance below zero; each is an alarm. */
  readonly problems: readonly string[];
}

/**
 * Extends `audit` by the entries that follow it in sequence, up to `through`, in order. Each entry's
 * balanceBefore must be the running sum and its balanceAfter before + amount; a running sum below zero is a
 * fund that paid money it did not have (no floor is below zero), reported the first time it happens.
 * `entries` may begin with the audited prefix's last entry, read again (a page overlapping the prefix by one), so
 * that a second entry of one sequence is reported wherever a page begins: two entries at any sequence are a
 * movement the balance counted once at most (a lost balance item numbers from 1 again).
 * Entries below the audited sequence, or past `through`, are ignored; the first sequence not found stops it
 * (on a store that reads the journal through an index, that may be the index's lag rather than a lost entry).
 */
export function extendAudit(
  audit: JournalAudit,
  entries: readonly AuditedEntry[],
  through: number,
): AuditStep {
  const ahead = entries
    .filter((e) => e.sequence >= audit.sequence && e.sequence <= through)
    .sort((a, b) => a.sequence - b.sequence);
  let { sequence, sum, minBalance } = audit;
  const problems: string[] = [];
  /** Entries of `sequence` this page holds: the audited prefix's last one read again counts as its first. */
  let copies = 0;
  for (const entry of ahead) {
    if (entry.sequence === sequence) {
      if (++copies === 2) problems.push(`entry ${entry.sequence} appears twice`);
      continue;
    }
    if (entry.sequence !== sequence + 1) break;
    copies = 1;
    // In quote units, with the gap: a balance item changed outside the journal shows here by how much
    // (drill45-reconcile-units: raw 1e-6 integers before).
    if (entry.balanceBefore !== sum) {
      const gap = entry.balanceBefore - sum;
      problems.push(
        `entry ${entry.sequence}: balanceBefore ${formatQuoteGrouped(entry.balanceBefore)} != ${formatQuoteGrouped(sum)}, the sum of the entries before it (${gap > 0n ? '+' : ''}${formatQuoteGrouped(gap)})`,
      );
    }
    if (entry.balanceAfter !== entry.balanceBefore + entry.amount) {
      problems.push(`entry ${entry.sequence}: balanceAfter != balanceBefore + amount`);
    }
    sum += entry.amount;
    sequence = entry.sequence;
    if (sum < minBalance) {
      if (minBalance === 0n)
        problems.push(`entry ${entry.sequence}: balance ${formatQuoteGrouped(sum)} below zero`);
      minBalance = sum;
    }
  }
  return { audit: { sequence, sum, minBalance }, problems };
}

/** What a withdrawal is judged on: the fund's balance item against its journal, audited up to some entry. */
export interface ReconciliationInput {
  /** The balance item: its balance and the sequence of the last entry it counts. */
  readonly balance: QuoteE6;
  readonly sequence: number;
  /** The journal's audited prefix (a checkpoint carried on by extendAudit), as far as it was read. */
  readonly audit: JournalAudit;
  /** What the audit found wrong (extendAudit's problems, an entry past the balance, ...). */
  readonly problems: readonly string[];
  /**
   * The lowest sequence of an entry the journal holds but the index the audit read it through does not list
   * (a table deployed before that index, not indexed since), when one was found: the audit's "missing" is the index's.
   */
  readonly unindexed?: number;
}

export type Reconciliation =
  | { readonly reconciled: true }
  /** The balance item and the journal disagree; `difference` (balance - journal sum) once judged at its sequence. */
  | {
      readonly reconciled: false;
      readonly reason: 'unreconciled';
      readonly difference?: QuoteE6;
      readonly problems: readonly string[];
    }
  /** The journal is not audited up to the balance's sequence (`behind` entries short): not judged. */
  | { readonly reconciled: false; readonly reason: 'not-audited'; readonly behind: number }
  /** The index the journal is read through lacks entries (from `lowest`): not judged until it is indexed. */
  | { readonly reconciled: false; readonly reason: 'not-indexed'; readonly lowest: number };

/**
 * Whether the fund's balance reconciles with its journal, as ledger-reconcile judges it: every entry up to the
 * balance's sequence chains (none missing, none twice, each from the running sum), nothing lies past it, and the
 * balance is the journal's sum. The latest entry's balanceAfter alone is not enough: once a movement follows a
 * balance written by hand, that entry chains from the written balance and only its balanceBefore against the sum
 * before it shows the break. A prefix not audited up to the balance is not judged (not a yes), nor is a journal
 * whose index lacks entries: what it reads as missing is there, and what lies past it is read short.
 */
export function judgeReconciliation(input: ReconciliationInput): Reconciliation {
  const { balance, sequence, audit, problems } = input;
  if (input.unindexed !== undefined)
    return { reconciled: false, reason: 'not-indexed', lowest: input.unindexed };
  const atBalance = audit.sequence === sequence;
  const difference = atBalance ? balance - audit.sum : undefined;
  if (problems.length > 0)
    return {
      reconciled: false,
      reason: 'unreconciled',
      problems,
      ...(difference !== undefined && difference !== 0n ? { difference } : {}),
    };
  if (audit.sequence > sequence)
    return {
      reconciled: false,
      reason: 'unreconciled',
      problems: [`balance at sequence ${sequence} is behind the audited journal (${audit.sequence})`],
    };
  if (!atBalance) return { reconciled: false, reason: 'not-audited', behind: sequence - audit.sequence };
  if (difference !== 0n) return { reconciled: false, reason: 'unreconciled', difference, problems: [] };
  return { reconciled: true };
}

/** A number of journal entries, grouped as the usage says 20,000: `1 entry`, `20,000 entries`. */
export const entriesWord = (n: number): string =>
  `${n.toLocaleString('en-US')} ${n === 1 ? 'entry' : 'entries'}`;

/** What a look found among what it read: `3 of its 4 entries` (the whole journal), `1 of the 1,000 entries read`. */
export const unindexedAmong = (look: Pick<UnindexedFound, 'found' | 'read' | 'complete'>): string =>
  look.complete
    ? `${look.found} of its ${entriesWord(look.read)}`
    : `${look.found} of the ${entriesWord(look.read)} read`;

/** The command that lists a journal's entries in its index, as advice names it (with the target's flags added). */
export const INDEX_JOURNAL_RUN =
  '`backstop fund index-journal` (a re-run changes nothing; docs/DEPLOY.md, "Journal not indexed")';

/** What a look for journal entries the index by sequence does not list found, when it found some. */
export interface UnindexedFound {
  /** The lowest sequence among them. */
  readonly lowest: number;
  readonly found: number;
  /** Entries the look read, and whether that was the whole journal. */
  readonly read: number;
  readonly complete: boolean;
}

/**
 * The problem a reconcile reports for entry `missing`, not found through the journal's index by sequence before the
 * balance's sequence `through`. `unindexed`: the journal's entries that index does not list, when a look found some.
 * Then the index lacks entries: a stack deployed before session 27 (or entries the previous version wrote during a
 * deploy) whose journal is to be indexed, as judgeReconciliation's `not-indexed` verdict says (reconcile47-not-indexed-log:
 * ledger-reconcile's log said "entry 1 missing" alone); `missing` is not lost when the look found it.
 */
export function missingEntryProblem(missing: number, through: number, unindexed?: UnindexedFound): string {
  const problem = `entry ${missing} missing (the balance is at sequence ${through})`;
  if (unindexed === undefined) return problem;
  const among = unindexedAmong(unindexed);
  const run = `run ${INDEX_JOURNAL_RUN}`;
  // Not lost only when the look found it (`lowest`): one that found others says nothing of it (review47-not-lost-claim).
  const said =
    unindexed.lowest === missing
      ? `, not lost; ${run}`
      : `; entry ${missing} itself may be lost: ${run}, then a run that still finds it missing has lost it`;
  return (
    `${problem} from the journal's index by sequence, which does not list entries the journal holds (${among}, from entry ${unindexed.lowest}): ` +
    `written before the index existed (a stack deployed before session 27) or by the previous version during a deploy${said}`
  );
}
