import type { FunctionId, QueueId, TableId } from '../shared/topology.ts';

/**
 * Stack name and CloudFormation output keys, derived from topology ids. Pure (no CDK import) so tools and
 * tests can read `describe-stacks` outputs by key without loading the CDK.
 */

export const stackName = (stage: string): string => `Backstop-${stage}`;

const pascal = (id: string): string => id.charAt(0).toUpperCase() + id.slice(1);

export const OUTPUT_KEYS = {
  stage: 'Stage',
  tickBusName: 'TickBusName',
  tickBusArn: 'TickBusArn',
  tickArchiveName: 'TickArchiveName',
  dashboardName: 'DashboardName',
  /** The topic every alarm notifies (the stack's own, or backstop:alarmTopicArn). */
  alarmTopicArn: 'AlarmTopicArn',
  /** riskConfigDigest of the risk configuration the functions run with (their RISK_CONFIG). */
  riskConfigDigest: 'RiskConfigDigest',
  /** The admin function's invocation trail and its bucket (backstop:adminTrail; absent when it is off). */
  adminTrailName: 'AdminTrailName',
  adminTrailBucketName: 'AdminTrailBucketName',
} as const;

/** The stack's RiskConfigDigest: in shared/, since a claim records it too (domain/claimed-facts.ts). */
export { riskConfigDigest } from '../shared/config-digest.ts';

/** `positions` -> `TablePositions` (the table name). */
export const tableNameKey = (id: TableId): string => `Table${pascal(id)}`;
export const tableArnKey = (id: TableId): string => `Table${pascal(id)}Arn`;
/** `auctionSteps` -> `QueueAuctionStepsUrl`. */
export const queueUrlKey = (id: QueueId): string => `Queue${pascal(id)}Url`;
export const queueArnKey = (id: QueueId): string => `Queue${pascal(id)}Arn`;
/** The dead-letter queue of a queue that has one: `QueueLiquidationsDlqUrl`. */
export const deadLetterQueueUrlKey = (id: QueueId): string => `Queue${pascal(id)}DlqUrl`;
export const deadLetterQueueArnKey = (id: QueueId): string => `Queue${pascal(id)}DlqArn`;
/** `marginCheck` -> `FunctionMarginCheckName`. */
export const functionNameKey = (id: FunctionId): string => `Function${pascal(id)}Name`;
export const functionArnKey = (id: FunctionId): string => `Function${pascal(id)}Arn`;
