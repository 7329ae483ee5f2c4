import {
  ChangeMessageVisibilityBatchCommand,
  type ChangeMessageVisibilityBatchCommandOutput,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageCommand,
} from '@aws-sdk/client-sqs';
import { DynamoAuctionRepository } from '../adapters/aws/auctions.ts';
import { longPollOptions } from '../adapters/aws/clients.ts';
import { DynamoLiquidationRepository } from '../adapters/aws/liquidations.ts';
import { SINGLE_SHARD_LAYOUT } from '../adapters/aws/position-layout.ts';
import { counted } from '../domain/words.ts';
import { errorText } from '../error-text.ts';
import { POLICY_ENTRY_CODES, PutEntriesError, putEntries } from '../feed/publisher.ts';
import { eachInFlight } from '../in-flight.ts';
import type { ProcessingFailure } from '../ports/index.ts';
import {
  auctionStepMessageSchema,
  liquidationMessageSchema,
  registrationWakeMessageSchema,
} from '../schemas/messages.ts';
import { TICK_BUS } from '../topology.ts';
import { awsClockOf, backstopCommand, type Deployment, shellWord, TargetError } from './deployment.ts';
import { queueSendersAdvice, refusedByQueuePolicy } from './queue-senders.ts';

/**
 * Dead-letter queues: list what is in them and why, and send the messages back once the cause is fixed.
 * SQS's StartMessageMoveTask is not on every emulator (moto lacks it), so a redrive is receive, resend,
 * delete: at-least-once, like every delivery here (the consumers are idempotent per liquidation / step).
 * Liquidation and auction-step messages go back to their work queue; a tick the bus could not deliver goes
 * back on the bus (PutEvents with its original detail), which is what margin-check consumes everywhere.
 */

export const DLQ_IDS = ['liquidations', 'auctionSteps', 'tickDeadLetters'] as const;
export type DlqId = (typeof DLQ_IDS)[number];

export interface DeadLetter {
  readonly queue: DlqId;
  readonly messageId: string;
  readonly body: string;
  /**
   * SQS's receive count: the work queue's deliveries before it was dead-lettered, plus every read on the DLQ, this
   * listing's and earlier ones' included (a listing is a receive). The deliveries that failed are in `reason`.
   */
  readonly receiveCount: number;
  readonly sentAt: string | null;
  /**
   * Why it failed, as far as the records tell: the liquidation's (or auction's) state and last note with the
   * error its handler recorded on the last failed delivery; EventBridge's error for a tick.
   */
  readonly reason: string;
  /**
   * The name of the queue SQS moved it from by a redrive policy (its DeadLetterQueueSourceArn); null when it names
   * none: sent straight to the queue (EventBridge's and margin-check's dead letters are), or moved by an emulator,
   * which says none (ops49b-dlq-list-source).
   */
  readonly movedFrom: string | null;
  /** Why `dlq redrive` would leave it in the DLQ, by its source (`dlq/not-its-dead-letter: ...`); absent when it would not. */
  readonly redriveRefuses?: string;
  /**
   * The `--accept-source` ARN it was moved from, which alone lets a redrive send it back as its work queue's (absent
   * when none did): said, as the redrive says it (ops50b-list-accepted).
   */
  readonly acceptedSource?: string;
}

/** How long listed messages stay hidden while the listing runs (they are released right after). */
export const PEEK_VISIBILITY_SECONDS = 30;
const RECEIVE_BATCH = 10;
/**
 * Long polling: a short-polled receive samples some of SQS's servers and may answer none from a queue that holds
 * a few messages (a DLQ's usual load), which the loops below would take as empty. A long poll asks them all and
 * answers as soon as one has a message (an empty queue costs this long).
 */
export const RECEIVE_WAIT_SECONDS = 1;

export function dlqUrl(deployment: Deployment, queue: DlqId): string {
  const q = deployment.names.queues[queue];
  const url = queue === 'tickDeadLetters' ? q.url : q.dlqUrl;
  if (!url) throw new Error(`dlq/no-queue: ${queue} has no dead-letter queue`);
  return url;
}

async function receive(
  deployment: Deployment,
  url: string,
  max: number,
  visibilitySeconds: number,
): Promise<Message[]> {
  const out = await deployment.clients.sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: url,
      MaxNumberOfMessages: Math.min(RECEIVE_BATCH, max),
      VisibilityTimeout: visibilitySeconds,
      WaitTimeSeconds: RECEIVE_WAIT_SECONDS,
      // DeadLetterQueueSourceArn: the queue SQS moved it from by a redrive policy (a redrive sends on only its work
      // queue's: security49b-dlq-source).
      MessageSystemAttributeNames: ['ApproximateReceiveCount', 'SentTimestamp', 'DeadLetterQueueSourceArn'],
      MessageAttributeNames: ['All'],
    }),
    // The wait on top of the CLI's request timeout (ops47-cli-timeouts): a timeout below it fails every empty poll.
    longPollOptions(deployment.clients.config, RECEIVE_WAIT_SECONDS),
  );
  return out.Messages ?? [];
}

export interface DlqRunOptions {
  /** How long each message a run receives stays hidden from its later receives (default PEEK_VISIBILITY_SECONDS). */
  readonly visibilitySeconds?: number;
  /**
   * Queue ARNs whose moves a run of `liquidations` or `auctionSteps` takes as its work queue's besides that queue's own
   * (`--accept-source`: the work queue under an older name, replaced by a stack change; ops50-dlq-accept-source).
   * Never inferred: a letter from any other queue is refused as before.
   */
  readonly acceptSources?: readonly string[];
}

/** A message a run dealt with (sent back, discarded) that is still in its DLQ: its delete failed. */
export interface NotDeleted {
  readonly messageId: string;
  readonly reason: string;
}

/** A message the run held whose release SQS refused (an entry of ChangeMessageVisibilityBatch's Failed). */
export interface NotReleased {
  readonly messageId: string;
  /** SQS's code and message for the entry. */
  readonly reason: string;
}

/**
 * A run's release of the messages it held: the entries SQS refused, and the error that stopped the release, if one
 * did (the batches after it not sent: their messages come back once their visibility timeout runs out).
 */
export interface Released {
  readonly notReleased: readonly NotReleased[];
  readonly error?: unknown;
}

/**
 * One run's receives from a DLQ, each message handed on once (ops46-dlq-seen-once). SQS delivers at least once: a
 * message the run holds comes round again once its visibility timeout runs out while the run still works (a run over
 * hundreds of messages outlasts PEEK_VISIBILITY_SECONDS), and a standard queue may return one even after its delete
 * (a copy on a server that was out). Extending the timeout would not rule the second out, nor the first when one step
 * outlasts it; stopping at the first repeat would end a run with unseen messages behind it. So the run knows its
 * messages by MessageId: a repeat is not handed on again, and its receipt handle replaces the held one, since SQS
 * documents only the newest as sure to act (a delete by an older one succeeds and may delete nothing).
 *
 * A delete that fails (after the SDK's retries) leaves the message held: it is deleted again if it comes round and
 * once more as the run ends, then, still there, released and reported by `notDeleted` (ops47-dlq-delete-failed).
 */
class DlqRun {
  /** Received and not deleted, by MessageId, with the newest receipt handle: released at the end. */
  readonly #held = new Map<string, Message>();
  /** Dealt with (deleted, or its delete failed): never handed on again, deleted again when it comes round. */
  readonly #done = new Set<string>();
  /** Dealt with and still in the queue: the last delete's error. */
  readonly #undeleted = new Map<string, string>();
  readonly #deployment: Deployment;
  readonly #url: string;
  readonly #visibilitySeconds: number;

  constructor(deployment: Deployment, url: string, options: DlqRunOptions = {}) {
    this.#deployment = deployment;
    this.#url = url;
    this.#visibilitySeconds = options.visibilitySeconds ?? PEEK_VISIBILITY_SECONDS;
  }

  /** Up to `max` messages this run has not received before; none once the queue has no more for it. */
  async next(max: number): Promise<Message[]> {
    // The repeats since the last new message: one coming round twice means the run is cycling through its own (a
    // receive re-hides what it returns, so each comes round once at most while others are still to be seen).
    const cameRound = new Set<string>();
    for (;;) {
      const batch = await receive(this.#deployment, this.#url, max, this.#visibilitySeconds);
      if (batch.length === 0) return [];
      const fresh: Message[] = [];
      const copies: string[] = [];
      let twice = false;
      for (const m of batch) {
        const id = m.MessageId ?? '';
        const known = this.#held.has(id) || this.#done.has(id);
        if (known && cameRound.has(id)) twice = true;
        if (known) cameRound.add(id);
        this.#held.set(id, m);
        if (!known) fresh.push(m);
        // Dealt with and back: a copy its delete missed, or one whose delete failed. Not handed on again.
        else if (this.#done.has(id)) copies.push(id);
      }
      // Deleted once the whole batch is held: a failed delete left the rest of it hidden and out of the run
      // (ops47-dlq-delete-mid-batch).
      for (const id of copies) await this.#deleteHeld(id);
      if (fresh.length > 0) return fresh;
      if (twice) return [];
    }
  }

  /**
   * Deletes a message of this run, by the newest receipt handle the run has for it. The error when the delete failed:
   * the message stays held (deleted again when it comes round and as the run ends; else released, in notDeleted).
   */
  delete(m: Message): Promise<unknown> {
    const id = m.MessageId ?? '';
    if (!this.#held.has(id)) this.#held.set(id, m);
    this.#done.add(id);
    return this.#deleteHeld(id);
  }

  async #deleteHeld(id: string): Promise<unknown> {
    try {
      await this.#deployment.clients.sqs.send(
        new DeleteMessageCommand({ QueueUrl: this.#url, ReceiptHandle: this.#held.get(id)?.ReceiptHandle }),
      );
    } catch (error) {
      this.#undeleted.set(id, (error as Error).message);
      return error ?? new Error('the delete failed');
    }
    this.#held.delete(id);
    this.#undeleted.delete(id);
    return undefined;
  }

  /** The messages dealt with whose delete failed, once the run has finished: still in the queue. */
  notDeleted(): NotDeleted[] {
    return [...this.#undeleted].map(([messageId, reason]) => ({ messageId, reason }));
  }

  /**
   * Tries each failed delete once more, then makes every message the run holds visible again. Returns those SQS
   * refused to release (hidden until their visibility timeout runs out) and the error that stopped the release.
   */
  async finish(): Promise<Released> {
    for (const id of [...this.#undeleted.keys()]) await this.#deleteHeld(id);
    return release(this.#deployment, this.#url, [...this.#held.values()]);
  }
}

/** Up to `max` messages of a DLQ with their reasons; they stay in the queue. An error that stopped it is thrown. */
export async function listDeadLetters(
  deployment: Deployment,
  queue: DlqId,
  max = 100,
  options: DlqRunOptions = {},
): Promise<readonly DeadLetter[]> {
  const listing = await readDeadLetters(deployment, queue, max, options);
  if (listing.stopped !== undefined) throw new Error(listing.stopped);
  return listing.messages;
}

/** A listing of a DLQ: its messages, and those of them SQS refused to release as it ended (present when any). */
export interface DeadLetterListing {
  readonly messages: readonly DeadLetter[];
  readonly notReleased?: readonly NotReleased[];
  /**
   * The error that stopped it once it had read messages (a receive, a record's read, the release of the messages it
   * held), said with what it listed (present when any): one before anything to say is thrown (cli49-dlq-release-failed).
   */
  readonly stopped?: string;
}

/** `listDeadLetters` with the entries SQS refused to release (more48-dlq-list-release: they went unsaid). */
export async function readDeadLetters(
  deployment: Deployment,
  queue: DlqId,
  max = 100,
  options: DlqRunOptions = {},
): Promise<DeadLetterListing> {
  const peeked = await peek(
    deployment,
    dlqUrl(deployment, queue),
    max,
    (seen) => describeAll(deployment, queue, seen, options),
    options,
    (described) => described.stopped,
  );
  const messages = peeked.value?.messages ?? [];
  const { notReleased, stopped } = peeked;
  // Nothing read, nothing to lose: the error ends it, with its advice (credentials, the network).
  if (stopped !== undefined && messages.length === 0 && notReleased.length === 0) throw peeked.error;
  return {
    messages,
    ...(notReleased.length > 0 ? { notReleased } : {}),
    ...(stopped === undefined ? {} : { stopped }),
  };
}

/**
 * Records a listing reads at once for its reasons. The CLI's request timeout runs from the call, its wait for one of
 * the client's 50 connections included (ops47-cli-timeouts): thousands of reads sent together on a slow link queued
 * past it (review47-timeout-socket-queue). `dlq list` lists its queues together: 48 at most.
 */
const DESCRIBE_IN_FLIGHT = 16;

async function describeAll(
  deployment: Deployment,
  queue: DlqId,
  seen: readonly Message[],
  options: DlqRunOptions = {},
): Promise<{ readonly messages: DeadLetter[]; readonly stopped?: PeekStop }> {
  const reasons: string[] = [];
  // Where each came from, judged by the redrive's own rule (ops49b-dlq-list-source), which needs the DLQ's ARN only
  // for a letter naming its source (sqs:GetQueueAttributes, as redrive reads it): one naming none is judged without.
  let refuses: ((m: Message) => string | undefined) | undefined;
  let arnFailure: { readonly error: unknown } | undefined;
  try {
    const sourced = seen.some((m) => source(m) !== undefined);
    const arn = sourced ? await queueArn(deployment, dlqUrl(deployment, queue)) : '';
    refuses = unexpectedSource(deployment, queue, () => arn, options.acceptSources);
  } catch (error) {
    arnFailure = { error };
  }
  let failure: { readonly error: unknown } | undefined;
  // The first read that fails stops the rest (expired credentials fail them all), every message still listed: thrown,
  // it lost the whole listing (review49-cli-dlq-record-read).
  await eachInFlight(
    seen,
    DESCRIBE_IN_FLIGHT,
    async (m, at) => {
      try {
        reasons[at] = await reasonOf(deployment, queue, m.Body ?? '', m);
      } catch (error) {
        failure ??= { error };
        reasons[at] = `${UNKNOWN_REASON}its record's read failed (${errorLine(error)})`;
      }
    },
    () => failure !== undefined,
  );
  const accepted = new Set(options.acceptSources ?? []);
  const messages = seen.map((m, at) => {
    const refused = refuses?.(m);
    const from = source(m);
    return {
      ...unexplained(queue, m),
      reason: reasons[at] ?? `${UNKNOWN_REASON}its record was not read, another's read having failed`,
      ...(refused === undefined ? {} : { redriveRefuses: refused }),
      // Taken as the work queue's on the operator's word alone, as the redrive counts it (acceptedSources).
      ...(refused === undefined && from !== undefined && accepted.has(from) ? { acceptedSource: from } : {}),
    };
  });
  const lines: string[] = [];
  if (arnFailure !== undefined)
    lines.push(
      `reading the queue's ARN, to judge where its letters came from: ${errorLine(arnFailure.error)} (listed without whether dlq redrive would send them on)`,
    );
  if (failure !== undefined) {
    const without = messages.filter((m) => m.reason.startsWith(UNKNOWN_REASON)).length;
    lines.push(
      `reading the records for their reasons: ${errorLine(failure.error)} (${counted(without, 'message', 'messages')} listed without ${without === 1 ? 'its reason' : 'theirs'})`,
    );
  }
  const first = arnFailure ?? failure;
  if (first === undefined) return { messages };
  return { messages, stopped: { error: first.error, line: lines.join('; ') } };
}

const UNKNOWN_REASON = 'not known: ';

/**
 * What a peek made of the messages it read (`use`'s value; absent when `use` failed, or a receive failed before any
 * message), those SQS refused to release, and the errors that stopped it, a line (`stopped`) with the first as thrown
 * (`error`, for its advice): a release that failed outright used to be thrown over the rest (cli49-dlq-release-failed).
 */
interface Peeked<T> {
  readonly value?: T;
  readonly notReleased: readonly NotReleased[];
  readonly stopped?: string;
  readonly error?: unknown;
}

/** An error that stopped a peek, and its line. */
interface PeekStop {
  readonly error: unknown;
  readonly line: string;
}

/** A release of the messages a run held that failed outright, as each command says it. */
const releaseLine = (error: unknown): string =>
  `releasing the messages it held: ${errorLine(error)} (they come back once their visibility timeout runs out)`;

/**
 * Reads up to `max` messages of a DLQ (each once), hands them to `use` and makes them visible again. A receive that
 * fails ends the reading, the messages read before it still handed to `use`; never throws once the run has begun.
 * `stoppedBy`: the error `use` met and went on past, said as one that stopped the run (review49-cli-dlq-record-read).
 */
async function peek<T>(
  deployment: Deployment,
  url: string,
  max: number,
  use: (seen: readonly Message[]) => T | Promise<T>,
  options: DlqRunOptions = {},
  stoppedBy?: (value: T) => PeekStop | undefined,
): Promise<Peeked<T>> {
  const run = new DlqRun(deployment, url, options);
  const seen: Message[] = [];
  let failure: PeekStop | undefined;
  let used: { readonly value: T } | undefined;
  try {
    while (seen.length < max) {
      const fresh = await run.next(max - seen.length);
      if (fresh.length === 0) break;
      seen.push(...fresh);
    }
  } catch (error) {
    failure = { error, line: errorLine(error) };
  }
  if (seen.length > 0 || failure === undefined)
    try {
      used = { value: await use(seen) };
      // `use` done with what it could, and stopped: said as a receive's error is.
      failure ??= stoppedBy?.(used.value);
    } catch (error) {
      failure ??= { error, line: errorLine(error) };
    }
  const released = await run.finish();
  const errors = [
    ...(failure ? [failure.line] : []),
    ...(released.error === undefined ? [] : [releaseLine(released.error)]),
  ];
  return {
    ...(used ? { value: used.value } : {}),
    notReleased: released.notReleased,
    ...(errors.length > 0
      ? { stopped: errors.join('; then '), error: failure ? failure.error : released.error }
      : {}),
  };
}

/**
 * Makes peeked messages visible again at once. Returns the entries SQS refused: a batch answers 200 with them in
 * `Failed` (follow48-dlq-release-entries: they went unsaid). A batch that fails stops the release, its error returned
 * with the entries earlier batches had refused (more48-dlq-release-kept: they were lost with the error).
 */
async function release(deployment: Deployment, url: string, messages: readonly Message[]): Promise<Released> {
  const refused: NotReleased[] = [];
  for (let i = 0; i < messages.length; i += RECEIVE_BATCH) {
    const batch = messages.slice(i, i + RECEIVE_BATCH).filter((m) => m.ReceiptHandle);
    const entries = batch.map((m, j) => ({
      Id: String(j),
      ReceiptHandle: m.ReceiptHandle!,
      VisibilityTimeout: 0,
    }));
    if (entries.length > 0) {
      let out: ChangeMessageVisibilityBatchCommandOutput;
      try {
        out = await deployment.clients.sqs.send(
          new ChangeMessageVisibilityBatchCommand({ QueueUrl: url, Entries: entries }),
        );
      } catch (error) {
        return { notReleased: refused, error: error ?? new Error('the release failed') };
      }
      for (const f of out.Failed ?? [])
        refused.push({
          messageId: batch[Number(f.Id)]?.MessageId ?? '',
          reason: [f.Code, f.Message].filter(Boolean).join(': ') || 'refused',
        });
    }
  }
  return { notReleased: refused };
}

const parseJson = (body: string): unknown => {
  try {
    return JSON.parse(body);
  } catch {
    return undefined;
  }
};

/** A dead letter as SQS gives it, its reason (its record's state, read) still to add. */
function unexplained(
  queue: DlqId,
  m: Message,
): Omit<DeadLetter, 'reason' | 'redriveRefuses' | 'acceptedSource'> {
  const sent = Number(m.Attributes?.SentTimestamp ?? Number.NaN);
  const from = source(m);
  return {
    queue,
    messageId: m.MessageId ?? '',
    body: m.Body ?? '',
    receiveCount: Number(m.Attributes?.ApproximateReceiveCount ?? '0'),
    sentAt: Number.isFinite(sent) ? new Date(sent).toISOString() : null,
    movedFrom: from === undefined ? null : from.slice(from.lastIndexOf(':') + 1),
  };
}

/** The queue SQS moved a letter from by a redrive policy (DeadLetterQueueSourceArn); undefined: it names none. */
const source = (m: Message): string | undefined => m.Attributes?.DeadLetterQueueSourceArn || undefined;

// Reads only: the index layout does not matter.
const liquidationRepo = (deployment: Deployment) =>
  new DynamoLiquidationRepository(
    deployment.clients.dynamo,
    { liquidations: deployment.names.tables.liquidations, positions: deployment.names.tables.positions },
    SINGLE_SHARD_LAYOUT,
  );

const auctionRepo = (deployment: Deployment) =>
  new DynamoAuctionRepository(deployment.clients.dynamo, deployment.names.tables.auctions);

async function reasonOf(deployment: Deployment, queue: DlqId, body: string, m: Message): Promise<string> {
  const json = parseJson(body);
  if (queue === 'liquidations') {
    const parsed = liquidationMessageSchema.safeParse(json);
    if (!parsed.success) return 'poison: not a liquidation message';
    const record = await liquidationRepo(deployment).get(parsed.data.liquidationId);
    if (!record) return noRecord('liquidation', parsed.data.liquidationId);
    const last = record.history.at(-1);
    const where = `liquidation ${record.id} in ${record.state}${last?.note ? `: ${last.note}` : ''}`;
    return withFailure(where, record.lastFailure);
  }
  if (queue === 'auctionSteps') {
    const wake = registrationWakeMessageSchema.safeParse(json);
    if (wake.success) return registrationWakeReason(wake.data.registrationWake);
    const parsed = auctionStepMessageSchema.safeParse(json);
    if (!parsed.success) return 'poison: not an auction step message';
    const auction = await auctionRepo(deployment).get(parsed.data.auctionId);
    if (!auction) return noRecord('auction', parsed.data.auctionId);
    return withFailure(
      `auction ${auction.id} step ${parsed.data.step} (at step ${auction.step}, ${auction.state}) of liquidation ${auction.liquidationId}`,
      auction.lastFailure,
    );
  }
  // EventBridge adds the delivery error as message attributes on AWS; Lambda's on-failure record holds it.
  const { event, failure } = tickDeadLetter(json);
  if (!isEvent(event)) return NOT_AN_EVENT;
  const code = m.MessageAttributes?.ERROR_CODE?.StringValue ?? failure?.code;
  const message = m.MessageAttributes?.ERROR_MESSAGE?.StringValue ?? failure?.message;
  const tick = `tick ${String(event.detail.symbol)} #${String(event.detail.sequence)}`;
  return code || message
    ? `${tick}: ${[code, message].filter(Boolean).join(': ')}`
    : `${tick}: margin-check failed on every retry`;
}

/**
 * A work queue's message naming no record: its consumer fails it on every delivery (the record is written before
 * its first message is sent, so none will come), and sent back it would only dead-letter again as new (drill45-dlq-no-record).
 */
const noRecord = (kind: 'liquidation' | 'auction', id: string): string =>
  `${kind} ${id} has no record: nothing to resume (a message of another stage, or sent by hand)`;

/**
 * The rest of a provider registration's wake, which the auction queue carries too: no poison, redriven as any
 * (drill45-dlq-registration-wake: listed and left as "not an auction step message").
 */
const registrationWakeReason = (wake: { readonly symbol: string; readonly epoch: number }): string =>
  `registration wake of ${wake.symbol} (epoch ${wake.epoch}): the market's sleeping auctions it had not woken yet`;

/** A tick dead letter that is no event: nothing to put back on the bus (drill45-dlq-tick-poison). */
const NOT_AN_EVENT = 'poison: not an EventBridge event';

/** Where the record stands, then the error its handler recorded on the last failed delivery (if any). */
const withFailure = (where: string, failure: ProcessingFailure | undefined): string =>
  failure
    ? `${where}; last failure (receive ${failure.attempt}, ${new Date(failure.atMs).toISOString()}): ${failure.reason}`
    : where;

export interface RedriveOutcome {
  /** Messages sent back (those of notDeleted among them). */
  readonly moved: number;
  /** Messages that could not be sent back (left in the DLQ). */
  readonly failed: readonly { readonly messageId: string; readonly reason: string }[];
  /**
   * Messages sent back whose delete from the DLQ then failed: still there (present when any). A next redrive sends
   * each again, which its consumer takes as any duplicate delivery; `dlq discard` removes it (its reason says how).
   */
  readonly notDeleted?: readonly NotDeleted[];
  /**
   * Of those sent back, how many SQS moved from each queue `--accept-source` named (present when any):
   * ops50-dlq-accept-source.
   */
  readonly acceptedSources?: Readonly<Record<string, number>>;
  /** Dead letters that arrived during the redrive (left for the next one; present when any did). */
  readonly arrivedDuring?: number;
  /**
   * A run no error stopped that ended short of SQS's count as it began (`--max`, or the rest held by another reader,
   * or a count not yet caught up with deletes): about this many of those may still be there (present when any; a
   * stopped run says it in `stopped`).
   */
  readonly notReached?: number;
  /**
   * Dead letters stamped before the run that it found past SQS's count as it began (at least this many: one receive
   * looks): letters the count missed (it lags up to a minute), or ones SQS moved from a work queue during the run,
   * stamped as first sent there, which took older ones' place. Left for the next redrive (present when any).
   */
  readonly pastCount?: number;
  /**
   * Messages the run held (those left) whose release SQS refused as it ended: hidden until their visibility timeout
   * runs out, then back (present when any).
   */
  readonly notReleased?: readonly NotReleased[];
  /** The error that ended the run, or its release of what it held as it ended (present when one did). */
  readonly stopped?: RedriveStop;
  /**
   * The run stopped at a letter not its work queue's once it had left NOT_ITS_PER_MAX times `max` such letters
   * (outside `max`: ops50-redrive-max-own), that one and the rest not reached: why, and the discard that removes them
   * (present when it did: ops50b-redrive-not-its-bound; never when none was past the bound: dlq51-not-its-edge).
   */
  readonly notItsLimit?: string;
}

/**
 * How many letters refused as not its work queue's a redrive reads, per letter of `--max`, before it stops: outside
 * `max` (ops50-redrive-max-own), a DLQ full of them was read whole, bounded only by SQS's count, and `--json` listed
 * each (ops50b-redrive-not-its-bound). Ten: a few such letters before the stack's own are still passed.
 */
export const NOT_ITS_PER_MAX = 10;

export interface RedriveStop {
  /** The error, its name first for an AWS one. */
  readonly error: string;
  /**
   * How many of the dead letters the DLQ held as the run began it never reached, by SQS's approximate count then: still
   * there, beside `failed` and `notDeleted`. Absent when that count was not read (nothing was received then).
   */
  readonly notReached?: number;
}

/**
 * AWS errors of the caller's (a 4xx) that every message of a redrive meets the same way, whatever it holds: the
 * credentials (invalid, expired, none), the rights (IAM, a queue's or the bus's policy, the queue's KMS key), a queue,
 * table or bus not there. A redrive stops at the first one (dlq48-caller-refusal); a message refused for itself
 * (InvalidMessageContents, a PutEvents entry refused for what it carries) or a throttle or server error does not.
 */
const EVERY_MESSAGE_REFUSALS: ReadonlySet<string> = new Set([
  'AccessDenied',
  'AccessDeniedException',
  'NotAuthorized',
  'AuthorizationError',
  'UnrecognizedClientException',
  'InvalidClientTokenId',
  'InvalidAccessKeyId',
  'InvalidSignatureException',
  'SignatureDoesNotMatch',
  'IncompleteSignature',
  'IncompleteSignatureException',
  'MissingAuthenticationToken',
  'MissingAuthenticationTokenException',
  'ExpiredToken',
  'ExpiredTokenException',
  'InvalidSecurity',
  'CredentialsProviderError',
  'KmsAccessDenied',
  'KmsDisabled',
  'KmsNotFound',
  'KmsInvalidState',
  'KmsInvalidKeyUsage',
  'KmsOptInRequired',
  'QueueDoesNotExist',
  'AWS.SimpleQueueService.NonExistentQueue',
  'ResourceNotFoundException',
]);

/**
 * How AWS names a denial by a policy of the caller's rather than the resource's (`... is not authorized to perform:
 * events:PutEvents on resource: ... because no identity-based policy allows ...`, `with an explicit deny in a service
 * control policy`, ...). The bus's policy is named `resource-based policy`. A VPC endpoint's policy is the caller's
 * network's: every call through it is refused alike (review48-follow-vpce-denial).
 */
const CALLER_POLICY_DENIAL =
  /identity-based policy|service control policy|permissions boundary|session policy|(VPC endpoint policy)/i;

/** A refusal a resend met that every message of the DLQ meets too (resend's, for refusesEveryMessage). */
class EveryMessageRefused extends Error {}

function refusesEveryMessage(error: unknown): boolean {
  if (error instanceof EveryMessageRefused) return true;
  const e = error instanceof PutEntriesError ? error.cause : error;
  return e instanceof Error && EVERY_MESSAGE_REFUSALS.has(e.name);
}

/** One line for an error: an AWS error's (or the SDK's) name first; this module's own say theirs. */
export const errorLine = (error: unknown): string =>
  error instanceof Error &&
  (error.name === 'Error' || error instanceof EveryMessageRefused || error instanceof DlqArnUnreadError)
    ? error.message
    : errorText(error);

/** An SQS queue's ARN (`arn:<partition>:sqs:<region>:<account>:<name>`), as QueueArn and DeadLetterQueueSourceArn carry it. */
export const SQS_QUEUE_ARN = /^arn:aws[a-z-]*:sqs:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,80}(\.fifo)?$/;

/** A dead-letter queue's attributes read without its ARN (review50-ops-arn-unread): nothing judged by it. */
class DlqArnUnreadError extends TargetError {}

/**
 * The DLQ's ARN in its GetQueueAttributes answer, refused when absent or not a queue's (review50-ops-arn-unread): the
 * work queue's ARN is made beside it (arnBeside), and from '' it was a bare name, so that every letter SQS moved from
 * the work queue looked another queue's: `dlq discard --not-its-dead-letter` deleted the stack's own, `dlq redrive`
 * left them all, each with a discard command.
 */
function arnOfAnswer(attributes: Readonly<Record<string, string>> | undefined, url: string): string {
  const arn = attributes?.QueueArn;
  if (arn !== undefined && SQS_QUEUE_ARN.test(arn)) return arn;
  throw new DlqArnUnreadError(
    `dlq/arn-unread: SQS's answer for the dead-letter queue ${url} gave ${arn === undefined ? 'no QueueArn' : `"${arn}" as its QueueArn, not a queue's ARN`}: where its letters came from is judged by it, so none was sent on or discarded by that judgment; run it again`,
  );
}

/**
 * How many messages a queue holds, by SQS's approximate counts (ready to receive and in flight: held by a reader), and
 * its ARN, refused only when a letter needs it (arnOfAnswer: a letter without a source is judged without it).
 */
async function countAndArn(
  deployment: Deployment,
  url: string,
): Promise<{ count: number; arn: () => string }> {
  const out = await deployment.clients.sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: url,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible', 'QueueArn'],
    }),
  );
  const a = out.Attributes ?? {};
  return {
    count:
      Number(a.ApproximateNumberOfMessages ?? '0') + Number(a.ApproximateNumberOfMessagesNotVisible ?? '0'),
    arn: () => arnOfAnswer(a, url),
  };
}

/** The ARN of the queue at `url`, asked of SQS. */
async function queueArn(deployment: Deployment, url: string): Promise<string> {
  const out = await deployment.clients.sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }),
  );
  return arnOfAnswer(out.Attributes, url);
}

/** The ARN of `queue`'s dead-letter queue, asked of SQS (refused when its answer has none: arnOfAnswer). */
export const deadLetterQueueArn = (deployment: Deployment, queue: DlqId): Promise<string> =>
  queueArn(deployment, dlqUrl(deployment, queue));

/**
 * The ARN of the queue at `url`, a queue of the same account and region as the one whose ARN is `beside`: the name is
 * a queue URL's last segment on AWS, LocalStack and moto alike (no call, so no right to read the work queue is needed).
 */
export const arnBeside = (beside: string, url: string): string =>
  `${beside.slice(0, beside.lastIndexOf(':') + 1)}${url.split('/').pop() ?? ''}`;

/**
 * Why a dead letter of `queue` is not one to send on, by where SQS says it came from (security49b-dlq-source), or
 * undefined when it is. A letter SQS moved by a redrive policy carries the queue it left (DeadLetterQueueSourceArn);
 * one sent to the queue carries none. The two dead-letter queues take their work queue's moves alone: the stack
 * cannot deny another queue's (their RedriveAllowPolicy would name the work queue, a circular reference), and a
 * letter sent straight to them is none of the stack's (nothing sends there; their policy denies every IAM
 * principal). tickDeadLetters takes what EventBridge and Lambda send it, never a move (its RedriveAllowPolicy is
 * denyAll), but the local stack's tick queue's. On an emulator (`local`, `localstack`) a letter without one is taken as
 * its work queue's: moto sets none on its moves (test/cli/dlq-source.test.ts pins it), nor did LocalStack before 3.3;
 * one naming another queue is refused there too. `accepted`: ARNs the operator names as the work queue's too
 * (`--accept-source`: its older name, after a stack change replaced it), compared exactly, as its own is
 * (ops50-dlq-accept-source); tickDeadLetters takes none.
 */
function unexpectedSource(
  deployment: Deployment,
  queue: DlqId,
  dlqArn: () => string,
  accepted: readonly string[] = [],
): (m: Message) => string | undefined {
  const discard = (m: Message) => discardCommand(deployment, queue, m.MessageId ?? '');
  if (queue === 'tickDeadLetters') {
    const tickQueue = deployment.names.tickQueueUrl;
    return (m) => {
      const from = source(m);
      if (from === undefined || (tickQueue !== undefined && from === arnBeside(dlqArn(), tickQueue)))
        return undefined;
      return `dlq/not-its-dead-letter: SQS moved it here from ${from}, a queue that names tickDeadLetters its dead-letter queue: none of the stack's does (EventBridge and margin-check send their dead letters); not put on the bus, left in the DLQ: read it (dlq list), then ${discard(m)} removes it`;
    };
  }
  // Read only for a letter with a source: an answer without the DLQ's ARN throws there (review50-ops-arn-unread).
  const workArn = () => arnBeside(dlqArn(), deployment.names.queues[queue].url);
  const emulator = deployment.kind !== 'aws';
  // The work queue under an older name, named by the operator (ops50-dlq-accept-source): compared exactly, as its own.
  const taken = new Set(accepted);
  return (m) => {
    const from = source(m);
    if (from !== undefined && (taken.has(from) || from === workArn())) return undefined;
    if (from === undefined && emulator) return undefined;
    const work = from === undefined ? '' : workArn();
    return from === undefined
      ? `dlq/not-its-dead-letter: sent to the dead-letter queue directly, not moved there from ${queue} by SQS (no DeadLetterQueueSourceArn): none of the stack's sends there; not sent on to ${queue}, left in the DLQ: read it (dlq list), then ${discard(m)} removes it`
      : `dlq/not-its-dead-letter: SQS moved it here from ${from}, not from ${queue} (${work}): another queue names this one its dead-letter queue; not sent on to ${queue}, left in the DLQ: read it (dlq list), then ${discard(m)} removes it`;
  };
}

/**
 * Sends up to `max` messages of a DLQ back where they came from, each deleted only once resent. Only the dead letters
 * there when it began: a message SQS stamps as sent since then is one this run sent back that failed again (a poison
 * message fails its receives in seconds), or a new failure; moving it would resend it again and again, counting it
 * each time, until `max` (an audit in session 37: one dead letter sent back 25 times). And no more of them than the
 * DLQ held as it began, by SQS's count then (dlq48-redrive-inflow): a dead letter SQS moves from a work queue keeps
 * the stamp of its first send there, so new failures of work sent before the run look older than it. The count is
 * approximate: a run that ends at it looks once more and says what it finds past it (`pastCount`); one that ends short
 * of it says so (`notReached`). Letters refused as not its work queue's do not count towards `max`
 * (ops50-redrive-max-own): the DLQ's count bounds them.
 *
 * An error ends the run with what it did so far (dlq48-redrive-error): a receive that failed (after the SDK's retries),
 * or a refusal every message would meet (refusesEveryMessage: dlq48-caller-refusal). The message refused is among
 * `failed`; the ones the run holds are released.
 */
export async function redriveDeadLetters(
  deployment: Deployment,
  queue: DlqId,
  max = 1000,
  options: DlqRunOptions = {},
): Promise<RedriveOutcome> {
  const url = dlqUrl(deployment, queue);
  // SQS stamps by its clock, so the cut is by AWS's, the answers' (review49-cli-redrive-clock): by the machine's, one
  // minutes slow left every dead letter of those minutes as an arrival, one fast took letters back again as old. The
  // machine's own where it agrees with AWS's: the Date header's second would leave the last second's as arrivals.
  const startedMs = awsClockOf(deployment).agreedNowMs();
  let moved = 0;
  const arrivedDuring = new Set<string>();
  const failed: { messageId: string; reason: string }[] = [];
  /**
   * Those of `failed` refused as not its work queue's (dlq/not-its-dead-letter): outside `max`, so that letters put
   * there by another principal never use up a run's budget before the stack's own are reached (ops50-redrive-max-own).
   */
  let foreignRefused = 0;
  const foreignLimit = NOT_ITS_PER_MAX * max;
  let notItsLimit: string | undefined;
  /** Those sent back on the strength of `acceptSources`, by source (said: ops50-dlq-accept-source). */
  const movedFrom = new Map<string, number>();
  let atStart: number | undefined;
  let stopped: string | undefined;
  /** A receive found nothing it had not seen: the run did not end at the count. */
  let emptied = false;
  const pastCount = new Set<string>();
  let notReleased: readonly NotReleased[] = [];
  // What it does not delete it holds out of sight until the end (released then), each message handed on once.
  const run = new DlqRun(deployment, url, options);
  try {
    // Counted after the start is taken: one coming in between is counted and, stamped later, left as an arrival.
    const counted = await countAndArn(deployment, url);
    atStart = counted.count;
    const foreign = unexpectedSource(deployment, queue, counted.arn, options.acceptSources);
    const accepted = new Set(options.acceptSources ?? []);
    // One receive at least: SQS's count may lag messages that just came in (those past it are said: pastCount).
    do {
      // No more than the count leaves to see, so the run moves no dead letter beyond it that a receive returned.
      const wanted = atStart > 0 ? atStart - moved - failed.length : RECEIVE_BATCH;
      const received = await run.next(
        Math.min(wanted, max - moved - (failed.length - foreignRefused) - arrivedDuring.size),
      );
      if (received.length === 0) {
        emptied = true;
        break;
      }
      // New dead letters are held to the end and counted towards `max`, which bounds the run while the cause still
      // fails (a review in session 37). A receive of new ones alone goes on: SQS answers in no set order, so older
      // ones may still be there (ops47-dlq-arrivals-only).
      const arrived = received.filter((m) => Number(m.Attributes?.SentTimestamp ?? 0) > startedMs);
      for (const m of arrived) arrivedDuring.add(m.MessageId ?? '');
      const batch = received.filter((m) => !arrived.includes(m));
      for (const m of batch) {
        // Not its work queue's (or the stack's sink's): a letter another principal put there, never sent on as the
        // caller (security49b-dlq-source).
        const notOurs = foreign(m);
        if (notOurs) {
          // Stopped at one past the bound, left held and unjudged: at exactly the bound, with none past it, the run
          // ends as any other, and "not reached" is never said of letters that are not there (dlq51-not-its-edge).
          if (foreignRefused >= foreignLimit) {
            notItsLimit = notItsLimitLine(deployment, queue, foreignRefused, options.acceptSources);
            break;
          }
          failed.push({ messageId: m.MessageId ?? '', reason: notOurs });
          foreignRefused += 1;
          continue;
        }
        try {
          const never = await unredrivable(deployment, queue, m.Body ?? '');
          if (never) {
            // No fix makes it work: sent back, it fails again and comes back as new (its alarm, aging and expiry
            // restarted). It stays for `dlq discard` (a drill of the runbook in session 38).
            failed.push({
              messageId: m.MessageId ?? '',
              reason: `${never}; ${discardCommand(deployment, queue, m.MessageId ?? '')} removes it`,
            });
            continue;
          }
          await resend(deployment, queue, m.Body ?? '', m.MessageId ?? '');
        } catch (error) {
          failed.push({ messageId: m.MessageId ?? '', reason: (error as Error).message });
          // The rest of the batch stays held, released as the run ends.
          if (!refusesEveryMessage(error)) continue;
          stopped = errorLine(error);
          break;
        }
        moved += 1;
        const from = source(m);
        if (from !== undefined && accepted.has(from)) movedFrom.set(from, (movedFrom.get(from) ?? 0) + 1);
        // Sent back: a failed delete leaves it held and tried again, and, still there, in notDeleted
        // (ops47-dlq-delete-failed), not among those that could not be sent back.
        const notDeleted = await run.delete(m);
        if (notDeleted !== undefined && refusesEveryMessage(notDeleted)) {
          stopped = errorLine(notDeleted);
          break;
        }
      }
      // Arrivals end it too once as many as the count (a batch at least): a count above what is there (deletes it has
      // not caught up with, letters another reader holds) kept it receiving new ones to `max` (review48-dlq-count-high).
    } while (
      !stopped &&
      notItsLimit === undefined &&
      moved + failed.length < atStart &&
      moved + failed.length - foreignRefused + arrivedDuring.size < max &&
      arrivedDuring.size < Math.max(RECEIVE_BATCH, atStart)
    );
    // Ended at the count: SQS's may have been short (eventually consistent), and a dead letter moved from a work queue
    // during the run, as old by its stamp, may have taken an older one's place. One more receive, moving nothing, says
    // whether more are there (review48-dlq-past-count: they were left unsaid).
    if (!stopped && notItsLimit === undefined && !emptied && moved + failed.length >= atStart) {
      for (const m of await run.next(RECEIVE_BATCH))
        (Number(m.Attributes?.SentTimestamp ?? 0) > startedMs ? arrivedDuring : pastCount).add(
          m.MessageId ?? '',
        );
    }
  } catch (error) {
    // A receive (or the count) that failed: what was done so far is said, not lost with the error.
    stopped ??= errorLine(error);
  } finally {
    const released = await run.finish();
    notReleased = released.notReleased;
    if (released.error !== undefined) {
      // Said after the error that stopped the run too: expired credentials fail the release as they failed the run
      // (review48-dlq-release-unsaid).
      const release = releaseLine(released.error);
      stopped = stopped === undefined ? release : `${stopped}; then ${release}`;
    }
  }
  const notDeleted = run.notDeleted().map(({ messageId, reason }) => ({
    messageId,
    reason: `sent back, then its delete failed (${reason}): still in the DLQ, where a redrive sends it again (a duplicate delivery, which its consumer takes as any); ${discardCommand(deployment, queue, messageId)} removes it`,
  }));
  const reached = moved + failed.length;
  const short = stopped === undefined && atStart !== undefined ? atStart - reached : 0;
  return {
    moved,
    failed,
    ...(notDeleted.length > 0 ? { notDeleted } : {}),
    ...(movedFrom.size > 0 ? { acceptedSources: Object.fromEntries(movedFrom) } : {}),
    ...(arrivedDuring.size > 0 ? { arrivedDuring: arrivedDuring.size } : {}),
    ...(short > 0 ? { notReached: short } : {}),
    ...(pastCount.size > 0 ? { pastCount: pastCount.size } : {}),
    ...(notItsLimit !== undefined ? { notItsLimit } : {}),
    ...(notReleased.length > 0 ? { notReleased } : {}),
    ...(stopped !== undefined
      ? {
          stopped: {
            error: stopped,
            ...(atStart !== undefined ? { notReached: Math.max(0, atStart - reached) } : {}),
          },
        }
      : {}),
  };
}

/**
 * A liquidation dead-lettered as stuck after its contended deliveries is sent back with a fresh count: the cause
 * fixed, it gets the same budget as any delivery (otherwise its first conflict would call it stuck again).
 */
function freshBudget(body: string): string {
  const json = parseJson(body) as Record<string, unknown> | undefined;
  if (!json || typeof json !== 'object' || !('contendedDeliveries' in json)) return body;
  const { contendedDeliveries: _spent, ...rest } = json;
  return JSON.stringify(rest);
}

/**
 * Why a dead letter can never be processed, if it cannot: its body is not a message of its queue (poison), or it
 * names a liquidation or auction that does not exist.
 */
async function unredrivable(deployment: Deployment, queue: DlqId, body: string): Promise<string | undefined> {
  const json = parseJson(body);
  if (queue === 'tickDeadLetters') return isEvent(tickDeadLetter(json).event) ? undefined : NOT_AN_EVENT;
  if (queue === 'liquidations') {
    const parsed = liquidationMessageSchema.safeParse(json);
    if (!parsed.success) return 'poison: not a liquidation message';
    const id = parsed.data.liquidationId;
    return (await liquidationRepo(deployment).get(id)) ? undefined : noRecord('liquidation', id);
  }
  // The auction queue also carries the rest of a registration's wake: no record to look for.
  if (registrationWakeMessageSchema.safeParse(json).success) return undefined;
  const parsed = auctionStepMessageSchema.safeParse(json);
  if (!parsed.success) return 'poison: not an auction step message';
  const id = parsed.data.auctionId;
  return (await auctionRepo(deployment).get(id)) ? undefined : noRecord('auction', id);
}

/** A message deleted, with its body (the only copy left: keep it with the incident). */
export interface Discarded {
  readonly messageId: string;
  readonly body: string;
  /**
   * Where it came from: the queue SQS moved it from (its DeadLetterQueueSourceArn), or null, sent straight to the DLQ;
   * for a not-its letter (discardNotItsDeadLetters) the evidence that made it another's (tidy50-dlq-discard-source).
   * By id (last50-dlq-discard-id-source), absent for a letter naming none on an emulator, whose moves name none either.
   */
  readonly sourceArn?: string | null;
}

export interface DiscardOutcome {
  readonly discarded: readonly Discarded[];
  readonly notFound: readonly string[];
  /** Found, and their delete failed: still in the DLQ (present when any). */
  readonly notDeleted?: readonly NotDeleted[];
  /** Messages it held (read past, or not deleted) whose release SQS refused (present when any). */
  readonly notReleased?: readonly NotReleased[];
  /**
   * The error that stopped it (a receive, or the release) after it had deleted messages: their bodies are returned,
   * not lost with the error (final48c-discard-bodies-kept), as are those not deleted or not released
   * (cli49-dlq-release-failed). One that stopped it with none of those to say is thrown.
   */
  readonly stopped?: string;
}

/**
 * Deletes the dead letters of `messageIds` (a poison message no fix makes work, or one an operator has dealt with
 * otherwise) and returns their bodies. Reads the queue as a listing does, at most `max` messages; the others are
 * released at once.
 */
export async function discardDeadLetters(
  deployment: Deployment,
  queue: DlqId,
  messageIds: readonly string[],
  max = 1000,
  options: DlqRunOptions = {},
): Promise<DiscardOutcome> {
  const wanted = new Set(messageIds);
  // Said as by --not-its-dead-letter (last50-dlq-discard-id-source: it was not): "sent straight to it" only where a move
  // names its source, on AWS; an emulator's letter naming none may be a move (test/cli/dlq-source.test.ts pins moto's).
  const aws = deployment.kind === 'aws';
  const outcome = await discardWhere(
    deployment,
    queue,
    (m) => wanted.delete(m.MessageId ?? ''),
    () => wanted.size === 0,
    max,
    options,
    (m) => {
      const from = source(m);
      return from !== undefined ? { sourceArn: from } : aws ? { sourceArn: null } : {};
    },
  );
  return { ...outcome, notFound: [...wanted] };
}

/**
 * Deletes every dead letter of `queue` that `dlq redrive` would leave as not its work queue's
 * (`dlq/not-its-dead-letter`, judged by the redrive's own function, `options.acceptSources` taken as the work queue's)
 * among the first `max` it reads, and returns their bodies (ops50-dlq-discard-selected). The DLQ's ARN that judgement
 * needs is read first: an error there deletes nothing.
 */
export async function discardNotItsDeadLetters(
  deployment: Deployment,
  queue: DlqId,
  max = 1000,
  options: DlqRunOptions = {},
): Promise<DiscardOutcome> {
  // Read, and refused without it (review50-ops-arn-unread), before any letter: a delete goes by it.
  const arn = await queueArn(deployment, dlqUrl(deployment, queue));
  const refuses = unexpectedSource(deployment, queue, () => arn, options.acceptSources);
  return discardWhere(
    deployment,
    queue,
    (m) => refuses(m) !== undefined,
    () => false,
    max,
    options,
    (m) => ({ sourceArn: source(m) ?? null }),
  );
}

/**
 * discardDeadLetters' run: deletes those `wants` takes among the first `max` read, until `done`; `more`: what is said of
 * each besides its id and body.
 */
async function discardWhere(
  deployment: Deployment,
  queue: DlqId,
  wants: (m: Message) => boolean,
  done: () => boolean,
  max: number,
  options: DlqRunOptions,
  more: (m: Message) => Omit<Discarded, 'messageId' | 'body'> = () => ({}),
): Promise<DiscardOutcome> {
  const run = new DlqRun(deployment, dlqUrl(deployment, queue), options);
  let seen = 0;
  const discarded: Discarded[] = [];
  let failure: { readonly error: unknown } | undefined;
  try {
    while (!done() && seen < max) {
      const fresh = await run.next(max - seen);
      if (fresh.length === 0) break;
      seen += fresh.length;
      for (const m of fresh) {
        if (!wants(m)) continue;
        await run.delete(m);
        discarded.push({ messageId: m.MessageId!, body: m.Body ?? '', ...more(m) });
      }
    }
  } catch (error) {
    failure = { error };
  }
  const released = await run.finish();
  // One whose delete failed is still there: not discarded, and said (its error used to end the command, leaving the
  // bodies of those discarded before it unprinted: ops47-dlq-delete-failed).
  const notDeleted = run.notDeleted();
  const left = new Set(notDeleted.map((n) => n.messageId));
  const gone = discarded.filter((d) => !left.has(d.messageId));
  const errors = [
    ...(failure ? [errorLine(failure.error)] : []),
    ...(released.error === undefined ? [] : [releaseLine(released.error)]),
  ];
  // Nothing to say but the error: it ends the command, with its advice (credentials, the network). Those not deleted
  // and not released are said with it (cli49-dlq-release-failed: a release that failed outright lost them).
  if (errors.length > 0 && gone.length === 0 && notDeleted.length === 0 && released.notReleased.length === 0)
    throw failure ? failure.error : released.error;
  return {
    discarded: gone,
    notFound: [],
    ...(notDeleted.length > 0 ? { notDeleted } : {}),
    // The release's refusals were dropped (more48-dlq-list-release).
    ...(released.notReleased.length > 0 ? { notReleased: released.notReleased } : {}),
    // Deleted, then stopped: the bodies, the only copy left, are returned with the error (final48c-discard-bodies-kept).
    ...(errors.length > 0 ? { stopped: errors.join('; then ') } : {}),
  };
}

/**
 * The other dead-letter queue holding each of `messageIds`, looked at and left there (every message released): a
 * discard given the wrong --queue named only the queue it looked in (walk43b-dlq-other-queue). With the messages of
 * those queues SQS refused to release (more48-dlq-list-release), and the error that stopped the look, if one did, with
 * what it had found (cli49-dlq-release-failed: a release that failed outright was thrown over them).
 */
export async function deadLetterQueuesOf(
  deployment: Deployment,
  except: DlqId,
  messageIds: readonly string[],
  max = 1000,
): Promise<{
  readonly found: Record<string, DlqId>;
  readonly notReleased: readonly (NotReleased & { readonly queue: DlqId })[];
  /** `<queue>: <error>`, and the error as thrown (its advice), when one stopped the look. */
  readonly stopped?: string;
  readonly error?: unknown;
}> {
  const found: Record<string, DlqId> = {};
  const notReleased: (NotReleased & { readonly queue: DlqId })[] = [];
  for (const queue of DLQ_IDS) {
    if (queue === except || messageIds.every((id) => found[id] !== undefined)) continue;
    const looked = await peek(deployment, dlqUrl(deployment, queue), max, (seen) => {
      for (const m of seen) if (messageIds.includes(m.MessageId ?? '')) found[m.MessageId!] ??= queue;
    });
    for (const n of looked.notReleased) notReleased.push({ queue, ...n });
    if (looked.stopped !== undefined)
      return { found, notReleased, stopped: `${queue}: ${looked.stopped}`, error: looked.error };
  }
  return { found, notReleased };
}

interface TickEventBody {
  readonly source?: unknown;
  readonly 'detail-type'?: unknown;
  readonly detail?: { readonly symbol?: unknown; readonly sequence?: unknown };
}

/** An event the bus can take again: its source, detail type and detail. */
function isEvent(
  event: TickEventBody | undefined,
): event is TickEventBody & { source: string; 'detail-type': string; detail: object } {
  return (
    typeof event?.source === 'string' &&
    typeof event['detail-type'] === 'string' &&
    typeof event.detail === 'object' &&
    event.detail !== null
  );
}

/**
 * A tick dead letter's event and, when margin-check failed it, why. The tick DLQ holds two shapes: the event
 * itself (EventBridge could not deliver it) and Lambda's on-failure record of an invocation that failed every
 * retry, `{ requestContext, requestPayload: <the event>, responsePayload: { errorType, errorMessage } }`.
 */
function tickDeadLetter(json: unknown): {
  readonly event: TickEventBody | undefined;
  readonly failure?: { readonly code?: string; readonly message?: string };
} {
  const body = json as
    | (TickEventBody & {
        requestPayload?: TickEventBody;
        requestContext?: { condition?: unknown };
        responsePayload?: { errorType?: unknown; errorMessage?: unknown };
      })
    | undefined;
  if (!body || typeof body !== 'object' || typeof body.requestPayload !== 'object') return { event: body };
  const text = (v: unknown) => (typeof v === 'string' && v ? v : undefined);
  const response = body.responsePayload;
  const code = text(response?.errorType) ?? text(body.requestContext?.condition);
  const message = text(response?.errorMessage);
  return {
    event: body.requestPayload ?? undefined,
    failure: { ...(code ? { code } : {}), ...(message ? { message } : {}) },
  };
}

async function resend(deployment: Deployment, queue: DlqId, body: string, messageId: string): Promise<void> {
  const { sqs, events } = deployment.clients;
  if (queue !== 'tickDeadLetters') {
    await sqs
      .send(
        new SendMessageCommand({
          QueueUrl: deployment.names.queues[queue].url,
          MessageBody: freshBudget(body),
        }),
      )
      .catch((error: Error) => {
        // The queue's own policy (security49-queue-senders) refuses every message alike: it says whom it takes.
        if (refusedByQueuePolicy(error))
          throw new EveryMessageRefused(
            `dlq/send-refused: ${error.name} (${error.message}): ${queueSendersAdvice(queue, 'redrive as a role listed there')}`,
          );
        throw error;
      });
    return;
  }
  const { event } = tickDeadLetter(parseJson(body));
  if (!isEvent(event)) throw new Error('dlq/not-an-event: the body is not an EventBridge event');
  // A deployed bus takes a continuation from margin-check's role alone, and with tickPublishersOnly a PriceTick from
  // the feed principals alone (its policy): a refusal says what to do instead.
  const continuation = event['detail-type'] === TICK_BUS.continuationDetailType;
  const refused = (code: string, message: string | undefined, every: boolean): Error => {
    const detail = message ? `${code} (${message})` : code;
    const denied = /AccessDenied|NotAuthorized/.test(code);
    // Refused by a policy of the caller's (its identity's, an SCP, a boundary, its VPC endpoint's), not the bus's: every
    // next call is refused alike, so the run stops (dlq48-caller-refusal), the continuation left to another redrive.
    const caller = denied && continuation ? CALLER_POLICY_DENIAL.exec(message ?? '') : null;
    if (caller)
      return new EveryMessageRefused(
        caller[1] === undefined
          ? `dlq/put-failed: ${detail}: these credentials may not put events on the bus: redrive with credentials allowed events:PutEvents on it`
          : `dlq/put-failed: ${detail}: the VPC endpoint these calls go through may not put events on the bus: redrive where its policy allows events:PutEvents, or from outside that network`,
      );
    // A continuation refused by the bus's policy is refused for its detail type: the PriceTicks after it may go (no stop).
    if (denied && continuation)
      return new Error(
        `dlq/continuation-refused: ${detail}: the bus takes a ${TICK_BUS.continuationDetailType} from margin-check alone; the market's next accepted tick takes over the work its tick left (${backstopCommand(deployment, 'status --json')} shows the market's pendingSequence until then), then ${discardCommand(deployment, queue, messageId)} removes this one`,
      );
    const text = denied
      ? `dlq/put-failed: ${detail}: a stack deployed with backstop:tickPublishersOnly takes a ${TICK_BUS.detailType} from its feed principals alone: redrive with a feed role's credentials`
      : `dlq/put-failed: ${detail}`;
    return every ? new EveryMessageRefused(text) : new Error(text);
  };
  // As the feed's publisher puts it: a throttled entry is sent again, one refused is said.
  const out = await putEntries(events, [
    {
      EventBusName: deployment.names.busName,
      Source: event.source,
      DetailType: event['detail-type'],
      Detail: JSON.stringify(event.detail),
    },
  ]).catch((error: Error) => {
    // A call that failed without an answer the publisher could read as a refusal: its own error says why.
    const cause = error instanceof PutEntriesError && error.cause instanceof Error ? error.cause : error;
    throw /AccessDenied|NotAuthorized/.test(cause.name) ? refused(cause.name, cause.message, true) : error;
  });
  // Refused (the entry, or the whole call: the bus's policy may answer either way), or answered with no result.
  // Refused whole for the caller, or its entry by policy, every next tick is refused too (review47-replay-entry-policy);
  // a call refused for what this one carries (a ValidationException) says nothing of the next.
  const rejected = out.rejected[0];
  if (rejected) {
    const every =
      rejected.scope === 'call'
        ? EVERY_MESSAGE_REFUSALS.has(rejected.code)
        : POLICY_ENTRY_CODES.has(rejected.code);
    throw refused(rejected.code, rejected.message, every);
  }
  const unknown = out.unknown[0];
  if (unknown) throw refused(unknown.code, unknown.message, false);
}

/** The most messages one run of a DLQ command reads (`--max`'s top, for list, redrive and discard alike). */
export const MOST_PER_RUN = 100_000;

/**
 * Why a redrive stopped at one more letter not its work queue's than the NOT_ITS_PER_MAX times `max` it left as such,
 * and the discard that removes such letters, with the same --accept-source (without it, the letters it names would be
 * discarded too). The discard reads the first `--max` letters, the stack's own among them (kept), so it is said as
 * that, not as removing the very letters the redrive left (review50-ops2-not-its-advice); its `--max` no more than it
 * takes.
 */
export function notItsLimitLine(
  deployment: Deployment,
  queue: DlqId,
  refused: number,
  acceptSources: readonly string[] = [],
): string {
  const accept = acceptSources.length > 0 ? ` --accept-source ${shellWord(acceptSources.join(','))}` : '';
  const reads = Math.min(Math.max(refused, 1000), MOST_PER_RUN);
  const most = reads > 1000 ? ` --max ${reads}` : '';
  const discard = backstopCommand(
    deployment,
    `dlq discard --queue ${queue} --not-its-dead-letter${accept}${most}`,
  );
  return `stopped after leaving ${counted(refused, 'letter', 'letters')} as not ${queue}'s (dlq/not-its-dead-letter), ${NOT_ITS_PER_MAX} times --max, at one more: it and any past it not reached; ${discard} removes such letters among the first ${reads} it reads, each body printed (the stack's own it reads count towards ${reads} and are kept: some such letters may be left), then redrive again, and again while it stops so`;
}

/** The discard of one dead letter, for the target it is in (ux46-advice-target). */
const discardCommand = (deployment: Deployment, queue: DlqId, messageId: string): string =>
  backstopCommand(deployment, `dlq discard --queue ${queue} --message-id ${shellWord(messageId)}`);
