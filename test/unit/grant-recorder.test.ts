import {
  DescribeTableCommand,
  GetItemCommand,
  TransactWriteItemsCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { afterEach, describe, expect, it } from 'vitest';
import { type AwsClients, createAwsClients } from '../../shared/adapters/aws/clients.ts';
import { indexJournal } from '../../shared/adapters/aws/ledger.ts';
import { DynamoProviderRepository } from '../../shared/adapters/aws/providers.ts';
import { scanPages } from '../../shared/adapters/aws/scan.ts';
import { asFunction } from '../../shared/runner/index.ts';
import { GrantRecorder } from '../support/grants.ts';
import { fakeResourceNames } from '../support/resource-names.ts';

/**
 * The end-to-end runs' IAM check (test/support/grants.ts) on calls answered here, without an emulator: a call no
 * grant of the stack allows must be ungranted, as AWS would refuse it and moto does not.
 */
const names = fakeResourceNames();
let clients: AwsClients | undefined;

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
  clients.dynamo.middlewareStack.add(
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
});
