import { QueryCommand, ScanCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AdapterInputError,
  ApiCallCounter,
  type AwsClients,
  createAwsAdapters,
  createAwsClients,
  createAwsQueueTransports,
  createLocalResources,
  localClientConfig,
  PositionIndexLayout,
  PositionLayoutError,
  type ResourceNames,
  SINGLE_SHARD_LAYOUT,
} from '../../shared/adapters/aws/index.ts';
import { MAX_MOVEMENTS_PER_TRANSACTION } from '../../shared/adapters/aws/ledger.ts';
import { systemClock } from '../../shared/adapters/embedded/clock.ts';
import { base, price, usd } from '../../shared/domain/units.ts';
import {
  ConditionFailedError,
  type JournalEntry,
  LedgerIdempotencyConflictError,
  type LedgerMovement,
  type PositionRecord,
} from '../../shared/ports/index.ts';
import { type MotoServer, startMoto } from '../support/moto.ts';
import { position } from '../support/records.ts';
import { contractSuite, type HarnessFactory } from './suite.ts';

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

/** The AWS family on a fresh stage, positions spread as `positionLayout` says. */
const awsHarness =
  (positionLayout?: PositionIndexLayout): HarnessFactory =>
  async ({ crashHook }) => {
    if (!clients) throw new Error('moto did not start');
    const names = await (nextStage ?? prepareStage(clients));
    nextStage = prepareStage(clients);
    const adapters = createAwsAdapters({
      clients,
      names,
      clock: systemClock,
      ...(crashHook ? { crashHook } : {}),
      ...(positionLayout ? { positionLayout } : {}),
    });
    const queues = createAwsQueueTransports(clients, names);
    const { liquidations, auctionSteps } = queues.deadLetters;
    if (!liquidations || !auctionSteps) throw new Error('work queues without dead-letter queues');
    return {
      adapters,
      transactor: adapters.transactor,
      deadLetters: { liquidations, auctionSteps },
      advance: () => {},
      // `journalSequence` taken off, as a version before session 27 wrote the entries.
      leaveOutOfJournalIndex: async (account, sequences) => {
        const pk = { S: `ACCOUNT#${account}` };
        const { Items } = await clients!.dynamo.send(
          new QueryCommand({
            TableName: names.tables.ledger,
            KeyConditionExpression: 'pk = :pk AND begins_with(sk, :j)',
            ExpressionAttributeValues: { ':pk': pk, ':j': { S: 'J#' } },
          }),
        );
        for (const item of Items ?? [])
          if (sequences.includes(Number(item.sequence!.N)))
            await clients!.dynamo.send(
              new UpdateItemCommand({
                TableName: names.tables.ledger,
                Key: { pk, sk: item.sk! },
                UpdateExpression: 'REMOVE journalSequence',
              }),
            );
      },
      writeBalanceOutsideJournal: async (account, balance, sequence) => {
        await clients!.dynamo.send(
          new UpdateItemCommand({
            TableName: names.tables.ledger,
            Key: { pk: { S: `ACCOUNT#${account}` }, sk: { S: 'BALANCE' } },
            UpdateExpression: 'SET balance = :b, #seq = :s',
            ExpressionAttributeNames: { '#seq': 'sequence' },
            ExpressionAttributeValues: { ':b': { N: String(balance) }, ':s': { N: String(sequence) } },
          }),
        );
      },
      close: async () => {},
    };
  };

/** A fresh stage, and clients on it whose calls are counted (closed afterwards). */
async function withCountedStage(
  run: (stage: {
    names: ResourceNames;
    /** Uncounted clients: another container. */
    plain: AwsClients;
    counter: ApiCallCounter;
    counted: AwsClients;
  }) => Promise<void>,
): Promise<void> {
  if (!clients || !moto) throw new Error('moto did not start');
  const names = await (nextStage ?? prepareStage(clients));
  nextStage = prepareStage(clients);
  const counter = new ApiCallCounter();
  const counted = createAwsClients(localClientConfig(moto.endpoint), counter);
  try {
    await run({ names, plain: clients, counter, counted });
  } finally {
    counted.destroy();
  }
}

// Each property run costs tens of API calls; SQS time is real, so waits poll up to 5 s.
contractSuite('aws (moto)', awsHarness(), { propertyRuns: 25, eventuallyMs: 5_000 });

// Every market's positions over three index shards: the same contract for what reads and writes positions.
contractSuite('aws (moto), three index shards', awsHarness(new PositionIndexLayout({}, 3)), {
  propertyRuns: 25,
  eventuallyMs: 5_000,
  sections: ['positions', 'liquidations'],
});

/**
 * DynamoLedger on two containers of one table: each reads the stored balance before it writes, and a movement
 * lands in one transaction after that read (no read of its key first), with the floor judged on what is stored.
 */
describe('aws ledger across containers', () => {
  const movement = (key: string, amount: bigint, floor = 0n): LedgerMovement => ({
    account: 'fund',
    idempotencyKey: key,
    amount,
    kind: amount < 0n ? 'withdraw' : 'deposit',
    reference: key,
    atMs: 1_000,
    floor,
  });

  it("reads a step's other markets in one BatchGetItem (spent-markets-reads)", () =>
    withCountedStage(async ({ names, counter, counted }) => {
      const a = createAwsAdapters({ clients: counted, names, clock: systemClock });
      const symbols = Array.from({ length: 39 }, (_, i) => `M${i}-USD`);
      for (const symbol of symbols) await a.markets.bumpProvidersEpoch(symbol);
      counter.reset();
      expect(await a.reader.markets(symbols)).toHaveLength(39);
      // 39 GetItem calls before (one per market).
      expect(counter.snapshot()).toEqual({ 'dynamodb.BatchGetItem': 1 });
    }));

  // tidy46-reader-chunks: the reader's runs of 100 keys are chunksOf's now; the calls it sends, as before.
  it('reads more than 100 keys in BatchGetItems of at most 100, one after another, each key once', () =>
    withCountedStage(async ({ names, counter, counted }) => {
      const a = createAwsAdapters({ clients: counted, names, clock: systemClock });
      const symbols = Array.from({ length: 230 }, (_, i) => `M${i}-USD`);
      for (const symbol of symbols) await a.markets.bumpProvidersEpoch(symbol);
      const ids = Array.from({ length: 150 }, (_, i) => `p-${i}`);
      for (const id of ids) await a.positions.create(position({ id }));
      const keys: number[] = [];
      let inFlight = 0;
      let most = 0;
      counted.dynamo.middlewareStack.add(
        (next, context) => async (args) => {
          if (context.commandName !== 'BatchGetItemCommand') return next(args);
          const asked = (args.input as { RequestItems: Record<string, { Keys: unknown[] }> }).RequestItems;
          keys.push(Object.values(asked).reduce((n, r) => n + r.Keys.length, 0));
          inFlight += 1;
          most = Math.max(most, inFlight);
          try {
            return await next(args);
          } finally {
            inFlight -= 1;
          }
        },
        { step: 'initialize', name: 'batchKeys' },
      );
      counter.reset();
      const markets = await a.reader.markets([...symbols, ...symbols.slice(0, 50), 'ABSENT-USD']);
      expect(markets.map((m) => m.symbol).sort()).toEqual([...symbols].sort());
      const positions = await a.reader.positions([...ids, 'absent', 'p-7']);
      expect(positions.map((p) => p.id).sort()).toEqual([...ids].sort());
      expect(keys).toEqual([100, 100, 31, 100, 51]);
      expect(most).toBe(1);
      expect(counter.snapshot()).toEqual({ 'dynamodb.BatchGetItem': 5 });
    }));

  it('chains movements of two containers on the stored balance, one read and one transaction each', () =>
    withCountedStage(async ({ names, plain, counter, counted }) => {
      const a = createAwsAdapters({ clients: counted, names, clock: systemClock }).ledger;
      const b = createAwsAdapters({ clients: plain, names, clock: systemClock }).ledger;
      await a.apply(movement('a1', usd('100')));
      await b.apply(movement('b1', usd('1000')));
      counter.reset();
      expect((await a.apply(movement('a2', usd('-500')))).balanceBefore).toBe(usd('1100'));
      expect(counter.snapshot()).toEqual({ 'dynamodb.GetItem': 1, 'dynamodb.TransactWriteItems': 1 });

      await b.apply(movement('b2', usd('-595')));
      counter.reset();
      // 5 is stored: the draw is refused, its key is looked up once (not applied before), nothing is written.
      await expect(a.apply(movement('a3', usd('-100')))).rejects.toBeInstanceOf(ConditionFailedError);
      expect(counter.snapshot()).toEqual({ 'dynamodb.GetItem': 2 });
      // A draw applied before and refused now (the fund moved on) returns its first entry.
      expect((await b.apply(movement('a2', usd('-500')))).sequence).toBe(3);
      // A credit re-applied: its put's condition finds the key, and the first entry comes back.
      expect((await b.apply(movement('a1', usd('100')))).sequence).toBe(1);

      const journal = await a.journal('fund');
      expect(journal.map((e) => e.idempotencyKey)).toEqual(['a1', 'b1', 'a2', 'b2']);
      journal.forEach((e, i) => {
        expect(e.sequence).toBe(i + 1);
        expect(e.balanceBefore).toBe(i === 0 ? 0n : journal[i - 1]!.balanceAfter);
        expect(e.balanceAfter).toBe(e.balanceBefore + e.amount);
      });
      const balance = await b.balance('fund');
      expect(balance.balance).toBe(usd('5'));
      expect(balance.sequence).toBe(journal.length);
    }));

  // books52-given-back-proved: a give-back is judged on its liquidation's entries, read in its own attempt.
  it("reads a give-back's liquidation entries once more; a settlement's first plan costs what it did", () =>
    withCountedStage(async ({ names, plain, counter, counted }) => {
      const a = createAwsAdapters({ clients: counted, names, clock: systemClock }).ledger;
      const b = createAwsAdapters({ clients: plain, names, clock: systemClock }).ledger;
      await b.apply(movement('seed', usd('1000')));
      const settle = (idempotencyKey: string, kind: string, amount: bigint): LedgerMovement => ({
        account: 'fund',
        idempotencyKey,
        amount,
        kind,
        reference: idempotencyKey.split(':').slice(0, 2).join(':'),
        atMs: 1_000,
        floor: 0n,
      });
      const fresh = await a.balance('fund');
      counter.reset();
      await a.apply(settle('p1:0:fee', 'liquidation-fee', usd('3')), fresh);
      await a.apply(settle('p1:0:shortfall', 'shortfall-payout', usd('-50')));
      expect(counter.snapshot()).toEqual({ 'dynamodb.GetItem': 1, 'dynamodb.TransactWriteItems': 2 });
      counter.reset();
      await a.apply(settle('p1:0:shortfall:r1', 'shortfall-payout', usd('20')));
      expect(counter.snapshot()).toEqual({
        'dynamodb.GetItem': 1,
        'dynamodb.Query': 1,
        'dynamodb.TransactWriteItems': 1,
      });
      // Written by hand, with nothing of its plan: refused on that read, its key looked up, nothing written.
      counter.reset();
      await expect(a.apply(settle('p9:0:fee:r1', 'liquidation-fee', usd('-1')))).rejects.toThrow(
        "ledger/sign-against-kind: liquidation-fee of -1.00 under key p9:0:fee:r1: kind liquidation-fee raises the fund, and lowers it only as a fee given back by a settlement planned again, at most what its plan's key p9:0:fee moved before it (nothing)",
      );
      expect(counter.snapshot()).toEqual({ 'dynamodb.GetItem': 2, 'dynamodb.Query': 1 });
      expect((await b.balance('fund')).balance).toBe(usd('973'));
    }));

  it("writes on the caller's fresh read of the balance; a stale one costs a read, never a wrong balance", () =>
    withCountedStage(async ({ names, plain, counter, counted }) => {
      const a = createAwsAdapters({ clients: counted, names, clock: systemClock }).ledger;
      const b = createAwsAdapters({ clients: plain, names, clock: systemClock }).ledger;
      await b.apply(movement('b1', usd('1000')));
      const fresh = await a.balance('fund');
      counter.reset();
      expect((await a.apply(movement('a1', usd('-100')), fresh)).balanceAfter).toBe(usd('900'));
      expect(counter.snapshot()).toEqual({ 'dynamodb.TransactWriteItems': 1 });

      // Another container moved the fund after this read: the write's condition fails, the balance is read.
      const stale = await a.balance('fund');
      await b.apply(movement('b2', usd('-850')));
      counter.reset();
      expect((await a.apply(movement('a2', usd('10')), stale)).balanceBefore).toBe(usd('50'));
      expect(counter.snapshot()).toEqual({ 'dynamodb.GetItem': 1, 'dynamodb.TransactWriteItems': 2 });
      // A draw the stale read would allow and the fund refuses is refused, after a read.
      const before = await a.balance('fund');
      await b.apply(movement('b3', usd('-60')));
      await expect(a.apply(movement('a3', usd('-1')), before)).rejects.toBeInstanceOf(ConditionFailedError);
      // A draw the stale read would refuse and the fund allows is applied, after a read.
      const poor = await a.balance('fund');
      await b.apply(movement('b4', usd('1000')));
      expect((await a.apply(movement('a4', usd('-500')), poor)).balanceAfter).toBe(usd('500'));
      // This process saw the account move on (its own movement): an older read is not even tried.
      counter.reset();
      expect((await a.apply(movement('a5', usd('1')), poor)).balanceBefore).toBe(usd('500'));
      expect(counter.snapshot()).toEqual({ 'dynamodb.GetItem': 1, 'dynamodb.TransactWriteItems': 1 });
      const balance = await b.balance('fund');
      expect(balance.balance).toBe(usd('501'));
    }));

  it('commits concurrent movements of one container together: one read and one transaction for a burst', () =>
    withCountedStage(async ({ names, counter, counted }) => {
      const ledger = createAwsAdapters({ clients: counted, names, clock: systemClock }).ledger;
      // 30 credits and, in their midst, a draw the floor refuses: it fails alone, the others commit together.
      const credits = Array.from({ length: 30 }, (_, i) => ledger.apply(movement(`c${i}`, usd('10'))));
      // Caught at once: it is refused before the credits commit.
      const refused = ledger.apply(movement('too-much', usd('-1000000'))).catch((error: unknown) => error);
      const entries = await Promise.all(credits);
      expect(await refused).toBeInstanceOf(ConditionFailedError);
      // One read of the balance, the look-up of the refused draw's key, one transaction for the 30.
      expect(counter.snapshot()).toEqual({ 'dynamodb.GetItem': 2, 'dynamodb.TransactWriteItems': 1 });
      // Applied in the order asked, each on the balance the ones before it left.
      expect(entries.map((e) => e.sequence)).toEqual(entries.map((_, i) => i + 1));
      const journal = await ledger.journal('fund');
      expect(journal).toEqual(entries);
      expect((await ledger.balance('fund')).balance).toBe(usd('300'));
    }));

  it(`carries at most ${MAX_MOVEMENTS_PER_TRANSACTION} movements per transaction; a larger burst takes more`, () =>
    withCountedStage(async ({ names, counter, counted }) => {
      const ledger = createAwsAdapters({ clients: counted, names, clock: systemClock }).ledger;
      const count = 2 * MAX_MOVEMENTS_PER_TRANSACTION + 7;
      const entries = await Promise.all(
        Array.from({ length: count }, (_, i) => ledger.apply(movement(`c${i}`, usd('1')))),
      );
      expect(counter.snapshot()).toEqual({ 'dynamodb.GetItem': 3, 'dynamodb.TransactWriteItems': 3 });
      expect(entries.map((e) => e.sequence)).toEqual(entries.map((_, i) => i + 1));
      expect(await ledger.balance('fund')).toMatchObject({ balance: usd(String(count)), sequence: count });
    }));

  it('judges each movement of a burst on the balance the ones before it leave, in the order asked', () =>
    withCountedStage(async ({ names, counted }) => {
      const ledger = createAwsAdapters({ clients: counted, names, clock: systemClock }).ledger;
      const [early, credit, late] = await Promise.allSettled([
        ledger.apply(movement('early-draw', usd('-50'))),
        ledger.apply(movement('credit', usd('100'))),
        ledger.apply(movement('late-draw', usd('-50'))),
      ]);
      expect(early.status === 'rejected' && early.reason).toBeInstanceOf(ConditionFailedError);
      expect(credit.status === 'fulfilled' && credit.value).toMatchObject({
        sequence: 1,
        balanceAfter: usd('100'),
      });
      expect(late.status === 'fulfilled' && late.value).toMatchObject({
        sequence: 2,
        balanceAfter: usd('50'),
      });
      expect((await ledger.journal('fund')).map((e) => e.idempotencyKey)).toEqual(['credit', 'late-draw']);
    }));

  it('judges a key repeated in a burst in its arrival order, after a first copy the floor refused', () =>
    withCountedStage(async ({ names, counted }) => {
      const ledger = createAwsAdapters({ clients: counted, names, clock: systemClock }).ledger;
      // An empty fund: k1 is refused, k2 credits 100, the repeat of k1 draws it, k3 is refused.
      const outcomes = await Promise.allSettled([
        ledger.apply(movement('k1', usd('-100'))),
        ledger.apply(movement('k2', usd('100'))),
        ledger.apply(movement('k1', usd('-100'))),
        ledger.apply(movement('k3', usd('-100'))),
      ]);
      expect(outcomes.map((o) => (o.status === 'fulfilled' ? o.value.sequence : 'refused'))).toEqual([
        'refused',
        1,
        2,
        'refused',
      ]);
    }));

  it(
    'a burst commits as its movements would one after the other, in the order asked (property)',
    () =>
      withCountedStage(async ({ names, counter, counted }) => {
        const ledger = createAwsAdapters({ clients: counted, names, clock: systemClock }).ledger;
        let run = 0;
        await fc.assert(
          fc.asyncProperty(
            // Bursts of movements with distinct keys; keys repeat across bursts (applied before, or refused).
            fc.array(
              fc.uniqueArray(
                fc.record({
                  key: fc.integer({ min: 0, max: 9 }),
                  amount: fc.bigInt({ min: -40n, max: 40n }),
                  floor: fc.bigInt({ min: -10n, max: 10n }),
                }),
                { selector: (m) => m.key, maxLength: 8 },
              ),
              { minLength: 1, maxLength: 4 },
            ),
            async (bursts) => {
              const account = `burst-${run++}`;
              const model = { balance: 0n, journal: [] as JournalEntry[] };
              let appliedBefore = 0;
              counter.reset();
              for (const burst of bursts) {
                const movements = burst.map(
                  (m): LedgerMovement => ({
                    account,
                    idempotencyKey: `k${m.key}`,
                    amount: m.amount,
                    kind: m.amount < 0n ? 'withdraw' : 'deposit',
                    reference: `k${m.key}`,
                    atMs: 1_000,
                    floor: m.floor,
                  }),
                );
                appliedBefore += movements.filter((m) =>
                  model.journal.some((e) => e.idempotencyKey === m.idempotencyKey),
                ).length;
                const outcomes = await Promise.allSettled(movements.map((m) => ledger.apply(m)));
                movements.forEach((m, i) => {
                  const outcome = outcomes[i]!;
                  const applied = model.journal.find((e) => e.idempotencyKey === m.idempotencyKey);
                  if (applied) {
                    if (applied.amount === m.amount)
                      expect(outcome).toEqual({ status: 'fulfilled', value: { ...applied, replayed: true } });
                    else expect(outcome.status === 'rejected' && outcome.reason).toBeInstanceOf(Error);
                    return;
                  }
                  const after = model.balance + m.amount;
                  if (m.amount < 0n && after < m.floor) {
                    expect(outcome.status === 'rejected' && outcome.reason).toBeInstanceOf(
                      ConditionFailedError,
                    );
                    return;
                  }
                  const entry = outcome.status === 'fulfilled' ? outcome.value : undefined;
                  expect(entry).toMatchObject({
                    idempotencyKey: m.idempotencyKey,
                    balanceBefore: model.balance,
                    balanceAfter: after,
                    sequence: model.journal.length + 1,
                  });
                  model.journal.push(entry!);
                  model.balance = after;
                });
              }
              expect(await ledger.journal(account)).toEqual(model.journal);
              expect((await ledger.balance(account)).balance).toBe(model.balance);
              // One transaction a burst; each that fails finds at least one key applied before.
              expect(counter.snapshot()['dynamodb.TransactWriteItems'] ?? 0).toBeLessThanOrEqual(
                bursts.length + appliedBefore,
              );
            },
          ),
          { numRuns: 25 },
        );
      }),
    // Hundreds of calls on the one emulator the whole suite shares.
    180_000,
  );

  it('a key applied before, in a burst of new ones, returns its first entry; the others still commit', () =>
    withCountedStage(async ({ names, plain, counter, counted }) => {
      const ledger = createAwsAdapters({ clients: counted, names, clock: systemClock }).ledger;
      // Applied by another container: this one cannot know it before its transaction finds the key.
      const other = createAwsAdapters({ clients: plain, names, clock: systemClock }).ledger;
      const first = await other.apply(movement('x', usd('5')));
      counter.reset();
      const [a, again, b] = await Promise.all([
        ledger.apply(movement('a', usd('1'))),
        ledger.apply(movement('x', usd('5'))),
        ledger.apply(movement('b', usd('2'))),
      ]);
      expect(again).toEqual({ ...first, replayed: true });
      expect([a?.sequence, b?.sequence]).toEqual([2, 3]);
      // The transaction that found the key, its look-up, a read and the transaction of the others.
      expect(counter.snapshot()).toEqual({ 'dynamodb.GetItem': 3, 'dynamodb.TransactWriteItems': 2 });
      // The same key with another amount is a caller bug, in a burst as alone; the other movement commits.
      const [c, conflict] = await Promise.allSettled([
        ledger.apply(movement('c', usd('1'))),
        ledger.apply(movement('x', usd('6'))),
      ]);
      expect(c.status === 'fulfilled' && c.value.sequence).toBe(4);
      expect(conflict.status === 'rejected' && conflict.reason).toBeInstanceOf(
        LedgerIdempotencyConflictError,
      );
      expect(await ledger.balance('fund')).toMatchObject({ balance: usd('9'), sequence: 4 });
    }));
});

describe('aws position index shards', () => {
  const layout = new PositionIndexLayout({ 'BTC-USD': 4 });
  const long = (id: string, liquidationPrice: string, symbol = 'BTC-USD'): PositionRecord => ({
    id,
    traderId: 'trader-1',
    symbol,
    side: 'LONG',
    size: base('1'),
    entryPrice: price('30000'),
    collateral: usd('3000'),
    state: 'OPEN',
    version: 1,
    liquidationPrice: price(liquidationPrice),
  });
  const ids = (page: { positions: readonly PositionRecord[] }) => page.positions.map((p) => p.id);

  it("spreads a market side over its shards; a read queries each of them, another market's one", () =>
    withCountedStage(async ({ names, plain, counter, counted }) => {
      const writer = createAwsAdapters({ clients: plain, names, clock: systemClock, positionLayout: layout });
      for (let i = 0; i < 40; i++) await writer.positions.create(long(`btc-${i}`, String(20000 + i)));
      await writer.positions.create(long('eth-0', '1000', 'ETH-USD'));
      const scan = await plain.dynamo.send(new ScanCommand({ TableName: names.tables.positions }));
      const keys = new Set((scan.Items ?? []).map((item) => item.liqKey?.S));
      expect([...keys].sort()).toEqual([
        'BTC-USD#LONG#0',
        'BTC-USD#LONG#1',
        'BTC-USD#LONG#2',
        'BTC-USD#LONG#3',
        'ETH-USD#LONG#0',
      ]);

      const reader = createAwsAdapters({
        clients: counted,
        names,
        clock: systemClock,
        positionLayout: layout,
      });
      const btc = await reader.positions.queryCrossed('BTC-USD', 'LONG', price('20035'), 100);
      expect(ids(btc)).toEqual(['btc-39', 'btc-38', 'btc-37', 'btc-36', 'btc-35']);
      expect(btc.cursor).toBeUndefined();
      expect(counter.snapshot()).toEqual({ 'dynamodb.Query': 4 });
      counter.reset();
      expect(ids(await reader.positions.queryCrossed('ETH-USD', 'LONG', price('900'), 100))).toEqual([
        'eth-0',
      ]);
      expect(counter.snapshot()).toEqual({ 'dynamodb.Query': 1 });
    }));

  it('raises a count in two deploys: readers first, every position seen at each step, moved when written', () =>
    withCountedStage(async ({ names, plain }) => {
      const at = (positionLayout: PositionIndexLayout) =>
        createAwsAdapters({ clients: plain, names, clock: systemClock, positionLayout });
      const before = at(SINGLE_SHARD_LAYOUT);
      // Step one: every function reads four shards and still writes in shard 0, where the others look.
      const readersFirst = at(new PositionIndexLayout({ 'BTC-USD': { read: 4, write: 1 } }));
      const after = at(layout);
      const all = async (reader: typeof before) => {
        const seen: string[] = [];
        let cursor: string | undefined;
        do {
          const page = await reader.positions.queryCrossed('BTC-USD', 'LONG', price('1'), 5, cursor);
          seen.push(...ids(page));
          cursor = page.cursor;
        } while (cursor !== undefined);
        return seen;
      };
      const descending = Array.from({ length: 12 }, (_, i) => `btc-${11 - i}`);
      for (let i = 0; i < 6; i++) await before.positions.create(long(`btc-${i}`, String(20000 + i)));
      for (let i = 6; i < 12; i++) await readersFirst.positions.create(long(`btc-${i}`, String(20000 + i)));
      // A function not yet on step one sees what step one wrote; step one sees everything.
      expect(await all(before)).toEqual(descending);
      expect(await all(readersFirst)).toEqual(descending);
      // Step two: positions move to their own shards as they are written; the others are read where they are.
      expect(await all(after)).toEqual(descending);
      for (let i = 0; i < 12; i += 2) {
        const p = (await after.positions.get(`btc-${i}`))!;
        await after.positions.replace({ ...p, version: 2 }, 1);
      }
      const scan = await plain.dynamo.send(new ScanCommand({ TableName: names.tables.positions }));
      expect(new Set((scan.Items ?? []).map((item) => item.liqKey?.S)).size).toBeGreaterThan(1);
      expect(await all(after)).toEqual(descending);
      expect(await all(readersFirst)).toEqual(descending);
    }));

  it('reprice by an adapter of another layout leaves a position in the partition the functions read', () =>
    withCountedStage(async ({ names, plain }) => {
      const at = (positionLayout: PositionIndexLayout) =>
        createAwsAdapters({ clients: plain, names, clock: systemClock, positionLayout });
      // The functions run on one shard; an operator's shell thinks four (a raise it planned).
      const functions = at(SINGLE_SHARD_LAYOUT);
      const operator = at(layout);
      for (let i = 0; i < 10; i++) await functions.positions.create(long(`btc-${i}`, String(20000 + i)));
      for (let i = 0; i < 10; i++) await operator.positions.reprice(`btc-${i}`, price(String(21000 + i)), 1);
      const page = await functions.positions.queryCrossed('BTC-USD', 'LONG', price('20500'), 100);
      expect(ids(page)).toEqual(Array.from({ length: 10 }, (_, i) => `btc-${9 - i}`));
      expect(page.positions.every((p) => p.version === 2)).toBe(true);
    }));

  it('refuses a cursor of another shard count, and a count out of range', () =>
    withCountedStage(async ({ names, plain }) => {
      const one = createAwsAdapters({ clients: plain, names, clock: systemClock });
      const four = createAwsAdapters({ clients: plain, names, clock: systemClock, positionLayout: layout });
      for (let i = 0; i < 6; i++) await four.positions.create(long(`btc-${i}`, String(20000 + i)));
      const page = await four.positions.queryAdlOrder('BTC-USD', 'LONG', 'leverage', 2);
      expect(page.cursor).toBeDefined();
      await expect(
        one.positions.queryAdlOrder('BTC-USD', 'LONG', 'leverage', 2, page.cursor),
      ).rejects.toBeInstanceOf(AdapterInputError);
      expect(() => new PositionIndexLayout({ 'BTC-USD': 17 })).toThrow(PositionLayoutError);
      expect(() => new PositionIndexLayout({ btc: 2 })).toThrow(/market symbol/);
    }));
});
