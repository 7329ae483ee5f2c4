import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
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
import type { LiquidationMessage } from '../../shared/ports/index.ts';
import { parseLiquidationMessage } from '../../shared/schemas/messages.ts';
import { processLiquidation } from '../../shared/services/liquidation.ts';

/**
 * One liquidation per record. A record that throws is reported as a batch item failure: SQS redelivers it after
 * the queue's backoff (scheduleRetry) and, after maxReceiveCount receives, moves it to the DLQ (which alarms). The liquidation
 * id is the correlation id of every log line written while the record is processed.
 */
async function recordHandler(record: SQSRecord): Promise<void> {
  const message = await readMessage(
    'liquidations',
    wiring().adapters.liquidationQueue,
    record,
    parseLiquidationMessage,
  );
  const { liquidationId } = message;
  const keys = { correlation_id: liquidationId, receiveCount: record.attributes.ApproximateReceiveCount };
  await processingRecord(keys, () => processRecord(record, message));
}

async function processRecord(record: SQSRecord, message: LiquidationMessage): Promise<void> {
  const { liquidationId } = message;
  try {
    const outcome = await processLiquidation(message, wiring().settlement);
    log.info('liquidation processed', { state: outcome.state });
  } catch (error) {
    logFailure(error, 'liquidation failed; it will be retried');
    const { adapters, maxReceives } = wiring();
    // Back when another delivery's order lease runs out, or after the queue's backoff (the last receive's at
    // once, to be dead-lettered): not after the whole visibility timeout.
    await scheduleRetry('liquidations', adapters.liquidationQueue, record, error, maxReceives.liquidations);
    // On the record too, so a dead-lettered message shows why (`backstop dlq list`).
    await noteFailure(
      'liquidation',
      liquidationId,
      failureOf(error, record, adapters.clock.nowMs()),
      (id, f) => adapters.liquidations.recordFailure(id, f),
    );
    throw error;
  }
}

export const consume = (event: SQSEvent): Promise<SQSBatchResponse> => processBatch(event, recordHandler);

export const handler = lambdaHandler(consume);
