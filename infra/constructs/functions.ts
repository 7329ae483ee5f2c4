import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  ArnFormat,
  type CfnElement,
  Duration,
  RemovalPolicy,
  Stack,
  Stage,
  Token,
  Validations,
} from 'aws-cdk-lib';
import type { Table } from 'aws-cdk-lib/aws-dynamodb';
import { type EventBus, Rule, Schedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import {
  AnyPrincipal,
  Effect,
  PolicyDocument,
  PolicyStatement,
  Role,
  ServicePrincipal,
} from 'aws-cdk-lib/aws-iam';
import {
  Architecture,
  CfnAlias,
  CfnPermission,
  CfnResourcePolicy,
  CfnVersion,
  RecursiveLoop,
  Runtime,
  Tracing,
} from 'aws-cdk-lib/aws-lambda';
import { SqsDestination } from 'aws-cdk-lib/aws-lambda-destinations';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { writeFileAtomic } from '../../shared/local/atomic-file.ts';
import { METRICS_NAMESPACE, metricsService } from '../../shared/metrics.ts';
import {
  asyncRetriesWithin,
  BUNDLED_RISK_CONFIG_GLOBAL,
  chainsThroughItsOwnQueue,
  deadLetteredQueues,
  deadLetterQueueEnv,
  FUNCTIONS,
  type FunctionDef,
  type FunctionId,
  type Grant,
  MARGIN_CHECK_PATTERN,
  MAX_POSITIONS_ENV,
  maxReceivesEnv,
  POSITION_INDEX_SHARDS_ENV,
  QUEUES,
  type QueueId,
  queueEnv,
  RISK_CONFIG_BUNDLED,
  RISK_CONFIG_ENV,
  readsDeadLetters,
  TABLES,
  type TableId,
  TICK_BUS_ENV,
  type Trigger,
  tableEnv,
  VENUE_KEY_ENV,
  VENUE_TRADERS,
} from '../../shared/topology.ts';
import { CONTEXT_PREFIX, type InfraConfig, InfraConfigError, maxReceiveCount } from '../config.ts';
import type { QueuePair } from './queues.ts';
import { cdkEventPattern } from './tick-bus.ts';

/** Lambda's limit on the total size of a function's environment variables. */
const MAX_ENVIRONMENT_BYTES = 4096;
/** `https://sqs.<region>.amazonaws.com/<account>/`: the longest region (14) and a 12-digit account. */
const SQS_URL_PREFIX_BYTES = 54;

/**
 * The environment's size as deployed, measured as Lambda measures it: the variables as one JSON object, in
 * UTF-8 bytes (its error quotes the "String measured: {\"KEY\":\"value\",...}"): braces, quotes, colons and
 * commas count, and every quote inside a JSON value counts twice, escaped. (Summing names and values, as
 * before session 39, passed six markets that the deploy refused, when RISK_CONFIG held the risk
 * configuration.) Names and URLs are tokens at synth (about 20 characters) and CloudFormation generates them
 * at deploy as `<stack>-<logical id>-<suffix>` (limited to the resource's maximum): each is counted at that
 * length, so a configuration that would pass synth and fail the deploy is refused at synth.
 */
export function deployedEnvironmentBytes(
  scope: Construct,
  env: Record<string, string>,
  props: Pick<FunctionsProps, 'tables' | 'queues' | 'tickBus'>,
): number {
  const stack = Stack.of(scope);
  const generated = (resource: Construct, limit: number): number =>
    Math.min(
      limit,
      stack.stackName.length + stack.getLogicalId(resource.node.defaultChild as CfnElement).length + 15,
    );
  const deployed: Record<string, number> = {};
  for (const t of TABLES) deployed[props.tables[t.id].tableName] = generated(props.tables[t.id], 255);
  for (const q of QUEUES) {
    const { queue, deadLetter } = props.queues[q.id];
    deployed[queue.queueUrl] = SQS_URL_PREFIX_BYTES + generated(queue, 80);
    if (deadLetter) deployed[deadLetter.queueUrl] = SQS_URL_PREFIX_BYTES + generated(deadLetter, 80);
  }
  deployed[props.tickBus.eventBusName] = generated(props.tickBus, 256);
  // A generated name is plain ASCII with nothing to escape: a run of its length stands for it.
  const asDeployed = Object.fromEntries(
    Object.entries(env).map(([k, v]) => [k, Token.isUnresolved(v) ? 'x'.repeat(deployed[v] ?? 256) : v]),
  );
  return Buffer.byteLength(JSON.stringify(asDeployed), 'utf8');
}

/**
 * esbuild on the host (never Docker), one ESM file per function. The banner gives ESM bundles a
 * `require`, which esbuild's CJS interop calls for the CommonJS dependencies it inlines.
 */
const bundling = {
  format: OutputFormat.ESM,
  target: 'node24',
  mainFields: ['module', 'main'],
  minify: true,
  sourceMap: true,
  sourcesContent: false,
  forceDockerBundling: false,
  // The nodejs24.x runtime ships AWS SDK v3; not bundling it keeps the package and cold start small.
  externalModules: ['@aws-sdk/*'],
  banner: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
};

/**
 * The risk configuration travels in the functions' code, not in their environment (4 KB: about five markets).
 * Synth writes its JSON as a module that esbuild injects as BUNDLED_RISK_CONFIG_GLOBAL, so any number of markets
 * fit, the configuration is versioned with the code that runs it (a change is a deploy, and code and rules change
 * in one deploy: the code of one version meeting the other's environment for a moment fails its cold start), and a cold start reads only
 * its own package. Not esbuild's `define`: its value rides the command line (128 KB an argument on Linux, 32 KB
 * on Windows). Not an SSM parameter: an IAM grant, a call at every cold start and a 4/8 KB limit of its own.
 * The file is named by its content (a bundle's asset hash and CDK's asset cache follow the content), in the
 * cloud assembly's directory beside the templates.
 */
export function writeRiskConfigModule(scope: Construct, riskConfigJson: string): string {
  const dir = Stage.of(scope)?.outdir;
  if (!dir) throw new Error('functions: no cloud assembly directory to write the risk configuration to');
  mkdirSync(dir, { recursive: true });
  const hash = createHash('sha256').update(riskConfigJson).digest('hex').slice(0, 16);
  const file = join(dir, `risk-config-${hash}.mjs`);
  // Written aside and renamed: a synth running beside this one never bundles a half-written module.
  writeFileAtomic(file, `export const ${BUNDLED_RISK_CONFIG_GLOBAL} = ${JSON.stringify(riskConfigJson)};\n`);
  return file;
}

export interface FunctionsProps {
  readonly config: InfraConfig;
  readonly projectRoot: string;
  readonly tables: Record<TableId, Table>;
  readonly queues: Record<QueueId, QueuePair>;
  readonly tickBus: EventBus;
}

const pascal = (id: string): string => id.charAt(0).toUpperCase() + id.slice(1);

/**
 * Every function gets every resource name the adapter bundle reads: one environment shape for it. Names are not access.
 * A function's own additions: ownEnvironment.
 */
export function functionEnvironment(props: FunctionsProps): Record<string, string> {
  const env: Record<string, string> = {
    POWERTOOLS_SERVICE_NAME: metricsService(props.config.stage),
    POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
    POWERTOOLS_LOG_LEVEL: props.config.logLevel,
    // X-Ray keeps no handler's answer: admin's refusals name a stored position's owner and terms.
    POWERTOOLS_TRACER_CAPTURE_RESPONSE: 'false',
    NODE_OPTIONS: '--enable-source-maps',
    [TICK_BUS_ENV]: props.tickBus.eventBusName,
    // The configuration itself is in the code (writeRiskConfigModule): this says so, to the runtime and an operator.
    [RISK_CONFIG_ENV]: RISK_CONFIG_BUNDLED,
    ...(Object.keys(props.config.positionIndexShards).length > 0
      ? { [POSITION_INDEX_SHARDS_ENV]: JSON.stringify(props.config.positionIndexShards) }
      : {}),
    ...(props.config.marginCheckMaxPositions === undefined
      ? {}
      : { [MAX_POSITIONS_ENV]: String(props.config.marginCheckMaxPositions) }),
  };
  for (const t of TABLES) env[tableEnv(t.id)] = props.tables[t.id].tableName;
  for (const q of QUEUES) {
    env[queueEnv(q.id)] = props.queues[q.id].queue.queueUrl;
    const receives = maxReceiveCount(props.config, q.id);
    if (receives !== undefined) env[maxReceivesEnv(q.id)] = String(receives);
  }
  return env;
}

/**
 * What `def` adds to functionEnvironment: the URLs of the queues that keep dead letters, for the function granted their
 * depth alone (readsDeadLetters: liquidation-watch's DeadLetters, dlq45-depth-gauge). Not every function's: each
 * would spend some 300 bytes of its 4 KB on them, and its cold start would need them (review45-dlq-watch-env).
 */
export function ownEnvironment(props: FunctionsProps, def: FunctionDef): Record<string, string> {
  const venueSecret = props.config.venueSecret;
  return {
    ...(readsDeadLetters(def)
      ? Object.fromEntries(
          deadLetteredQueues().map((q) => [
            deadLetterQueueEnv(q.id),
            deadLetterKeeper(props, q.id)!.queueUrl,
          ]),
        )
      : {}),
    // The id as given (an ARN, or a name: read by name, never as a partial ARN a name ending in -xxxxxx would defeat).
    ...(venueSecret !== undefined && VENUE_TRADERS.includes(def.id) ? { [VENUE_KEY_ENV]: venueSecret } : {}),
  };
}

/**
 * What reading the venue's key takes (backstop:venueSecret), granted to VENUE_TRADERS alone: GetSecretValue on that
 * one secret (a name: its ARN with the six characters Secrets Manager adds, `-??????`, which matches no other name's),
 * and Decrypt on its customer-managed key, when it has one, through Secrets Manager only.
 */
export function venueKeyStatements(scope: Construct, config: InfraConfig): PolicyStatement[] {
  const secret = config.venueSecret;
  if (secret === undefined) return [];
  const stack = Stack.of(scope);
  const isArn = secret.startsWith('arn:');
  const resource = isArn
    ? secret
    : stack.formatArn({
        service: 'secretsmanager',
        resource: 'secret',
        resourceName: `${secret}-??????`,
        arnFormat: ArnFormat.COLON_RESOURCE_NAME,
      });
  const statements = [
    new PolicyStatement({ actions: ['secretsmanager:GetSecretValue'], resources: [resource] }),
  ];
  if (config.venueSecretKmsKey !== undefined) {
    const region = isArn ? secret.split(':')[3]! : stack.region;
    // Secrets Manager decrypts with a key of the secret's own region: another's grant opens nothing, and every read
    // would fail (known here for an ARN, or a name in a stack with a region; an environment-agnostic synth cannot tell).
    const keyRegion = config.venueSecretKmsKey.split(':')[3];
    if (!Token.isUnresolved(region) && keyRegion !== region)
      throw new InfraConfigError(
        `invalid CDK context: ${CONTEXT_PREFIX}venueSecretKmsKey is a key of ${keyRegion}, and the secret is in ${region}${isArn ? '' : " (a name: the stack's region)"}: Secrets Manager decrypts a secret with a key of its own region; name that region's key (a multi-Region key's replica there)`,
      );
    statements.push(
      // `.amazonaws.com` in every partition, China's included (not the partition's URL suffix): AWS's KMS developer
      // guide, conditions-kms ("Services that support the kms:ViaService condition key"); docs/VENUE.md.
      new PolicyStatement({
        actions: ['kms:Decrypt'],
        resources: [config.venueSecretKmsKey],
        conditions: { StringEquals: { 'kms:ViaService': `secretsmanager.${region}.amazonaws.com` } },
      }),
    );
  }
  return statements;
}

/** The queue that keeps `id`'s dead letters: its dead-letter queue, or a sink itself (none: deadLetteredQueues). */
function deadLetterKeeper(props: FunctionsProps, id: QueueId): QueuePair['queue'] | undefined {
  const pair = props.queues[id];
  return deadLetteredQueues().some((q) => q.id === id) ? (pair.deadLetter ?? pair.queue) : undefined;
}

/**
 * A table write: puts, updates and a transaction's condition checks. No function deletes an item, so none may: CDK's
 * write grants add DeleteItem and BatchWriteItem (which deletes too), and the ledger's journal is append-only. No
 * update of a table the topology says is written by puts alone (the ledger: review48-security-ledger-update).
 */
export const tableWriteActions = (id: TableId): string[] => [
  'dynamodb:PutItem',
  ...(TABLES.find((t) => t.id === id)?.putsOnly ? [] : ['dynamodb:UpdateItem']),
  'dynamodb:ConditionCheckItem',
];

/**
 * A table read: by key and by index. CDK's read grants add Scan (a whole table, the book or every liquidation, read
 * by a function that only Gets and Queries it), DescribeTable and the stream reads; Scan only where the topology says
 * the table is read by one (security48-read-scan).
 */
export const tableReadActions = (id: TableId): string[] => [
  'dynamodb:GetItem',
  'dynamodb:BatchGetItem',
  'dynamodb:Query',
  'dynamodb:ConditionCheckItem',
  ...(TABLES.find((t) => t.id === id)?.scanned ? ['dynamodb:Scan'] : []),
];

function applyGrant(fn: NodejsFunction, grant: Grant, props: FunctionsProps, owner: FunctionId): void {
  if (grant.table) {
    const table = props.tables[grant.table];
    if (grant.keysBeginWith !== undefined) {
      if (grant.access !== 'write')
        throw new Error(`topology: ${owner}: keysBeginWith applies to writes only`);
      fn.addToRolePolicy(
        new PolicyStatement({
          // Items of its own, written whole: nothing else of the table.
          actions: ['dynamodb:PutItem'],
          resources: [table.tableArn],
          conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [`${grant.keysBeginWith}*`] } },
        }),
      );
    } else if (grant.attributes !== undefined) {
      if (grant.access !== 'write') throw new Error(`topology: ${owner}: attributes applies to writes only`);
      fn.addToRolePolicy(
        new PolicyStatement({
          // Some attributes of the table's items, by UpdateItem (a Put writes every attribute): those named, the key
          // among them, written or read by a condition, and none of the item answered (ALL_OLD, ALL_NEW would be).
          actions: ['dynamodb:UpdateItem'],
          resources: [table.tableArn],
          conditions: {
            'ForAllValues:StringEquals': { 'dynamodb:Attributes': [...grant.attributes] },
            StringEqualsIfExists: { 'dynamodb:ReturnValues': ['NONE'] },
          },
        }),
      );
    } else if (grant.access === 'read') table.grant(fn, ...tableReadActions(grant.table));
    else if (grant.access === 'write') table.grant(fn, ...tableWriteActions(grant.table));
    else if (grant.access === 'readWrite') {
      table.grant(fn, ...tableReadActions(grant.table));
      table.grant(fn, ...tableWriteActions(grant.table));
    } else
      throw new Error(`topology: ${owner}: access ${grant.access} does not apply to table ${grant.table}`);
  } else if (grant.queue) {
    const queue = props.queues[grant.queue].queue;
    if (grant.access === 'send') queue.grantSendMessages(fn);
    else if (grant.access === 'consume') queue.grantConsumeMessages(fn);
    else throw new Error(`topology: ${owner}: access ${grant.access} does not apply to queue ${grant.queue}`);
  } else if (grant.deadLetters) {
    // What it holds (GetQueueAttributes) and nothing else: no message is received, sent or deleted.
    const keeper = deadLetterKeeper(props, grant.deadLetters);
    if (grant.access !== 'depth' || !keeper)
      throw new Error(
        `topology: ${owner}: access ${grant.access} does not apply to dead letters of ${grant.deadLetters}`,
      );
    keeper.grant(fn, 'sqs:GetQueueAttributes');
  } else if (grant.bus) {
    if (grant.access === 'put') props.tickBus.grantPutEventsTo(fn);
    else throw new Error(`topology: ${owner}: access ${grant.access} does not apply to bus ${grant.bus}`);
  } else {
    throw new Error(`topology: ${owner}: a grant names no table, queue, dead letters or bus`);
  }
}

/**
 * The tick rule: PriceTick events from the feed invoke margin-check. EventBridge retries delivery up to
 * tickRetryAttempts times within tickMaxEventAgeSeconds, then puts the event on tickDeadLetters. Lambda then
 * invokes asynchronously: a tick whose handler still throws after Lambda's retries also lands on
 * tickDeadLetters (on-failure destination), so no tick is dropped silently.
 * A tick older than the market's maxTickAgeSeconds is stale anyway; the age cap keeps retries short.
 */
/** Construct id of the tick rule in the stack (its metrics alarm in Monitoring). */
export const TICK_RULE_ID = 'PriceTickRule';

function wireTickRule(
  scope: Construct,
  fn: NodejsFunction,
  trigger: Extract<Trigger, { kind: 'tickRule' }>,
  props: FunctionsProps,
): void {
  const { config } = props;
  const deadLetters = props.queues[trigger.deadLetters].queue;
  const maxEventAge = Duration.seconds(config.tickMaxEventAgeSeconds);
  new Rule(scope, TICK_RULE_ID, {
    eventBus: props.tickBus,
    description: 'PriceTick events (and margin-check continuations) to margin-check',
    // An archive replays only into its own bus: the pattern keeps replayed ticks from the live margin check.
    eventPattern: cdkEventPattern(MARGIN_CHECK_PATTERN),
    targets: [
      new LambdaFunction(fn, {
        deadLetterQueue: deadLetters,
        maxEventAge,
        retryAttempts: config.tickRetryAttempts,
      }),
    ],
  });
  fn.configureAsyncInvoke({
    onFailure: new SqsDestination(deadLetters),
    maxEventAge,
    retryAttempts: asyncRetriesWithin(config.tickMaxEventAgeSeconds),
  });
}

function wireTrigger(scope: Construct, def: FunctionDef, fn: NodejsFunction, props: FunctionsProps): void {
  const trigger = def.trigger;
  switch (trigger.kind) {
    case 'tickRule':
      wireTickRule(scope, fn, trigger, props);
      return;
    case 'queue':
      // Partial batch responses: one failed record is retried alone instead of the whole batch.
      fn.addEventSource(
        new SqsEventSource(props.queues[trigger.queue].queue, {
          batchSize: trigger.batchSize,
          ...(trigger.batchWindowSeconds > 0
            ? { maxBatchingWindow: Duration.seconds(trigger.batchWindowSeconds) }
            : {}),
          maxConcurrency: trigger.maxConcurrency,
          reportBatchItemFailures: true,
        }),
      );
      return;
    case 'schedule': {
      // A missed run is superseded by the next one: retry briefly, never past the next run.
      const every = Duration.minutes(trigger.everyMinutes);
      const rule = new Rule(scope, `${pascal(def.id)}Schedule`, {
        description: `Runs ${def.folder} every ${trigger.everyMinutes} minutes`,
        schedule: Schedule.rate(every),
        targets: [new LambdaFunction(fn, { maxEventAge: every, retryAttempts: 2 })],
      });
      Validations.of(rule).acknowledge({
        id: 'Serverless-EventBusDLQ',
        reason:
          'A scheduled event carries no data, only "run now"; an undelivered one is replaced by the next run, so a DLQ would hold nothing to replay.',
      });
      fn.configureAsyncInvoke({ maxEventAge: every, retryAttempts: 0 });
      return;
    }
    case 'iamInvoke':
      // No trigger and no function URL: only IAM principals allowed lambda:InvokeFunction can call it.
      return;
  }
}

export function createFunctions(scope: Construct, props: FunctionsProps): Record<FunctionId, NodejsFunction> {
  const { config } = props;
  const shared = functionEnvironment(props);
  const environments = new Map(
    FUNCTIONS.map((def) => [def.id, { ...shared, ...ownEnvironment(props, def) }]),
  );
  for (const [id, env] of environments) {
    const envBytes = deployedEnvironmentBytes(scope, env, props);
    if (envBytes > MAX_ENVIRONMENT_BYTES) {
      // Generated names are bounded; what grows is a setting's value (POSITION_INDEX_SHARDS with every market).
      const [largest] = Object.entries(env)
        .filter(([, v]) => !Token.isUnresolved(v))
        .sort(([, a], [, b]) => b.length - a.length);
      throw new Error(
        `function environment would be ${envBytes} bytes once deployed, above Lambda's ${MAX_ENVIRONMENT_BYTES}: its largest variable is ${largest?.[0]} (${largest?.[1].length} characters; ${id}'s environment)`,
      );
    }
  }
  const riskConfigModule = writeRiskConfigModule(scope, config.riskConfigJson);
  const functions = {} as Record<FunctionId, NodejsFunction>;
  for (const def of FUNCTIONS) {
    const id = pascal(def.id);
    // A log group we own: retention without the custom-resource Lambda that `logRetention` creates.
    const logGroup = new LogGroup(scope, `${id}Logs`, {
      retention: config.logRetentionDays as RetentionDays,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    // Own role instead of AWSLambdaBasicExecutionRole, whose logs actions apply to every log group.
    const role = new Role(scope, `${id}Role`, {
      assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
      description: `${def.folder}: ${def.purpose}`.slice(0, 1000),
    });
    role.addToPolicy(
      new PolicyStatement({
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [logGroup.logGroupArn],
      }),
    );
    const reserved = config.reservedConcurrency[def.id];
    const fn = new NodejsFunction(scope, id, {
      projectRoot: props.projectRoot,
      depsLockFilePath: join(props.projectRoot, 'package-lock.json'),
      entry: join(props.projectRoot, 'functions', def.folder, 'index.ts'),
      handler: 'handler',
      runtime: Runtime.NODEJS_24_X,
      architecture: Architecture.ARM_64,
      memorySize: def.memoryMb,
      timeout: Duration.seconds(def.timeoutSeconds),
      description: def.purpose.slice(0, 256),
      role,
      logGroup,
      tracing: Tracing.ACTIVE,
      // Lambda stops an SQS chain of one function after 16 invocations by default; these chain on purpose
      // (a last resort waits up to 19 times), bounded in code.
      recursiveLoop: chainsThroughItsOwnQueue(def) ? RecursiveLoop.ALLOW : RecursiveLoop.TERMINATE,
      environment: environments.get(def.id)!,
      ...(reserved !== undefined ? { reservedConcurrentExecutions: reserved } : {}),
      bundling: { ...bundling, inject: [riskConfigModule] },
    });
    for (const grant of def.grants) applyGrant(fn, grant, props, def.id);
    if (VENUE_TRADERS.includes(def.id))
      for (const statement of venueKeyStatements(scope, config)) fn.addToRolePolicy(statement);
    wireTrigger(scope, def, fn, props);
    acknowledgeFunctionFindings(fn, role, def, props);
    functions[def.id] = fn;
  }
  return functions;
}

/** Construct id of the invoke-only functions' resource policy (backstop:adminInvokers), under the function. */
export const INVOKERS_POLICY_ID = 'InvokersPolicy';

/** The IAM actions that invoke a function: the deprecated InvokeAsync API is authorized as its own action. */
export const INVOKE_ACTIONS = ['lambda:InvokeFunction', 'lambda:InvokeAsync'] as const;

/**
 * backstop:adminInvokers (security49-admin-invokers): the function's resource policy denies invocation to every
 * principal whose aws:PrincipalArn is not listed, this account's administrators and root included: Lambda hands the
 * function no caller, so who may withdraw down to the fund's floor is who may invoke it. INVOKE_ACTIONS: Invoke and
 * InvokeWithResponseStream are lambda:InvokeFunction, the deprecated InvokeAsync API its own lambda:InvokeAsync
 * (review49-security-invoke-async). A Deny only: a listed principal still needs IAM's Allow. The policy covers
 * invocation alone, so whoever may change the function (lambda:PutResourcePolicy, a deploy) may still lift it.
 *
 * What a policy covers (security50-admin-qualified): Lambda's guide says a resource-based policy applies to one
 * function, version or alias, and that Lambda matches a statement's Resource against the ARN called, so `<arn>`
 * alone misses a call of `<arn>:$LATEST` (its deny examples; $LATEST takes no policy of its own): `<arn>:*` is there
 * for that. Whether the function's policy is read for a call of a published version or an alias is not said plainly
 * (one page lets a statement's wildcard name them, the API says a policy is one resource's): each version and alias
 * of the function this stack defines gets the same deny as a policy of its own, and synth refuses one added after;
 * one published outside the stack (lambda:PublishVersion, CreateAlias) is not covered (final49a-admin-versions).
 * A whole policy (PutResourcePolicy) replaces any permission added one by one (AddPermission): refused on a function,
 * version or alias that has one, which an iamInvoke function never has.
 */
export function denyOtherInvokers(fn: NodejsFunction, invokers: readonly string[]): void {
  if (invokers.length === 0) return;
  const stack = Stack.of(fn);
  const fnId = `"${stack.getLogicalId(fn.node.defaultChild as CfnElement)}"`;
  // Anywhere in the stack: a rule's permission is its own child, a version or an alias the stack's.
  const naming = <T extends CfnElement>(
    type: new (...args: never[]) => T,
    id: string,
    name: (c: T) => unknown,
  ) =>
    stack.node
      .findAll()
      .filter((c): c is T => c instanceof type && JSON.stringify(stack.resolve(name(c))).includes(id));
  const qualified = (): (CfnVersion | CfnAlias)[] => [
    ...naming(CfnVersion, fnId, (c) => c.functionName),
    ...naming(CfnAlias, fnId, (c) => c.functionName),
  ];
  const deny = (target: Construct, arn: string, resources: string[]) => {
    const id = `"${stack.getLogicalId((target.node.defaultChild ?? target) as CfnElement)}"`;
    if (naming(CfnPermission, id, (c) => c.functionName).length > 0)
      throw new Error(
        `functions: ${target.node.id} has a resource permission, which its whole resource policy would replace`,
      );
    return new CfnResourcePolicy(target, INVOKERS_POLICY_ID, {
      resourceArn: arn,
      policyDocument: new PolicyDocument({
        statements: [
          new PolicyStatement({
            sid: 'DenyOtherInvokers',
            effect: Effect.DENY,
            principals: [new AnyPrincipal()],
            actions: [...INVOKE_ACTIONS],
            resources,
            conditions: { ArnNotEquals: { 'aws:PrincipalArn': [...invokers] } },
          }),
        ],
      }),
    });
  };
  deny(fn, fn.functionArn, [fn.functionArn, `${fn.functionArn}:*`]);
  for (const q of qualified()) {
    // A version or alias kept when replaced or deleted (RETAIN) keeps its deny: Lambda deletes a policy deleted.
    const policy = deny(q, q.ref, [q.ref]);
    policy.cfnOptions.deletionPolicy = q.cfnOptions.deletionPolicy;
    policy.cfnOptions.updateReplacePolicy = q.cfnOptions.updateReplacePolicy;
  }
  // A version or alias added once this has run would be invoked without the deny.
  fn.node.addValidation({
    validate: () =>
      qualified()
        .filter((q) => !q.node.tryFindChild(INVOKERS_POLICY_ID))
        .map(
          (q) =>
            `functions: ${q.node.path} (a version or alias of ${fn.node.id}) was added after its invokers' deny (backstop:adminInvokers), and would be invoked without it: add it before denyOtherInvokers runs`,
        ),
  });
}

/** cdk-nag findings that are by design for these functions; each reason says why. */
function acknowledgeFunctionFindings(
  fn: NodejsFunction,
  role: Role,
  def: FunctionDef,
  props: FunctionsProps,
): void {
  const policy = Validations.of(role);
  policy.acknowledge({
    id: 'AwsSolutions-IAM5[Resource::*]',
    reason:
      'Active tracing adds xray:PutTraceSegments and xray:PutTelemetryRecords, which support no resource-level permissions; every other statement names its resources.',
  });
  const stack = Stack.of(fn);
  for (const grant of def.grants) {
    if (!grant.table) continue;
    const table = props.tables[grant.table];
    if (!TABLES.find((t) => t.id === grant.table)?.indexes.length) continue;
    const logicalId = stack.getLogicalId(table.node.defaultChild as never);
    policy.acknowledge({
      id: `AwsSolutions-IAM5[Resource::<${logicalId}.Arn>/index/*]`,
      reason: `The ${grant.table} table's own indexes (table ARN + /index/*), granted by CDK's table grants; the only index is the topology's, no other table is covered.`,
    });
  }
  const fnAck = Validations.of(fn);
  switch (def.trigger.kind) {
    case 'queue':
      fnAck.acknowledge({
        id: 'Serverless-LambdaDLQ',
        reason: `Invoked synchronously by the SQS event source only; failed records return to the ${def.trigger.queue} queue, whose redrive policy moves them to its dead-letter queue.`,
      });
      fnAck.acknowledge({
        id: 'Serverless-LambdaEventSourceMappingDestination',
        reason:
          'SQS event source mappings take no on-failure destination; the source queue redrive policy (maxReceiveCount to a DLQ) is the failure destination.',
      });
      return;
    case 'tickRule':
      fnAck.acknowledge({
        id: 'Serverless-LambdaDLQ',
        reason:
          'Failed async invocations go to the tickDeadLetters queue through an on-failure destination, which supersedes the legacy function DLQ.',
      });
      return;
    case 'schedule':
      for (const id of ['Serverless-LambdaDLQ', 'Serverless-LambdaAsyncFailureDestination']) {
        fnAck.acknowledge({
          id,
          reason:
            'Scheduled and idempotent: a failed run is superseded by the next run minutes later, and the function errors alarm reports it; a dead letter would hold nothing worth replaying.',
        });
      }
      return;
    case 'iamInvoke':
      fnAck.acknowledge({
        id: 'Serverless-LambdaDLQ',
        reason:
          'Invoked synchronously by operators through IAM (RequestResponse); the caller receives the error, there is no async event to keep.',
      });
      return;
  }
}
