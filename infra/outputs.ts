import { createHash } from 'node:crypto';
import type { RiskConfig } from '../shared/domain/config.ts';
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

/**
 * A risk configuration as the functions read it (markets are found by symbol: their order means nothing), hashed:
 * the operator commands, which cannot read the functions' RISK_CONFIG, check their --config against the stack's.
 * Markets sorted by code unit, not localeCompare: that follows the process's locale (LANG), and synth and an
 * operator's shell need not share one (Danish sorts AAVE-USD after ZEC-USD: the right file was refused).
 */
export const riskConfigDigest = (config: RiskConfig): string =>
  createHash('sha256')
    .update(
      JSON.stringify(
        { ...config, markets: [...config.markets].sort((a, b) => (a.symbol < b.symbol ? -1 : 1)) },
        (_, value) => (typeof value === 'bigint' ? value.toString() : value),
      ),
    )
    .digest('hex');

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
