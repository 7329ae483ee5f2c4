import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ApiCallCounter,
  type AwsClients,
  createAwsAdapters,
  createAwsClients,
  createAwsQueueTransports,
  createLocalResources,
  localClientConfig,
  type ResourceNames,
} from '../../shared/adapters/aws/index.ts';
import { systemClock } from '../../shared/adapters/embedded/clock.ts';
import { usd } from '../../shared/domain/units.ts';
import { ConditionFailedError, type LedgerMovement } from '../../shared/ports/index.ts';
import { type MotoServer, startMoto } from '../support/moto.ts';
import { contractSuite } from './suite.ts';

/**
 * The AWS adapters against moto (real DynamoDB and SQS APIs, real time). Each test gets its own stage
 * (fresh tables and queues, created while the previous test runs), so tests never see each other's data.
 */

let moto: MotoServer | undefined;
let clients: AwsClients | undefined;
let stages = 0;
/** The next test's stage, created while the current test runs. */
let nextStage: Promise<ResourceNames> | undefined;

const prepareStage = (c: AwsClients): Promise<ResourceNames> => {
  const stage = createLocalResources(c, `contract${stages++}`);
  stage.catch(() => undefined);
  return stage;
};

beforeAll(async () => {
  moto = await startMoto();
  clients = createAwsClients(localClientConfig(moto.endpoint));
});

afterAll(async () => {
  await nextStage?.catch(() => undefined);
  clients?.destroy();
  await moto?.stop();
});

contractSuite(
  'aws (moto)',
  async ({ crashHook }) => {
    if (!clients) throw new Error('moto did not start');
    const names = await (nextStage ?? prepareStage(clients));
    nextStage = prepareStage(clients);
    const adapters = createAwsAdapters({
      clients,
      names,
      clock: systemClock,
      ...(crashHook ? { crashHook } : {}),
    });
    const queues = createAwsQueueTransports(clients, names);
    const { liquidations, auctionSteps } = queues.deadLetters;
    if (!liquidations || !auctionSteps) throw new Error('work queues without dead-letter queues');
    return {
      adapters,
      transactor: adapters.transactor,
      deadLetters: { liquidations, auctionSteps },
      advance: () => {},
      close: async () => {},
    };
  },
  // Each property run costs tens of API calls; SQS time is real, so waits poll up to 5 s.
  { propertyRuns: 25, eventuallyMs: 5_000 },
);

/**
 * DynamoLedger keeps the balance it last saw per container as a stand-in for a read. Two containers on one
 * table: each one's hint goes stale when the other writes, and every movement must still land on the stored
 * balance, in one contiguous chain, with the floor judged on what is stored.
 */
describe('aws ledger across containers (stale balance hints)', () => {
  const movement = (key: string, amount: bigint, floor = 0n): LedgerMovement => ({
    account: 'fund',
    idempotencyKey: key,
    amount,
    kind: amount < 0n ? 'draw' : 'deposit',
    reference: key,
    atMs: 1_000,
    floor,
  });

  it('chains movements of two containers on the stored balance, one transaction when the hint holds', async () => {
    if (!clients || !moto) throw new Error('moto did not start');
    const names = await (nextStage ?? prepareStage(clients));
    nextStage = prepareStage(clients);
    const counter = new ApiCallCounter();
    const counted = createAwsClients(localClientConfig(moto.endpoint), counter);
    try {
      const a = createAwsAdapters({ clients: counted, names, clock: systemClock }).ledger;
      const b = createAwsAdapters({ clients, names, clock: systemClock }).ledger;
      await a.apply(movement('a1', usd('100')));
      counter.reset();
      await a.apply(movement('a2', usd('5')));
      // The hint from a1 holds: no read, one transaction.
      expect(counter.snapshot()).toEqual({ 'dynamodb.TransactWriteItems': 1 });

      await b.apply(movement('b1', usd('1000')));
      counter.reset();
      // a's hint (105) is stale: its failed condition returns the stored item, and the retry lands on it.
      expect((await a.apply(movement('a3', usd('10')))).balanceBefore).toBe(usd('1105'));
      expect(counter.snapshot()).toEqual({ 'dynamodb.TransactWriteItems': 2 });

      await b.apply(movement('b2', usd('-1110')));
      counter.reset();
      // a's hint says 1115 while 5 is stored: the draw is refused on what is stored, and writes nothing.
      await expect(a.apply(movement('a4', usd('-100')))).rejects.toBeInstanceOf(ConditionFailedError);
      expect(counter.snapshot()).toEqual({ 'dynamodb.GetItem': 1, 'dynamodb.TransactWriteItems': 1 });
      // A hint that refuses is read again: b's hint (5) is stale once a deposits, and b's draw then succeeds.
      await a.apply(movement('a5', usd('200')));
      expect((await b.apply(movement('b3', usd('-150')))).balanceAfter).toBe(usd('55'));
      // Re-applying a key through a stale hint still returns the first entry.
      expect((await b.apply(movement('a2', usd('5')))).sequence).toBe(2);

      const journal = await a.journal('fund');
      expect(journal.map((e) => e.idempotencyKey)).toEqual(['a1', 'a2', 'b1', 'a3', 'b2', 'a5', 'b3']);
      journal.forEach((e, i) => {
        expect(e.sequence).toBe(i + 1);
        expect(e.balanceBefore).toBe(i === 0 ? 0n : journal[i - 1]!.balanceAfter);
        expect(e.balanceAfter).toBe(e.balanceBefore + e.amount);
      });
      const balance = await b.balance('fund');
      expect(balance.balance).toBe(journal.reduce((sum, e) => sum + e.amount, 0n));
      expect(balance.sequence).toBe(journal.length);
    } finally {
      counted.destroy();
    }
  });
});
