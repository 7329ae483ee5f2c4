import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import { FUNCTIONS, type FunctionDef, QUEUES, type QueueDef, type QueueId } from '../../shared/topology.ts';
import { type InfraConfig, maxReceiveCount } from '../config.ts';

export interface QueuePair {
  readonly queue: Queue;
  /** Where messages go after maxReceiveCount receives; absent for queues that are themselves dead letters. */
  readonly deadLetter?: Queue;
}

/** The function a queue triggers, if any. */
export const consumerOf = (queue: QueueId): FunctionDef | undefined =>
  FUNCTIONS.find((f) => f.trigger.kind === 'queue' && f.trigger.queue === queue);

/**
 * Visibility timeout = 6 x the consumer's timeout + its batching window (the AWS guidance for Lambda
 * event sources): a batch that is retried by the poller must not become visible again while the first
 * invocation can still be running.
 */
export const visibilityTimeoutSeconds = (queue: QueueId): number => {
  const consumer = consumerOf(queue);
  if (consumer?.trigger.kind !== 'queue') return 30;
  return 6 * consumer.timeoutSeconds + consumer.trigger.batchWindowSeconds;
};

/**
 * A queue with neither a dead-letter queue nor a consumer is itself a dead-letter sink (tickDeadLetters).
 * Derived here because the topology does not say so; see the report.
 */
export const isDeadLetterSink = (def: QueueDef): boolean => !def.deadLetter && !consumerOf(def.id);

/** Dead letters are kept the SQS maximum so an operator has two weeks to redrive them. */
export const DEAD_LETTER_RETENTION = Duration.days(14);
const WORK_QUEUE_RETENTION = Duration.days(4);

const common = {
  // SQS-managed SSE: EventBridge can deliver to it (the AWS managed aws/sqs KMS key cannot be used by
  // EventBridge, and a customer key would need its key policy kept in step), and it costs nothing.
  encryption: QueueEncryption.SQS_MANAGED,
  enforceSSL: true,
  removalPolicy: RemovalPolicy.DESTROY,
} as const;

function acknowledgeDeadLetter(queue: Queue, role: string): void {
  Validations.of(queue).acknowledge({
    id: 'Serverless-SQSRedrivePolicy',
    reason: `This is ${role}: a dead-letter queue has no consumer to fail, so nothing to redrive from it automatically; the DLQ alarm and an operator redrive handle its messages.`,
  });
}

export function createQueues(scope: Construct, config: InfraConfig): Record<QueueId, QueuePair> {
  const pairs = {} as Record<QueueId, QueuePair>;
  for (const def of QUEUES) {
    const receives = maxReceiveCount(config, def.id);
    const deadLetter =
      receives !== undefined
        ? new Queue(scope, `${def.id}DeadLetterQueue`, { ...common, retentionPeriod: DEAD_LETTER_RETENTION })
        : undefined;
    const queue = new Queue(scope, `${def.id}Queue`, {
      ...common,
      visibilityTimeout: Duration.seconds(visibilityTimeoutSeconds(def.id)),
      retentionPeriod: isDeadLetterSink(def) ? DEAD_LETTER_RETENTION : WORK_QUEUE_RETENTION,
      ...(deadLetter && receives !== undefined
        ? { deadLetterQueue: { queue: deadLetter, maxReceiveCount: receives } }
        : {}),
    });
    if (deadLetter) acknowledgeDeadLetter(deadLetter, `the dead-letter queue of ${def.id}`);
    if (isDeadLetterSink(def)) {
      acknowledgeDeadLetter(queue, 'the dead-letter queue of the PriceTick rule target and margin-check');
      Validations.of(queue).acknowledge({
        id: 'AwsSolutions-SQS3',
        reason:
          'It is a dead-letter queue: the EventBridge rule target and the async on-failure destination of margin-check point at it (not a queue redrive policy, which is all this rule recognizes).',
      });
    }
    pairs[def.id] = deadLetter ? { queue, deadLetter } : { queue };
  }
  return pairs;
}
