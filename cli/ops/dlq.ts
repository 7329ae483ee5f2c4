import { counted } from '../../shared/domain/words.ts';
import {
  type AdviceTarget,
  backstopCommand,
  type Deployment,
  type TargetKind,
} from '../../shared/local/deployment.ts';
import {
  arnBeside,
  type DeadLetter,
  type DeadLetterListing,
  type Discarded,
  DLQ_IDS,
  type DlqId,
  deadLetterQueueArn,
  deadLetterQueuesOf,
  discardDeadLetters,
  discardNotItsDeadLetters,
  errorLine,
  MOST_PER_RUN,
  NOT_ITS_PER_MAX,
  type NotReleased,
  PEEK_VISIBILITY_SECONDS,
  type RedriveOutcome,
  readDeadLetters,
  redriveDeadLetters,
  SQS_QUEUE_ARN,
} from '../../shared/local/dlq.ts';
import { choiceOption, intOption, UsageError } from '../args.ts';
import { printable, printableJson } from '../printable.ts';
import {
  type Command,
  noMorePositionals,
  operatorCommand,
  parseCommand,
  refuseOthersOptions,
  type SubcommandOptions,
  subcommand,
  TARGET_OPTIONS,
  TARGET_USAGE,
  withTarget,
} from './common.ts';

/** `dlq list|redrive`: what failed and why, and sending it back once the cause is fixed. */

/** The messages `dlq list` lists by default; `dlq redrive`'s text, at most the reasons of those not sent back. */
const LIST_MAX = 100;
export const REDRIVE_FAILED_SHOWN = 10;

export const DLQ_USAGE = `Usage: backstop dlq list|redrive [--queue Q] [--max N] [--accept-source ARN[,ARN...]] [--json]
       backstop dlq discard --queue Q --message-id ID[,ID...] [--json]
       backstop dlq discard --queue Q --not-its-dead-letter [--accept-source ARN[,ARN...]] [--max N] [--json]

  list      the messages of the dead-letter queues with why they failed (the liquidation's state and last
            note or the auction step, with the error recorded at the last failed receive; EventBridge's
            delivery error), the queue SQS moved each from (or that it was sent straight to the DLQ) and,
            marked NOT REDRIVEN, one redrive would leave there as not its work queue's
            (dlq/not-its-dead-letter; --json: movedFrom, redriveRefuses), and one only --accept-source lets
            through marked so (--json: acceptedSource); they stay in the queue. Like
            redrive and discard, it says those SQS would not
            release as it ended (hidden until their visibility timeout runs out; --json: notReleased). An
            error once it has read messages (a receive, a record's read, the queue's ARN, the release) is
            said after what it listed, with those, and a queue's that failed before reading it after the
            other queues' listings (<queue>: STOPPED by ...; --json: stopped), exit 1
  redrive   sends them back (liquidations and auction steps to their queue, ticks onto the bus), deleting
            each from the DLQ only once resent: as many as the DLQ held as it began (SQS's count), those
            arriving meanwhile left for the next redrive. That count is approximate: it names those it
            found past it (left: redrive again) and how many of it it did not reach. An error stops it (a
            receive that failed, or a refusal every message would meet: credentials, access denied, a queue
            not there): it says what it sent back, what is left and the error, exit 1, the queues after it
            not redriven. A poison
            message (not a message of its queue) stays, as does one naming a liquidation or auction with no
            record, and a PriceTickContinuation on a deployed stack, whose bus takes one from margin-check
            alone (dlq/continuation-refused: the market's next accepted tick does its work; then discard it);
            one sent back whose delete then fails is said, still in the DLQ (a redrive sends it again, a
            duplicate its consumer takes; or discard it). The text names every one of those, then at most
            ${REDRIVE_FAILED_SHOWN} not sent back and how many more (--json lists them all). Messages it held that SQS would
            not release as it ended are said (back once their visibility timeout, ${PEEK_VISIBILITY_SECONDS} s, runs out; --json:
            notReleased). Exit 1 when it left a message it read (not sent back, or its delete failed: the
            dead-letter alarm stays on) or an error stopped it; else 0, arrivals and those past or short of
            SQS's count included
  discard   deletes the messages named (a poison message, or one dealt with otherwise), or with
            --not-its-dead-letter every one dlq list marks NOT REDRIVEN as not its work queue's
            (dlq/not-its-dead-letter, by the redrive's own judgment, --accept-source's ARNs taken as the work
            queue's), and prints their bodies, the only copy left, and the queue each came from (moved from
            ARN, or sent straight to it; --json: sourceArn, null; by id on an emulator, whose moves name no
            queue, said only for a letter naming one): keep them with
            the incident (--json keeps them exact: the text escapes control and bidi characters as \\uXXXX).
            An error once it has something to say (a body deleted, a delete that failed, a release refused)
            is said after it (STOPPED by ...; --json: stopped), exit 1
  --queue Q              ${DLQ_IDS.join(' | ')} (default: all)
  --max N                most messages per queue (default 100 for list, 1000 for redrive and discard); a
                         redrive does not count those it leaves as dlq/not-its-dead-letter (each still said),
                         but stops at one more once it has left ${NOT_ITS_PER_MAX} times N of them, saying so (exit 1;
                         discard --not-its-dead-letter removes such letters among the first it reads)
  --message-id IDS       discard: the message ids, comma-separated (as dlq list shows them)
  --not-its-dead-letter  discard: instead of ids, those a redrive would leave as not its work queue's, among
                         the first --max read
  --accept-source ARNS   list, redrive (and discard --not-its-dead-letter), with --queue liquidations or
                         auctionSteps: take the letters SQS moved from these queues (their ARNs, comma-separated,
                         exactly as dlq list's NOT REDRIVEN line names them) as that work queue's, sending them on
                         to it: its queue under an older name, replaced by a stack change (docs/DEPLOY.md). Only
                         those named, never inferred; one of another partition, account or region than the DLQ's,
                         one of the stack's other queues, or the work queue's own (taken without it), refused
  --json                 JSON instead of text
${TARGET_USAGE}`;

/**
 * `dlq redrive`'s text: a line per queue, then every message sent back whose delete failed (each names the discard the
 * operator runs: never cut), then the reasons of at most REDRIVE_FAILED_SHOWN not sent back and a line saying how many
 * more and where they are all listed (ops47-redrive-more: they were cut at 10 together, failed first, without a word, so
 * with 10 failed the deletes that failed went unsaid).
 */
export function renderRedrive(
  outcomes: readonly (RedriveOutcome & { readonly queue: DlqId })[],
  target: AdviceTarget,
  notRedriven: readonly DlqId[] = [],
): string {
  const lines: string[] = [];
  for (const o of outcomes) {
    // Past SQS's count as it began, stamped before the run or after: there, left (review48-dlq-past-count).
    const later = [
      o.arrivedDuring ? `${o.arrivedDuring} arrived meanwhile` : '',
      o.pastCount ? `${o.pastCount} more past SQS's count as it began` : '',
    ].filter(Boolean);
    // Those sent back whose delete failed are left too: counted in both (review47-redrive-left-count).
    const still = o.notDeleted?.length ?? 0;
    // A run an error stopped leaves those it did not reach too, by SQS's count as it began (dlq48-redrive-error), as
    // does one that ended short of that count (review48-dlq-past-count).
    const notReached = o.stopped?.notReached ?? o.notReached ?? 0;
    const why = [
      still ? `${still} of them sent back: ${still === 1 ? 'its' : 'their'} delete failed` : '',
      notReached ? `about ${notReached} of them not reached` : '',
    ].filter(Boolean);
    const left = o.failed.length + still + notReached;
    lines.push(
      o.stopped && o.stopped.notReached === undefined
        ? `${o.queue}: stopped before reading the DLQ, nothing sent back`
        : `${o.queue}: ${o.moved} sent back, ${left} left in the DLQ${why.length > 0 ? ` (${why.join('; ')})` : ''}${later.length > 0 ? `; ${later.join(' and ')}, left for the next redrive` : ''}`,
    );
    // Never silent: what the operator's --accept-source let through (ops50-dlq-accept-source).
    for (const [arn, n] of Object.entries(o.acceptedSources ?? {}))
      lines.push(
        `  ${counted(n, 'letter', 'letters')} moved from ${printable(arn)} sent back as ${o.queue}'s (--accept-source)`,
      );
    // Its bound on letters left as another queue's (ops50b-redrive-not-its-bound): why those not reached were not; said
    // before a release's failure as the run ended, which it does not replace (review50-ops2-not-its-stopped-too).
    if (o.notItsLimit !== undefined) lines.push(`  ${printable(o.notItsLimit)}`);
    if (o.stopped) lines.push(`  STOPPED by ${printable(o.stopped.error)}`);
    else if (o.notItsLimit !== undefined) {
      // Its line is the advice on those not reached.
    } else if (o.pastCount)
      lines.push(
        `  the DLQ held more than SQS counted as the run began (its count lags up to a minute; a work queue's dead letter keeps its first send's stamp): ${backstopCommand(target, `dlq redrive --queue ${o.queue}`)} sends them back`,
      );
    else if (o.notReached)
      lines.push(
        `  those not reached of SQS's count as the run began: past --max, held by another reader, or deleted before its count caught up; ${backstopCommand(target, `dlq list --queue ${o.queue}`)} shows what is there`,
      );
    // Refused entries of the release, by reason (follow48-dlq-release-entries): as a release that failed whole is said.
    for (const line of notReleasedLines(o.notReleased ?? [])) lines.push(`  ${line}`);
    for (const n of o.notDeleted ?? []) lines.push(`  ${printable(n.messageId)}: ${printable(n.reason)}`);
    for (const f of o.failed.slice(0, REDRIVE_FAILED_SHOWN))
      lines.push(`  ${printable(f.messageId)}: ${printable(f.reason)}`);
    const more = o.failed.length - REDRIVE_FAILED_SHOWN;
    if (more > 0) {
      // Enough for every one left (and those that arrived meanwhile), past list's default.
      const there = left + (o.arrivedDuring ?? 0) + (o.pastCount ?? 0);
      const list = `dlq list --queue ${o.queue}${there > LIST_MAX ? ` --max ${there}` : ''}`;
      lines.push(
        `  ... and ${more} more not sent back (with --json a redrive lists every one and why; ${backstopCommand(target, list)} lists what is left, sending nothing)`,
      );
    }
  }
  // The run stops at the first queue an error stopped: the others would meet a refusal of the caller's too.
  if (notRedriven.length > 0) lines.push(`${notRedriven.join(', ')}: not redriven (the redrive stopped)`);
  return lines.length > 0 ? `${lines.join('\n')}\n` : '';
}

/**
 * One dead letter as `dlq list` prints it: where SQS moved it from, and NOT REDRIVEN with the redrive's own reason
 * for one it would leave in the DLQ (ops49b-dlq-list-source: seen only as a redrive refused it).
 */
export function deadLetterText(m: DeadLetter, kind: TargetKind): string {
  const from =
    m.movedFrom !== null
      ? // What --accept-source let through, in the redrive's words (ops50b-list-accepted).
        `moved from ${printable(m.movedFrom)}${m.acceptedSource === undefined ? '' : `, sent back as ${m.queue}'s by a redrive (--accept-source)`}`
      : kind === 'aws'
        ? 'sent straight to it (moved from no queue)'
        : 'no queue named as its source (sent straight to it, or moved by the emulator, which names none)';
  return (
    `  [${m.queue}] ${printable(m.messageId)} sent ${m.sentAt ?? '?'}, receive count ${m.receiveCount} (listings count too), ${from}\n` +
    `    reason: ${printable(m.reason)}\n` +
    (m.redriveRefuses === undefined ? '' : `    NOT REDRIVEN: ${printable(m.redriveRefuses)}\n`) +
    `    body: ${printable(m.body.slice(0, 300))}\n`
  );
}

/**
 * One message `dlq discard` deleted: its id, where it came from (tidy50-dlq-discard-source: for a not-its letter the
 * evidence that made it another's, kept with the incident; by id too, last50-dlq-discard-id-source) and its body, the
 * only copy left.
 */
export function discardedText(d: Discarded): string {
  const from =
    d.sourceArn === undefined
      ? ''
      : d.sourceArn === null
        ? '  sent straight to it (no DeadLetterQueueSourceArn: moved from no queue)\n'
        : `  moved from ${printable(d.sourceArn)} (its DeadLetterQueueSourceArn)\n`;
  return `discarded ${printable(d.messageId)}\n${from}  body: ${printable(d.body)}\n`;
}

/**
 * A line per reason for the messages a run held whose release SQS refused: hidden until their visibility timeout runs
 * out. `dlq redrive`, `list` and `discard` say them alike (more48-dlq-list-release: list and discard dropped them).
 */
function notReleasedLines(notReleased: readonly NotReleased[]): string[] {
  const byReason = new Map<string, number>();
  for (const n of notReleased) byReason.set(n.reason, (byReason.get(n.reason) ?? 0) + 1);
  return [...byReason].map(
    ([reason, n]) =>
      `releasing ${counted(n, 'message', 'messages')} it held: ${printable(reason)} (they come back once their visibility timeout runs out, ${PEEK_VISIBILITY_SECONDS} s)`,
  );
}

/** `notReleasedLines` of each queue, a line each, after its name. */
const queueNotReleasedLines = (notReleased: readonly (NotReleased & { readonly queue: DlqId })[]): string[] =>
  DLQ_IDS.flatMap((q) => notReleasedLines(notReleased.filter((n) => n.queue === q)).map((l) => `${q}: ${l}`));

export const DLQ_OPTIONS = {
  ...TARGET_OPTIONS,
  queue: { type: 'string' },
  max: { type: 'string' },
  'message-id': { type: 'string' },
  'accept-source': { type: 'string' },
  'not-its-dead-letter': { type: 'boolean' },
  json: { type: 'boolean' },
} as const;

/**
 * --message-id and --not-its-dead-letter are discard's alone; --accept-source list's and redrive's
 * (ops50-dlq-accept-source), and discard's with --not-its-dead-letter (ops50-dlq-discard-selected).
 */
export const DLQ_SUBCOMMANDS: SubcommandOptions = {
  list: ['accept-source'],
  redrive: ['accept-source'],
  discard: ['message-id', 'not-its-dead-letter', 'accept-source'],
};

/** `--accept-source`'s ARNs (ops50-dlq-accept-source): with one work queue's DLQ named, each an SQS queue's ARN. */
function acceptSources(value: string | undefined, queue: DlqId | undefined): readonly string[] {
  if (value === undefined) return [];
  if (queue !== 'liquidations' && queue !== 'auctionSteps')
    throw new UsageError(
      '--accept-source: only with --queue liquidations or --queue auctionSteps (the work queue whose older name it gives)',
    );
  const arns = value
    .split(',')
    .map((arn) => arn.trim())
    .filter((arn) => arn !== '');
  if (arns.length === 0) throw new UsageError('--accept-source: no queue ARN given');
  for (const arn of arns)
    if (!SQS_QUEUE_ARN.test(arn))
      throw new UsageError(
        `--accept-source: "${arn}" is not an SQS queue's ARN (arn:aws:sqs:<region>:<account>:<name>, as dlq list's NOT REDRIVEN line names the queue)`,
      );
  return arns;
}

/** An ARN's partition, region and account (`arn:<partition>:<service>:<region>:<account>:...`). */
const placeOf = (arn: string) => {
  const [, partition = '', , region = '', account = ''] = arn.split(':');
  return { partition, region, account };
};

/**
 * Why `arn`, an `--accept-source`, cannot be a source of the dead-letter queue whose ARN is `dlqArn`, or undefined:
 * SQS moves a letter only to a dead-letter queue of its own partition, account and region. All three are the DLQ's
 * ARN's, as SQS answers it (review50-ops2-partition-table: the partition was derived from the region by a table of
 * prefixes, `aws` for any other, so a partition it did not list, a new sovereign cloud's, refused every valid ARN).
 */
export function acceptSourceElsewhere(queue: DlqId, dlqArn: string, arn: string): string | undefined {
  const dlq = placeOf(dlqArn);
  const its = placeOf(arn);
  if (its.partition === dlq.partition && its.region === dlq.region && its.account === dlq.account)
    return undefined;
  return `--accept-source: "${arn}" is of partition ${its.partition}, account ${its.account}, region ${its.region}; the dead-letter queue of ${queue} is of partition ${dlq.partition}, account ${dlq.account}, region ${dlq.region}: SQS moves a letter only to a dead-letter queue of its own partition, account and region, so none came from there (an ARN of another stage, account, region or partition?)`;
}

/**
 * Why `arn`, an `--accept-source`, is no older name of `queue`, or undefined: its work queue's own ARN, `workArn`, whose
 * letters are taken without it (last50-accept-source-own: taken, each of its own letters was said to be let through by
 * --accept-source).
 */
export function acceptSourceOwn(queue: DlqId, workArn: string, arn: string): string | undefined {
  return arn === workArn
    ? `--accept-source: "${arn}": that is ${queue}'s own ARN: its letters are taken without --accept-source (which names an older name of ${queue}, as dlq list's NOT REDRIVEN line gives it)`
    : undefined;
}

/**
 * Refuses an `--accept-source` ARN that cannot be `queue`'s work queue under an older name (review50-ops-accept-source-beside):
 * one of another partition, account or region than its dead-letter queue (acceptSourceElsewhere: a copy from another
 * stage's or region's listing), one of the stack's other queues (its letters sent on to this work queue's consumer), or
 * the work queue's own ARN (acceptSourceOwn).
 * The DLQ's ARN is read of SQS (sqs:GetQueueAttributes, as the run reads it), before any letter is.
 */
async function acceptedBeside(deployment: Deployment, queue: DlqId, arns: readonly string[]): Promise<void> {
  if (arns.length === 0) return;
  const own = deployment.names.queues[queue].url.split('/').pop();
  const stacks = new Map<string, string>();
  for (const [id, q] of Object.entries(deployment.names.queues)) {
    stacks.set(q.url.split('/').pop() ?? '', `the stack's ${id} queue`);
    if (q.dlqUrl) stacks.set(q.dlqUrl.split('/').pop() ?? '', `the stack's dead-letter queue of ${id}`);
  }
  for (const arn of arns) {
    const name = arn.split(':')[5];
    const stack = name === own ? undefined : stacks.get(name ?? '');
    if (stack !== undefined)
      throw new UsageError(`--accept-source: "${arn}" is ${stack}, not an older name of ${queue}`);
  }
  const dlqArn = await deadLetterQueueArn(deployment, queue);
  const workArn = arnBeside(dlqArn, deployment.names.queues[queue].url);
  for (const arn of arns) {
    const refused = acceptSourceOwn(queue, workArn, arn) ?? acceptSourceElsewhere(queue, dlqArn, arn);
    if (refused !== undefined) throw new UsageError(refused);
  }
}

export const runDlq: Command = operatorCommand(async (argv, io) => {
  const { positionals, values } = parseCommand(argv, DLQ_OPTIONS);
  if (values.help) {
    io.stdout.write(DLQ_USAGE);
    return 0;
  }
  const action = subcommand('dlq', positionals, ['list', 'redrive', 'discard'] as const);
  noMorePositionals('dlq', positionals, 1);
  refuseOthersOptions('dlq', action, values, DLQ_OPTIONS, DLQ_SUBCOMMANDS);
  const only = choiceOption('queue', values.queue, DLQ_IDS);
  if (action === 'discard') {
    const selected = values['not-its-dead-letter'] === true;
    if (values['accept-source'] !== undefined && !selected)
      throw new UsageError(
        'dlq discard: --accept-source only with --not-its-dead-letter (it is an option of dlq list and redrive)',
      );
    if (!only) throw new UsageError('dlq discard: --queue is required');
    const ids = (values['message-id'] ?? '')
      .split(',')
      .map((id) => id.trim())
      .filter((id) => id !== '');
    if (selected && values['message-id'] !== undefined)
      throw new UsageError('dlq discard: --message-id or --not-its-dead-letter, not both');
    if (ids.length === 0 && !selected)
      throw new UsageError(
        'dlq discard: --message-id is required (as dlq list shows it), or --not-its-dead-letter',
      );
    const accepted = { acceptSources: acceptSources(values['accept-source'], only) };
    const most = intOption('max', values.max, 1, MOST_PER_RUN) ?? 1000;
    return withTarget(values, async (deployment) => {
      if (only !== undefined) await acceptedBeside(deployment, only, accepted.acceptSources);
      const { notReleased: held = [], ...outcome } = selected
        ? await discardNotItsDeadLetters(deployment, only, most, accepted)
        : await discardDeadLetters(deployment, only, ids, most);
      // An id not in the queue named may be in another one: named, so the operator need not guess.
      let stopped = outcome.stopped;
      let looked: Awaited<ReturnType<typeof deadLetterQueuesOf>> = { found: {}, notReleased: [] };
      if (outcome.notFound.length > 0 && stopped === undefined) {
        looked = await deadLetterQueuesOf(deployment, only, outcome.notFound, most);
        if (looked.stopped !== undefined) {
          const said =
            outcome.discarded.length > 0 ||
            outcome.notDeleted !== undefined ||
            held.length > 0 ||
            looked.notReleased.length > 0 ||
            Object.keys(looked.found).length > 0;
          // Nothing to say but the error: it ends the command, with its advice (credentials, the network).
          if (!said) throw looked.error;
          // The bodies discarded are the only copy left: printed, the look's error after them (final48c-discard-bodies-kept),
          // with what it found and could not release (cli49-dlq-release-failed).
          stopped = `looking in the other queues for those not found: ${looked.stopped}`;
        }
      }
      const elsewhere: Record<string, DlqId> = looked.found;
      // Those of the queue named and of the queues looked in for the others.
      const notReleased = [...held.map((n) => ({ queue: only, ...n })), ...looked.notReleased];
      if (values.json)
        io.stdout.write(
          `${printableJson({
            queue: only,
            ...outcome,
            ...(Object.keys(elsewhere).length > 0 ? { elsewhere } : {}),
            ...(notReleased.length > 0 ? { notReleased } : {}),
            ...(stopped === undefined ? {} : { stopped }),
          })}\n`,
        );
      else {
        for (const d of outcome.discarded) io.stdout.write(discardedText(d));
        if (selected && outcome.discarded.length === 0 && stopped === undefined)
          io.stdout.write(
            `${only}: no letter a redrive would leave as not its work queue's, among the first ${most} read\n`,
          );
        for (const n of outcome.notDeleted ?? [])
          io.stdout.write(
            `not discarded ${printable(n.messageId)}: its delete failed (${printable(n.reason)})\n`,
          );
        for (const id of outcome.notFound) {
          const other = elsewhere[id];
          io.stdout.write(
            `not found in ${only}: ${printable(id)}${other ? ` (it is in ${other}: use --queue ${other})` : ''}\n`,
          );
        }
        for (const line of queueNotReleasedLines(notReleased)) io.stdout.write(`${line}\n`);
        if (stopped !== undefined)
          io.stdout.write(
            `STOPPED by ${printable(stopped)}${outcome.discarded.length > 0 ? ': the messages above were discarded before it' : ''}\n`,
          );
      }
      return outcome.notFound.length > 0 || outcome.notDeleted || stopped !== undefined ? 1 : 0;
    });
  }
  const queues: readonly DlqId[] = only ? [only] : DLQ_IDS;
  const options = { acceptSources: acceptSources(values['accept-source'], only) };
  const max = intOption('max', values.max, 1, MOST_PER_RUN) ?? (action === 'list' ? LIST_MAX : 1000);
  return withTarget(values, async (deployment) => {
    if (only !== undefined) await acceptedBeside(deployment, only, options.acceptSources);
    if (action === 'list') {
      // Each queue's listing on its own: one queue's error lost the others' (cli49-dlq-release-failed).
      const settled = await Promise.allSettled(
        queues.map((q) => readDeadLetters(deployment, q, max, options)),
      );
      // Every queue failed before anything to say (credentials, the network): the error ends it, with its advice.
      if (settled.every((s) => s.status === 'rejected')) throw (settled[0] as PromiseRejectedResult).reason;
      const lists = settled.map(
        (s): DeadLetterListing =>
          s.status === 'fulfilled'
            ? s.value
            : { messages: [], stopped: `before reading it: ${errorLine(s.reason)}` },
      );
      const messages = lists.flatMap((l) => l.messages);
      const notReleased = lists.flatMap((l, i) =>
        (l.notReleased ?? []).map((n) => ({ queue: queues[i]!, ...n })),
      );
      const stopped = lists.flatMap((l, i) =>
        l.stopped === undefined ? [] : [{ queue: queues[i]!, error: l.stopped }],
      );
      if (values.json)
        io.stdout.write(
          `${printableJson({
            messages,
            ...(notReleased.length > 0 ? { notReleased } : {}),
            ...(stopped.length > 0 ? { stopped } : {}),
          })}\n`,
        );
      else {
        // A queue that failed before reading says its STOPPED line alone, not "no messages" first (ops49b-dlq-list-stopped).
        for (const [i, q] of queues.entries())
          if (settled[i]!.status === 'fulfilled')
            io.stdout.write(`${q}: ${counted(lists[i]!.messages.length, 'message', 'messages')}\n`);
        for (const m of messages) io.stdout.write(deadLetterText(m, deployment.kind));
        for (const line of queueNotReleasedLines(notReleased)) io.stdout.write(`${line}\n`);
        for (const s of stopped) io.stdout.write(`${s.queue}: STOPPED by ${printable(s.error)}\n`);
      }
      return stopped.length > 0 ? 1 : 0;
    }
    const outcomes: (RedriveOutcome & { readonly queue: DlqId })[] = [];
    for (const q of queues) {
      outcomes.push({ queue: q, ...(await redriveDeadLetters(deployment, q, max, options)) });
      if (outcomes.at(-1)!.stopped) break;
    }
    const notRedriven = queues.slice(outcomes.length);
    if (values.json)
      io.stdout.write(
        `${printableJson({ redriven: outcomes, ...(notRedriven.length > 0 ? { notRedriven } : {}) })}\n`,
      );
    else io.stdout.write(renderRedrive(outcomes, deployment, notRedriven));
    return outcomes.some((o) => o.failed.length > 0 || o.notDeleted || o.stopped) ? 1 : 0;
  });
});
