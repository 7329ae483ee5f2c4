import { basename } from 'node:path';
import { marketConfig } from '../../shared/domain/config.ts';
import { evaluateTick, rebasedTickState } from '../../shared/domain/tick.ts';
import { formatPrice, type PriceE8, parsePrice } from '../../shared/domain/units.ts';
import { counted } from '../../shared/domain/words.ts';
import { firstLine } from '../../shared/error-text.ts';
import {
  attempts,
  howRefused,
  PutEntriesError,
  type PutOutcome,
  putEntries,
  tickDetail,
  tickEntry,
  type UnknownEntry,
} from '../../shared/feed/publisher.ts';
import {
  type AdviceTarget,
  awsClockOf,
  backstopCommand,
  shellWord,
  withTargetFlags,
} from '../../shared/local/deployment.ts';
import {
  claimSequences,
  continuesSent,
  lastSentSequence,
  recordSentSequence,
  sentSequenceKey,
} from '../../shared/local/sent-sequences.ts';
import { stateDir } from '../../shared/local/state.ts';
import {
  collectLiquidationWork,
  type LiquidationWork,
  lookPermissionProbe,
  progressMoved,
  STRANDED_CONFIRM_MS,
  strandedAdvice,
  strandedRuns,
} from '../../shared/local/status.ts';
import { awaitTickFate, type TickFate } from '../../shared/local/tick-fate.ts';
import {
  type HeldNotPut,
  handledTicks,
  nextSequence,
  parseSpeed,
  type ReplayOutcome,
  replayPrices,
  sequenceAfter,
  TICK_SOURCE,
  type TickNotTaken,
} from '../../shared/local/ticks.ts';
import {
  isTracedRefusal,
  type MarketRepository,
  TRACED_REFUSALS,
  type TracedRefusal,
} from '../../shared/ports/index.ts';
import { readPriceFile } from '../../shared/prices/file.ts';
import { parseTime } from '../../shared/prices/parse.ts';
import { parseTickDetail } from '../../shared/schemas/tick.ts';
import { intOption, UsageError } from '../args.ts';
import type { ExitCode } from '../exit-codes.ts';
import { printable, printableJson } from '../printable.ts';
import { ProgressBar } from '../progress.ts';
import { CONFIG_FILE_HELP } from '../risk-config.ts';
import { resolveSymbol } from '../simulate.ts';
import {
  adaptersOf,
  type Command,
  credentialsFailure,
  environmentFailure,
  noMorePositionals,
  operatorCommand,
  parseCommand,
  refreshFailure,
  riskConfigFor,
  subcommand,
  TARGET_OPTIONS,
  TARGET_USAGE,
  withTarget,
} from './common.ts';

/** `inject tick` (one PriceTick on the bus) and `replay FILE` (a price file as ticks, paced or at max speed). */

/** How long inject waits for the market to show its tick (margin-check takes well under a second). */
const DEFAULT_WAIT_SECONDS = 10;

export const INJECT_USAGE = `Usage: backstop inject tick --symbol ETH-USD --price 1520.5 [options]

Puts one PriceTick on the tick bus, prints the entry it sent and what margin-check made of it (fate): accepted,
held by the circuit breaker, or refused (a duplicate, stale or out-of-band tick's refusal is foretold by the same
rule on the market as it stood: margin-check keeps only the latest refusal of each kind on the market). Exit 0: accepted (or a market's first
print, which waits for a second); 3: refused or held by the breaker; 4: not handled within the wait, or of unknown
fate (its PutEvents call got no answer, or an answer that said nothing of it: the tick on the bus or not; status
shows the market's last sequence).
  --symbol S             market symbol (required)
  --price P              mark price, plain decimal (required)
  --index P              index price
  --ts T                 event time: ISO 8601 or epoch seconds / milliseconds (default: now, by AWS's clock as
                         its answers tell it: margin-check judges a tick's time by it, and so does the foretelling)
  --sequence N           feed sequence (default: after the market's last one and the last these commands sent it,
                         replays included; epoch ms by AWS's clock for a new market)
  --source S             feed id (default ${TICK_SOURCE})
  --wait SECONDS         how long to wait for the market to show the tick (default ${DEFAULT_WAIT_SECONDS}; 0: do not wait)
  --config FILE.json     risk configuration of the deployment, for its markets (local: what local up runs with;
                         aws: the deployed one, default the built-in defaults):
${CONFIG_FILE_HELP}${TARGET_USAGE}`;

/** How often `replay --hold` sends the last price by default: well within the default maxMarkAgeSeconds (120 s). */
export const HOLD_EVERY_SECONDS = 30;
/**
 * Looks in a row that find work left and no message to move it before a hold gives up, at the least: they must span
 * STRANDED_CONFIRM_MS too (stranded48-hold-confirm).
 */
const STUCK_LOOKS = 2;
/**
 * How long a hold goes on holding while its looks at the stack fail with an error that may heal (a throttle, a blip, an
 * expired credential): the held ticks keep the marks fresh meanwhile, and the hold keeps its place.
 */
export const HOLD_BLIND_MS = 5 * 60_000;

/** Looks in a row that may fail before the hold ends: HOLD_BLIND_MS of held ticks, and never fewer than STUCK_LOOKS. */
export const holdFailuresAllowed = (everyMs: number): number =>
  Math.max(STUCK_LOOKS, Math.ceil(HOLD_BLIND_MS / everyMs));

/**
 * Whether a held tick's PutEvents that failed without an answer is sent again (ReplayHold.putMayHeal), as a look that
 * failed so is made again: a timeout, the network, a throttle, a 5xx may heal (timeouts48-held-put). The hold's first
 * such failure ended the replay, where the looks ride out HOLD_BLIND_MS of them.
 */
export const heldPutMayHeal = (error: unknown): boolean => refreshFailure(error)?.lasting === false;

/** `replay --hold`'s looks at the stack (ReplayHold.pending), and why they ended the hold. */
export interface HoldLooks {
  /** Whether the next held tick goes (work left); false ends the hold. */
  readonly pending: () => Promise<boolean>;
  /** Why the hold ended, when a look ended it (exit 1); undefined while it holds, or when the work is done. */
  readonly ended: () => string | undefined;
  /** What the last look found; undefined when it could not read the stack. */
  readonly work: () => { readonly total: number; readonly nonTerminal: number } | undefined;
}

/**
 * The looks a hold makes before each held tick: the liquidations' work (`collect`), which ends the hold once every one
 * is terminal, or once looks one after another have found work left with no message to move it, STUCK_LOOKS of them
 * over `confirmMs` at least (STRANDED_CONFIRM_MS, as `status --watch` confirms it: stranded48-hold-confirm), the way on
 * in `target`'s flags. A look that fails with an error that may heal (refreshFailure) is said (`warn`) and the hold
 * goes on, its tick sent: it ended on the first, a throttle or a blip losing its place (ops47-hold-retry), up to
 * holdFailuresAllowed(everyMs) in a row; a lasting one (the stack not there, access denied) or a bug ends it at once.
 * `nowMs`: when a look is made, by the monotonic clock: a step of the machine's wall clock forward confirmed work
 * stranded at the next look, the hold ended (review50-cli2-hold-clock); a sleep, during which no tick went, is no look.
 */
export function holdLooks(options: {
  readonly collect: () => Promise<LiquidationWork>;
  readonly everyMs: number;
  readonly target: AdviceTarget;
  readonly onLook?: (liquidations: LiquidationWork['liquidations']) => void;
  readonly warn: (line: string) => void;
  readonly nowMs?: () => number;
  readonly confirmMs?: number;
}): HoldLooks {
  const { nowMs = () => performance.now(), confirmMs = STRANDED_CONFIRM_MS } = options;
  const allowed = holdFailuresAllowed(options.everyMs);
  let work: { readonly total: number; readonly nonTerminal: number } | undefined = {
    total: 0,
    nonTerminal: 0,
  };
  const strandedRun = strandedRuns();
  // The liquidations by state at the run's last look, and each one's progress (its version, its auction's step):
  // any change since is work moved (review48-stranded-moved, status49-auction-moved).
  let last: { readonly states: string; readonly progress: LiquidationWork['progress'] } | undefined;
  let failures = 0;
  let ended: string | undefined;
  const pending = async (): Promise<boolean> => {
    const atMs = nowMs();
    let found: LiquidationWork;
    try {
      found = await options.collect();
    } catch (error) {
      const failure = refreshFailure(error);
      failures += 1;
      work = undefined;
      const why = failure?.line ?? String(error);
      if (failure === undefined || failure.lasting) {
        ended = `hold ended: the stack's status could not be read (${why})`;
        return false;
      }
      if (failures > allowed) {
        ended = `hold ended: the stack's status could not be read ${failures} times in a row, over ${Math.round(((failures - 1) * options.everyMs) / 1000)} s (${why})`;
        return false;
      }
      options.warn(
        `hold: the stack's status could not be read (${why}): its last price is sent again, and it is read again in ${options.everyMs / 1000} s (${failures} of ${allowed} failures in a row before the hold ends)`,
      );
      return true;
    }
    failures = 0;
    const { liquidations, stranded, dlqMessages } = found;
    work = liquidations;
    options.onLook?.(liquidations);
    // Work left with no message to move it (dead-lettered, or lost), as status judges it: no tick will. Found by
    // looks one after another over a minute, as SQS's counts are approximate (stranded48-hold-confirm).
    const states = JSON.stringify([liquidations.byState, liquidations.owingAdlRounds]);
    const moved =
      last !== undefined && (states !== last.states || progressMoved(last.progress, found.progress));
    const run = strandedRun(stranded, atMs, moved);
    last = run === undefined ? undefined : { states, progress: found.progress };
    if (run !== undefined && run.reads >= STUCK_LOOKS && run.forMs >= confirmMs) {
      // How long it looked, as status --watch says it (follow48-hold-looked): the judgment rests on it.
      ended =
        `hold ended: ${counted(stranded, 'liquidation is', 'liquidations are')} not terminal and no ` +
        `message is left to move ${stranded === 1 ? 'it' : 'them'} (none seen by ${counted(run.reads, 'look', 'looks')} ` +
        `over ${Math.floor(run.forMs / 1000)} s): ${strandedAdvice(dlqMessages, options.target, stranded)}`;
      return false;
    }
    return liquidations.nonTerminal > 0;
  };
  return { pending, ended: () => ended, work: () => work };
}

export const REPLAY_USAGE = `Usage: backstop replay FILE.csv [--symbol ETH-USD] [--speed 60x|max] [--hold [--hold-every S] [--stranded-after S]]

Replays a price file as ticks: one PutEvents a tick, a progress bar on stderr (a line every 30 s when it
is not a terminal), then the entries the bus
took, refused and left of unknown fate (by sequence), the ticks margin-check's breaker held or refused while it
confirmed a move, and those it refused otherwise (too old, out of order, ...), a line on stderr each kind, and a
print the breaker holds at the end. Files: a header with a time column
(timestamp, time, ts, open_time_ms, open_time_utc) and a price column (close, price, mark), or Binance's
12-column klines. Each tick is stamped with the time it is sent, by AWS's clock as its answers tell it, which
margin-check judges by (the file's times set the pacing), and sequences continue from the market's last one (a
new market's from that time in epoch ms). Each tick is sent once the stack has handled the one before (EventBridge
keeps no order between ticks in flight together: the older, landing second, would be refused as out of order),
and the replay stops with a clear error when the stack handles none for 60 s, when EventBridge refuses a
call whole (the caller's credentials, the bus's policy), which it would every next call too, or on any other
error (a PutEvents call that failed without an answer, or that left no request for want of credentials, its
ticks then said NOT sent): its outcome so far is printed first, exit 1. Exit 4 when ticks are of unknown fate
(a PutEvents call that got no answer, or an answer that said nothing of them: on the bus or not) and none was
refused: replay/unknown-fate names them and how to find out, as inject tick does (not for a held tick, or the file's
last, followed by a held tick the bus took: its price sent again later, nothing to resend); 130 when Ctrl-C stops
it before the file's end.
  --symbol S             market (default: from the file name, e.g. eth-... is ETH-USD)
  --speed X              60x (default: a minute of the file per second), 1x (real time), max (no pauses)
  --source S             feed id (default ${TICK_SOURCE})
  --hold                 after the file, send its last price every ${HOLD_EVERY_SECONDS} s (the first ${HOLD_EVERY_SECONDS} s after it) for
                         as long as a liquidation is not terminal, as a live feed would: the work a crash
                         leaves acts only on a mark at most maxMarkAgeSeconds old (120 s by default) and
                         otherwise waits for a tick. Ctrl-C ends it (exit 0; 1 if a tick was refused, 4 if one
                         is of unknown fate, as after the file); work left with no message to move
                         it (dead-lettered, or lost; not while a tick is still starting it, as status judges),
                         found so by its looks for ${STRANDED_CONFIRM_MS / 1000} s on end (SQS's counts are approximate), ends it
                         with exit 1 and the way on. Each held tick is a line on stderr when it is not
                         a terminal (a progress bar when it is). A look at the stack that fails with an error
                         that may heal (a throttle, a network blip, an expired credential) is a line on stderr
                         and the hold goes on, its tick sent, for ${HOLD_BLIND_MS / 60_000} minutes of failures in a row; one that
                         cannot (the stack or a table not there, access denied) ends it with exit 1
  --hold-every S         seconds between held ticks (default ${HOLD_EVERY_SECONDS}), below the market's maxMarkAgeSeconds
  --stranded-after S     seconds the hold's looks must find work with no message moving it, on end, before it
                         ends on it (default ${STRANDED_CONFIRM_MS / 1000}; two looks at least; 0: on two looks running, as
                         before session 48; more where the queue counts lag longer)
  --json                 print the outcome as one JSON object
  --config FILE.json     risk configuration of the deployment, for its markets (local: what local up runs with;
                         aws: the deployed one, default the built-in defaults):
${CONFIG_FILE_HELP}${TARGET_USAGE}`;

export const INJECT_OPTIONS = {
  ...TARGET_OPTIONS,
  symbol: { type: 'string' },
  price: { type: 'string' },
  index: { type: 'string' },
  ts: { type: 'string' },
  sequence: { type: 'string' },
  source: { type: 'string' },
  wait: { type: 'string' },
  config: { type: 'string' },
} as const;

export const REPLAY_OPTIONS = {
  ...TARGET_OPTIONS,
  symbol: { type: 'string' },
  speed: { type: 'string' },
  source: { type: 'string' },
  hold: { type: 'boolean' },
  'hold-every': { type: 'string' },
  'stranded-after': { type: 'string' },
  json: { type: 'boolean' },
  config: { type: 'string' },
} as const;

const checkPrice = (name: string, value: string): string => {
  try {
    parsePrice(value, `--${name}`);
    return value.trim();
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
};

/** --ts: ISO 8601 or epoch seconds / milliseconds (the price files' rules), as epoch ms. */
export function timeOption(value: string): number {
  let ms: number;
  try {
    ms = parseTime(value.trim(), 0);
  } catch {
    throw new UsageError(`--ts: "${value}" is not ISO 8601 or epoch seconds / milliseconds`);
  }
  // 0 (or before) is a slip: margin-check would refuse the tick as too old, after the bus accepted it.
  if (ms <= 0) throw new UsageError(`--ts: "${value}" is not after 1970-01-01`);
  return ms;
}

export const runInject: Command<'inject tick'> = operatorCommand(async (argv, io) => {
  const { positionals, values } = parseCommand(argv, INJECT_OPTIONS);
  if (values.help) {
    io.stdout.write(INJECT_USAGE);
    return 0;
  }
  subcommand('inject', positionals, ['tick'] as const);
  noMorePositionals('inject', positionals, 1);
  if (values.symbol === undefined) throw new UsageError('inject tick: --symbol is required');
  if (values.price === undefined) throw new UsageError('inject tick: --price is required');
  const markPrice = checkPrice('price', values.price);
  const indexPrice = values.index === undefined ? undefined : checkPrice('index', values.index);
  const timestampMs = values.ts === undefined ? undefined : timeOption(values.ts);
  const given = intOption('sequence', values.sequence, 0, Number.MAX_SAFE_INTEGER);
  const givenSymbol = values.symbol;
  const waitSeconds = values.wait === undefined ? DEFAULT_WAIT_SECONDS : waitOption(values.wait);
  return withTarget(values, async (deployment) => {
    // A configured market only (margin-check would drop any other as tick/unknown-symbol), as replay and seed do.
    const config = riskConfigFor(deployment, values.config);
    const symbol = resolveSymbol(config, givenSymbol, undefined);
    // AWS's time (ops49b-tick-clock): margin-check judges the tick's stamp by its Lambda's clock, AWS-synchronised, so
    // the stamp, the preview of its verdict (too far ahead, too old) and a first tick's sequence by time are AWS's. The
    // machine's clock where the answers say it agrees (as before; the stamp as close to AWS's as known), else the lower
    // bound: a machine minutes fast stamped ticks margin-check refused as tick/future, and foretold a fresh --ts so.
    const clock = awsClockOf(deployment);
    const now = clock.agreedNowMs();
    const key = sentSequenceKey(deployment, symbol);
    const { markets } = adaptersOf(deployment);
    // One read: it numbers the tick and foretells its verdict.
    const state = await markets.get(symbol);
    // Claimed in the record before it is sent: a replay running meanwhile numbers on past it (walk43b-sequence-claim).
    const sequence =
      given ??
      claimSequences(
        stateDir(),
        key,
        sequenceAfter(state, now),
        1,
        marketConfig(config, symbol).maxSequenceJump,
      );
    const detail = tickDetail({
      symbol,
      markPrice,
      ...(indexPrice === undefined ? {} : { indexPrice }),
      timestampMs: timestampMs ?? now,
      sequence,
      source: values.source ?? TICK_SOURCE,
    });
    const parsed = parseTickDetail(detail);
    if (!parsed.ok) throw new UsageError(`inject tick: ${parsed.reason}`);
    const market = marketConfig(config, symbol);
    const judged = evaluateTick(parsed.tick, state ?? {}, market, clock.agreedNowMs());
    // A print that moves the market onto its numbering is judged again on it, as margin-check does.
    const verdict =
      judged.verdict === 'reject' && judged.rebase
        ? evaluateTick(parsed.tick, rebasedTickState(state ?? {}, judged.rebase), market, clock.agreedNowMs())
        : judged;
    const entry = tickEntry(deployment.names.busName, detail);
    // A given one (a claimed one is recorded by its claim), not one margin-check holds as a jump (a mistyped
    // --sequence): the next tick would continue from it.
    const record = () => {
      if (given !== undefined && (verdict.verdict === 'accept' || verdict.reason !== 'tick/sequence-jump'))
        recordSentSequence(stateDir(), key, sequence);
    };
    // A tick that may be on the bus: its sequence is taken, its JSON and the unknown-fate line said, exit 4.
    const unknownFate = (fate: { code: string; message: string }, why: string): ExitCode<'inject tick'> => {
      record();
      const said = {
        entry: { ...entry, Detail: detail },
        eventId: null,
        fate: { outcome: 'unknown', ...fate },
      };
      io.stdout.write(`${printable(JSON.stringify(said, null, 2), true)}\n`);
      return unknownFateExit(io.stderr, unknownFateLine(symbol, sequence, why, deployment));
    };
    let outcome: PutOutcome;
    try {
      outcome = await putEntries(deployment.clients.events, [entry]);
    } catch (error) {
      // One that left no request (no credentials) is NOT sent, said as any command's failure (feed49-put-not-sent).
      if (!(error instanceof PutEntriesError) || error.notSent !== undefined) throw error;
      // Its call got no answer: the tick may be on the bus, so its sequence is taken (feed49b-inject-unknown-fate).
      const cause = error.cause as { name?: unknown; message?: unknown };
      return unknownFate(
        {
          code: typeof cause?.name === 'string' ? cause.name : 'Error',
          message: firstLine(String(cause?.message ?? cause)),
        },
        noAnswerWords(error),
      );
    }
    const unknown = outcome.unknown[0];
    if (unknown) {
      // An answer that said nothing of the tick (no result, then perhaps a refusal): it may be on the bus, as after no
      // answer; waiting for its fate would end in "is the stack running?" (feed49c-inject-no-result).
      return unknownFate({ code: unknown.code, message: firstLine(unknown.message) }, noResultWords(unknown));
    }
    const refused = outcome.rejected[0];
    const sent = { entry: { ...entry, Detail: detail }, eventId: outcome.eventIds[0] ?? null };
    if (refused) {
      io.stdout.write(`${printable(JSON.stringify(sent, null, 2), true)}\n`);
      io.stderr.write(
        `backstop: the bus refused the tick: ${printable(refused.code)} ${printable(refused.message ?? '')}\n`,
      );
      return 1;
    }
    record();
    const fate = await awaitTickFate({
      markets,
      symbol,
      sequence,
      verdict,
      waitMs: waitSeconds * 1000,
      pollMs: 250,
    });
    // AWS's event id and the market record's breaker reason, escaped as JSON (terminal49-command-lines): the same data.
    io.stdout.write(`${printable(JSON.stringify({ ...sent, fate }, null, 2), true)}\n`);
    return reportFate(fate, symbol, sequence, io.stderr);
  });
});

/** Why a call that got no answer leaves its tick of unknown fate: its error, and the credentials advice if that was it. */
function noAnswerWords(error: PutEntriesError): string {
  const cause =
    error.cause instanceof Error
      ? `${error.cause.name}: ${firstLine(error.cause.message)}`
      : String(error.cause);
  const advice = credentialsFailure(error.cause);
  return `its PutEvents call got no answer (${cause})${advice === undefined ? '' : `; ${advice}`}`;
}

/**
 * Why an answer leaves its tick of unknown fate: it held no result for it (neither an event id nor an error code) through
 * its attempts, or a later call was refused after one such (feed49b-held-refused-unknown).
 */
function noResultWords(unknown: UnknownEntry): string {
  if (unknown.refusedAfter === undefined)
    return (
      "the bus's answer to its PutEvents call said nothing of it (no result for it: neither an event id nor an " +
      `error code, after ${attempts(unknown.attempts)})`
    );
  // Its message says the earlier answer said nothing of it.
  return `its last PutEvents call was refused (${unknown.code}: ${firstLine(unknown.message)})`;
}

/**
 * Why an inject's tick is of unknown fate (`why`: its PutEvents call got no answer, the network, a timeout, a 5xx; or
 * the answer said nothing of it), said as replay says its own (feed49b-inject-unknown-fate, feed49c-inject-no-result):
 * it may be on the bus or not, and how to find out.
 */
export function unknownFateLine(symbol: string, sequence: number, why: string, target: AdviceTarget): string {
  return (
    `inject/unknown-fate: ${symbol} tick ${sequence} is of unknown fate, on the bus or not: ${why}. ` +
    lastTickAdvice(symbol, sequence, `with --sequence ${sequence}`, target)
  );
}

/** The exit code of ticks of unknown fate, inject's and replay's (see their usage). */
export const UNKNOWN_FATE_EXIT = 4 satisfies ExitCode<'inject tick'> & ExitCode<'replay'>;

/** Says an unknown-fate line (`inject/unknown-fate`, `replay/unknown-fate`) on stderr, escaped: the exit code. */
export function unknownFateExit(
  stderr: { write(text: string): unknown },
  line: string,
): typeof UNKNOWN_FATE_EXIT {
  stderr.write(`backstop: ${printable(line)}\n`);
  return UNKNOWN_FATE_EXIT;
}

/**
 * How to find out what became of the last tick a command sent, of unknown fate, and send it again (`resend`: how).
 * Only the last: once the market took a later one, a tick sent again is never taken (evaluateTick: refused as
 * tick/out-of-order, or, stamped past the last print's stamp plus maxClockSkewSeconds, held as tick/sequence-behind).
 */
function lastTickAdvice(symbol: string, sequence: number, resend: string, target: AdviceTarget): string {
  return (
    `\`${backstopCommand(target, 'status')}\` shows ` +
    `${symbol}'s last sequence and any print its breaker holds: ${sequence} there is this tick, on the bus; sending it ` +
    `again ${resend} is safe (margin-check takes a sequence once)`
  );
}

/** What replayUnknownFateLine and the exit code read of a replay's outcome. */
export type ReplayFates = Pick<ReplayOutcome, 'unknown' | 'total' | 'lastMaybeOnBus' | 'lastTaken'>;

/**
 * Whether a tick of unknown fate had its price taken by the bus after it (cli50b-held-unknown-fate): a held tick, or the
 * file's last, followed by a held tick the bus took, which repeats the file's last price. Nothing is left to resend (a
 * resend is behind that tick); not on the bus, it left the market without its print until that tick, whose fate at
 * margin-check the bus does not tell (review50-cli2-held-claim).
 */
export function repeatedLater(fates: ReplayFates, unknown: ReplayOutcome['unknown'][number]): boolean {
  return unknown.index >= fates.total - 1 && (fates.lastTaken ?? Number.NEGATIVE_INFINITY) > unknown.sequence;
}

/** Exit 4 for ticks of unknown fate with something to find out and perhaps resend: not one repeatedLater. */
export const unknownFateMatters = (fates: ReplayFates): boolean =>
  fates.unknown.some((u) => !repeatedLater(fates, u));

/** How many sequences a line names of a group, as unknownLine names its ticks. */
const SEQUENCES_NAMED = 20;

/**
 * A group's sequences, at most SEQUENCES_NAMED of them and how many more: a flaky network's hours of held ticks named
 * every one, a line of thousands of numbers (final50b-unknown-fate-sequences-bounded).
 */
const sequencesWord = (ticks: readonly { readonly sequence: number }[]): string =>
  `sequence${ticks.length === 1 ? '' : 's'} ${ticks
    .slice(0, SEQUENCES_NAMED)
    .map((t) => t.sequence)
    .join(', ')}${ticks.length > SEQUENCES_NAMED ? `, ... ${ticks.length - SEQUENCES_NAMED} more` : ''}`;

/**
 * A replay's ticks of unknown fate, as inject says its own (cli50-replay-unknown-fate): by sequence, and what to do. The
 * last one, when no later tick may be on the bus (cli50b-replay-last-sent: one whose call made no request, or that the
 * bus refused, is not), is found out and sent again as inject's is (`inject tick` with its price and sequence, `flags`
 * the replay's --source and --config); one the replay sent later ticks after is past resending. A held tick (or the
 * file's last) repeats the file's last price: one a later held tick the bus took followed has nothing to resend
 * (cli50b-held-unknown-fate), said without claiming more than the bus told (review50-cli2-held-claim), and one
 * followed only by ticks of unknown fate has that price in the last one's resend.
 */
export function replayUnknownFateLine(
  symbol: string,
  fates: ReplayFates,
  priceOf: (index: number) => PriceE8 | undefined,
  target: AdviceTarget,
  flags = '',
): string {
  const { unknown } = fates;
  const last = unknown.at(-1)!;
  const price = priceOf(last.index);
  const resendable = last.sequence === fates.lastMaybeOnBus && price !== undefined;
  const others = resendable ? unknown.slice(0, -1) : unknown;
  const repeated = others.filter((u) => repeatedLater(fates, u));
  // The file's last price, past resending, in the resend above (only held ticks of unknown fate follow it).
  const lastPrice = resendable
    ? others.filter((u) => !repeatedLater(fates, u) && u.index >= fates.total - 1)
    : [];
  const earlier = others.filter((u) => !repeated.includes(u) && !lastPrice.includes(u));
  // Named by sequence after a group named so.
  const named = repeated.length > 0 || lastPrice.length > 0;
  const one = (ticks: readonly unknown[], single: string, many: string) =>
    ticks.length === 1 ? single : many;
  const advice = [
    ...(resendable
      ? [
          lastTickAdvice(
            symbol,
            last.sequence,
            `(\`${backstopCommand(target, `inject tick --symbol ${symbol} --price ${formatPrice(price)} --sequence ${last.sequence}${flags}`)}\`)`,
            target,
          ),
        ]
      : []),
    // What the bus told, no more: a print of that price it took later, not what margin-check made of it, nor of the
    // one of unknown fate (review50-cli2-held-claim).
    ...(repeated.length > 0
      ? [
          `${sequencesWord(repeated)} sent the file's last price, which the bus took after ${one(repeated, 'it', 'them')} in ` +
            `held tick ${fates.lastTaken}: nothing to resend, ${one(repeated, 'it is', 'they are')} behind ${fates.lastTaken}; if not ` +
            `on the bus, ${one(repeated, 'it', 'they')} left the market without that print until ${fates.lastTaken}, and the bus ` +
            `taking ${fates.lastTaken} is not margin-check taking it (\`${backstopCommand(target, 'status')}\` shows ${symbol}'s last sequence)`,
        ]
      : []),
    ...(lastPrice.length > 0
      ? [
          `${sequencesWord(lastPrice)} sent the file's last price, which sending ${last.sequence} again sends: past ` +
            `resending, later ticks following ${one(lastPrice, 'it', 'them')}`,
        ]
      : []),
    ...(earlier.length > 0
      ? [
          `${named ? `${sequencesWord(earlier)} ${one(earlier, 'was', 'were')}` : resendable ? `the ${one(earlier, 'other was', `other ${earlier.length} were`)}` : one(earlier, 'It was', 'They were')} ` +
            'followed by later ticks of the replay: once the market takes one, ' +
            (earlier.length === 1
              ? 'a tick sent again behind it is never taken ' +
                "(refused as out of order, or held as tick/sequence-behind when stamped more than maxClockSkewSeconds after the market's " +
                'last print, as one sent again now may be: harmless, but it pages FeedNumberingAlarm), so it is'
              : // Two behind, the second continuing the held first, are a feed restarted lower to evaluateTick: once the
                // mark is stale it follows them, an old price taken (review50-venue-resend-several).
                'each sent again behind it is refused as out of order or held as tick/sequence-behind (paging ' +
                'FeedNumberingAlarm), but two or more in order on a stale mark, breakerConfirmSeconds apart, move the market ' +
                'back onto their numbering, an old price taken as its mark: never send them again. They are') +
            ', if not on the bus, prices of the file the market did not see',
        ]
      : []),
  ];
  const said = advice.join('; ');
  return `replay/unknown-fate: ${symbol}: ${unknownLine(unknown)}. ${said.charAt(0).toUpperCase()}${said.slice(1)}`;
}

function waitOption(value: string): number {
  if (!/^\d{1,4}$/.test(value.trim()))
    throw new UsageError(`--wait: "${value}" is not a whole number of seconds`);
  return Number(value.trim());
}

/** One line on stderr for a tick that did not drive the market, and the exit code (see INJECT_USAGE); stored text escaped. */
export function reportFate(
  fate: TickFate,
  symbol: string,
  sequence: number,
  stderr: { write(text: string): unknown },
): ExitCode<'inject tick'> {
  switch (fate.outcome) {
    case 'accepted':
      return 0;
    case 'sent':
      if (fate.expected === 'accept' || fate.reason === 'tick/unconfirmed') return 0;
      stderr.write(
        `backstop: the circuit breaker will hold tick ${sequence} (${printable(fate.reason)}): it liquidates nothing\n`,
      );
      return 3;
    case 'held':
      if (fate.reason === 'tick/unconfirmed') {
        stderr.write(`backstop: ${symbol}'s first print (${sequence}) waits for a second that agrees\n`);
        return 0;
      }
      stderr.write(
        `backstop: the circuit breaker holds tick ${sequence} (${printable(fate.reason)}): it liquidates nothing\n`,
      );
      return 3;
    case 'refused':
      stderr.write(
        `backstop: margin-check refuses tick ${sequence}: ${printable(fate.reason)} (${printable(fate.detail)})\n`,
      );
      return 3;
    case 'not-handled':
      stderr.write(
        `backstop: ${symbol} shows neither accepted nor held tick ${sequence} after ${Math.round(fate.waitedMs / 1000)} s: ` +
          'is the stack running (backstop local up), or did margin-check refuse it since (its logs say why)?\n',
      );
      return 4;
  }
}

export const runReplay: Command<'replay'> = operatorCommand(async (argv, io) => {
  const { positionals, values } = parseCommand(argv, REPLAY_OPTIONS);
  if (values.help) {
    io.stdout.write(REPLAY_USAGE);
    return 0;
  }
  const file = positionals[0];
  if (file === undefined) throw new UsageError('replay: missing the price file (backstop replay FILE.csv)');
  noMorePositionals('replay', positionals, 1);
  const speed = parseSpeedOption(values.speed ?? '60x');
  if (values['hold-every'] !== undefined && !values.hold)
    throw new UsageError('--hold-every: only with --hold (the replay ends with the file without it)');
  const holdEverySeconds = intOption('hold-every', values['hold-every'], 1, 3600) ?? HOLD_EVERY_SECONDS;
  if (values['stranded-after'] !== undefined && !values.hold)
    throw new UsageError('--stranded-after: only with --hold (the replay ends with the file without it)');
  const confirmMs =
    (intOption('stranded-after', values['stranded-after'], 0, 3600) ?? STRANDED_CONFIRM_MS / 1000) * 1000;
  const points = readPriceFile(file);
  return withTarget(values, async (deployment) => {
    const risk = riskConfigFor(deployment, values.config);
    const symbol = resolveSymbol(risk, values.symbol, file, true);
    const { maxMarkAgeSeconds, maxSequenceJump } = marketConfig(risk, symbol);
    if (values.hold && holdEverySeconds >= maxMarkAgeSeconds)
      throw new UsageError(
        `--hold-every: ${holdEverySeconds} s would let ${symbol}'s mark go stale between held ticks ` +
          `(its maxMarkAgeSeconds is ${maxMarkAgeSeconds}): give less`,
      );
    const key = sentSequenceKey(deployment, symbol);
    const { markets } = adaptersOf(deployment);
    // A first tick's sequence by time, and each tick's stamp, by AWS's clock (ops49b-tick-clock, as inject's): the
    // stamps the machine's clock moved by AWS's offset as the run starts, fixed, so they keep its order.
    const startMs = awsClockOf(deployment).agreedNowMs();
    const stampOffsetMs = startMs - Date.now();
    const firstSequence = await nextSentSequence(markets, symbol, key, startMs, maxSequenceJump);
    const progress = new ProgressBar(io.stderr);
    const abort = new AbortController();
    const onSignal = () => abort.abort();
    process.once('SIGINT', onSignal);
    let outcome: ReplayOutcome;
    // Its looks at the stack before each held tick; a hold they end is said, and the exit code says it too.
    // The looks' read of the auctions table, tried at the first looks (ops50-watch-permission, review50-ops-probe-bounded).
    const probe = lookPermissionProbe(deployment, 'replay --hold');
    const looks = holdLooks({
      // Only what it judges, the liquidations table's one Scan: never the positions (a whole book), the auctions or
      // the fund, on every held tick (status46-watch-scans).
      collect: async () => {
        await probe();
        return collectLiquidationWork(deployment);
      },
      everyMs: holdEverySeconds * 1000,
      confirmMs,
      target: deployment,
      onLook: (liquidations) =>
        progress.update('hold', liquidations.total - liquidations.nonTerminal, liquidations.total),
      warn: (line) => {
        // Above the bar, which the next look draws again.
        progress.done();
        io.stderr.write(`backstop: ${printable(line)}\n`);
      },
    });
    const lastPrice = points.at(-1)?.price;
    const workWords = () => {
      const work = looks.work();
      return work
        ? `${work.nonTerminal} of ${work.total} liquidations not terminal`
        : "the stack's status not read";
    };
    try {
      outcome = await replayPrices({
        points,
        symbol,
        busName: deployment.names.busName,
        events: deployment.clients.events,
        speed,
        firstSequence,
        stampOffsetMs,
        ...(values.source === undefined ? {} : { source: values.source }),
        // Each batch's sequences are claimed in the record before they are sent, past any the market has seen: an
        // inject run meanwhile took the replay's next sequence, and margin-check refused the replay's tick as a
        // duplicate without a word (walk43b-sequence-claim).
        claim: async (next, count) => {
          const seen = sequenceAfter(await markets.get(symbol), next);
          return claimSequences(stateDir(), key, Math.max(next, seen), count, maxSequenceJump);
        },
        onRenumber: (from, to) =>
          io.stderr.write(
            `backstop: replay: ${symbol} sequence${from === to ? ` ${from} was` : `s ${from}..${to} were`} taken by ` +
              'another sender (an inject tick, another replay): the replay numbers its ticks on after ' +
              `${from === to ? 'it' : 'them'}, no price lost\n`,
          ),
        onProgress: (sent, total) => progress.update('replay', sent, total),
        signal: abort.signal,
        backlog: {
          limit: REPLAY_AHEAD_LIMIT,
          handled: () => handledTicks(markets, symbol),
          stallMs: REPLAY_STALL_MS,
          pollMs: REPLAY_POLL_MS,
        },
        ...(values.hold
          ? {
              hold: {
                everyMs: holdEverySeconds * 1000,
                pending: looks.pending,
                putMayHeal: heldPutMayHeal,
                onSent: (sequence: number) => {
                  // A log (CI, a file) gets a line per held tick; a terminal has the bar.
                  if (!io.stderr.isTTY && lastPrice !== undefined)
                    io.stderr.write(
                      `backstop: hold: ${symbol} ${formatPrice(lastPrice)} sent again as sequence ${sequence}; ${workWords()}\n`,
                    );
                },
                // Not put: said on a terminal too, above the bar, as the hold goes on (feed49c-held-tick-line).
                onNotPut: (sequence: number, notPut: HeldNotPut) => {
                  progress.done();
                  io.stderr.write(
                    `backstop: hold: ${printable(heldNotPutLine(symbol, lastPrice, sequence, notPut))}; ${workWords()}\n`,
                  );
                },
              },
            }
          : {}),
      });
    } finally {
      process.off('SIGINT', onSignal);
      progress.done();
    }
    // Its dead-letter advice names the queue of this target (ux46-advice-target).
    const stalled = outcome.stalled && withTargetFlags(outcome.stalled, deployment);
    // Said as any command's failure is (the network, a timeout, an AWS error), after the outcome so far.
    const failed = outcome.error === undefined ? undefined : failureLine(outcome.error);
    const summary = {
      file: basename(file),
      symbol,
      speed: values.speed ?? '60x',
      total: outcome.total,
      sent: outcome.sent,
      held: outcome.held,
      accepted: outcome.accepted,
      rejected: outcome.rejected.length,
      ...(outcome.renumbered.length > 0 ? { renumbered: outcome.renumbered } : {}),
      ...(stalled ? { stalled } : {}),
      ...(failed ? { failed } : {}),
      ...(outcome.refusedWhole
        ? {
            refusedWhole: {
              sequence: outcome.refusedWhole.sequence,
              code: outcome.refusedWhole.code,
              message: outcome.refusedWhole.message,
              scope: outcome.refusedWhole.scope,
            },
          }
        : {}),
      firstSequence: outcome.firstSequence,
      lastSequence: outcome.lastSequence,
      rejections: outcome.rejected
        .slice(0, 20)
        .map((r) => ({ index: r.index, code: r.code, message: r.message, sequence: r.sequence })),
      // On the bus, and not taken by margin-check: its breaker held them or refused them while it confirmed a move, or
      // a rule refused them that records nothing else (too old, out of order, ...: the market's refusal traces).
      notTaken: outcome.notTaken.length,
      ...(outcome.notTaken.length > 0 ? { notTakenTicks: outcome.notTaken.slice(0, 20) } : {}),
      // Their call left no request (no credentials): not on the bus, not of unknown fate (feed49-put-not-sent).
      ...(outcome.notSent
        ? { notSent: outcome.notSent.length, notSentTicks: outcome.notSent.slice(0, 20) }
        : {}),
      ...(outcome.unknown.length > 0
        ? {
            unknownFate: outcome.unknown.length,
            unknownTicks: outcome.unknown
              .slice(0, 20)
              .map((u) => ({ sequence: u.sequence, code: u.code, message: u.message })),
          }
        : {}),
    };
    // The bus's and AWS's text (rejections, refusedWhole, failed) escaped as JSON (more48-terminal-text).
    if (values.json) io.stdout.write(`${printableJson(summary)}\n`);
    else {
      io.stdout.write(`${replayedLine(summary)}\n`);
      for (const r of summary.rejections)
        io.stdout.write(`  sequence ${r.sequence}: ${printable(r.code)} ${printable(r.message ?? '')}\n`);
      if (outcome.unknown.length > 0) io.stdout.write(`  ${printable(unknownLine(outcome.unknown))}\n`);
      if (outcome.notSent) io.stdout.write(`  ${printable(notSentLine(outcome.notSent))}\n`);
    }
    // Taken by the bus, not by margin-check: said, never left silent (feed47-replay-breaker).
    for (const line of notTakenLines(symbol, outcome.notTaken))
      io.stderr.write(`backstop: replay: ${printable(line)}\n`);
    // The bus taking a tick is not margin-check accepting it: a print its breaker holds liquidates nothing.
    const market = await markets.get(symbol).catch(() => undefined);
    if (market?.breaker && market.breaker.reason !== 'tick/unconfirmed')
      io.stderr.write(
        `backstop: ${symbol}'s circuit breaker holds tick ${market.breaker.tick.sequence} ` +
          `(${printable(market.breaker.reason)}, ${formatPrice(market.breaker.tick.markPrice)}): it liquidated nothing, and the ` +
          'next print within the band of the last mark (and of its price window, if any), or of this one once the move has persisted for the ' +
          `market's breakerConfirmSeconds, closes the breaker (${backstopCommand(deployment, 'status')})\n`,
      );
    // Said whatever else ended the replay: what to do about them (cli50-replay-unknown-fate).
    if (outcome.unknown.length > 0) {
      const flags = [
        ...(values.source === undefined ? [] : ['--source', values.source]),
        ...(values.config === undefined ? [] : ['--config', values.config]),
      ];
      io.stderr.write(
        `backstop: ${printable(
          replayUnknownFateLine(
            symbol,
            outcome,
            (index) => points[index]?.price ?? lastPrice,
            deployment,
            flags.map((f) => ` ${shellWord(f)}`).join(''),
          ),
        )}\n`,
      );
    }
    if (failed) {
      io.stderr.write(
        `backstop: replay/failed: ${printable(failed)}; the replay stopped there, its outcome so far above\n`,
      );
      return 1;
    }
    if (stalled) {
      io.stderr.write(`backstop: ${printable(stalled)}\n`);
      return 1;
    }
    if (outcome.refusedWhole) {
      io.stderr.write(`backstop: ${printable(refusedWholeLine(symbol, outcome))}\n`);
      return 1;
    }
    const holdFailure = looks.ended();
    if (holdFailure) {
      io.stderr.write(`backstop: ${printable(holdFailure)}\n`);
      return 1;
    }
    // Ctrl-C during a hold ends it, the file sent: the documented way to stop holding, not an interruption.
    if (abort.signal.aborted && outcome.sent < outcome.total) return 130;
    // A tick of unknown fate may not be on the bus either: the file did not surely reach the stack (review47-replay-
    // unknown-exit); said as inject says its own, exit 4, a refused one's 1 first (cli50-replay-unknown-fate). Not for
    // one whose price the bus took again later in a held tick: nothing is left to resend (cli50b-held-unknown-fate).
    if (outcome.rejected.length > 0) return 1;
    return unknownFateMatters(outcome) ? UNKNOWN_FATE_EXIT : 0;
  });
});

/**
 * What became of a held tick the bus did not put (ReplayHold.onNotPut): refused, not on the bus, or of unknown fate,
 * on the bus or not; the hold goes on, its next tick sent as the last was.
 */
export function heldNotPutLine(
  symbol: string,
  price: PriceE8 | undefined,
  sequence: number,
  notPut: HeldNotPut,
): string {
  const tick = `${symbol}${price === undefined ? '' : ` ${formatPrice(price)}`} as sequence ${sequence}`;
  if (notPut.fate === 'refused') {
    const r = notPut.refused;
    return (
      `${tick} refused by EventBridge, not on the bus: ${r.code}${r.message ? ` (${firstLine(r.message)})` : ''}, ` +
      `${howRefused(r)}; the hold goes on`
    );
  }
  const u = notPut.unknown;
  return (
    `${tick} of unknown fate, on the bus or not: ${u.code}${u.message ? ` (${firstLine(u.message)})` : ''}, after ` +
    `${attempts(u.attempts)}; the hold goes on`
  );
}

/** A replay's first line of text: what it sent, and what the bus took. */
export function replayedLine(s: {
  readonly file: string;
  readonly symbol: string;
  readonly speed: string;
  readonly total: number;
  readonly sent: number;
  readonly held: number;
  readonly accepted: number;
  readonly rejected: number;
  readonly firstSequence: number;
  readonly lastSequence: number;
}): string {
  const held = s.held === 0 ? '' : `, then its last price ${s.held === 1 ? 'once' : `${s.held} times`}`;
  return (
    `replayed ${s.sent} of ${s.total} prices of ${s.file} as ${s.symbol} ticks ` +
    `(sequences ${s.firstSequence}..${s.lastSequence}, speed ${s.speed}${held}): ` +
    `${s.accepted} taken by the bus, ${s.rejected} refused by it`
  );
}

/**
 * Why a replay stopped at a PutEvents call refused whole, or at its tick refused by policy (ReplayOutcome.refusedWhole):
 * every next call would be refused the same (follow47-replay-call-refused, review47-replay-entry-policy).
 */
function refusedWholeLine(symbol: string, outcome: ReplayOutcome): string {
  const r = outcome.refusedWhole!;
  const put = outcome.accepted;
  const left = outcome.total - outcome.sent;
  const refused =
    r.scope === 'call'
      ? `the whole PutEvents call of ${symbol} sequence ${r.sequence}`
      : `${symbol} sequence ${r.sequence} by policy`;
  return (
    `replay/refused: EventBridge refused ${refused}: ${r.code}` +
    `${r.message ? ` (${r.message})` : ''}. Every next call would be refused the same (the caller's credentials, or ` +
    "the bus's policy: with backstop:tickPublishersOnly only the feed principals may put ticks), so the replay " +
    `stopped there: ${counted(put, 'tick', 'ticks')} put before it` +
    `${left > 0 ? `, ${left} of the file's ${outcome.total} prices not sent` : ''}`
  );
}

/**
 * The error that ended a replay (ReplayOutcome.error), in a line. A failed PutEvents call is said by the publisher's
 * message: how often the call was sent (a held tick's up to 5 times: timeouts48-held-put), its error's name and message.
 */
function failureLine(error: unknown): string {
  if (error instanceof PutEntriesError) {
    // The advice environmentFailure gives a call failed for want of credentials, after the publisher's words.
    const advice = credentialsFailure(error.cause);
    const said = firstLine(error.message);
    return advice === undefined ? said : `${said}; ${advice}`;
  }
  const said = environmentFailure(error);
  if (said !== undefined) return said;
  return error instanceof Error ? `${error.name}: ${firstLine(error.message)}` : String(error);
}

/**
 * A replay's ticks of unknown fate, by their sequences (feed48-unknown-sequences): a PutEvents answered without their
 * result, or a call that failed without an answer. Each may be on the bus or not.
 */
export function unknownLine(unknown: ReplayOutcome['unknown']): string {
  const n = unknown.length;
  const shown = unknown
    .slice(0, SEQUENCES_NAMED)
    .map((u) => `${u.sequence} (${u.code})`)
    .join(', ');
  return (
    `${counted(n, 'tick', 'ticks')} of unknown fate, on the bus or not: sequence${n === 1 ? '' : 's'} ` +
    `${shown}${n > SEQUENCES_NAMED ? `, ... ${n - SEQUENCES_NAMED} more` : ''}`
  );
}

/** A replay's ticks whose call left no request (ReplayOutcome.notSent): not on the bus, and why. */
export function notSentLine(notSent: NonNullable<ReplayOutcome['notSent']>): string {
  const n = notSent.length;
  const shown = notSent
    .slice(0, 20)
    .map((t) => t.sequence)
    .join(', ');
  return (
    `${counted(n, 'tick', 'ticks')} NOT sent, not on the bus: sequence${n === 1 ? '' : 's'} ${shown}` +
    `${n > 20 ? `, ... ${n - 20} more` : ''} (${notSent[0]!.reason})`
  );
}

/** Why margin-check refuses a tick so (docs/FEED.md's table), for a replay's line of the kind. */
const REFUSAL_WHY: Record<TracedRefusal, string> = {
  'tick/non-positive': 'a price not above 0',
  'tick/duplicate': 'its sequence was taken by another print',
  'tick/out-of-order': 'numbered or stamped behind what the market recorded',
  'tick/future': 'stamped ahead of the clock by more than maxClockSkewSeconds',
  'tick/too-old': 'older than maxTickAgeSeconds when margin-check judged it: the stack is behind',
  'tick/index-band': 'too far from its index price',
  'tick/sequence-jump': "numbered past maxSequenceJump above the market's sequence: held",
  'tick/sequence-behind': "numbered behind the market's sequence with a later stamp: held",
  'tick/sequence-confirming': 'it continues a held print before the market follows that numbering',
};

/** What a replay says of its ticks on the bus that margin-check did not take (ReplayOutcome.notTaken). */
export function notTakenLines(symbol: string, notTaken: readonly TickNotTaken[]): string[] {
  const confirming = notTaken.filter((t) => t.reason === 'tick/breaker-confirming');
  const held = notTaken.filter((t) => t.reason !== 'tick/breaker-confirming' && !isTracedRefusal(t.reason));
  // By kind, in the order margin-check judges them (its refusal traces: too old, out of order, ...).
  const refused = TRACED_REFUSALS.map((reason) => notTaken.filter((t) => t.reason === reason)).filter(
    (ticks) => ticks.length > 0,
  );
  const list = (ticks: readonly TickNotTaken[]) =>
    `${ticks
      .slice(0, 20)
      .map((t) => t.sequence)
      .join(', ')}${ticks.length > 20 ? ', ...' : ''}`;
  return [
    ...(held.length > 0
      ? [
          `${symbol}'s circuit breaker held ${held.length} of the replay's ticks (${[
            ...new Set(held.map((t) => t.reason)),
          ].join(', ')}; sequence${held.length > 1 ? 's' : ''} ${list(held)}): they liquidated nothing`,
        ]
      : []),
    ...(confirming.length > 0
      ? [
          `margin-check refused ${confirming.length} of the replay's ticks as tick/breaker-confirming ` +
            `(sequence${confirming.length > 1 ? 's' : ''} ${list(confirming)}): they agreed with the move ${symbol}'s ` +
            "circuit breaker held sooner than the market's breakerConfirmSeconds after it, and liquidated nothing; " +
            'the first print agreeing with it once it has persisted that long is followed',
        ]
      : []),
    ...refused.map(
      (ticks) =>
        `margin-check refused ${ticks.length} of the replay's ticks as ${ticks[0]!.reason} ` +
        `(sequence${ticks.length > 1 ? 's' : ''} ${list(ticks)}): ${ticks.length === 1 ? 'it' : 'they'} liquidated ` +
        `nothing (${REFUSAL_WHY[ticks[0]!.reason as TracedRefusal]})`,
    ),
  ];
}

/**
 * Ticks a replay keeps sent and not yet handled, at most; how often it looks; and how long it waits for a stack
 * handling none. One (review46-replay-order): EventBridge keeps no order between events, so two ticks of the market
 * in flight together may reach margin-check in either order, and the older, landing second, is refused as out of
 * order: a price of the file lost and counted towards TicksOutOfOrderAlarm (on AWS; moto and the local runner
 * deliver in order). A replay at max speed is a feed as fast as the stack records its ticks, never faster: each
 * next tick waits until the market shows the last (recorded, or held by its breaker), looked at every 100 ms. (20
 * queued had a README-sized replay's ticks refused as too old: margin-check handles a market's ticks one after
 * another, and one crossing many positions takes tens of seconds on the emulator.)
 */
export const REPLAY_AHEAD_LIMIT = 1;
export const REPLAY_POLL_MS = 100;
const REPLAY_STALL_MS = 60_000;

/** After what the market has seen and what these commands sent it (ticks of a replay may still be queued). */
async function nextSentSequence(
  markets: MarketRepository,
  symbol: string,
  key: string,
  nowMs: number,
  maxSequenceJump: number,
) {
  return afterSent(await nextSequence(markets, symbol, nowMs), key, maxSequenceJump);
}

/**
 * After the market's sequence and the last one sent from here. A sent one that would jump the market's (a mistyped
 * `--sequence`, held by margin-check as tick/sequence-jump) is not continued: that would move the market onto it.
 */
function afterSent(seen: number, key: string, maxSequenceJump: number): number {
  const sent = lastSentSequence(stateDir(), key);
  if (sent === undefined || !continuesSent(sent, seen, maxSequenceJump)) return seen;
  return Math.max(seen, sent + 1);
}

function parseSpeedOption(text: string) {
  try {
    return parseSpeed(text);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}
