import { TransactWriteItemsCommand } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_RISK_CONFIG,
  DEFAULT_RISK_CONFIG_INPUT,
  parseRiskConfig,
} from '../../shared/domain/config.ts';
import { base, price, usd } from '../../shared/domain/units.ts';
import { ConditionFailedError } from '../../shared/ports/index.ts';
import { handleAdmin } from '../../shared/services/admin.ts';
import type { SettlementDeps } from '../../shared/services/context.ts';
import { processLiquidation } from '../../shared/services/liquidation.ts';
import { handleTick, withLiquidationPrice } from '../../shared/services/margin-check.ts';
import { auctionRecord } from '../support/auction-records.ts';
import { loseNextAnswer } from '../support/lost-answer.ts';
import { motoStages } from '../support/moto.ts';
import { RecordingTelemetry } from '../support/pipeline.ts';
import { liquidation, position } from '../support/records.ts';

/**
 * The audit of lost answers (session 42, retry-audit): a write DynamoDB applied whose answer was lost (a timeout, a
 * reset connection) is sent again by the SDK, the same request. The conditional UpdateItems sent alone that were
 * left, `positions.reprice` and `liquidations.recordMarkDispute`, failed their condition on their own write: a
 * reprice answered ConditionFailedError (a reindex's `updated` and PositionsRepriced did not count it), a dispute's
 * record answered "recorded by another" (LiquidationsDisputed did not count the hold). Both now write a token of the
 * call (owned-put.ts `updateItemOwned`). And every TransactWriteItems carries a ClientRequestToken that the SDK's
 * retries repeat and another call does not (DynamoDB answers the retry of an applied transaction as applied; moto
 * ignores the token, so those tests check the tokens only).
 */

const moto = motoStages('ulost');

async function setUp() {
  const { clients, names, adapters } = await moto.stage();
  return { clients, names, adapters };
}

const tokensOf = (bodies: readonly string[]) =>
  bodies.map((body) => (JSON.parse(body) as { ClientRequestToken?: string }).ClientRequestToken);

/** ETH-USD's maintenance margin raised from 2.5 % to 4 % (a deploy's change, which a reindex applies). */
const RAISED = parseRiskConfig({
  ...DEFAULT_RISK_CONFIG_INPUT,
  markets: DEFAULT_RISK_CONFIG_INPUT.markets.map((m) =>
    m.symbol === 'ETH-USD' ? { ...m, maintenanceMargin: '0.04' } : m,
  ),
});

describe('lost answers of conditional UpdateItems sent alone (moto, real adapters)', () => {
  it("positions.reprice: an update whose answer was lost is the call's own; another on the same read is refused", async () => {
    const { clients, adapters } = await setUp();
    await adapters.positions.create(position());
    const fault = loseNextAnswer(clients, 'UpdateItemCommand');
    fault.armed = true;
    await adapters.positions.reprice('pos-1', price('1920'), 1);
    expect(fault.lost).toBe(1);
    expect(fault.bodies).toHaveLength(2);
    const repriced = position({ liquidationPrice: price('1920'), version: 2 });
    expect(await adapters.positions.get('pos-1')).toEqual(repriced);
    // A concurrent reprice that read version 1 (another tick's): the same price even.
    await expect(adapters.positions.reprice('pos-1', price('1920'), 1)).rejects.toBeInstanceOf(
      ConditionFailedError,
    );
    expect(await adapters.positions.get('pos-1')).toEqual(repriced);
    clients.destroy();
  });

  it('a reindex whose reprice lost its answer counts the position it priced (retry-audit)', async () => {
    const { clients, adapters } = await setUp();
    const old = withLiquidationPrice(position({ version: 0 }), DEFAULT_RISK_CONFIG);
    await adapters.positions.create(old);
    const deps = {
      ...adapters,
      config: RAISED,
      telemetry: new RecordingTelemetry(),
      nowMs: () => Date.now(),
    };
    const fault = loseNextAnswer(clients, 'UpdateItemCommand');
    fault.armed = true;
    const answer = await handleAdmin({ action: 'reindexPositions', symbol: 'ETH-USD', side: 'LONG' }, deps);
    expect(fault.lost).toBe(1);
    // Before: updated 0, the operator told nothing was priced.
    expect(answer).toEqual({ ok: true, id: 'ETH-USD', reindexed: { checked: 1, updated: 1 } });
    expect(await adapters.positions.get(old.id)).toMatchObject({
      liquidationPrice: withLiquidationPrice(old, RAISED).liquidationPrice,
      version: 1,
    });
    clients.destroy();
  });

  it("liquidations.recordMarkDispute: a record whose answer was lost is the call's own; another's finds it", async () => {
    const { clients, adapters } = await setUp();
    await adapters.positions.create(position());
    await adapters.liquidations.begin(position(), liquidation());
    const fault = loseNextAnswer(clients, 'UpdateItemCommand');
    fault.armed = true;
    expect(await adapters.liquidations.recordMarkDispute('pos-1:1', 5_000)).toEqual({
      sinceMs: 5_000,
      recorded: true,
    });
    expect(fault.lost).toBe(1);
    expect(fault.bodies).toHaveLength(2);
    // Another delivery's: the first time stands.
    expect(await adapters.liquidations.recordMarkDispute('pos-1:1', 6_000)).toEqual({
      sinceMs: 5_000,
      recorded: false,
    });
    expect(await adapters.liquidations.get('pos-1:1')).toEqual(liquidation({ markDisputedSinceMs: 5_000 }));
    clients.destroy();
  });

  it("auctions.claimStepResend: a claim whose answer was lost is the call's own, read from nothing; another's is refused (watch45-auctions-permission)", async () => {
    const { clients, adapters } = await setUp();
    const running = auctionRecord('a-1');
    await adapters.auctions.create(running);
    const fault = loseNextAnswer(clients, 'UpdateItemCommand');
    fault.armed = true;
    expect(await adapters.auctions.claimStepResend('a-1', 3, 5_000, 0)).toEqual(expect.any(String));
    expect(fault.lost).toBe(1);
    expect(fault.bodies).toHaveLength(2);
    // No item asked back: the retry holds by its own token in the condition.
    for (const body of fault.bodies) expect(body).not.toContain('ReturnValuesOnConditionCheckFailure');
    // Another run's claim in the interval is refused; the claim and the record stand.
    expect(await adapters.auctions.claimStepResend('a-1', 3, 6_000, 4_000)).toBeUndefined();
    expect(await adapters.auctions.get('a-1')).toEqual({
      ...running,
      stepResent: { step: 3, atMs: 5_000, claimer: expect.any(String) },
    });
    clients.destroy();
  });

  it('a hold whose record lost its answer is counted once in LiquidationsDisputed (retry-audit)', async () => {
    const { clients, adapters } = await setUp();
    const config = parseRiskConfig({
      ...DEFAULT_RISK_CONFIG_INPUT,
      markets: DEFAULT_RISK_CONFIG_INPUT.markets.map((m) => ({
        ...m,
        venueCheckBand: '0.05',
        venueCheckHoldSeconds: 30,
      })),
    });
    const telemetry = new RecordingTelemetry();
    const tick = (mark: string, sequence: number) =>
      handleTick(
        { symbol: 'ETH-USD', markPrice: price(mark), timestampMs: Date.now(), sequence, source: 'test' },
        { ...adapters, config, telemetry, maxPositionsPerInvocation: 500 },
        Date.now(),
      );
    await tick('100', 1);
    await tick('100', 2);
    // Liquidatable below about 92.3: a print at 91 starts it, while the venue's book stays at 100.
    await adapters.positions.create(
      withLiquidationPrice(
        position({ size: base('10'), entryPrice: price('100'), collateral: usd('100'), version: 0 }),
        config,
      ),
    );
    expect(await tick('91', 3)).toMatchObject({ status: 'accepted', enqueued: 1 });
    const [started] = await adapters.liquidations.listByTick('ETH-USD#3');
    const deps: SettlementDeps = {
      ...adapters,
      venue: {
        placeIoc: () => Promise.reject(new Error('no order in this test')),
        quote: async () => ({ bid: price('100'), ask: price('100.1') }),
      },
      config,
      telemetry,
      strategy: 'waterfall',
      insuranceAccount: 'fund',
      venueAttempts: 1,
    };
    const fault = loseNextAnswer(clients, 'UpdateItemCommand', (input) =>
      String(input.UpdateExpression).includes('markDisputedSinceMs'),
    );
    fault.armed = true;
    expect(await processLiquidation({ liquidationId: started!.id }, deps)).toMatchObject({ state: 'QUEUED' });
    expect(fault.lost).toBe(1);
    expect((await adapters.liquidations.get(started!.id))?.markDisputedSinceMs).toBeGreaterThan(0);
    // Before: 0, the hold's record read as another delivery's.
    expect(telemetry.total('LiquidationsDisputed')).toBe(1);
    expect(telemetry.total('MarkDisputes')).toBe(1);
    clients.destroy();
  });
});

describe('every TransactWriteItems carries a ClientRequestToken: one per call, repeated by its retries (moto)', () => {
  it('ledger.apply, liquidations.begin and replaceWithPosition', async () => {
    const { clients, adapters } = await setUp();
    const fault = loseNextAnswer(clients, 'TransactWriteItemsCommand');
    const deposit = (key: string) => ({
      account: 'fund',
      idempotencyKey: key,
      amount: usd('100'),
      kind: 'deposit',
      reference: 'admin',
      atMs: 1_000,
      floor: 0n,
    });
    // moto ignores the token: its retry fails on the commit's own journal put (DynamoDB answers it applied).
    fault.armed = true;
    await adapters.ledger.apply(deposit('k1')).catch(() => undefined);
    await adapters.ledger.apply(deposit('k2'));
    await adapters.positions.create(position());
    fault.armed = true;
    await adapters.liquidations.begin(position(), liquidation()).catch(() => undefined);
    const executing = liquidation({ state: 'EXECUTING', version: 2 });
    fault.armed = true;
    await adapters.liquidations
      .replaceWithPosition(executing, 1, position({ state: 'LIQUIDATING', version: 3 }), 2)
      .catch(() => undefined);
    expect(fault.lost).toBe(3);
    const tokens = tokensOf(fault.bodies);
    // Two attempts of the first deposit, one of the second, two of the begin, two of the replace.
    expect(tokens).toHaveLength(7);
    for (const token of tokens) expect(token).toMatch(/^[0-9a-f-]{36}$/);
    expect([tokens[1], tokens[4], tokens[6]]).toEqual([tokens[0], tokens[3], tokens[5]]);
    expect(new Set(tokens).size).toBe(4);
    clients.destroy();
  });

  it('the same command sent again (retryingConflicts, after a cancellation that wrote nothing) carries a new one', async () => {
    const { clients, names, adapters } = await setUp();
    await adapters.positions.create(position());
    const fault = loseNextAnswer(clients, 'TransactWriteItemsCommand');
    const check = new TransactWriteItemsCommand({
      TransactItems: [
        {
          ConditionCheck: {
            TableName: names.tables.positions,
            Key: { id: { S: 'pos-1' } },
            ConditionExpression: 'attribute_exists(id)',
          },
        },
      ],
    });
    await clients.dynamo.send(check).catch(() => undefined);
    await clients.dynamo.send(check).catch(() => undefined);
    const tokens = tokensOf(fault.bodies);
    expect(tokens).toHaveLength(2);
    expect(tokens[1]).not.toBe(tokens[0]);
    expect(check.input.ClientRequestToken).toBeUndefined();
    clients.destroy();
  });
});
