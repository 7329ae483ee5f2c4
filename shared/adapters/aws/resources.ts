import {
  type AttributeDefinition,
  CreateTableCommand,
  DescribeTableCommand,
  type KeySchemaElement,
  type Projection,
} from '@aws-sdk/client-dynamodb';
import { CreateEventBusCommand, PutRuleCommand, PutTargetsCommand } from '@aws-sdk/client-eventbridge';
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  SetQueueAttributesCommand,
} from '@aws-sdk/client-sqs';
import {
  asyncRetriesWithin,
  DEAD_LETTER_RETENTION_SECONDS,
  DEFAULT_TICK_MAX_EVENT_AGE_SECONDS,
  type IndexDef,
  isDeadLetterSink,
  MARGIN_CHECK_PATTERN,
  physicalName,
  QUEUES,
  type QueueDef,
  type QueueId,
  queueEnv,
  receiveVisibilitySeconds,
  TABLES,
  type TableDef,
  type TableId,
  TICK_BUS,
  tableEnv,
  tickRuleTarget,
  visibilityTimeoutSeconds,
} from '../../topology.ts';
import type { AwsClients } from './clients.ts';

/**
 * Resource names, and creation of every resource for local runs (moto), all derived from shared/topology.ts.
 * Moto cannot invoke Lambda, so a local rule routes PriceTick (and continuation) events from the bus to an SQS queue that the
 * local runner polls; that queue redrives to `tickDeadLetters` like the real rule's dead-letter config.
 */

export interface QueueNames {
  readonly url: string;
  readonly arn: string;
  readonly dlqUrl?: string;
  readonly dlqArn?: string;
}

export interface ResourceNames {
  readonly tables: Readonly<Record<TableId, string>>;
  readonly queues: Readonly<Record<QueueId, QueueNames>>;
  readonly busName: string;
  /** Local runs only: the queue the tick rule delivers to (the runner polls it). */
  readonly tickQueueUrl: string;
  readonly tickQueueArn: string;
}

/** What the adapters need: table names and the two work queues' URLs (a Lambda has exactly these in env). */
export interface AdapterNames {
  readonly tables: Readonly<Record<TableId, string>>;
  readonly queues: {
    readonly liquidations: { readonly url: string };
    readonly auctionSteps: { readonly url: string };
  };
}

export const LOCAL_TICK_QUEUE = 'tick-local';
export const LOCAL_TICK_RULE = 'tick-to-local-queue';
/**
 * Receives of a tick event before the queue's redrive moves it to tickDeadLetters: one more than the attempts AWS
 * gives a margin-check invocation that fails (the first, and Lambda's asynchronous retries within the event's
 * maximum age; EventBridge's own retries cover only failures to deliver). The local runner invokes it no more
 * than those attempts and sends it on as Lambda's on-failure record, with its error, on the receive after the
 * last one that timed out; the redrive takes it when no runner does.
 */
export const LOCAL_TICK_MAX_RECEIVES = 2 + asyncRetriesWithin(DEFAULT_TICK_MAX_EVENT_AGE_SECONDS);

const required = (env: NodeJS.ProcessEnv, name: string): string => {
  const value = env[name];
  if (!value) throw new Error(`${name} environment variable is not set`);
  return value;
};

/** Adapter names from a function's environment (tableEnv / queueEnv from topology). */
export function adapterNamesFromEnv(env: NodeJS.ProcessEnv = process.env): AdapterNames {
  const tables = Object.fromEntries(TABLES.map((t) => [t.id, required(env, tableEnv(t.id))])) as Record<
    TableId,
    string
  >;
  return {
    tables,
    queues: {
      liquidations: { url: required(env, queueEnv('liquidations')) },
      auctionSteps: { url: required(env, queueEnv('auctionSteps')) },
    },
  };
}

const keyAttrs = (table: TableDef): AttributeDefinition[] => {
  const keys = [
    table.partitionKey,
    table.sortKey,
    ...table.indexes.flatMap((i) => [i.partitionKey, i.sortKey]),
  ];
  const unique = new Map<string, AttributeDefinition>();
  for (const k of keys) if (k) unique.set(k.name, { AttributeName: k.name, AttributeType: k.type });
  return [...unique.values()];
};

const keySchema = (pk: { name: string }, sk?: { name: string }): KeySchemaElement[] => [
  { AttributeName: pk.name, KeyType: 'HASH' },
  ...(sk ? [{ AttributeName: sk.name, KeyType: 'RANGE' as const }] : []),
];

const projection = (index: IndexDef): Projection =>
  index.projection === 'ALL' || index.projection === 'KEYS_ONLY'
    ? { ProjectionType: index.projection }
    : { ProjectionType: 'INCLUDE', NonKeyAttributes: [...index.projection] };

const errorName = (error: unknown): string | undefined => (error as { name?: string } | undefined)?.name;

async function ensureTable(clients: AwsClients, name: string, table: TableDef): Promise<void> {
  try {
    const out = await clients.dynamo.send(
      new CreateTableCommand({
        TableName: name,
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: keyAttrs(table),
        KeySchema: keySchema(table.partitionKey, table.sortKey),
        ...(table.indexes.length > 0
          ? {
              GlobalSecondaryIndexes: table.indexes.map((i) => ({
                IndexName: i.name,
                KeySchema: keySchema(i.partitionKey, i.sortKey),
                Projection: projection(i),
              })),
            }
          : {}),
      }),
    );
    // Emulators create tables ACTIVE at once.
    if (out.TableDescription?.TableStatus === 'ACTIVE') return;
  } catch (error) {
    if (errorName(error) !== 'ResourceInUseException') throw error;
  }
  // AWS takes seconds: poll with a deadline.
  const deadline = Date.now() + 120_000;
  for (;;) {
    const out = await clients.dynamo.send(new DescribeTableCommand({ TableName: name }));
    if (out.Table?.TableStatus === 'ACTIVE') return;
    if (Date.now() > deadline) throw new Error(`resources/table-not-active: ${name}`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

async function ensureQueue(
  clients: AwsClients,
  name: string,
  attributes: Record<string, string>,
): Promise<{ url: string; arn: string }> {
  // Create without attributes (idempotent whatever exists), then set them: re-runs converge.
  const created = await clients.sqs.send(new CreateQueueCommand({ QueueName: name }));
  const url = created.QueueUrl;
  if (!url) throw new Error(`resources/no-queue-url: ${name}`);
  if (Object.keys(attributes).length > 0) {
    await clients.sqs.send(new SetQueueAttributesCommand({ QueueUrl: url, Attributes: attributes }));
  }
  const out = await clients.sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }),
  );
  const arn = out.Attributes?.QueueArn;
  if (!arn) throw new Error(`resources/no-queue-arn: ${name}`);
  return { url, arn };
}

const redrive = (dlqArn: string, maxReceiveCount: number): string =>
  JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount });

export interface LocalResourceOptions {
  /** Queue visibility timeout override (seconds) for every queue; tests use small values. */
  readonly visibilityTimeoutSeconds?: number;
}

/** A topology queue's attributes, as the stack gives them (visibility, dead-letter retention, redrive). */
const queueAttributes = (
  q: QueueDef,
  dlq: { readonly arn: string } | undefined,
  options: LocalResourceOptions,
): Record<string, string> => ({
  VisibilityTimeout: String(options.visibilityTimeoutSeconds ?? visibilityTimeoutSeconds(q.id)),
  ...(isDeadLetterSink(q) ? { MessageRetentionPeriod: String(DEAD_LETTER_RETENTION_SECONDS) } : {}),
  ...(dlq && q.deadLetter ? { RedrivePolicy: redrive(dlq.arn, q.deadLetter.maxReceiveCount) } : {}),
});

/** Creates (or reuses) every table, queue, the tick bus and the local tick rule of `stage`. Idempotent. */
export async function createLocalResources(
  clients: AwsClients,
  stage: string,
  options: LocalResourceOptions = {},
): Promise<ResourceNames> {
  const tables = Object.fromEntries(TABLES.map((t) => [t.id, physicalName(stage, t.id)])) as Record<
    TableId,
    string
  >;
  const creatingTables = Promise.all(TABLES.map((t) => ensureTable(clients, tables[t.id], t)));
  // Awaited at the end; this handler keeps an early queue failure from leaving it unhandled.
  creatingTables.catch(() => undefined);

  const queueEntries = await Promise.all(
    QUEUES.map(async (q): Promise<[QueueId, QueueNames]> => {
      const dlq = q.deadLetter
        ? await ensureQueue(clients, physicalName(stage, `${q.id}-dlq`), {
            MessageRetentionPeriod: String(DEAD_LETTER_RETENTION_SECONDS),
          })
        : undefined;
      const main = await ensureQueue(clients, physicalName(stage, q.id), queueAttributes(q, dlq, options));
      return [q.id, dlq ? { ...main, dlqUrl: dlq.url, dlqArn: dlq.arn } : main];
    }),
  );
  const queues = Object.fromEntries(queueEntries) as Record<QueueId, QueueNames>;

  const busName = physicalName(stage, TICK_BUS.name);
  try {
    await clients.events.send(new CreateEventBusCommand({ Name: busName }));
  } catch (error) {
    if (errorName(error) !== 'ResourceAlreadyExistsException') throw error;
  }
  const ruleName = physicalName(stage, LOCAL_TICK_RULE);
  const rule = await clients.events.send(
    new PutRuleCommand({
      Name: ruleName,
      EventBusName: busName,
      EventPattern: JSON.stringify(MARGIN_CHECK_PATTERN),
      State: 'ENABLED',
    }),
  );
  const tickQueue = await ensureQueue(clients, physicalName(stage, LOCAL_TICK_QUEUE), {
    VisibilityTimeout: String(options.visibilityTimeoutSeconds ?? receiveVisibilitySeconds(tickRuleTarget())),
    RedrivePolicy: redrive(queues.tickDeadLetters.arn, LOCAL_TICK_MAX_RECEIVES),
    // What AWS needs for an EventBridge target (moto does not check it).
    Policy: JSON.stringify({
      Version: '2012-10-17',
      Statement: [
        {
          Effect: 'Allow',
          Principal: { Service: 'events.amazonaws.com' },
          Action: 'sqs:SendMessage',
          Resource: '*',
          ...(rule.RuleArn ? { Condition: { ArnEquals: { 'aws:SourceArn': rule.RuleArn } } } : {}),
        },
      ],
    }),
  });
  await clients.events.send(
    new PutTargetsCommand({
      Rule: ruleName,
      EventBusName: busName,
      Targets: [
        { Id: 'local-runner', Arn: tickQueue.arn, DeadLetterConfig: { Arn: queues.tickDeadLetters.arn } },
      ],
    }),
  );
  await creatingTables;
  return { tables, queues, busName, tickQueueUrl: tickQueue.url, tickQueueArn: tickQueue.arn };
}
