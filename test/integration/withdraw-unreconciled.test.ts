import { UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import { type AwsClients, createAwsClients, localClientConfig } from '../../shared/adapters/aws/index.ts';
import { DynamoLedger } from '../../shared/adapters/aws/ledger.ts';
import { DEFAULT_RISK_CONFIG } from '../../shared/domain/config.ts';
import { parseQuote } from '../../shared/domain/units.ts';
import { silentTelemetry } from '../../shared/ports/index.ts';
import { type AdminDeps, handleAdmin } from '../../shared/services/admin.ts';
import { INSURANCE_ACCOUNT } from '../../shared/services/context.ts';
import { reconcileAccount } from '../../shared/services/reconcile.ts';
import { motoStages } from '../support/moto.ts';

/**
 * A withdrawal is checked against the fund's journal, then written on exactly the balance it checked
 * (withdraw46-unreconciled): what changes the balance item between the check and the write, the real AWS SDK's
 * TransactWriteItems against moto must refuse. The change is made by a middleware just before the withdrawal's
 * transaction is sent.
 */

const moto = motoStages('withdraw');
const usd = (v: string) => parseQuote(v);

type Middleware = Parameters<AwsClients['dynamo']['middlewareStack']['add']>[0];

/** Runs `between` once, just before the first TransactWriteItems that journals `key` is sent. */
function beforeCommitOf(clients: AwsClients, key: string, between: () => Promise<void>) {
  const state = { fired: 0 };
  const middleware = ((
    next: (args: { input: unknown }) => Promise<unknown>,
    context: { commandName?: string },
  ) =>
    async (args: { input: unknown }) => {
      if (
        state.fired === 0 &&
        context.commandName === 'TransactWriteItemsCommand' &&
        JSON.stringify(args.input).includes(`"J#${key}"`)
      ) {
        state.fired += 1;
        await between();
      }
      return next(args);
    }) as unknown as Middleware;
  clients.dynamo.middlewareStack.add(middleware, { step: 'deserialize', name: 'beforeCommit' });
  return state;
}

async function setUp() {
  const { clients, names, adapters } = await moto.stage();
  const deps: AdminDeps = {
    ...adapters,
    config: DEFAULT_RISK_CONFIG,
    telemetry: silentTelemetry,
    nowMs: () => Date.now(),
  };
  expect(await handleAdmin({ action: 'deposit', amount: '100', idempotencyKey: 'd1' }, deps)).toMatchObject({
    ok: true,
  });
  const withdraw = (amount: string, key: string) =>
    handleAdmin({ action: 'withdraw', amount, idempotencyKey: key }, deps);
  const fund = async () => ({
    balance: await adapters.ledger.balance(INSURANCE_ACCOUNT),
    journal: (await adapters.ledger.journal(INSURANCE_ACCOUNT)).map((e) => e.idempotencyKey),
  });
  return { clients, names, adapters, withdraw, fund };
}

describe('a withdrawal racing a change of the fund between its check and its write (moto, real SDK)', () => {
  it('does not slip through when the balance item is written by hand in between', async () => {
    const { clients, names, withdraw, fund } = await setUp();
    // By hand, as the runbook's case: 10 USD more in the balance item, no journal entry.
    const race = beforeCommitOf(clients, 'admin:w1', async () => {
      await clients.dynamo.send(
        new UpdateItemCommand({
          TableName: names.tables.ledger,
          Key: { pk: { S: `ACCOUNT#${INSURANCE_ACCOUNT}` }, sk: { S: 'BALANCE' } },
          UpdateExpression: 'SET balance = :n',
          ConditionExpression: 'balance = :o',
          ExpressionAttributeValues: { ':n': { N: '110000000' }, ':o': { N: '100000000' } },
        }),
      );
    });
    const result = await withdraw('30', 'w1');
    expect(race.fired).toBe(1);
    expect(result).toMatchObject({
      ok: false,
      reason: expect.stringMatching(
        /^admin\/fund-not-reconciled: the fund's balance does not reconcile with its journal \(balance 110\.00 USD at entry 1; difference \+10\.00 USD from the journal's sum\); nothing moved\./,
      ),
    });
    expect(await fund()).toMatchObject({
      balance: { balance: usd('110'), sequence: 1 },
      journal: ['admin:d1'],
    });
    clients.destroy();
  });

  it('checks again on a movement another process committed in between, and moves once on the new balance', async () => {
    const { clients, names, adapters, withdraw, fund } = await setUp();
    // A settlement's fee from another container: its own client and ledger (no group commit with this one).
    const other = createAwsClients(localClientConfig(moto.endpoint()));
    const race = beforeCommitOf(clients, 'admin:w1', async () => {
      await new DynamoLedger(other.dynamo, names.tables.ledger).apply({
        account: INSURANCE_ACCOUNT,
        idempotencyKey: 'p1:0:fee',
        amount: usd('5'),
        kind: 'fee',
        reference: 'p1:0',
        atMs: Date.now(),
        floor: 0n,
      });
    });
    expect(await withdraw('30', 'w1')).toMatchObject({
      ok: true,
      entry: { sequence: 3, balanceBefore: usd('105'), balanceAfter: usd('75') },
    });
    expect(race.fired).toBe(1);
    expect(await fund()).toMatchObject({
      balance: { balance: usd('75'), sequence: 3 },
      journal: ['admin:d1', 'p1:0:fee', 'admin:w1'],
    });
    const report = await reconcileAccount(adapters.ledger, INSURANCE_ACCOUNT, silentTelemetry);
    expect([report.difference, report.problems]).toEqual([0n, []]);
    other.destroy();
    clients.destroy();
  });
});
