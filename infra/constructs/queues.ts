import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import type { IRule } from 'aws-cdk-lib/aws-events';
import { AnyPrincipal, Effect, type IRole, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { Queue, QueueEncryption, type QueuePolicy, RedrivePermission } from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import {
  DEAD_LETTER_RETENTION_SECONDS,
  FUNCTIONS,
  type FunctionDef,
  type FunctionId,
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
      // With queueSendersOnly, no queue may name this one its dead-letter queue: SQS's move there by a redrive policy
      // needs no SendMessage, so any queue of this account could otherwise pass its messages in past the senders' deny
      // (review49-security-redrive-into). Nothing dead-letters into these by SQS: the sink is EventBridge's and
      // Lambda's, not a queue's.
      ...(config.queueSendersOnly
        ? { redriveAllowPolicy: { redrivePermission: RedrivePermission.DENY_ALL } }
        : {}),
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

/**
 * The functions that send to `id`: those granted it, and the tick rule's target for the rule's dead letters (Lambda
 * sends its on-failure record as the function's role).
 */
export const queueSenders = (id: QueueId): readonly FunctionDef[] =>
  FUNCTIONS.filter(
    (f) =>
      f.grants.some((g) => g.queue === id && g.access === 'send') ||
      (f.trigger.kind === 'tickRule' && f.trigger.deadLetters === id),
  );

/**
 * With queueSendersOnly (the default), denies sqs:SendMessage on each queue to every principal but its senders
 * (security49-queue-senders): a message is state its consumer trusts (a liquidation's plan, an auction's due time),
 * and any principal IAM allowed could forge one.
 * - a work queue: its senders' roles (queueSenders) and queueSenderPrincipals (operators: `dlq redrive`, `liquidations
 *   overdue --resend`, a console DLQ redrive, all of which send as their caller);
 * - a dead-letter sink: its senders' roles and the delivery of the rules that dead-letter into it (EventBridge's
 *   service principal has no aws:PrincipalArn: it is told by the rule's aws:SourceArn, which no caller can set);
 * - a dead-letter queue: no principal of IAM's. SQS moves a message there by the redrive policy, which needs no
 *   SendMessage; so may another queue's (createQueues closes that move into the others, not into these: naming their
 *   work queue there would be a circular reference).
 * A Deny, not an Allow: a principal of this account IAM allows needs no Allow of the queue's. Only SendMessage (and
 * SendMessageBatch, which it authorizes): the queue's policy itself stays changeable, so no one is locked out of it.
 */
export function setQueuePolicies(
  queues: Record<QueueId, QueuePair>,
  config: InfraConfig,
  roles: Record<FunctionId, IRole>,
  deadLetterRules: Partial<Record<QueueId, readonly IRule[]>>,
): void {
  if (!config.queueSendersOnly) return;
  const deny = (queue: Queue, conditions?: Record<string, Record<string, unknown>>) =>
    queue.addToResourcePolicy(
      new PolicyStatement({
        sid: 'DenyOtherSenders',
        effect: Effect.DENY,
        principals: [new AnyPrincipal()],
        actions: ['sqs:SendMessage'],
        resources: [queue.queueArn],
        ...(conditions ? { conditions } : {}),
      }),
    );
  for (const def of QUEUES) {
    const pair = queues[def.id];
    const senders = queueSenders(def.id).map((f) => roles[f.id].roleArn);
    const rules = deadLetterRules[def.id] ?? [];
    if (isDeadLetterSink(def)) {
      if (senders.length === 0 || rules.length === 0)
        throw new Error(`queues: ${def.id} is a dead-letter sink without a sending function or rule`);
      // A Deny's conditions all hold: not one of the roles, and not one of the rules' delivery (a key a request
      // lacks, as a service's lacks aws:PrincipalArn and a caller's aws:SourceArn, makes ArnNotEquals true).
      deny(pair.queue, {
        ArnNotEquals: { 'aws:PrincipalArn': senders, 'aws:SourceArn': rules.map((r) => r.ruleArn) },
      });
    } else {
      const allowed = [...senders, ...config.queueSenderPrincipals];
      if (allowed.length === 0) throw new Error(`queues: no function sends to ${def.id}`);
      deny(pair.queue, { ArnNotEquals: { 'aws:PrincipalArn': allowed } });
    }
    // Every IAM principal; not a service's request: SQS's own move by the redrive policy needs no SendMessage, and
    // should it ever be authorized as a service, a deny of it would strand every dead letter in its work queue (a
    // service principal needs an Allow of the queue's to send, which a dead-letter queue has none of).
    if (pair.deadLetter) deny(pair.deadLetter, { Bool: { 'aws:PrincipalIsAWSService': 'false' } });
  }
}
