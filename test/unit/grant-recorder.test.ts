import {
  DescribeTableCommand,
  GetItemCommand,
  TransactWriteItemsCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { DescribeEventBusCommand, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { DescribeSecretCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  PurgeQueueCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  SetQueueAttributesCommand,
} from '@aws-sdk/client-sqs';
import { afterEach, describe, expect, it } from 'vitest';
import { type AwsClients, createAwsClients } from '../../shared/adapters/aws/clients.ts';
import { DynamoLedger, indexJournal } from '../../shared/adapters/aws/ledger.ts';
import { DynamoLiquidationRepository } from '../../shared/adapters/aws/liquidations.ts';
import { putOwned } from '../../shared/adapters/aws/owned-put.ts';
import { SINGLE_SHARD_LAYOUT } from '../../shared/adapters/aws/position-layout.ts';
import { DynamoProviderRepository } from '../../shared/adapters/aws/providers.ts';
import { scanPages } from '../../shared/adapters/aws/scan.ts';
import { instrumentVenueKeyClients, secretsManagerVenueKey } from '../../shared/adapters/venue/key.ts';
import { asFunction } from '../../shared/runner/index.ts';
import { VENUE_KEY_ENV } from '../../shared/topology.ts';
import { GrantRecorder } from '../support/grants.ts';
import { fakeResourceNames } from '../support/resource-names.ts';

/**
 * The end-to-end runs' IAM check (test/support/grants.ts) on calls answered here, without an emulator: a call no
 * grant of the stack allows must be ungranted, as AWS would refuse it and moto does not.
 */
const names = fakeResourceNames();
let clients: AwsClients | undefined;

type Stack = { add: (middleware: never, options: { step: 'initialize'; name: string }) => void };

/** A recorder attached to clients whose DynamoDB calls all answer at once (`answer`: the output). */
function recording(answer: (command: string) => Record<string, unknown> = () => ({})): {
  recorder: GrantRecorder;
  clients: AwsClients;
} {
  const recorder = new GrantRecorder();
  recorder.forStage(names);
  clients = createAwsClients({
    region: 'eu-west-1',
    credentials: { accessKeyId: 't', secretAccessKey: 't' },
  });
  recorder.attach(clients);
  // After the recorder's middleware (the same step, added later): nothing reaches the network.
  for (const client of [clients.dynamo, clients.sqs, clients.events] as { middlewareStack: Stack }[])
    client.middlewareStack.add(
      ((_next: unknown, context: { commandName?: string }) => async () => ({
        output: { $metadata: {}, ...answer((context.commandName ?? '').replace(/Command$/, '')) },
        response: {},
      })) as never,
      { step: 'initialize', name: 'answerHere' },
    );
  return { recorder, clients };
}

afterEach(() => {
  clients?.destroy();
  clients = undefined;
});

describe('the grants check of the emulator runs', () => {
  it("counts a Scan covered only on a table the topology marks scanned, by a reader's grant (security48-read-scan)", async () => {
    const { recorder, clients } = recording(() => ({ Items: [] }));
    // The consumer's providers list: its one Scan, granted.
    await asFunction('liquidationConsumer', () =>
      new DynamoProviderRepository(clients.dynamo, names.tables.providers).list('ETH-USD'),
    );
    expect(recorder.ungranted()).toEqual([]);
    // margin-check reads and writes the positions, but may Scan them no more than a reader of the book may.
    await asFunction('marginCheck', async () => {
      for await (const _ of scanPages(clients.dynamo, { TableName: names.tables.positions }));
    });
    // ledger-reconcile reads the ledger; margin-check has no grant on the providers at all.
    await asFunction('ledgerReconcile', async () => {
      for await (const _ of scanPages(clients.dynamo, { TableName: names.tables.ledger }));
    });
    await asFunction('marginCheck', () =>
      new DynamoProviderRepository(clients.dynamo, names.tables.providers).list('ETH-USD'),
    );
    expect(recorder.ungranted().sort()).toEqual([
      'ledgerReconcile scan ledger',
      'marginCheck scan positions',
      'marginCheck scan providers',
    ]);
  });

  it('counts a DynamoDB call it does not map as granted to none, DescribeTable the first (review48-security-grants-unmapped)', async () => {
    const { recorder, clients } = recording();
    await asFunction('admin', async () => {
      await clients.dynamo.send(new DescribeTableCommand({ TableName: names.tables.positions }));
      await clients.dynamo.send(
        new GetItemCommand({ TableName: names.tables.positions, Key: { id: { S: 'p1' } } }),
      );
    });
    expect(recorder.ungranted()).toEqual(['admin call DescribeTable:positions']);
  });

  it('counts an update of the ledger, written by puts alone, as granted to none (review48-security-ledger-update)', async () => {
    const { recorder, clients } = recording((command) =>
      command === 'Query'
        ? { Items: [{ pk: { S: 'ACCOUNT#fund' }, sk: { S: 'JOURNAL#1' }, sequence: { N: '1' } }] }
        : {},
    );
    // The operator's migration, as if a function ran it: its UpdateItem on the ledger.
    await asFunction('admin', () => indexJournal(clients.dynamo, names.tables.ledger, 'fund'));
    const update = (table: string) => ({
      Update: {
        TableName: table,
        Key: { id: { S: 'x' } },
        UpdateExpression: 'SET a = :a',
        ExpressionAttributeValues: { ':a': { N: '1' } },
      },
    });
    await asFunction('auction', async () => {
      await clients.dynamo.send(
        new TransactWriteItemsCommand({
          TransactItems: [update(names.tables.ledger), update(names.tables.markets)],
        }),
      );
      await clients.dynamo.send(new UpdateItemCommand({ ...update(names.tables.positions).Update }));
    });
    expect(recorder.ungranted().sort()).toEqual(['admin update ledger', 'auction update ledger']);
    expect([...recorder.uses]).toContain('admin read ledger');
  });

  it('maps each SQS and EventBridge call to the actions the stack grants on its queue or bus, any other as granted to none (more48b-grants-unmapped-queues)', async () => {
    const { recorder, clients } = recording();
    const { queues } = names;
    const send = (url: string) =>
      clients.sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: '{}' }));
    const depth = (url: string) => clients.sqs.send(new GetQueueAttributesCommand({ QueueUrl: url }));
    await asFunction('marginCheck', async () => {
      // Its grants: sends to both work queues (CDK's send grant reads the attributes too), the tick rule's
      // on-failure destination, and the continuations' PutEvents on the tick bus.
      await send(queues.liquidations.url);
      await clients.sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: queues.auctionSteps.url,
          Entries: [{ Id: '0', MessageBody: '{}' }],
        }),
      );
      await depth(queues.liquidations.url);
      await send(queues.tickDeadLetters.url);
      await clients.events.send(
        new PutEventsCommand({
          Entries: [{ EventBusName: names.busName, Source: 's', DetailType: 'd', Detail: '{}' }],
        }),
      );
      // None of these.
      await clients.sqs.send(new PurgeQueueCommand({ QueueUrl: queues.liquidations.url }));
      await clients.sqs.send(
        new DeleteMessageCommand({ QueueUrl: queues.liquidations.url, ReceiptHandle: 'r' }),
      );
      await clients.events.send(new DescribeEventBusCommand({ Name: names.busName }));
    });
    await asFunction('liquidationConsumer', async () => {
      // Its trigger's queue, consumed by its event source: granted; its dead letters are not.
      await clients.sqs.send(new ReceiveMessageCommand({ QueueUrl: queues.liquidations.url }));
      await clients.sqs.send(
        new ChangeMessageVisibilityCommand({
          QueueUrl: queues.liquidations.url,
          ReceiptHandle: 'r',
          VisibilityTimeout: 1,
        }),
      );
      await depth(queues.liquidations.dlqUrl!);
    });
    await asFunction('liquidationWatch', async () => {
      // The depth of the dead letters alone: no message sent there, no attribute set.
      await depth(queues.liquidations.dlqUrl!);
      await depth(queues.tickDeadLetters.url);
      await clients.sqs.send(new GetQueueUrlCommand({ QueueName: 'auctionSteps' }));
      await send(queues.liquidations.dlqUrl!);
      await clients.sqs.send(
        new SetQueueAttributesCommand({ QueueUrl: queues.auctionSteps.url, Attributes: {} }),
      );
    });
    expect(recorder.ungranted().sort()).toEqual([
      'liquidationConsumer depth liquidations-dlq',
      'liquidationWatch call SetQueueAttributes:auctionSteps',
      'liquidationWatch send liquidations-dlq',
      'marginCheck call DescribeEventBus:ticks',
      'marginCheck call PurgeQueue:liquidations',
      'marginCheck deleteMessage liquidations',
    ]);
    expect([...recorder.uses]).toEqual(
      expect.arrayContaining([
        'marginCheck put ticks',
        'marginCheck send tickDeadLetters',
        'liquidationConsumer receive liquidations',
        'liquidationWatch url auctionSteps',
      ]),
    );
  });

  it("covers the puts of a grant limited by key asking the item back on a failed condition, as IAM's statement does: the item is at the put's own key (more48b-keys-return-values)", async () => {
    const { recorder, clients } = recording();
    // ledger-reconcile's checkpoint and liquidation-watch's cursor: fenced, the cursor's owned, both ALL_OLD on failure.
    await asFunction('ledgerReconcile', () =>
      new DynamoLedger(clients.dynamo, names.tables.ledger).saveAuditCheckpoint(
        'fund',
        { sequence: 3, sum: 5n, minBalance: 0n },
        'restart',
      ),
    );
    await asFunction('liquidationWatch', () =>
      new DynamoLiquidationRepository(
        clients.dynamo,
        { liquidations: names.tables.liquidations, positions: names.tables.positions },
        SINGLE_SHARD_LAYOUT,
      ).saveWatchCursor({ cycleStartedAtMs: 1, judged: 0, overdue: 0 }, undefined, 'run-1'),
    );
    expect(recorder.ungranted()).toEqual([]);
    expect([...recorder.uses].sort()).toEqual([
      'ledgerReconcile write ledger',
      'liquidationWatch write liquidations',
    ]);
    // The same put of a key outside the grant is not covered, whatever it asks back.
    await asFunction('liquidationWatch', () =>
      putOwned(clients.dynamo, { TableName: names.tables.liquidations, Item: { id: { S: 'liq-1' } } }),
    );
    expect(recorder.ungranted()).toEqual(['liquidationWatch liquidations: key liq-1 (not ~watch~*)']);
  });
});

// providers49-grants-secrets: the venue key's reader builds its own Secrets Manager client, which the recorder never
// saw: a read by a function the stack does not grant it, or of another secret, passed every emulator run.
describe("the grants check: the venue key's Secrets Manager calls", () => {
  const SECRET = 'backstop-local-venue-key';
  afterEach(() => instrumentVenueKeyClients(undefined));

  /** A recorder for a stage whose venue secret is SECRET, and every key reader's client answering here. */
  function recordingKeys(): { recorder: GrantRecorder; clients: SecretsManagerClient[] } {
    const recorder = new GrantRecorder();
    recorder.forStage(names, SECRET);
    const built: SecretsManagerClient[] = [];
    instrumentVenueKeyClients((client) => {
      built.push(client);
      recorder.attachVenueKey(client);
      (client.middlewareStack as unknown as Stack).add(
        (() => async () => ({
          output: { $metadata: {}, SecretString: '{"apiKey":"k"}' },
          response: {},
        })) as never,
        { step: 'initialize', name: 'answerHere' },
      );
    });
    return { recorder, clients: built };
  }
  const keyOf = (secretId: string) =>
    secretsManagerVenueKey({ [VENUE_KEY_ENV]: secretId }, () => ({
      region: 'eu-west-1',
      credentials: { accessKeyId: 't', secretAccessKey: 't' },
    }));

  it('counts the stage secret read by a trader as granted, by another function or of another secret as not', async () => {
    const { recorder, clients } = recordingKeys();
    expect(await asFunction('auction', () => keyOf(SECRET).get())).toBe('{"apiKey":"k"}');
    await asFunction('liquidationConsumer', () => keyOf(SECRET).get());
    expect(recorder.ungranted()).toEqual([]);
    expect([...recorder.uses].sort()).toEqual([
      'auction secret venueKey',
      'liquidationConsumer secret venueKey',
    ]);

    await asFunction('marginCheck', () => keyOf(SECRET).get());
    await asFunction('auction', () => keyOf('another-secret').get());
    await asFunction('auction', () => clients[0]!.send(new DescribeSecretCommand({ SecretId: SECRET })));
    expect(recorder.ungranted().sort()).toEqual([
      'auction call DescribeSecret:secretsmanager',
      'auction secret unknown-secret:another-secret',
      'marginCheck secret venueKey',
    ]);
  });

  it('counts every read as granted to none on a stage told of no venue secret', async () => {
    const { recorder } = recordingKeys();
    recorder.forStage(names);
    await asFunction('auction', () => keyOf(SECRET).get());
    expect(recorder.ungranted()).toEqual([`auction secret unknown-secret:${SECRET}`]);
  });
});
