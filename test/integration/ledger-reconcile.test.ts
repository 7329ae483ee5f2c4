import { GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoLedger } from '../../shared/adapters/aws/ledger.ts';
import { type LocalStack, startLocalStack } from '../../shared/local/stack.ts';
import { INSURANCE_ACCOUNT } from '../../shared/services/context.ts';
import { type MotoServer, startMoto } from '../support/moto.ts';

/**
 * The scheduled ledger-reconcile read the fund's whole journal every 5 minutes (about 580k entries fit its
 * 512 MB). It now reads the journal's index by sequence from the checkpoint the last run stored. Real handler,
 * DynamoDB on moto.
 */

let moto: MotoServer;
let stack: LocalStack;
let ledger: DynamoLedger;

const context = {
  functionName: 'ledger-reconcile',
  awsRequestId: 'reconcile-test',
  invokedFunctionArn: 'arn:aws:lambda:us-east-1:000000000000:function:ledger-reconcile',
  getRemainingTimeInMillis: () => 300_000,
};

interface Summary {
  readonly reconciled: boolean;
  readonly entries: number;
  readonly auditedThrough: number;
  readonly difference: string | null;
  readonly problems: readonly string[];
  readonly journalSum: string;
}

const reconcile = (event: unknown) =>
  (stack.handlers.ledgerReconcile as (e: unknown, c: unknown) => Promise<Summary>)(event, context);

const deposit = async (n: number) => {
  const admin = stack.handlers.admin as (e: unknown, c: unknown) => Promise<{ ok: boolean }>;
  for (let i = 0; i < n; i++) {
    const key = `dep-${(await ledger.balance(INSURANCE_ACCOUNT)).sequence + 1}`;
    expect(await admin({ action: 'deposit', amount: '10', idempotencyKey: key }, context)).toMatchObject({
      ok: true,
    });
  }
};

const scheduledEvent = {
  version: '0',
  id: 'e1',
  'detail-type': 'Scheduled Event',
  source: 'aws.events',
  account: '000000000000',
  time: '2026-12-05T00:00:00Z',
  region: 'us-east-1',
  resources: [],
  detail: {},
};

/** Rewrites journal entry `sequence` to say it moved 1,000 USD; returns what puts it back. */
async function forge(sequence: number): Promise<() => Promise<void>> {
  const table = stack.names.tables.ledger;
  const key = (await ledger.journal(INSURANCE_ACCOUNT))[sequence - 1]!.idempotencyKey;
  const { Item } = await stack.clients.dynamo.send(
    new GetItemCommand({
      TableName: table,
      Key: { pk: { S: `ACCOUNT#${INSURANCE_ACCOUNT}` }, sk: { S: `J#${key}` } },
    }),
  );
  expect(Item).toBeDefined();
  await stack.clients.dynamo.send(
    new PutItemCommand({ TableName: table, Item: { ...Item!, amount: { N: '1000000000' } } }),
  );
  return async () => {
    await stack.clients.dynamo.send(new PutItemCommand({ TableName: table, Item: Item! }));
  };
}

beforeAll(async () => {
  moto = await startMoto();
  stack = await startLocalStack({ endpoint: moto.endpoint, stage: 'reconcile' });
  ledger = new DynamoLedger(stack.clients.dynamo, stack.names.tables.ledger);
}, 120_000);

afterAll(async () => {
  await stack?.stop();
  await moto?.stop();
});

describe('ledger-reconcile on DynamoDB, from its checkpoint', () => {
  it('each run reads only the entries since the last, judges the whole balance, and a full run reads all', async () => {
    await deposit(3);
    expect(await reconcile(scheduledEvent)).toMatchObject({
      reconciled: true,
      entries: 3,
      auditedThrough: 3,
      difference: '0',
      journalSum: '30',
    });
    expect(await ledger.auditCheckpoint(INSURANCE_ACCOUNT)).toEqual({
      sequence: 3,
      sum: 30_000_000n,
      minBalance: 0n,
    });
    await deposit(2);
    expect(await reconcile(scheduledEvent)).toMatchObject({
      reconciled: true,
      entries: 2,
      auditedThrough: 5,
    });
    expect(await reconcile(scheduledEvent)).toMatchObject({ reconciled: true, entries: 0, journalSum: '50' });
    expect(await reconcile({ full: true })).toMatchObject({
      reconciled: true,
      entries: 5,
      auditedThrough: 5,
    });
  });

  it('a forged entry is reported by every run (no checkpoint past it), and so is the balance it makes differ', async () => {
    const before = await ledger.balance(INSURANCE_ACCOUNT);
    await deposit(1);
    // Someone rewrites the last entry to say it deposited 1,000 USD: it no longer chains, and the sum differs.
    const restore = await forge(before.sequence + 1);
    const expected = {
      reconciled: false,
      difference: '-990',
      problems: [`entry ${before.sequence + 1}: balanceAfter != balanceBefore + amount`],
    };
    expect(await reconcile(scheduledEvent)).toMatchObject(expected);
    expect(await reconcile(scheduledEvent)).toMatchObject({ ...expected, entries: 1 });
    expect((await ledger.auditCheckpoint(INSURANCE_ACCOUNT))?.sequence).toBe(before.sequence);
    await restore();
    expect(await reconcile(scheduledEvent)).toMatchObject({
      reconciled: true,
      auditedThrough: before.sequence + 1,
    });
  });

  // Found by the review of session 27's diff: a full run is the only one that sees an entry behind the checkpoint,
  // and it could not lower the checkpoint, so the next scheduled run started past the entry and the alarm cleared.
  it('a broken entry a full run finds behind the checkpoint is reported by every scheduled run after it', async () => {
    const restore = await forge(2);
    const problem = 'entry 2: balanceAfter != balanceBefore + amount';
    // Behind the checkpoint: the scheduled run does not see it.
    expect(await reconcile(scheduledEvent)).toMatchObject({ problems: [] });
    expect((await reconcile({ full: true })).problems).toContain(problem);
    // Back before the page that holds it.
    expect((await ledger.auditCheckpoint(INSURANCE_ACCOUNT))?.sequence).toBeLessThan(2);
    expect((await reconcile(scheduledEvent)).problems).toContain(problem);
    await restore();
  });

  it('refuses a request it does not understand, with the reason, and changes nothing', async () => {
    const checkpoint = await ledger.auditCheckpoint(INSURANCE_ACCOUNT);
    await expect(reconcile({ full: 'yes' })).rejects.toThrow(/reconcile\/invalid-request/);
    expect(await ledger.auditCheckpoint(INSURANCE_ACCOUNT)).toEqual(checkpoint);
  });
});
