import { type AttributeValue, GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AwsAdapters,
  type AwsClients,
  createAwsAdapters,
  createAwsClients,
  createAwsQueueTransports,
  createLocalResources,
  localClientConfig,
  NewerWriterError,
  RECORD_SCHEMA,
  type ResourceNames,
  SCHEMA_ATTR,
} from '../../shared/adapters/aws/index.ts';
import { systemClock } from '../../shared/adapters/embedded/clock.ts';
import { DEFAULT_RISK_CONFIG_INPUT } from '../../shared/domain/config.ts';
import type { JournalAudit } from '../../shared/domain/journal-audit.ts';
import { base, price, usd } from '../../shared/domain/units.ts';
import { startLocalStack } from '../../shared/local/stack.ts';
import { type AuctionRecord, ConditionFailedError, type ProviderRecord } from '../../shared/ports/index.ts';
import { createLocalRunner } from '../../shared/runner/index.ts';
import { lambdaContext, sqsEvent, sqsRecord } from '../../shared/runner/lambda-events.ts';
import { type MotoServer, startMoto } from '../support/moto.ts';
import { liquidation, position } from '../support/records.ts';

/**
 * The writer-schema fence (adapters/aws/writer-schema.ts). During a rolling deploy an older function that read an
 * item a newer one wrote put it back whole without the attributes it did not know, its version condition passing:
 * found in session 39 (adl-leverage-unkeyed, `openShard`), fenced in session 41. Each write below meets an item
 * a newer Backstop stored (its schema one above ours, with an attribute this code does not know) and must leave it
 * as it is, with NewerWriterError; an item of the version before the fence (no schema) is written as always.
 */

let moto: MotoServer;
let clients: AwsClients;
let stages = 0;

beforeAll(async () => {
  moto = await startMoto();
  clients = createAwsClients(localClientConfig(moto.endpoint));
});
afterAll(async () => {
  clients?.destroy();
  await moto?.stop();
});

const FUTURE = { S: 'an attribute of the newer version' };

async function fresh(): Promise<{ names: ResourceNames; adapters: AwsAdapters }> {
  const names = await createLocalResources(clients, `fence${stages++}`);
  return { names, adapters: createAwsAdapters({ clients, names, clock: systemClock }) };
}

async function stored(table: string, key: Record<string, AttributeValue>) {
  const out = await clients.dynamo.send(
    new GetItemCommand({ TableName: table, Key: key, ConsistentRead: true }),
  );
  if (!out.Item) throw new Error(`no item ${JSON.stringify(key)} in ${table}`);
  return out.Item;
}

/** The item as a newer Backstop would store it: its schema above ours, and an attribute unknown here. */
async function writtenByNewer(
  table: string,
  key: Record<string, AttributeValue>,
): Promise<Record<string, AttributeValue>> {
  const item = {
    ...(await stored(table, key)),
    [SCHEMA_ATTR]: { N: String(RECORD_SCHEMA + 1) },
    futureAttr: FUTURE,
  };
  await clients.dynamo.send(new PutItemCommand({ TableName: table, Item: item }));
  return item;
}

/** The item as the version before the fence stored it: no schema. */
async function writtenByPrevious(table: string, key: Record<string, AttributeValue>) {
  const { [SCHEMA_ATTR]: _none, ...item } = await stored(table, key);
  await clients.dynamo.send(new PutItemCommand({ TableName: table, Item: item }));
}

/** The write refused with NewerWriterError naming the table, the key and both schemas; never a version conflict. */
async function refusedAsNewer(write: Promise<unknown>, table: string, key: string): Promise<void> {
  const error = await write.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(NewerWriterError);
  expect(error).not.toBeInstanceOf(ConditionFailedError);
  expect((error as Error).message).toContain(
    `${table} ${key} was written by a newer Backstop (schema ${RECORD_SCHEMA + 1} > ${RECORD_SCHEMA}); this older code leaves it for the newer to write`,
  );
}

const id = (value: string) => ({ id: { S: value } });

const auction = (over: Partial<AuctionRecord> = {}): AuctionRecord => ({
  id: 'auc-1',
  liquidationId: 'pos-1:1',
  symbol: 'ETH-USD',
  direction: 'SELL',
  lot: base('2'),
  remainingLot: base('2'),
  top: price('1950.5'),
  startedAtMs: 1_584_050_000_000,
  resets: 0,
  step: 0,
  state: 'RUNNING',
  fills: [],
  version: 1,
  ...over,
});

const provider = (over: Partial<ProviderRecord> = {}): ProviderRecord => ({
  id: 'lp-1',
  capital: usd('1000000'),
  maxDiscountPpm: 50_000n,
  maxLot: base('100'),
  symbols: ['ETH-USD'],
  version: 1,
  ...over,
});

describe('whole-item writes over a newer writer’s item', () => {
  it('positions: a replace is refused and the item kept; one of the version before is written, stamped', async () => {
    const { names, adapters } = await fresh();
    const table = names.tables.positions;
    await adapters.positions.create(position());
    expect((await stored(table, id('pos-1')))[SCHEMA_ATTR]).toEqual({ N: String(RECORD_SCHEMA) });

    const newer = await writtenByNewer(table, id('pos-1'));
    await refusedAsNewer(
      adapters.positions.replace(position({ collateral: usd('140'), version: 2 }), 1),
      table,
      'id=pos-1',
    );
    expect(await stored(table, id('pos-1'))).toEqual(newer);

    await writtenByPrevious(table, id('pos-1'));
    await adapters.positions.replace(position({ collateral: usd('140'), version: 2 }), 1);
    const written = await stored(table, id('pos-1'));
    expect(written).toMatchObject({ version: { N: '2' }, [SCHEMA_ATTR]: { N: String(RECORD_SCHEMA) } });
    // A stale read still meets a version conflict, as before.
    await expect(adapters.positions.replace(position({ version: 2 }), 1)).rejects.toBeInstanceOf(
      ConditionFailedError,
    );
  });

  it('liquidations: a replace is refused (not taken for a moved key) and the item kept; the version before’s is written', async () => {
    const { names, adapters } = await fresh();
    const table = names.tables.liquidations;
    await adapters.positions.create(position());
    await adapters.liquidations.begin(position(), liquidation());
    const newer = await writtenByNewer(table, id('pos-1:1'));
    const executing = liquidation({ state: 'EXECUTING', version: 2 });
    await refusedAsNewer(adapters.liquidations.replace(executing, 1), table, 'id=pos-1:1');
    expect(await stored(table, id('pos-1:1'))).toEqual(newer);

    await writtenByPrevious(table, id('pos-1:1'));
    await adapters.liquidations.replace(executing, 1);
    expect(await adapters.liquidations.get('pos-1:1')).toMatchObject({ state: 'EXECUTING', version: 2 });
  });

  it('liquidations with their position, in one transaction: a newer position refuses both, and both are kept', async () => {
    const { names, adapters } = await fresh();
    await adapters.positions.create(position());
    await adapters.liquidations.begin(position(), liquidation());
    const liquidationBefore = await stored(names.tables.liquidations, id('pos-1:1'));
    const newer = await writtenByNewer(names.tables.positions, id('pos-1'));
    const write = () =>
      adapters.liquidations.replaceWithPosition(
        liquidation({ state: 'EXECUTING', version: 2 }),
        1,
        position({ state: 'LIQUIDATING', version: 3 }),
        2,
      );
    await refusedAsNewer(write(), names.tables.positions, 'id=pos-1');
    expect(await stored(names.tables.positions, id('pos-1'))).toEqual(newer);
    expect(await stored(names.tables.liquidations, id('pos-1:1'))).toEqual(liquidationBefore);

    await writtenByPrevious(names.tables.positions, id('pos-1'));
    await write();
    expect((await adapters.positions.get('pos-1'))?.version).toBe(3);
  });

  it('auctions: a replace is refused and the item kept; the version before’s is written', async () => {
    const { names, adapters } = await fresh();
    const table = names.tables.auctions;
    await adapters.auctions.create(auction());
    const newer = await writtenByNewer(table, id('auc-1'));
    const stepped = auction({ step: 1, version: 2 });
    await refusedAsNewer(adapters.auctions.replace(stepped, 1), table, 'id=auc-1');
    expect(await stored(table, id('auc-1'))).toEqual(newer);

    await writtenByPrevious(table, id('auc-1'));
    await adapters.auctions.replace(stepped, 1);
    expect((await adapters.auctions.get('auc-1'))?.step).toBe(1);
  });

  it('providers: a replace is refused and the item kept', async () => {
    const { names, adapters } = await fresh();
    const table = names.tables.providers;
    await adapters.providers.put(provider(), undefined);
    const newer = await writtenByNewer(table, id('lp-1'));
    await refusedAsNewer(
      adapters.providers.put(provider({ capital: usd('5'), version: 2 }), 1),
      table,
      'id=lp-1',
    );
    expect(await stored(table, id('lp-1'))).toEqual(newer);
  });

  it('the transactor: one newer item refuses the whole commit, nothing written', async () => {
    const { names, adapters } = await fresh();
    await adapters.positions.create(position());
    await adapters.liquidations.begin(position(), liquidation());
    await adapters.auctions.create(auction());
    const liquidationBefore = await stored(names.tables.liquidations, id('pos-1:1'));
    const newer = await writtenByNewer(names.tables.auctions, id('auc-1'));
    const commit = () =>
      adapters.transactor.commit([
        { kind: 'liquidation', record: liquidation({ state: 'AUCTION', version: 2 }), expectedVersion: 1 },
        { kind: 'auction', record: auction({ step: 1, version: 2 }), expectedVersion: 1 },
      ]);
    await refusedAsNewer(commit(), names.tables.auctions, 'id=auc-1');
    expect(await stored(names.tables.auctions, id('auc-1'))).toEqual(newer);
    expect(await stored(names.tables.liquidations, id('pos-1:1'))).toEqual(liquidationBefore);

    await writtenByPrevious(names.tables.auctions, id('auc-1'));
    await commit();
    expect((await adapters.liquidations.get('pos-1:1'))?.state).toBe('AUCTION');
  });

  it('the ledger: a movement over a newer balance is refused at once (no contention loop), nothing moved', async () => {
    const { names, adapters } = await fresh();
    const table = names.tables.ledger;
    const key = { pk: { S: 'ACCOUNT#fund' }, sk: { S: 'BALANCE' } };
    const deposit = (k: string) => ({
      account: 'fund',
      idempotencyKey: k,
      amount: usd('100'),
      kind: 'deposit',
      reference: 'ref',
      atMs: 1_000,
      floor: 0n,
    });
    await adapters.ledger.apply(deposit('k-1'));
    const newer = await writtenByNewer(table, key);
    let sends = 0;
    const count = ((next: (args: unknown) => Promise<unknown>) => (args: unknown) => {
      sends += 1;
      return next(args);
    }) as never;
    clients.dynamo.middlewareStack.add(count, { name: 'fenceCount' });
    try {
      await refusedAsNewer(adapters.ledger.apply(deposit('k-2')), table, 'pk=ACCOUNT#fund sk=BALANCE');
    } finally {
      clients.dynamo.middlewareStack.remove('fenceCount');
    }
    // A read and the refused transaction: not the 20 attempts of a lost race.
    expect(sends).toBe(2);
    expect(await stored(table, key)).toEqual(newer);
    expect((await adapters.ledger.journal('fund')).map((e) => e.idempotencyKey)).toEqual(['k-1']);

    await writtenByPrevious(table, key);
    await adapters.ledger.apply(deposit('k-2'));
    expect((await adapters.ledger.balance('fund')).balance).toBe(usd('200'));
  });

  it('the ledger: a checkpoint restarted over a newer one is refused, not swallowed as a later run’s', async () => {
    const { names, adapters } = await fresh();
    const table = names.tables.ledger;
    const key = { pk: { S: 'AUDIT#fund' }, sk: { S: 'JOURNAL' } };
    const audit = { sequence: 3, sum: usd('1'), minBalance: 0n } as JournalAudit;
    await adapters.ledger.saveAuditCheckpoint('fund', audit, undefined);
    const newer = await writtenByNewer(table, key);
    await refusedAsNewer(
      adapters.ledger.saveAuditCheckpoint('fund', audit, 'restart'),
      table,
      'pk=AUDIT#fund sk=JOURNAL',
    );
    const from = await adapters.ledger.auditCheckpoint('fund');
    await refusedAsNewer(
      adapters.ledger.saveAuditCheckpoint('fund', { ...audit, sequence: 4 }, from),
      table,
      'pk=AUDIT#fund sk=JOURNAL',
    );
    expect(await stored(table, key)).toEqual(newer);
  });
});

describe('a consumer meeting a newer writer’s record', () => {
  it('fails the record for a retry: not acknowledged, not dead-lettered, the record kept and its failure noted', async () => {
    const stack = await startLocalStack({
      endpoint: moto.endpoint,
      stage: `fence${stages++}`,
      riskConfig: DEFAULT_RISK_CONFIG_INPUT,
    });
    try {
      const admin = async (request: unknown) =>
        expect(await stack.runner.invoke('admin', request)).toMatchObject({ ok: true });
      await admin({ action: 'deposit', amount: '100000', idempotencyKey: 'seed', operator: 'ops' });
      const tick = async (markPrice: string, sequence: number) =>
        expect(
          await stack.putTicks([
            { symbol: 'ETH-USD', markPrice, timestamp: Date.now(), sequence, source: 'e2e' },
          ]),
        ).toEqual([]);
      await tick('200', 1);
      await stack.runner.runUntilIdle({ deadlineMs: 60_000 });
      for (const p of ['p1', 'p2'])
        await admin({
          action: 'openPosition',
          id: p,
          traderId: `t-${p}`,
          symbol: 'ETH-USD',
          side: 'LONG',
          size: '10',
          entryPrice: '200',
          collateral: '200',
        });
      await stack.runner.stop();
      // Only margin-check runs: the liquidation is queued, its message waiting.
      await tick('175', 2);
      const transports = createAwsQueueTransports(stack.clients, stack.names);
      const ticks = createLocalRunner({
        handlers: { marginCheck: stack.handlers.marginCheck },
        queues: transports.queues,
        tickQueue: transports.tickQueue,
      });
      ticks.start();
      await ticks.runUntilIdle({ deadlineMs: 60_000 });
      await ticks.stop();

      const queue = transports.queues.liquidations;
      const messages = [...(await queue.receive(10, 360))];
      if (messages.length < 2) messages.push(...(await queue.receive(10, 360)));
      const [message, other] = messages;
      if (!message || !other) throw new Error('two liquidations not queued');
      const { liquidationId } = JSON.parse(message.body) as { liquidationId: string };
      const table = stack.names.tables.liquidations;
      const newer = await writtenByNewer(table, id(liquidationId));

      const identity = { region: 'us-east-1', accountId: '000000000000' };
      const arn = stack.names.queues.liquidations.arn;
      const response = await stack.handlers.liquidationConsumer(
        sqsEvent(messages.map((m) => sqsRecord(m, arn, identity, Date.now()))) as never,
        lambdaContext('liquidation-consumer', 1024, 60_000, identity),
      );
      // A batch item failure (the other record went on): SQS keeps the message and delivers it again after the
      // queue's backoff (a batch of it alone too: review44-newer-writer-batch, below).
      expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: message.messageId }] });
      const { liquidationId: otherId } = JSON.parse(other.body) as { liquidationId: string };
      const adapters = createAwsAdapters({ clients: stack.clients, names: stack.names, clock: systemClock });
      expect((await adapters.liquidations.get(otherId))?.state).not.toBe('QUEUED');
      expect(await transports.deadLetters.liquidations!.depth()).toEqual({
        visible: 0,
        inFlight: 0,
        delayed: 0,
      });
      // The record as the newer writer left it, but its failure (an UpdateItem of that attribute alone).
      const { lastFailure, ...kept } = await stored(table, id(liquidationId));
      const { lastFailure: _none, ...expected } = newer;
      expect(kept).toEqual(expected);
      expect(lastFailure?.M?.reason?.S).toContain('NewerWriterError: adapter/newer-writer');

      // Delivered again (its backoff cut short here): the same message, its second receive.
      await queue.changeVisibility(message.receiptHandle, 0);
      const again = await queue.receive(10, 360);
      const retried = again.find((m) => m.messageId === message.messageId);
      expect(retried).toMatchObject({ receiveCount: 2 });
      // Alone in its batch, it fails no invocation (no error Lambda counts, no errors alarm): reported, retried.
      const alone = await stack.handlers.liquidationConsumer(
        sqsEvent([sqsRecord(retried!, arn, identity, Date.now())]) as never,
        lambdaContext('liquidation-consumer', 1024, 60_000, identity),
      );
      expect(alone).toEqual({ batchItemFailures: [{ itemIdentifier: message.messageId }] });
    } finally {
      await stack.stop();
    }
  });
});
