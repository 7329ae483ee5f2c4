import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { App, type Environment, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import type { Rule } from 'aws-cdk-lib/aws-events';
import { AnyPrincipal, Effect, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { Alias, Version } from 'aws-cdk-lib/aws-lambda';
import { Queue, type QueuePolicy } from 'aws-cdk-lib/aws-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InfraConfigError, loadConfig } from '../../infra/config.ts';
import {
  denyOtherInvokers,
  deployedEnvironmentBytes,
  functionEnvironment,
  INVOKERS_POLICY_ID,
  ownEnvironment,
  TICK_RULE_ID,
} from '../../infra/constructs/functions.ts';
import {
  alarmName,
  WORK_QUEUE_AGE_SECONDS,
  WORK_QUEUE_STALL_MINUTES,
} from '../../infra/constructs/monitoring.ts';
import {
  CONDITION_VALUES_WARNING,
  checkPolicyQuotas,
  LONGEST_ARN,
  measureQueuePolicy,
  type PolicyMeasure,
  QUEUE_POLICY_QUOTAS,
} from '../../infra/constructs/queues.ts';
import { addNagChecks } from '../../infra/nag.ts';
import {
  deadLetterQueueUrlKey,
  functionNameKey,
  OUTPUT_KEYS,
  queueArnKey,
  queueUrlKey,
  riskConfigDigest,
  tableNameKey,
} from '../../infra/outputs.ts';
import type { BackstopStack } from '../../infra/stack.ts';
import { DynamoAuctionRepository } from '../../shared/adapters/aws/auctions.ts';
import { SQS_MAX_DELAY_SECONDS } from '../../shared/adapters/aws/sqs-queue.ts';
import { KEYLESS_VENUES, readsVenueKey } from '../../shared/adapters/venue/index.ts';
import {
  DEFAULT_RISK_CONFIG,
  DEFAULT_RISK_CONFIG_INPUT,
  parseRiskConfig,
  type RiskConfigInput,
} from '../../shared/domain/config.ts';
import { retryBackoffSeconds } from '../../shared/lambda/failures.ts';
import { riskConfigFromEnv } from '../../shared/lambda/runtime.ts';
import { PEEK_VISIBILITY_SECONDS } from '../../shared/local/dlq.ts';
import {
  applyFunctionEnvironment,
  functionEnvironment as localFunctionEnvironment,
} from '../../shared/local/stack.ts';
import { LIQUIDATION_LAYERS, METRICS } from '../../shared/metrics.ts';
import { VENUE_ERROR_KINDS } from '../../shared/ports/index.ts';
import { ORDER_LEASE_MS } from '../../shared/services/context.ts';
import { LAST_RESORT_WAITS } from '../../shared/services/liquidation.ts';
import {
  AUCTION_WAKE_INDEX,
  asyncRetriesWithin,
  chainsThroughItsOwnQueue,
  consumerOf,
  deadLetteredQueues,
  deadLetterQueueEnv,
  FUNCTIONS,
  type FunctionId,
  isDeadLetterSink,
  JOURNAL_SEQUENCE_INDEX,
  localVenueSecretName,
  MAX_POSITIONS_ENV,
  maxReceivesEnv,
  OPEN_LIQUIDATIONS_INDEX,
  optionalEnvNames,
  POSITION_ADL_INDEXES,
  POSITION_INDEX,
  POSITION_INDEX_SHARDS_ENV,
  physicalName,
  QUEUES,
  type QueueId,
  queueEnv,
  RISK_CONFIG_BUNDLED,
  RISK_CONFIG_ENV,
  readsDeadLetters,
  TABLES,
  type TableDef,
  type TableId,
  TICK_BUS,
  TICK_BUS_ENV,
  tableEnv,
  VENUE_KEY_ENV,
  VENUE_TRADERS,
  visibilityTimeoutSeconds,
} from '../../shared/topology.ts';
import { emfDimensionSets } from '../support/emit-sites.ts';
import { outsideGrant } from '../support/grants.ts';
import {
  buildStack,
  KEYED_PROJECT,
  KEYLESS_PROJECT,
  PROJECTS,
  type Project,
  projectRoot,
  removeSynthDirs,
  synthDir,
  THIS_PROJECT,
} from '../support/infra-project.ts';
import {
  type AlarmRule,
  alarms as alarmsOn,
  evaluate,
  evaluations,
  READINGS,
  type Report,
  readingName,
} from '../support/metric-math.ts';
import { requestAttributes } from '../support/request-attributes.ts';
import { fakeResourceNames } from '../support/resource-names.ts';

// Template tests skip the built-in CloudFormation validator and bundling; one test below runs cdk-nag.
process.env.CDK_VALIDATION = 'false';

/**
 * `project`'s stack (test/support/infra-project.ts) with `ours` over its context, in a region when `env` says one.
 * An integrator's project (a venue that reads a key, its secret in cdk.json: docs/VENUE.md, step 5) builds as this
 * one does; the venue's key paths run on both kinds of project below (PROJECTS).
 */
function buildIn(project: Project, ours: Record<string, unknown> = {}, env?: Environment) {
  const outdir = synthDir('backstop-cdk-');
  return buildStack(project, ours, { outdir, ...(env ? { env } : {}) });
}

/** This project's stack, as `cdk synth` builds it (cdk.json's context, VENUE), with `ours` over its context. */
function build(ours: Record<string, unknown> = {}, nag = false) {
  const built = buildIn(THIS_PROJECT, ours);
  if (nag) addNagChecks(built.app);
  return built;
}

// Every synth's directory, the quota tests' own stacks' too.
afterAll(removeSynthDirs);

/**
 * The requests liquidation-watch's claim sends (aws/auctions.ts `claimStepResend`): a claim that holds, one refused,
 * and its give-back (`giveBackStepResend`), as they leave the adapter (a client that answers them itself: no DynamoDB).
 */
async function claimRequests(): Promise<{ command: string; input: Record<string, unknown> }[]> {
  const sent: { command: string; input: Record<string, unknown> }[] = [];
  const refused: boolean[] = [false, true, false];
  const dynamo = new DynamoDBClient({
    region: 'eu-west-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  });
  dynamo.middlewareStack.add(
    (_next, context) => async (args) => {
      sent.push({
        command: (context.commandName ?? '').replace(/Command$/, ''),
        input: args.input as Record<string, unknown>,
      });
      if (refused[sent.length - 1])
        throw Object.assign(new Error('The conditional request failed'), {
          name: 'ConditionalCheckFailedException',
        });
      return { output: {} as never, response: {} };
    },
    { step: 'initialize', name: 'answerClaims' },
  );
  const auctions = new DynamoAuctionRepository(dynamo, 'auctions');
  const claimer = await auctions.claimStepResend('pos-1:1:auction', 3, 1_000, 0);
  expect(claimer).toEqual(expect.any(String));
  expect(await auctions.claimStepResend('pos-1:1:auction', 3, 2_000, 999)).toBeUndefined();
  expect(await auctions.giveBackStepResend('pos-1:1:auction', claimer!)).toBe(true);
  dynamo.destroy();
  return sent;
}

type Resource = { Type: string; Properties: Record<string, unknown>; DeletionPolicy?: string };
type Statement = {
  Effect: string;
  Action: string | string[];
  Resource: unknown;
  Principal?: unknown;
  Condition?: unknown;
};

const asList = <T>(v: T | T[]): T[] => (Array.isArray(v) ? v : [v]);
const watchDef = FUNCTIONS.find((f) => f.id === 'liquidationWatch')!;
/** A query of a metric-math alarm. */
type DlqQuery = {
  Id: string;
  Expression?: string;
  ReturnData?: boolean;
  MetricStat?: {
    Metric: { Namespace: string; MetricName: string; Dimensions?: { Name: string; Value: unknown }[] };
    Period: number;
    Stat: string;
  };
};
const logicalIdOf = (stack: Stack, construct: { node: { defaultChild?: unknown } }) =>
  stack.getLogicalId(construct.node.defaultChild as never);
/** The queue's resource policy (its TLS-only statement). */
const policyOf = (queue: Queue) => queue.node.findChild('Policy') as QueuePolicy;

/** The logical ids a template value refers to: Ref, Fn::GetAtt and ${X} in Fn::Sub (pseudo parameters left out). */
function referencesOf(value: unknown, into = new Set<string>()): Set<string> {
  if (Array.isArray(value)) for (const v of value) referencesOf(v, into);
  else if (value && typeof value === 'object') {
    for (const [key, v] of Object.entries(value)) {
      if (key === 'Ref' && typeof v === 'string' && !v.startsWith('AWS::')) into.add(v);
      else if (key === 'Fn::GetAtt') into.add(Array.isArray(v) ? String(v[0]) : String(v).split('.')[0]!);
      else if (key === 'Fn::Sub') {
        const text = Array.isArray(v) ? v[0] : v;
        for (const m of String(text).matchAll(/\$\{([A-Za-z0-9]+)[.}]/g)) into.add(m[1]!);
        if (Array.isArray(v)) referencesOf(v[1], into);
      } else referencesOf(v, into);
    }
  }
  return into;
}

/** A cycle of the template's dependencies (references and DependsOn), as CloudFormation would refuse it; [] if none. */
function dependencyCycle(resources: Record<string, Resource & { DependsOn?: string | string[] }>): string[] {
  const edges = new Map(
    Object.entries(resources).map(([id, r]) => [
      id,
      [...referencesOf(r.Properties), ...asList(r.DependsOn ?? [])].filter((d) => d in resources),
    ]),
  );
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const visit = (id: string): string[] => {
    if (state.get(id) === 'done') return [];
    if (state.get(id) === 'open') return [...path.slice(path.indexOf(id)), id];
    state.set(id, 'open');
    path.push(id);
    for (const next of edges.get(id) ?? []) {
      const cycle = visit(next);
      if (cycle.length > 0) return cycle;
    }
    path.pop();
    state.set(id, 'done');
    return [];
  };
  for (const id of edges.keys()) {
    const cycle = visit(id);
    if (cycle.length > 0) return cycle;
  }
  return [];
}

/**
 * The dimension sets each business metric is filed under by the functions' telemetry (Powertools' EMF), for a data
 * point with every dimension its spec names and its market.
 */
function emittedDimensionSets(): Map<string, string[][]> {
  return emfDimensionSets(
    Object.values(METRICS).map((spec) => ({
      name: spec.name,
      dimensions: { ...('dimension' in spec ? { [spec.dimension]: 'ETH-USD' } : {}), Market: 'ETH-USD' },
    })),
  );
}

describe('BackstopStack template (default config)', () => {
  let stack: BackstopStack;
  let template: Template;
  let resources: Record<string, Resource>;
  const tableId = (id: TableId) => logicalIdOf(stack, stack.tables[id]);
  const queueId = (q: Queue) => logicalIdOf(stack, q);
  const roleIdOf = (fn: FunctionId) => {
    const props = resources[logicalIdOf(stack, stack.functions[fn])]!.Properties;
    return (props.Role as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
  };
  /** The alarms on what the queue keeping `id`'s dead letters holds, depth then aging, and any other on its count. */
  const deadLetterAlarmsOf = (id: QueueId): Record<string, unknown>[] => {
    const keeper = queueId(stack.queues[id].deadLetter ?? stack.queues[id].queue);
    const name =
      id === 'tickDeadLetters' ? 'TickDeadLetters' : `${id.charAt(0).toUpperCase()}${id.slice(1)}Dlq`;
    const all = Object.values(template.findResources('AWS::CloudWatch::Alarm')).map(
      (a) => a.Properties as Record<string, unknown>,
    );
    const named = (suffix: string) => all.find((a) => a.AlarmName === `Backstop-dev-${name}${suffix}`)!;
    const onCount = all.filter((a) =>
      [...((a.Metrics ?? []) as DlqQuery[]).map((m) => m.MetricStat?.Metric), a].some(
        (m) =>
          (m as { MetricName?: string } | undefined)?.MetricName === 'ApproximateNumberOfMessagesVisible' &&
          JSON.stringify((m as { Dimensions?: unknown }).Dimensions).includes(`"${keeper}"`),
      ),
    );
    const depth = named('Alarm');
    const aging = named('AgingAlarm');
    return [depth, aging, ...onCount.filter((a) => a !== depth && a !== aging)];
  };
  const statementsOfRole = (roleId: string): Statement[] =>
    Object.values(resources)
      .filter(
        (r) =>
          r.Type === 'AWS::IAM::Policy' &&
          (r.Properties.Roles as Array<{ Ref: string }>).some((ref) => ref.Ref === roleId),
      )
      .flatMap((r) => (r.Properties.PolicyDocument as { Statement: Statement[] }).Statement);

  beforeAll(() => {
    ({ stack } = build());
    template = Template.fromStack(stack);
    resources = template.toJSON().Resources;
  });

  it('creates one Table (not a GlobalTable) per topology table, on demand, KMS-encrypted, with PITR', () => {
    template.resourceCountIs('AWS::DynamoDB::Table', TABLES.length);
    template.resourceCountIs('AWS::DynamoDB::GlobalTable', 0);
    for (const def of TABLES) {
      const t = resources[tableId(def.id)]!;
      expect(t.Properties).toMatchObject({
        BillingMode: 'PAY_PER_REQUEST',
        SSESpecification: { SSEEnabled: true },
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        KeySchema: [
          { AttributeName: def.partitionKey.name, KeyType: 'HASH' },
          ...(def.sortKey ? [{ AttributeName: def.sortKey.name, KeyType: 'RANGE' }] : []),
        ],
      });
    }
  });

  it('retains and deletion-protects the tables that hold money, and only those', () => {
    expect(TABLES.find((t) => t.id === 'ledger')?.retain).toBe(true);
    for (const def of TABLES) {
      const t = resources[tableId(def.id)]!;
      expect(t.DeletionPolicy, def.id).toBe(def.retain ? 'Retain' : 'Delete');
      expect(t.Properties.DeletionProtectionEnabled ?? false, def.id).toBe(def.retain);
    }
  });

  it('gives positions, auctions and the ledger their sparse indexes exactly as the topology has them', () => {
    expect(resources[tableId('positions')]!.Properties).toMatchObject({
      AttributeDefinitions: expect.arrayContaining([
        { AttributeName: 'liqKey', AttributeType: 'S' },
        { AttributeName: 'liqPrice', AttributeType: 'N' },
        { AttributeName: 'entryPrice', AttributeType: 'N' },
        { AttributeName: 'adlLeverage', AttributeType: 'N' },
      ]),
      GlobalSecondaryIndexes: [
        {
          IndexName: POSITION_INDEX,
          KeySchema: [
            { AttributeName: 'liqKey', KeyType: 'HASH' },
            { AttributeName: 'liqPrice', KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'ALL' },
        },
        // ADL's two orders of a side, on the same sparse partition.
        {
          IndexName: POSITION_ADL_INDEXES.entry,
          KeySchema: [
            { AttributeName: 'liqKey', KeyType: 'HASH' },
            { AttributeName: 'entryPrice', KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'ALL' },
        },
        {
          IndexName: POSITION_ADL_INDEXES.leverage,
          KeySchema: [
            { AttributeName: 'liqKey', KeyType: 'HASH' },
            { AttributeName: 'adlLeverage', KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'ALL' },
        },
      ],
    });
    expect(resources[tableId('auctions')]!.Properties).toMatchObject({
      AttributeDefinitions: expect.arrayContaining([
        { AttributeName: 'wakeKey', AttributeType: 'S' },
        { AttributeName: 'wakeMark', AttributeType: 'N' },
      ]),
      GlobalSecondaryIndexes: [
        {
          IndexName: AUCTION_WAKE_INDEX,
          KeySchema: [
            { AttributeName: 'wakeKey', KeyType: 'HASH' },
            { AttributeName: 'wakeMark', KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'INCLUDE', NonKeyAttributes: ['step'] },
        },
      ],
    });
    // The journal by sequence, which ledger-reconcile reads from its checkpoint.
    expect(resources[tableId('ledger')]!.Properties).toMatchObject({
      AttributeDefinitions: expect.arrayContaining([
        { AttributeName: 'journalSequence', AttributeType: 'N' },
      ]),
      GlobalSecondaryIndexes: [
        {
          IndexName: JOURNAL_SEQUENCE_INDEX,
          KeySchema: [
            { AttributeName: 'pk', KeyType: 'HASH' },
            { AttributeName: 'journalSequence', KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'ALL' },
        },
      ],
    });
    // The open liquidations by start, which liquidation-watch reads (keys only: each is written at start and end).
    expect(resources[tableId('liquidations')]!.Properties).toMatchObject({
      AttributeDefinitions: expect.arrayContaining([
        { AttributeName: 'openShard', AttributeType: 'S' },
        { AttributeName: 'startedAtMs', AttributeType: 'N' },
      ]),
      GlobalSecondaryIndexes: [
        {
          IndexName: OPEN_LIQUIDATIONS_INDEX,
          KeySchema: [
            { AttributeName: 'openShard', KeyType: 'HASH' },
            { AttributeName: 'startedAtMs', KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'KEYS_ONLY' },
        },
      ],
    });
    for (const def of TABLES.filter(
      (t) => !['positions', 'auctions', 'ledger', 'liquidations'].includes(t.id),
    )) {
      expect(resources[tableId(def.id)]!.Properties.GlobalSecondaryIndexes).toBeUndefined();
    }
  });

  it('redrives each work queue to its DLQ after the topology maxReceiveCount; DLQs keep 14 days, and outlive the stack', () => {
    expect(QUEUES.filter(isDeadLetterSink).map((q) => q.id)).toEqual(['tickDeadLetters']);
    for (const def of QUEUES) {
      const pair = stack.queues[def.id];
      const props = resources[queueId(pair.queue)]!.Properties;
      expect(props.SqsManagedSseEnabled, def.id).toBe(true);
      if (!def.deadLetter) {
        expect(props.RedrivePolicy).toBeUndefined();
        expect(props.MessageRetentionPeriod).toBe(14 * 86_400);
        expect(resources[queueId(pair.queue)]!.DeletionPolicy, def.id).toBe('Retain');
        expect(resources[logicalIdOf(stack, policyOf(pair.queue))]!.DeletionPolicy, def.id).toBe('Retain');
        continue;
      }
      // Work queues go with the stack; their dead letters (failed work, with its reasons) stay, TLS-only still.
      expect(resources[queueId(pair.queue)]!.DeletionPolicy, def.id).toBe('Delete');
      expect(resources[queueId(pair.deadLetter!)]!.DeletionPolicy, def.id).toBe('Retain');
      expect(resources[logicalIdOf(stack, policyOf(pair.deadLetter!))]!.DeletionPolicy, def.id).toBe(
        'Retain',
      );
      expect(props.RedrivePolicy).toEqual({
        deadLetterTargetArn: { 'Fn::GetAtt': [queueId(pair.deadLetter!), 'Arn'] },
        maxReceiveCount: def.deadLetter.maxReceiveCount,
      });
      expect(resources[queueId(pair.deadLetter!)]!.Properties).toMatchObject({
        MessageRetentionPeriod: 14 * 86_400,
        SqsManagedSseEnabled: true,
      });
    }
  });

  it("sets each queue's visibility timeout to the topology's, at least 6x its consumer timeout", () => {
    for (const def of QUEUES) {
      const visibility = resources[queueId(stack.queues[def.id].queue)]!.Properties.VisibilityTimeout;
      // The local stage and the local runner's receives use the same function (test/integration/runner.test.ts).
      expect(visibility, def.id).toBe(visibilityTimeoutSeconds(def.id));
    }
    for (const fn of FUNCTIONS) {
      if (fn.trigger.kind !== 'queue') continue;
      expect(visibilityTimeoutSeconds(fn.trigger.queue), fn.id).toBeGreaterThanOrEqual(6 * fn.timeoutSeconds);
    }
  });

  it("outlasts the order lease's holders and lets their messages come back after it ran out", () => {
    // A holder that died has ended when its lease runs out; its message, redelivered, finds it run out.
    for (const id of ['liquidationConsumer', 'auction'] as const) {
      const fn = FUNCTIONS.find((f) => f.id === id)!;
      expect(ORDER_LEASE_MS, id).toBeGreaterThan(fn.timeoutSeconds * 1000);
      if (fn.trigger.kind !== 'queue') throw new Error(`${id} is not queue-triggered`);
      const visibility = resources[queueId(stack.queues[fn.trigger.queue].queue)]!.Properties
        .VisibilityTimeout as number;
      expect(ORDER_LEASE_MS, id).toBeLessThan(visibility * 1000);
    }
  });

  it('denies non-TLS access on every queue', () => {
    const queues = template.findResources('AWS::SQS::Queue');
    const policies = Object.values(template.findResources('AWS::SQS::QueuePolicy'));
    for (const id of Object.keys(queues)) {
      const policy = policies.find((p) =>
        (p.Properties.Queues as Array<{ Ref: string }>).some((q) => q.Ref === id),
      );
      expect(policy, id).toBeDefined();
      expect(JSON.stringify(policy)).toContain('"aws:SecureTransport":"false"');
    }
  });

  it('maps every queue trigger to an SQS event source with partial batch failures and max concurrency', () => {
    const queueTriggered = FUNCTIONS.filter((f) => f.trigger.kind === 'queue');
    template.resourceCountIs('AWS::Lambda::EventSourceMapping', queueTriggered.length);
    for (const fn of queueTriggered) {
      if (fn.trigger.kind !== 'queue') continue;
      template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
        FunctionName: { Ref: logicalIdOf(stack, stack.functions[fn.id]) },
        EventSourceArn: { 'Fn::GetAtt': [queueId(stack.queues[fn.trigger.queue].queue), 'Arn'] },
        BatchSize: fn.trigger.batchSize,
        FunctionResponseTypes: ['ReportBatchItemFailures'],
        ScalingConfig: { MaximumConcurrency: fn.trigger.maxConcurrency },
        ...(fn.trigger.batchWindowSeconds > 0
          ? { MaximumBatchingWindowInSeconds: fn.trigger.batchWindowSeconds }
          : {}),
      });
    }
  });

  it('runs every function on nodejs24.x, arm64, active tracing without answers, its own log group, the topology sizes', () => {
    template.resourceCountIs('AWS::Lambda::Function', FUNCTIONS.length);
    for (const def of FUNCTIONS) {
      const props = resources[logicalIdOf(stack, stack.functions[def.id])]!.Properties;
      expect(props).toMatchObject({
        Runtime: 'nodejs24.x',
        Architectures: ['arm64'],
        Handler: 'index.handler',
        TracingConfig: { Mode: 'Active' },
        MemorySize: def.memoryMb,
        Timeout: def.timeoutSeconds,
        // A trace would keep the handler's answer: admin's refusals name a stored position's owner and terms.
        Environment: { Variables: { POWERTOOLS_TRACER_CAPTURE_RESPONSE: 'false' } },
      });
      const logGroup = (props.LoggingConfig as { LogGroup: { Ref: string } }).LogGroup.Ref;
      expect(resources[logGroup]).toMatchObject({
        Type: 'AWS::Logs::LogGroup',
        Properties: { RetentionInDays: 30 },
      });
    }
    // `logRetention` would add a custom-resource Lambda; log groups with a retention do not.
    template.resourceCountIs('Custom::LogRetention', 0);
  });

  // Found by a review of the runtime configuration in session 26: Lambda's recursive-loop detection stops an SQS
  // chain of one function after 16 invocations (the 17th message goes to the DLQ, its handler never run), and the
  // consumer and auction functions chain on purpose (a last resort waits up to 19 times).
  it('lets the functions that send to their own trigger queue chain, and only those', () => {
    const chaining = FUNCTIONS.filter(chainsThroughItsOwnQueue).map((f) => f.id);
    expect(chaining.sort()).toEqual(['auction', 'liquidationConsumer']);
    expect(LAST_RESORT_WAITS).toBeGreaterThan(16);
    for (const def of FUNCTIONS) {
      const props = resources[logicalIdOf(stack, stack.functions[def.id])]!.Properties;
      expect(props.RecursiveLoop, def.id).toBe(chaining.includes(def.id) ? 'Allow' : 'Terminate');
    }
  });

  // Same review: a topic policy replaces SNS's default one, and enforceSSL's holds only a Deny, so CloudWatch (which
  // publishes as its service principal) was refused: no alarm reached anyone.
  it('lets CloudWatch alarms of this account publish to the alarm topic, over TLS only', () => {
    const topicId = logicalIdOf(stack, stack.monitoring.topic as never);
    const policies = Object.values(template.findResources('AWS::SNS::TopicPolicy')).filter((r) =>
      JSON.stringify(r.Properties.Topics).includes(topicId),
    );
    expect(policies).toHaveLength(1);
    const statements = policies[0]!.Properties.PolicyDocument.Statement as Record<string, unknown>[];
    expect(statements).toContainEqual(
      expect.objectContaining({
        Effect: 'Allow',
        Principal: { Service: 'cloudwatch.amazonaws.com' },
        Action: 'sns:Publish',
        Condition: expect.objectContaining({
          StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } },
        }),
      }),
    );
    expect(
      statements.some(
        (st) => st.Effect === 'Deny' && JSON.stringify(st.Condition).includes('aws:SecureTransport'),
      ),
    ).toBe(true);
  });

  it('passes every table and queue name, the bus, where the risk config is and Powertools settings', () => {
    for (const def of FUNCTIONS) {
      const env = (
        resources[logicalIdOf(stack, stack.functions[def.id])]!.Properties.Environment as {
          Variables: Record<string, unknown>;
        }
      ).Variables;
      for (const t of TABLES) expect(env[tableEnv(t.id)]).toEqual({ Ref: tableId(t.id) });
      for (const q of QUEUES) expect(env[queueEnv(q.id)]).toEqual({ Ref: queueId(stack.queues[q.id].queue) });
      // The queue keeping each one's dead letters, whose depth liquidation-watch reads (dlq45-depth-gauge): in its
      // environment alone (review45-dlq-watch-env; the tick sink's is its queue URL, above).
      for (const q of deadLetteredQueues()) {
        const pair = stack.queues[q.id];
        expect(env[deadLetterQueueEnv(q.id)], `${def.id}: ${q.id}`).toEqual(
          readsDeadLetters(def) || !pair.deadLetter
            ? { Ref: queueId(pair.deadLetter ?? pair.queue) }
            : undefined,
        );
      }
      expect(env[TICK_BUS_ENV]).toEqual({ Ref: logicalIdOf(stack, stack.tickBus) });
      // The configuration is in the code (the 40-market test below): the variable says so.
      expect(env[RISK_CONFIG_ENV]).toBe(RISK_CONFIG_BUNDLED);
      // One index shard per market unless the context says otherwise (the upgrade test below).
      expect(env[POSITION_INDEX_SHARDS_ENV]).toBeUndefined();
      // margin-check's own default (500 positions per invocation) unless the context sets it.
      expect(env[MAX_POSITIONS_ENV]).toBeUndefined();
      expect(env).toMatchObject({
        POWERTOOLS_SERVICE_NAME: 'backstop-dev',
        POWERTOOLS_METRICS_NAMESPACE: 'Backstop',
        POWERTOOLS_LOG_LEVEL: 'INFO',
      });
    }
  });

  it('routes PriceTick events (and continuations) to margin-check with a retry policy and the tick DLQ', () => {
    const deadLetters = queueId(stack.queues.tickDeadLetters.queue);
    template.hasResourceProperties('AWS::Events::Rule', {
      EventBusName: { Ref: logicalIdOf(stack, stack.tickBus) },
      // Not an archive's replay (found by a review in session 26: old ticks reached the live margin check).
      EventPattern: {
        source: [TICK_BUS.source],
        'detail-type': [TICK_BUS.detailType, TICK_BUS.continuationDetailType],
        'replay-name': [{ exists: false }],
      },
      Targets: [
        Match.objectLike({
          Arn: { 'Fn::GetAtt': [logicalIdOf(stack, stack.functions.marginCheck), 'Arn'] },
          RetryPolicy: { MaximumEventAgeInSeconds: 120, MaximumRetryAttempts: 3 },
          DeadLetterConfig: { Arn: { 'Fn::GetAtt': [deadLetters, 'Arn'] } },
        }),
      ],
    });
    template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: logicalIdOf(stack, stack.functions.marginCheck) },
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [deadLetters, 'Arn'] } } },
      // Lambda's second retry (about 3 minutes after the first attempt) would come after a 120 s event's age.
      MaximumEventAgeInSeconds: 120,
      MaximumRetryAttempts: 1,
    });
    expect([59, 60, 179, 180, 21_600].map(asyncRetriesWithin)).toEqual([0, 1, 1, 2, 2]);
    // EventBridge may write to the DLQ only for this rule.
    const dlqPolicy = Object.values(template.findResources('AWS::SQS::QueuePolicy')).find((p) =>
      (p.Properties.Queues as Array<{ Ref: string }>).some((q) => q.Ref === deadLetters),
    );
    expect(JSON.stringify(dlqPolicy)).toContain('events.amazonaws.com');
    expect(JSON.stringify(dlqPolicy)).toContain('aws:SourceArn');
  });

  it('lets liquidation-watch write its cursor alone in the liquidations table: PutItem of ~watch~ keys (watch44b-cursor)', () => {
    const liquidations = tableId('liquidations');
    const writes = statementsOfRole(roleIdOf('liquidationWatch')).filter(
      (s) =>
        JSON.stringify(s.Resource).includes(liquidations) &&
        asList(s.Action).some((a) => ['dynamodb:PutItem', 'dynamodb:UpdateItem'].includes(a)),
    );
    expect(writes.map((s) => ({ actions: asList(s.Action), condition: s.Condition }))).toEqual([
      {
        actions: ['dynamodb:PutItem'],
        condition: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['~watch~*'] } },
      },
    ]);
  });

  it("lets liquidation-watch update only its claim's attributes of the auctions table, answered none of the item (watch45-auctions-permission)", async () => {
    const auctions = tableId('auctions');
    const statements = statementsOfRole(roleIdOf('liquidationWatch')).filter((s) =>
      JSON.stringify(s.Resource).includes(auctions),
    );
    const writes = statements.filter((s) =>
      asList(s.Action).some((a) => ['dynamodb:PutItem', 'dynamodb:UpdateItem'].includes(a)),
    );
    expect(writes.map((s) => ({ actions: asList(s.Action), condition: s.Condition }))).toEqual([
      {
        actions: ['dynamodb:UpdateItem'],
        condition: {
          'ForAllValues:StringEquals': {
            'dynamodb:Attributes': ['id', 'state', 'step', 'stepResent'],
          },
          StringEqualsIfExists: { 'dynamodb:ReturnValues': ['NONE'] },
        },
      },
    ]);
    // Its reads stay whole: the auction it judges.
    expect(statements.flatMap((s) => asList(s.Action))).toContain('dynamodb:GetItem');
    // What the claim's adapter sends, each way it goes (claimed, refused, given back), within those attributes: an
    // attribute added to the claim fails here until the grant names it.
    const granted = {
      table: 'auctions' as const,
      access: 'write' as const,
      attributes: (writes[0]!.Condition as Record<string, Record<string, string[]>>)[
        'ForAllValues:StringEquals'
      ]!['dynamodb:Attributes']!,
    };
    const sent = await claimRequests();
    expect(sent.map((r) => r.command)).toEqual(['UpdateItem', 'UpdateItem', 'UpdateItem']);
    for (const r of sent)
      expect(outsideGrant(granted, { action: 'UpdateItem', input: r.input })).toBeUndefined();
    // And none granted in vain.
    expect(requestAttributes(sent[0]!.input)).toEqual([...granted.attributes].sort());
  });

  it('schedules ledger-reconcile and liquidation-watch and gives admin no trigger, URL or resource permission', () => {
    for (const fn of [stack.functions.ledgerReconcile, stack.functions.liquidationWatch]) {
      template.hasResourceProperties('AWS::Events::Rule', {
        ScheduleExpression: 'rate(5 minutes)',
        Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': [logicalIdOf(stack, fn), 'Arn'] } })],
      });
    }
    template.resourceCountIs('AWS::Lambda::Url', 0);
    const adminId = logicalIdOf(stack, stack.functions.admin);
    const adminPermissions = Object.values(template.findResources('AWS::Lambda::Permission')).filter((p) =>
      JSON.stringify(p.Properties.FunctionName).includes(adminId),
    );
    expect(adminPermissions).toEqual([]);
  });

  it('lets only this account put events on the bus, only with the tick source, and archives ticks', () => {
    const bus = resources[logicalIdOf(stack, stack.tickBus)]!.Properties;
    expect(bus.Name).toBe('backstop-dev-ticks');
    const statements = (bus.Policy as { Statement: Statement[] }).Statement;
    expect(statements).toHaveLength(3);
    const [allow, , deny] = statements;
    expect(allow).toMatchObject({
      Effect: 'Allow',
      Action: 'events:PutEvents',
      Condition: { StringEquals: { 'events:source': TICK_BUS.source } },
    });
    expect(JSON.stringify(allow!.Principal)).toContain('AWS::AccountId');
    expect(asList((allow!.Principal as { AWS: unknown }).AWS)).toHaveLength(1);
    expect(deny).toMatchObject({
      Effect: 'Deny',
      Principal: { AWS: '*' },
      Action: 'events:PutEvents',
      Condition: { StringNotEquals: { 'events:source': TICK_BUS.source } },
    });
    template.hasResourceProperties('AWS::Events::Archive', {
      SourceArn: { 'Fn::GetAtt': [logicalIdOf(stack, stack.tickBus), 'Arn'] },
      RetentionDays: 30,
      // Feed ticks only: a continuation is margin-check's own, not a tick to replay.
      EventPattern: { source: [TICK_BUS.source], 'detail-type': [TICK_BUS.detailType] },
    });
  });

  it("denies PriceTickContinuation to every principal but margin-check's role", () => {
    // Any principal of this account could put one, and a forged continuation claims a tick's segments (session 43).
    const bus = resources[logicalIdOf(stack, stack.tickBus)]!.Properties;
    const statements = (bus.Policy as { Statement: Statement[] }).Statement;
    const continuations = statements.filter((s) =>
      JSON.stringify(s.Condition ?? {}).includes(TICK_BUS.continuationDetailType),
    );
    expect(continuations).toEqual([
      {
        Sid: 'DenyOthersContinuations',
        Effect: 'Deny',
        Principal: { AWS: '*' },
        Action: 'events:PutEvents',
        Resource: expect.anything(),
        Condition: {
          StringEquals: { 'events:detail-type': TICK_BUS.continuationDetailType },
          ArnNotEquals: { 'aws:PrincipalArn': [{ 'Fn::GetAtt': [roleIdOf('marginCheck'), 'Arn'] }] },
        },
      },
    ]);
    // No PriceTick deny without tickPublishersOnly: this account's principals still put ticks.
    expect(statements.filter((s) => s.Effect === 'Deny')).toHaveLength(2);
  });

  it('has no circular reference between its resources', () => {
    // The bus policy names margin-check's role, whose policy names the bus: a role references nothing, so no cycle.
    expect(dependencyCycle(resources)).toEqual([]);
    // The check finds one: the same bus policy with the grant inline in the role (the bus names the role, the role
    // the bus), and none with the grant in a policy of its own, as CDK writes it.
    const bus = {
      Type: 'AWS::Events::EventBus',
      Properties: { Policy: { P: { 'Fn::GetAtt': ['Role', 'Arn'] } } },
    };
    const grant = { PolicyDocument: { Resource: { 'Fn::GetAtt': ['Bus', 'Arn'] } } };
    expect(
      dependencyCycle({ Bus: bus, Role: { Type: 'AWS::IAM::Role', Properties: { Policies: [grant] } } }),
    ).toEqual(['Bus', 'Role', 'Bus']);
    expect(
      dependencyCycle({
        Bus: bus,
        Role: { Type: 'AWS::IAM::Role', Properties: {} },
        RolePolicy: { Type: 'AWS::IAM::Policy', Properties: { Roles: [{ Ref: 'Role' }], ...grant } },
        Fn: {
          Type: 'AWS::Lambda::Function',
          Properties: { Role: { Ref: 'Role' } },
          DependsOn: ['RolePolicy'],
        },
      }),
    ).toEqual([]);
  });

  it('grants each function exactly its topology grants', () => {
    const tableLevel = (actions: Set<string>, def: TableDef) => {
      const read = actions.has('dynamodb:Query') && actions.has('dynamodb:GetItem');
      // A table written by puts alone is updated by none (review48-security-ledger-update).
      const write = actions.has('dynamodb:PutItem') && actions.has('dynamodb:UpdateItem') === !def.putsOnly;
      return read && write ? 'readWrite' : read ? 'read' : write ? 'write' : 'none';
    };
    for (const def of FUNCTIONS) {
      const byResource = new Map<string, Set<string>>();
      const statements = statementsOfRole(roleIdOf(def.id));
      // Writes limited to some keys are checked apart, below: they are not table-level access.
      for (const s of statements.filter((s) => !s.Condition)) {
        for (const r of asList(s.Resource)) {
          const id = JSON.stringify(r).match(/"(?:Fn::GetAtt|Ref)":\["?([A-Za-z0-9]+)/)?.[1];
          if (!id) continue;
          const set = byResource.get(id) ?? new Set<string>();
          for (const a of asList(s.Action)) set.add(a);
          byResource.set(id, set);
        }
      }
      for (const t of TABLES) {
        const grant = def.grants.find(
          (g) => g.table === t.id && g.keysBeginWith === undefined && g.attributes === undefined,
        );
        expect(tableLevel(byResource.get(tableId(t.id)) ?? new Set(), t), `${def.id} -> ${t.id}`).toBe(
          grant?.access ?? 'none',
        );
      }
      // Writes limited by condition: puts of some keys, updates of some attributes.
      const limited = statements.filter((s) => s.Condition);
      expect(
        limited.map((s) => ({
          table: JSON.stringify(s.Resource).match(/"Fn::GetAtt":\["([A-Za-z0-9]+)/)?.[1],
          actions: asList(s.Action).sort(),
          condition: s.Condition,
        })),
        def.id,
      ).toEqual(
        def.grants
          .filter((g) => g.keysBeginWith !== undefined || g.attributes !== undefined)
          .map((g) => ({
            table: tableId(g.table!),
            ...(g.keysBeginWith !== undefined
              ? {
                  actions: ['dynamodb:PutItem'],
                  condition: {
                    'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [`${g.keysBeginWith}*`] },
                  },
                }
              : {
                  actions: ['dynamodb:UpdateItem'],
                  condition: {
                    'ForAllValues:StringEquals': { 'dynamodb:Attributes': [...g.attributes!] },
                    StringEqualsIfExists: { 'dynamodb:ReturnValues': ['NONE'] },
                  },
                }),
          })),
      );
      for (const q of QUEUES) {
        const actions = byResource.get(queueId(stack.queues[q.id].queue)) ?? new Set<string>();
        const send =
          def.grants.some((g) => g.queue === q.id && g.access === 'send') ||
          // Derived: margin-check's async on-failure destination (see infra/constructs/functions.ts).
          (def.id === 'marginCheck' && q.id === 'tickDeadLetters');
        const consume = def.trigger.kind === 'queue' && def.trigger.queue === q.id;
        expect(actions.has('sqs:SendMessage'), `${def.id} send ${q.id}`).toBe(send);
        expect(actions.has('sqs:ReceiveMessage'), `${def.id} consume ${q.id}`).toBe(consume);
      }
      // What a dead-letter queue holds, by GetQueueAttributes alone, where the topology says (dlq45-depth-gauge); CDK's
      // send grants add it too (margin-check's on-failure destination).
      for (const q of deadLetteredQueues()) {
        const pair = stack.queues[q.id];
        const keeper = queueId(pair.deadLetter ?? pair.queue);
        const actions = [...(byResource.get(keeper) ?? [])].sort();
        const depth = def.grants.some((g) => g.deadLetters === q.id && g.access === 'depth');
        const sends = actions.includes('sqs:SendMessage');
        expect(actions.includes('sqs:GetQueueAttributes'), `${def.id} depth of ${q.id}'s dead letters`).toBe(
          depth || sends,
        );
        if (depth && !sends) expect(actions, def.id).toEqual(['sqs:GetQueueAttributes']);
      }
    }
  });

  it('lets liquidation-watch read what each dead-letter queue holds, and nothing else of them (dlq45-depth-gauge)', () => {
    const keepers = deadLetteredQueues().map((q) =>
      queueId(stack.queues[q.id].deadLetter ?? stack.queues[q.id].queue),
    );
    expect(keepers).toHaveLength(3);
    const onKeepers = statementsOfRole(roleIdOf('liquidationWatch')).filter((s) =>
      keepers.some((k) => JSON.stringify(s.Resource).includes(`"${k}"`)),
    );
    // Each keeper by its ARN, GetQueueAttributes alone: no message received, sent or deleted.
    const granted = onKeepers.flatMap((s) =>
      asList(s.Resource).flatMap((r) =>
        asList(s.Action).map(
          (a) => `${a} ${JSON.stringify(r).match(/"Fn::GetAtt":\["([A-Za-z0-9]+)"/)?.[1]}`,
        ),
      ),
    );
    expect(granted.sort()).toEqual(keepers.map((k) => `sqs:GetQueueAttributes ${k}`).sort());
    // No other function may read a dead-letter queue of a work queue (margin-check sends to the tick sink).
    for (const def of FUNCTIONS.filter((f) => f.id !== 'liquidationWatch')) {
      const reads = statementsOfRole(roleIdOf(def.id)).filter(
        (s) =>
          asList(s.Action).includes('sqs:GetQueueAttributes') &&
          QUEUES.some(
            (q) =>
              stack.queues[q.id].deadLetter &&
              JSON.stringify(s.Resource).includes(`"${queueId(stack.queues[q.id].deadLetter!)}"`),
          ),
      );
      expect(reads, def.id).toEqual([]);
    }
  });

  it('lets only the functions the topology grants put events (margin-check, its continuations), only on the tick bus', () => {
    const busId = logicalIdOf(stack, stack.tickBus);
    const putters = FUNCTIONS.filter((f) => f.grants.some((g) => g.bus === 'ticks' && g.access === 'put'));
    expect(putters.map((f) => f.id)).toEqual(['marginCheck']);
    for (const def of FUNCTIONS) {
      const puts = statementsOfRole(roleIdOf(def.id)).filter((s) =>
        asList(s.Action).includes('events:PutEvents'),
      );
      if (putters.includes(def)) {
        expect(puts).toHaveLength(1);
        expect(JSON.stringify(puts[0]?.Resource)).toContain(busId);
      } else {
        expect(puts, def.id).toEqual([]);
      }
    }
  });

  it('lets no function delete an item: nothing deletes, and the ledger journal is append-only', () => {
    // CDK's table write grants add DeleteItem and BatchWriteItem: the consumers could erase journal entries (a
    // security review, session 40).
    const deletes = new Set(['dynamodb:DeleteItem', 'dynamodb:BatchWriteItem', 'dynamodb:*']);
    for (const def of FUNCTIONS) {
      const statements = statementsOfRole(roleIdOf(def.id));
      const actions = new Set(statements.flatMap((s) => asList(s.Action)));
      expect(
        [...actions].filter((a) => deletes.has(a)),
        def.id,
      ).toEqual([]);
      const writes = def.grants.some((g) => g.table && g.access !== 'read');
      expect(actions.has('dynamodb:PutItem'), def.id).toBe(writes);
      if (def.grants.some((g) => g.table && g.table !== 'ledger' && g.access === 'readWrite'))
        expect(actions.has('dynamodb:UpdateItem'), def.id).toBe(true);
    }
    expect(statementsOfRole(roleIdOf('liquidationConsumer')).length).toBeGreaterThan(3);
  });

  it('lets no function update the ledger, written by puts alone (review48-security-ledger-update)', () => {
    // Its journal entries are put once and its balance put whole: an UpdateItem could change an entry's amount in
    // place. The operator's `fund index-journal` updates entries with the operator's credentials.
    expect(TABLES.filter((t) => t.putsOnly).map((t) => t.id)).toEqual(['ledger']);
    const writers = FUNCTIONS.filter((f) =>
      f.grants.some((g) => g.table === 'ledger' && g.access !== 'read'),
    ).map((f) => f.id);
    expect(writers).toEqual(['liquidationConsumer', 'auction', 'ledgerReconcile', 'admin']);
    for (const def of FUNCTIONS) {
      const onLedger = statementsOfRole(roleIdOf(def.id)).filter((s) =>
        asList(s.Resource).some((r) => JSON.stringify(r).includes(`"${tableId('ledger')}"`)),
      );
      const actions = new Set(onLedger.flatMap((s) => asList(s.Action)));
      expect(actions.has('dynamodb:UpdateItem'), def.id).toBe(false);
      expect(actions.has('dynamodb:PutItem'), def.id).toBe(writers.includes(def.id));
    }
    // The other tables a function writes keep their updates (markets and the tick index are written by them alone).
    expect(
      statementsOfRole(roleIdOf('liquidationConsumer')).some(
        (s) =>
          asList(s.Action).includes('dynamodb:UpdateItem') &&
          JSON.stringify(s.Resource).includes(`"${tableId('markets')}"`),
      ),
    ).toBe(true);
  });

  it('lets a function Scan only the providers, the one table read by a Scan (security48-read-scan)', () => {
    // CDK's read grants add Scan: margin-check could read the whole book, every liquidation, in pages of 1 MB.
    expect(TABLES.filter((t) => t.scanned).map((t) => t.id)).toEqual(['providers']);
    for (const def of FUNCTIONS) {
      const statements = statementsOfRole(roleIdOf(def.id));
      const scanned = statements
        .filter((s) => asList(s.Action).some((a) => a === 'dynamodb:Scan' || a === 'dynamodb:GetRecords'))
        .flatMap((s) => asList(s.Resource))
        .map((r) => JSON.stringify(r).match(/"Fn::GetAtt":\["([A-Za-z0-9]+)/)?.[1]);
      const reads = def.grants.some((g) => g.table === 'providers' && g.access !== 'write');
      expect([...new Set(scanned)], def.id).toEqual(reads ? [tableId('providers')] : []);
    }
    expect(
      statementsOfRole(roleIdOf('liquidationConsumer')).some((s) =>
        asList(s.Action).includes('dynamodb:Scan'),
      ),
    ).toBe(true);
  });

  it('has no wildcard actions and no wildcard resources outside a documented allow-list', () => {
    // X-Ray trace writes accept only Resource "*"; CDK table grants cover the table's own indexes.
    const xray = new Set(['xray:PutTraceSegments', 'xray:PutTelemetryRecords']);
    const tableIndexes = new Set(
      TABLES.filter((t) => t.indexes.length > 0).map((t) =>
        JSON.stringify({ 'Fn::Join': ['', [{ 'Fn::GetAtt': [tableId(t.id), 'Arn'] }, '/index/*']] }),
      ),
    );
    const statements = Object.values(resources)
      .filter((r) => r.Type === 'AWS::IAM::Policy' || r.Type === 'AWS::IAM::Role')
      .flatMap((r) => [
        ...((r.Properties.PolicyDocument as { Statement: Statement[] } | undefined)?.Statement ?? []),
        ...(
          (r.Properties.Policies as Array<{ PolicyDocument: { Statement: Statement[] } }> | undefined) ?? []
        ).flatMap((p) => p.PolicyDocument.Statement),
      ]);
    expect(statements.length).toBeGreaterThan(10);
    for (const s of statements) {
      expect(s.Effect).toBe('Allow');
      for (const a of asList(s.Action)) expect(a, JSON.stringify(s)).not.toContain('*');
      for (const r of asList(s.Resource)) {
        const text = JSON.stringify(r);
        if (!text.includes('*')) continue;
        const allowed = (r === '*' && asList(s.Action).every((a) => xray.has(a))) || tableIndexes.has(text);
        expect(allowed, `wildcard resource ${text} for ${JSON.stringify(s.Action)}`).toBe(true);
      }
    }
  });

  it('alarms on every DLQ, liquidation queue age, fund balance, ADL, spent providers, reconcile, breaker and function errors', () => {
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm')).map((a) => a.Properties);
    const on = (metricName: string, namespace: string) =>
      alarms.filter((a) => a.MetricName === metricName && a.Namespace === namespace);
    const ages = on('ApproximateAgeOfOldestMessage', 'AWS/SQS');
    const ofQueue = (queue: Queue) => (a: Record<string, unknown>) =>
      JSON.stringify(a.Dimensions).includes(queueId(queue));
    expect(deadLetteredQueues().map((q) => q.id)).toEqual([
      'liquidations',
      'auctionSteps',
      'tickDeadLetters',
    ]);
    for (const q of deadLetteredQueues()) {
      const dlq = stack.queues[q.id].deadLetter ?? stack.queues[q.id].queue;
      // Each by SQS's visible count or liquidation-watch's gauge of it (dlq45-depth-gauge), then paged again a week
      // on: a dead letter expires with its retention, and its liquidation with it. Counted in hours with a message
      // held, not by the age a listing's receives take it out of (alarms45-dlq-aging-by-counts).
      const [depth, aging, ...more] = deadLetterAlarmsOf(q.id);
      expect(more, q.id).toEqual([]);
      // Depth: SQS's count or the watch's, each FILLed, one minute of the last 15 with a letter
      // (review45-dlq-max-readings).
      expect(depth, q.id).toMatchObject({
        Threshold: 1,
        EvaluationPeriods: 15,
        DatapointsToAlarm: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        TreatMissingData: 'notBreaching',
      });
      const queries = depth!.Metrics as DlqQuery[];
      expect(queries.filter((m) => m.ReturnData !== false).map((m) => m.Expression)).toEqual([
        'MAX([FILL(sqs, 0), FILL(watch, 0)])',
      ]);
      const stat = (id: string) => queries.find((m) => m.Id === id)!.MetricStat!;
      expect(stat('sqs')).toMatchObject({
        Period: 60,
        Stat: 'Maximum',
        Metric: { Namespace: 'AWS/SQS', MetricName: 'ApproximateNumberOfMessagesVisible' },
      });
      expect(JSON.stringify(stat('sqs').Metric.Dimensions)).toContain(`"${queueId(dlq)}"`);
      const watched = {
        Namespace: 'Backstop',
        MetricName: METRICS.DeadLetters.name,
        Dimensions: expect.arrayContaining([
          { Name: 'service', Value: 'backstop-dev' },
          { Name: 'Queue', Value: q.id },
        ]),
      };
      expect(stat('watch')).toMatchObject({ Period: 60, Stat: 'Maximum', Metric: watched });
      expect(stat('watch').Metric.Dimensions).toHaveLength(2);
      // Aging: the watch's read alone, by the hour, an hour unread not held (review45-dlq-aging-deploy).
      expect(aging, q.id).toMatchObject({
        ...watched,
        Statistic: 'Maximum',
        Period: 3600,
        EvaluationPeriods: 7 * 24,
        Threshold: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        TreatMissingData: 'notBreaching',
      });
      expect(aging!.Metrics, q.id).toBeUndefined();
      expect(aging!.Dimensions, q.id).toHaveLength(2);
      expect(ages.filter(ofQueue(dlq)), queueId(dlq)).toEqual([]);
    }
    // The liquidation queue holds messages sent up to 900 s ahead (the last resort's waits): its age alarms
    // a consumer far behind, and how late messages run is measured from when each was due.
    expect(ages.find(ofQueue(stack.queues.liquidations.queue))).toMatchObject({
      Threshold: 1800,
      ComparisonOperator: 'GreaterThanThreshold',
    });
    expect(on(METRICS.LiquidationLateness.name, 'Backstop')).toEqual([
      expect.objectContaining({
        Threshold: 120,
        Statistic: 'Maximum',
        Period: 60,
        EvaluationPeriods: 2,
        ComparisonOperator: 'GreaterThanThreshold',
      }),
    ]);
    const business = (name: string) => on(name, 'Backstop')[0];
    expect(business(METRICS.InsuranceFundBalance.name)).toMatchObject({
      ComparisonOperator: 'LessThanThreshold',
      Threshold: 100_000,
      Statistic: 'Minimum',
      Dimensions: [{ Name: 'service', Value: 'backstop-dev' }],
    });
    expect(business(METRICS.AdlEvents.name)).toMatchObject({ Threshold: 1, Statistic: 'Sum' });
    expect(business(METRICS.LastResortOrders.name)).toMatchObject({ Threshold: 1, Statistic: 'Sum' });
    expect(business(METRICS.AuctionsSkipped.name)).toMatchObject({ Threshold: 1, Statistic: 'Sum' });
    expect(business(METRICS.LedgerReconcileDifference.name)).toMatchObject({
      Threshold: 0,
      ComparisonOperator: 'GreaterThanThreshold',
    });
    // A reconcile that never reaches the balance judges no difference: its backlog alarms after three runs.
    expect(business(METRICS.LedgerReconcileBacklog.name)).toMatchObject({
      Threshold: 1,
      Statistic: 'Minimum',
      EvaluationPeriods: 3,
      Period: 300,
      // A long run's report lands in a later bucket: an empty one must not read as a healthy run.
      TreatMissingData: 'missing',
    });
    expect(business(METRICS.CircuitBreakerTripped.name)).toMatchObject({ Threshold: 1 });
    // A liquidation no message moves pages; so does a watch that stopped reporting (missing data breaches).
    expect(
      on(METRICS.LiquidationsOverdue.name, 'Backstop').map((a) => [
        a.Statistic,
        a.ComparisonOperator,
        a.Threshold,
        a.EvaluationPeriods,
        a.TreatMissingData,
      ]),
    ).toEqual([
      ['Maximum', 'GreaterThanOrEqualToThreshold', 1, 1, 'notBreaching'],
      ['SampleCount', 'LessThanThreshold', 1, 3, 'breaching'],
    ]);
    // A failed record pages though its batch's other records succeeded (no Lambda error): one alarm per queue.
    expect(
      on(METRICS.RecordFailures.name, 'Backstop').map((a) => [
        a.Dimensions.find((d: { Name: string }) => d.Name === 'Queue').Value,
        a.Statistic,
        a.Threshold,
      ]),
    ).toEqual([
      ['liquidations', 'Sum', 1],
      ['auctionSteps', 'Sum', 1],
    ]);
    // A fund at its floor, or at its draw cap, pages for itself: one alarm per reason.
    expect(
      on(METRICS.InsuranceFundRefusals.name, 'Backstop').map((a) => [
        a.Dimensions.find((d: { Name: string }) => d.Name === 'Reason').Value,
        a.Statistic,
        a.Threshold,
        a.ComparisonOperator,
      ]),
    ).toEqual([
      ['insurance/floor', 'Sum', 1, 'GreaterThanOrEqualToThreshold'],
      ['insurance/draw-cap', 'Sum', 1, 'GreaterThanOrEqualToThreshold'],
    ]);
    // Work held for a fresh mark pages at once (stale-mark, session 30).
    expect(business(METRICS.StaleMarkWaits.name)).toMatchObject({
      Threshold: 1,
      Statistic: 'Sum',
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
    });
    // A market whose feed stopped: one alarm per market, its silence (missing data) breaching.
    const feeds = on(METRICS.TicksAccepted.name, 'Backstop');
    expect(feeds.map((a) => a.Dimensions)).toEqual(
      parseRiskConfig(DEFAULT_RISK_CONFIG_INPUT).markets.map((m) =>
        expect.arrayContaining([
          { Name: 'service', Value: 'backstop-dev' },
          { Name: 'Market', Value: m.symbol },
        ]),
      ),
    );
    for (const feed of feeds) expect(feed.Dimensions).toHaveLength(2);
    for (const feed of feeds) {
      expect(feed).toMatchObject({
        Statistic: 'Sum',
        Period: 60,
        EvaluationPeriods: 5,
        Threshold: 1,
        ComparisonOperator: 'LessThanThreshold',
        TreatMissingData: 'breaching',
      });
    }
    // A feed behind its market's sequence pages before the silence does (feed-trust, session 25).
    expect(on(METRICS.TicksRejected.name, 'Backstop')).toEqual([
      expect.objectContaining({
        Dimensions: expect.arrayContaining([
          { Name: 'service', Value: 'backstop-dev' },
          { Name: 'Reason', Value: 'tick/out-of-order' },
        ]),
        Statistic: 'Sum',
        Period: 60,
        EvaluationPeriods: 2,
        Threshold: 5,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      }),
    ]);
    // A print held off its market's numbering pages at once: a glitch, or a market numbered ahead of its feed (one
    // period of three: review45-fill-readings).
    const numbering = alarms.find((a) =>
      a.AlarmDescription.startsWith("A tick was numbered off its market's"),
    );
    expect(numbering).toMatchObject({
      Threshold: 1,
      EvaluationPeriods: 3,
      DatapointsToAlarm: 1,
      TreatMissingData: 'notBreaching',
    });
    const numberingReasons = (
      (numbering?.Metrics ?? []) as { MetricStat?: { Metric: { Dimensions: unknown[] } } }[]
    )
      .flatMap((m) => (m.MetricStat ? [m.MetricStat.Metric.Dimensions] : []))
      .map((dims) => (dims as { Name: string; Value: string }[]).find((d) => d.Name === 'Reason')?.Value)
      .sort();
    expect(numberingReasons).toEqual([
      'tick/sequence-behind',
      'tick/sequence-confirming',
      'tick/sequence-jump',
    ]);
    const errors = on('Errors', 'AWS/Lambda');
    for (const def of FUNCTIONS) {
      const fnId = logicalIdOf(stack, stack.functions[def.id]);
      expect(
        errors.some((a) => JSON.stringify(a.Dimensions).includes(fnId)),
        def.id,
      ).toBe(true);
    }
    // A tick lost on the way to margin-check, not even dead-lettered: the rule's and the function's own metrics.
    const lost = alarms.find((a) => a.AlarmDescription.startsWith('Ticks were lost'));
    const lostMetrics = (lost?.Metrics ?? []) as {
      MetricStat?: { Metric: { Namespace: string; MetricName: string; Dimensions: unknown[] } };
    }[];
    const stats = lostMetrics.flatMap((m) => (m.MetricStat ? [m.MetricStat.Metric] : []));
    expect(stats.map((m) => `${m.Namespace} ${m.MetricName}`).sort()).toEqual([
      'AWS/Events FailedInvocations',
      'AWS/Events InvocationsFailedToBeSentToDlq',
      // Not AsyncEventsDropped: it also counts ticks Lambda put on the tick dead-letter queue (alarmed there).
      'AWS/Lambda DestinationDeliveryFailures',
    ]);
    const ruleId = Object.keys(
      template.findResources('AWS::Events::Rule', { Properties: { EventPattern: Match.anyValue() } }),
    )[0];
    for (const m of stats) {
      const dims = JSON.stringify(m.Dimensions);
      if (m.Namespace === 'AWS/Events') {
        expect(dims).toContain(logicalIdOf(stack, stack.tickBus));
        // EventBridge reports under the rule's bare name; the Ref of a rule on a custom bus is "<bus>|<rule>".
        // Found by a review of the alarms in session 26: the Ref itself matched no metric.
        expect(m.Dimensions).toContainEqual({
          Name: 'RuleName',
          Value: { 'Fn::Select': [1, { 'Fn::Split': ['|', { Ref: ruleId }] }] },
        });
      } else {
        expect(dims).toContain(logicalIdOf(stack, stack.functions.marginCheck));
      }
    }
    expect(lost).toMatchObject({ Threshold: 1, ComparisonOperator: 'GreaterThanOrEqualToThreshold' });
    // No email or topic configured: every alarm still notifies the stack's own topic (its ARN is an output).
    expect(alarms.every((a) => Array.isArray(a.AlarmActions) && a.AlarmActions.length === 1)).toBe(true);
    // A broken journal has its own alarm, whatever the difference's tolerance.
    expect(alarms.some((a) => String(a.AlarmDescription).startsWith('The fund journal is broken'))).toBe(
      true,
    );
  });

  // Found by a review of the observability contract in session 28: each of these failed silently (graphed at
  // most, never alarmed).
  it('alarms on what fails without an error: throttles, a stopped reconcile, stalled or late auction steps, wake and venue failures', () => {
    type Dimension = { Name: string; Value: unknown };
    type AlarmProperties = {
      AlarmDescription: string;
      MetricName?: string;
      Namespace?: string;
      Statistic?: string;
      Dimensions?: Dimension[];
      Metrics?: {
        Expression?: string;
        MetricStat?: { Metric: { Namespace: string; MetricName: string; Dimensions?: Dimension[] } };
      }[];
    } & Record<string, unknown>;
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm')).map(
      (a) => a.Properties as AlarmProperties,
    );
    const refersTo = (a: AlarmProperties, id: string) => JSON.stringify(a.Dimensions).includes(`"${id}"`);
    // Throttled receives move healthy messages towards their DLQ; a throttled scheduled run is dropped.
    for (const def of FUNCTIONS) {
      const fnId = logicalIdOf(stack, stack.functions[def.id]);
      const throttles = alarms.filter(
        (a) => a.Namespace === 'AWS/Lambda' && a.MetricName === 'Throttles' && refersTo(a, fnId),
      );
      expect(throttles, def.id).toEqual([
        expect.objectContaining({
          Statistic: 'Sum',
          Threshold: 1,
          ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        }),
      ]);
    }
    // Every reconcile run reports its journal problems: no report for three periods is a reconcile not running.
    expect(
      alarms.filter(
        (a) => a.MetricName === METRICS.LedgerJournalProblems.name && a.Statistic === 'SampleCount',
      ),
    ).toEqual([
      expect.objectContaining({
        Threshold: 1,
        ComparisonOperator: 'LessThanThreshold',
        TreatMissingData: 'breaching',
        EvaluationPeriods: 3,
        Period: 300,
      }),
    ]);
    // A stalled auction consumer: its queue's oldest step, beyond the longest delay a step is sent with.
    const stepQueue = logicalIdOf(stack, stack.queues.auctionSteps.queue);
    expect(
      alarms.filter((a) => a.MetricName === 'ApproximateAgeOfOldestMessage' && refersTo(a, stepQueue)),
    ).toEqual([
      expect.objectContaining({
        Threshold: 1800,
        Statistic: 'Maximum',
        ComparisonOperator: 'GreaterThanThreshold',
      }),
    ]);
    // A backed-up one, or a redrive: steps that ran late.
    expect(alarms.filter((a) => a.MetricName === METRICS.AuctionStepLateness.name)).toEqual([
      expect.objectContaining({
        Statistic: 'Maximum',
        Threshold: 60,
        Dimensions: [{ Name: 'service', Value: 'backstop-dev' }],
      }),
    ]);
    expect(alarms.filter((a) => a.MetricName === METRICS.AuctionWakeFailures.name)).toEqual([
      expect.objectContaining({
        Statistic: 'Sum',
        Threshold: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      }),
    ]);
    // liquidation-watch healed a stalled auction: a step message was lost (watch43-stalled-auction).
    expect(alarms.filter((a) => a.MetricName === METRICS.AuctionStepsResent.name)).toEqual([
      expect.objectContaining({
        Statistic: 'Sum',
        Threshold: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      }),
    ]);
    // The watch could not send a stalled step again: the auction stays stalled (observe44-resend-failure-alarm).
    expect(alarms.filter((a) => a.MetricName === METRICS.AuctionStepResendFailures.name)).toEqual([
      expect.objectContaining({
        Statistic: 'Sum',
        Threshold: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        TreatMissingData: 'notBreaching',
      }),
    ]);
    // The venue failing orders: every reason the consumer counts, summed.
    const venue = alarms.filter((a) =>
      (a.Metrics ?? []).some((m) => m.MetricStat?.Metric.MetricName === METRICS.VenueOrderFailures.name),
    );
    expect(venue).toHaveLength(1);
    const reasons = (venue[0]!.Metrics ?? []).flatMap((m) =>
      m.MetricStat
        ? (m.MetricStat.Metric.Dimensions ?? []).filter((d) => d.Name === 'Reason').map((d) => d.Value)
        : [],
    );
    expect(reasons.sort()).toEqual([...VENUE_ERROR_KINDS].sort());
    expect(venue[0]).toMatchObject({ Threshold: 3, ComparisonOperator: 'GreaterThanOrEqualToThreshold' });
  });

  it('ages the work queues past the longest delay and a healthy delivery, and says what the age can mean (alarms45-queue-age)', () => {
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm')).map((a) => a.Properties);
    for (const q of QUEUES.filter((def) => def.deadLetter)) {
      const queue = logicalIdOf(stack, stack.queues[q.id].queue);
      const age = alarms.filter(
        (a) =>
          a.MetricName === 'ApproximateAgeOfOldestMessage' &&
          JSON.stringify(a.Dimensions).includes(`"${queue}"`),
      );
      expect(age, q.id).toEqual([
        expect.objectContaining({
          Threshold: 1800,
          Statistic: 'Maximum',
          Period: 60,
          EvaluationPeriods: 2,
          ComparisonOperator: 'GreaterThanThreshold',
        }),
      ]);
      // If SQS ages a delayed message from its send (AWS does not say), a healthy one is at most its delay and,
      // before its third receive takes it out of the metric, two deliveries (each up to the function's timeout) each
      // followed by its wait: the backoff after that receive (the one scheduleRetry uses) or a lease deferral
      // (review45-alarms-healthy-age). Read as "more than three times", the rule lets a third delivery and its wait
      // count too. The stall alarms page a consumer that receives nothing (alarms45-stall-by-counts), so this one
      // is kept clear of both readings' worst case, not at it.
      const consumer = FUNCTIONS.find((f) => f.trigger.kind === 'queue' && f.trigger.queue === q.id)!;
      const waitAfter = (receive: number) =>
        Math.max(retryBackoffSeconds(q.id, receive) ?? visibilityTimeoutSeconds(q.id), ORDER_LEASE_MS / 1000);
      const worstAfter = (receives: number) =>
        SQS_MAX_DELAY_SECONDS +
        Array.from({ length: receives }, (_, i) => consumer.timeoutSeconds + waitAfter(i + 1)).reduce(
          (a, b) => a + b,
        );
      expect(worstAfter(2), q.id).toBe(1200);
      expect(worstAfter(3), q.id).toBe(1380);
      expect(worstAfter(3), q.id).toBeLessThan(WORK_QUEUE_AGE_SECONDS);
      const description = String(age[0]!.AlarmDescription);
      // AWS's documented rule: a message received three times or more leaves the age; a failing consumer pages
      // elsewhere. And neither reading of a delayed message's age is stated as fact.
      expect(description).toMatch(/received three times without being deleted leaves this age/);
      expect(description).toMatch(/AWS does not say whether a delayed message is aged from its send/);
      expect(description).not.toMatch(/has stalled/);
    }
  });

  it('pages a work queue whose visible messages nobody receives, by two counts SQS documents (alarms45-stall-by-counts)', () => {
    type Query = {
      Id: string;
      Expression?: string;
      ReturnData?: boolean;
      MetricStat?: {
        Metric: { Namespace: string; MetricName: string; Dimensions: unknown[] };
        Period: number;
        Stat: string;
      };
    };
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm')).map((a) => a.Properties);
    const workQueues = QUEUES.filter((def) => consumerOf(def.id));
    expect(workQueues.map((q) => q.id)).toEqual(['liquidations', 'auctionSteps']);
    for (const q of workQueues) {
      const queue = logicalIdOf(stack, stack.queues[q.id].queue);
      const ofQueue = (m: Query) =>
        JSON.stringify(m.MetricStat?.Metric.Dimensions ?? []).includes(`"${queue}"`);
      const stalls = alarms.filter((a) =>
        ((a.Metrics ?? []) as Query[]).some(
          (m) => m.MetricStat?.Metric.MetricName === 'NumberOfMessagesReceived' && ofQueue(m),
        ),
      );
      expect(
        stalls.map((a) => a.AlarmName),
        q.id,
      ).toEqual([`Backstop-dev-${q.id === 'liquidations' ? 'Liquidation' : 'AuctionStep'}QueueStallAlarm`]);
      const stall = stalls[0]!;
      // Every minute of the window must breach (no M of N): one minute with a receive is a consumer polling.
      expect(stall).toMatchObject({
        Threshold: 0,
        ComparisonOperator: 'GreaterThanThreshold',
        EvaluationPeriods: WORK_QUEUE_STALL_MINUTES,
        TreatMissingData: 'notBreaching',
      });
      expect(stall.DatapointsToAlarm ?? WORK_QUEUE_STALL_MINUTES).toBe(WORK_QUEUE_STALL_MINUTES);
      const queries = stall.Metrics as Query[];
      const stat = (name: string) => queries.find((m) => m.MetricStat?.Metric.MetricName === name)!;
      // Visible messages exclude delayed and in-flight ones (a message waiting on its delay, its backoff or a lease
      // deferral is in neither count), so no reading of a delayed message's age matters here.
      expect(
        queries.flatMap((m) => (m.MetricStat && ofQueue(m) ? [m.MetricStat.Metric.MetricName] : [])).sort(),
      ).toEqual(['ApproximateNumberOfMessagesVisible', 'NumberOfMessagesReceived']);
      const visible = stat('ApproximateNumberOfMessagesVisible');
      const received = stat('NumberOfMessagesReceived');
      expect(visible.MetricStat).toMatchObject({
        Period: 60,
        Stat: 'Maximum',
        Metric: { Namespace: 'AWS/SQS' },
      });
      expect(received.MetricStat).toMatchObject({
        Period: 60,
        Stat: 'Sum',
        Metric: { Namespace: 'AWS/SQS' },
      });
      const returned = queries.filter((m) => m.ReturnData !== false);
      expect(returned).toHaveLength(1);
      // What the expression gives, as AWS documents metric math and an alarm's choice of data points
      // (test/support/metric-math.ts), over ten minutes, the latest last: under every reading of what the page leaves
      // open (review45-fill-readings), each reading's state named.
      const minutes = Array.from({ length: 10 }, (_, m) => m);
      const series = (value: (m: number) => number | undefined) =>
        new Map(minutes.flatMap((m) => (value(m) === undefined ? [] : [[m, value(m)!] as const])));
      const pages = (vis: (m: number) => number | undefined, rec: (m: number) => number | undefined) =>
        Object.fromEntries(
          READINGS.map((r) => [
            readingName(r),
            alarmsOn(
              evaluate(
                returned[0]!.Expression!,
                { [visible.Id]: series(vis), [received.Id]: series(rec) },
                minutes,
                r,
              ),
              WORK_QUEUE_STALL_MINUTES,
              0,
            ),
          ]),
        );
      const always = (state: boolean) => Object.fromEntries(READINGS.map((r) => [readingName(r), state]));
      const none = () => undefined;
      // A stall: messages visible, none received (a minute with no receive reported is one with none).
      expect(
        pages(() => 3, none),
        q.id,
      ).toEqual(always(true));
      expect(
        pages(
          () => 3,
          () => 0,
        ),
        q.id,
      ).toEqual(always(true));
      // The same stall while SQS has yet to report the latest minute (its metrics come late: AWS warns that FILL in
      // an alarm makes that minute the filled value): it still pages (review45-stall-fill-latest), also where AWS's
      // IF(metric1, metric2, scalar3) table gives the scalar where the condition has no point
      // (review45-fill-if-table).
      const reported = (latest: number, v: number) => (m: number) => (m <= latest ? v : undefined);
      expect(pages(reported(8, 3), none), q.id).toEqual(always(true));
      expect(pages(reported(7, 3), reported(7, 0)), q.id).toEqual(always(true));
      // No stall: a receive in the window, a queue with nothing visible, a queue SQS does not report.
      expect(
        pages(
          () => 3,
          (m) => (m === 7 ? 10 : 0),
        ),
        q.id,
      ).toEqual(always(false));
      expect(
        pages(reported(8, 3), (m) => (m === 8 ? 10 : undefined)),
        q.id,
      ).toEqual(always(false));
      expect(
        pages(
          () => 0,
          () => 0,
        ),
        q.id,
      ).toEqual(always(false));
      expect(pages(none, none), q.id).toEqual(always(false));
      const description = String(stall.AlarmDescription);
      expect(description).toMatch(/event source mapping/);
      expect(description).not.toMatch(/has stalled/);
      // The window outlasts twice the longest a busy consumer goes without receiving (every slot's batch window and
      // invocation to its timeout), and the minute its two counts' buckets may straddle.
      const consumer = consumerOf(q.id)!;
      const trigger = consumer.trigger as { batchWindowSeconds: number };
      expect(WORK_QUEUE_STALL_MINUTES * 60, q.id).toBeGreaterThan(
        2 * (consumer.timeoutSeconds + trigger.batchWindowSeconds) + 60,
      );
    }
    // The first page of a stall, well before the age (which now pages a consumer far behind).
    expect(WORK_QUEUE_STALL_MINUTES * 60).toBeLessThan(WORK_QUEUE_AGE_SECONDS / 4);
  });

  it('pages a dead letter left a week by hours with one held, which a listing does not hide (alarms45-dlq-aging-by-counts)', () => {
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm')).map((a) => a.Properties);
    const aging = alarms.filter((a) => String(a.AlarmName).endsWith('AgingAlarm'));
    expect(aging.map((a) => a.AlarmName).sort()).toEqual([
      'Backstop-dev-AuctionStepsDlqAgingAlarm',
      'Backstop-dev-LiquidationsDlqAgingAlarm',
      'Backstop-dev-TickDeadLettersAgingAlarm',
    ]);
    for (const a of aging) {
      expect(a, a.AlarmName).toMatchObject({
        EvaluationPeriods: 168,
        Threshold: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      });
      // Seven days of hours, each with a dead letter held: the longest range CloudWatch evaluates.
      expect(a.Period, a.AlarmName).toBe(3600);
      expect(a.Period * a.EvaluationPeriods).toBe(7 * 86_400);
      expect(a.DatapointsToAlarm ?? a.EvaluationPeriods).toBe(168);
    }
    // A listing holds what it shows out of sight for seconds (then releases it): the hour's maximum still counts it.
    expect(PEEK_VISIBILITY_SECONDS).toBeLessThan(3600 / 2);
  });

  /**
   * A dead-letter alarm as the template states it, run over periods as test/support/metric-math.ts `evaluations` does,
   * under every reading of what AWS's metric math page leaves open (review45-fill-readings): each report names its
   * source, SQS's visible count (`sqs`) or liquidation-watch's DeadLetters (`watch`); an alarm that does not read a
   * source drops its reports.
   */
  type Source = 'sqs' | 'watch';
  const pascal = (id: string) => id.charAt(0).toUpperCase() + id.slice(1);
  type SourceReport = { source: Source; period: number; value: number; arrives?: number };
  const deadLetterAlarm = (name: string) => {
    const props = Object.values(template.findResources('AWS::CloudWatch::Alarm'))
      .map((a) => a.Properties as Record<string, unknown>)
      .find((a) => a.AlarmName === `Backstop-dev-${name}`);
    expect(props, name).toBeDefined();
    const sourceOf = (metricName: string): Source => {
      if (metricName === METRICS.DeadLetters.name) return 'watch';
      expect(metricName, name).toBe('ApproximateNumberOfMessagesVisible');
      return 'sqs';
    };
    const idOf: Partial<Record<Source, string>> = {};
    let expression = 'm';
    if (props!.Metrics) {
      const queries = props!.Metrics as DlqQuery[];
      expression = queries.find((m) => m.ReturnData !== false)!.Expression!;
      for (const m of queries) if (m.MetricStat) idOf[sourceOf(m.MetricStat.Metric.MetricName)] = m.Id;
    } else {
      idOf[sourceOf(String(props!.MetricName))] = 'm';
    }
    const rule: AlarmRule = {
      evaluationPeriods: props!.EvaluationPeriods as number,
      datapointsToAlarm: props!.DatapointsToAlarm as number | undefined,
      threshold: props!.Threshold as number,
      comparisonOperator: props!.ComparisonOperator as string,
      treatMissingData: props!.TreatMissingData as string,
    };
    /** Each reading's states, one evaluation a period from `from` to `to`, summed up by `judge`. */
    const run = <T>(reports: SourceReport[], to: number, judge: (states: boolean[]) => T, from = 0) =>
      Object.fromEntries(
        READINGS.map((r) => [
          readingName(r),
          judge(
            evaluations(
              expression,
              Object.values(idOf),
              rule,
              reports.flatMap(({ source, ...report }) => {
                const id = idOf[source];
                return id ? [{ id, ...report }] : [];
              }),
              { from, to },
              r,
            ),
          ),
        ]),
      );
    return { run, rule, reads: (source: Source) => idOf[source] !== undefined };
  };
  /** How many times an alarm goes from OK to ALARM (each a page), from OK. */
  const pagesIn = (states: boolean[]) => states.filter((s, i) => s && !(states[i - 1] ?? false)).length;
  const everyReading = <T>(value: T) => Object.fromEntries(READINGS.map((r) => [readingName(r), value]));
  /** liquidation-watch's runs, every 5 minutes from `from` to `to`, each reading `value`, reaching CloudWatch `late` on. */
  const watchRuns = (value: number, from: number, to: number, late = 0): SourceReport[] =>
    Array.from({ length: Math.floor((to - from) / 5) + 1 }, (_, k) => ({
      source: 'watch',
      period: from + 5 * k,
      value,
      arrives: from + 5 * k + late,
    }));
  /** One report of `source` a period, from `from` to `to`, `value(period)`. */
  const each = (source: Source, value: (p: number) => number, from: number, to: number): SourceReport[] =>
    Array.from({ length: to - from + 1 }, (_, k) => ({ source, period: from + k, value: value(from + k) }));

  // Asked in session 45: nothing calls a dead-letter queue, and SQS reports a queue's metrics only while it is active
  // ("for up to six hours if it contains any messages or if any action accesses it"): whether one that holds letters
  // but that nothing calls keeps reporting, no page settles. The alarms read SQS's count alone: once it stopped, the
  // depth alarm cleared and the aging alarm never came, while the letters waited to expire (dlq45-depth-gauge). The
  // depth alarm read `MAX([sqs, watch])` unfilled, keeping its state where neither had a point: whether MAX has a
  // point where one series has none, AWS's page does not say. Read as a 0 at every minute, the minutes between the
  // watch's runs cleared it, a page every run; read as a point only where both have one, letters SQS no longer
  // reported never paged, and a page SQS last saw stayed after a redrive (review45-dlq-max-readings).
  it('pages dead letters by either source, once, and clears after a redrive, however metric math is read (dlq45-depth-gauge, review45-dlq-max-readings)', () => {
    for (const q of deadLetteredQueues()) {
      const depth = deadLetterAlarm(
        q.id === 'tickDeadLetters' ? 'TickDeadLettersAlarm' : `${pascal(q.id)}DlqAlarm`,
      );
      expect(depth.reads('sqs') && depth.reads('watch'), q.id).toBe(true);
      /** Paged at `first` and never cleared to 40. */
      const pagedFrom = (first: number) => (states: boolean[]) =>
        states.indexOf(true) === first && pagesIn(states) === 1 && states.at(-1) === true;
      // Two letters held, SQS silent: paged at the watch's first run, and held between its runs (one page).
      expect(depth.run(watchRuns(2, 2, 40), 40, pagedFrom(2)), q.id).toEqual(everyReading(true));
      // Each run's count reaching CloudWatch 3 minutes late: the same, 3 minutes on.
      expect(depth.run(watchRuns(2, 2, 40, 3), 40, pagedFrom(5)), q.id).toEqual(everyReading(true));
      // A letter SQS reports while the watch cannot read the queue: paged the minute SQS has it.
      expect(
        depth.run([...watchRuns(0, 0, 5), ...each('sqs', (m) => (m >= 7 ? 1 : 0), 0, 40)], 40, pagedFrom(7)),
        q.id,
      ).toEqual(everyReading(true));
      // Redriven at minute 11: SQS had reported the letters, then stops reporting the empty queue; the watch reads 0
      // from its next run on. The page clears and stays clear.
      const redriven = [...each('sqs', () => 2, 0, 10), ...watchRuns(2, 2, 7), ...watchRuns(0, 12, 60)];
      expect(
        depth.run(redriven, 60, (s) => pagesIn(s) === 1 && s.indexOf(true) === 0 && s.at(-1) === false),
        q.id,
      ).toEqual(everyReading(true));
      // An empty queue, by both sources or by the watch alone, or none reporting yet (a deploy): never paged.
      const never = (s: boolean[]) => !s.some(Boolean);
      expect(depth.run([...watchRuns(0, 0, 40), ...each('sqs', () => 0, 0, 40)], 40, never)).toEqual(
        everyReading(true),
      );
      expect(depth.run(watchRuns(0, 3, 40), 40, never)).toEqual(everyReading(true));
      expect(depth.run([], 40, never)).toEqual(everyReading(true));
    }
  });

  // The aging alarms read `MAX([sqs, watch])` by the hour and took an hour neither reported as breaching: a new stack,
  // or one upgraded, whose dead-letter queues SQS had reported nothing of for the week (empty, nothing calling them)
  // paged each one as the alarm was created, cleared at the watch's first run (review45-dlq-aging-deploy); and whether
  // MAX has a point where one series has none decided whether letters SQS no longer reported paged at all
  // (review45-dlq-max-readings).
  it("pages letters held a week from the watch's hourly reads, never an empty queue at deploy, however metric math is read (review45-dlq-aging-deploy)", () => {
    for (const q of deadLetteredQueues()) {
      const aging = deadLetterAlarm(
        q.id === 'tickDeadLetters' ? 'TickDeadLettersAgingAlarm' : `${pascal(q.id)}DlqAgingAlarm`,
      );
      const week = aging.rule.evaluationPeriods;
      expect(week, q.id).toBe(7 * 24);
      const hourly = (
        value: (h: number) => number | undefined,
        from: number,
        to: number,
        late = 0,
      ): SourceReport[] =>
        Array.from({ length: to - from + 1 }, (_, k) => from + k).flatMap((h) =>
          value(h) === undefined
            ? []
            : [{ source: 'watch' as const, period: h, value: value(h)!, arrives: h + late }],
        );
      const never = (s: boolean[]) => !s.some(Boolean);
      // Deployed at hour 0 with empty queues: nothing reported for the week before, the watch's 0s from its first run.
      expect(
        aging.run(
          hourly(() => 0, 1, 30),
          30,
          never,
        ),
        q.id,
      ).toEqual(everyReading(true));
      expect(aging.run([], 30, never), q.id).toEqual(everyReading(true));
      // Letters held from hour 0, SQS silent, each hour's maximum reaching CloudWatch after the hour (the latest one,
      // open, not reported yet): paged once the week's hours are reported, and held.
      const held = (s: boolean[]) => s.indexOf(true) === week && pagesIn(s) === 1 && s.at(-1) === true;
      expect(
        aging.run(
          hourly(() => 2, 0, 200, 1),
          200,
          held,
        ),
        q.id,
      ).toEqual(everyReading(true));
      expect(
        aging.run(
          hourly(() => 2, 0, 200),
          200,
          (s) => s.indexOf(true) === week - 1 && pagesIn(s) === 1,
        ),
        q.id,
      ).toEqual(everyReading(true));
      // An hour the queue was read empty (a redrive, then new letters) starts the week again.
      expect(
        aging.run(
          hourly((h) => (h === 50 ? 0 : 2), 0, 200),
          200,
          never,
        ),
        q.id,
      ).toEqual(everyReading(true));
    }
  });

  it('pages a dead-letter queue liquidation-watch cannot read, three runs running, not one (dlq45-depth-gauge)', () => {
    const alarm = Object.values(template.findResources('AWS::CloudWatch::Alarm'))
      .map((a) => a.Properties)
      .find((a) => a.AlarmName === 'Backstop-dev-DeadLetterReadFailuresAlarm')!;
    expect(alarm).toMatchObject({
      Namespace: 'Backstop',
      MetricName: METRICS.DeadLetterReadFailures.name,
      Dimensions: [{ Name: 'service', Value: 'backstop-dev' }],
      Statistic: 'Sum',
      Period: 300,
      EvaluationPeriods: 3,
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      TreatMissingData: 'notBreaching',
    });
    const rule: AlarmRule = {
      evaluationPeriods: alarm.EvaluationPeriods,
      threshold: alarm.Threshold,
      comparisonOperator: alarm.ComparisonOperator,
      treatMissingData: alarm.TreatMissingData,
    };
    const failures = (periods: number[]) =>
      evaluations(
        'failed',
        ['failed'],
        rule,
        periods.map((period) => ({ id: 'failed', period, value: 1 })),
        {
          from: 0,
          to: 9,
        },
      );
    expect(failures([4]).some(Boolean)).toBe(false);
    expect(failures([3, 4, 5]).indexOf(true)).toBe(5);
  });

  it("keeps every alarm's evaluation range within CloudWatch's: a day under hourly periods, 7 days from them", () => {
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm')).map((a) => a.Properties);
    const wrong: string[] = [];
    for (const a of alarms) {
      const periods = [
        ...(a.Period ? [a.Period as number] : []),
        ...((a.Metrics ?? []) as { MetricStat?: { Period: number }; Period?: number }[]).flatMap((m) => [
          ...(m.MetricStat ? [m.MetricStat.Period] : []),
          ...(m.Period ? [m.Period] : []),
        ]),
      ];
      const period = Math.max(...periods);
      const range = period * (a.EvaluationPeriods as number);
      if (periods.length === 0 || range > (period >= 3600 ? 7 * 86_400 : 86_400))
        wrong.push(`${a.AlarmName}: ${a.EvaluationPeriods} x ${period} s`);
    }
    expect(alarms.length).toBeGreaterThan(40);
    expect(wrong).toEqual([]);
  });

  it('alarms on throttled requests to every table, and on throttled positions indexes with the shards advice', () => {
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm')).map(
      (a) =>
        a.Properties as {
          AlarmDescription: string;
          Metrics?: {
            Expression?: string;
            MetricStat?: { Metric: { MetricName: string; Dimensions: unknown[] } };
          }[];
        },
    );
    const stats = (a: (typeof alarms)[number]) =>
      (a.Metrics ?? []).flatMap((m) => (m.MetricStat ? [m.MetricStat.Metric] : []));
    const indexOf = (m: { Dimensions: unknown[] }) =>
      (m.Dimensions as { Name: string; Value: unknown }[]).find((d) => d.Name === 'GlobalSecondaryIndexName')
        ?.Value;
    for (const t of TABLES) {
      const alarm = alarms.find(
        (a) =>
          stats(a).some((m) => m.MetricName === 'ReadThrottleEvents') &&
          stats(a).every((m) =>
            JSON.stringify(m.Dimensions).includes(JSON.stringify({ Ref: tableId(t.id) })),
          ),
        t.id,
      );
      expect(alarm, t.id).toBeDefined();
      // The table's reads and writes, and (the TableName dimension alone leaves them out) reads of its indexes
      // (margin-check queries one on every tick; in no alarm before session 36) and writes to them: byWakeMark's
      // partition is one market side's sleepers. The positions indexes' writes alarm apart.
      expect(stats(alarm!).map((m) => [m.MetricName, indexOf(m)])).toEqual([
        ['ReadThrottleEvents', undefined],
        ['WriteThrottleEvents', undefined],
        ...t.indexes.flatMap((i) => [
          ['ReadThrottleEvents', i.name],
          ...(t.id === 'positions' ? [] : [['WriteThrottleEvents', i.name]]),
        ]),
      ]);
    }
    expect(TABLES.find((t) => t.id === 'auctions')!.indexes).toHaveLength(1);
    const indexes = alarms.find((a) => a.AlarmDescription.includes('positionIndexShards'))!;
    expect(
      stats(indexes).map(
        (m) =>
          (m.Dimensions as { Name: string; Value: unknown }[]).find(
            (d) => d.Name === 'GlobalSecondaryIndexName',
          )?.Value,
      ),
    ).toEqual([POSITION_INDEX, POSITION_ADL_INDEXES.entry, POSITION_ADL_INDEXES.leverage]);
  });

  /**
   * An alarm on metric math as the template states it, run over periods 0 to 30 (test/support/metric-math.ts
   * `evaluations`: each evaluation reads the counts that reached CloudWatch by then, its own period still open), under
   * every reading of what AWS's metric math page leaves open (review45-fill-readings).
   */
  const sparseAlarm = (name: string) => {
    type Query = {
      Id: string;
      Expression?: string;
      ReturnData?: boolean;
      MetricStat?: { Metric: { Namespace: string } };
    };
    const props = Object.values(template.findResources('AWS::CloudWatch::Alarm'))
      .map((a) => a.Properties)
      .find((a) => a.AlarmName === `Backstop-dev-${name}`);
    expect(props, name).toBeDefined();
    const queries = props!.Metrics as Query[];
    const returned = queries.filter((m) => m.ReturnData !== false);
    expect(returned, name).toHaveLength(1);
    const expression = returned[0]!.Expression!;
    const ids = queries.flatMap((m) => (m.MetricStat ? [m.Id] : []));
    const rule: AlarmRule = {
      evaluationPeriods: props!.EvaluationPeriods,
      datapointsToAlarm: props!.DatapointsToAlarm,
      threshold: props!.Threshold,
      comparisonOperator: props!.ComparisonOperator,
      treatMissingData: props!.TreatMissingData,
    };
    // Whether it pages at some evaluation, and clears once nothing more comes, each reading's answer named.
    const pages = (reports: Report[]) =>
      Object.fromEntries(
        READINGS.map((r) => {
          const all = evaluations(expression, ids, rule, reports, { from: 0, to: 30 }, r);
          expect(all.at(-1), `${name} still in ALARM 20 periods later (${readingName(r)})`).toBe(false);
          return [readingName(r), all.some(Boolean)];
        }),
      );
    return { expression, ids, rule, pages };
  };
  const always = (state: boolean) => Object.fromEntries(READINGS.map((r) => [readingName(r), state]));

  // AWS's FILL entry: in an alarm, FILL makes "the latest data point for the metric to always be the FILL value",
  // the latest period not reported yet included. With one evaluation period, a count that reached CloudWatch after
  // its period stopped being the latest was never evaluated, the next period's filled 0 read instead
  // (alarms45-fill-sparse-counts). Unfilled, a sum skips that period only if it has no point where no count has one,
  // which AWS's page does not say ("Missing values in a time series are treated as 0", no example): read as a 0 at
  // every period, it is the filled sum again (review45-fill-readings). Each count here is stamped in period 10.
  it.each([
    ['VenueFailuresAlarm', 'timeout'],
    ['FeedNumberingAlarm', 'jump'],
    ['TickDeliveryLostAlarm', 'failed'],
    ...TABLES.map((t) => [`${t.id.charAt(0).toUpperCase()}${t.id.slice(1)}TableThrottleAlarm`, `r_${t.id}`]),
    ['PositionIndexThrottleAlarm', 'i0'],
  ])(
    'pages %s on a count that reaches CloudWatch after its period, and clears, however metric math is read (alarms45-fill-sparse-counts, review45-fill-readings)',
    (name, first) => {
      const { expression, ids, rule, pages } = sparseAlarm(name);
      expect(ids).toContain(first);
      const threshold = rule.threshold;
      expect(rule.comparisonOperator).toBe('GreaterThanOrEqualToThreshold');
      const count = (id: string, value: number, arrives?: number): Report => ({
        id,
        period: 10,
        value,
        arrives,
      });
      // In time: reported within its own period.
      expect(pages([count(first, threshold)])).toEqual(always(true));
      // Late, by one period and by two, with the latest period not reported at that evaluation: every metric of the
      // sum.
      for (const id of ids) {
        expect(pages([count(id, threshold, 11)]), id).toEqual(always(true));
        expect(pages([count(id, threshold, 12)]), id).toEqual(always(true));
      }
      // Part in time and part late: the period's whole count is evaluated once it is there.
      if (threshold > 1) {
        expect(pages([count(first, threshold - 1), count(ids[1]!, 1, 11)])).toEqual(always(true));
        expect(pages([count(first, threshold - 1), count(ids[1]!, 0, 11)])).toEqual(always(false));
      }
      // Nothing counted: no page.
      expect(pages([])).toEqual(always(false));
      // Every metric FILLed, so the sum has a point at every period under every reading: no alarm's state rests on
      // how missing data is treated, which alarms on AWS/DynamoDB metrics ignore whatever TreatMissingData says
      // (PutMetricAlarm: they "remain in their current state"), so an unfilled throttle sum would stay in ALARM. The
      // latest period, filled, reads 0 until reported: one breaching period of the last three pages (AWS's answer to
      // FILL's latest point: M out of N), a count up to two periods late.
      const range = Array.from({ length: 6 }, (_, k) => k);
      for (const r of READINGS)
        expect(
          evaluate(expression, Object.fromEntries(ids.map((id) => [id, new Map()])), range, r).size,
          readingName(r),
        ).toBe(6);
      expect(rule).toMatchObject({ evaluationPeriods: 3, datapointsToAlarm: 1 });
    },
  );

  it('graphs every business metric on the dashboard with its exact dimensions', () => {
    const dashboard = Object.values(template.findResources('AWS::CloudWatch::Dashboard'))[0]!.Properties;
    expect(dashboard.DashboardName).toBe('backstop-dev-dashboard');
    // The body is a Fn::Join of JSON text and tokens: replace the tokens to parse it.
    const parts = dashboard.DashboardBody['Fn::Join'][1] as unknown[];
    const body = JSON.parse(parts.map((p) => (typeof p === 'string' ? p : 'TOKEN')).join('')) as {
      widgets: Array<{ properties: { metrics?: unknown[][] } }>;
    };
    const lines = body.widgets.flatMap((w) => w.properties.metrics ?? []);
    const business = lines.filter((l) => l[0] === 'Backstop');
    for (const spec of Object.values(METRICS)) {
      if ('dimension' in spec) continue;
      expect(business, spec.name).toContainEqual([
        'Backstop',
        spec.name,
        'service',
        'backstop-dev',
        expect.anything(),
      ]);
    }
    for (const layer of LIQUIDATION_LAYERS) {
      expect(business).toContainEqual([
        'Backstop',
        METRICS.LiquidationsSettled.name,
        'Layer',
        layer,
        'service',
        'backstop-dev',
        expect.anything(),
      ]);
    }
    // Each one by its dimension (SEARCH): the failed records and, beside them, the newer writers' retries (not alarmed).
    for (const spec of Object.values(METRICS)) {
      if ('dimension' in spec)
        expect(JSON.stringify(lines), spec.name).toContain(`MetricName=\\"${spec.name}\\"`);
    }
    for (const stat of ['p50', 'p99']) {
      expect(business).toContainEqual(['Backstop', 'SlippageBps', 'service', 'backstop-dev', { stat }]);
    }
    const queueLines = lines.filter((l) => l[0] === 'AWS/SQS');
    expect(queueLines.filter((l) => l[1] === 'ApproximateAgeOfOldestMessage')).toHaveLength(QUEUES.length);
    const lambdaLines = lines.filter((l) => l[0] === 'AWS/Lambda');
    for (const metric of ['Errors', 'Throttles', 'Duration']) {
      expect(
        lambdaLines.filter((l) => l[1] === metric),
        metric,
      ).toHaveLength(FUNCTIONS.length);
    }
  });

  // Session 40: only TicksAccepted named its market; a page for bad debt or a breaker trip said nothing of which.
  it('graphs every metric emitted per market by market (SEARCH over its Market dimension set)', () => {
    const dashboard = Object.values(template.findResources('AWS::CloudWatch::Dashboard'))[0]!.Properties;
    const parts = dashboard.DashboardBody['Fn::Join'][1] as unknown[];
    const body = JSON.parse(parts.map((p) => (typeof p === 'string' ? p : 'TOKEN')).join('')) as {
      widgets: Array<{ properties: { metrics?: unknown[][] } }>;
    };
    const searches = body.widgets
      .flatMap((w) => w.properties.metrics ?? [])
      .flatMap((line) =>
        line.filter((x): x is { expression: string; label: string } => typeof x === 'object'),
      )
      .filter((x) => x.expression?.startsWith('SEARCH('));
    const perMarket = Object.values(METRICS).filter((spec) => 'byMarket' in spec);
    expect(perMarket.length).toBeGreaterThan(25);
    for (const spec of perMarket) {
      const names = ['Market', 'service', ...('dimension' in spec ? [spec.dimension] : [])].sort();
      const search = searches.find((s) =>
        s.expression.startsWith(
          `SEARCH('{Backstop,${names.join(',')}} MetricName="${spec.name}" service="backstop-dev"'`,
        ),
      );
      // Each series labelled with its market (a dynamic label).
      expect(search?.label, spec.name).toContain(`\${PROP('Dim.Market')}`);
    }
  });

  // The alarms read the totals, as before session 40: an alarm matches its exact dimension set and cannot sum a
  // dimension's values, so each must be a set the functions emit for every market's data points.
  it("alarms on the totals the functions emit, whichever market's: no alarm but the feed's reads a market", () => {
    const emitted = emittedDimensionSets();
    const read: string[] = [];
    for (const { Properties: a } of Object.values(template.findResources('AWS::CloudWatch::Alarm'))) {
      const metrics = a.Metrics
        ? (a.Metrics as { MetricStat?: { Metric: Record<string, unknown> } }[]).flatMap((q) =>
            q.MetricStat ? [q.MetricStat.Metric] : [],
          )
        : [a];
      for (const m of metrics as {
        Namespace?: string;
        MetricName: string;
        Dimensions: { Name: string }[];
      }[]) {
        if (m.Namespace !== 'Backstop') continue;
        const names = m.Dimensions.map((d) => d.Name).sort();
        expect(emitted.get(m.MetricName), m.MetricName).toContainEqual(names);
        if (m.MetricName !== METRICS.TicksAccepted.name) expect(names, m.MetricName).not.toContain('Market');
        read.push(m.MetricName);
      }
    }
    // Every business alarm of before (the feed's are one a market: ETH-USD and BTC-USD by default).
    expect(new Set(read)).toEqual(
      new Set([
        'InsuranceFundBalance',
        'InsuranceFundRefusals',
        'AdlEvents',
        'AuctionsSkipped',
        'LastResortOrders',
        'BadDebt',
        'LedgerReconcileDifference',
        'LedgerJournalProblems',
        'LedgerReconcileBacklog',
        'LiquidationsOverdue',
        'AuctionWakeFailures',
        'AuctionStepsResent',
        'AuctionStepResendFailures',
        'VenueOrderFailures',
        'AuctionStepLateness',
        'StaleMarkWaits',
        'MarkDisputes',
        'CircuitBreakerTripped',
        'TicksRejected',
        'TicksAccepted',
        'LiquidationLateness',
        'RecordFailures',
        // By queue, each the total of its only source (dlq45-depth-gauge).
        'DeadLetters',
        'DeadLetterReadFailures',
      ]),
    );
  });

  it('outputs every name and ARN tools need under keys derived from topology ids', () => {
    const outputs = Object.keys(template.toJSON().Outputs);
    const expected = [
      OUTPUT_KEYS.stage,
      OUTPUT_KEYS.tickBusName,
      OUTPUT_KEYS.tickBusArn,
      OUTPUT_KEYS.dashboardName,
      ...TABLES.map((t) => tableNameKey(t.id)),
      ...QUEUES.flatMap((q) => [queueUrlKey(q.id), queueArnKey(q.id)]),
      ...QUEUES.filter((q) => q.deadLetter).map((q) => deadLetterQueueUrlKey(q.id)),
      ...FUNCTIONS.map((f) => functionNameKey(f.id)),
    ];
    expect(outputs).toEqual(expect.arrayContaining(expected));
    expect(outputs).toContain('TablePositions');
    expect(outputs).toContain('QueueLiquidationsDlqUrl');
    // No email or topic given: the alarms still notify a topic of the stack's own, which an operator subscribes to.
    expect(outputs).toContain(OUTPUT_KEYS.alarmTopicArn);
    const topicId = Object.keys(template.findResources('AWS::SNS::Topic'))[0]!;
    template.resourceCountIs('AWS::SNS::Subscription', 0);
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm'));
    expect(alarms.length).toBeGreaterThan(20);
    for (const a of alarms) expect(a.Properties.AlarmActions).toEqual([{ Ref: topicId }]);
  });

  it("outputs the digest of the functions' risk configuration, which the operator commands check --config by", () => {
    const digestOf = (s: Stack) =>
      Template.fromStack(s).toJSON().Outputs[OUTPUT_KEYS.riskConfigDigest]?.Value;
    expect(digestOf(stack)).toBe(riskConfigDigest(DEFAULT_RISK_CONFIG));
    const input = {
      ...DEFAULT_RISK_CONFIG_INPUT,
      insurance: { ...DEFAULT_RISK_CONFIG_INPUT.insurance, floor: '1' },
    };
    const configured = build({ 'backstop:riskConfig': JSON.stringify(input) }).stack;
    expect(digestOf(configured)).toBe(riskConfigDigest(parseRiskConfig(input)));
    expect(digestOf(configured)).not.toBe(digestOf(stack));
  });
});

describe('BackstopStack template (configured)', () => {
  // Found by a review of the runtime configuration in session 26: a count the config took (1000) made a failing
  // message take longer to dead-letter than its queue keeps it: SQS dropped it, no DLQ, no alarm.
  it('dead-letters a lasting fault within the work queues retention at the largest receive count it takes', () => {
    expect(() => loadConfig({ 'backstop:maxReceiveCount': 101 })).toThrow(/at most 100/);
    const { stack } = build({ 'backstop:maxReceiveCount': 100 });
    const resources = Template.fromStack(stack).toJSON().Resources as Record<
      string,
      { Properties: Record<string, unknown> }
    >;
    for (const q of QUEUES.filter((q) => q.deadLetter)) {
      const props = resources[logicalIdOf(stack, stack.queues[q.id].queue)]!.Properties;
      const receives = (props.RedrivePolicy as { maxReceiveCount: number }).maxReceiveCount;
      expect(receives).toBe(100);
      // Each failed receive but the last comes back after its backoff, else after the visibility timeout.
      let seconds = 0;
      for (let n = 1; n <= receives; n++)
        seconds += retryBackoffSeconds(q.id, n, receives) ?? (props.VisibilityTimeout as number);
      expect(seconds, q.id).toBeLessThan((props.MessageRetentionPeriod as number) / 4);
    }
  });

  it("refuses an alarm topic of another region than the stack's, at synth", () => {
    // Found by an audit in session 37: the deploy failed half-way, at the first alarm's PutMetricAlarm.
    const inRegion = (region: string) =>
      buildIn(
        THIS_PROJECT,
        { 'backstop:alarmTopicArn': 'arn:aws:sns:eu-west-1:111122223333:ops' },
        { account: '111122223333', region },
      ).stack;
    expect(() => inRegion('us-east-1')).toThrow(
      /alarmTopicArn is a topic of eu-west-1, not of the stack's region us-east-1/,
    );
    expect(() => inRegion('eu-west-1')).not.toThrow();
  });

  it('has every alarm the docs name (a runbook entry for an alarm that does not exist pages nobody)', () => {
    const { stack } = build();
    const ids = Object.keys(Template.fromStack(stack).findResources('AWS::CloudWatch::Alarm'));
    const docs = ['README.md', 'docs/DEPLOY.md', 'docs/VENUE.md', 'docs/FEED.md']
      .map((f) => readFileSync(join(projectRoot, f), 'utf8'))
      .join('\n');
    const named = [...new Set([...docs.matchAll(/`([A-Za-z<>]+Alarm)`/g)].map((m) => m[1]!))];
    expect(named.length).toBeGreaterThan(10);
    for (const name of named) {
      // Construct ids in the Monitoring construct; <Market> and the like stand for any name.
      const id = new RegExp(`^Monitoring${name.replace(/<\w+>/g, '\\w+')}[0-9A-F]{8}$`);
      expect(
        ids.some((i) => id.test(i)),
        name,
      ).toBe(true);
    }
  });

  it("names each alarm after its stage's stack, so stages in one account and region never share one (alarms45-fixed-names)", () => {
    const names = (stage: string) =>
      Object.values(
        Template.fromStack(build({ 'backstop:stage': stage }).stack).findResources('AWS::CloudWatch::Alarm'),
      ).map((a) => a.Properties.AlarmName as string);
    const prod = names('prod');
    expect(prod).toContain('Backstop-prod-LiquidationQueueAgeAlarm');
    expect(prod.every((n) => n.startsWith('Backstop-prod-'))).toBe(true);
    expect(names('prod')).toEqual(prod);
    expect(names('dev').filter((n) => prod.includes(n))).toEqual([]);
    expect(alarmName('Backstop-prod', 'A'.repeat(241))).toHaveLength(255);
    expect(() => alarmName('Backstop-prod', 'A'.repeat(242))).toThrow(/longer than CloudWatch's 255/);
  });

  it("reads only its own stage's metrics: stages share the account's namespace", () => {
    const { stack } = build({ 'backstop:stage': 'prod' });
    const template = Template.fromStack(stack);
    const services = new Set<unknown>();
    const collect = (m: { Namespace?: string; Dimensions?: { Name: string; Value: unknown }[] }) => {
      if (m.Namespace === 'Backstop') services.add(m.Dimensions?.find((d) => d.Name === 'service')?.Value);
    };
    for (const { Properties: a } of Object.values(template.findResources('AWS::CloudWatch::Alarm'))) {
      collect(a);
      for (const q of a.Metrics ?? []) if (q.MetricStat) collect(q.MetricStat.Metric);
    }
    // Every business alarm of prod, and nothing else (a dev stage's ticks kept prod's feed alarm quiet).
    expect([...services]).toEqual(['backstop-prod']);
    const body = JSON.stringify(
      Object.values(template.findResources('AWS::CloudWatch::Dashboard'))[0]!.Properties.DashboardBody,
    );
    // Metric lines ("service","backstop-prod") and SEARCH expressions (service=\"backstop-prod\").
    const graphed = body.match(/service\W+backstop[\w-]*/g) ?? [];
    expect(graphed.length).toBeGreaterThan(20);
    expect(new Set(graphed.map((g) => g.replace(/^service\W+/, '')))).toEqual(new Set(['backstop-prod']));
    for (const { Properties: f } of Object.values(template.findResources('AWS::Lambda::Function'))) {
      const env = f.Environment?.Variables ?? {};
      if ('POWERTOOLS_METRICS_NAMESPACE' in env) expect(env.POWERTOOLS_SERVICE_NAME).toBe('backstop-prod');
    }
  });

  it('applies context: feed principals, receive count, retention, email alarms', () => {
    const { stack } = build({
      'backstop:stage': 'prod',
      'backstop:feedPrincipals': '111122223333,arn:aws:iam::444455556666:role/price-feed',
      'backstop:maxReceiveCount': '3',
      'backstop:logRetentionDays': '90',
      'backstop:tickArchiveRetentionDays': 7,
      'backstop:alarmEmail': 'ops@example.com',
    });
    const template = Template.fromStack(stack);
    const bus = Object.values(template.findResources('AWS::Events::EventBus'))[0]!.Properties;
    expect(bus.Name).toBe('backstop-prod-ticks');
    const allows = (bus.Policy.Statement as Statement[]).filter((s) => s.Effect === 'Allow');
    const feed = allows.filter((s) => JSON.stringify(s.Principal).includes('111122223333'));
    expect(feed).toHaveLength(1);
    expect(JSON.stringify(feed[0]!.Principal)).toContain('arn:aws:iam::444455556666:role/price-feed');
    // A feed puts ticks, never margin-check's continuations (a forged segment cuts a tick's chain short: session 40).
    expect(feed[0]!.Condition).toEqual({
      StringEquals: { 'events:source': TICK_BUS.source, 'events:detail-type': TICK_BUS.detailType },
    });
    for (const s of allows.filter((s) => s !== feed[0]))
      expect(JSON.stringify(s.Principal)).not.toMatch(/111122223333|444455556666/);
    template.hasResourceProperties('AWS::Events::Archive', { RetentionDays: 7 });
    const redrives = Object.values(template.findResources('AWS::SQS::Queue'))
      .map((q) => q.Properties.RedrivePolicy)
      .filter(Boolean);
    expect(redrives.map((r) => r.maxReceiveCount)).toEqual([3, 3]);
    // The consumers know the count, so a last receive's failure is not backed off (shared/lambda/failures.ts).
    const lambdas = Object.values(template.findResources('AWS::Lambda::Function')).filter(
      (f) => f.Properties.Environment?.Variables?.[TICK_BUS_ENV],
    );
    expect(lambdas).toHaveLength(FUNCTIONS.length);
    for (const fn of lambdas) {
      const vars = fn.Properties.Environment.Variables;
      expect(vars[maxReceivesEnv('liquidations')]).toBe('3');
      expect(vars[maxReceivesEnv('auctionSteps')]).toBe('3');
      expect(vars[maxReceivesEnv('tickDeadLetters')]).toBeUndefined();
    }
    const logGroups = Object.values(template.findResources('AWS::Logs::LogGroup'));
    expect(logGroups.map((g) => g.Properties.RetentionInDays)).toEqual(FUNCTIONS.map(() => 90));
    template.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'ops@example.com',
    });
    const topicId = Object.keys(template.findResources('AWS::SNS::Topic'))[0]!;
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm'));
    expect(alarms.length).toBeGreaterThan(0);
    for (const a of alarms) expect(a.Properties.AlarmActions).toEqual([{ Ref: topicId }]);
    expect(Object.keys(template.toJSON().Outputs)).toContain(OUTPUT_KEYS.alarmTopicArn);
  });
});

describe('BackstopStack template (tick feed alarms)', () => {
  it('follows alarmTickSilenceMinutes, and 0 leaves the alarms out', () => {
    const feedAlarms = (context: Record<string, unknown>) =>
      Object.values(Template.fromStack(build(context).stack).findResources('AWS::CloudWatch::Alarm'))
        .map((a) => a.Properties)
        .filter((a) => a.MetricName === METRICS.TicksAccepted.name);
    expect(feedAlarms({ 'backstop:alarmTickSilenceMinutes': '15' }).map((a) => a.EvaluationPeriods)).toEqual(
      parseRiskConfig(DEFAULT_RISK_CONFIG_INPUT).markets.map(() => 15),
    );
    expect(feedAlarms({ 'backstop:alarmTickSilenceMinutes': '0' })).toEqual([]);
  });
});

describe('BackstopStack template (upgrade in steps)', () => {
  it("deploys only the positions table's first indexes when asked: CloudFormation adds one per update", () => {
    const indexesOf = (context: Record<string, unknown>) => {
      const { stack } = build(context);
      const resources = Template.fromStack(stack).toJSON().Resources as Record<
        string,
        { Type: string; Properties: { GlobalSecondaryIndexes?: { IndexName: string }[] } }
      >;
      const positions = Object.entries(resources).find(
        ([id, r]) => r.Type === 'AWS::DynamoDB::Table' && id.startsWith('positionsTable'),
      )![1];
      return positions.Properties.GlobalSecondaryIndexes!.map((i) => i.IndexName);
    };
    expect(indexesOf({ 'backstop:positionIndexes': '2' })).toEqual([
      POSITION_INDEX,
      POSITION_ADL_INDEXES.entry,
    ]);
    expect(indexesOf({})).toEqual([
      POSITION_INDEX,
      POSITION_ADL_INDEXES.entry,
      POSITION_ADL_INDEXES.leverage,
    ]);
  });

  it('gives every function the index shards of a market that has more than one', () => {
    const { stack } = build({ 'backstop:positionIndexShards': '{"BTC-USD": 4}' });
    const resources = Template.fromStack(stack).toJSON().Resources as Record<
      string,
      { Type: string; Properties: { Environment?: { Variables: Record<string, unknown> } } }
    >;
    const functions = Object.values(resources).filter(
      (r) => r.Type === 'AWS::Lambda::Function' && r.Properties.Environment?.Variables[TICK_BUS_ENV],
    );
    expect(functions).toHaveLength(FUNCTIONS.length);
    for (const fn of functions) {
      expect(JSON.parse(fn.Properties.Environment!.Variables[POSITION_INDEX_SHARDS_ENV] as string)).toEqual({
        'BTC-USD': 4,
      });
    }
  });
});

describe('BackstopStack template (margin-check bound)', () => {
  it('gives the functions marginCheckMaxPositions when the context sets it, and refuses one out of range', () => {
    const { stack } = build({ 'backstop:marginCheckMaxPositions': '2000' });
    const resources = Template.fromStack(stack).toJSON().Resources as Record<
      string,
      { Type: string; Properties: { Environment?: { Variables: Record<string, unknown> } } }
    >;
    const marginCheck = resources[logicalIdOf(stack, stack.functions.marginCheck)]!;
    expect(marginCheck.Properties.Environment?.Variables[MAX_POSITIONS_ENV]).toBe('2000');
    expect(() => build({ 'backstop:marginCheckMaxPositions': '0' })).toThrow(/marginCheckMaxPositions/);
  });
});

describe('tickPublishersOnly', () => {
  const busStatements = (stack: BackstopStack): Statement[] =>
    (
      (Template.fromStack(stack).toJSON().Resources as Record<string, Resource>)[
        logicalIdOf(stack, stack.tickBus)
      ]!.Properties.Policy as { Statement: Statement[] }
    ).Statement;
  const tickDeny = (statements: Statement[]) =>
    statements.filter(
      (s) =>
        s.Effect === 'Deny' &&
        JSON.stringify(s.Condition ?? {}).includes(`"events:detail-type":"${TICK_BUS.detailType}"`),
    );

  it('denies PriceTick to every principal but the feed principals: their roles by ARN, their accounts by id', () => {
    const { stack } = build({
      'backstop:feedPrincipals':
        '111122223333,arn:aws:iam::444455556666:role/price-feed,arn:aws:iam::777788889999:role/ops/tick-operator',
      'backstop:tickPublishersOnly': 'true',
    });
    const statements = busStatements(stack);
    expect(tickDeny(statements)).toEqual([
      {
        Sid: 'DenyOthersTicks',
        Effect: 'Deny',
        Principal: { AWS: '*' },
        Action: 'events:PutEvents',
        Resource: expect.anything(),
        Condition: {
          StringEquals: { 'events:detail-type': TICK_BUS.detailType },
          ArnNotEquals: {
            'aws:PrincipalArn': [
              'arn:aws:iam::444455556666:role/price-feed',
              'arn:aws:iam::777788889999:role/ops/tick-operator',
            ],
          },
          StringNotEquals: { 'aws:PrincipalAccount': ['111122223333'] },
        },
      },
    ]);
    // Continuations stay margin-check's alone, the feed principals' included.
    expect(
      statements.filter((s) => JSON.stringify(s.Condition).includes(TICK_BUS.continuationDetailType)),
    ).toHaveLength(1);
  });

  it('names only what is given: roles alone, or accounts alone', () => {
    const roles = tickDeny(
      busStatements(
        build({
          'backstop:feedPrincipals': ['arn:aws:iam::444455556666:role/price-feed'],
          'backstop:tickPublishersOnly': true,
        }).stack,
      ),
    );
    expect(roles[0]!.Condition).toEqual({
      StringEquals: { 'events:detail-type': TICK_BUS.detailType },
      ArnNotEquals: { 'aws:PrincipalArn': ['arn:aws:iam::444455556666:role/price-feed'] },
    });
    const accounts = tickDeny(
      busStatements(
        build({ 'backstop:feedPrincipals': '111122223333', 'backstop:tickPublishersOnly': 'true' }).stack,
      ),
    );
    expect(accounts[0]!.Condition).toEqual({
      StringEquals: { 'events:detail-type': TICK_BUS.detailType },
      StringNotEquals: { 'aws:PrincipalAccount': ['111122223333'] },
    });
  });

  it('is on by default with feed principals, off when false, and off without them (security49-tick-publishers)', () => {
    const feed = { 'backstop:feedPrincipals': 'arn:aws:iam::444455556666:role/price-feed' };
    const defaulted = busStatements(build(feed).stack);
    expect(tickDeny(defaulted)).toEqual(
      tickDeny(busStatements(build({ ...feed, 'backstop:tickPublishersOnly': 'true' }).stack)),
    );
    expect(tickDeny(defaulted)).toHaveLength(1);
    expect(tickDeny(busStatements(build({ ...feed, 'backstop:tickPublishersOnly': 'false' }).stack))).toEqual(
      [],
    );
    // No feed principal: every PriceTick is this account's to put, as before.
    expect(tickDeny(busStatements(build().stack))).toEqual([]);
  });

  it("keeps the stack's own path under the default: the rule invokes margin-check, whose continuations the bus takes", () => {
    const { stack } = build({ 'backstop:feedPrincipals': 'arn:aws:iam::444455556666:role/price-feed' });
    const resources = Template.fromStack(stack).toJSON().Resources as Record<string, Resource>;
    const statements = busStatements(stack);
    // The deny is of PriceTick alone: a continuation is margin-check's (its own deny excepts its role).
    const deny = tickDeny(statements)[0]!;
    expect((deny.Condition as Record<string, unknown>).StringEquals).toEqual({
      'events:detail-type': TICK_BUS.detailType,
    });
    const marginCheckRole = (
      resources[logicalIdOf(stack, stack.functions.marginCheck)]!.Properties.Role as {
        'Fn::GetAtt': [string, string];
      }
    )['Fn::GetAtt'][0];
    expect(
      statements.find((s) => JSON.stringify(s.Condition).includes(TICK_BUS.continuationDetailType))!
        .Condition,
    ).toEqual({
      StringEquals: { 'events:detail-type': TICK_BUS.continuationDetailType },
      ArnNotEquals: { 'aws:PrincipalArn': [{ 'Fn::GetAtt': [marginCheckRole, 'Arn'] }] },
    });
    // margin-check puts its continuations under this account's Allow, which the default leaves.
    expect(
      statements.filter(
        (s) => s.Effect === 'Allow' && JSON.stringify(s.Principal).includes('AWS::AccountId'),
      ),
    ).toHaveLength(1);
    // The rule's delivery is no PutEvents: Lambda's permission for the rule, which no bus policy governs.
    const rule = logicalIdOf(stack, stack.node.findChild(TICK_RULE_ID) as Rule);
    const permissions = Object.values(resources).filter(
      (r) =>
        r.Type === 'AWS::Lambda::Permission' &&
        JSON.stringify(r.Properties.FunctionName).includes(logicalIdOf(stack, stack.functions.marginCheck)),
    );
    expect(permissions.map((p) => p.Properties)).toEqual([
      {
        Action: 'lambda:InvokeFunction',
        FunctionName: { 'Fn::GetAtt': [logicalIdOf(stack, stack.functions.marginCheck), 'Arn'] },
        Principal: 'events.amazonaws.com',
        SourceArn: { 'Fn::GetAtt': [rule, 'Arn'] },
      },
    ]);
  });

  it('is refused with no feed principal (no tick could be put) or with the stack its own feed account', () => {
    expect(() => build({ 'backstop:tickPublishersOnly': 'true' })).toThrow(
      /tickPublishersOnly denies PriceTick to every principal not in backstop:feedPrincipals, which names none/,
    );
    // The stack's own account listed would let every principal of it put ticks: the option would deny no one. Built
    // from the project's context (its config once read without cdk.json's: venue47-infra-tests-keyed).
    for (const project of [THIS_PROJECT, ...PROJECTS]) {
      const own = (account: string) =>
        buildIn(
          project,
          {
            'backstop:feedPrincipals': `${account},arn:aws:iam::444455556666:role/price-feed`,
            'backstop:tickPublishersOnly': 'true',
          },
          { account: '111122223333', region: 'us-east-1' },
        ).stack;
      expect(() => own('111122223333'), project.name).toThrow(
        /feedPrincipals names this stack's account 111122223333, which lets every principal of it put PriceTick/,
      );
      expect(tickDeny(busStatements(own('222233334444'))), project.name).toHaveLength(1);
    }
    // On by default with feed principals, the stack's own account among them refuses the synth too, naming the way out.
    const listing = (more: Record<string, unknown>) =>
      buildIn(
        THIS_PROJECT,
        { 'backstop:feedPrincipals': '111122223333', ...more },
        { account: '111122223333', region: 'us-east-1' },
      ).stack;
    expect(() => listing({})).toThrow(
      /names this stack's account 111122223333.*set backstop:tickPublishersOnly=false to let every principal of this account IAM allows put ticks/,
    );
    expect(tickDeny(busStatements(listing({ 'backstop:tickPublishersOnly': 'false' })))).toEqual([]);
  });
});

describe('who may send to the queues (security49-queue-senders)', () => {
  const OPERATOR = 'arn:aws:iam::111122223333:role/ops/backstop-redrive';
  type Built = { stack: BackstopStack; resources: Record<string, Resource> };
  const built = (context: Record<string, unknown> = {}): Built => {
    const { stack } = build(context);
    return { stack, resources: Template.fromStack(stack).toJSON().Resources };
  };
  /** The statements of `queue`'s resource policy. */
  const queueStatements = ({ stack, resources }: Built, queue: Queue): Statement[] =>
    (resources[logicalIdOf(stack, policyOf(queue))]!.Properties.PolicyDocument as { Statement: Statement[] })
      .Statement;
  const senderDeny = (b: Built, queue: Queue) =>
    queueStatements(b, queue).filter((s) => (s as { Sid?: string }).Sid === 'DenyOtherSenders');
  /** The roles (their logical ids) whose IAM policies allow sqs:SendMessage on `queue`. */
  const grantedSenders = ({ stack, resources }: Built, queue: Queue): string[] => {
    const id = logicalIdOf(stack, queue);
    return Object.values(resources)
      .filter(
        (r) =>
          r.Type === 'AWS::IAM::Policy' &&
          (r.Properties.PolicyDocument as { Statement: Statement[] }).Statement.some(
            (st) =>
              asList(st.Action).includes('sqs:SendMessage') &&
              JSON.stringify(st.Resource).includes(`"${id}"`),
          ),
      )
      .flatMap((r) => (r.Properties.Roles as { Ref: string }[]).map((ref) => ref.Ref))
      .sort();
  };
  const roleArns = (roles: string[]) => roles.map((r) => ({ 'Fn::GetAtt': [r, 'Arn'] }));
  /** The principals `queue`'s deny excepts, each as JSON (a role's ARN is a reference). */
  const excepted = (b: Built, queue: Queue): Set<string> =>
    new Set(
      (
        senderDeny(b, queue)[0]!.Condition as { ArnNotEquals: { 'aws:PrincipalArn': unknown[] } }
      ).ArnNotEquals['aws:PrincipalArn'].map((v) => JSON.stringify(v)),
    );

  it('denies SendMessage on each work queue to all but the roles granted it, and every dead-letter queue to all', () => {
    const b = built();
    for (const def of QUEUES.filter((q) => q.deadLetter)) {
      const pair = b.stack.queues[def.id];
      const granted = grantedSenders(b, pair.queue);
      // Every function that sends (its grant) is excepted, and no other: the stack's own sends go on.
      expect(granted.length, def.id).toBeGreaterThan(1);
      expect(senderDeny(b, pair.queue), def.id).toEqual([
        {
          Sid: 'DenyOtherSenders',
          Effect: 'Deny',
          Principal: { AWS: '*' },
          Action: 'sqs:SendMessage',
          Resource: { 'Fn::GetAtt': [logicalIdOf(b.stack, pair.queue), 'Arn'] },
          Condition: { ArnNotEquals: { 'aws:PrincipalArn': expect.any(Array) } },
        },
      ]);
      expect(excepted(b, pair.queue), def.id).toEqual(
        new Set(roleArns(granted).map((v) => JSON.stringify(v))),
      );
      // SQS dead-letters by the redrive policy, which needs no SendMessage: no one sends there.
      expect(grantedSenders(b, pair.deadLetter!), def.id).toEqual([]);
      expect(senderDeny(b, pair.deadLetter!), def.id).toEqual([
        {
          Sid: 'DenyOtherSenders',
          Effect: 'Deny',
          Principal: { AWS: '*' },
          Action: 'sqs:SendMessage',
          Resource: { 'Fn::GetAtt': [logicalIdOf(b.stack, pair.deadLetter!), 'Arn'] },
          // Every IAM principal, never SQS's own move (should it be authorized as a service).
          Condition: { Bool: { 'aws:PrincipalIsAWSService': 'false' } },
        },
      ]);
    }
  });

  it("lets the tick rule's dead letters in from margin-check's role and the rule's delivery alone", () => {
    const b = built();
    const sink = b.stack.queues.tickDeadLetters.queue;
    const rule = {
      'Fn::GetAtt': [logicalIdOf(b.stack, b.stack.node.findChild(TICK_RULE_ID) as Rule), 'Arn'],
    };
    // margin-check's on-failure destination sends as its role.
    expect(grantedSenders(b, sink)).toHaveLength(1);
    expect(senderDeny(b, sink)).toEqual([
      expect.objectContaining({
        Effect: 'Deny',
        Action: 'sqs:SendMessage',
        Condition: {
          ArnNotEquals: { 'aws:PrincipalArn': roleArns(grantedSenders(b, sink)), 'aws:SourceArn': [rule] },
        },
      }),
    ]);
    // EventBridge's Allow for that rule is left as it was.
    const allow = queueStatements(b, sink).filter((s) => s.Effect === 'Allow');
    expect(allow).toEqual([
      expect.objectContaining({
        Principal: { Service: 'events.amazonaws.com' },
        Action: 'sqs:SendMessage',
        Condition: { ArnEquals: { 'aws:SourceArn': rule } },
      }),
    ]);
  });

  it('excepts queueSenderPrincipals on the work queues, and denies nothing with queueSendersOnly false', () => {
    const b = built({ 'backstop:queueSenderPrincipals': `${OPERATOR},arn:aws:iam::111122223333:user/alice` });
    for (const def of QUEUES.filter((q) => q.deadLetter)) {
      const pair = b.stack.queues[def.id];
      expect(excepted(b, pair.queue), def.id).toEqual(
        new Set(
          [...roleArns(grantedSenders(b, pair.queue)), OPERATOR, 'arn:aws:iam::111122223333:user/alice'].map(
            (v) => JSON.stringify(v),
          ),
        ),
      );
      // An operator sends to no dead-letter queue: redrive sends to the work queue.
      expect(JSON.stringify(senderDeny(b, pair.deadLetter!)), def.id).not.toContain(OPERATOR);
    }
    expect(JSON.stringify(senderDeny(b, b.stack.queues.tickDeadLetters.queue))).not.toContain(OPERATOR);
    const off = built({ 'backstop:queueSendersOnly': 'false' });
    for (const def of QUEUES) {
      const pair = off.stack.queues[def.id];
      for (const queue of [pair.queue, pair.deadLetter].filter((q) => q !== undefined))
        expect(senderDeny(off, queue), def.id).toEqual([]);
    }
  });

  it('lets no queue name a work queue or the sink its dead-letter queue, a move no deny of SendMessage sees (review49-security-redrive-into)', () => {
    const props = ({ stack, resources }: Built, queue: Queue) =>
      resources[logicalIdOf(stack, queue)]!.Properties as Record<string, unknown>;
    const b = built();
    for (const def of QUEUES) {
      const pair = b.stack.queues[def.id];
      expect(props(b, pair.queue).RedriveAllowPolicy, def.id).toEqual({ redrivePermission: 'denyAll' });
      // The work queue still dead-letters into its own queue, which stays open to that move (naming the work queue
      // there would be a circular reference).
      if (pair.deadLetter) {
        expect(props(b, pair.queue).RedrivePolicy, def.id).toBeDefined();
        expect(props(b, pair.deadLetter).RedriveAllowPolicy, def.id).toBeUndefined();
      }
    }
    const off = built({ 'backstop:queueSendersOnly': 'false' });
    for (const def of QUEUES)
      expect(props(off, off.stack.queues[def.id].queue).RedriveAllowPolicy, def.id).toBeUndefined();
  });

  it('says in DEPLOY.md which queues refuse to be a dead-letter queue, which the console can redrive, and how many principals fit (security50-console-redrive-docs)', () => {
    const b = built();
    const template = Template.fromStack(b.stack).toJSON().Resources as Record<string, Resource>;
    const idOf = new Map<string, string>();
    for (const def of QUEUES) {
      idOf.set(logicalIdOf(b.stack, b.stack.queues[def.id].queue), def.id);
      const dlq = b.stack.queues[def.id].deadLetter;
      if (dlq) idOf.set(logicalIdOf(b.stack, dlq), `${def.id} dead-letter`);
    }
    const queues = Object.entries(template).filter(([, r]) => r.Type === 'AWS::SQS::Queue');
    const denyAll = queues
      .filter(
        ([, r]) => JSON.stringify(r.Properties.RedriveAllowPolicy) === '{"redrivePermission":"denyAll"}',
      )
      .map(([id]) => idOf.get(id)!)
      .sort();
    // A queue no redrive policy names is no SQS queue's dead-letter queue: those are the ones refusing to be one.
    const targets = queues.map(([, r]) => JSON.stringify(r.Properties.RedrivePolicy ?? ''));
    const noneDeadLetters = queues
      .filter(([id]) => !targets.some((t) => t.includes(`"${id}"`)))
      .map(([id]) => idOf.get(id)!)
      .sort();
    expect(noneDeadLetters).toEqual(denyAll);
    // Of those, the one dead letters reach (EventBridge's, Lambda's), which StartMessageMoveTask cannot take.
    const sinks = denyAll.filter((q) => !b.stack.queues[q as QueueId].deadLetter);
    const deploy = readFileSync(join(projectRoot, 'docs/DEPLOY.md'), 'utf8').replace(/\s+/g, ' ');
    const paragraph = deploy.slice(deploy.indexOf('(security50-console-redrive-docs)'));
    const named = (text: string) => [...text.matchAll(/`(\w+)`/g)].map((m) => m[1]!).sort();
    expect(
      named(/the stack sets `denyAll` on (.*?), which are no queue's dead-letter queue/.exec(paragraph)![1]!),
    ).toEqual(denyAll);
    expect(sinks).toEqual(['tickDeadLetters']);
    expect(/so the console cannot redrive it; `dlq redrive --queue (\w+)`/.exec(paragraph)![1]).toBe(
      sinks[0],
    );
    // Past how many principals synth warns, each value counted, and the keys it counts (security50-queue-policy-conditions).
    const work = QUEUES.filter((q) => !isDeadLetterSink(q)).map(
      (q) => measureQueuePolicy(b.stack.queues[q.id].queue)!,
    );
    const room = QUEUE_POLICY_QUOTAS.conditions - Math.max(...work.map((m) => m.conditionValues));
    expect(deploy).toContain(
      `so past **${room}** principals synth warns (not refuses: \`${CONDITION_VALUES_WARNING}\`) that AWS may refuse the deploy with \`OverLimit\``,
    );
    expect(new Set(work.map((m) => m.conditions))).toEqual(new Set([2]));
    expect(deploy).toContain(
      "synth counts each key under an operator (a work queue's policy has 2, whatever is listed)",
    );
  });

  it('is refused with principals it cannot except, or exceptions to a deny turned off', () => {
    expect(() => build({ 'backstop:queueSenderPrincipals': '111122223333' })).toThrow(
      /backstop:queueSenderPrincipals\.0: must be an IAM role's or user's ARN/,
    );
    expect(() => build({ 'backstop:queueSenderPrincipals': 'arn:aws:iam::111122223333:role/*' })).toThrow(
      /queueSenderPrincipals/,
    );
    expect(() =>
      build({ 'backstop:queueSenderPrincipals': OPERATOR, 'backstop:queueSendersOnly': 'false' }),
    ).toThrow(/queueSenderPrincipals names the exceptions to the queues' deny of other senders/);
  });
});

describe("each queue's policy within SQS's quotas (security49b-queue-policy-size)", () => {
  /** Every queue's policy, measured at its longest once deployed, by queue. */
  const measures = (principals?: readonly string[]): Record<string, PolicyMeasure> => {
    const { stack } = build(
      principals === undefined ? {} : { 'backstop:queueSenderPrincipals': JSON.stringify(principals) },
    );
    const out: Record<string, PolicyMeasure> = {};
    for (const def of QUEUES) {
      const { queue, deadLetter } = stack.queues[def.id];
      out[def.id] = measureQueuePolicy(queue)!;
      if (deadLetter) out[`${def.id}Dlq`] = measureQueuePolicy(deadLetter)!;
    }
    return out;
  };
  const principal = (length: number, i: number): string => {
    const head = `arn:aws:iam::111122223333:role/ops/${i}-`;
    return head + 'x'.repeat(length - head.length);
  };

  it('bounds each reference by its longest ARN; only the bytes and condition values grow with the principals listed', () => {
    expect(LONGEST_ARN['AWS::IAM::Role']).toHaveLength(102);
    expect(LONGEST_ARN['AWS::SQS::Queue']).toHaveLength(4 + 10 + 5 + 20 + 1 + 12 + 1 + 80);
    const none = measures();
    const two = measures([principal(60, 1), principal(70, 2)]);
    for (const [id, m] of Object.entries(none)) {
      const work = !id.endsWith('Dlq') && id !== 'tickDeadLetters';
      for (const quota of Object.keys(QUEUE_POLICY_QUOTAS) as (keyof typeof QUEUE_POLICY_QUOTAS)[])
        expect(m[quota], `${id} ${quota}`).toBeLessThanOrEqual(QUEUE_POLICY_QUOTAS[quota]);
      expect(m.conditionValues, id).toBeLessThanOrEqual(QUEUE_POLICY_QUOTAS.conditions);
      for (const quota of ['statements', 'principals', 'conditions', 'actionsPerStatement'] as const)
        expect(two[id]![quota], `${id} ${quota}`).toBe(m[quota]);
      // Each principal's ARN, quoted, after a comma, one value of the deny's condition, in the work queues' alone.
      expect(two[id]!.bytes - m.bytes, id).toBe(work ? 60 + 70 + 6 : 0);
      expect(two[id]!.conditionValues - m.conditionValues, id).toBe(work ? 2 : 0);
    }
    // The deny of other senders beside the TLS-only deny (and EventBridge's Allow on the sink): a key each, and as
    // values, auctionSteps' five roles and SecureTransport (security50-queue-policy-conditions).
    expect(none.auctionSteps).toMatchObject({
      statements: 2,
      principals: 2,
      conditions: 2,
      conditionValues: 6,
      actionsPerStatement: 1,
    });
    expect(none.tickDeadLetters).toMatchObject({
      statements: 3,
      principals: 3,
      conditions: 4,
      conditionValues: 4,
    });
  });

  it("warns, and synthesizes, past SQS's 10 conditions were each value one (security50-queue-policy-conditions)", () => {
    // auctionSteps has the most senders of its own (five roles): its deny lists the most values.
    const room = QUEUE_POLICY_QUOTAS.conditions - measures().auctionSteps!.conditionValues;
    expect(room).toBe(4);
    const warnings = (principals: readonly string[]) =>
      Annotations.fromStack(
        build({ 'backstop:queueSenderPrincipals': JSON.stringify(principals) }).stack,
      ).findWarning('*', Match.stringLikeRegexp(CONDITION_VALUES_WARNING));
    const fits = Array.from({ length: room }, (_, i) => principal(60, i));
    expect(measures(fits).auctionSteps!.conditionValues).toBe(QUEUE_POLICY_QUOTAS.conditions);
    expect(warnings(fits)).toEqual([]);
    const over = [...fits, principal(60, room)];
    expect(measures(over).auctionSteps!.conditionValues).toBe(QUEUE_POLICY_QUOTAS.conditions + 1);
    // liquidations' senders are fewer: its policy stays within even that reading.
    expect(warnings(over).map((w) => [w.id, w.entry.data])).toEqual([
      [
        expect.stringMatching(/\/auctionStepsQueue$/),
        `queues: the policy of auctionStepsQueue lists 11 condition values (each of the 5 backstop:queueSenderPrincipals is one, in both work queues' deny), over SQS's 10 conditions if each value counts as one: "Amazon SQS policy quotas" does not say what it counts (synth counts 2, a key under an operator each), so AWS may refuse the deploy with OverLimit (rolled back). If it does, list at most 4 (one operator role that the operators assume), or deploy with backstop:queueSendersOnly=false [ack: ${CONDITION_VALUES_WARNING}]`,
      ],
    ]);
  });

  it('says in every warning the room of the work queue with the least, past both work queues (final50a-condition-room)', () => {
    const room = QUEUE_POLICY_QUOTAS.conditions - measures().auctionSteps!.conditionValues;
    // Enough that liquidations' policy, of fewer senders, is past 10 values too: each queue warns.
    const listed = Array.from({ length: QUEUE_POLICY_QUOTAS.conditions }, (_, i) => principal(60, i));
    expect(measures(listed).liquidations!.conditionValues).toBeGreaterThan(QUEUE_POLICY_QUOTAS.conditions);
    const said = Annotations.fromStack(
      build({ 'backstop:queueSenderPrincipals': JSON.stringify(listed) }).stack,
    )
      .findWarning('*', Match.stringLikeRegexp(CONDITION_VALUES_WARNING))
      .map((w) => /list at most (\d+)/.exec(String(w.entry.data))?.[1]);
    // A list cut to a work queue's own room would still warn on the other: one figure, the least.
    expect(said).toEqual([String(room), String(room)]);
  });

  it('refuses a policy of more than 10 keys under its operators, and warns of more than 10 values under fewer', () => {
    // No option adds a key: the stack's own statements alone could, so this is a queue of its own.
    const policyOf = (conditions: Record<string, Record<string, string[]>>) => {
      const stack = new Stack(new App({ outdir: synthDir('backstop-cdk-') }), 'Quotas');
      const queue = new Queue(stack, 'Crafted');
      queue.addToResourcePolicy(
        new PolicyStatement({
          effect: Effect.DENY,
          principals: [new AnyPrincipal()],
          actions: ['sqs:SendMessage'],
          resources: [queue.queueArn],
          conditions,
        }),
      );
      return { stack, queue };
    };
    const values = (n: number) => Array.from({ length: n }, (_, i) => `arn:aws:iam::111122223333:role/r${i}`);
    const keys = (n: number) =>
      Object.fromEntries(Array.from({ length: n }, (_, i) => [`aws:PrincipalTag/t${i}`, ['x']]));
    // 10 keys: within; 11 keys: refused, whatever else is listed.
    expect(() => checkPolicyQuotas(policyOf({ StringNotEquals: keys(10) }).queue, [])).not.toThrow();
    expect(() =>
      checkPolicyQuotas(policyOf({ StringNotEquals: keys(6), StringNotLike: keys(5) }).queue, []),
    ).toThrow(
      new Error(
        `queues: the policy of Crafted would have 11 conditions (each key under each operator counted: SQS does not say what it counts), over SQS's 10 ("Amazon SQS policy quotas"): the deploy would fail; the stack's own statements must shrink`,
      ),
    );
    // 11 values under one key: a warning, the policy kept.
    const { stack, queue } = policyOf({ ArnNotEquals: { 'aws:PrincipalArn': values(11) } });
    checkPolicyQuotas(queue, []);
    expect(
      Annotations.fromStack(stack)
        .findWarning('*', Match.stringLikeRegexp(CONDITION_VALUES_WARNING))
        .map((w) => w.entry.data),
    ).toEqual([
      expect.stringMatching(/^queues: the policy of Crafted lists 11 condition values .* \(synth counts 1, /),
    ]);
  });

  it("takes queueSenderPrincipals up to SQS's 8,192 bytes of policy, and refuses one byte more", () => {
    // auctionSteps has the most senders of its own (five roles): its policy is the longest.
    const base = measures().auctionSteps!.bytes;
    const each = 200;
    let n = Math.floor((QUEUE_POLICY_QUOTAS.bytes - base) / (each + 3));
    let rest = QUEUE_POLICY_QUOTAS.bytes - base - n * (each + 3);
    if (rest < 60) {
      n -= 1;
      rest += each + 3;
    }
    const fits = [...Array.from({ length: n }, (_, i) => principal(each, i)), principal(rest - 3, n)];
    const at = measures(fits);
    expect(at.auctionSteps!.bytes).toBe(QUEUE_POLICY_QUOTAS.bytes);
    expect(Math.max(...Object.values(at).map((m) => m.bytes))).toBe(QUEUE_POLICY_QUOTAS.bytes);
    const over = [...fits.slice(0, -1), principal(rest - 2, n)];
    const characters = over.reduce((sum, p) => sum + p.length, 0).toLocaleString('en-US');
    const room = (QUEUE_POLICY_QUOTAS.bytes - base).toLocaleString('en-US');
    expect(() => measures(over)).toThrow(
      new InfraConfigError(
        `invalid CDK context: backstop:queueSenderPrincipals: with the ${over.length} principals listed (${characters} characters of ARNs, each in both work queues' policies), the policy of auctionStepsQueue would have 8,193 bytes, over SQS's 8,192 ("Amazon SQS policy quotas"): the deploy would fail; they have room for ${room} bytes, each taking its ARN's length and 3: list fewer or shorter (one operator role that the operators assume)`,
      ),
    );
  });

  it('names the work queue the listed principals have least room in, whichever is checked first', () => {
    // Past both work queues' bytes, the refusal is auctionSteps' (the longer policy), not liquidations' (first in
    // QUEUES): listing within liquidations' room would still fail.
    const base = measures();
    expect(base.liquidations!.bytes).toBeLessThan(base.auctionSteps!.bytes);
    const far = Array.from({ length: 60 }, (_, i) => principal(200, i));
    expect(() => measures(far)).toThrow(
      new RegExp(
        `the policy of auctionStepsQueue would have .* they have room for ${(QUEUE_POLICY_QUOTAS.bytes - base.auctionSteps!.bytes).toLocaleString('en-US')} bytes`,
      ),
    );
  });
});

describe('who may invoke the admin function (security49-admin-invokers)', () => {
  const OPERATORS = [
    'arn:aws:iam::111122223333:role/backstop-admin',
    'arn:aws:iam::111122223333:user/treasury',
  ];
  const resourcePolicies = (stack: BackstopStack) =>
    Object.values(Template.fromStack(stack).findResources('AWS::Lambda::ResourcePolicy')).map(
      (r) => r.Properties as { ResourceArn: unknown; PolicyDocument: { Statement: Statement[] } },
    );

  it('leaves invocation to IAM by default', () => {
    expect(resourcePolicies(build().stack)).toEqual([]);
  });

  it('denies lambda:InvokeFunction and lambda:InvokeAsync on admin alone to every principal not listed', () => {
    const { stack } = build({ 'backstop:adminInvokers': OPERATORS.join(',') });
    const admin = { 'Fn::GetAtt': [logicalIdOf(stack, stack.functions.admin), 'Arn'] };
    expect(resourcePolicies(stack)).toEqual([
      {
        ResourceArn: admin,
        PolicyDocument: {
          Version: '2012-10-17',
          Statement: [
            {
              Sid: 'DenyOtherInvokers',
              Effect: 'Deny',
              Principal: { AWS: '*' },
              // The deprecated InvokeAsync API is its own action: InvokeFunction alone let it through
              // (review49-security-invoke-async).
              Action: ['lambda:InvokeAsync', 'lambda:InvokeFunction'],
              Resource: [admin, { 'Fn::Join': ['', [admin, ':*']] }],
              Condition: { ArnNotEquals: { 'aws:PrincipalArn': OPERATORS } },
            },
          ],
        },
      },
    ]);
  });

  it('gives each version and alias of admin the stack defines its own deny, and refuses one added after (security50-admin-qualified)', () => {
    // Lambda reads the policy of the resource called: the function's deny is not said to reach a version's call.
    const { stack } = build();
    const admin = stack.functions.admin;
    const version = new Version(stack, 'AdminV1', { lambda: admin });
    new Alias(stack, 'AdminLive', { aliasName: 'live', version });
    denyOtherInvokers(admin, OPERATORS);
    const arn = { 'Fn::GetAtt': [logicalIdOf(stack, admin), 'Arn'] };
    const ref = (c: Version | Alias) => ({ Ref: logicalIdOf(stack, c) });
    const qualified = [ref(version), ref(stack.node.findChild('AdminLive') as Alias)];
    const policies = resourcePolicies(stack);
    expect(policies.map((p) => p.ResourceArn)).toEqual([arn, ...qualified]);
    expect(policies.map((p) => p.PolicyDocument.Statement[0]!.Resource)).toEqual([
      [arn, { 'Fn::Join': ['', [arn, ':*']] }],
      ...qualified,
    ]);
    for (const p of policies)
      expect(p.PolicyDocument.Statement[0]).toMatchObject({
        Effect: 'Deny',
        Action: ['lambda:InvokeAsync', 'lambda:InvokeFunction'],
        Condition: { ArnNotEquals: { 'aws:PrincipalArn': OPERATORS } },
      });

    // A version kept once replaced (RETAIN) keeps its deny (review50-security-retained-version).
    const kept = build().stack;
    new Version(kept, 'AdminKept', { lambda: kept.functions.admin, removalPolicy: RemovalPolicy.RETAIN });
    denyOtherInvokers(kept.functions.admin, OPERATORS);
    const keptPolicies = Template.fromStack(kept).findResources('AWS::Lambda::ResourcePolicy', {
      Properties: { ResourceArn: { Ref: logicalIdOf(kept, kept.node.findChild('AdminKept') as Version) } },
    });
    expect(Object.values(keptPolicies).map((r) => [r.DeletionPolicy, r.UpdateReplacePolicy])).toEqual([
      ['Retain', 'Retain'],
    ]);

    const late = build().stack;
    denyOtherInvokers(late.functions.admin, OPERATORS);
    new Version(late, 'AdminV2', { lambda: late.functions.admin });
    expect(() => Template.fromStack(late)).toThrow(
      /AdminV2\/Resource \(a version or alias of Admin\) was added after its invokers' deny \(backstop:adminInvokers\), and would be invoked without it/,
    );
  });

  it('is refused for an account id or a wildcard, and on a function with a permission it would replace', () => {
    expect(() => build({ 'backstop:adminInvokers': '111122223333' })).toThrow(
      /backstop:adminInvokers\.0: must be an IAM role's or user's ARN/,
    );
    expect(() => build({ 'backstop:adminInvokers': ['arn:aws:iam::111122223333:role/ops-*'] })).toThrow(
      /adminInvokers/,
    );
    // margin-check has the tick rule's permission: a whole resource policy would take it away.
    const { stack } = build();
    expect(() => denyOtherInvokers(stack.functions.marginCheck, OPERATORS)).toThrow(
      /has a resource permission, which its whole resource policy would replace/,
    );
    expect(stack.functions.marginCheck.node.tryFindChild(INVOKERS_POLICY_ID)).toBeUndefined();
  });
});

describe("the venue's key (backstop:venueSecret)", () => {
  const ARN = 'arn:aws:secretsmanager:eu-west-1:111122223333:secret:backstop/venue-key-a1B2c3';
  const KEY = 'arn:aws:kms:eu-west-1:111122223333:key/0a1b2c3d-4e5f-6789-abcd-ef0123456789';
  /** A template value as text, a Ref as {Name}: an ARN the stack builds from its account and region. */
  const text = (v: unknown): string =>
    typeof v === 'string'
      ? v
      : v && typeof v === 'object' && 'Ref' in v
        ? `{${(v as { Ref: string }).Ref}}`
        : v && typeof v === 'object' && 'Fn::Join' in v
          ? (v as { 'Fn::Join': [string, unknown[]] })['Fn::Join'][1].map(text).join('')
          : JSON.stringify(v);
  /** Per function, its role's statements and its environment; and every IAM statement of the template. */
  function synthesized(project: Project, ours: Record<string, unknown>) {
    const { stack } = buildIn(project, ours);
    const resources = Template.fromStack(stack).toJSON().Resources as Record<string, Resource>;
    const perFunction = Object.fromEntries(
      FUNCTIONS.map((def) => {
        const props = resources[logicalIdOf(stack, stack.functions[def.id])]!.Properties;
        const role = (props.Role as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
        const statements = Object.values(resources)
          .filter(
            (r) =>
              r.Type === 'AWS::IAM::Policy' &&
              (r.Properties.Roles as Array<{ Ref: string }>).some((ref) => ref.Ref === role),
          )
          .flatMap((r) => (r.Properties.PolicyDocument as { Statement: Statement[] }).Statement);
        const env = (props.Environment as { Variables: Record<string, unknown> }).Variables;
        return [def.id, { statements, env }];
      }),
    ) as Record<FunctionId, { statements: Statement[]; env: Record<string, unknown> }>;
    const all = Object.values(resources).flatMap((r) => [
      ...((r.Properties.PolicyDocument as { Statement: Statement[] } | undefined)?.Statement ?? []),
      ...((r.Properties.Policy as { Statement: Statement[] } | undefined)?.Statement ?? []),
      ...(
        (r.Properties.Policies as Array<{ PolicyDocument: { Statement: Statement[] } }> | undefined) ?? []
      ).flatMap((p) => p.PolicyDocument.Statement),
    ]);
    return { resources, perFunction, all };
  }
  const onSecrets = (s: Statement) =>
    asList(s.Action).some((a) => a.startsWith('secretsmanager:') || a.startsWith('kms:'));
  /** Names no secret, whatever cdk.json names. */
  const NONE = { 'backstop:venueSecret': undefined };

  it('a venue that reads no key, without it: no function may read a secret or decrypt with a key, and none is told of one', () => {
    expect(readsVenueKey(KEYLESS_PROJECT.venue)).toBe(false);
    const { perFunction, all } = synthesized(KEYLESS_PROJECT, NONE);
    expect(all.length).toBeGreaterThan(10);
    expect(all.filter(onSecrets)).toEqual([]);
    for (const def of FUNCTIONS) expect(perFunction[def.id].env, def.id).not.toHaveProperty(VENUE_KEY_ENV);
  });

  // venue47-secret-required: an exchange adapter deployed without the setting synthesized clean, and every trader's
  // first read of its key failed (VENUE_KEY_ID is not set): each order unavailable, its slice handed to the auction.
  it('refuses, at synth, a venue that reads a key without it, and grants it the key cdk.json names or -c gives', () => {
    // An adapter beyond KEYLESS_VENUES reads its key from Secrets Manager.
    expect(readsVenueKey(KEYED_PROJECT.venue)).toBe(true);
    expect(() => buildIn(KEYED_PROJECT, NONE)).toThrow(
      /^invalid CDK context: the functions trade on the venue my-exchange \(VENUE, shared\/adapters\/venue\/index\.ts\), which reads its API key from Secrets Manager, and backstop:venueSecret names no secret: .*-c backstop:venueSecret=<its name or ARN>/,
    );
    // cdk.json's name (docs/VENUE.md, step 5), and a -c value over it.
    const named = synthesized(KEYED_PROJECT, {});
    expect(KEYED_PROJECT.context['backstop:venueSecret']).toBe('backstop/my-exchange-key');
    for (const id of VENUE_TRADERS)
      expect(named.perFunction[id].env[VENUE_KEY_ENV]).toBe('backstop/my-exchange-key');
    const { all } = synthesized(KEYED_PROJECT, { 'backstop:venueSecret': ARN });
    expect(all.filter(onSecrets)).toEqual(
      VENUE_TRADERS.map(() => ({ Effect: 'Allow', Action: 'secretsmanager:GetSecretValue', Resource: ARN })),
    );
    // The simulated venue trades on no exchange and reads none.
    expect(KEYLESS_VENUES).toEqual(['mark-following']);
    expect(() => buildIn(KEYLESS_PROJECT, NONE)).not.toThrow();
  });

  // What the setting grants, on both kinds of project: a venue that reads a key, whose cdk.json names a secret
  // already, sees each setting given over it (venue47-infra-tests-keyed).
  for (const project of PROJECTS)
    describe(project.name, () => {
      it("with a secret's ARN: GetSecretValue on that secret alone, to liquidation-consumer and auction alone, who are told it", () => {
        expect(VENUE_TRADERS).toEqual(['liquidationConsumer', 'auction']);
        const { perFunction, all } = synthesized(project, { 'backstop:venueSecret': ARN });
        for (const def of FUNCTIONS) {
          const { statements, env } = perFunction[def.id];
          const trader = VENUE_TRADERS.includes(def.id);
          expect(statements.filter(onSecrets), def.id).toEqual(
            trader ? [{ Effect: 'Allow', Action: 'secretsmanager:GetSecretValue', Resource: ARN }] : [],
          );
          expect(env[VENUE_KEY_ENV], def.id).toBe(trader ? ARN : undefined);
        }
        // Nothing else in the template (a bus or queue policy, another role) speaks of secrets.
        expect(all.filter(onSecrets)).toHaveLength(VENUE_TRADERS.length);
      });

      it("with a secret's name: on that name's secret of the stack's account and region alone", () => {
        const { perFunction, all } = synthesized(project, { 'backstop:venueSecret': 'backstop/venue-key' });
        for (const id of VENUE_TRADERS) {
          const [statement, ...others] = perFunction[id].statements.filter(onSecrets);
          expect(others).toEqual([]);
          expect(statement!.Action).toBe('secretsmanager:GetSecretValue');
          // The six characters Secrets Manager adds to a name, and no other name: not backstop/venue-key-2's.
          expect(text(statement!.Resource)).toBe(
            'arn:{AWS::Partition}:secretsmanager:{AWS::Region}:{AWS::AccountId}:secret:backstop/venue-key-??????',
          );
          // Read by its name (a partial ARN would misread a name ending in a hyphen and six characters).
          expect(perFunction[id].env[VENUE_KEY_ENV]).toBe('backstop/venue-key');
        }
        expect(all.filter(onSecrets)).toHaveLength(VENUE_TRADERS.length);
      });

      it("with the secret's customer-managed key: Decrypt on that key alone, through Secrets Manager, to the two alone", () => {
        const { perFunction, all } = synthesized(project, {
          'backstop:venueSecret': ARN,
          'backstop:venueSecretKmsKey': KEY,
        });
        for (const def of FUNCTIONS) {
          const decrypts = perFunction[def.id].statements.filter((s) =>
            asList(s.Action).some((a) => a.startsWith('kms:')),
          );
          expect(decrypts, def.id).toEqual(
            VENUE_TRADERS.includes(def.id)
              ? [
                  {
                    Effect: 'Allow',
                    Action: 'kms:Decrypt',
                    Resource: KEY,
                    // The secret's region (its ARN's): Secrets Manager decrypts where the secret is.
                    Condition: {
                      StringEquals: { 'kms:ViaService': 'secretsmanager.eu-west-1.amazonaws.com' },
                    },
                  },
                ]
              : [],
          );
        }
        expect(all.filter(onSecrets)).toHaveLength(2 * VENUE_TRADERS.length);
      });

      it("refuses a key of another region than the secret's, at synth", () => {
        // Found reviewing session 46 (review46-venue-kms-region): Secrets Manager decrypts with a key of the secret's
        // region; another region's key was granted, nothing else said so, and every read of the key failed.
        const inRegion = (ours: Record<string, unknown>, region?: string) =>
          buildIn(project, ours, region ? { account: '111122223333', region } : undefined).stack;
        const usKey = 'arn:aws:kms:us-east-1:111122223333:key/0a1b2c3d-4e5f-6789-abcd-ef0123456789';
        // A secret's ARN says its region, whatever the stack's.
        expect(() => inRegion({ 'backstop:venueSecret': ARN, 'backstop:venueSecretKmsKey': usKey })).toThrow(
          /venueSecretKmsKey is a key of us-east-1, and the secret is in eu-west-1/,
        );
        expect(() =>
          inRegion({ 'backstop:venueSecret': ARN, 'backstop:venueSecretKmsKey': KEY }),
        ).not.toThrow();
        // A name is the stack's region's secret: known when the stack has one.
        const byName = { 'backstop:venueSecret': 'backstop/venue-key', 'backstop:venueSecretKmsKey': KEY };
        expect(() => inRegion(byName, 'us-east-1')).toThrow(
          /venueSecretKmsKey is a key of eu-west-1, and the secret is in us-east-1 \(a name: the stack's region\)/,
        );
        expect(() => inRegion(byName, 'eu-west-1')).not.toThrow();
        expect(() => inRegion(byName)).not.toThrow();
      });

      // venue47-kms-via-service-partition: AWS's KMS developer guide (conditions-kms, "Services that support the
      // kms:ViaService condition key") says to use the `.amazonaws.com` suffix of a ViaService name in all partitions,
      // China's included, where the service's endpoint ends in `.amazonaws.com.cn`: the partition's URL suffix would
      // match no request there, and every read of the key would fail its Decrypt. CDK's own Secret.grantRead writes the
      // same.
      it("conditions Decrypt on Secrets Manager's ViaService name in .amazonaws.com in China too, not the partition's URL suffix", () => {
        const cnSecret = 'arn:aws-cn:secretsmanager:cn-north-1:111122223333:secret:backstop/venue-key-a1B2c3';
        const cnKey = 'arn:aws-cn:kms:cn-north-1:111122223333:key/0a1b2c3d-4e5f-6789-abcd-ef0123456789';
        const decryptOf = (ours: Record<string, unknown>, region?: string) => {
          const { stack } = buildIn(project, ours, region ? { account: '111122223333', region } : undefined);
          const statements = Object.values(
            Template.fromStack(stack).findResources('AWS::IAM::Policy'),
          ).flatMap((r) => (r.Properties.PolicyDocument as { Statement: Statement[] }).Statement);
          const decrypts = statements.filter((st) => asList(st.Action).includes('kms:Decrypt'));
          expect(decrypts).toHaveLength(VENUE_TRADERS.length);
          return decrypts.map((st) =>
            text((st.Condition as { StringEquals: Record<string, unknown> }).StringEquals['kms:ViaService']),
          );
        };
        const viaChina = VENUE_TRADERS.map(() => 'secretsmanager.cn-north-1.amazonaws.com');
        // A secret's ARN in China, the stack's region unknown or China's.
        expect(decryptOf({ 'backstop:venueSecret': cnSecret, 'backstop:venueSecretKmsKey': cnKey })).toEqual(
          viaChina,
        );
        expect(
          decryptOf({ 'backstop:venueSecret': cnSecret, 'backstop:venueSecretKmsKey': cnKey }, 'cn-north-1'),
        ).toEqual(viaChina);
        // A name: the stack's region, in a China stack and in an environment-agnostic one (never {AWS::URLSuffix}).
        const byName = { 'backstop:venueSecret': 'backstop/venue-key', 'backstop:venueSecretKmsKey': cnKey };
        expect(decryptOf(byName, 'cn-north-1')).toEqual(viaChina);
        expect(decryptOf(byName)).toEqual(
          VENUE_TRADERS.map(() => 'secretsmanager.{AWS::Region}.amazonaws.com'),
        );
      });

      it('adds that grant and that variable to the stack of a venue that reads no key, and changes nothing else of it', () => {
        // The stack without a secret is a keyless venue's: a venue that reads a key has none (venue47-infra-tests-keyed).
        const plain = synthesized(KEYLESS_PROJECT, NONE).resources;
        const configured = synthesized(project, {
          'backstop:venueSecret': ARN,
          'backstop:venueSecretKmsKey': KEY,
        }).resources;
        // A code asset's key hashes its bundling options, the path of the synth's own risk-configuration module among
        // them.
        for (const r of [...Object.values(plain), ...Object.values(configured)])
          delete (r.Properties.Code as { S3Key?: unknown } | undefined)?.S3Key;
        for (const r of Object.values(configured)) {
          const variables = (r.Properties.Environment as { Variables?: Record<string, unknown> } | undefined)
            ?.Variables;
          if (variables) delete variables[VENUE_KEY_ENV];
          const document = r.Properties.PolicyDocument as { Statement: Statement[] } | undefined;
          if (r.Type === 'AWS::IAM::Policy' && document)
            document.Statement = document.Statement.filter((s) => !onSecrets(s));
        }
        expect(configured).toEqual(plain);
      });
    });
});

// admin51-admin-trail: a fund movement through the admin function journals its invocation's request id; nothing
// recorded who made that invocation (the stack made no trail, DEPLOY.md asked for one of yours).
describe("the admin function's invocation trail", () => {
  const trailsOf = (template: Template) => Object.values(template.findResources('AWS::CloudTrail::Trail'));

  it("records the admin function's Invoke data events alone, its versions' and aliases' too, no management event", () => {
    const { stack } = build();
    const template = Template.fromStack(stack);
    const trails = trailsOf(template);
    expect(trails).toHaveLength(1);
    const trail = trails[0]!;
    const adminArn = { 'Fn::GetAtt': [logicalIdOf(stack, stack.functions.admin), 'Arn'] };
    expect(trail.Properties).toMatchObject({
      TrailName: 'backstop-dev-admin-invokes',
      IsLogging: true,
      IsMultiRegionTrail: false,
      IncludeGlobalServiceEvents: false,
      EnableLogFileValidation: true,
      S3BucketName: { Ref: logicalIdOf(stack, stack.adminTrail!.bucket) },
    });
    // Advanced selectors alone: a basic one (EventSelectors) records management events unless told otherwise.
    expect(trail.Properties.EventSelectors).toBeUndefined();
    const data = [
      { Field: 'eventCategory', Equals: ['Data'] },
      { Field: 'resources.type', Equals: ['AWS::Lambda::Function'] },
    ];
    expect(trail.Properties.AdvancedEventSelectors).toEqual([
      {
        Name: 'admin function invocations',
        FieldSelectors: [...data, { Field: 'resources.ARN', Equals: [adminArn] }],
      },
      {
        Name: 'admin function version and alias invocations',
        FieldSelectors: [
          ...data,
          { Field: 'resources.ARN', StartsWith: [{ 'Fn::Join': ['', [adminArn, ':']] }] },
        ],
      },
    ]);
    // No other function's: margin-check's every tick would be billed.
    const named = JSON.stringify(trail.Properties.AdvancedEventSelectors);
    for (const def of FUNCTIONS.filter((f) => f.id !== 'admin'))
      expect(named).not.toContain(logicalIdOf(stack, stack.functions[def.id]));
  });

  it('writes to an encrypted, TLS-only, non-public, versioned bucket kept by its lifecycle, which only this trail writes', () => {
    const { stack } = build({ 'backstop:adminTrailRetentionDays': '400' });
    const template = Template.fromStack(stack);
    const resources = template.toJSON().Resources as Record<string, Resource & { DependsOn?: string[] }>;
    const bucketId = logicalIdOf(stack, stack.adminTrail!.bucket);
    const bucket = resources[bucketId]!;
    expect(bucket.DeletionPolicy).toBe('Retain');
    expect(bucket.Properties).toMatchObject({
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
      },
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] },
      VersioningConfiguration: { Status: 'Enabled' },
      LifecycleConfiguration: {
        Rules: [
          expect.objectContaining({
            Status: 'Enabled',
            ExpirationInDays: 400,
            NoncurrentVersionExpiration: { NoncurrentDays: 90 },
          }),
        ],
      },
    });
    const [policyId, policy] = Object.entries(resources).find(
      ([, r]) => r.Type === 'AWS::S3::BucketPolicy' && JSON.stringify(r.Properties.Bucket).includes(bucketId),
    )!;
    const statements = (policy.Properties.PolicyDocument as { Statement: Statement[] }).Statement;
    expect(statements.find((st) => st.Effect === 'Deny')).toMatchObject({
      Action: 's3:*',
      Condition: { Bool: { 'aws:SecureTransport': 'false' } },
    });
    const sourceArn = {
      'Fn::Join': [
        '',
        [
          'arn:',
          { Ref: 'AWS::Partition' },
          ':cloudtrail:',
          { Ref: 'AWS::Region' },
          ':',
          { Ref: 'AWS::AccountId' },
          ':trail/backstop-dev-admin-invokes',
        ],
      ],
    };
    const byCloudTrail = statements.filter((st) => st.Effect === 'Allow');
    expect(byCloudTrail.map((st) => st.Action)).toEqual(['s3:GetBucketAcl', 's3:PutObject']);
    for (const st of byCloudTrail) {
      expect(st.Principal).toEqual({ Service: 'cloudtrail.amazonaws.com' });
      expect(
        (st.Condition as { StringEquals: Record<string, unknown> }).StringEquals['aws:SourceArn'],
      ).toEqual(sourceArn);
    }
    // The trail is made once CloudTrail may write (it checks the bucket's policy when the trail is created).
    const [, trail] = Object.entries(resources).find(([, r]) => r.Type === 'AWS::CloudTrail::Trail')!;
    expect(trail.DependsOn).toContain(policyId);
    expect(dependencyCycle(resources)).toEqual([]);
    const outputs = template.toJSON().Outputs as Record<string, { Value: unknown }>;
    expect(outputs[OUTPUT_KEYS.adminTrailBucketName]!.Value).toEqual({ Ref: bucketId });
    expect(outputs[OUTPUT_KEYS.adminTrailName]!.Value).toEqual({
      Ref: logicalIdOf(stack, { node: { defaultChild: stack.adminTrail!.trail } }),
    });
  });

  it('is left out with backstop:adminTrail=false (a trail of the account or organization records it already)', () => {
    const { stack } = build({ 'backstop:adminTrail': 'false' });
    const template = Template.fromStack(stack);
    expect(stack.adminTrail).toBeUndefined();
    template.resourceCountIs('AWS::CloudTrail::Trail', 0);
    template.resourceCountIs('AWS::S3::Bucket', 0);
    const outputs = Object.keys(template.toJSON().Outputs);
    expect(outputs).not.toContain(OUTPUT_KEYS.adminTrailName);
    expect(outputs).not.toContain(OUTPUT_KEYS.adminTrailBucketName);
  });
});

describe('cdk-nag', () => {
  it('synthesizes with AwsSolutions and Serverless checks and no unacknowledged finding', () => {
    const { app } = build({ 'backstop:alarmEmail': 'ops@example.com' }, true);
    const assembly = app.synth();
    const report = JSON.parse(readFileSync(join(assembly.directory, 'validation-report.json'), 'utf8')) as {
      pluginReports: Array<{ summary?: { pluginName?: string }; violations?: unknown[] }>;
    };
    const findings = report.pluginReports.flatMap((r) => r.violations ?? []);
    expect(findings).toEqual([]);
  });

  it('finds nothing in a stack that reads a venue key by name, encrypted with its own key', () => {
    const { app } = build(
      {
        'backstop:venueSecret': 'backstop/venue-key',
        'backstop:venueSecretKmsKey':
          'arn:aws:kms:us-east-1:111122223333:key/0a1b2c3d-4e5f-6789-abcd-ef0123456789',
      },
      true,
    );
    const report = JSON.parse(
      readFileSync(join(app.synth().directory, 'validation-report.json'), 'utf8'),
    ) as { pluginReports: Array<{ violations?: unknown[] }> };
    expect(report.pluginReports.flatMap((r) => r.violations ?? [])).toEqual([]);
  });

  it('finds nothing in a stack that lists feed principals, queue senders and admin invokers', () => {
    const { app } = build(
      {
        'backstop:feedPrincipals': 'arn:aws:iam::444455556666:role/price-feed',
        'backstop:queueSenderPrincipals': 'arn:aws:iam::111122223333:role/backstop-redrive',
        'backstop:adminInvokers': 'arn:aws:iam::111122223333:role/backstop-admin',
      },
      true,
    );
    const report = JSON.parse(
      readFileSync(join(app.synth().directory, 'validation-report.json'), 'utf8'),
    ) as { pluginReports: Array<{ violations?: unknown[] }> };
    expect(report.pluginReports.flatMap((r) => r.violations ?? [])).toEqual([]);
  });

  it("synthesizes past SQS's conditions were each value one: a warning, neither a finding nor a failure (security50-queue-policy-conditions)", () => {
    const senders = Array.from(
      { length: 5 },
      (_, i) => `arn:aws:iam::111122223333:role/backstop-operator-${i}`,
    );
    const { app, stack } = build({ 'backstop:queueSenderPrincipals': JSON.stringify(senders) }, true);
    const assembly = app.synth();
    const report = JSON.parse(readFileSync(join(assembly.directory, 'validation-report.json'), 'utf8')) as {
      pluginReports: Array<{ violations?: unknown[] }>;
    };
    expect(report.pluginReports.flatMap((r) => r.violations ?? [])).toEqual([]);
    const messages = assembly.getStackArtifact(stack.artifactId).messages;
    expect(
      messages.filter((m) => String(m.entry.data).includes(CONDITION_VALUES_WARNING)).map((m) => m.level),
    ).toEqual(['warning']);
    // The default config: no such warning.
    const plain = build({}, true).app.synth();
    expect(plain.getStackArtifact(stack.artifactId).messages.filter((m) => m.level !== 'info')).toEqual([]);
  });

  it('fails synthesis on an unacknowledged finding (the checks are wired)', () => {
    const app = new App({ outdir: synthDir('backstop-nag-') });
    new Queue(new Stack(app, 'Bare'), 'PlainQueue');
    addNagChecks(app);
    expect(() => app.synth()).toThrow(/AwsSolutions-SQS3|AwsSolutions-SQS4/);
  });
});

/** A risk configuration of `count` markets of the defaults' size. */
const withMarkets = (count: number) => ({
  'backstop:riskConfig': JSON.stringify({
    ...DEFAULT_RISK_CONFIG_INPUT,
    markets: Array.from({ length: count }, (_, i) => ({
      ...DEFAULT_RISK_CONFIG_INPUT.markets[0],
      symbol: `M${i}-USD`,
    })),
  }),
});

describe('the dashboard of many markets', () => {
  // Found by an operator's walk of 40 markets (session 40): every alarm in one status widget, one per market among
  // them; CloudWatch's alarm widget holds at most 100, which 49 markets passed.
  it('shows every alarm once, the feeds apart, in widgets of at most 100', () => {
    const { stack } = build(withMarkets(150));
    const template = Template.fromStack(stack);
    const alarms = Object.keys(template.findResources('AWS::CloudWatch::Alarm'));
    const dashboard = Object.values(template.findResources('AWS::CloudWatch::Dashboard'))[0]!.Properties;
    // Tokens become their logical ids: each alarm widget lists its alarms' ARNs as { Fn::GetAtt: [id, Arn] }.
    const parts = dashboard.DashboardBody['Fn::Join'][1] as unknown[];
    const text = parts
      .map((p) =>
        typeof p === 'string' ? p : ((p as { 'Fn::GetAtt'?: string[] })['Fn::GetAtt']?.[0] ?? 'TOKEN'),
      )
      .join('');
    const body = JSON.parse(text) as {
      widgets: Array<{ type: string; properties: { title?: string; alarms?: string[] } }>;
    };
    const widgets = body.widgets.filter((w) => w.type === 'alarm');
    for (const w of widgets) expect(w.properties.alarms!.length, w.properties.title).toBeLessThanOrEqual(100);
    const shown = widgets.flatMap((w) => w.properties.alarms!);
    expect(shown.sort()).toEqual([...alarms].sort());
    const feeds = widgets.filter((w) => w.properties.title?.startsWith('Tick feeds'));
    expect(feeds.map((w) => w.properties.title)).toEqual([
      'Tick feeds (one alarm per market), 1 of 2',
      'Tick feeds (one alarm per market), 2 of 2',
    ]);
    expect(
      feeds.flatMap((w) => w.properties.alarms!).every((id) => id.startsWith('MonitoringTickFeedM')),
    ).toBe(true);
  });
});

describe("functions' environment size, as deployed", () => {
  const sizes = (stack: BackstopStack, config: ReturnType<typeof loadConfig>) => {
    const env = functionEnvironment({ config, projectRoot, ...stack });
    const atSynth = Object.entries(env).reduce((n, [k, v]) => n + k.length + v.length, 0);
    return { atSynth, deployed: deployedEnvironmentBytes(stack, env, stack) };
  };

  // Found by an audit of AWS limits in session 39: names and values were summed, so six markets passed synth and
  // failed the deploy (Lambda measures the variables as one JSON object, quotes escaped).
  it('measures the variables as Lambda does: one JSON object, in UTF-8 bytes', () => {
    const { stack } = build();
    expect(deployedEnvironmentBytes(stack, { A: 'b' }, stack)).toBe('{"A":"b"}'.length);
    expect(deployedEnvironmentBytes(stack, { RISK_CONFIG: '{"x":"é"}' }, stack)).toBe(
      Buffer.byteLength(JSON.stringify({ RISK_CONFIG: '{"x":"é"}' })),
    );
    expect(deployedEnvironmentBytes(stack, { RISK_CONFIG: '{"x":1}' }, stack)).toBe(
      '{"RISK_CONFIG":"{\\"x\\":1}"}'.length,
    );
  });

  it('counts generated names and URLs at their deployed length, not as synth tokens', () => {
    const { stack, config } = build();
    const { atSynth, deployed } = sizes(stack, config);
    // Six table names, three queue URLs and the bus name: tokens of about 20 characters at synth.
    expect(deployed - atSynth).toBeGreaterThan(400);
    expect(deployed).toBeLessThanOrEqual(4096);
  });

  it('refuses at synth an environment that would not fit once deployed, naming its largest variable', () => {
    // The risk configuration is in the code; what still grows is POSITION_INDEX_SHARDS, about 16 bytes a market
    // named: some 180 sharded markets fit.
    const sharded = (count: number) => ({
      ...withMarkets(count),
      'backstop:positionIndexShards': JSON.stringify(
        Object.fromEntries(Array.from({ length: count }, (_, i) => [`M${i}-USD`, 16])),
      ),
    });
    const { stack, config } = build(sharded(40));
    expect(sizes(stack, config).deployed).toBeLessThanOrEqual(4096);
    expect(() => build(sharded(250))).toThrow(
      /once deployed, above Lambda's 4096: its largest variable is POSITION_INDEX_SHARDS/,
    );
  });
});

// Found in session 40: the risk configuration rode every function's environment (4 KB), so synth refused a sixth
// market of the defaults' size and an exchange of 30-50 markets could not deploy.
describe('a deployment of 40 markets', () => {
  const markets = 40;
  type FunctionResource = {
    Type: string;
    Metadata: Record<string, string>;
    Properties: Record<string, unknown>;
  };
  const functionsOf = (stack: BackstopStack) =>
    Object.entries(Template.fromStack(stack).toJSON().Resources as Record<string, FunctionResource>).filter(
      ([, r]) => r.Type === 'AWS::Lambda::Function',
    );
  // Bundled for real (esbuild on the host, as cdk synth does): the configuration is in the code.
  const bundled = (count: number) =>
    build({
      ...withMarkets(count),
      'aws:cdk:bundling-stacks': ['**'],
      'aws:cdk:enable-asset-metadata': true,
    });
  let built: ReturnType<typeof build>;
  beforeAll(() => {
    built = bundled(markets);
  }, 120_000);

  it("builds the whole configuration into every function's code", () => {
    const { app, stack, config } = built;
    expect(config.markets).toHaveLength(markets);
    expect(config.riskConfigJson.length).toBeGreaterThan(4 * 4096);
    const functions = functionsOf(stack);
    expect(functions).toHaveLength(FUNCTIONS.length);
    for (const [id, fn] of functions) {
      const bundle = readFileSync(join(app.outdir, fn.Metadata['aws:asset:path']!, 'index.mjs'), 'utf8');
      // esbuild prints a string literal as it is when it holds no quote of the kind it picks (this JSON has none).
      expect(bundle.includes(config.riskConfigJson), `${id} carries the configuration`).toBe(true);
    }
  });

  it('keeps every environment under 4 KB as deployed, saying where the configuration is', () => {
    // This project's (bundled), and each kind of project's: a venue key's id is one more variable of the traders'
    // (venue47-infra-tests-keyed).
    for (const [name, { stack, config }] of [
      ['this project', built] as const,
      ...PROJECTS.map((p) => [p.name, buildIn(p, withMarkets(markets))] as const),
    ]) {
      const props = { config, projectRoot, ...stack };
      const env = functionEnvironment(props);
      expect(env[RISK_CONFIG_ENV], name).toBe(RISK_CONFIG_BUNDLED);
      // liquidation-watch's has the dead-letter queues' URLs besides (review45-dlq-watch-env).
      expect(Object.keys(ownEnvironment(props, watchDef)).length, name).toBeGreaterThan(0);
      const resources = Template.fromStack(stack).toJSON().Resources as Record<string, FunctionResource>;
      for (const def of FUNCTIONS) {
        const at = `${name}: ${def.id}`;
        const own = { ...env, ...ownEnvironment(props, def) };
        expect(deployedEnvironmentBytes(stack, own, stack), at).toBeLessThanOrEqual(4096);
        const fn = resources[logicalIdOf(stack, stack.functions[def.id])]!;
        const variables = (fn.Properties.Environment as { Variables: Record<string, unknown> }).Variables;
        expect(Object.keys(variables).sort(), at).toEqual(Object.keys(own).sort());
        expect(variables[RISK_CONFIG_ENV], at).toBe(RISK_CONFIG_BUNDLED);
        // A trader is told of the key exactly when a secret is named.
        expect(variables[VENUE_KEY_ENV], at).toBe(
          VENUE_TRADERS.includes(def.id) ? config.venueSecret : undefined,
        );
      }
    }
  });

  it('gives a changed configuration new code: a change is a deploy', () => {
    const assets = (stack: BackstopStack) =>
      functionsOf(stack).map(([, fn]) => fn.Metadata['aws:asset:path']);
    const before = assets(built.stack);
    const after = assets(bundled(markets - 1).stack);
    expect(after).toHaveLength(before.length);
    for (const [i, asset] of after.entries()) expect(asset).not.toBe(before[i]);
  }, 120_000);
});

describe("the local stack's function environment", () => {
  const names = fakeResourceNames();
  const local = (settings?: Parameters<typeof localFunctionEnvironment>[4], stage = 'dev') =>
    localFunctionEnvironment(stage, names, 'http://localhost:5000', 'us-east-1', settings);

  it("names the Powertools service and namespace as the stack's functions do", () => {
    const { stack, config } = build();
    const onAws = functionEnvironment({ config, projectRoot, ...stack });
    for (const key of ['POWERTOOLS_SERVICE_NAME', 'POWERTOOLS_METRICS_NAMESPACE'])
      expect(local()[key], key).toBe(onAws[key]);
    expect(local(undefined, 'demo-1').POWERTOOLS_SERVICE_NAME).toBe('backstop-demo-1');
  });

  it("gives the functions every queue's URL, dead-letter queues too, under the stack's names (dlq45-depth-gauge)", () => {
    const { stack, config } = build();
    // The runner's functions share one environment: liquidation-watch's on AWS, the dead-letter queues' URLs with it
    // (review45-dlq-watch-env).
    const props = { config, projectRoot, ...stack };
    const onAws = Object.keys({ ...functionEnvironment(props), ...ownEnvironment(props, watchDef) }).filter(
      (k) => k.startsWith('QUEUE_'),
    );
    const env = local();
    expect(
      Object.keys(env)
        .filter((k) => k.startsWith('QUEUE_'))
        .sort(),
    ).toEqual(onAws.sort());
    expect(deadLetteredQueues().map((q) => env[deadLetterQueueEnv(q.id)])).toEqual([
      'http://local/liquidations-dlq',
      'http://local/auctionSteps-dlq',
      'http://local/tickDeadLetters',
    ]);
  });

  it('sets the optional settings it is given, as the stack does from its context', () => {
    const env = local({ marginCheckMaxPositions: 2, positionIndexShards: { 'ETH-USD': 4 } });
    expect(env[MAX_POSITIONS_ENV]).toBe('2');
    expect(JSON.parse(env[POSITION_INDEX_SHARDS_ENV]!)).toEqual({ 'ETH-USD': 4 });
    expect(env[RISK_CONFIG_ENV]).toBeUndefined();
    expect(env[VENUE_KEY_ENV]).toBeUndefined();
  });

  // venue47-local-key: the local stack never set VENUE_KEY_ID, so an exchange adapter run on it failed its key's read.
  it("names the venue key's secret in VENUE_KEY_ID as the stack names backstop:venueSecret to its traders", () => {
    const secret = localVenueSecretName('dev');
    expect(secret).toBe(physicalName('dev', 'venue-key'));
    const env = local({ venueSecret: secret });
    expect(env[VENUE_KEY_ENV]).toBe('backstop-dev-venue-key');
    // The variable the stack gives its traders for a secret's name, and only that besides.
    const { stack, config } = build({ 'backstop:venueSecret': secret });
    const props = { config, projectRoot, ...stack };
    const trader = {
      ...functionEnvironment(props),
      ...ownEnvironment(props, FUNCTIONS.find((f) => f.id === VENUE_TRADERS[0])!),
    };
    expect(trader[VENUE_KEY_ENV]).toBe(env[VENUE_KEY_ENV]);
    expect(Object.keys(env).filter((k) => !Object.keys(local()).includes(k))).toEqual([VENUE_KEY_ENV]);
  });

  it('gives code run from source a risk configuration of any size as JSON, which it reads', () => {
    const riskConfig = JSON.parse(withMarkets(40)['backstop:riskConfig']) as RiskConfigInput;
    const env = local({ riskConfig });
    expect(riskConfigFromEnv(env, undefined).markets.map((m) => m.symbol)).toEqual(
      riskConfig.markets.map((m) => m.symbol),
    );
  });

  it('clears every optional variable a shell or an earlier stack left before it applies its own', () => {
    expect(optionalEnvNames().sort()).toEqual(
      [
        RISK_CONFIG_ENV,
        POSITION_INDEX_SHARDS_ENV,
        MAX_POSITIONS_ENV,
        // A shell's VENUE_KEY_ID, or an earlier stack's, named a secret this stack never stored (venue47-local-key).
        VENUE_KEY_ENV,
        maxReceivesEnv('liquidations'),
        maxReceivesEnv('auctionSteps'),
      ].sort(),
    );
    const left = Object.fromEntries(optionalEnvNames().map((name) => [name, 'left over']));
    const processEnv: NodeJS.ProcessEnv = { ...left, PATH: '/usr/bin' };
    const env = local();
    applyFunctionEnvironment(env, processEnv);
    expect(processEnv).toEqual({ PATH: '/usr/bin', ...env });
  });
});
