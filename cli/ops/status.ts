import { DEFAULT_RISK_CONFIG, quoteCurrency } from '../../shared/domain/config.ts';
import { entriesWord } from '../../shared/domain/journal-audit.ts';
import { formatQuoteGrouped, parseQuote } from '../../shared/domain/units.ts';
import { counted } from '../../shared/domain/words.ts';
import { durationClock } from '../../shared/local/aws-clock.ts';
import { type AdviceTarget, awsClockOf, backstopCommand } from '../../shared/local/deployment.ts';
import {
  collectStatus,
  LOOK_PROBE_TRIES,
  STATUS_COUNT_EVERY_MS,
  STRANDED_CONFIRM_MS,
  STRANDED_LOOK_MAX,
  type StatusReport,
  statusWatcher,
  strandedAdvice,
} from '../../shared/local/status.ts';
import { WITHDRAWAL_AUDIT_MAX_ENTRIES, withdrawalChecker } from '../../shared/services/admin.ts';
import { intOption, UsageError } from '../args.ts';
import { printable, printableFields, printableJson } from '../printable.ts';
import { CONFIG_FILE_HELP } from '../risk-config.ts';
import {
  type Command,
  noMorePositionals,
  operatorCommand,
  parseCommand,
  refreshFailure,
  riskConfigFor,
  TARGET_OPTIONS,
  TARGET_USAGE,
  withTarget,
} from './common.ts';

/** `status`: positions, liquidations, auctions, queues, the insurance fund and the circuit breakers. */

export const STATUS_USAGE = `Usage: backstop status [--json] [--watch [--interval S] [--stranded-after S]]

Positions by state, liquidations by state, the fees earned and who bore the shortfalls (fund, ADL, uncovered
bad debt, summed over the settlements), open auctions, queue and dead-letter depths, the insurance fund
(balance, reconciliation as a withdrawal judges it: from ledger-reconcile's checkpoint, never the whole journal;
whether withdrawals are refused for it; the entries the fund's chart of accounts refuses, as ledger-reconcile's
checkpoint counted them; the last journal entries) and the circuit breakers.
The counts by state Scan the positions, liquidations and auctions tables whole (one Scan each) on each read:
on a deployed stack, a read unit per 8 KB scanned (DynamoDB on demand, eventually consistent), ~44,000 read
units for a book of 1,000,000 positions and 100,000 liquidations (docs/DEPLOY.md, "What backstop status reads").
  --json                 one JSON object (with --watch: one per line); amounts are decimal strings
  --watch                refresh until Ctrl-C: queues, dead letters, markets, the fund and stranded work (from
                         the open liquidations' index) on every refresh; the positions, liquidations and
                         auctions counts (and settled) every 5 minutes, shown with their age in between
                         ("counted ... s ago"; --json: counted.ageSeconds). Work found stranded is said so once
                         refreshes have found it for ${STRANDED_CONFIRM_MS / 1000} s on end, "confirming" until then (SQS's queue counts
                         are approximate; a single read judges from one look). A refresh that fails with an error
                         that may heal (a throttle, a network blip, an expired credential) is a line (--json: on
                         stderr), the last figures kept and marked STALE with their age, and is read again at the
                         next interval; one that cannot (the stack or a table not there, access denied) ends it.
                         The first refresh tries the read its looks make once work is stranded
                         (dynamodb:BatchGetItem on the auctions table): refused, it ends there, saying so;
                         failing otherwise (a throttle), the refresh goes on and the next tries again, ${LOOK_PROBE_TRIES} at most
  --interval S           seconds between refreshes (default 2)
  --stranded-after S     seconds refreshes must find work with no message moving it, on end, before it is said
                         stranded (default ${STRANDED_CONFIRM_MS / 1000}; 0: at the first, as a single read; more where the queue
                         counts lag longer)
  --config FILE.json     risk configuration of the deployment (local: what local up runs with), so that a mark
                         older than its market's maxMarkAgeSeconds shows as STALE (aws: only with it):
${CONFIG_FILE_HELP}${TARGET_USAGE}`;

export const STATUS_OPTIONS = {
  ...TARGET_OPTIONS,
  json: { type: 'boolean' },
  watch: { type: 'boolean' },
  interval: { type: 'string' },
  'stranded-after': { type: 'string' },
  config: { type: 'string' },
} as const;

const nonZero = (counts: Record<string, number>): string => {
  const parts = Object.entries(counts)
    .filter(([, n]) => n > 0)
    .map(([state, n]) => `${state} ${n}`);
  return parts.length > 0 ? parts.join(', ') : 'none';
};

/** A report that names no quote currency (no configuration, no market listed): the built-in configuration's. */
const DEFAULT_QUOTE = quoteCurrency(DEFAULT_RISK_CONFIG);

/** An amount as fund shows it: grouped, never rounded (a fund of 0.004 below zero must not read as -0.00). */
const usd = (decimal: string): string =>
  formatQuoteGrouped(parseQuote(decimal, 'amount', { allowNegative: true }));

/** The reconcile's difference: an amount with its currency, or the report's word when none was judged. */
const amountOrWord = (difference: string, quote: string): string =>
  /^-?\d/.test(difference) ? `${usd(difference)} ${quote}` : difference;

/** The mark's age, and STALE past the market's maxMarkAgeSeconds when the configuration is known. */
const markAge = (m: StatusReport['markets'][string]): string => {
  if (m.markAgeSeconds === null) return '';
  const stale = m.markStale
    ? `: STALE, over ${m.maxMarkAgeSeconds} s (liquidations and auctions wait for a tick)`
    : '';
  return `, ${m.markAgeSeconds} s old${stale}`;
};

const EPOCH = new Date(0).toISOString();

/** The readable status; `target`: the one the commands it advises address (ux46-advice-target). */
export function renderStatus(
  s: StatusReport,
  target: AdviceTarget = s.target,
  confirmMs = STRANDED_CONFIRM_MS,
): string {
  const t = s.target;
  const quote = s.quote ?? DEFAULT_QUOTE;
  const lines = [
    `backstop status: ${t.kind} stage ${t.stage}${t.endpoint ? ` (${t.endpoint})` : ` (${t.region})`} at ${s.at}`,
    `positions       ${nonZero(s.positions)}`,
    `liquidations    ${s.liquidations.total} total, ${s.liquidations.nonTerminal} not terminal${s.liquidations.owingAdlRounds > 0 ? ` (${s.liquidations.owingAdlRounds} settled, owing ADL rounds)` : ''}: ${nonZero(s.liquidations.byState)}`,
    `losses          fees ${usd(s.liquidations.losses.fees)} ${quote} earned; shortfalls ${usd(s.liquidations.losses.shortfall)} ${quote}: fund ${usd(s.liquidations.losses.fundPaid)}, ADL ${usd(s.liquidations.losses.adlCovered)}, ${s.liquidations.losses.uncoveredBadDebt !== '0' ? `UNCOVERED BAD DEBT ${usd(s.liquidations.losses.uncoveredBadDebt)}` : 'none uncovered'}${s.liquidations.losses.unreadable > 0 ? ` (${s.liquidations.losses.unreadable} settlements unreadable, left out)` : ''}`,
    `auctions        ${s.auctions.open} open (${nonZero(s.auctions.byState)})`,
  ];
  // --watch's counts between its Scans (status46-watch-scans): their age, not passed off as this refresh's. Stranded
  // is judged on every refresh (status47-stranded-live).
  if (s.counted.at !== s.at)
    lines.push(
      `  (positions, liquidations, auctions and settled counted ${s.counted.ageSeconds} s ago at ${s.counted.at}: they Scan their tables, --watch counts again every ${STATUS_COUNT_EVERY_MS / 60_000} min; stranded and the rest are read now)`,
    );
  const queue = ([name, q]: [string, StatusReport['queues'][string]]) =>
    `${name} ${q.depth}${q.inFlight ? ` +${q.inFlight} in flight` : ''}${q.delayed ? ` +${q.delayed} delayed` : ''}`;
  const entries = Object.entries(s.queues);
  const isDlq = ([name]: [string, unknown]) => name.endsWith('Dlq') || name === 'tickDeadLetters';
  lines.push(
    `queues          ${entries
      .filter((e) => !isDlq(e))
      .map(queue)
      .join(
        ', ',
      )}${s.drained ? ' (drained)' : s.settled ? ' (settled: what is left runs as no-ops, the planned steps of ended auctions)' : ''}`,
  );
  // Stranded work, said once --watch's refreshes have found it for a minute; confirming until then; a single read's
  // from one look (stranded48-confirm). One of the two figures is 0.
  const found = s.stranded + s.strandedUnconfirmed;
  if (found > 0) {
    // strandedAtLeast is false while confirming (review48-stranded-at-least-unconfirmed): a look between counts that
    // found as many as it reads may have left more unread.
    const atLeast =
      s.strandedAtLeast || (s.strandedUnconfirmed >= STRANDED_LOOK_MAX && s.counted.at !== s.at);
    const one = found === 1 && !atLeast;
    const work = `${atLeast ? 'at least ' : ''}${found} ${one ? 'liquidation' : 'liquidations'} not terminal`;
    const confirmS = confirmMs / 1000;
    lines.push(
      s.strandedUnconfirmed > 0
        ? `  confirming (${s.strandedForSeconds} of ${confirmS} s): ${work} and no message seen moving ${one ? 'it' : 'them'}; stranded once refreshes see none for ${confirmS} s (SQS's queue counts are approximate: a moment of 0 is not enough)`
        : `  ${work} and no message moving ${one ? 'it' : 'them'} (${s.strandedForSeconds === null ? `from one look: SQS's queue counts are approximate, status --watch confirms it over ${confirmS} s` : `none seen for ${s.strandedForSeconds} s`}): ${strandedAdvice(s.dlqMessages, target, one ? 1 : found)}`,
    );
  }
  lines.push(`dead letters    ${s.dlqMessages} (${entries.filter(isDlq).map(queue).join(', ')})`);
  const f = s.insuranceFund;
  // Not audited: counted from where the audit stands, as the refusal and ledger-reconcile's backlog count it. What
  // this read audited past it is kept by nothing, so "8 entries short" of it read as nearly judged
  // (review46-status-not-audited).
  const behind = entriesWord(f.sequence - (f.audit.checkpoint ?? 0));
  const unaudited =
    f.audit.checkpoint === null
      ? `${behind} and no checkpoint stored by ledger-reconcile`
      : `ledger-reconcile's checkpoint ${behind} behind it`;
  const judged = f.reconciled
    ? 'reconciled'
    : f.verdict === 'unreconciled'
      ? `NOT RECONCILED (difference ${amountOrWord(f.difference, quote)})`
      : `NOT JUDGED (${f.verdict === 'not-indexed' ? "entries left out of the journal's index" : `${unaudited}, more than the ${entriesWord(WITHDRAWAL_AUDIT_MAX_ENTRIES)} a check reads`})`;
  // The audit's lowest below zero (reconcile's check): a fund that never went below zero says so.
  const lowest = f.minBalance.startsWith('-')
    ? `BELOW ZERO at ${usd(f.minBalance)} ${quote}`
    : 'never below zero';
  // What was judged, never the whole journal (status46-journal-bounded).
  const from =
    f.audit.checkpoint === null
      ? `ledger-reconcile has stored no checkpoint: ${entriesWord(f.audit.read)} read from the first, ${entriesWord(WITHDRAWAL_AUDIT_MAX_ENTRIES)} at most`
      : `from ledger-reconcile's checkpoint at entry ${f.audit.checkpoint}, ${entriesWord(f.audit.read)} read past it`;
  lines.push(
    `insurance fund  ${usd(f.balance)} ${quote} at entry ${f.sequence}, ${judged}, ${lowest} (journal audited through entry ${f.audit.through}: ${from})`,
  );
  // In the withdrawal's own words (the same check as the line above), its commands with the target's flags already.
  if (f.withdrawals.refused) lines.push(`  WITHDRAWALS REFUSED: ${f.withdrawals.reason}`);
  const w = f.drawWindow;
  if (w)
    lines.push(
      w.cap === null || w.floor === null
        ? // A fund never drawn stores its window at 0 (1970): no window to name.
          `  draws ${w.since === EPOCH ? 'none yet' : `${usd(w.drawn)} ${quote} in the window from ${w.since}`} (the draw cap and floor: with --config)`
        : `  draws ${usd(w.drawn)} of the ${usd(w.cap)} ${quote} draw cap in the window from ${w.since} (${w.windowSeconds} s); floor ${usd(w.floor)} ${quote}`,
    );
  if (w?.problem)
    lines.push(
      `  problem: ${w.problem} (a cap lowered within the window: ledger-reconcile alarms until it ends; no withdrawal is refused for it)`,
    );
  for (const p of f.problems.slice(0, 5)) lines.push(`  problem: ${p}`);
  if (f.problems.length > 5)
    lines.push(
      `  ... ${f.problems.length - 5} more lines of problems: ${backstopCommand(target, 'status --json')}`,
    );
  // Kept with ledger-reconcile's checkpoint, not read from the journal (status stays scan-free): where to look.
  const chart = f.chartRefused;
  if (chart) {
    const range =
      chart.firstSequence === chart.lastSequence
        ? `entry ${chart.firstSequence}`
        : `entries ${chart.firstSequence} to ${chart.lastSequence}`;
    const counted = chart.countedAfter === 0 ? '' : `; counted after entry ${chart.countedAfter}`;
    const statement = `fund statement --from-sequence ${chart.firstSequence} --to-sequence ${chart.lastSequence}`;
    const them = chart.count === 1 ? 'it' : 'them';
    lines.push(
      `  chart of accounts: ${entriesWord(chart.count)} the fund's chart refuses (${range}${counted}): ` +
        `${backstopCommand(target, statement)} names ${them} (docs/DEPLOY.md, "An entry the fund's chart of accounts ` +
        `refuses"); no withdrawal is refused for ${them}`,
    );
  }
  for (const e of f.lastEntries) {
    lines.push(
      `  #${e.sequence} ${e.at} ${e.kind} ${usd(e.amount)} -> ${usd(e.balanceAfter)} (${e.reference}${e.actor === undefined ? '' : ` by ${e.actor}`})`,
    );
  }
  const markets = Object.entries(s.markets);
  if (markets.length === 0) lines.push('markets         no tick accepted yet');
  // Symbols run to 16 characters (1000000MOG-USDT): the column is as wide as the longest listed.
  const width = Math.max(0, ...markets.map(([symbol]) => symbol.length));
  for (const [symbol, m] of markets) {
    const breaker = !m.breaker
      ? // A market item written before any tick (seeding providers bumps its epoch) has no mark: nothing of it is
        // margin-checked, which "breaker closed" would hide.
        m.mark === null
        ? 'no tick accepted yet: its positions are not margin-checked'
        : 'breaker closed'
      : `${
          m.breaker.reason === 'tick/unconfirmed'
            ? `first print ${m.breaker.mark} waiting for one that agrees (since ${m.breaker.trippedAt})`
            : `BREAKER OPEN since ${m.breaker.trippedAt} (${m.breaker.reason}, ${m.breaker.mark})`
        }${
          m.breaker.confirming
            ? `, print ${m.breaker.confirming.sequence} refused at ${m.breaker.confirming.at} as too soon to confirm it`
            : ''
        }`;
    const held = m.heldJump
      ? `, sequence ${m.heldJump.behind ? 'behind at' : 'jump to'} ${m.heldJump.sequence} held since ${m.heldJump.heldAt} (followed once the feed continues from it and the mark is stale)`
      : '';
    lines.push(
      `market ${symbol.padEnd(width)} mark ${m.mark ?? '-'} (sequence ${m.lastSequence ?? '-'} at ${m.at ?? '-'}${markAge(m)}), ${breaker}${held}`,
    );
    // What margin-check refused without another record (feed48-refusal-trace), a line a kind under its market.
    for (const [reason, r] of Object.entries(m.refused ?? {}))
      lines.push(
        `  refused ${reason}: ${counted(r.count, 'tick', 'ticks')} since ${r.since}, the latest ${r.sequence} at ${r.at}`,
      );
  }
  return `${lines.join('\n')}\n`;
}

/**
 * The readable status as printed: every string of the report (a journal entry's reference and actor, a market's
 * symbol, a breaker's reason, a reconcile problem) escaped on its own line first, so that only the renderer's line
 * feeds start lines (terminal49-status-lines, as providers49-forged-lines).
 */
export const statusText = (report: StatusReport, target: AdviceTarget, confirmMs?: number): string =>
  printable(renderStatus(printableFields(report), target, confirmMs), true);

/** `status --watch`'s loop and what it runs on (a test drives it with a clock and sleep of its own). */
export interface StatusWatch {
  /**
   * One refresh's read at `nowMs`, the watch's clock of durations, `awsNowMs`, AWS's time, and `sequenceNowMs`, AWS's
   * as inject numbers a first tick (statusWatcher: the Scanned counts only every STATUS_COUNT_EVERY_MS).
   */
  readonly read: (nowMs: number, awsNowMs: number, sequenceNowMs: number) => Promise<StatusReport>;
  readonly write: (report: StatusReport) => void;
  /** A refresh that failed with an error that may heal (refreshFailure): the loop reads again an interval later. */
  readonly writeFailure: (failed: FailedRefresh) => void;
  readonly intervalMs: number;
  /** A clock of durations, never going back: the durations between looks (statusWatcher; durationClock). */
  readonly nowMs: () => number;
  /** AWS's time, what each look's report is stamped and judged by (ops49b-status-clock); nowMs when absent. */
  readonly awsNowMs?: () => number;
  /**
   * AWS's time as `inject` numbers a market's first tick (agreedNowMs): a market's nextSequence when it has none
   * (ops50-next-sequence); awsNowMs when absent.
   */
  readonly sequenceNowMs?: () => number;
  /** Resolves after `ms`, or at once when `signal` aborts (sleepUnlessAborted). */
  readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Ctrl-C: the loop ends, within a read, never a whole interval later. */
  readonly signal: AbortSignal;
}

/** A refresh of `status --watch` that failed, and what it can still show. */
export interface FailedRefresh {
  /**
   * When the refresh was made, by the clock of the reports' `at` (AWS's): with figures, their `at` and `lastAgeMs` after
   * it, the durations' clock (ops50b-failed-refresh-at: AWS's time as read before the refresh, the machine's clock moved
   * by the last answer, went back an hour with the machine's clock, no answer since, before the figures' `at`); AWS's
   * time as read when there are none.
   */
  readonly atMs: number;
  /** refreshFailure's line: the error's class and message. */
  readonly error: string;
  /** The last refresh that succeeded (none before the first). */
  readonly last?: StatusReport;
  /**
   * How long before this refresh `last` was read, by the watch's clock of durations, `nowMs` (beside `last`): the
   * figures' age is a duration, and AWS's time, set again by each answer's Date header, a second floored, jitters by a
   * second between two reads (cli50b-stale-age-jitter).
   */
  readonly lastAgeMs?: number;
  /** Refreshes failed in a row, this one included. */
  readonly inARow: number;
  readonly intervalMs: number;
}

/**
 * Reads and writes the status every `intervalMs` until `signal` aborts (status47-watch-loop). A refresh that fails
 * (ops47-watch-retry) is written as its error and the age of the last figures, and read again at the next
 * interval: a throttle, a network blip or an expired credential ended the watch when a crash made the on-call need it.
 * An error no retry heals (the stack or a table not there, access denied: refreshFailure's lasting) ends it, thrown as
 * before, as does a bug.
 */
export async function watchStatus(watch: StatusWatch): Promise<void> {
  let last: { readonly report: StatusReport; readonly atMs: number; readonly awsMs: number } | undefined;
  let inARow = 0;
  while (!watch.signal.aborted) {
    const atMs = watch.nowMs();
    const awsMs = watch.awsNowMs?.() ?? atMs;
    const sequenceMs = watch.sequenceNowMs?.() ?? awsMs;
    let report: StatusReport;
    try {
      report = await watch.read(atMs, awsMs, sequenceMs);
    } catch (error) {
      const failure = refreshFailure(error);
      if (failure === undefined || failure.lasting) throw error;
      inARow += 1;
      const lastAgeMs = last === undefined ? undefined : atMs - last.atMs;
      watch.writeFailure({
        // Said beside the last report's `at`, and its figures' age from it: so the figures' AWS time and the age since
        // (ops50b-failed-refresh-at).
        atMs: last === undefined ? awsMs : last.awsMs + lastAgeMs!,
        error: failure.line,
        ...(last === undefined ? {} : { last: last.report, lastAgeMs }),
        inARow,
        intervalMs: watch.intervalMs,
      });
      await watch.sleep(watch.intervalMs, watch.signal);
      continue;
    }
    last = { report, atMs, awsMs };
    inARow = 0;
    watch.write(report);
    await watch.sleep(watch.intervalMs, watch.signal);
  }
}

/**
 * A failed refresh in one line: its error, and how old the figures shown are (the last good read's), or that there
 * are none yet; then when it is tried again.
 */
export function failedRefreshLine(failed: FailedRefresh): string {
  const at = new Date(failed.atMs).toISOString();
  const row = failed.inARow > 1 ? ` (${failed.inARow} in a row)` : '';
  const figures = failed.last
    ? `STALE: the figures shown were read at ${failed.last.at}, ${Math.max(0, Math.floor((failed.lastAgeMs ?? failed.atMs - Date.parse(failed.last.at)) / 1000))} s ago`
    : 'no figures yet';
  return `backstop status: the refresh at ${at} failed${row}: ${failed.error}; ${figures}; read again in ${failed.intervalMs / 1000} s (Ctrl-C ends the watch)`;
}

/** A wait of `ms` that an abort ends at once (one already aborted does not wait). */
export function sleepUnlessAborted(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

export const runStatus: Command = operatorCommand(async (argv, io) => {
  const { positionals, values } = parseCommand(argv, STATUS_OPTIONS);
  if (values.help) {
    io.stdout.write(STATUS_USAGE);
    return 0;
  }
  noMorePositionals('status', positionals, 0);
  if (values.interval !== undefined && !values.watch)
    throw new UsageError('--interval: only with --watch (status prints once without it)');
  const intervalMs = (intOption('interval', values.interval, 1, 3600) ?? 2) * 1000;
  if (values['stranded-after'] !== undefined && !values.watch)
    throw new UsageError('--stranded-after: only with --watch (a single read judges from its one look)');
  const confirmMs =
    (intOption('stranded-after', values['stranded-after'], 0, 3600) ?? STRANDED_CONFIRM_MS / 1000) * 1000;
  return withTarget(values, async (deployment) => {
    const write = (report: StatusReport) =>
      io.stdout.write(values.json ? `${printableJson(report)}\n` : statusText(report, deployment, confirmMs));
    // Known when given, recorded, or a local stage's (the built-in one unless local up recorded another); a deployed
    // stack's is not known here: never the built-in defaults' bound by omission.
    const config =
      values.config !== undefined ||
      deployment.recordedRiskConfig !== undefined ||
      deployment.kind === 'local'
        ? riskConfigFor(deployment, values.config)
        : undefined;
    // One check for every refresh: a missing entry is waited for once, not on each (review46-status-watch).
    const checkFund = withdrawalChecker();
    // AWS's time, as its answers tell it (ops49b-status-clock): the marks' stamps are the feed's, judged by margin-check
    // and the consumers on AWS's clock, and the draw window is the ledger's, stamped by it. Its lower bound, never ahead
    // of AWS's: a machine clock a second fast must not call a mark STALE, nor a draw window ended, before AWS does
    // (agreedNowMs may be the machine's, up to a second ahead of it); at most a second late.
    const clock = awsClockOf(deployment);
    if (!values.watch) {
      // A market's first sequence by the time inject numbers one by (ops50-next-sequence).
      write(
        await collectStatus(deployment, clock.nowMs(), config, checkFund, undefined, clock.agreedNowMs()),
      );
      return 0;
    }
    // The Scanned counts again every STATUS_COUNT_EVERY_MS, the rest on every refresh (status46-watch-scans).
    const stop = new AbortController();
    const onSignal = () => stop.abort();
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    // Clear the terminal between readable refreshes; JSON lines are appended for scripts.
    const screen = !values.json && 'isTTY' in io.stdout && io.stdout.isTTY;
    try {
      await watchStatus({
        read: statusWatcher(deployment, config, checkFund, { confirmMs }),
        write: (report) => {
          if (screen) io.stdout.write('\x1b[2J\x1b[H');
          write(report);
        },
        // A failed refresh (ops47-watch-retry): on a terminal the last figures stay, the line that says they are stale
        // below them, where the cursor is: a status taller than the terminal scrolled a line above them out of sight
        // (review47-stale-line-scrolled); in a log the line follows them; with --json on stderr, stdout keeping one
        // report a line.
        writeFailure: (failed) => {
          // One line: the error's line feeds escaped too (terminal49-error-lines).
          const line = `${printable(failedRefreshLine(failed))}\n`;
          if (values.json) io.stderr.write(line);
          else if (!screen) io.stdout.write(line);
          else {
            io.stdout.write('\x1b[2J\x1b[H');
            if (failed.last) io.stdout.write(statusText(failed.last, deployment, confirmMs));
            io.stdout.write(line);
          }
        },
        intervalMs,
        // The looks' durations (stranded work's minute, the counts' age, the stale figures') by a clock of durations:
        // they compare no stored stamp, and AWS's, re-read from each answer, would jitter by a second; the machine's
        // wall clock, stepped back, made them negative (review50-cli2-stale-age-clock).
        nowMs: durationClock(() => performance.now(), clock),
        awsNowMs: () => clock.nowMs(),
        sequenceNowMs: () => clock.agreedNowMs(),
        sleep: sleepUnlessAborted,
        signal: stop.signal,
      });
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    return 0;
  });
});
