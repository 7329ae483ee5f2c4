import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import {
  failureOf,
  logFailure,
  noteFailure,
  processBatch,
  readMessage,
  scheduleRetry,
} from '../../shared/lambda/failures.ts';
import { lambdaHandler, log, processingRecord } from '../../shared/lambda/runtime.ts';
import { wiring } from '../../shared/lambda/wiring.ts';
import { type AuctionQueueMessage, isRegistrationWakeMessage } from '../../shared/ports/index.ts';
import { parseAuctionQueueMessage } from '../../shared/schemas/messages.ts';
import { processAuctionMessage } from '../../shared/services/auction.ts';

/**
 * One auction step per record (or a part of a registration's wake); failures are retried by SQS and end in the DLQ
 * (alarmed).
 */
async function recordHandler(record: SQSRecord): Promise<void> {
  const message = await readMessage(
    'auctionSteps',
    wiring().adapters.auctionQueue,
    record,
    parseAuctionQueueMessage,
  );
  const correlation = isRegistrationWakeMessage(message)
    ? `registration-wake:${message.registrationWake.symbol}:${message.registrationWake.epoch}`
    : message.auctionId;
  const keys = { correlation_id: correlation, receiveCount: record.attributes.ApproximateReceiveCount };
  await processingRecord(keys, () => processRecord(record, message));
}

async function processRecord(record: SQSRecord, message: AuctionQueueMessage): Promise<void> {
  try {
    const outcome = await processAuctionMessage(message, wiring().settlement);
    if (isRegistrationWakeMessage(message))
      log.info('registration wake continued', { ...message.registrationWake, ...outcome });
    else log.info('auction step processed', { step: message.step, ...outcome });
  } catch (error) {
    logFailure(error, 'auction step failed; it will be retried');
    const { adapters, maxReceives } = wiring();
    // Back when another delivery's order lease runs out, or after the queue's backoff (the last receive's at
    // once, to be dead-lettered): not after the whole visibility timeout.
    await scheduleRetry('auctionSteps', adapters.auctionQueue, record, error, maxReceives.auctionSteps);
    // On the auction too, so a dead-lettered step shows why (`backstop dlq list`); a wake has no auction.
    if (isRegistrationWakeMessage(message)) throw error;
    await noteFailure(
      'auction',
      message.auctionId,
      failureOf(error, record, adapters.clock.nowMs()),
      (id, f) => adapters.auctions.recordFailure(id, f),
    );
    throw error;
  }
}

/**
 * A step starts only while this much of the invocation remains: a few calls, each up to the SDK's 5 s request
 * timeout and its retries (shared/adapters/aws/clients.ts), with the function's 60 s timeout.
 */
const STEP_RESERVE_MS = 20_000;

/** Steps of one batch run one after another: auctions clear against the same providers, so in parallel
 * they would only contend for the same provider records. Steps stop being started as the time runs short. */
export const consume = (
  event: SQSEvent,
  context?: Pick<Context, 'getRemainingTimeInMillis'>,
): Promise<SQSBatchResponse> =>
  processBatch(event, recordHandler, {
    processInParallel: false,
    ...(context
      ? {
          deadline: {
            remainingMs: () => context.getRemainingTimeInMillis(),
            reserveMs: STEP_RESERVE_MS,
            queue: wiring().adapters.auctionQueue,
            queueId: 'auctionSteps',
          },
        }
      : {}),
  });

export const handler = lambdaHandler(consume);
