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
