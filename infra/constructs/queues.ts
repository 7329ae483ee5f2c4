import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import { Queue, QueueEncryption, type QueuePolicy } from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import {
  DEAD_LETTER_RETENTION_SECONDS,
  isDeadLetterSink,
  QUEUES,
  type QueueId,
  visibilityTimeoutSeconds,
} from '../../shared/topology.ts';
import { type InfraConfig, maxReceiveCount } from '../config.ts';

export interface QueuePair {
  readonly queue: Queue;
  /** Where messages go after maxReceiveCount receives; absent for queues that are themselves dead letters. */
  readonly deadLetter?: Queue;
}

const DEAD_LETTER_RETENTION = Duration.seconds(DEAD_LETTER_RETENTION_SECONDS);
const WORK_QUEUE_RETENTION = Duration.days(4);
/**
 * Dead letters are failed liquidations, auction steps and ticks, with their reasons: kept when the stack is deleted,
 * as the money tables are (their names are generated, so a new stack does not collide with them).
 */
const DEAD_LETTER_REMOVAL = RemovalPolicy.RETAIN;

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
        ? new Queue(scope, `${def.id}DeadLetterQueue`, {
            ...common,
            retentionPeriod: DEAD_LETTER_RETENTION,
            removalPolicy: DEAD_LETTER_REMOVAL,
          })
        : undefined;
    const queue = new Queue(scope, `${def.id}Queue`, {
      ...common,
      visibilityTimeout: Duration.seconds(visibilityTimeoutSeconds(def.id)),
      retentionPeriod: isDeadLetterSink(def) ? DEAD_LETTER_RETENTION : WORK_QUEUE_RETENTION,
      ...(isDeadLetterSink(def) ? { removalPolicy: DEAD_LETTER_REMOVAL } : {}),
      ...(deadLetter && receives !== undefined
        ? { deadLetterQueue: { queue: deadLetter, maxReceiveCount: receives } }
        : {}),
    });
    if (deadLetter) acknowledgeDeadLetter(deadLetter, `the dead-letter queue of ${def.id}`);
    // A kept dead-letter queue keeps its TLS-only policy too.
    for (const kept of [deadLetter, isDeadLetterSink(def) ? queue : undefined])
      (kept?.node.tryFindChild('Policy') as QueuePolicy | undefined)?.applyRemovalPolicy(DEAD_LETTER_REMOVAL);
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
