import fc from 'fast-check';
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
import { MAX_MOVEMENTS_PER_TRANSACTION } from '../../shared/adapters/aws/ledger.ts';
import { systemClock } from '../../shared/adapters/embedded/clock.ts';
import { usd } from '../../shared/domain/units.ts';
import {
  ConditionFailedError,
  type JournalEntry,
  LedgerIdempotencyConflictError,
  type LedgerMovement,
} from '../../shared/ports/index.ts';
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
 * DynamoLedger on two containers of one table: each reads the stored balance before it writes, and a movement
 * lands in one transaction after that read (no read of its key first), with the floor judged on what is stored.
 */
describe('aws ledger across containers', () => {
  const movement = (key: string, amount: bigint, floor = 0n): LedgerMovement => ({
    account: 'fund',
    idempotencyKey: key,
    amount,
    kind: amount < 0n ? 'draw' : 'deposit',
    reference: key,
    atMs: 1_000,
    floor,
  });

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
                    kind: 'test',
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
                      expect(outcome).toEqual({ status: 'fulfilled', value: applied });
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
      expect(again).toEqual(first);
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
