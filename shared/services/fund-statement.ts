import { equalJitterDelayMs, sleep } from '../backoff.ts';
import {
  buildStatement,
  CUT_START,
  type CutState,
  closedByTime,
  cutPage,
  type FundStatement,
  givesBack,
  indexLagging,
  type Period,
  type Predecessor,
  plansMovedOf,
} from '../domain/fund-statement.ts';
import type { QuoteE6 } from '../domain/units.ts';
import type { JournalEntry, Ledger, UnindexedEntries } from '../ports/index.ts';
import { JOURNAL_PAGE, MISSING_ENTRY_WAITS_MS } from './reconcile.ts';

/**
 * `backstop fund statement`'s read: the fund's journal through its index by sequence (journalAfter, never a Scan),
 * a page at a time, from where the period can begin, until the period's end or `max` entries read. The statement
 * itself is the pure domain's (shared/domain/fund-statement.ts).
 */

/** Entries one journalAfter asks for: the reconcile's page. */
export const STATEMENT_PAGE = JOURNAL_PAGE;
/** The default bound on the entries a statement reads, and the largest one it takes. */
export const STATEMENT_MAX_DEFAULT = 100_000;
export const STATEMENT_MAX_LIMIT = 1_000_000;
/** Entries of the journal a look for entries its index does not list reads at most, on a gap (a withdrawal's bound). */
export const STATEMENT_LOOK_MAX = 20_000;

export interface StatementRead {
  readonly period: Period;
  /** The period's entries, in sequence order. */
  readonly entries: readonly JournalEntry[];
  /** The entry before the period, when read. */
  readonly before?: JournalEntry;
  /** The first entry past the period: its end was read, the statement will not change. */
  readonly next?: JournalEntry;
  /** Entries read in all: those before the period (to find its start) and the one past it included. */
  readonly read: number;
  readonly max: number;
  /**
   * Where the read stopped: `end` the period's end was read (next), `journal` the journal's last entry (the period
   * is open unless `closed`: entries written later may fall in it), `max` the bound, with more entries to read,
   * before the period's end (`phase`: before its start, or in it).
   */
  readonly stoppedBy: 'end' | 'journal' | 'max';
  /**
   * Nothing written later can join the period: its end read (stoppedBy `end`), or a period by time read to the
   * journal's end whose end passed long enough before (closedByTime: SETTLED_AFTER_MS).
   */
  readonly ended: boolean;
  /**
   * Final: ended, and the statement reconciles. One with a break is not: an entry missing (a gap, the index's lag)
   * may be of the period, its stamp the period's true end, so a run later may list more or end it elsewhere.
   */
  readonly closed: boolean;
  /** Why it is not closed: `breaks` (ended, does not reconcile), `journal` (entries may still join it), `max`. */
  readonly openBecause?: 'breaks' | 'journal' | 'max';
  /** Ended by time: when the fund's balance, at the period's last entry (or the one before it), was read. */
  readonly settledAtMs?: number;
  /** The fund's balance item's sequence as read before the journal (again, when a gap lies past it). */
  readonly balanceSequence: number;
  readonly phase: CutState['phase'];
  /** The last entry read, when the read stopped at its bound. */
  readonly lastRead?: JournalEntry;
  readonly statement: FundStatement;
  /** On a gap: what a look for journal entries the index does not list found, when it found some. */
  readonly unindexed?: UnindexedEntries;
}

export interface StatementOptions {
  /** Entries read at most (default STATEMENT_MAX_DEFAULT). */
  readonly max?: number;
  readonly pageSize?: number;
  /** A look's bound (default STATEMENT_LOOK_MAX). */
  readonly lookMax?: number;
  /** The waits for the index at the journal's end (default STATEMENT_INDEX_WAITS_MS). */
  readonly indexWaitsMs?: readonly number[];
  /** Re-reads of gaps within the journal, in all (default STATEMENT_GAP_REREADS). */
  readonly gapRereads?: number;
  /** The jitter's draw for a gap's re-read, in [0, 1) (Math.random by default). */
  readonly random?: () => number;
  readonly pause?: (ms: number) => Promise<void>;
  /** The clock a period by time is judged closed by (closedByTime): the machine's by default; the CLI's, AWS's. */
  readonly nowMs?: () => number;
}

/**
 * Re-reads of a gap within the journal, in all, before it is said: the index by sequence lists each new entry a
 * moment after it commits, not always in sequence order, so a read near the journal's end may list an entry and not
 * the one before it. Each re-read waits gapRereadDelayMs.
 */
export const STATEMENT_GAP_REREADS = 6;

/** The wait before re-read `attempt` (1, 2, ...) of one gap: 50 ms doubling, to 1.6 s, equal jitter (3.15 s at most). */
export const gapRereadDelayMs = (attempt: number, random: () => number): number =>
  equalJitterDelayMs(attempt, 50, 1_600, random);

/**
 * At the journal's end short of the balance's entry, the read waits for the index this long, then this long, ...
 * before it says the entries are missing: the reconcile's waits (6.35 s at most), once per statement.
 */
export const STATEMENT_INDEX_WAITS_MS = MISSING_ENTRY_WAITS_MS;

/** Refuses a bound that is not a whole number of entries in 1..STATEMENT_MAX_LIMIT. */
export const statementMaxProblem = (max: number): string | undefined =>
  Number.isSafeInteger(max) && max >= 1 && max <= STATEMENT_MAX_LIMIT
    ? undefined
    : `statement/bad-max: a whole number of entries in 1..${STATEMENT_MAX_LIMIT}`;

/**
 * Reads the period's entries and builds its statement. By sequence the read begins just before the period (its
 * entry before, which the opening balance must chain from); by time, or with no start, at the journal's first entry
 * (the period's start is the first entry stamped at or after --from: only a read from the start finds it). Each page
 * after the first reads its predecessor's last entry again, so a second entry of one sequence is seen wherever a page
 * ends (as the reconcile's walk does); entries already read are not counted twice. It asks for one entry more than
 * `max`: a journal of exactly `max` entries is read whole, not cut short. A gap the statement would name is read
 * again (STATEMENT_GAP_REREADS in all) before it is: the index's lag.
 */
export async function readFundStatement(
  ledger: Pick<Ledger, 'balance' | 'journalAfter' | 'unindexedEntries' | 'entriesOf'>,
  account: string,
  period: Period,
  options: StatementOptions = {},
): Promise<StatementRead> {
  const max = options.max ?? STATEMENT_MAX_DEFAULT;
  const problem = statementMaxProblem(max);
  if (problem) throw new RangeError(problem);
  const pageSize = options.pageSize ?? STATEMENT_PAGE;
  const fromSequence = period.from && 'sequence' in period.from ? period.from.sequence : undefined;
  const toSequence = period.to && 'sequence' in period.to ? period.to.sequence : undefined;
  const readAfter = fromSequence === undefined ? 0 : Math.max(0, fromSequence - 2);
  // Before the balance: an entry committed after this balance read commits after this time too (closedByTime).
  const nowMs = (options.nowMs ?? Date.now)();
  // Before the journal: every entry it counts had committed, so one the read to the journal's end does not list is
  // missing from the index (its lag, or never indexed), not yet to come.
  let balance = await ledger.balance(account);
  let state = CUT_START;
  const entries: JournalEntry[] = [];
  let read = 0;
  let last: JournalEntry | undefined;
  /** Keys of the entries read at the last sequence read: a page that reads it again skips them. */
  let atLast = new Set<string>();
  let overlap = false;
  let stoppedBy: StatementRead['stoppedBy'] | undefined;
  const waits = [...(options.indexWaitsMs ?? STATEMENT_INDEX_WAITS_MS)];
  const pause = options.pause ?? sleep;
  const random = options.random ?? Math.random;
  let gapRereads = options.gapRereads ?? STATEMENT_GAP_REREADS;
  /** Re-reads of the gap the read stands at (0: none). */
  let gapAttempt = 0;
  while (stoppedBy === undefined) {
    const back = overlap && last !== undefined ? 1 : 0;
    const after = last === undefined ? readAfter : last.sequence - back;
    // One more than the bound (is there more?), no further than --to-sequence needs (the entries up to it, and those
    // of its sequence read again).
    const wanted = Math.min(
      pageSize,
      max + 1 - read,
      toSequence === undefined ? Number.POSITIVE_INFINITY : Math.max(1, toSequence - after),
    );
    const limit = wanted + back * atLast.size;
    const page = await ledger.journalAfter(account, after, limit);
    const fresh = page.filter((e) => !(e.sequence === last?.sequence && atLast.has(e.idempotencyKey)));
    let rereadGap = false;
    for (const e of fresh) {
      const cut = cutPage(state, [e], period);
      const ends = cut.state.phase === 'after';
      // The entry past the bound: more to read, unless it is the one past the period (its end, within the bound).
      if (read >= max && !ends) {
        stoppedBy = 'max';
        break;
      }
      // Entries missing before one of the period (or the one past it): read again while re-reads are left.
      if (e.sequence > (last?.sequence ?? readAfter) + 1 && cut.state.phase !== 'before' && gapRereads > 0) {
        rereadGap = true;
        break;
      }
      if (e.sequence !== last?.sequence) atLast = new Set();
      atLast.add(e.idempotencyKey);
      last = e;
      read += 1;
      gapAttempt = 0;
      state = cut.state;
      entries.push(...(cut.inPeriod as JournalEntry[]));
      if (ends) {
        stoppedBy = 'end';
        break;
      }
    }
    if (stoppedBy !== undefined) break;
    if (rereadGap) {
      gapRereads -= 1;
      await pause(gapRereadDelayMs(++gapAttempt, random));
      // From the entry before the gap, read again (its copies skipped).
      overlap = true;
      continue;
    }
    // A page of entries read already (copies of one sequence) reads past them next; any other reads its last again.
    overlap = fresh.length > 0;
    if (page.length < limit) {
      // The balance counts entries past the last listed, up to the period's last by sequence: the index's lag behind
      // the newest (on AWS, a moment), or entries it never lists. Waited for while waits are left; then a gap at the
      // end (endGap).
      const expected = Math.min(balance.sequence, toSequence ?? Number.POSITIVE_INFINITY);
      const wait = (last?.sequence ?? readAfter) < expected ? waits.shift() : undefined;
      if (wait === undefined) stoppedBy = 'journal';
      else await pause(wait);
    }
  }
  // By sequence, the period's last entry read closes it, whatever stopped the read after (the journal's end, the
  // bound): a later entry cannot join it.
  if (toSequence !== undefined && last !== undefined && last.sequence >= toSequence) stoppedBy = 'end';
  const before = state.before as JournalEntry | undefined;
  const next = state.next as JournalEntry | undefined;
  // Not read: the journal's start (a fund holds 0 before its first entry), or the entry before --from-sequence,
  // missing; or the journal is empty (its balance counts no entry, its index lists none): the fund holds 0.
  const empty =
    last === undefined && readAfter > 0 && balance.sequence === 0
      ? (await ledger.journalAfter(account, 0, 1)).length === 0
      : false;
  const predecessor: Predecessor = before ?? startOf(empty ? 0 : readAfter);
  const plansMoved = await plansMovedFor(ledger, account, entries);
  const built = buildStatement({
    account,
    entries,
    before: predecessor,
    ...(next ? { next } : {}),
    ...(period.from && 'atMs' in period.from ? { fromMs: period.from.atMs } : {}),
    ...(stoppedBy === 'journal'
      ? {
          journalEnd: {
            sequence: balance.sequence,
            balance: balance.balance,
            ...(toSequence === undefined ? {} : { through: toSequence }),
          },
        }
      : {}),
    plansMoved,
  });
  // A gap may be entries the index does not list (a stack deployed before session 27): the journal itself says.
  const gaps = built.breaks.filter((b) => b.type === 'gap');
  // Entries past the balance read first (committed during the read) are judged by the balance read again, before the
  // look: the look then reads every entry that balance counts.
  if (gaps.some((b) => b.missing!.to > balance.sequence)) balance = await ledger.balance(account);
  const unindexed =
    gaps.length > 0
      ? await ledger.unindexedEntries(account, options.lookMax ?? STATEMENT_LOOK_MAX)
      : undefined;
  // None left out of the index: a gap the balance counts is the index's lag (read again already), as a rule; not when
  // the look read the whole journal (strongly consistent) and it holds fewer entries than the balance counts: those
  // are gone from the journal itself, not late in its index (review48-statement-lost-not-lagging).
  const lagMayExplain =
    unindexed !== undefined &&
    unindexed.found === 0 &&
    !(unindexed.complete && unindexed.read < balance.sequence);
  const statement = lagMayExplain
    ? { ...built, breaks: indexLagging(built.breaks, balance.sequence) }
    : built;
  const ended =
    stoppedBy === 'end' ||
    (stoppedBy === 'journal' && closedByTime(period, nowMs, balance.sequence, last?.sequence ?? readAfter));
  // Finance reads closed as final: a break may be an entry of the period not read yet (more48c-statement-closed-breaks).
  const closed = ended && statement.reconciles;
  const openBecause = closed ? undefined : ended ? 'breaks' : stoppedBy === 'max' ? 'max' : 'journal';
  return {
    period,
    entries,
    ...(before ? { before } : {}),
    ...(next ? { next } : {}),
    read,
    max,
    stoppedBy,
    ended,
    closed,
    ...(openBecause ? { openBecause } : {}),
    ...(ended && stoppedBy === 'journal' ? { settledAtMs: nowMs } : {}),
    balanceSequence: balance.sequence,
    phase: state.phase,
    ...(stoppedBy === 'max' && last ? { lastRead: last } : {}),
    statement,
    ...(unindexed && unindexed.found > 0 ? { unindexed } : {}),
  };
}

/**
 * What the plan of each fee or draw given back among `entries` moved before it, as the ledger judged it when it wrote
 * it: one read of each such liquidation's entries (entriesOf, a key range; a settlement planned again is rare).
 */
async function plansMovedFor(
  ledger: Pick<Ledger, 'entriesOf'>,
  account: string,
  entries: readonly JournalEntry[],
): Promise<Map<number, QuoteE6>> {
  const moved = new Map<number, QuoteE6>();
  const givenBack = entries.filter(givesBack);
  for (const reference of new Set(givenBack.map((e) => e.reference))) {
    const ofReference = givenBack.filter((e) => e.reference === reference);
    for (const [sequence, amount] of plansMovedOf(ofReference, await ledger.entriesOf(account, reference)))
      moved.set(sequence, amount);
  }
  return moved;
}

const startOf = (readAfter: number): Predecessor =>
  readAfter === 0 ? { start: true, sequence: 0, balanceAfter: 0n } : { start: true, sequence: readAfter };
