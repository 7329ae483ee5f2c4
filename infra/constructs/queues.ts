import { Annotations, CfnResource, Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
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
import { CONTEXT_PREFIX, type InfraConfig, InfraConfigError, maxReceiveCount } from '../config.ts';

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
 * Then every queue's policy is held to SQS's quotas (checkPolicyQuotas), with or without the deny.
 */
export function setQueuePolicies(
  queues: Record<QueueId, QueuePair>,
  config: InfraConfig,
  roles: Record<FunctionId, IRole>,
  deadLetterRules: Partial<Record<QueueId, readonly IRule[]>>,
): void {
  if (config.queueSendersOnly) denyOtherSenders(queues, config, roles, deadLetterRules);
  // queueSenderPrincipals are in the work queues' deny alone, the same bytes in each: the longest policy checked
  // first is the one they have least room in.
  const checked = QUEUES.flatMap((def) => {
    const { queue, deadLetter } = queues[def.id];
    const listed = config.queueSendersOnly && !isDeadLetterSink(def) ? config.queueSenderPrincipals : [];
    return [{ queue, listed }, ...(deadLetter ? [{ queue: deadLetter, listed: [] }] : [])].map((c) => {
      const measure = measureQueuePolicy(c.queue);
      return {
        ...c,
        bytes: measure?.bytes ?? 0,
        ownValues: (measure?.conditionValues ?? 0) - c.listed.length,
      };
    });
  });
  // Likewise each warning's room for them is the least of the queues they are in (final50a-condition-room).
  const valueRoom = Math.min(
    ...checked.filter((c) => c.listed.length > 0).map((c) => QUEUE_POLICY_QUOTAS.conditions - c.ownValues),
  );
  for (const { queue, listed } of checked.sort((a, b) => b.bytes - a.bytes))
    checkPolicyQuotas(queue, listed, valueRoom);
}

function denyOtherSenders(
  queues: Record<QueueId, QueuePair>,
  config: InfraConfig,
  roles: Record<FunctionId, IRole>,
  deadLetterRules: Partial<Record<QueueId, readonly IRule[]>>,
): void {
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

/**
 * SQS's quotas on a queue's policy, all it documents (SQS developer guide, "Amazon SQS policy quotas": bytes 8,192,
 * conditions 10, principals 50, statements 20, actions per statement 7). The page says no more of what it counts.
 */
export const QUEUE_POLICY_QUOTAS = {
  bytes: 8192,
  statements: 20,
  principals: 50,
  conditions: 10,
  actionsPerStatement: 7,
} as const;

/**
 * The id of synth's warning that a queue's policy lists more condition values than SQS's 10 conditions
 * (security50-queue-policy-conditions); the warning ends `[ack: <id>]`.
 */
export const CONDITION_VALUES_WARNING = 'backstop:queuePolicyConditionValues';

/**
 * The longest each reference of a queue's policy can resolve to (security49b-queue-policy-size): the names are
 * CloudFormation's (a queue's at most 80 characters, a role's 64, with no path: the stack names none, nor a rule's, 64
 * on a bus of at most 256), in the longest partition (aws-us-gov) and a region name longer than any (20 characters),
 * so that a policy that fits here fits wherever the stack is deployed.
 */
const ACCOUNT = '123456789012';
const PARTITION = 'aws-us-gov';
const REGION = 'r'.repeat(20);
export const LONGEST_ARN: Readonly<Record<string, string>> = {
  'AWS::SQS::Queue': `arn:${PARTITION}:sqs:${REGION}:${ACCOUNT}:${'q'.repeat(80)}`,
  'AWS::IAM::Role': `arn:${PARTITION}:iam::${ACCOUNT}:role/${'r'.repeat(64)}`,
  'AWS::Events::Rule': `arn:${PARTITION}:events:${REGION}:${ACCOUNT}:rule/${'b'.repeat(256)}/${'e'.repeat(64)}`,
};

/** What SQS's quotas count of a queue's policy, at its longest once deployed (LONGEST_ARN for each reference). */
export interface PolicyMeasure {
  readonly bytes: number;
  readonly statements: number;
  readonly principals: number;
  /**
   * Each key under each operator (`ArnNotEquals: { aws:PrincipalArn: [a, b] }` is one): SQS's page does not say what
   * a condition is, and keys are never fewer than operators, so synth refuses past 10 of these.
   */
  readonly conditions: number;
  /**
   * Each value of each key (that one is two): a third reading of SQS's conditions, which public policies contradict
   * (several aws:SourceArn values under one key are common), so synth only warns past 10.
   */
  readonly conditionValues: number;
  readonly actionsPerStatement: number;
}

interface PolicyStatementJson {
  readonly Principal?: unknown;
  readonly Action?: unknown;
  readonly Condition?: Record<string, Record<string, unknown>>;
}

const countOf = (v: unknown): number => (Array.isArray(v) ? v.length : v === undefined ? 0 : 1);

export function measureQueuePolicy(queue: Queue): PolicyMeasure | undefined {
  const policy = queue.node.tryFindChild('Policy') as QueuePolicy | undefined;
  if (!policy) return undefined;
  const stack = Stack.of(queue);
  const types = new Map<string, string>();
  for (const c of stack.node.findAll())
    if (c instanceof CfnResource) types.set(stack.resolve(c.logicalId) as string, c.cfnResourceType);
  const longest = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(longest);
    if (v === null || typeof v !== 'object') return v;
    const getAtt = (v as { 'Fn::GetAtt'?: [string, string] })['Fn::GetAtt'];
    if (getAtt) {
      const arn = getAtt[1] === 'Arn' ? LONGEST_ARN[types.get(getAtt[0]) ?? ''] : undefined;
      if (arn === undefined) throw new Error(`queues: no bound on ${JSON.stringify(v)} in a queue's policy`);
      return arn;
    }
    if (Object.keys(v).some((k) => k.startsWith('Fn::') || k === 'Ref'))
      throw new Error(`queues: no bound on ${JSON.stringify(v)} in a queue's policy`);
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, longest(x)]));
  };
  const document = longest(stack.resolve(policy.document.toJSON())) as { Statement: PolicyStatementJson[] };
  const statements = document.Statement;
  return {
    // CloudFormation hands SQS the document as compact JSON.
    bytes: Buffer.byteLength(JSON.stringify(document), 'utf8'),
    statements: statements.length,
    principals: statements.reduce(
      (n, st) =>
        n +
        (typeof st.Principal === 'object' && st.Principal !== null
          ? Object.values(st.Principal).reduce((m: number, v) => m + countOf(v), 0)
          : countOf(st.Principal)),
      0,
    ),
    conditions: statements.reduce(
      (n, st) => n + Object.values(st.Condition ?? {}).reduce((m, keys) => m + Object.keys(keys).length, 0),
      0,
    ),
    conditionValues: statements.reduce(
      (n, st) =>
        n +
        Object.values(st.Condition ?? {}).reduce(
          (m, keys) => m + Object.values(keys).reduce((k: number, values) => k + countOf(values), 0),
          0,
        ),
      0,
    ),
    actionsPerStatement: Math.max(0, ...statements.map((st) => countOf(st.Action))),
  };
}

/** What each quota counts, in words, for the refusal. */
const QUOTA_WORDS: Readonly<Record<keyof typeof QUEUE_POLICY_QUOTAS, string>> = {
  bytes: 'bytes',
  statements: 'statements',
  principals: 'principals',
  conditions: 'conditions (each key under each operator counted: SQS does not say what it counts)',
  actionsPerStatement: 'actions in a statement',
};

/**
 * Refuses at synth a queue policy SQS would refuse at deploy (OverLimit: a failed deploy, rolled back), by its
 * longest once deployed, against every quota SQS documents (security49b-queue-policy-size): its conditions counted
 * as keys under operators. What grows with the configuration is queueSenderPrincipals: each adds its ARN (bytes) and
 * one value to the deny's condition in both work queues' policies; the rest is the stack's. Counted as values,
 * SQS's 10 conditions would take 4 principals, but that reading is not SQS's word and public policies list more
 * values: past 10, a warning, not a refusal (security50-queue-policy-conditions).
 */
export function checkPolicyQuotas(
  queue: Queue,
  listed: readonly string[],
  /** How many the warning says fit: by default this policy's room, else the least of the policies they are in. */
  valueRoom?: number,
): void {
  const measure = measureQueuePolicy(queue);
  if (!measure) return;
  const id = queue.node.id;
  const over = (Object.keys(QUEUE_POLICY_QUOTAS) as (keyof typeof QUEUE_POLICY_QUOTAS)[]).filter(
    (quota) => measure[quota] > QUEUE_POLICY_QUOTAS[quota],
  );
  // Each listed principal is its ARN quoted, after a comma, in the deny's condition: the rest is the stack's own.
  const listedBytes = listed.reduce((n, p) => n + Buffer.byteLength(p, 'utf8') + 3, 0);
  if (over.length > 0) {
    const quotas = over
      .map(
        (q) =>
          `${measure[q].toLocaleString('en-US')} ${QUOTA_WORDS[q]}, over SQS's ${QUEUE_POLICY_QUOTAS[q].toLocaleString('en-US')}`,
      )
      .join(', and ');
    const where = `the policy of ${id} would have ${quotas} ("Amazon SQS policy quotas"): the deploy would fail`;
    if (listed.length === 0 || over.some((q) => q !== 'bytes'))
      throw new Error(`queues: ${where}; the stack's own statements must shrink`);
    const room = QUEUE_POLICY_QUOTAS.bytes - (measure.bytes - listedBytes);
    throw new InfraConfigError(
      `invalid CDK context: ${CONTEXT_PREFIX}queueSenderPrincipals: with the ${listed.length} principals listed (${listed.reduce((n, p) => n + p.length, 0).toLocaleString('en-US')} characters of ARNs, each in both work queues' policies), ${where}; they have room for ${room.toLocaleString('en-US')} bytes, each taking its ARN's length and 3: list fewer or shorter (one operator role that the operators assume)`,
    );
  }
  if (measure.conditionValues > QUEUE_POLICY_QUOTAS.conditions) {
    const room = Math.min(
      valueRoom ?? Number.POSITIVE_INFINITY,
      QUEUE_POLICY_QUOTAS.conditions - (measure.conditionValues - listed.length),
    );
    Annotations.of(queue).addWarningV2(
      CONDITION_VALUES_WARNING,
      `queues: the policy of ${id} lists ${measure.conditionValues} condition values (each of the ${listed.length} ${CONTEXT_PREFIX}queueSenderPrincipals is one, in both work queues' deny), over SQS's ${QUEUE_POLICY_QUOTAS.conditions} conditions if each value counts as one: "Amazon SQS policy quotas" does not say what it counts (synth counts ${measure.conditions}, a key under an operator each), so AWS may refuse the deploy with OverLimit (rolled back). If it does, list at most ${Math.max(room, 0)} (one operator role that the operators assume), or deploy with ${CONTEXT_PREFIX}queueSendersOnly=false`,
    );
  }
}
