import { indexOpenLiquidations } from '../../shared/adapters/aws/liquidations.ts';
import { MAX_ADL_EVENTS_KEPT } from '../../shared/domain/adl.ts';
import { awsClockOf, backstopCommand, shellWord } from '../../shared/local/deployment.ts';
import { silentTelemetry } from '../../shared/ports/index.ts';
import { encodeMessage } from '../../shared/schemas/messages.ts';
import { type WatchReport, watchLiquidations } from '../../shared/services/liquidation-watch.ts';
import { intOption, UsageError } from '../args.ts';
import type { ExitCode } from '../exit-codes.ts';
import { printable, printableFields, printableJson } from '../printable.ts';
import { CONFIG_FILE_HELP } from '../risk-config.ts';
import {
  adaptersOf,
  type Command,
  deployedRiskConfig,
  noMorePositionals,
  OperatorInputError,
  operatorCommand,
  parseCommand,
  refuseOthersOptions,
  type SubcommandOptions,
  subcommand,
  TARGET_OPTIONS,
  TARGET_USAGE,
  withTarget,
} from './common.ts';
import {
  collectLiquidation,
  collectPositionLiquidations,
  renderLiquidation,
  renderPositionLiquidations,
} from './liquidation-show.ts';

/**
 * `liquidations overdue`: what liquidation-watch alarms on, and resuming it once the cause is known; `liquidations
 * show`: one liquidation's story.
 */

export const LIQUIDATIONS_USAGE = `Usage: backstop liquidations overdue [--all] [--resend] [--max N] [--config FILE.json] [--json]
       backstop liquidations index [--json]
       backstop liquidations show <liquidationId> | --position <positionId> [--json]

  overdue   the open liquidations past the longest their state may stay quiet (what liquidation-watch
            alarms on, LiquidationsOverdueAlarm), the longest overdue first: no message is moving them
            (a purged queue, a message lost to a fault, a feed stale for an hour)
  --all     every open liquidation, however young: when messages are known lost (a queue purged, dead
            letters expired), resend them at once instead of waiting for them to be overdue
  --resend  sends each one listed a message of its own; the consumer resumes it from its record (a twin of
            a message still in flight does no harm: every delivery is idempotent)
  index     once, on a stack deployed before session 38: lists in the open index the open liquidations
            written before it existed, which liquidation-watch cannot see until their next write (a Scan of
            the liquidations table, listing only those not ended; an item it cannot read is named and left,
            exit 1; a re-run changes nothing)
  show      one liquidation, read-only: its position, the tick that triggered it (mark, sequence, the feed's
            time); what the claim read and applied (the position, its liquidation and bankruptcy prices, the
            margins, the fee rate, the slippage bound behind the limit, the size planned and why), every state
            with its time, the market fills (each one's distance from the mark), what remains, its last failure,
            its slices and waits for the book; its auction (each provider's fill, with its step's time and mark:
            one made before session 52 while its provider's record keeps it, how it ended); its settlement
            (what the trader paid and what the fund received as the fee, against the rate at the claim; what
            the trader lost and who bore the loss beyond the collateral: the shortfall, what the fund paid, bad
            debt, ADL's counterparties with what each closed and gave, and each one's rank among them); and the
            insurance fund's journal entries keyed by it. Sizes in the market's base unit, prices and money
            in its quote, exactly; percents to 0.01, toward zero; times in UTC. Liquidations claimed before
            session 51 say their claim facts are not recorded (docs/DEPLOY.md, "Answering a trader").
            Exit 2 when there is no such liquidation. ADL's further rounds (a deficit beyond one
            transaction of counterparties) are counted; their counterparties are not recorded on the
            liquidation, but each counterparty's position names it (--position)
  --position ID          show: the liquidations of a position (found by key among the ids of its versions,
                         <position id>:<version>, its latest 1000; no scan), the oldest first; and, when ADL
                         reduced or closed it, which liquidations' ADL did (and which round), what it closed
                         at which mark and gave, and its rank in a settlement's ADL: the latest
                         ${MAX_ADL_EVENTS_KEPT} its record keeps, with how many in all
  --max N                most listed and resent (default 100; with --all, every one)
  --config FILE.json     the risk configuration deployed (required on aws and localstack: the auction's tail
                         and the venue check's hold set how long a liquidation may stay quiet):
${CONFIG_FILE_HELP}  --json                 JSON instead of text (show: the fields of LiquidationShow, or PositionLiquidations with
                         --position, in cli/ops/liquidation-show.ts; amounts are decimal strings in their units,
                         times ISO-8601 UTC, a field absent when the records do not have it)
${TARGET_USAGE}`;

/** The most `--max` takes. */
const MAX_OPTION = 100_000;

/** The ones `overdue --resend` left unsent: how many, the advice, and its commands (for the same target). */
export interface NotResent {
  readonly count: number;
  /** The text output's last line. */
  readonly advice: string;
  /** The runs it advises, as printed: the same run again, then a higher --max when --max takes one. */
  readonly commands: readonly string[];
}

/**
 * What `overdue --resend` left unsent (overdue46-more-unsent), undefined when it did not. The rest waits for a run after
 * these moved (each resend makes its liquidation young again), or a higher --max: never one past what --max takes, which
 * the operator's copy would have refused (final46-resend-max-bound). `again(max)`: the run again, as a command for the
 * same target (ux46-advice-target). The text prints `advice`; --json has it all (ops47-overdue-json-advice).
 */
export function notResent(
  found: number,
  resent: number,
  max: number,
  all: boolean,
  again: (max: number) => string,
): NotResent | undefined {
  const unsent = found - resent;
  if (unsent <= 0) return undefined;
  const higher = Math.min(found, MAX_OPTION);
  const commands = [again(max), ...(higher > max ? [again(higher)] : [])];
  return {
    count: unsent,
    advice: `${unsent} more ${all ? 'open' : 'overdue'} not resent (--max ${max}): run ${commands[0]} again once these have moved${commands[1] ? `, or ${commands[1]}` : ''}`,
    commands,
  };
}

/** `overdue --resend`'s last line when it left some unsent (notResent's advice), undefined when it did not. */
export function notResentLine(
  found: number,
  resent: number,
  max: number,
  all: boolean,
  again: (max: number) => string,
): string | undefined {
  return notResent(found, resent, max, all, again)?.advice;
}

/**
 * The first line of `overdue` (without --all): the open ones too young to judge are counted, so that none judged does
 * not read as none open (ux45-overdue-none-judged).
 */
export function overdueHeadline(report: WatchReport, listed: number, nowMs: number): string {
  const more = report.overdue > listed ? ` (the ${listed} longest overdue below)` : '';
  const open = report.young?.open ?? 0;
  if (open === 0)
    return `${report.overdue} overdue of ${report.judged} open liquidations old enough to judge${more}`;
  // Counted up to a bound (ux45-young-read-bounded): at least that many, the first judged within the time said.
  const bounded = report.young?.more === true;
  const young = `${bounded ? 'at least ' : ''}${open}`;
  const first = report.young?.firstJudgedAtMs;
  const when =
    first === undefined
      ? ''
      : ` (the first ${bounded ? 'within' : 'in'} ${Math.max(1, Math.ceil((first - nowMs) / 60_000))} min)`;
  return report.judged === 0
    ? `0 overdue; ${young} open, none old enough to judge yet${when}`
    : `${report.overdue} overdue of ${report.judged} open liquidations old enough to judge${more}; ${young} more open, too young to judge${when}`;
}

export const LIQUIDATIONS_OPTIONS = {
  ...TARGET_OPTIONS,
  all: { type: 'boolean' },
  resend: { type: 'boolean' },
  max: { type: 'string' },
  config: { type: 'string' },
  json: { type: 'boolean' },
  position: { type: 'string' },
} as const;

type Values = ReturnType<typeof parseCommand<typeof LIQUIDATIONS_OPTIONS>>['values'];

/** liquidations' options of one of its subcommands: index takes none of them. */
export const LIQUIDATIONS_SUBCOMMANDS: SubcommandOptions = {
  overdue: ['all', 'resend', 'max', 'config'],
  index: [],
  show: ['position'],
};

/** `liquidations show`: read-only, by key (a liquidation, or a position's by the ids of its versions). */
async function show(
  positionals: readonly string[],
  values: Values,
  io: Parameters<Command>[1],
): Promise<ExitCode> {
  const id = positionals[1];
  const positionId = values.position;
  if (positionId !== undefined) {
    noMorePositionals('liquidations show --position', positionals, 1);
    if (positionId.trim() === '') throw new UsageError('liquidations show: --position needs a position id');
  } else {
    if (id === undefined || id.trim() === '')
      throw new UsageError(
        'liquidations show: a liquidation id (<position id>:<version>), or --position <id>',
      );
    noMorePositionals('liquidations show', positionals, 2);
  }
  return withTarget(values, async (deployment) => {
    const adapters = adaptersOf(deployment);
    const where = `stage ${deployment.stage} (${deployment.kind})`;
    if (positionId !== undefined) {
      const found = await collectPositionLiquidations(adapters, positionId);
      if (!found) throw new OperatorInputError(`liquidations show: no position "${positionId}" in ${where}`);
      io.stdout.write(
        values.json
          ? `${printableJson(found)}\n`
          : printable(renderPositionLiquidations(printableFields(found)), true),
      );
      return 0;
    }
    const shown = await collectLiquidation(adapters, id!);
    if (!shown) {
      // A position's id given for a liquidation's: say which command shows its liquidations.
      const position = await adapters.positions.get(id!);
      throw new OperatorInputError(
        position
          ? `liquidations show: "${id}" is a position, not a liquidation: ${backstopCommand(deployment, `liquidations show --position ${shellWord(id!)}`)}`
          : `liquidations show: no liquidation "${id}" in ${where} (a liquidation's id is <position id>:<version>; --position <id> lists a position's)`,
      );
    }
    io.stdout.write(
      values.json ? `${printableJson(shown)}\n` : printable(renderLiquidation(printableFields(shown)), true),
    );
    return 0;
  });
}

export const runLiquidations: Command = operatorCommand(async (argv, io) => {
  const { positionals, values } = parseCommand(argv, LIQUIDATIONS_OPTIONS);
  if (values.help) {
    io.stdout.write(LIQUIDATIONS_USAGE);
    return 0;
  }
  const action = subcommand('liquidations', positionals, ['overdue', 'index', 'show'] as const);
  refuseOthersOptions('liquidations', action, values, LIQUIDATIONS_OPTIONS, LIQUIDATIONS_SUBCOMMANDS);
  if (action === 'show') return show(positionals, values, io);
  noMorePositionals('liquidations', positionals, 1);
  if (action === 'index') {
    return withTarget(values, async (deployment) => {
      const outcome = await indexOpenLiquidations(
        deployment.clients.dynamo,
        deployment.names.tables.liquidations,
      );
      io.stdout.write(
        values.json
          ? `${printableJson(outcome)}\n`
          : `liquidations index: ${outcome.indexed} of ${outcome.open} open liquidations not yet listed are listed now\n`,
      );
      // Listed or not, every other item was: the unreadable ones are for an operator to look at.
      const { unreadable } = outcome;
      if (unreadable.length === 0) return 0;
      io.stderr.write(
        `liquidations index: ${unreadable.length} items could not be read as liquidations (not listed): ${printable(unreadable.slice(0, 20).join(', '))}${unreadable.length > 20 ? ', ...' : ''}\n`,
      );
      return 1;
    });
  }
  // --all means all: a purge's every liquidation, not the first 100 again and again.
  const max = intOption('max', values.max, 1, MAX_OPTION) ?? (values.all ? Number.MAX_SAFE_INTEGER : 100);
  return withTarget(values, async (deployment) => {
    const config = deployedRiskConfig(
      deployment,
      values.config,
      'liquidations overdue',
      "how long each state may stay quiet (the auction's tail, the venue check's hold)",
    );
    const adapters = adaptersOf(deployment);
    // The records' stamps are the functions', by AWS's clock: judged by the machine's, one hours ahead resent live work
    // (review49-cli-overdue-clock). The lower bound: overdue a second late at most, never early.
    const nowMs = awsClockOf(deployment).nowMs();
    const report = await watchLiquidations(adapters.liquidations, config, nowMs, silentTelemetry, max, {
      all: values.all === true,
      young: values.all !== true,
    });
    const resent = values.resend ? report.sample.map((l) => l.id) : [];
    // Ten to a call (the transport splits the list and retries failed entries).
    await adapters.liquidationQueue.sendBatch(
      resent.map((liquidationId) => encodeMessage({ liquidationId })),
    );
    const unsent = values.resend
      ? notResent(report.overdue, resent.length, max, values.all === true, (n) =>
          backstopCommand(
            deployment,
            `liquidations overdue${values.all ? ' --all' : ''} --resend --max ${n}${values.config === undefined ? '' : ` --config ${shellWord(values.config)}`}`,
          ),
        )
      : undefined;
    const listed = report.sample.map((l) => ({
      ...l,
      startedAt: new Date(l.startedAtMs).toISOString(),
      overdueSince: new Date(l.overdueSinceMs).toISOString(),
    }));
    if (values.json) {
      io.stdout.write(
        `${printableJson({
          judged: report.judged,
          overdue: report.overdue,
          ...(report.young
            ? {
                tooYoung: report.young.open,
                // Counted up to a bound: tooYoung is at least, and the first is judged by firstJudgedBy.
                ...(report.young.more ? { tooYoungAtLeast: true } : {}),
                ...(report.young.firstJudgedAtMs === undefined
                  ? {}
                  : {
                      [report.young.more ? 'firstJudgedBy' : 'firstJudgedAt']: new Date(
                        report.young.firstJudgedAtMs,
                      ).toISOString(),
                    }),
              }
            : {}),
          liquidations: listed,
          resent,
          // The text's last line and its commands, with the target's flags: the rest, for a script to run.
          ...(unsent ? { notResent: unsent } : {}),
        })}\n`,
      );
      return 0;
    }
    io.stdout.write(
      values.all
        ? `${report.overdue} open liquidations${report.overdue > listed.length ? ` (the ${listed.length} oldest below)` : ''}\n`
        : `${overdueHeadline(report, listed.length, nowMs)}\n`,
    );
    for (const l of listed) {
      const rounds = l.owesAdlRounds ? ', owes ADL rounds' : '';
      const failure = l.lastFailure ? `\n    last failure: ${printable(l.lastFailure)}` : '';
      const since = values.all ? `started ${l.startedAt}` : `overdue since ${l.overdueSince}`;
      io.stdout.write(
        `  ${printable(l.id)} ${printable(l.symbol)} ${l.state}${rounds}, ${since}${failure}\n`,
      );
    }
    if (values.resend) io.stdout.write(`resent ${resent.length}\n`);
    if (unsent) io.stdout.write(`${unsent.advice}\n`);
    return 0;
  });
});
