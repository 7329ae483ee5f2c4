import { GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoLedger } from '../../shared/adapters/aws/ledger.ts';
import { type LocalStack, startLocalStack } from '../../shared/local/stack.ts';
import { INSURANCE_ACCOUNT } from '../../shared/services/context.ts';
import { type MotoServer, startMoto } from '../support/moto.ts';

/**
 * Found by the review of session 27's diff: a `{"full": true}` run is the only one that sees an entry behind the
 * checkpoint, and it could not lower the checkpoint (a save never went back), so the next scheduled run started
 * past the broken entry and the journal alarm cleared after one period. A run from the start now replaces the
 * checkpoint: the problem alarms on every run after it. Real handlers, DynamoDB on moto.
 */

let moto: MotoServer;
let stack: LocalStack;
let ledger: DynamoLedger;

const context = {
  functionName: 'ledger-reconcile',
  awsRequestId: 'reconcile-full',
  invokedFunctionArn: 'arn:aws:lambda:us-east-1:000000000000:function:ledger-reconcile',
  getRemainingTimeInMillis: () => 300_000,
};

interface Summary {
  readonly reconciled: boolean;
  readonly entries: number;
  readonly auditedThrough: number;
  readonly difference: string | null;
  readonly problems: readonly string[];
}

const reconcile = (event: unknown) =>
  (stack.handlers.ledgerReconcile as (e: unknown, c: unknown) => Promise<Summary>)(event, context);

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

beforeAll(async () => {
  moto = await startMoto();
  stack = await startLocalStack({ endpoint: moto.endpoint, stage: 'recfull' });
  ledger = new DynamoLedger(stack.clients.dynamo, stack.names.tables.ledger);
}, 120_000);

afterAll(async () => {
  await stack?.stop();
  await moto?.stop();
});

describe('ledger-reconcile: a full run vs the checkpoint', () => {
  it('a broken entry a full run finds behind the checkpoint is still reported by the next scheduled run', async () => {
    const admin = stack.handlers.admin as (e: unknown, c: unknown) => Promise<{ ok: boolean }>;
    for (let i = 1; i <= 3; i++) {
      expect(
        await admin({ action: 'deposit', amount: '10', idempotencyKey: `dep-${i}` }, context),
      ).toMatchObject({
        ok: true,
      });
    }
    expect(await reconcile(scheduledEvent)).toMatchObject({ reconciled: true, auditedThrough: 3 });

    // Entry 2, already behind the checkpoint, is rewritten to say it deposited 1,000 USD.
    const table = stack.names.tables.ledger;
    const key = (await ledger.journal(INSURANCE_ACCOUNT))[1]!.idempotencyKey;
    const itemKey = { pk: { S: `ACCOUNT#${INSURANCE_ACCOUNT}` }, sk: { S: `J#${key}` } };
    const { Item } = await stack.clients.dynamo.send(new GetItemCommand({ TableName: table, Key: itemKey }));
    await stack.clients.dynamo.send(
      new PutItemCommand({ TableName: table, Item: { ...Item!, amount: { N: '1000000000' } } }),
    );

    // The operator's full audit finds it.
    const full = await reconcile({ full: true });
    expect(full.reconciled).toBe(false);
    expect(full.problems).toContain('entry 2: balanceAfter != balanceBefore + amount');

    // The next scheduled run must report it again (no checkpoint past a problem).
    const next = await reconcile(scheduledEvent);
    expect({ reconciled: next.reconciled, problems: next.problems.length > 0 }).toEqual({
      reconciled: false,
      problems: true,
    });
  }, 60_000);
});
