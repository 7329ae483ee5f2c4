import { createHash, randomUUID } from 'node:crypto';
import type {
  Context,
  EventBridgeEvent,
  ScheduledEvent,
  SQSBatchResponse,
  SQSEvent,
  SQSRecord,
} from 'aws-lambda';
import type { ReceivedMessage } from '../ports/index.ts';

/** Builders for the events and context Lambda hands a function, so local handlers see the same shapes. */

export interface LambdaIdentity {
  readonly region: string;
  readonly accountId: string;
}

export class BadEventError extends Error {
  override readonly name = 'BadEventError';
}

export function sqsRecord(
  message: ReceivedMessage,
  eventSourceARN: string,
  identity: LambdaIdentity,
  receivedAtMs: number,
): SQSRecord {
  return {
    messageId: message.messageId,
    receiptHandle: message.receiptHandle,
    body: message.body,
    attributes: {
      ApproximateReceiveCount: String(message.receiveCount),
      SentTimestamp: String(message.sentAtMs),
      SenderId: 'local-runner',
      ApproximateFirstReceiveTimestamp: String(receivedAtMs),
    },
    messageAttributes: {},
    md5OfBody: createHash('md5').update(message.body, 'utf8').digest('hex'),
    eventSource: 'aws:sqs',
    eventSourceARN,
    awsRegion: identity.region,
  };
}

export const sqsEvent = (records: SQSRecord[]): SQSEvent => ({ Records: records });

/**
 * The message ids a handler reported as failed. Lambda's rules: no response, or no/empty batchItemFailures,
 * means all succeeded; an identifier that is empty or not in the batch fails the whole batch.
 */
export function failedMessageIds(response: unknown, batch: readonly ReceivedMessage[]): Set<string> {
  const all = new Set(batch.map((m) => m.messageId));
  if (response === undefined || response === null) return new Set();
  if (typeof response !== 'object') return new Set();
  const failures = (response as Partial<SQSBatchResponse>).batchItemFailures;
  if (failures === undefined || failures === null) return new Set();
  if (!Array.isArray(failures)) return all;
  const failed = new Set<string>();
  for (const f of failures) {
    const id = (f as { itemIdentifier?: unknown } | null)?.itemIdentifier;
    if (typeof id !== 'string' || !all.has(id)) return all;
    failed.add(id);
  }
  return failed;
}

/** The EventBridge event in an SQS body (what a rule with an SQS target delivers), with envelope defaults. */
export function eventBridgeEventFromBody(
  body: string,
  identity: LambdaIdentity,
): EventBridgeEvent<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    throw new BadEventError('runner/bad-event: the tick message body is not JSON');
  }
  if (typeof parsed !== 'object' || parsed === null)
    throw new BadEventError('runner/bad-event: not an object');
  const e = parsed as Partial<EventBridgeEvent<string, unknown>>;
  if (typeof e['detail-type'] !== 'string' || typeof e.source !== 'string' || !('detail' in e)) {
    throw new BadEventError('runner/bad-event: missing detail-type, source or detail');
  }
  return {
    version: e.version ?? '0',
    id: e.id ?? randomUUID(),
    account: e.account ?? identity.accountId,
    time: e.time ?? new Date().toISOString(),
    region: e.region ?? identity.region,
    resources: e.resources ?? [],
    source: e.source,
    'detail-type': e['detail-type'],
    detail: e.detail,
  };
}

/** Why Lambda gave an asynchronous event up (its on-failure record's `requestContext.condition`). */
export type AsyncFailureCondition = 'RetriesExhausted' | 'EventAgeExceeded';

/**
 * The record Lambda sends an asynchronous invocation's on-failure destination: the event, why it was given up, and
 * the last invocation's error (absent when it was never invoked). `backstop dlq list` reads the error from it.
 */
export function asyncFailureRecord(args: {
  readonly functionArn: string;
  readonly condition: AsyncFailureCondition;
  readonly invokeCount: number;
  readonly requestPayload: unknown;
  readonly error?: unknown;
  readonly atMs: number;
}): Record<string, unknown> {
  const { error } = args;
  const failed = error instanceof Error ? error : error === undefined ? undefined : new Error(String(error));
  return {
    version: '1.0',
    timestamp: new Date(args.atMs).toISOString(),
    requestContext: {
      requestId: randomUUID(),
      functionArn: args.functionArn,
      condition: args.condition,
      approximateInvokeCount: args.invokeCount,
    },
    requestPayload: args.requestPayload,
    ...(failed
      ? {
          responseContext: { statusCode: 200, executedVersion: '$LATEST', functionError: 'Unhandled' },
          responsePayload: {
            errorType: failed.name,
            errorMessage: failed.message,
            trace: failed.stack?.split('\n') ?? [],
          },
        }
      : {}),
  };
}

export const scheduledEvent = (ruleArn: string, identity: LambdaIdentity, atMs: number): ScheduledEvent => ({
  version: '0',
  id: randomUUID(),
  account: identity.accountId,
  time: new Date(atMs).toISOString(),
  region: identity.region,
  resources: [ruleArn],
  source: 'aws.events',
  'detail-type': 'Scheduled Event',
  detail: {},
});

export function lambdaContext(
  functionName: string,
  memoryMb: number,
  timeoutMs: number,
  identity: LambdaIdentity,
): Context {
  const deadline = Date.now() + timeoutMs;
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${identity.region}:${identity.accountId}:function:${functionName}`,
    memoryLimitInMB: String(memoryMb),
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'local-runner',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => {},
    fail: () => {},
    succeed: () => {},
  };
}
