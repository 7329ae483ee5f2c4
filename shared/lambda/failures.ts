import {
  BatchProcessor,
  EventType,
  FullBatchFailureError,
  processPartialResponse,
} from '@aws-lambda-powertools/batch';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { NewerWriterError } from '../adapters/aws/writer-schema.ts';
import { METRICS } from '../metrics.ts';
import type { ProcessingFailure, QueueTransport, Telemetry } from '../ports/index.ts';
import { LiquidationBusyError } from '../services/liquidation.ts';
import { QUEUES, type QueueId } from '../topology.ts';
import { type DeferralKind, noteDeferred } from './deferral.ts';
import { log, powertoolsTelemetry } from './runtime.ts';

/** A reason is one line for an operator (`backstop dlq list`), not a dump: longer messages are cut. */
const MAX_REASON_CHARS = 300;

/** `Name: message` of a thrown value (the name only when it adds something), on one line, cut to size. */
export function failureReason(error: unknown): string {
  const name = error instanceof Error ? error.name : typeof error;
  let message = (error instanceof Error ? error.message : String(error)).replace(/\s+/g, ' ').trim();
  // A cancelled transaction says why in its reason codes (TransactionConflict, ConditionalCheckFailed), which
  // DynamoDB's message lists already ("... [None, ConditionalCheckFailed]") and other engines' may not.
  const codes = (error as { CancellationReasons?: { Code?: string }[] } | null)?.CancellationReasons;
  if (Array.isArray(codes) && !/\[[^\]]*\]$/.test(message))
    message += ` [${codes.map((c) => c.Code ?? 'None').join(',')}]`;
  const reason = !message
    ? name
    : name === 'Error' || message.startsWith(name)
      ? message
      : `${name}: ${message}`;
  return reason.length > MAX_REASON_CHARS ? `${reason.slice(0, MAX_REASON_CHARS - 1)}…` : reason;
}

/** The failure of one SQS delivery: its error and ApproximateReceiveCount (0 when absent). */
export function failureOf(error: unknown, record: SQSRecord, atMs: number): ProcessingFailure {
  const attempt = Number(record.attributes?.ApproximateReceiveCount);
  return {
    reason: failureReason(error),
    attempt: Number.isSafeInteger(attempt) && attempt > 0 ? attempt : 0,
    atMs,
  };
}

/**
 * Records a failure on its record before the handler rethrows. Best effort: the message is retried (and
 * dead-lettered) either way, so a failure to record (the record does not exist, the table is throttled) is
 * logged and must not replace the original error.
 */
export async function noteFailure(
  what: 'liquidation' | 'auction',
  id: string,
  failure: ProcessingFailure,
  record: (id: string, failure: ProcessingFailure) => Promise<void>,
): Promise<void> {
  try {
    await record(id, failure);
  } catch (error) {
    log.warn(`could not record the ${what}'s failure`, { id, reason: failureReason(error) });
  }
}

/**
 * Logs a record's failure before it is retried: at ERROR, except a deferral (another delivery holds the
 * liquidation's order lease: a duplicate delivery, normal under at-least-once), at INFO, and a record a newer
 * Backstop wrote (a rolling deploy: the new code takes it once live), at WARN.
 */
export function logFailure(error: unknown, message: string): void {
  if (error instanceof LiquidationBusyError) {
    log.info("another delivery places this liquidation's orders; deferred", { reason: error.message });
  } else if (error instanceof NewerWriterError) {
    log.warn(
      `${message}: a newer Backstop wrote its record; retried until this function runs the new version`,
      {
        reason: error.message,
      },
    );
  } else {
    log.error(message, { error: error as Error });
  }
}

/** SQS's longest visibility timeout. */
const MAX_VISIBILITY_SECONDS = 43_200;

/**
 * Makes a record that cannot be processed before `retryAfterMs` visible again then (rounded up to a second),
 * instead of after the queue's whole visibility timeout; the handler then reports it failed as usual. Best
 * effort: a record not deferred comes back after its visibility timeout.
 */
export async function deferRecord(
  queue: QueueTransport,
  record: SQSRecord,
  retryAfterMs: number,
  kind: DeferralKind = 'wait',
): Promise<void> {
  const seconds = Math.min(MAX_VISIBILITY_SECONDS, Math.max(1, Math.ceil(retryAfterMs / 1000)));
  try {
    await queue.changeVisibility(record.receiptHandle, seconds);
    noteDeferred(record.receiptHandle, kind);
  } catch (error) {
    log.warn('could not defer the record; it comes back after its visibility timeout', {
      reason: failureReason(error),
    });
  }
}

/**
 * Seconds until a record of `queue` whose `receiveCount`-th receive failed comes back, or undefined (its visibility
 * timeout). The last receive's failure (`maxReceives`, the queue's redrive) comes back within a second: its next receive
 * moves it to the dead-letter queue, whose alarm should not wait a visibility timeout for nothing.
 */
export function retryBackoffSeconds(
  queue: QueueId,
  receiveCount: number,
  maxReceives?: number,
): number | undefined {
  if (!Number.isSafeInteger(receiveCount) || receiveCount < 1) return undefined;
  if (maxReceives !== undefined && receiveCount >= maxReceives) return 0;
  const schedule = QUEUES.find((q) => q.id === queue)?.deadLetter?.retryBackoffSeconds ?? [];
  return schedule[receiveCount - 1];
}

/**
 * What a failed record's handler does before reporting it: another delivery's lease makes it wait for that lease,
 * any other failure is counted (RecordFailures, alarmed) and backs off on its queue's schedule (by
 * ApproximateReceiveCount), the last receive's not at all. A record a newer Backstop wrote is counted apart
 * (NewerWriterRetries, not alarmed: a rolling deploy must not page) on the same schedule, so one that outlasts
 * its receives (a rollback) still reaches the dead-letter queue, which alarms.
 */
export async function scheduleRetry(
  queueId: QueueId,
  queue: QueueTransport,
  record: SQSRecord,
  error: unknown,
  maxReceives?: number,
  telemetry: Telemetry = powertoolsTelemetry(),
): Promise<void> {
  if (error instanceof LiquidationBusyError) return deferRecord(queue, record, error.retryAfterMs);
  // Counted here: Lambda counts an error only when every record of the batch failed.
  const metric = error instanceof NewerWriterError ? METRICS.NewerWriterRetries : METRICS.RecordFailures;
  telemetry.count(metric.name, 1, { Queue: queueId });
  const receives = Number(record.attributes?.ApproximateReceiveCount);
  const seconds = retryBackoffSeconds(queueId, receives, maxReceives);
  if (seconds !== undefined) await deferRecord(queue, record, seconds * 1000, 'backoff');
}

/**
 * The record's message, read by `parse`. A body that is not a message of its queue can never be read by a retry:
 * it is logged at ERROR with the record's id, counted as a record failure of its queue (RecordFailures, alarmed,
 * as any failed record; an audit in session 36 found it left out), made visible again within a second (its
 * receives run out into the dead-letter queue, which alarms, without waiting out the backoff), and its error thrown.
 */
export async function readMessage<T>(
  queueId: QueueId,
  queue: QueueTransport,
  record: SQSRecord,
  parse: (body: string) => T,
  telemetry: Telemetry = powertoolsTelemetry(),
): Promise<T> {
  try {
    return parse(record.body);
  } catch (error) {
    telemetry.count(METRICS.RecordFailures.name, 1, { Queue: queueId });
    log.error('message cannot be read; it goes to the dead-letter queue', {
      messageId: record.messageId,
      receiveCount: record.attributes?.ApproximateReceiveCount,
      error: error as Error,
    });
    await deferRecord(queue, record, 0, 'backoff');
    throw error;
  }
}

/** When records of a batch processed one after another stop being started. */
export interface BatchDeadline {
  /** The invocation's remaining time (the Lambda context's). */
  readonly remainingMs: () => number;
  /** A record starts only while this much remains: its worst case, SDK timeouts and retries included. */
  readonly reserveMs: number;
  /**
   * The records' queue: one not started goes back to it as a new message (its handler is idempotent), so it
   * comes back at once and counts no receive towards the dead-letter queue or the retry backoff.
   */
  readonly queue: QueueTransport;
  /** The queue's id: records that could not be sent again count as its failed records (RecordFailures). */
  readonly queueId: QueueId;
  readonly telemetry?: Telemetry;
}

/**
 * One invocation's SQS batch, each record through `handle`; failed records are reported for SQS to redeliver.
 * When every record failed the invocation fails too (Powertools' FullBatchFailureError: Lambda counts an error,
 * which alarms), unless every failure was a deferral: a duplicate delivery waiting for another's order lease is
 * normal under at-least-once, and a batch of one such record must not page anybody; nor a newer writer's record
 * (a rolling deploy: one never taken pages from the dead-letter queue, review44-newer-writer-batch). With a
 * `deadline`, records processed one after another stop being started when the invocation's time runs short, and
 * go back to their queue as new messages: a timed-out invocation would send every record of its batch back, done
 * or not, after the visibility timeout, and count a receive against each.
 */
export async function processBatch(
  event: SQSEvent,
  handle: (record: SQSRecord) => Promise<void>,
  options: { readonly processInParallel?: boolean; readonly deadline?: BatchDeadline } = {},
): Promise<SQSBatchResponse> {
  const { deadline, ...processing } = options;
  let started = 0;
  /** The records sent again: every one from the first not started on, in one batch (or the send's failure). */
  let requeued: Promise<ReadonlySet<string>> | undefined;
  const guarded = deadline
    ? async (record: SQSRecord): Promise<void> => {
        // The first record always starts: a reserve as long as the timeout must not stall the queue.
        if (requeued === undefined && (started === 0 || deadline.remainingMs() >= deadline.reserveMs)) {
          started += 1;
          return handle(record);
        }
        // Done with, as far as SQS knows: sent again, all at once (a failed send fails them: they come back).
        requeued ??= requeue(event.Records.slice(event.Records.indexOf(record)), deadline.queue);
        if (!(await requeued).has(record.messageId))
          throw new Error(`batch/not-requeued: ${record.messageId}`);
      }
    : handle;
  // One processor per invocation: a shared one mixes the records and failures of concurrent invocations (the
  // local runner runs several in one process).
  const processor = new BatchProcessor(EventType.SQS);
  const response = await processPartialResponse(event, guarded, processor, {
    ...processing,
    throwOnFullBatchFailure: false,
  });
  const errors = processor.errors;
  const allFailed = event.Records.length > 0 && response.batchItemFailures.length === event.Records.length;
  if (allFailed && errors.some((e) => !expectedFailure(e))) {
    throw new FullBatchFailureError(errors);
  }
  if (deadline && requeued) {
    try {
      const sent = await requeued;
      log.warn('records not started: the invocation ran short of time; they were sent again', {
        requeued: sent.size,
      });
    } catch (error) {
      // They come back after the visibility timeout, a receive counted against each: failed records, alarmed
      // as any (an audit in session 36 found them silent: no line, no count).
      const notSent = event.Records.length - started;
      (deadline.telemetry ?? powertoolsTelemetry()).count(METRICS.RecordFailures.name, notSent, {
        Queue: deadline.queueId,
      });
      log.error('records not started could not be sent again; they come back after the visibility timeout', {
        records: notSent,
        error: error as Error,
      });
    }
  }
  return response;
}

/** A failure that is no fault: waiting for another delivery's lease, or for this function to run a newer version. */
const expectedFailure = (error: unknown): boolean =>
  error instanceof LiquidationBusyError || error instanceof NewerWriterError;

/** The records' bodies sent again as new messages, in one batch (10 at most: an SQS batch); their ids. */
async function requeue(records: readonly SQSRecord[], queue: QueueTransport): Promise<ReadonlySet<string>> {
  await queue.sendBatch(records.map((r) => r.body));
  return new Set(records.map((r) => r.messageId));
}
