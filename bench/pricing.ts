import type { Usage } from './capacity.ts';

/**
 * Published AWS list prices, us-east-1, USD (floats: estimates, not money that moves). The stack runs its
 * functions on arm64 and its tables on on-demand capacity; free tiers are left out (they do not scale).
 */
export const AWS_PRICES = {
  region: 'us-east-1',
  asOf: '2026-11',
  dynamodbWriteRequestUnitPerMillion: 0.625,
  dynamodbReadRequestUnitPerMillion: 0.125,
  sqsRequestPerMillion: 0.4,
  eventBridgeCustomEventPerMillion: 1.0,
  lambdaRequestPerMillion: 0.2,
  lambdaArmGbSecond: 0.0000133334,
} as const;

/** Work of one unit (a tick, a liquidation), as measured on the emulator. */
export interface UnitWork {
  /** The handlers' calls and DynamoDB units. */
  readonly usage: Usage;
  /** Lambda invocations (requests) and their GB-seconds (memory from the topology x measured duration). */
  readonly lambdaRequests: number;
  readonly lambdaGbSeconds: number;
  /** Custom events put on the bus (the feed's PutEvents of a tick). */
  readonly busEvents: number;
  /**
   * SQS requests made by Lambda's event source mapping, not by our code: one ReceiveMessage and one
   * DeleteMessageBatch per invocation triggered by a queue.
   */
  readonly pollerRequests: number;
}

export interface CostBreakdown {
  readonly dynamodb: number;
  readonly sqs: number;
  readonly eventBridge: number;
  readonly lambdaRequests: number;
  readonly lambdaDuration: number;
  readonly total: number;
}

/** USD for one unit of work. */
export function costOf(work: UnitWork): CostBreakdown {
  const p = AWS_PRICES;
  const m = 1e-6;
  const dynamodb =
    work.usage.writeUnits * p.dynamodbWriteRequestUnitPerMillion * m +
    work.usage.readUnits * p.dynamodbReadRequestUnitPerMillion * m;
  let sqsCalls = work.pollerRequests;
  for (const [op, n] of Object.entries(work.usage.calls)) if (op.startsWith('sqs.')) sqsCalls += n;
  const sqs = sqsCalls * p.sqsRequestPerMillion * m;
  const eventBridgeCalls = work.usage.calls['events.PutEvents'] ?? 0;
  const eventBridge = (work.busEvents + eventBridgeCalls) * p.eventBridgeCustomEventPerMillion * m;
  const lambdaRequests = work.lambdaRequests * p.lambdaRequestPerMillion * m;
  const lambdaDuration = work.lambdaGbSeconds * p.lambdaArmGbSecond;
  return {
    dynamodb,
    sqs,
    eventBridge,
    lambdaRequests,
    lambdaDuration,
    total: dynamodb + sqs + eventBridge + lambdaRequests + lambdaDuration,
  };
}

export const scaleCost = (c: CostBreakdown, factor: number): CostBreakdown => ({
  dynamodb: c.dynamodb * factor,
  sqs: c.sqs * factor,
  eventBridge: c.eventBridge * factor,
  lambdaRequests: c.lambdaRequests * factor,
  lambdaDuration: c.lambdaDuration * factor,
  total: c.total * factor,
});
