import type { Adapters, Clock, CrashHook, QueueTransport, Transactor } from '../../ports/index.ts';
import type { QueueId } from '../../topology.ts';
import { DynamoAuctionRepository } from './auctions.ts';
import type { AwsClients } from './clients.ts';
import { noCrash } from './codec.ts';
import { DynamoLedger } from './ledger.ts';
import { DynamoLiquidationRepository } from './liquidations.ts';
import { DynamoMarketRepository } from './markets.ts';
import { type PositionIndexLayout, SINGLE_SHARD_LAYOUT } from './position-layout.ts';
import { DynamoPositionRepository } from './positions.ts';
import { DynamoProviderRepository } from './providers.ts';
import { DynamoBatchReader } from './reader.ts';
import type { AdapterNames, ResourceNames } from './resources.ts';
import { SqsQueueTransport } from './sqs-queue.ts';
import { AwsTransactor } from './transactor.ts';

/**
 * The AWS adapter family: DynamoDB repositories and ledger, SQS queues. Crash points (for CrashHook) are
 * `<adapter>.<method>` after each write, for example `liquidations.begin`, `ledger.apply`,
 * `liquidationQueue.sendBatch` (after each SendMessageBatch call), `liquidationQueue.receive|delete`,
 * `transactor.commit`: the same names as the embedded bundle.
 */

export interface AwsAdapterOptions {
  readonly clients: AwsClients;
  readonly names: AdapterNames;
  readonly clock: Clock;
  readonly crashHook?: CrashHook;
  /** How positions spread over index shards (positionLayoutFromEnv); one shard per market by default. */
  readonly positionLayout?: PositionIndexLayout;
}

export interface AwsAdapters extends Adapters {
  readonly transactor: Transactor;
}

export function createAwsAdapters(options: AwsAdapterOptions): AwsAdapters {
  const { clients, names, clock } = options;
  const crash = options.crashHook ?? noCrash;
  const { dynamo } = clients;
  const layout = options.positionLayout ?? SINGLE_SHARD_LAYOUT;
  return {
    reader: new DynamoBatchReader(dynamo, {
      positions: names.tables.positions,
      markets: names.tables.markets,
      auctions: names.tables.auctions,
      liquidations: names.tables.liquidations,
    }),
    positions: new DynamoPositionRepository(dynamo, names.tables.positions, layout, crash),
    markets: new DynamoMarketRepository(dynamo, names.tables.markets, crash),
    liquidations: new DynamoLiquidationRepository(
      dynamo,
      { liquidations: names.tables.liquidations, positions: names.tables.positions },
      layout,
      crash,
    ),
    auctions: new DynamoAuctionRepository(dynamo, names.tables.auctions, crash),
    providers: new DynamoProviderRepository(dynamo, names.tables.providers, crash),
    ledger: new DynamoLedger(dynamo, names.tables.ledger, crash, names.tables.liquidations),
    transactor: new AwsTransactor(dynamo, names.tables, layout, crash),
    liquidationQueue: new SqsQueueTransport(clients.sqs, {
      url: names.queues.liquidations.url,
      crash,
      crashPrefix: 'liquidationQueue',
    }),
    auctionQueue: new SqsQueueTransport(clients.sqs, {
      url: names.queues.auctionSteps.url,
      crash,
      crashPrefix: 'auctionQueue',
    }),
    clock,
  };
}

export interface LocalQueueTransports {
  /** Work queues by topology id (what the runner polls for 'queue' triggers). */
  readonly queues: Readonly<Record<QueueId, QueueTransport>>;
  /** Dead-letter queues of the queues that have one. */
  readonly deadLetters: Readonly<Partial<Record<QueueId, QueueTransport>>>;
  /** The local tick queue fed by the bus rule (what the runner polls for the 'tickRule' trigger). */
  readonly tickQueue: QueueTransport;
}

/** SQS transports for every queue of a local stage, for the local runner and tests. */
export function createAwsQueueTransports(clients: AwsClients, names: ResourceNames): LocalQueueTransports {
  const queues = {} as Record<QueueId, QueueTransport>;
  const deadLetters: Partial<Record<QueueId, QueueTransport>> = {};
  for (const [id, q] of Object.entries(names.queues) as [QueueId, ResourceNames['queues'][QueueId]][]) {
    queues[id] = new SqsQueueTransport(clients.sqs, { url: q.url });
    if (q.dlqUrl) deadLetters[id] = new SqsQueueTransport(clients.sqs, { url: q.dlqUrl });
  }
  return { queues, deadLetters, tickQueue: new SqsQueueTransport(clients.sqs, { url: names.tickQueueUrl }) };
}

export {
  ApiCallCounter,
  type AwsClientConfig,
  type AwsClients,
  createAwsClients,
  localClientConfig,
} from './clients.ts';
export { AdapterInputError, CorruptItemError } from './codec.ts';
export { LedgerContentionError, LedgerIdempotencyConflictError } from './ledger.ts';
export {
  PositionIndexLayout,
  PositionLayoutError,
  positionIndexShardsSchema,
  positionLayoutFromEnv,
  SINGLE_SHARD_LAYOUT,
} from './position-layout.ts';
export {
  type AdapterNames,
  adapterNamesFromEnv,
  createLocalResources,
  type QueueNames,
  type ResourceNames,
} from './resources.ts';
export { QueueSendError, SqsQueueTransport } from './sqs-queue.ts';
export { AwsTransactor } from './transactor.ts';
export { NewerWriterError, RECORD_SCHEMA, SCHEMA_ATTR } from './writer-schema.ts';
