import { formatQuoteGrouped, type QuoteE6 } from './units.ts';
import { type PlannedMovement, planKeyOf } from './waterfall.ts';

/**
 * The insurance fund's statement for a period of its journal, as finance books it: opening and closing balances,
 * the movements between by kind, and each entry as two postings of one amount, the fund and the account on its
 * other side, named by the entry's kind (the chart below). Pure: the journal is read elsewhere
 * (shared/services/fund-statement.ts), a page at a time through its index by sequence.
 *
 * The fund is one account with an append-only journal; its double entry is implicit in each entry's kind. Postings
 * are the exchange's books: the fund holds money, an asset, so a debit raises it and a credit lowers it. (The
 * ledger's code says a payout "debits the fund", a bank statement's sense: the account is debited. Here that
 * payout is a debit of `bad-debt:shortfall` and a credit of the fund.)
 */

/** What the statement reads of a journal entry (the Ledger port's JournalEntry: the domain imports no port). */
export interface StatementEntry {
  readonly account: string;
  readonly idempotencyKey: string;
  /** Signed: positive raises the fund's balance. */
  readonly amount: QuoteE6;
  readonly balanceBefore: QuoteE6;
  readonly balanceAfter: QuoteE6;
  readonly kind: string;
  readonly reference: string;
  readonly atMs: number;
  readonly sequence: number;
  /** Who moved it, verified (the operator CLI's caller, as STS names it). */
  readonly actor?: string;
  /** The admin function's Lambda request id that moved it: CloudTrail's Invoke data event of it names who. */
  readonly invocationId?: string;
  /** Who the admin request said asks: UNVERIFIED. */
  readonly declaredOperator?: string;
}

/**
 * Every kind of entry written to a fund, by whom: the waterfall's settlements (PlannedMovement's kinds: a fee, which
 * holds ADL's close roundings credited to the fund, and is given back, negative, when a replan charges less; a
 * shortfall payout, negative, and given back, positive, when a replan pays less), the operator's `fund
 * deposit|withdraw` (the admin request's action), and `fund-start`, the simulation's opening balance (its in-process
 * ledger's first entry; no stack writes it). A statement meeting any other kind refuses (StatementError) rather than
 * book it to an account nobody chose, and both ledgers refuse to write one (the port's movementProblem).
 */
export type FundEntryKind = PlannedMovement['kind'] | 'deposit' | 'withdraw' | 'fund-start';

export interface ChartAccount {
  /** The account on the entry's other side. */
  readonly contra: string;
  /** What finance calls the kind's movement (the statement shows its net as the fund moved: shortfalls negative). */
  readonly label: string;
  /** Which way the code that writes the kind moves the fund: `in` raises it, `out` lowers it. */
  readonly moves: 'in' | 'out';
  /**
   * The movement the other way, when one is written: only by a settlement planned again, whose differences from what
   * its earlier plans moved are keyed `<key>:r<n>` (differenceMovements). Absent: nothing moves the kind the other way.
   */
  readonly givenBack?: string;
  /**
   * Written only by the simulation, never on a stack: a statement lists the kind (and its contra) only when it meets
   * one.
   */
  readonly simulationOnly?: true;
}

/** The chart of accounts: the contra account of each kind. A Record: a kind added to the types must be named. */
export const FUND_CHART: Readonly<Record<FundEntryKind, ChartAccount>> = {
  'liquidation-fee': {
    contra: 'fees:liquidation',
    label: 'fees earned',
    moves: 'in',
    givenBack: 'a fee given back',
  },
  'shortfall-payout': {
    contra: 'bad-debt:shortfall',
    label: 'shortfalls paid',
    moves: 'out',
    givenBack: 'a draw given back',
  },
  deposit: { contra: 'treasury', label: 'deposited', moves: 'in' },
  withdraw: { contra: 'treasury', label: 'withdrawn', moves: 'out' },
  // The fund a simulation starts with: an opening balance, booked against the owners' equity as books open.
  'fund-start': {
    contra: 'equity:opening-balance',
    label: 'opening entry',
    moves: 'in',
    simulationOnly: true,
  },
};

/** The kinds in the order statements list them. */
export const FUND_KINDS = Object.keys(FUND_CHART) as FundEntryKind[];

/** The kinds a stack's journal holds (not the simulation's alone): a statement lists each, 0 when none moved. */
export const STACK_KINDS = FUND_KINDS.filter((k) => FUND_CHART[k].simulationOnly === undefined);

/** The contra accounts a stack's journal books against, each once, in the chart's order. */
export const CONTRA_ACCOUNTS: readonly string[] = [...new Set(STACK_KINDS.map((k) => FUND_CHART[k].contra))];

export class StatementError extends Error {
  override readonly name = 'StatementError';
}

export const isCharted = (kind: string): kind is FundEntryKind => Object.hasOwn(FUND_CHART, kind);

/** The chart's account for an entry's kind; an unknown kind is an error naming the entry, never an "other". */
export function contraOf(entry: Pick<StatementEntry, 'kind' | 'sequence' | 'idempotencyKey'>): string {
  if (!isCharted(entry.kind))
    throw new StatementError(
      `statement/unknown-kind: entry ${entry.sequence} (key ${entry.idempotencyKey}) has kind ${JSON.stringify(entry.kind)}, ` +
        `which the fund's chart of accounts does not name (${FUND_KINDS.join(', ')}): nothing is booked for an unknown kind`,
    );
  return FUND_CHART[entry.kind].contra;
}

/**
 * Whether a movement would be a fee or a draw given back by a settlement planned again, as its kind, sign and key say:
 * a kind the chart moves the other way only so (givenBack), moving it that way, under a key ending `:r<n>`
 * (differenceMovements). The key alone proves nothing (`x:r1` is as easily written by hand): whether it is one is what
 * its plan moved before it (givenBackProblem).
 */
export function givesBack(m: Pick<StatementEntry, 'kind' | 'amount' | 'idempotencyKey'>): boolean {
  if (!isCharted(m.kind) || m.amount === 0n) return false;
  const { moves, givenBack } = FUND_CHART[m.kind];
  return (
    givenBack !== undefined &&
    m.amount > 0n !== (moves === 'in') &&
    planKeyOf(m.idempotencyKey) !== m.idempotencyKey
  );
}

/**
 * Why a movement's sign contradicts its kind, or undefined: a deposit or a fee that lowers the fund, a withdrawal or a
 * draw that raises it, but for a fee or a draw given back by a settlement planned again (a key ending `:r<n>`), which
 * is judged on what its plan moved before it (givenBackProblem). 0 moves nothing either way; a kind the chart does not
 * name is not judged here (chartProblem). The ledger refuses such a movement (the port's movementProblem), and
 * ledger-reconcile reports one in the journal (written by hand).
 */
export function signProblem(
  m: Pick<StatementEntry, 'kind' | 'amount' | 'idempotencyKey'>,
): string | undefined {
  if (!isCharted(m.kind) || m.amount === 0n) return undefined;
  const { moves, givenBack } = FUND_CHART[m.kind];
  if (m.amount > 0n === (moves === 'in') || givesBack(m)) return undefined;
  const [way, other] = moves === 'in' ? ['raises', 'lowers'] : ['lowers', 'raises'];
  return (
    `${m.kind} of ${signed(m.amount)} under key ${m.idempotencyKey}: kind ${m.kind} ${way} the fund, ` +
    (givenBack === undefined
      ? `never ${other} it`
      : `and ${other} it only as ${givenBack} by a settlement planned again (its key ending :r<n>)`)
  );
}

/** What a give-back's plan is judged on: journal entries of its liquidation (Ledger.entriesOf of its reference). */
export type PlanEntry = Pick<StatementEntry, 'idempotencyKey' | 'kind' | 'amount'> & {
  readonly sequence?: number;
};

/**
 * What a give-back's plan moved before it, as differenceMovements reads `applied`: the sum of `entries` (its
 * reference's journal entries) under its plan's key (planKeyOf) and of its kind, its own key aside; judging an entry
 * of the journal (one with a sequence), only those before it.
 */
export function movedByItsPlan(
  m: Pick<StatementEntry, 'idempotencyKey' | 'kind'> & { readonly sequence?: number },
  entries: readonly PlanEntry[],
): QuoteE6 {
  const plan = planKeyOf(m.idempotencyKey);
  let moved = 0n;
  for (const e of entries) {
    if (e.idempotencyKey === m.idempotencyKey || e.kind !== m.kind || planKeyOf(e.idempotencyKey) !== plan)
      continue;
    if (m.sequence !== undefined && e.sequence !== undefined && e.sequence >= m.sequence) continue;
    moved += e.amount;
  }
  return moved;
}

/**
 * Why a fee or a draw given back (givesBack) is none, or undefined: a settlement planned again gives back at most
 * what its earlier plans moved under the key (`planMoved`: movedByItsPlan), so what the key moved in all stays its
 * kind's way. One that gives back more, or whose plan moved nothing (the key without its suffix, or any other plan's,
 * never written: an `x:r1` by hand), is a movement against its kind; an undefined `planMoved` is nothing moved.
 */
export function givenBackProblem(
  m: Pick<StatementEntry, 'kind' | 'amount' | 'idempotencyKey'>,
  planMoved: QuoteE6 | undefined,
): string | undefined {
  if (!givesBack(m)) return undefined;
  const moved = planMoved ?? 0n;
  const { moves, givenBack } = FUND_CHART[m.kind as FundEntryKind];
  const total = moved + m.amount;
  if (moves === 'in' ? total >= 0n : total <= 0n) return undefined;
  const [way, other] = moves === 'in' ? ['raises', 'lowers'] : ['lowers', 'raises'];
  return (
    `${m.kind} of ${signed(m.amount)} under key ${m.idempotencyKey}: kind ${m.kind} ${way} the fund, and ${other} ` +
    `it only as ${givenBack} by a settlement planned again, at most what its plan's key ${planKeyOf(m.idempotencyKey)} ` +
    `moved before it (${moved === 0n ? 'nothing' : signed(moved)})`
  );
}

/**
 * What the plan of each give-back among `entries` (givesBack) moved before it (movedByItsPlan over `journal`, its
 * liquidation's entries), by its sequence: what a statement judges its give-backs on.
 */
export function plansMovedOf(
  entries: readonly StatementEntry[],
  journal: readonly PlanEntry[],
): Map<number, QuoteE6> {
  const moved = new Map<number, QuoteE6>();
  for (const e of entries) if (givesBack(e)) moved.set(e.sequence, movedByItsPlan(e, journal));
  return moved;
}

/**
 * What the chart of accounts finds wrong with a journal entry, or undefined: a kind it does not name (written by
 * another version or by hand: `fund statement` refuses it), or a sign its kind never moves (signProblem, and a give-back
 * beyond what its plan moved before it, `planMoved`: givenBackProblem). Neither changes what the journal sums to:
 * ledger-reconcile reports them apart from its breaks.
 */
export function chartProblem(
  entry: Pick<StatementEntry, 'sequence' | 'kind' | 'amount' | 'idempotencyKey'>,
  planMoved: QuoteE6 | undefined,
): string | undefined {
  if (!isCharted(entry.kind))
    return (
      `entry ${entry.sequence} (key ${entry.idempotencyKey}): kind ${JSON.stringify(entry.kind)} is not in the fund's chart ` +
      `of accounts (${FUND_KINDS.join(', ')}): written by another version or by hand; \`fund statement\` refuses it`
    );
  const sign = signProblem(entry) ?? givenBackProblem(entry, planMoved);
  return sign === undefined ? undefined : `entry ${entry.sequence}: ${sign}`;
}

/** One side of an entry: `debit` or `credit` of `account`, never negative. */
export interface Posting {
  readonly sequence: number;
  /** 1: the debit, 2: the credit. */
  readonly posting: 1 | 2;
  readonly account: string;
  readonly side: 'debit' | 'credit';
  readonly amount: QuoteE6;
  readonly entry: StatementEntry;
}

/**
 * An entry as two postings of |amount|: money into the fund debits the fund and credits its contra account, money
 * out debits the contra and credits the fund. The debit comes first. (An entry of 0, which nothing writes, posts
 * 0 as money in.)
 */
export function postingsOf(entry: StatementEntry): readonly [Posting, Posting] {
  const contra = contraOf(entry);
  const into = entry.amount >= 0n;
  const amount = into ? entry.amount : -entry.amount;
  const [debit, credit] = into ? [entry.account, contra] : [contra, entry.account];
  return [
    { sequence: entry.sequence, posting: 1, account: debit, side: 'debit', amount, entry },
    { sequence: entry.sequence, posting: 2, account: credit, side: 'credit', amount, entry },
  ];
}

// --- Where a period begins and ends ------------------------------------------------------------------------

/** A period's edge: an entry's sequence, a time (epoch ms), or none (the journal's first entry, or its end). */
export type PeriodEdge = { readonly sequence: number } | { readonly atMs: number } | undefined;

export interface Period {
  /** The first entry of the period: by sequence (that entry, inclusive) or the first stamped at or after the time. */
  readonly from: PeriodEdge;
  /**
   * Past the last entry of the period: by sequence (that entry is the last, inclusive) or the first entry from the
   * period's start on stamped at or after the time (excluded: consecutive periods by time share their edge).
   */
  readonly to: PeriodEdge;
}

/**
 * Entries' stamps (atMs) are not in sequence order: a settlement is stamped when its plan is made (a redelivery
 * within 30 s commits a plan made before), a deposit by the operator's clock, and the sequence is the order the
 * fund's balance took them. A period by time is therefore cut by sequence: it begins at the first entry, in sequence
 * order, stamped at or after `from`, and ends before the first entry from there on stamped at or after `to`. Every
 * entry lies in exactly one of consecutive periods, a period's closing balance is the next one's opening, and a
 * statement of a period once closed (its end read) never changes as the journal grows. An entry stamped before
 * `from` committed after the period's first entry is in the period (stampedBefore counts them).
 */
export const PERIOD_RULE =
  'by time, a period is a range of entries by sequence: from the first entry, in sequence order, stamped at or after --from, ' +
  'up to, not including, the first entry from there on stamped at or after --to';

/**
 * How long after a period's end by time an entry stamped before it may still commit: a settlement commits within 30 s
 * of its plan's stamp (a later delivery plans again: LATE_DELIVERY_MS) and the 60 s of the function applying it; a
 * deposit or withdrawal, applied by the operator's CLI (not the admin function) and stamped at the write (a withdrawal's
 * after its checks) by AWS's clock as its answers tell it (a second off at most: cli49-aws-clock,
 * review50-audit-stamp-cutoff), within its calls' timeouts. Twice the longest and more, so a function's clock a minute
 * or two off is covered too (test/unit/fund-statement.test.ts holds it to the timeouts). A CLI suspended mid-write is not: docs/DEPLOY.md says so.
 */
export const SETTLED_AFTER_MS = 10 * 60_000;

/**
 * A period by time with no entry past it read is closed all the same once nothing can still join it: its end passed
 * SETTLED_AFTER_MS before the fund's balance was read (`nowMs`, taken before that read), and the journal was read to
 * that balance's entry (`lastRead`, the last entry read: 0 for none), the entry before a period by sequence included.
 * Every entry committed later is then stamped after the end: past the period, or (none of it read yet) its start and
 * end at once, an empty period at the last entry read. By sequence, a period closes only once its last entry is
 * read: a later one may yet be written.
 */
export const closedByTime = (
  period: Period,
  nowMs: number,
  balanceSequence: number,
  lastRead: number,
): boolean =>
  period.to !== undefined &&
  'atMs' in period.to &&
  nowMs - period.to.atMs >= SETTLED_AFTER_MS &&
  balanceSequence === lastRead &&
  (period.from === undefined || !('sequence' in period.from) || lastRead >= period.from.sequence - 1);

/** Where a read of the journal stands against a period: before it, in it, or past its end. */
export interface CutState {
  readonly phase: 'before' | 'in' | 'after';
  /** The last entry read before the period (the one the opening balance must chain from). */
  readonly before?: StatementEntry;
  /** The first entry past the period: its end was read (the next period begins there). */
  readonly next?: StatementEntry;
}

export const CUT_START: CutState = { phase: 'before' };

const begins = (e: StatementEntry, from: PeriodEdge): boolean =>
  from === undefined || ('sequence' in from ? e.sequence >= from.sequence : e.atMs >= from.atMs);

const ends = (e: StatementEntry, to: PeriodEdge): boolean =>
  to !== undefined && ('sequence' in to ? e.sequence > to.sequence : e.atMs >= to.atMs);

/**
 * The next page of the journal, read in sequence order, against the period: the state after it and the page's
 * entries in the period. The period's first entry may end it at once (an empty period: nothing from `from` on is
 * stamped before `to`), and so may an entry past `to`'s sequence before any began (nothing up to it is from `from` on).
 */
export function cutPage(
  state: CutState,
  page: readonly StatementEntry[],
  period: Period,
): { readonly state: CutState; readonly inPeriod: readonly StatementEntry[] } {
  let { phase, before, next } = state;
  const inPeriod: StatementEntry[] = [];
  for (const entry of page) {
    if (phase === 'after') break;
    if (phase === 'before') {
      if (!begins(entry, period.from)) {
        // Past --to-sequence before the start by time: the period is empty, at its last sequence (a later entry's
        // balance would open it, and a statement going on from there skip the entries between).
        if (period.to !== undefined && 'sequence' in period.to && ends(entry, period.to)) {
          phase = 'after';
          next = entry;
          break;
        }
        before = entry;
        continue;
      }
      phase = 'in';
    }
    if (ends(entry, period.to)) {
      phase = 'after';
      next = entry;
      break;
    }
    inPeriod.push(entry);
  }
  return {
    state: { phase, ...(before ? { before } : {}), ...(next ? { next } : {}) },
    inPeriod,
  };
}

// --- The statement -----------------------------------------------------------------------------------------

/** Where the journal does not chain: the statement does not reconcile. */
export interface ChainBreak {
  /**
   * gap: entries missing; lagging: a gap the fund's balance counts, not listed by the journal's index when read again
   * and not left out of it (indexLagging: most likely the index's lag); duplicate: a second entry of one sequence;
   * chain: balanceBefore is not the previous entry's balanceAfter; arithmetic: balanceAfter is not balanceBefore +
   * amount; start: the journal's first entry does not begin from 0.
   */
  readonly type: 'gap' | 'lagging' | 'duplicate' | 'chain' | 'arithmetic' | 'start';
  /** The entry it is found at. */
  readonly sequence: number;
  /** The entry before it, when one is read. */
  readonly previous?: number;
  /** balanceBefore less the previous balanceAfter (gap, chain, start) or balanceAfter less before + amount. */
  readonly amount?: QuoteE6;
  /** A gap's entries missing, first and last (not in --json: the message names them). */
  readonly missing?: { readonly from: number; readonly to: number };
  readonly message: string;
}

const signed = (v: QuoteE6): string => `${v > 0n ? '+' : ''}${formatQuoteGrouped(v)}`;

const missing = (from: number, to: number): string =>
  from === to ? `entry ${from}` : `entries ${from} to ${to}`;

/**
 * What is known of the entry before a period: the entry itself, or where the read began when it was not read.
 * `{ start: true, sequence: 0, balanceAfter: 0n }`: the read began at the journal's start (the fund holds 0 before
 * its first entry); another sequence: the read began past that one and found no entry before the period, its
 * balance unknown.
 */
export type Predecessor =
  | StatementEntry
  | { readonly start: true; readonly sequence: number; readonly balanceAfter?: QuoteE6 };

const isEntry = (p: Predecessor): p is StatementEntry => !('start' in p);

/**
 * The breaks in `entries` (in sequence order), the first checked against `before`, and the entries missing between
 * the last and `next`, the first entry past the period, when its end was read. Not journal-audit's extendAudit: that
 * audits a prefix from entry 1 against its running sum and stops at the first entry missing, where a statement
 * begins mid-journal and goes on past a gap (the period's totals still add up), naming what each break moved.
 */
export function chainBreaks(
  before: Predecessor | undefined,
  entries: readonly StatementEntry[],
  next?: StatementEntry,
): ChainBreak[] {
  const breaks: ChainBreak[] = [];
  let previous: Predecessor | undefined = before;
  for (const entry of entries) {
    const s = entry.sequence;
    if (previous !== undefined) {
      const p = previous.sequence;
      const after = previous.balanceAfter;
      const gap = after === undefined ? undefined : entry.balanceBefore - after;
      const atStart = !isEntry(previous);
      if (!isEntry(previous) && s > p + 1) {
        breaks.push({
          type: 'gap',
          sequence: s,
          ...(gap === undefined ? {} : { amount: gap }),
          missing: { from: p + 1, to: s - 1 },
          message:
            p === 0
              ? `${missing(1, s - 1)} missing: the journal's first entry is ${s} (balance ${formatQuoteGrouped(entry.balanceBefore)} before it: ${signed(gap!)} in no statement)`
              : `${missing(p + 1, s - 1)} missing just before the period's first entry ${s}: its opening balance is not checked against the entry before it`,
        });
      } else if (atStart && gap !== undefined && gap !== 0n) {
        breaks.push({
          type: 'start',
          sequence: s,
          amount: gap,
          message: `entry ${s}: balanceBefore ${formatQuoteGrouped(entry.balanceBefore)}, where the fund's first entry begins from 0 (${signed(gap)})`,
        });
      } else if (isEntry(previous) && s === p) {
        breaks.push({
          type: 'duplicate',
          sequence: s,
          previous: p,
          message: `entry ${s} appears twice (keys ${previous.idempotencyKey} and ${entry.idempotencyKey}): a movement the balance counted once at most`,
        });
      } else if (isEntry(previous) && s > p + 1) {
        // Missing just before the period's first entry, they may be of the period before (their stamps are unknown).
        const where =
          previous === before
            ? `between entry ${p}, the last before the period, and entry ${s}, its first (of this period or the one before, unknown)`
            : `between entry ${p} and entry ${s}`;
        breaks.push({
          type: 'gap',
          sequence: s,
          previous: p,
          amount: gap!,
          missing: { from: p + 1, to: s - 1 },
          message: `${missing(p + 1, s - 1)} missing ${where}: balance ${formatQuoteGrouped(previous.balanceAfter)} after entry ${p}, ${formatQuoteGrouped(entry.balanceBefore)} before entry ${s}, ${signed(gap!)} not in this statement`,
        });
      } else if (isEntry(previous) && gap !== 0n) {
        breaks.push({
          type: 'chain',
          sequence: s,
          previous: p,
          amount: gap!,
          message: `entry ${s}: balanceBefore ${formatQuoteGrouped(entry.balanceBefore)} != entry ${p}'s balanceAfter ${formatQuoteGrouped(previous.balanceAfter)} (${signed(gap!)})`,
        });
      }
    }
    const off = entry.balanceAfter - (entry.balanceBefore + entry.amount);
    if (off !== 0n)
      breaks.push({
        type: 'arithmetic',
        sequence: s,
        amount: off,
        message: `entry ${s}: balanceAfter ${formatQuoteGrouped(entry.balanceAfter)} != balanceBefore ${formatQuoteGrouped(entry.balanceBefore)} + amount ${formatQuoteGrouped(entry.amount)} (${signed(off)})`,
      });
    previous = entry;
  }
  // Entries missing just before the first entry past the period may be of the period: their stamps are unknown. (The
  // rest of that entry's chain is the next period's start.)
  if (next && previous && next.sequence > previous.sequence + 1) {
    const p = previous.sequence;
    const s = next.sequence;
    const after = previous.balanceAfter;
    const gap = after === undefined ? undefined : next.balanceBefore - after;
    breaks.push({
      type: 'gap',
      sequence: s,
      ...(isEntry(previous) ? { previous: p } : {}),
      ...(gap === undefined ? {} : { amount: gap }),
      missing: { from: p + 1, to: s - 1 },
      message: `${missing(p + 1, s - 1)} missing ${isEntry(previous) ? `between entry ${p} and entry ${s}` : `before entry ${s}`}, the first past the period: of this period or the next, unknown${
        gap === undefined
          ? ''
          : ` (balance ${formatQuoteGrouped(after!)} ${isEntry(previous) ? `after entry ${p}` : "at the journal's start"}, ${formatQuoteGrouped(next.balanceBefore)} before entry ${s}: ${signed(gap)} in neither statement)`
      }`,
    });
  }
  return breaks;
}

/** A kind's movements: money into the fund and out of it, each summed as a positive amount. */
export interface KindTotal {
  readonly kind: FundEntryKind;
  readonly contra: string;
  readonly entries: number;
  readonly in: QuoteE6;
  readonly out: QuoteE6;
  /** in - out: the fund's net movement of this kind. */
  readonly net: QuoteE6;
}

export interface AccountTotal {
  readonly account: string;
  readonly debit: QuoteE6;
  readonly credit: QuoteE6;
}

export interface FundStatement {
  readonly entries: number;
  readonly firstSequence?: number;
  readonly lastSequence?: number;
  /**
   * balanceBefore of the period's first entry; with none, the balanceAfter of the entry before the period (0 at
   * the journal's start); undefined when neither is known.
   */
  readonly opening?: QuoteE6;
  /** balanceAfter of the period's last entry; with none, the opening. */
  readonly closing?: QuoteE6;
  /** The sum of the period's amounts. */
  readonly movements: QuoteE6;
  /** closing - (opening + movements): 0 when the identity holds. */
  readonly difference?: QuoteE6;
  readonly breaks: readonly ChainBreak[];
  /** No break, and opening + movements = closing. */
  readonly reconciles: boolean;
  /**
   * Every kind of the chart a stack writes, in its order (0 for those the period has none of), and the simulation's
   * `fund-start` when the period holds one.
   */
  readonly kinds: readonly KindTotal[];
  /** The fund's account first, then the contra account of each kind listed, in the chart's order. */
  readonly accounts: readonly AccountTotal[];
  readonly totals: { readonly debit: QuoteE6; readonly credit: QuoteE6 };
  /** Entries of the period stamped before its --from (committed after its first entry). */
  readonly stampedBefore: readonly number[];
  /**
   * Deposits and withdrawals of the period that name nobody: no actor and no invocation id (the admin function's of
   * before session 51, and a deposit whose caller STS could not name); a blank one (whitespace alone) names nobody
   * either (last50-statement-blank-actor). An auditor asks who moved them: CloudTrail's data events, by time alone.
   */
  readonly unnamed: readonly number[];
  /**
   * Entries of the period whose sign their kind never moves (signProblem: a deposit or a fee that lowers the fund, a
   * withdrawal or a draw that raises it, none given back by a settlement planned again: keyed `:r<n>` and within what
   * its plan moved before it, givenBackProblem), booked as their kind's movement the other way. The ledger refuses such
   * a movement, so one was written by hand; ledger-reconcile paged for it once, and a statement names it each time
   * (review51-books-statement-against-kind).
   */
  readonly againstKind: readonly number[];
  /**
   * Deposits and withdrawals of the period moved through the admin function (an invocation id) and named by no
   * actor: who invoked it is CloudTrail's Invoke data event of that request id; the declared operator is unverified.
   */
  readonly invoked: readonly InvokedMovement[];
}

/** A fund movement of the admin function: its entry, the invocation to look up in CloudTrail, who it said asked. */
export interface InvokedMovement {
  readonly sequence: number;
  readonly invocationId: string;
  /** As the request declared it: UNVERIFIED. */
  readonly declaredOperator?: string;
}

export interface StatementInput {
  /** The fund's account (the postings' name for it). */
  readonly account: string;
  /** The period's entries, in sequence order. */
  readonly entries: readonly StatementEntry[];
  /** What is known of the entry before them (Predecessor); undefined: nothing. */
  readonly before?: Predecessor;
  /** The first entry read past the period, when its end was read. */
  readonly next?: StatementEntry;
  /** The period's --from time, for the entries stamped before it. */
  readonly fromMs?: number;
  /**
   * When the read reached the journal's end: the fund's balance item as read before the journal (every entry up to
   * its sequence had committed). Entries it counts that the read did not list are missing at the end.
   */
  readonly journalEnd?: JournalEnd;
  /**
   * What the plan of each give-back of the period (givesBack) moved before it (plansMovedOf: its liquidation's entries
   * read), by the give-back's sequence: one not here moved nothing, and is named against its kind.
   */
  readonly plansMoved?: ReadonlyMap<number, QuoteE6>;
}

export interface JournalEnd {
  readonly sequence: number;
  readonly balance: QuoteE6;
  /**
   * The period's last entry by sequence (--to-sequence): entries the balance counts past it are not the period's,
   * and what those up to it moved is known only when the balance is at it.
   */
  readonly through?: number;
}

/**
 * The entries the balance item counts past the last one read (`last`: an entry, or where the read began), when the
 * read reached the journal's end: committed, and not listed by the journal's index; up to the period's last entry by
 * sequence (`through`) at most, what they moved measured to it (unknown when the balance is past it).
 */
export function endGap(
  last: Predecessor | undefined,
  journalEnd: StatementInput['journalEnd'],
): ChainBreak | undefined {
  if (!last || !journalEnd) return undefined;
  const n = Math.min(journalEnd.sequence, journalEnd.through ?? Number.POSITIVE_INFINITY);
  if (n <= last.sequence) return undefined;
  // The balance after entry n: the balance item's, when it is at n (past the period's end, unknown).
  const atN = journalEnd.sequence === n ? journalEnd.balance : undefined;
  const gap = last.balanceAfter === undefined || atN === undefined ? undefined : atN - last.balanceAfter;
  const them = n === last.sequence + 1 ? 'it' : 'them';
  const whose =
    journalEnd.through === undefined
      ? ' (of this period or a later one, unknown)'
      : ` (of this period, which ends at entry ${journalEnd.through})`;
  const moved =
    atN === undefined
      ? `it is at entry ${journalEnd.sequence}, past the period's last: what ${them} moved is unknown`
      : `it is at entry ${n}${gap === undefined ? '' : `, ${signed(gap)} from ${isEntry(last) ? `entry ${last.sequence}` : "the journal's start"}`}`;
  return {
    type: 'gap',
    sequence: n,
    ...(isEntry(last) ? { previous: last.sequence } : {}),
    ...(gap === undefined ? {} : { amount: gap }),
    missing: { from: last.sequence + 1, to: n },
    message:
      `${missing(last.sequence + 1, n)} missing at the journal's end: the fund's balance, read before the journal, counts ` +
      `${them} (${moved}) and the journal's index by sequence does not list ${them}${whose}`,
  };
}

/**
 * Gaps the fund's balance counts (at `balanceSequence`: committed), still not listed by the journal's index when read
 * again, and none of them an entry the index never listed (a look found none): the index's lag, as a rule (on AWS a
 * global secondary index, a moment behind the journal), said as `lagging` rather than entries missing. A gap the
 * balance does not count (entries past it, or a balance set back) stays a gap; so does every gap when the look found
 * entries left out of the index (the caller does not ask then).
 */
export function indexLagging(breaks: readonly ChainBreak[], balanceSequence: number): ChainBreak[] {
  return breaks.map((b) => {
    if (b.type !== 'gap' || b.missing === undefined || b.missing.to > balanceSequence) return b;
    const them = b.missing.from === b.missing.to ? 'it' : 'them';
    return {
      ...b,
      type: 'lagging',
      message:
        `index lagging: ${b.message}; the fund's balance (at entry ${balanceSequence}) counts ${them} and no look finds ${them} ` +
        `left out of the index, which lists new entries a moment late: run the statement again in a minute (still not listed then: missing)`,
    };
  });
}

/**
 * The statement of a period: balances, movements by kind and by account (every entry posted twice: debits equal
 * credits), the chain's breaks, and whether opening + movements = closing. Throws StatementError on a kind the
 * chart does not name.
 */
export function buildStatement(input: StatementInput): FundStatement {
  const { account, entries, before } = input;
  // The simulation's kinds only when the period holds one: a stack's statement never names them.
  const listed = FUND_KINDS.filter(
    (k) => FUND_CHART[k].simulationOnly === undefined || entries.some((e) => e.kind === k),
  );
  const kinds = new Map<FundEntryKind, { entries: number; in: QuoteE6; out: QuoteE6 }>(
    listed.map((k) => [k, { entries: 0, in: 0n, out: 0n }]),
  );
  const contras = new Set(listed.map((k) => FUND_CHART[k].contra));
  const accounts = new Map<string, { debit: QuoteE6; credit: QuoteE6 }>(
    [account, ...contras].map((a) => [a, { debit: 0n, credit: 0n }]),
  );
  let movements = 0n;
  let debit = 0n;
  let credit = 0n;
  const stampedBefore: number[] = [];
  const unnamed: number[] = [];
  const againstKind: number[] = [];
  const invoked: InvokedMovement[] = [];
  for (const entry of entries) {
    if (entry.account !== account)
      throw new StatementError(
        `statement/other-account: entry ${entry.sequence} (key ${entry.idempotencyKey}) is of account ${entry.account}, not ${account}`,
      );
    for (const p of postingsOf(entry)) {
      const total = accounts.get(p.account)!;
      if (p.side === 'debit') {
        total.debit += p.amount;
        debit += p.amount;
      } else {
        total.credit += p.amount;
        credit += p.amount;
      }
    }
    const k = kinds.get(entry.kind as FundEntryKind)!;
    k.entries += 1;
    if (entry.amount >= 0n) k.in += entry.amount;
    else k.out -= entry.amount;
    movements += entry.amount;
    if (input.fromMs !== undefined && entry.atMs < input.fromMs) stampedBefore.push(entry.sequence);
    if ((entry.kind === 'deposit' || entry.kind === 'withdraw') && !entry.actor?.trim()) {
      const invocationId = entry.invocationId?.trim();
      if (!invocationId) unnamed.push(entry.sequence);
      else
        invoked.push({
          sequence: entry.sequence,
          invocationId,
          ...(entry.declaredOperator === undefined ? {} : { declaredOperator: entry.declaredOperator }),
        });
    }
    if ((signProblem(entry) ?? givenBackProblem(entry, input.plansMoved?.get(entry.sequence))) !== undefined)
      againstKind.push(entry.sequence);
  }
  const first = entries[0];
  const last = entries[entries.length - 1];
  const opening = first?.balanceBefore ?? before?.balanceAfter;
  const closing = last?.balanceAfter ?? opening;
  const difference =
    opening === undefined || closing === undefined ? undefined : closing - (opening + movements);
  const breaks = chainBreaks(before, entries, input.next);
  const atEnd = endGap(last ?? before, input.journalEnd);
  if (atEnd) breaks.push(atEnd);
  return {
    entries: entries.length,
    ...(first ? { firstSequence: first.sequence, lastSequence: last!.sequence } : {}),
    ...(opening === undefined ? {} : { opening }),
    ...(closing === undefined ? {} : { closing }),
    movements,
    ...(difference === undefined ? {} : { difference }),
    breaks,
    // An empty period with no entry known before it (a --from-sequence past the journal's end) has nothing to break.
    reconciles: breaks.length === 0 && (difference === undefined ? entries.length === 0 : difference === 0n),
    kinds: listed.map((kind) => {
      const k = kinds.get(kind)!;
      return { kind, contra: FUND_CHART[kind].contra, ...k, net: k.in - k.out };
    }),
    accounts: [...accounts].map(([name, t]) => ({ account: name, ...t })),
    totals: { debit, credit },
    stampedBefore,
    unnamed,
    againstKind,
    invoked,
  };
}
