import { DynamoLedger } from '../../shared/adapters/aws/ledger.ts';
import { quoteCurrency, type RiskConfig } from '../../shared/domain/config.ts';
import {
  FUND_CHART,
  PERIOD_RULE,
  type Period,
  type PeriodEdge,
  postingsOf,
  SETTLED_AFTER_MS,
  STACK_KINDS,
  StatementError,
} from '../../shared/domain/fund-statement.ts';
import { entriesWord, unindexedAmong } from '../../shared/domain/journal-audit.ts';
import { formatQuote, formatQuoteGrouped, type QuoteE6 } from '../../shared/domain/units.ts';
import { counted, iso } from '../../shared/domain/words.ts';
import { type AdviceTarget, awsClockOf, backstopCommand } from '../../shared/local/deployment.ts';
import type { JournalEntry } from '../../shared/ports/index.ts';
import { parseTime } from '../../shared/prices/parse.ts';
import { INSURANCE_ACCOUNT } from '../../shared/services/context.ts';
import {
  readFundStatement,
  STATEMENT_MAX_DEFAULT,
  STATEMENT_MAX_LIMIT,
  type StatementRead,
} from '../../shared/services/fund-statement.ts';
import { intOption, UsageError } from '../args.ts';
import type { ExitCode } from '../exit-codes.ts';
import { printable, printableFields, printableJson } from '../printable.ts';
import { CONFIG_FILE_HELP } from '../risk-config.ts';
import type { CliIo } from '../simulate.ts';
import { riskConfigFor, type TargetValues, withTarget } from './common.ts';

/**
 * `backstop fund statement`: the insurance fund's statement for a period, for finance's books (opening and closing
 * balances, movements by kind, every entry as two postings). The period's options are checked before the target is
 * opened: a bad one reads nothing.
 */

export const STATEMENT_SYNOPSIS = `       backstop fund statement [--from TIME | --from-sequence N] [--to TIME | --to-sequence N]
                               [--max N] [--json | --csv] [--config FILE.json]
`;

/** The chart of accounts a stack's journal books, a kind and its contra account a line. */
const CHART_LINES = STACK_KINDS.map(
  (kind) => `                           ${kind.padEnd(18)}${FUND_CHART[kind].contra}`,
).join('\n');

export const STATEMENT_USAGE = `statement: the insurance fund's statement for a period of its journal, read through the journal's index
  by sequence (never a Scan), for finance's books: the opening balance (balanceBefore of the period's first
  entry), the movements by kind, the closing balance (balanceAfter of its last), and whether opening + movements
  = closing and every entry chains on the one before (a gap, an entry twice, a balanceBefore that is not the
  previous balanceAfter: each named, and the statement does not reconcile; a gap is read again first, and one
  the fund's balance counts said as the index's lag). Every entry is two postings of its amount (double entry:
  the fund, an asset a debit raises, and the account its kind books against), debits equal to credits:
${CHART_LINES}
  --from TIME            the period's start: ISO 8601, a date (2026-01-01: its midnight UTC) or a date-time
                         (2026-01-01T00:00:00Z; without an offset, UTC)
  --to TIME              the period's end, excluded: consecutive periods share it (--from 2026-01-01 --to
                         2026-02-01). Entries are stamped when their movement was planned, not in sequence
                         order, so a period by time is a range of entries by sequence: from the first entry, in
                         sequence order, stamped at or after --from, up to, not including, the first entry from
                         there on stamped at or after --to (each entry in one period, each period's closing the
                         next one's opening)
  --from-sequence N      the period's first entry by its sequence (what a closed statement says to go on from)
  --to-sequence N        the period's last entry by its sequence (included)
                         Without a start, the journal's first entry; without an end, its last (the period is
                         open). A start by time reads the journal from its first entry to find it. A period by
                         time is closed once an entry past it is read, or once its end passed ${SETTLED_AFTER_MS / 60_000} minutes
                         before the fund's balance, read to its last entry, was read (nothing can still join it),
                         by AWS's clock as its answers' Date headers give it, not this machine's
  --max N                journal entries read at most, those read to find a start by time included (default
                         ${STATEMENT_MAX_DEFAULT.toLocaleString('en-US')}, at most ${STATEMENT_MAX_LIMIT.toLocaleString('en-US')}), and one more to know whether there are more (a
                         journal of N entries is read whole, a period whose next entry is that one is closed):
                         a read stopped before the period's end says so, and its statement covers the entries
                         read (exit 3)
  --json                 one JSON object (docs/DEPLOY.md, "Month-end close"), amounts exact decimal strings
  --csv                  the postings, one a line (RFC 4180: a header, CRLF), for an accounting system; what
                         does not reconcile, was cut short or is still open (its end not reached), and entries
                         that name nobody or move the fund against their kind, are said on stderr
  --config FILE.json     risk configuration: the fund's quote currency (required on a stack of other rules):
${CONFIG_FILE_HELP}  Exit 0: it reconciles; 1: it does not (or an entry's kind is not in the chart); 3: cut short by --max.
`;

export interface StatementValues extends TargetValues {
  readonly from?: string;
  readonly to?: string;
  readonly 'from-sequence'?: string;
  readonly 'to-sequence'?: string;
  readonly max?: string;
  readonly json?: boolean;
  readonly csv?: boolean;
  readonly config?: string;
}

/** A date (its midnight UTC) or a date-time; without an offset, UTC (the price files' rule). */
const ISO =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/i;

/** --from / --to: an ISO 8601 date or date-time, as epoch ms; anything else a UsageError saying so. */
export function statementTime(name: 'from' | 'to', value: string): number {
  const text = value.trim();
  const bad = (why: string) =>
    new UsageError(
      `--${name}: "${value}" is not ${why} (ISO 8601: 2026-01-31, 2026-01-31T00:00:00Z, 2026-01-31T01:00:00+01:00)`,
    );
  const m = ISO.exec(text);
  if (!m) throw bad('a date or date-time');
  const [, y, mo, d, h = '00', mi = '00', s = '00'] = m;
  // Date.parse rolls 2026-02-30 over to March, with an offset too: the fields are checked as written.
  const day = new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d)));
  const calendar =
    day.getUTCFullYear() === Number(y) &&
    day.getUTCMonth() === Number(mo) - 1 &&
    day.getUTCDate() === Number(d) &&
    Number(h) < 24 &&
    Number(mi) < 60 &&
    Number(s) < 60;
  if (!calendar) throw bad('a calendar date-time');
  try {
    return parseTime(m[4] === undefined ? `${text}T00:00:00Z` : text, 0);
  } catch {
    throw bad('a date-time after 1970, to the millisecond');
  }
}

/** The period the options name, refused (UsageError) before anything is read when it cannot be one. */
export function statementPeriod(values: StatementValues): Period {
  for (const [a, b] of [
    ['from', 'from-sequence'],
    ['to', 'to-sequence'],
    ['json', 'csv'],
  ] as const)
    if (values[a] !== undefined && values[b] !== undefined)
      throw new UsageError(`fund statement: --${a} or --${b}, not both`);
  const edge = (time: 'from' | 'to', sequence: 'from-sequence' | 'to-sequence'): PeriodEdge => {
    const t = values[time];
    if (t !== undefined) return { atMs: statementTime(time, t) };
    const n = intOption(sequence, values[sequence], 1, Number.MAX_SAFE_INTEGER);
    return n === undefined ? undefined : { sequence: n };
  };
  const from = edge('from', 'from-sequence');
  const to = edge('to', 'to-sequence');
  if (from && to && 'atMs' in from && 'atMs' in to && from.atMs >= to.atMs)
    throw new UsageError(
      `fund statement: --from ${new Date(from.atMs).toISOString()} is not before --to ${new Date(to.atMs).toISOString()} (the end is excluded: the period would hold nothing)`,
    );
  if (from && to && 'sequence' in from && 'sequence' in to && from.sequence > to.sequence)
    throw new UsageError(
      `fund statement: --from-sequence ${from.sequence} is after --to-sequence ${to.sequence}`,
    );
  return { from, to };
}

/** Runs the statement on the target (its options already parsed by runFund). */
export async function runFundStatement(
  values: StatementValues,
  io: CliIo,
): Promise<ExitCode<'fund statement'>> {
  const period = statementPeriod(values);
  const max = intOption('max', values.max, 1, STATEMENT_MAX_LIMIT) ?? STATEMENT_MAX_DEFAULT;
  return withTarget(values, async (deployment) => {
    // The quote currency the fund is kept in: the deployed rules' (a stack of other rules needs --config).
    const config: RiskConfig = riskConfigFor(deployment, values.config);
    const ledger = new DynamoLedger(deployment.clients.dynamo, deployment.names.tables.ledger);
    let read: StatementRead;
    try {
      // A period by time closes by AWS's clock, not the machine's (cli49-aws-clock): the stamps it is judged against are
      // the functions', and the CLI's by AWS's clock too. Set at the target's opening, as a rule.
      const clock = awsClockOf(deployment);
      await clock.sync(() => ledger.balance(INSURANCE_ACCOUNT));
      read = await readFundStatement(ledger, INSURANCE_ACCOUNT, period, {
        max,
        nowMs: () => clock.nowMs(),
        ...(io.pause ? { pause: io.pause } : {}),
      });
    } catch (error) {
      if (!(error instanceof StatementError)) throw error;
      io.stderr.write(`backstop: fund statement: ${printable(error.message)}\n`);
      return 1;
    }
    const quote = quoteCurrency(config);
    if (values.csv) {
      io.stdout.write(renderPostingsCsv(read.entries, quote));
      for (const line of csvWarnings(read, deployment))
        io.stderr.write(`backstop: fund statement: ${printable(line)}\n`);
    } else if (values.json) io.stdout.write(`${printableJson(statementJson(read, quote))}\n`);
    else io.stdout.write(statementText(read, quote, deployment));
    return statementExitCode(read);
  });
}

/** 1: it does not reconcile; 3: the read stopped at its bound before the period's end; else 0. */
export const statementExitCode = (read: StatementRead): ExitCode<'fund statement'> =>
  !read.statement.reconciles ? 1 : read.stoppedBy === 'max' ? 3 : 0;

const grouped = (v: QuoteE6): string => formatQuoteGrouped(v);

const edgeJson = (edge: PeriodEdge) =>
  edge === undefined ? null : 'atMs' in edge ? { time: iso(edge.atMs) } : { sequence: edge.sequence };

const entryRef = (e: JournalEntry | undefined) =>
  e === undefined ? null : { sequence: e.sequence, at: iso(e.atMs) };

/**
 * The statement as one JSON object: a stable shape, every key always present (null when not known), amounts exact
 * decimal strings of the quote currency, times ISO 8601 (docs/DEPLOY.md, "Month-end close").
 */
export function statementJson(read: StatementRead, quote: string) {
  const s = read.statement;
  const money = (v: QuoteE6 | undefined) => (v === undefined ? null : formatQuote(v));
  return {
    account: INSURANCE_ACCOUNT,
    currency: quote,
    period: {
      from: edgeJson(read.period.from),
      to: edgeJson(read.period.to),
      firstSequence: s.firstSequence ?? null,
      lastSequence: s.lastSequence ?? null,
      entries: s.entries,
      closed: read.closed,
      openBecause: read.openBecause ?? null,
      next: entryRef(read.next),
      continueFrom: continueFrom(read) ?? null,
      stampedBeforeFrom: s.stampedBefore,
    },
    unnamedMovements: s.unnamed,
    againstKind: s.againstKind,
    invokedMovements: s.invoked.map((m) => ({
      sequence: m.sequence,
      invocationId: m.invocationId,
      declaredOperator: m.declaredOperator ?? null,
    })),
    read: read.read,
    max: read.max,
    complete: read.stoppedBy !== 'max',
    stoppedAt: read.stoppedBy === 'max' ? entryRef(read.lastRead) : null,
    stoppedBeforeStart: read.stoppedBy === 'max' && read.phase === 'before',
    opening: money(s.opening),
    movements: formatQuote(s.movements),
    closing: money(s.closing),
    difference: money(s.difference),
    reconciles: s.reconciles,
    breaks: s.breaks.map((b) => ({
      type: b.type,
      sequence: b.sequence,
      previous: b.previous ?? null,
      amount: money(b.amount),
      message: b.message,
    })),
    unindexed:
      read.unindexed === undefined
        ? null
        : {
            found: read.unindexed.found,
            lowest: read.unindexed.lowest ?? null,
            read: read.unindexed.read,
            complete: read.unindexed.complete,
          },
    kinds: s.kinds.map((k) => ({
      kind: k.kind,
      contra: k.contra,
      entries: k.entries,
      in: formatQuote(k.in),
      out: formatQuote(k.out),
      net: formatQuote(k.net),
    })),
    accounts: s.accounts.map((a) => ({
      account: a.account,
      debit: formatQuote(a.debit),
      credit: formatQuote(a.credit),
    })),
    totals: {
      debit: formatQuote(s.totals.debit),
      credit: formatQuote(s.totals.credit),
      balanced: s.totals.debit === s.totals.credit,
    },
  };
}

/**
 * The postings' CSV columns, in order. `fundBalanceAfter`, the fund's balance after the entry on both its postings:
 * the CSV alone then ties to the opening and closing and chains entry by entry (audit50-csv-balance). Named for the
 * fund: on the contra account's row it is still the fund's, which a bare `balanceAfter` read as that account's
 * (review50-audit-csv-fund-balance). Then who moved a deposit or withdrawal beyond `actor` (verified): the admin
 * function's `invocationId` (CloudTrail's Invoke data event of it names the caller) and the `declaredOperator` its
 * request gave (unverified); added last, so a script reading by position reads the others where they were.
 */
export const POSTING_COLUMNS = [
  'sequence',
  'posting',
  'time',
  'account',
  'debit',
  'credit',
  'currency',
  'kind',
  'reference',
  'key',
  'actor',
  'fundBalanceAfter',
  'invocationId',
  'declaredOperator',
] as const;

/** A field as RFC 4180 writes it: quoted, its quotes doubled, when it holds a comma, a quote, CR or LF. */
const csvField = (text: string): string => (/[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text);

/** Every posting of `entries`, one a line, with a header; CRLF line ends (RFC 4180). */
function renderPostingsCsv(entries: readonly JournalEntry[], quote: string): string {
  const lines = [POSTING_COLUMNS.join(',')];
  for (const entry of entries) {
    for (const p of postingsOf(entry)) {
      const amount = formatQuote(p.amount);
      lines.push(
        [
          String(p.sequence),
          String(p.posting),
          iso(entry.atMs),
          p.account,
          p.side === 'debit' ? amount : '',
          p.side === 'credit' ? amount : '',
          quote,
          entry.kind,
          entry.reference,
          entry.idempotencyKey,
          entry.actor ?? '',
          formatQuote(entry.balanceAfter),
          entry.invocationId ?? '',
          entry.declaredOperator ?? '',
        ]
          .map(csvField)
          .join(','),
      );
    }
  }
  return `${lines.map((l) => `${l}\r\n`).join('')}`;
}

/**
 * Where the next statement goes on from, once this period is closed: the entry after its last (after the one before
 * it, when it has none). With no entry missing that is `next`, the first read past it; with some, they are in the next
 * statement rather than in none.
 */
function continueFrom(read: StatementRead): number | undefined {
  if (!read.closed) return undefined;
  const last = read.entries[read.entries.length - 1] ?? read.before;
  // None read: the period empty at the journal's first entry (or at its start, closed by time: the journal is empty).
  return last === undefined ? (read.next?.sequence ?? 1) : last.sequence + 1;
}

/** Breaks listed in the text at most; --json lists them all. */
const BREAKS_LISTED = 20;

/** Where the read stopped, in words; undefined for a period ended (its end read, or passed: closed or not). */
function stoppedLine(read: StatementRead): string | undefined {
  const { period } = read;
  if (read.stoppedBy === 'max') {
    const at = read.lastRead ? ` at entry ${read.lastRead.sequence} (${iso(read.lastRead.atMs)})` : '';
    if (read.phase === 'before')
      return `STOPPED after ${entriesWord(read.read)} read (--max ${read.max})${at}, before the period's start: nothing of it read; run again with a larger --max, or start from a sequence (--from-sequence, a statement's next)`;
    const rest = read.lastRead
      ? `; the rest: --from-sequence ${read.lastRead.sequence + 1}${period.to ? ' with the same end' : ''}`
      : '';
    return `CUT SHORT after ${entriesWord(read.read)} read (--max ${read.max})${at}, before the period's end: this statement covers the entries read${rest}, or a larger --max`;
  }
  if (read.stoppedBy === 'journal' && !read.ended) {
    const to = period.to;
    const last = read.entries[read.entries.length - 1] ?? read.before;
    const journal = last ? `the journal's last entry read is ${last.sequence}` : 'the journal holds no entry';
    if (to === undefined)
      return `open: to the journal's end (${journal}); entries written from now on are not in it`;
    return `open: ${journal}, ${'atMs' in to ? `none stamped at or after ${iso(to.atMs)} yet` : `entry ${to.sequence} not written yet`}; entries written from now on may fall in this period`;
  }
  return undefined;
}

/**
 * A statement that does not reconcile, in one word: every break of it the index's lag (`lagging`), it may on a run a
 * minute later; any other is the journal's.
 */
const unreconciled = (read: StatementRead): string =>
  read.statement.breaks.every((b) => b.type === 'lagging')
    ? 'INDEX LAGGING, DOES NOT RECONCILE YET'
    : 'DOES NOT RECONCILE';

/** Why a period by time read to the journal's end is closed, or nothing for one closed by reading past it. */
function settled(read: StatementRead): string {
  if (read.settledAtMs === undefined) return '';
  const at = read.balanceSequence === 0 ? 'with no entry' : `at entry ${read.balanceSequence}, the last read`;
  return ` (its end passed ${SETTLED_AFTER_MS / 60_000} minutes and more before the fund's balance was read, ${at}: nothing stamped before it can still commit)`;
}

/** A period whose end is read (or passed) that does not reconcile: not final (more48c-statement-closed-breaks). */
const NOT_CLOSED =
  'not closed: it does not reconcile (below), and an entry missing may be of this period: not final, a run once the breaks are resolved may differ';

/** The statement for people: balances grouped, never rounded. */
export function renderStatement(read: StatementRead, quote: string, target: AdviceTarget): string {
  const s = read.statement;
  const { period } = read;
  const lines = [
    `fund statement: ${INSURANCE_ACCOUNT}, ${target.kind} stage ${target.stage}, amounts in ${quote}`,
  ];
  const from = period.from;
  const to = period.to;
  const start =
    from === undefined
      ? "from the journal's first entry"
      : 'sequence' in from
        ? `from entry ${from.sequence}`
        : `from the first entry stamped at or after ${iso(from.atMs)}`;
  const end =
    to === undefined
      ? "to the journal's last"
      : 'sequence' in to
        ? `to entry ${to.sequence}`
        : `up to, not including, the first stamped at or after ${iso(to.atMs)}`;
  const range =
    s.firstSequence === undefined
      ? 'no entries'
      : s.entries === 1
        ? `entry ${s.firstSequence}`
        : `entries ${s.firstSequence} to ${s.lastSequence} (${entriesWord(s.entries)})`;
  const onward = continueFrom(read);
  const next =
    onward === undefined
      ? ''
      : `; the next statement goes on from entry ${onward} (--from-sequence ${onward})`;
  const ending = read.closed ? `, closed${settled(read)}${next}` : read.ended ? `, ${NOT_CLOSED}` : '';
  lines.push(`period     ${range}: ${start} ${end}${ending}`);
  if ((from && 'atMs' in from) || (to && 'atMs' in to)) lines.push(`  (${PERIOD_RULE})`);
  if (s.stampedBefore.length > 0)
    lines.push(
      `  ${entriesWord(s.stampedBefore.length)} stamped before --from, written after the period's first: ${listSome(s.stampedBefore)}`,
    );
  const stopped = stoppedLine(read);
  if (stopped) lines.push(stopped);
  if (read.stoppedBy === 'max' && read.phase === 'before') return `${lines.join('\n')}\n`;
  const nobody = unnamedLine(read);
  if (nobody) lines.push(`  ${nobody}`);
  const against = againstKindLine(read);
  if (against) lines.push(`  ${against}`);
  const invoked = invokedLine(read);
  if (invoked) lines.push(`  ${invoked}`);
  const width = 16;
  const amount = (v: QuoteE6 | undefined) => (v === undefined ? 'unknown' : grouped(v)).padStart(width);
  const openingOf =
    s.firstSequence !== undefined
      ? `balanceBefore of entry ${s.firstSequence}`
      : read.before
        ? `balanceAfter of entry ${read.before.sequence}, the last before the period`
        : s.opening === undefined
          ? 'no entry before the period read'
          : read.read === 0 && read.balanceSequence === 0
            ? 'the journal holds no entry: the fund holds 0'
            : "the journal's start";
  lines.push(`opening balance    ${amount(s.opening)}  (${openingOf})`);
  for (const k of s.kinds) {
    const chart = FUND_CHART[k.kind];
    const detail =
      k.entries === 0
        ? `${k.kind}: none`
        : `${k.kind}, ${entriesWord(k.entries)}: ${grouped(k.in)} in, ${grouped(k.out)} out`;
    lines.push(`  ${chart.label.padEnd(17)}${amount(k.net)}  (${detail})`);
  }
  lines.push(`movements          ${amount(s.movements)}`);
  lines.push(
    `closing balance    ${amount(s.closing)}  (${s.lastSequence === undefined ? 'the opening: no entry' : `balanceAfter of entry ${s.lastSequence}`})`,
  );
  if (s.reconciles)
    lines.push(
      s.entries === 0
        ? 'reconciles: no movement'
        : 'reconciles: opening + movements = closing, and every entry chains on the one before it',
    );
  else {
    const breaks = counted(s.breaks.length, 'break', 'breaks');
    const verdict = unreconciled(read);
    lines.push(
      s.difference === undefined || s.difference === 0n
        ? `${verdict}: ${breaks} (opening + movements = closing, but the journal does not chain)`
        : `${verdict}: opening + movements = ${grouped(s.opening! + s.movements)}, closing ${grouped(s.closing!)} (difference ${s.difference > 0n ? '+' : ''}${grouped(s.difference)}); ${breaks}`,
    );
    for (const b of s.breaks.slice(0, BREAKS_LISTED)) lines.push(`  ${b.message}`);
    if (s.breaks.length > BREAKS_LISTED)
      lines.push(`  ... and ${s.breaks.length - BREAKS_LISTED} more (--json lists them all)`);
    if (read.unindexed) lines.push(`  ${unindexedAdvice(read, target)}`);
  }
  lines.push(`double entry (the fund an asset: a debit raises it, a credit lowers it)`);
  lines.push(`  ${'account'.padEnd(20)}${'debit'.padStart(width)}${'credit'.padStart(width)}`);
  for (const a of s.accounts) lines.push(`  ${a.account.padEnd(20)}${amount(a.debit)}${amount(a.credit)}`);
  lines.push(
    `  ${'total'.padEnd(20)}${amount(s.totals.debit)}${amount(s.totals.credit)}  ${s.totals.debit === s.totals.credit ? 'debits = credits' : 'DEBITS != CREDITS'}`,
  );
  return `${lines.join('\n')}\n`;
}

/**
 * The statement for people as printed: every string it is rendered from (an entry's key in a break, a reference)
 * escaped on its own line first, so that only the renderer's line feeds start lines (terminal49-statement-lines).
 */
export const statementText = (read: StatementRead, quote: string, target: AdviceTarget): string =>
  printable(renderStatement(printableFields(read), quote, target), true);

/** A gap the journal's index explains: entries written before it, to index (docs/DEPLOY.md, "Journal not indexed"). */
function unindexedAdvice(read: StatementRead, target: AdviceTarget): string {
  const u = read.unindexed!;
  return `the journal holds entries its index by sequence does not list (${unindexedAmong(u)}, from entry ${u.lowest}): a stack deployed before session 27; run \`${backstopCommand(target, 'fund index-journal')}\` (docs/DEPLOY.md, "Journal not indexed"), then this statement again`;
}

/** The deposits and withdrawals that name nobody (audit50-statement-unnamed-movements), or nothing when none. */
function unnamedLine(read: StatementRead): string | undefined {
  const { unnamed } = read.statement;
  if (unnamed.length === 0) return undefined;
  const which =
    unnamed.length === 1 ? '1 deposit or withdrawal names' : `${unnamed.length} deposits or withdrawals name`;
  // A deposit STS could not name was written by the CLI, not the admin function: no trail of the stack has it
  // (review51-admin-unnamed-advice).
  return (
    `${which} nobody (no actor, no invocation id): ${listSome(unnamed)}; the admin function's before session 51, ` +
    "whose invoker CloudTrail's data events for the admin function name by time alone, and a deposit whose caller " +
    "STS could not name, which no trail of the stack records (its declaredOperator, in --csv, is the operator's word " +
    'alone)'
  );
}

/** Invocations the text lists at most; --json and --csv give them all. */
const INVOCATIONS_LISTED = 10;

/**
 * The deposits and withdrawals moved through the admin function, each with the invocation CloudTrail names its caller
 * by and the operator its request declared (unverified), or nothing when none (docs/DEPLOY.md, "Who moved money").
 */
function invokedLine(read: StatementRead): string | undefined {
  const { invoked } = read.statement;
  if (invoked.length === 0) return undefined;
  const which =
    invoked.length === 1
      ? '1 deposit or withdrawal moved'
      : `${invoked.length} deposits or withdrawals moved`;
  const each = invoked
    .slice(0, INVOCATIONS_LISTED)
    .map(
      (m) =>
        `entry ${m.sequence} invocation ${m.invocationId}${m.declaredOperator === undefined ? '' : ` (declared operator ${JSON.stringify(m.declaredOperator)})`}`,
    );
  const more = invoked.length > INVOCATIONS_LISTED ? `, ... (--csv lists them all)` : '';
  return (
    `${which} through the admin function, who invoked it named by CloudTrail's Invoke data event of the invocation ` +
    `id (a declared operator is the request's word, unverified): ${each.join(', ')}${more}`
  );
}

/**
 * The entries that move the fund against their kind (review51-books-statement-against-kind), or nothing when none:
 * booked, as the ledger wrote them, but a movement no version of Backstop writes.
 */
function againstKindLine(read: StatementRead): string | undefined {
  const { againstKind } = read.statement;
  if (againstKind.length === 0) return undefined;
  const which =
    againstKind.length === 1
      ? '1 entry moves the fund against its kind'
      : `${againstKind.length} entries move the fund against their kind`;
  return (
    `${which}: ${listSome(againstKind)} (a deposit or a fee that lowers it, a withdrawal or a draw that raises it, ` +
    'none given back by a settlement planned again: keyed :r<n>, within what its plan moved before it), booked as it ' +
    "moved the fund (a deposit's out, a " +
    "withdrawal's in): the ledger refuses such a movement, so one in the journal was written by hand; escalate before " +
    'booking the period (docs/DEPLOY.md, "An entry the fund\'s chart of accounts refuses")'
  );
}

/**
 * What --csv says on stderr: the statement's verdict when it is not a clean, complete, final one. A period with an end
 * not reached yet is said open (audit50-csv-open-period): the CSV is what finance books, and entries may still join it.
 */
function csvWarnings(read: StatementRead, target: AdviceTarget): string[] {
  const s = read.statement;
  const lines: string[] = [];
  const stopped = stoppedLine(read);
  if (stopped && read.stoppedBy === 'max') lines.push(stopped);
  if (stopped && read.stoppedBy === 'journal' && read.period.to !== undefined)
    lines.push(
      `${stopped}; not closed, not final: book it once a run says closed (the text's "closed", --json's period.closed)`,
    );
  if (!s.reconciles) {
    lines.push(
      `${unreconciled(read)} (${counted(s.breaks.length, 'break', 'breaks')}${s.difference !== undefined && s.difference !== 0n ? `, difference ${grouped(s.difference)}` : ''}): ${s.breaks
        .slice(0, 3)
        .map((b) => b.message)
        .join('; ')}${s.breaks.length > 3 ? '; ...' : ''}`,
    );
    if (read.unindexed) lines.push(unindexedAdvice(read, target));
  }
  const nobody = unnamedLine(read);
  if (nobody) lines.push(nobody);
  const against = againstKindLine(read);
  if (against) lines.push(against);
  return lines;
}

const listSome = (sequences: readonly number[]): string =>
  sequences.length <= 10 ? sequences.join(', ') : `${sequences.slice(0, 10).join(', ')}, ...`;
