import {
  type AttributeValue,
  DynamoDBClient,
  GetItemCommand,
  ScanCommand,
  TransactWriteItemsCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { PurgeQueueCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  createAwsAdapters,
  createAwsQueueTransports,
  PositionIndexLayout,
} from '../../shared/adapters/aws/index.ts';
import { SqsQueueTransport } from '../../shared/adapters/aws/sqs-queue.ts';
import { systemClock } from '../../shared/adapters/embedded/clock.ts';
import { instrumentVenueKeyClients } from '../../shared/adapters/venue/key.ts';
import {
  DEFAULT_RISK_CONFIG_INPUT,
  parseRiskConfig,
  type RiskConfigInput,
} from '../../shared/domain/config.ts';
import { type AdlEvents, isTerminal } from '../../shared/domain/model.ts';
import { parseBase, parsePrice, parseQuote } from '../../shared/domain/units.ts';
import { instrumentAwsClients, wiring } from '../../shared/lambda/wiring.ts';
import { type LocalStack, type LocalStackOptions, startLocalStack } from '../../shared/local/stack.ts';
import { METRICS, type MetricSpec } from '../../shared/metrics.ts';
import {
  InjectedCrash,
  type LiquidationMessage,
  type LiquidationRecord,
  type Venue,
} from '../../shared/ports/index.ts';
import {
  asFunction,
  createLocalRunner,
  failedMessageIds,
  sqsEvent,
  sqsRecord,
} from '../../shared/runner/index.ts';
import { encodeMessage, parseLiquidationMessage } from '../../shared/schemas/messages.ts';
import { INSURANCE_ACCOUNT } from '../../shared/services/context.ts';
import { processLiquidation } from '../../shared/services/liquidation.ts';
import { handleTick } from '../../shared/services/margin-check.ts';
import { type FunctionId, VENUE_KEY_ENV } from '../../shared/topology.ts';
import { cli } from '../support/cli.ts';
import { queueDepths } from '../support/emulator-invariants.ts';
import { GrantRecorder } from '../support/grants.ts';
import { startMoto } from '../support/moto.ts';
import { RecordingTelemetry } from '../support/pipeline.ts';
import { AUCTION_ONLY } from '../support/risk-configs.ts';

/**
 * End to end through real AWS APIs on moto: PutEvents on the tick bus, the bus rule, SQS, DynamoDB transactions,
 * with the project's own handlers invoked by the local runner. One stage per test, so tests cannot interfere.
 */

type Moto = Awaited<ReturnType<typeof startMoto>>;
let moto: Moto;
let stageCounter = 0;

/** Every call the handlers make in this file's scenarios, checked against the topology's grants at the end. */
const grants = new GrantRecorder();

/** SendMessageBatch calls of the handlers to fail (thrown before the SDK sends them, so never retried by it). */
let failingSendBatches = 0;

beforeAll(async () => {
  moto = await startMoto();
  instrumentVenueKeyClients((client) => grants.attachVenueKey(client));
  instrumentAwsClients((clients) => {
    grants.attach(clients);
    clients.sqs.middlewareStack.add(
      ((next: (args: unknown) => Promise<unknown>, context: { commandName?: string }) => (args: unknown) => {
        if (context.commandName === 'SendMessageBatchCommand' && failingSendBatches > 0) {
          failingSendBatches -= 1;
          throw new Error('injected: SendMessageBatch failed');
        }
        return next(args);
      }) as never,
      { step: 'initialize', name: 'injectedSendBatchFailure' },
    );
  });
});
afterAll(async () => {
  instrumentAwsClients(undefined);
  instrumentVenueKeyClients(undefined);
  await moto?.stop();
});

/** A fast auction (1 s steps) so auction tests finish in seconds; everything else as in production. */
async function withStack(
  riskConfig: RiskConfigInput,
  body: (ctx: Context) => Promise<void>,
  settings: Pick<LocalStackOptions, 'positionIndexShards' | 'marginCheckMaxPositions'> = {},
): Promise<void> {
  stageCounter += 1;
  const stack = await startLocalStack({
    endpoint: moto.endpoint,
    stage: `e2e${stageCounter}`,
    riskConfig,
    fastRetries: true,
    ...settings,
  });
  grants.forStage(stack.names, stack.env[VENUE_KEY_ENV]);
  const adapters = createAwsAdapters({ clients: stack.clients, names: stack.names, clock: systemClock });
  let sequence = 0;
  const ctx: Context = {
    stack,
    adapters,
    async tick(price: string) {
      sequence += 1;
      const failures = await stack.putTicks([
        { symbol: 'ETH-USD', markPrice: price, timestamp: Date.now(), sequence, source: 'e2e' },
      ]);
      expect(failures).toEqual([]);
      await stack.runner.runUntilIdle({ deadlineMs: 60_000 });
    },
    async admin(request: unknown) {
      // Through the runner, as an IAM invoke: its calls are attributed to the admin function.
      const result = (await stack.runner.invoke('admin', request)) as { ok: boolean; reason?: string };
      expect(result, JSON.stringify(result)).toMatchObject({ ok: true });
    },
    async liquidations() {
      const ids = await liquidationIds(stack);
      return Promise.all(ids.map(async (id) => (await adapters.liquidations.get(id)) as LiquidationRecord));
    },
  };
  try {
    await body(ctx);
    expect(stack.runner.errors.map((e) => String(e.error))).toEqual([]);
    // IAM as the stack would apply it (moto does not): the topology grants every call a handler made.
    expect(grants.ungranted()).toEqual([]);
  } finally {
    await stack.stop();
  }
}

interface Context {
  readonly stack: LocalStack;
  readonly adapters: ReturnType<typeof createAwsAdapters>;
  tick(price: string): Promise<void>;
  admin(request: unknown): Promise<void>;
  liquidations(): Promise<LiquidationRecord[]>;
}

/** Every liquidation id of a stage, from the ticks' index items (no scan of the book). */
async function liquidationIds(stack: LocalStack): Promise<string[]> {
  const adapters = createAwsAdapters({ clients: stack.clients, names: stack.names, clock: systemClock });
  const ids = new Set<string>();
  for (let sequence = 1; sequence <= 10; sequence++) {
    for (const l of await adapters.liquidations.listByTick(`ETH-USD#${sequence}`)) ids.add(l.id);
  }
  return [...ids].sort();
}

const tickDetail = (price: string, sequence: number) => ({
  symbol: 'ETH-USD',
  markPrice: price,
  timestamp: Date.now(),
  sequence,
  source: 'e2e',
});

/**
 * Runs only some functions until every queue is idle, then stops them (to order steps deterministically). Their
 * invocations must not fail, unless `failing`: their errors are returned.
 */
async function runPhase(
  stack: LocalStack,
  functions: readonly FunctionId[],
  options: { readonly failing?: boolean } = {},
): Promise<string[]> {
  const transports = createAwsQueueTransports(stack.clients, stack.names);
  const runner = createLocalRunner({
    handlers: Object.fromEntries(functions.map((id) => [id, stack.handlers[id]])),
    queues: transports.queues,
    tickQueue: transports.tickQueue,
    failureVisibilitySeconds: 0,
  });
  runner.start();
  try {
    await runner.runUntilIdle({ deadlineMs: 60_000 });
    const errors = runner.errors.map((e) => String(e.error));
    if (!options.failing) expect(errors).toEqual([]);
    return errors;
  } finally {
    await runner.stop();
  }
}

/**
 * A funded fund and a long whose liquidation a fall to 175 has queued (its message waiting), with the stack's own
 * runner stopped: a test then delivers the message as it likes.
 */
async function queuedWithStackStopped(ctx: Context): Promise<void> {
  await ctx.admin({ action: 'deposit', amount: '100000', idempotencyKey: 'seed', operator: 'ops' });
  await ctx.tick('200');
  await ctx.admin(open('p1', 'LONG', '10', '200', '200'));
  await ctx.stack.runner.stop();
  await ctx.stack.putTicks([tickDetail('175', 2)]);
  await runPhase(ctx.stack, ['marginCheck']);
}

/**
 * The stage's venue (the handlers' simulated book, wiring().settlement.venue) behind a switch that empties the book,
 * as a crash does: no fill, no quote. Counts the quotes asked and keeps the client order ids placed.
 */
function emptiedVenue(): { empty: boolean; quotes: number; readonly orders: string[] } {
  const settlement = wiring().settlement as { venue: Venue };
  const book = settlement.venue;
  const venue = { empty: true, quotes: 0, orders: [] as string[] };
  settlement.venue = {
    placeIoc: async (order) => {
      venue.orders.push(order.clientOrderId);
      return venue.empty
        ? { clientOrderId: order.clientOrderId, fills: [], status: 'NONE' }
        : book.placeIoc(order);
    },
    quote: async (symbol, reference) => {
      venue.quotes += 1;
      return venue.empty ? {} : book.quote(symbol, reference);
    },
  };
  return venue;
}

/**
 * Receives the liquidations queue's next message (a long poll: a delayed one once its delay ends) and hands it to
 * the stage's consumer (functions/liquidation-consumer) as an SQS event, as Lambda would; deletes it once handled.
 */
const consumerOf = (stack: LocalStack, queue: SqsQueueTransport) => async (): Promise<LiquidationMessage> => {
  const [message] = await queue.receive(1, 30);
  expect(message).toBeDefined();
  const identity = { region: 'us-east-1', accountId: '000000000000' };
  const arn = `arn:aws:sqs:${identity.region}:${identity.accountId}:${queue.name}`;
  const event = sqsEvent([sqsRecord(message!, arn, identity, Date.now())]);
  const response = await stack.runner.invoke('liquidationConsumer', event);
  expect(failedMessageIds(response, [message!])).toEqual(new Set());
  await queue.delete(message!.receiptHandle);
  return parseLiquidationMessage(message!.body);
};

/** A provider with 100,000 USD of capital bidding `maxDiscount` under the mark on ETH-USD. */
const provider = (id: string, maxDiscount: string) => ({
  action: 'registerProvider',
  id,
  capital: '100000',
  maxDiscount,
  maxLot: '100',
  symbols: ['ETH-USD'],
});

const open = (id: string, side: 'LONG' | 'SHORT', size: string, entry: string, collateral: string) => ({
  action: 'openPosition',
  id,
  traderId: `t-${id}`,
  symbol: 'ETH-USD',
  side,
  size,
  entryPrice: entry,
  collateral,
});

/** An auction whose steps are 4 s apart: its providers' bids far down the curve, it sleeps from its start. */
const SLOW_STEPS = {
  ...AUCTION_ONLY,
  auction: { ...AUCTION_ONLY.auction, curve: { kind: 'stairstep', cut: '0.99', stepSeconds: 4 } },
} as const;

/**
 * p1's liquidation, gone to an auction that sleeps (the runner stopped: each phase is run by the test). lp-1 bids 8 %
 * under the mark: from 184, the 4 s stairstep reaches it at step 9 (36 s).
 */
async function sleepingAuction(ctx: Context) {
  await ctx.tick('200');
  await ctx.admin(open('p1', 'LONG', '10', '200', '200'));
  await ctx.admin(provider('lp-1', '0.08'));
  await ctx.stack.runner.stop();
  await ctx.stack.putTicks([tickDetail('184', 2)]);
  await runPhase(ctx.stack, ['marginCheck', 'liquidationConsumer']);
  const [liquidation] = await ctx.liquidations();
  expect(liquidation?.state).toBe('AUCTION');
  return liquidation;
}

describe('pipeline on moto', () => {
  it('settles on the market: tick on the bus -> margin-check -> SQS -> consumer -> ledger', async () => {
    await withStack(DEFAULT_RISK_CONFIG_INPUT, async (ctx) => {
      const emf = vi.spyOn(process.stdout, 'write');
      await ctx.tick('200');
      await ctx.admin(open('p1', 'LONG', '10', '200', '200'));
      await ctx.tick('184');
      const [liquidation] = await ctx.liquidations();
      expect(liquidation?.state).toBe('SETTLED_MARKET');
      const fund = await ctx.adapters.ledger.balance(INSURANCE_ACCOUNT);
      expect(fund.balance).toBe(liquidation?.settlement?.fee);
      expect((await ctx.adapters.positions.get('p1'))?.state).not.toBe('LIQUIDATING');
      // The handlers' EMF metrics for the dashboard.
      const printed = emf.mock.calls.map((c) => String(c[0])).join('');
      emf.mockRestore();
      for (const metric of ['TicksAccepted', 'LiquidationsEnqueued', 'LiquidationsSettled']) {
        expect(printed).toContain(`"${metric}"`);
      }
      // Each metric with exactly its spec's dimension set, or no graph or alarm would see it; one `byMarket` with
      // that set plus Market too (session 40: a page named no market), in the same blob, naming the tick's market.
      const blobs = printed
        .split('\n')
        .filter((line) => line.startsWith('{"_aws"'))
        .map((line) => JSON.parse(line));
      const emitted = new Map<string, { dimensions: unknown; market: unknown }>();
      for (const blob of blobs) {
        for (const directive of blob._aws.CloudWatchMetrics) {
          for (const { Name } of directive.Metrics)
            emitted.set(Name, { dimensions: directive.Dimensions, market: blob.Market });
        }
      }
      expect(emitted.size).toBeGreaterThan(3);
      for (const [name, { dimensions, market }] of emitted) {
        const spec: MetricSpec | undefined = Object.values(METRICS).find((m) => m.name === name);
        const total = ['service', ...(spec?.dimension ? [spec.dimension] : [])];
        expect(dimensions, name).toEqual(spec?.byMarket ? [total, [...total, 'Market']] : [total]);
        if (spec?.byMarket || spec?.dimension === 'Market') expect(market, name).toBe('ETH-USD');
      }
      expect(emitted.get('LiquidationsSettled')?.dimensions).toEqual([
        ['service', 'Layer'],
        ['service', 'Layer', 'Market'],
      ]);
      // The grants check sees the handlers' calls, by function (admin's through the runner's invoke).
      for (const use of [
        'marginCheck write liquidations',
        'marginCheck send liquidations',
        'liquidationConsumer write ledger',
        'admin read markets',
        'admin write positions',
      ]) {
        expect([...grants.uses]).toContain(use);
      }
    });
  });

  it("resumes a restarted feed through the admin function, whose role may write the market's sequence", async () => {
    await withStack(DEFAULT_RISK_CONFIG_INPUT, async (ctx) => {
      await ctx.tick('200');
      await ctx.tick('200');
      expect((await ctx.adapters.markets.get('ETH-USD'))?.lastTick?.sequence).toBe(2);
      // The feed restarted its numbering: `backstop feed resume`, as an IAM invoke of the deployed function.
      await ctx.admin({ action: 'resumeFeed', symbol: 'ETH-USD', fromSequence: 1 });
      expect((await ctx.adapters.markets.get('ETH-USD'))?.lastTick?.sequence).toBe(0);
      // The stack's role grants it (withStack checks every call against the topology): an UpdateItem.
      expect([...grants.uses]).toContain('admin update markets');
    });
  });

  it('takes over a tick of the old numbering left pending through the admin function, whose role may re-send what it started', async () => {
    await withStack(DEFAULT_RISK_CONFIG_INPUT, async (ctx) => {
      // The old feed's prints, stamped in the past so the restarted feed's come after them (the resume's rule).
      const at = Date.now() - 30_000;
      const old = (price: string, sequence: number) => ({
        ...tickDetail(price, sequence),
        timestamp: at + sequence,
      });
      expect(await ctx.stack.putTicks([old('200', 1), old('200', 2)])).toEqual([]);
      await ctx.stack.runner.runUntilIdle({ deadlineMs: 60_000 });
      for (let i = 1; i <= 3; i++) await ctx.admin(open(`p${i}`, 'LONG', '10', '200', '200'));
      await ctx.stack.runner.stop();
      // Its last print crosses the three longs; the invocation starts two and dies: no continuation, and the
      // messages of what it started lost.
      const config = parseRiskConfig(DEFAULT_RISK_CONFIG_INPUT);
      const marginDeps = {
        ...ctx.adapters,
        config,
        telemetry: new RecordingTelemetry(),
        maxPositionsPerInvocation: 2,
      };
      const last = {
        symbol: 'ETH-USD',
        markPrice: parsePrice('184'),
        timestampMs: at + 3,
        sequence: 3,
        source: 'e2e',
      };
      expect(await handleTick(last, marginDeps, Date.now())).toMatchObject({
        enqueued: 2,
        needsContinuation: true,
      });
      const queue = ctx.adapters.liquidationQueue;
      for (const m of await queue.receive(10, 30)) await queue.delete(m.receiptHandle);

      // `backstop feed resume`, as an IAM invoke of the deployed function.
      expect(
        await ctx.stack.runner.invoke('admin', { action: 'resumeFeed', symbol: 'ETH-USD', fromSequence: 1 }),
      ).toEqual({
        ok: true,
        id: 'ETH-USD',
        sequence: { before: 3, after: 0 },
        tookOver: { sequence: 3, resent: 2 },
      });
      expect((await ctx.adapters.markets.get('ETH-USD'))?.pendingSequence).toBeUndefined();
      ctx.stack.runner.start();
      // The restarted feed's first print starts the long the old tick had not reached.
      expect(await ctx.stack.putTicks([tickDetail('184', 1)])).toEqual([]);
      await ctx.stack.runner.runUntilIdle({ deadlineMs: 60_000 });
      const liquidations = await ctx.liquidations();
      expect(liquidations.map((l) => l.positionId).sort()).toEqual(['p1', 'p2', 'p3']);
      for (const l of liquidations) expect(l.state).toBe('SETTLED_MARKET');
      expect([...grants.uses]).toEqual(
        expect.arrayContaining(['admin read liquidations', 'admin send liquidations']),
      );
    });
  });

  it('continues a tick that crosses more than one invocation starts, through continuation events on the bus', async () => {
    await withStack(
      DEFAULT_RISK_CONFIG_INPUT,
      async (ctx) => {
        await ctx.tick('200');
        for (let i = 1; i <= 5; i++) await ctx.admin(open(`p${i}`, 'LONG', '10', '200', '200'));
        await ctx.tick('184'); // three invocations: segments 0, 1 and 2
        const liquidations = await ctx.liquidations();
        expect(liquidations.map((l) => l.positionId).sort()).toEqual(['p1', 'p2', 'p3', 'p4', 'p5']);
        for (const l of liquidations) expect(l.state).toBe('SETTLED_MARKET');
        const market = await ctx.adapters.markets.get('ETH-USD');
        expect(market?.pendingSequence).toBeUndefined();
        // The continuations' PutEvents are margin-check's, on the tick bus: the grants check covers them.
        expect([...grants.uses]).toContain('marginCheck put ticks');
      },
      { marginCheckMaxPositions: 2 },
    );
  });

  it('cancels when the next tick makes the position healthy before the consumer runs', async () => {
    await withStack(DEFAULT_RISK_CONFIG_INPUT, async (ctx) => {
      await ctx.tick('200');
      await ctx.admin(open('p1', 'LONG', '10', '200', '200'));
      await ctx.stack.runner.stop();
      // Both ticks are handled before any consumer runs: the consumer re-checks at the latest mark.
      await ctx.stack.putTicks([tickDetail('184', 2), tickDetail('199', 3)]);
      await runPhase(ctx.stack, ['marginCheck']);
      await runPhase(ctx.stack, ['liquidationConsumer']);
      const [liquidation] = await ctx.liquidations();
      expect(liquidation?.state).toBe('CANCELLED');
      expect(liquidation?.marketFills).toEqual([]);
      const position = await ctx.adapters.positions.get('p1');
      expect(position?.state).toBe('OPEN');
      const crossed = await ctx.adapters.positions.queryCrossed('ETH-USD', 'LONG', parsePrice('184'), 10);
      expect(crossed.positions.map((p) => p.id)).toEqual(['p1']);
    });
  });

  it('finishes a liquidation exactly once when the consumer dies between two steps', async () => {
    await withStack(DEFAULT_RISK_CONFIG_INPUT, async (ctx) => {
      await queuedWithStackStopped(ctx);

      // A consumer that dies right after its ledger movement, before recording the settlement.
      const crashing = createAwsAdapters({
        clients: ctx.stack.clients,
        names: ctx.stack.names,
        clock: systemClock,
        crashHook: (point) => {
          if (point === 'ledger.apply') throw new InjectedCrash(point);
        },
      });
      const queue = createAwsQueueTransports(ctx.stack.clients, ctx.stack.names).queues.liquidations;
      const [message] = await queue.receive(1, 30);
      expect(message).toBeDefined();
      const deps = { ...wiring().settlement, ...crashing };
      const { liquidationId } = JSON.parse(message!.body) as { liquidationId: string };
      await expect(
        asFunction('liquidationConsumer', () => processLiquidation({ liquidationId }, deps)),
      ).rejects.toBeInstanceOf(InjectedCrash);
      expect((await ctx.adapters.liquidations.get(liquidationId))?.state).toBe('SETTLING');
      await queue.changeVisibility(message!.receiptHandle, 0); // the visibility timeout runs out

      await runPhase(ctx.stack, ['liquidationConsumer']);
      const liquidation = await ctx.adapters.liquidations.get(liquidationId);
      expect(liquidation?.state).toBe('SETTLED_INSURANCE');
      const journal = await ctx.adapters.ledger.journal(INSURANCE_ACCOUNT);
      expect(journal.map((e) => e.idempotencyKey)).toEqual(['admin:seed', `${liquidationId}:shortfall`]);
    });
  });

  it("defers a message whose liquidation's orders another delivery holds until its lease runs out, then takes over", async () => {
    await withStack(DEFAULT_RISK_CONFIG_INPUT, async (ctx) => {
      await queuedWithStackStopped(ctx);

      // A consumer that placed the market order and died holding the lease (a short one here): it dies before
      // the commit after its claim, so neither the order's outcome nor the release of its lease is written.
      const settlement = wiring().settlement;
      let commits = 0;
      const deps = {
        ...settlement,
        orderLeaseMs: 2_000,
        transactor: {
          commit: async (writes: Parameters<typeof settlement.transactor.commit>[0]) => {
            if (++commits > 1) throw new InjectedCrash('before transactor.commit');
            await settlement.transactor.commit(writes);
          },
        },
      };
      const queue = createAwsQueueTransports(ctx.stack.clients, ctx.stack.names).queues.liquidations;
      const [message] = await queue.receive(1, 30);
      const { liquidationId } = JSON.parse(message!.body) as { liquidationId: string };
      await expect(
        asFunction('liquidationConsumer', () => processLiquidation({ liquidationId }, deps)),
      ).rejects.toBeInstanceOf(InjectedCrash);
      const held = await ctx.adapters.liquidations.get(liquidationId);
      expect(held?.state).toBe('EXECUTING');
      expect(held?.context?.lease).toBeDefined();
      await queue.changeVisibility(message!.receiptHandle, 0); // delivered again at once

      // The consumer defers it to the lease's end (not the 6 minutes of the visibility timeout), then takes over.
      const errors = await runPhase(ctx.stack, ['liquidationConsumer'], { failing: true });
      // Its one record deferred, reported failed for SQS to redeliver, but no invocation error (which alarms).
      expect(errors).toEqual([]);
      const liquidation = await ctx.adapters.liquidations.get(liquidationId);
      expect(liquidation?.state).toBe('SETTLED_INSURANCE');
      expect(liquidation?.lastFailure?.reason).toMatch(/^LiquidationBusyError: liquidation\/busy: /);
      expect(liquidation?.lastFailure?.attempt).toBe(2);
      const journal = await ctx.adapters.ledger.journal(INSURANCE_ACCOUNT);
      expect(journal.map((e) => e.idempotencyKey)).toEqual(['admin:seed', `${liquidationId}:shortfall`]);
    });
  });

  it('retries a tick whose enqueue failed: the retry re-sends the liquidations it had started', async () => {
    await withStack(DEFAULT_RISK_CONFIG_INPUT, async (ctx) => {
      await ctx.tick('200');
      await ctx.admin(open('p1', 'LONG', '10', '200', '200'));
      // The liquidation starts (position LIQUIDATING, liquidation QUEUED), then its message is not sent.
      failingSendBatches = 1;
      await ctx.tick('184');
      expect(failingSendBatches).toBe(0);
      const [failed, ...others] = ctx.stack.runner.errors.splice(0).map((e) => `${e.functionId}: ${e.error}`);
      expect(failed).toMatch(/^marginCheck: .*injected: SendMessageBatch failed/);
      expect(others).toEqual([]);
      // The tick's retry read what it had started and sent its message (as granted: the recorder checks it).
      const [liquidation] = await ctx.liquidations();
      expect(liquidation?.state).toBe('SETTLED_MARKET');
    });
  });

  it('refuses a stale tick and a duplicate tick without enqueueing anything twice', async () => {
    await withStack(DEFAULT_RISK_CONFIG_INPUT, async (ctx) => {
      await ctx.tick('200');
      await ctx.admin(open('p1', 'LONG', '10', '200', '200'));
      const tick = { symbol: 'ETH-USD', markPrice: '184', timestamp: Date.now(), sequence: 5, source: 'e2e' };
      await ctx.stack.putTicks([tick, tick, { ...tick, sequence: 4, markPrice: '150' }]);
      await ctx.stack.runner.runUntilIdle({ deadlineMs: 60_000 });
      const liquidations = await ctx.adapters.liquidations.listByTick('ETH-USD#5');
      expect(liquidations).toHaveLength(1);
      expect(await ctx.adapters.liquidations.listByTick('ETH-USD#4')).toEqual([]);
      expect(liquidations[0]?.state).toBe('SETTLED_MARKET');
      const market = await ctx.adapters.markets.get('ETH-USD');
      expect(market?.lastTick?.sequence).toBe(5);
    });
  });

  it('hands what the market cannot take within the bound to the auction (SETTLED_AUCTION)', async () => {
    await withStack(AUCTION_ONLY, async (ctx) => {
      await ctx.tick('200');
      await ctx.admin(open('p1', 'LONG', '10', '200', '200'));
      await ctx.admin(provider('lp-1', '0.01'));
      await ctx.tick('184');
      const [liquidation] = await ctx.liquidations();
      expect(liquidation?.state).toBe('SETTLED_AUCTION');
      const auction = await ctx.adapters.auctions.get(`${liquidation?.id}:auction`);
      expect(auction?.state).toBe('CLEARED');
      expect((await ctx.adapters.providers.get('lp-1'))?.capital).toBeLessThan(parseQuote('100000'));
    });
  });

  it('ends an auction that cleared below the bankruptcy price with the freeze of its fund settlement', async () => {
    await withStack(AUCTION_ONLY, async (ctx) => {
      await ctx.admin({ action: 'deposit', amount: '100000', idempotencyKey: 'seed', operator: 'ops' });
      await ctx.tick('200');
      await ctx.admin(open('p1', 'LONG', '10', '200', '200')); // bankrupt at 180
      // Bids 8 % under the mark (within the last resort's 10 %, as the floor allows): the lot clears at about 169,
      // the fund pays the rest.
      await ctx.admin(provider('lp-1', '0.08'));
      await ctx.tick('184');
      const [liquidation] = await ctx.liquidations();
      expect(liquidation?.state).toBe('SETTLED_INSURANCE');
      // One TransactWriteItems ended the auction, paid its provider and froze the settlement.
      const auction = await ctx.adapters.auctions.get(`${liquidation?.id}:auction`);
      expect(auction?.state).toBe('CLEARED');
      expect(auction?.fills.reduce((sum, f) => sum + f.size, 0n)).toBe(liquidation?.remainingSize);
      expect((await ctx.adapters.providers.get('lp-1'))?.capital).toBeLessThan(parseQuote('100000'));
      expect(liquidation?.history.map((h) => h.state)).toEqual(
        expect.arrayContaining(['AUCTION', 'SETTLING', 'SETTLED_INSURANCE']),
      );
      expect(liquidation!.settlement!.insurancePaid).toBeGreaterThan(0n);
    });
  });

  it('wakes a sleeping auction when a tick reaches its wake mark (the wake index on moto, the calls as granted)', async () => {
    await withStack(SLOW_STEPS, async (ctx) => {
      // The auction sleeps from its start: the liquidation function planned its first step and covered its mark.
      const liquidation = await sleepingAuction(ctx);
      const auction = await ctx.adapters.auctions.get(`${liquidation?.id}:auction`);
      expect(auction).toMatchObject({ state: 'RUNNING', step: 0 });
      expect(auction?.wakeMark).toBeDefined();
      expect((await ctx.adapters.markets.get('ETH-USD'))?.wakeMarks?.SELL).toBe(auction?.wakeMark);
      const steps = createAwsQueueTransports(ctx.stack.clients, ctx.stack.names).queues.auctionSteps;
      expect(await steps.depth()).toMatchObject({ visible: 0, delayed: 1 });

      // The bounce: a mark past the wake mark; margin-check reads the sleepers' index and sends the step now.
      await ctx.stack.putTicks([tickDetail('190', 3)]);
      await runPhase(ctx.stack, ['marginCheck']);
      expect(await steps.depth()).toMatchObject({ visible: 1, delayed: 1 });
      expect((await ctx.adapters.markets.get('ETH-USD'))?.wakeMarks?.SELL).toBeUndefined();
    });
  });

  it('sends a running auction its lost step again from liquidation-watch, once (watch43-stalled-auction, watch44-resend-once; the calls as granted)', async () => {
    await withStack(SLOW_STEPS, async (ctx) => {
      const liquidation = await sleepingAuction(ctx);
      const steps = createAwsQueueTransports(ctx.stack.clients, ctx.stack.names).queues.auctionSteps;
      expect(await steps.depth()).toMatchObject({ visible: 0, delayed: 1 });
      // Its step message lost (a purge), and half an hour on: the step was due 20 minutes ago.
      await ctx.stack.clients.sqs.send(
        new PurgeQueueCommand({ QueueUrl: ctx.stack.names.queues.auctionSteps.url }),
      );
      expect(await steps.depth()).toMatchObject({ visible: 0, delayed: 0 });
      await ctx.adapters.liquidations.replace(
        {
          ...liquidation!,
          history: liquidation!.history.map((e) => ({ ...e, atMs: e.atMs - 30 * 60_000 })),
          version: liquidation!.version + 1,
        },
        liquidation!.version,
      );
      const auction = await ctx.adapters.auctions.get(`${liquidation!.id}:auction`);
      await ctx.adapters.auctions.replace(
        { ...auction!, stepDueAtMs: Date.now() - 20 * 60_000, version: auction!.version + 1 },
        auction!.version,
      );
      // A fresh mark (the watch does not resend while it is stale).
      await ctx.stack.putTicks([tickDetail('184', 3)]);
      await runPhase(ctx.stack, ['marginCheck']);
      expect(await ctx.stack.runner.triggerSchedule('liquidationWatch')).toMatchObject({
        auctionStepsResent: 1,
      });
      // A minute away: a message of the step waiting for a fresh mark looks first (review43e-feed-back-resend).
      expect(await steps.depth()).toMatchObject({ visible: 0, delayed: 1 });
      // Claimed on the auction: the next run, the resend still waiting, sends no twin (watch44-resend-once).
      expect((await ctx.adapters.auctions.get(auction!.id))?.stepResent?.step).toBe(auction!.step);
      expect(await ctx.stack.runner.triggerSchedule('liquidationWatch')).toMatchObject({
        auctionStepsResent: 0,
        complete: true,
      });
      expect(await steps.depth()).toMatchObject({ visible: 0, delayed: 1 });
      for (const use of [
        'liquidationWatch read auctions',
        'liquidationWatch update auctions',
        'liquidationWatch read markets',
        'liquidationWatch send auctionSteps',
      ])
        expect([...grants.uses]).toContain(use);
    });
  });

  // SQS reports a queue's metrics only while it is active, and nothing called the dead-letter queues: the alarms,
  // reading SQS's count alone, could clear and never age while letters waited (dlq45-depth-gauge).
  it('reports what each dead-letter queue holds from liquidation-watch, by GetQueueAttributes as granted (dlq45-depth-gauge)', async () => {
    await withStack(DEFAULT_RISK_CONFIG_INPUT, async (ctx) => {
      const { names, clients } = ctx.stack;
      const liquidationLetters = new SqsQueueTransport(clients.sqs, {
        url: names.queues.liquidations.dlqUrl!,
      });
      await liquidationLetters.send(encodeMessage({ liquidationId: 'lost-1' }));
      await liquidationLetters.send(encodeMessage({ liquidationId: 'lost-2' }));
      // One a listing holds out of sight (in flight) is still held.
      expect(await liquidationLetters.receive(1, 60)).toHaveLength(1);
      await new SqsQueueTransport(clients.sqs, { url: names.queues.tickDeadLetters.url }).send(
        '{"detail":{}}',
      );
      expect(await ctx.stack.runner.triggerSchedule('liquidationWatch')).toMatchObject({
        deadLetters: { liquidations: 2, auctionSteps: 0, tickDeadLetters: 1 },
        overdue: 0,
        complete: true,
      });
      // The reads are the watch's own calls, each granted (withStack checks every call against the topology).
      for (const queue of ['liquidations-dlq', 'auctionSteps-dlq', 'tickDeadLetters'])
        expect([...grants.uses]).toContain(`liquidationWatch depth ${queue}`);
    });
  });

  // A position above 100,000 USD of notional is closed in slices of 25 % (the default rules): each slice's
  // settlement sends the next one's message, from the consumer or from the auction function.
  it.each([
    { by: 'the consumer (market)', config: DEFAULT_RISK_CONFIG_INPUT, layer: /^SETTLED_/ },
    { by: 'the auction function', config: AUCTION_ONLY, layer: /^SETTLED_AUCTION$/ },
  ])('liquidates a large position in slices: $by sends the next slice', async ({ config, layer }) => {
    await withStack(config, async (ctx) => {
      await ctx.tick('200');
      await ctx.admin({ ...provider('lp-1', '0.01'), capital: '1000000', maxLot: '1000' });
      await ctx.admin(open('p1', 'LONG', '1000', '200', '20000'));
      await ctx.tick('182');
      const slices = await ctx.liquidations();
      expect(slices.length).toBeGreaterThan(1);
      expect(slices[0]?.state).toMatch(layer);
      for (const l of slices) expect(l.state).toMatch(/^(SETTLED_|CANCELLED)/);
      const next = slices.find((l) => l.id === slices[0]?.context?.nextLiquidationId);
      expect(next?.state).toMatch(/^(SETTLED_|CANCELLED)/);
      expect((await ctx.adapters.positions.get('p1'))?.state).not.toBe('LIQUIDATING');
    });
  });

  it('pays a gap below the bankruptcy price from the fund (SETTLED_INSURANCE)', async () => {
    await withStack(DEFAULT_RISK_CONFIG_INPUT, async (ctx) => {
      await ctx.admin({ action: 'deposit', amount: '100000', idempotencyKey: 'seed', operator: 'ops' });
      await ctx.tick('200');
      await ctx.admin(open('p1', 'LONG', '10', '200', '200'));
      await ctx.tick('175');
      const [liquidation] = await ctx.liquidations();
      expect(liquidation?.state).toBe('SETTLED_INSURANCE');
      const journal = await ctx.adapters.ledger.journal(INSURANCE_ACCOUNT);
      expect(journal.map((e) => e.idempotencyKey)).toEqual(['admin:seed', `${liquidation?.id}:shortfall`]);
      expect(journal.at(-1)?.balanceAfter).toBe(
        parseQuote('100000') - liquidation!.settlement!.insurancePaid,
      );
    });
  });

  it("closes within the last resort's bound when market, auction and ADL can take none of it", async () => {
    await withStack(AUCTION_ONLY, async (ctx) => {
      await ctx.admin({ action: 'deposit', amount: '100000', idempotencyKey: 'seed', operator: 'ops' });
      await ctx.tick('200');
      await ctx.admin(open('p1', 'LONG', '10', '200', '200'));
      await ctx.admin(open('s1', 'SHORT', '1', '180', '400')); // no profit at 184: no ADL counterparty
      await ctx.tick('184');
      const slices = await ctx.liquidations();
      expect(slices.length).toBeGreaterThan(0);
      for (const l of slices) {
        expect(l.state).toMatch(/^SETTLED_(MARKET|INSURANCE)$/);
        expect(l.settlement?.lastResortClosedSize).toBe(l.settlement?.marketClosedSize);
        expect(l.settlement!.lastResortClosedSize).toBeGreaterThan(0n);
        // No provider: no auction was started, nor its curve walked.
        expect(await ctx.adapters.auctions.get(`${l.id}:auction`)).toBeUndefined();
      }
      const position = await ctx.adapters.positions.get('p1');
      expect(position?.state).toBe('CLOSED');
      expect(position?.closedPayout).toBeDefined();
      expect((await ctx.adapters.positions.get('s1'))?.version).toBe(0);
    });
  });

  it('waits for the book through delayed SQS messages that count the waits; a wait that finds no price only names its message', async () => {
    // Bounds tighter than the simulated book's half spread: neither the market order nor the last resort can fill.
    const noPriceWithin = {
      ...AUCTION_ONLY,
      markets: AUCTION_ONLY.markets.map((m) => ({
        ...m,
        lastResortSlippageBound: '0.000001',
        lastResortWaitSeconds: 1,
      })),
      // No further from the mark than the last resort: at it.
      auction: { ...AUCTION_ONLY.auction, floor: '1' },
    };
    await withStack(noPriceWithin, async (ctx) => {
      await ctx.tick('200');
      await ctx.admin(open('p1', 'LONG', '10', '200', '200'));
      await ctx.admin(open('s1', 'SHORT', '1', '180', '400')); // no profit at 184: no ADL counterparty
      await ctx.stack.runner.stop();
      await ctx.stack.putTicks([tickDetail('184', 2)]);
      await runPhase(ctx.stack, ['marginCheck']);
      // A long poll waits for each delayed message to become visible (no sleep).
      const queue = new SqsQueueTransport(ctx.stack.clients.sqs, {
        url: ctx.stack.names.queues.liquidations.url,
        longPoll: { waitSeconds: 10, clientConfig: ctx.stack.clients.config },
      });
      const deliver = async () => {
        const [message] = await queue.receive(1, 30);
        expect(message).toBeDefined();
        const parsed = parseLiquidationMessage(message!.body);
        // As the consumer would (its calls checked against its grants).
        await asFunction('liquidationConsumer', () => processLiquidation(parsed, wiring().settlement));
        await queue.delete(message!.receiptHandle);
        return parsed;
      };

      // No fill, no provider (no auction), no fund, no ADL: the last resort's first order finds nothing within
      // its bound, the attempt is recorded with a conditional write, and the message comes back in 1 s.
      const { liquidationId } = await deliver();
      const waiting = await ctx.adapters.liquidations.get(liquidationId);
      expect(waiting?.state).toBe('MARKET_EXECUTED');
      expect(waiting?.context?.lastResortAttempt).toBe(1);
      expect(await queue.depth()).toMatchObject({ visible: 0, inFlight: 0 });

      // The next delivery asks the book for a quote, finds no price within the bound, and sends the next wait
      // (2 s), then names it on the record with one conditional write (a copy of a wait message ends:
      // waits43-one-chain): no order.
      // Each wait's message is due when its delay ends (its lateness counts from then).
      const first = await deliver();
      expect(first).toEqual({
        liquidationId,
        lastResortWaits: 1,
        lastResortWaitId: waiting?.context?.lastResortWait?.id,
        lastResortFillsSeen: 0,
        adlJudgedAtE8: '18400000000',
        dueAtMs: expect.any(Number),
      });
      expect(waiting?.context?.lastResortWait).toEqual({ id: expect.any(String), waits: 1 });
      const still = await ctx.adapters.liquidations.get(liquidationId);
      expect(still?.version).toBe(waiting!.version + 1);
      expect(still?.context?.lastResortAttempt).toBe(1);
      const [next] = await queue.receive(1, 30);
      const nextId = still?.context?.lastResortWait?.id;
      expect(nextId).not.toBe(first.lastResortWaitId);
      expect(still?.context?.lastResortWait).toEqual({ id: nextId, waits: 2 });
      expect(next && parseLiquidationMessage(next.body)).toEqual({
        liquidationId,
        lastResortWaits: 2,
        lastResortWaitId: nextId,
        // The wait it followed (review43b-wait-before-named).
        lastResortWaitAfter: first.lastResortWaitId,
        lastResortFillsSeen: 0,
        adlJudgedAtE8: '18400000000',
        dueAtMs: expect.any(Number),
      });
      expect((await ctx.adapters.positions.get('p1'))?.state).toBe('LIQUIDATING');
    });
  });

  it('waits for an empty book through the real consumer and delayed SQS messages, ends a copy of a wait, and settles once when the book returns', async () => {
    // Waits of 1 s, then 2 s: the chain runs in seconds.
    const config = {
      ...AUCTION_ONLY,
      markets: AUCTION_ONLY.markets.map((m) => ({ ...m, lastResortWaitSeconds: 1 })),
    };
    await withStack(config, async (ctx) => {
      await ctx.admin({ action: 'deposit', amount: '100000', idempotencyKey: 'seed', operator: 'ops' });
      await ctx.tick('200');
      await ctx.admin(open('p1', 'LONG', '10', '200', '200'));
      await ctx.admin(open('s1', 'SHORT', '1', '180', '400')); // no profit at 184: no ADL counterparty
      await ctx.stack.runner.stop();
      // The crash empties the exchange's book: no bid within any bound (AUCTION_ONLY's market bound takes none
      // anyway), and no provider, so no auction: the last resort is all that can close it, and it waits.
      const venue = emptiedVenue();
      await ctx.stack.putTicks([tickDetail('184', 2)]);
      await runPhase(ctx.stack, ['marginCheck']);
      const queue = new SqsQueueTransport(ctx.stack.clients.sqs, {
        url: ctx.stack.names.queues.liquidations.url,
        longPoll: { waitSeconds: 10, clientConfig: ctx.stack.clients.config },
      });
      const consume = consumerOf(ctx.stack, queue);
      const { liquidationId: id } = await consume();
      const waiting = await ctx.adapters.liquidations.get(id);
      expect(waiting).toMatchObject({ state: 'MARKET_EXECUTED', context: { lastResortAttempt: 1 } });
      const w1 = waiting!.context!.lastResortWait!;
      expect(w1).toEqual({ id: expect.any(String), waits: 1 });
      // The wait is a delayed SQS message, not a message visible at once.
      expect(await queue.depth()).toEqual({ visible: 0, inFlight: 0, delayed: 1 });
      expect(venue.orders).toEqual([`${id}:market`, `${id}:last-resort:0`]);

      // The wait, received when its delay ended: a quote (still empty), the next wait sent and named.
      const first = await consume();
      expect(first).toMatchObject({ liquidationId: id, lastResortWaits: 1, lastResortWaitId: w1.id });
      expect(venue.quotes).toBe(1);
      const named = await ctx.adapters.liquidations.get(id);
      expect(named?.context?.lastResortWait).toEqual({ id: expect.any(String), waits: 2 });
      expect(await queue.depth()).toEqual({ visible: 0, inFlight: 0, delayed: 1 });

      // SQS delivers the first wait again: a copy of a wait the record no longer names ends, asking nothing and
      // sending nothing (waits43-one-chain).
      await queue.send(encodeMessage(first));
      await consume();
      expect(venue.quotes).toBe(1);
      expect((await ctx.adapters.liquidations.get(id))?.version).toBe(named!.version);
      expect(await queue.depth()).toEqual({ visible: 0, inFlight: 0, delayed: 1 });

      // The book comes back: the named wait's look finds a bid within the bound and sells, by the stack's runner.
      venue.empty = false;
      await ctx.stack.runner.runUntilIdle({ deadlineMs: 60_000 });
      const ended = await ctx.adapters.liquidations.get(id);
      expect(ended?.state).toMatch(/^SETTLED_/);
      expect(ended?.history.filter((h) => isTerminal(h.state))).toHaveLength(1);
      expect(ended?.settlement?.lastResortClosedSize).toBe(parseBase('10'));
      expect(venue.quotes).toBe(2);
      expect(venue.orders.filter((o) => o.includes(':last-resort:'))).toEqual([
        `${id}:last-resort:0`,
        `${id}:last-resort:1`,
      ]);
      expect((await ctx.adapters.positions.get('p1'))?.state).toBe('CLOSED');
      // A copy of the last wait after the end asks and sends nothing either.
      await ctx.stack.runner.stop();
      const last = named!.context!.lastResortWait!.id;
      await queue.send(
        encodeMessage({
          liquidationId: id,
          lastResortWaits: 2,
          lastResortWaitId: last,
          lastResortWaitAfter: w1.id,
        }),
      );
      await consume();
      expect(venue.quotes).toBe(2);
      expect(await ctx.adapters.liquidations.get(id)).toEqual(ended);
      expect(await queue.depth()).toEqual({ visible: 0, inFlight: 0, delayed: 0 });
    });
  });

  // Session 41 (venue-hold-start-trusted): the hold's start was the message's, so one carrying another time ended or
  // prolonged the hold. On DynamoDB, as on the embedded store: the first recorded start is the one judged.
  it("judges a venue's hold from the start on the liquidation, whatever time a message carries", async () => {
    const held = {
      ...DEFAULT_RISK_CONFIG_INPUT,
      markets: DEFAULT_RISK_CONFIG_INPUT.markets.map((m) => ({
        ...m,
        venueCheckBand: '0.05',
        venueCheckHoldSeconds: 30,
      })),
    };
    await withStack(held, async (ctx) => {
      await queuedWithStackStopped(ctx);
      const [{ id: liquidationId }] = (await ctx.liquidations()) as [LiquidationRecord];
      const settlement = wiring().settlement;
      let now = Date.now();
      const telemetry = new RecordingTelemetry();
      const deps = {
        ...settlement,
        telemetry,
        clock: { nowMs: () => now },
        // The exchange's book still at 200 after the feed's fall to 175: the long is healthy there.
        venue: {
          placeIoc: settlement.venue.placeIoc.bind(settlement.venue),
          quote: async () => ({ bid: parsePrice('200'), ask: parsePrice('200.1') }),
        },
      };
      const deliver = async (message: Parameters<typeof processLiquidation>[0]) =>
        (await asFunction('liquidationConsumer', () => processLiquidation(message, deps))).state;
      const start = now;
      expect(await deliver({ liquidationId })).toBe('QUEUED');
      now += 10_000;
      expect(await deliver({ liquidationId, markDisputedSinceMs: start - 3_600_000 })).toBe('QUEUED');
      now += 19_000;
      expect(await deliver({ liquidationId, markDisputedSinceMs: now })).toBe('QUEUED');
      expect(await deliver({ liquidationId })).toBe('QUEUED');
      expect((await ctx.adapters.liquidations.get(liquidationId))?.markDisputedSinceMs).toBe(start);
      expect(telemetry.total('MarkDisputes')).toBe(4);
      expect(telemetry.total('LiquidationsDisputed')).toBe(1);
      // 30 s after the recorded start, a message claiming a later one does not hold it.
      now += 1_000;
      expect(await deliver({ liquidationId, markDisputedSinceMs: now - 1_000 })).not.toBe('QUEUED');
      expect(telemetry.total('MarkDisputesOverruled')).toBe(1);
    });
  });

  it('socializes what an empty fund cannot pay through ADL (SETTLED_ADL)', async () => {
    await withStack(DEFAULT_RISK_CONFIG_INPUT, async (ctx) => {
      await ctx.tick('200');
      await ctx.admin(open('p1', 'LONG', '10', '200', '200'));
      await ctx.admin(open('s1', 'SHORT', '10', '200', '400'));
      await ctx.tick('175');
      const [liquidation] = await ctx.liquidations();
      expect(liquidation?.state).toBe('SETTLED_ADL');
      const counterparty = await ctx.adapters.positions.get('s1');
      expect(counterparty?.version).toBeGreaterThan(0);
      // It names the settlement that took from it (adl47-who-closed).
      expect(counterparty?.adlEvents).toEqual({
        total: 1,
        recent: [expect.objectContaining({ liquidationId: liquidation!.id, round: 0 })],
      });
      expect((await ctx.adapters.ledger.balance(INSURANCE_ACCOUNT)).balance).toBe(0n);
    });
  });

  // follow47-adl-events-unreadable: positionFromItem read the display-only adlEvents strictly, so a list it could not
  // read (a later version's shape, an edit by hand) failed every read of the position: margin checks, the liquidation's
  // own settlement and ADL's ranking included.
  it('a position whose ADL events do not read is margin-checked, liquidated and deleveraged; its list kept and shown as unreadable', async () => {
    await withStack(DEFAULT_RISK_CONFIG_INPUT, async (ctx) => {
      await ctx.tick('200');
      await ctx.admin(open('p1', 'LONG', '10', '200', '200'));
      await ctx.admin(open('s1', 'SHORT', '10', '200', '400'));
      // Written by hand: a later version's shape on the long, a bad edit on the short.
      const later: AttributeValue = {
        M: { version: { N: '2' }, events: { L: [{ M: { liquidation: { S: 'x:0' } } }] } },
      };
      const edited: AttributeValue = {
        M: {
          total: { N: '1' },
          recent: { L: [{ M: { liquidationId: { S: 'p0:0' }, round: { N: '0' }, size: { S: 'one' } } }] },
        },
      };
      const setEvents = (id: string, value: AttributeValue) =>
        ctx.stack.clients.dynamo.send(
          new UpdateItemCommand({
            TableName: ctx.stack.names.tables.positions,
            Key: { id: { S: id } },
            UpdateExpression: 'SET adlEvents = :events',
            ExpressionAttributeValues: { ':events': value },
          }),
        );
      await setEvents('p1', later);
      await setEvents('s1', edited);
      const item = async (id: string) =>
        (
          await ctx.stack.clients.dynamo.send(
            new GetItemCommand({
              TableName: ctx.stack.names.tables.positions,
              Key: { id: { S: id } },
              ConsistentRead: true,
            }),
          )
        ).Item!;
      // Before: the tick failed on the long's list (CorruptItemError), and no liquidation started.
      await ctx.tick('175');
      const [liquidation] = await ctx.liquidations();
      expect(liquidation?.state).toBe('SETTLED_ADL');
      expect(liquidation?.settlement?.adlCovered).toBeGreaterThan(0n);
      // The long's list, through its liquidation's writes (the settlement's whole Put too), as it was.
      const p1 = await item('p1');
      expect(p1.state).toEqual({ S: 'CLOSED' });
      expect(p1.adlEvents).toEqual(later);
      // The short's list set aside as it was, and a new one started with the event.
      const s1 = await item('s1');
      expect(s1.adlEventsSetAside).toEqual({ L: [edited] });
      const short = await ctx.adapters.positions.get('s1');
      expect(short?.adlEvents).toEqual({
        total: 1,
        recent: [expect.objectContaining({ liquidationId: liquidation!.id, round: 0 })],
      });
      // And the reads show each as unreadable, with why.
      const at = ['--target', 'local', '--endpoint', moto.endpoint, '--stage', `e2e${stageCounter}`];
      const shown = async (id: string) => {
        const run = await cli('liquidations', 'show', '--position', id, '--json', ...at);
        expect(run.code, run.stderr).toBe(0);
        return JSON.parse(run.stdout);
      };
      expect(await shown('p1')).toMatchObject({
        liquidations: [{ id: liquidation!.id }],
        unreadableAdlEvents: [{ reason: 'adapter/missing-attribute: recent', current: true }],
      });
      expect((await shown('p1')).deleveragedBy).toBeUndefined();
      expect(await shown('s1')).toMatchObject({
        deleveragedBy: { total: 1, events: [{ liquidationId: liquidation!.id, round: 0 }] },
        unreadableAdlEvents: [{ reason: 'recent[0]: adapter/not-an-integer: size', current: false }],
      });
      const text = await cli('liquidations', 'show', '--position', 's1', ...at);
      expect(text.stdout).toContain(
        '  an earlier list of ADL events this version cannot read (recent[0]: adapter/not-an-integer: size): set aside on the record as it was when an ADL event started a new list\n',
      );
    });
  });

  it('carries a deficit beyond one transaction of ADL counterparties to further rounds on the settled record', async () => {
    await withStack(DEFAULT_RISK_CONFIG_INPUT, async (ctx) => {
      await ctx.tick('200');
      // The market closes the long (the book is there): ADL has no size to close, only about 251 USD of deficit.
      await ctx.admin(open('p1', 'LONG', '50', '200', '1000'));
      // 2.5 USD of profit each at 175, but 1 USD of collateral: a haircut takes 1, so 90 a transaction.
      const shorts = Array.from({ length: 300 }, (_, i) => `s${i + 1}`);
      for (const id of shorts) await ctx.admin(open(id, 'SHORT', '0.1', '200', '1'));
      const sends = vi.spyOn(DynamoDBClient.prototype, 'send');
      await ctx.tick('175');
      const transactions = sends.mock.calls.flatMap(([command]) =>
        command instanceof TransactWriteItemsCommand ? [command.input.TransactItems?.length ?? 0] : [],
      );
      sends.mockRestore();

      const [liquidation] = await ctx.liquidations();
      const s = liquidation!.settlement!;
      expect(liquidation?.state).toBe('SETTLED_ADL');
      expect(s.marketClosedSize).toBe(parseBase('50'));
      expect(s.adlClosedSize).toBe(0n);
      expect(s.insurancePaid).toBe(0n);
      expect(s.shortfall).toBeGreaterThan(parseQuote('180'));
      expect(s.adlCovered).toBe(s.shortfall);
      expect(s.badDebt).toBe(0n);
      // The rounds ran on the settled record, and ended: the count stays, the round in progress does not.
      expect(liquidation?.context?.adlRound).toBeUndefined();
      expect(liquidation?.context?.adlRounds).toBe(Math.ceil(Number(s.shortfall) / 90_000_000) - 1);
      expect(liquidation?.context?.adlRounds).toBeGreaterThanOrEqual(2);
      expect(liquidation?.history.filter((h) => h.state === 'SETTLED_ADL')).toHaveLength(1);
      // The settlement (record, position, 90 counterparties) and a full round (record, 90) on moto, under 100.
      expect(transactions.filter((n) => n > 90).sort((a, b) => a - b)).toEqual([91, 92]);
      expect(Math.max(...transactions)).toBeLessThanOrEqual(100);

      // Each short gave at most its 1 USD of collateral, kept its size, and together they gave what ADL covered.
      const given = await Promise.all(
        shorts.map(async (id) => {
          const short = await ctx.adapters.positions.get(id);
          expect(short?.size).toBe(parseBase('0.1'));
          return parseQuote('1') - short!.collateral;
        }),
      );
      expect(given.every((g) => g >= 0n && g <= parseQuote('1'))).toBe(true);
      expect(given.reduce((a, b) => a + b, 0n)).toBe(s.adlCovered);
      expect(given.filter((g) => g > 0n).length).toBeGreaterThan(180);
      // Each short that gave names the liquidation and the round that took from it, written by the transactions
      // counted above (adl47-who-closed); the settlement is round 0.
      const rounds = new Set<number>();
      for (const [i, id] of shorts.entries()) {
        const events = (await ctx.adapters.positions.get(id))?.adlEvents as AdlEvents | undefined;
        if (given[i] === 0n) {
          expect(events).toBeUndefined();
          continue;
        }
        expect(events?.total).toBe(1);
        expect(events?.recent[0]).toMatchObject({
          liquidationId: liquidation!.id,
          size: 0n,
          given: given[i],
          haircut: given[i],
        });
        rounds.add(events!.recent[0]!.round);
      }
      expect([...rounds].sort((a, b) => a - b)).toEqual(
        Array.from({ length: liquidation!.context!.adlRounds! + 1 }, (_, round) => round),
      );

      // The fund had nothing and paid nothing; no message is left behind, dead-lettered or delayed.
      expect((await ctx.adapters.ledger.balance(INSURANCE_ACCOUNT)).balance).toBe(0n);
      expect(await ctx.adapters.ledger.journal(INSURANCE_ACCOUNT)).toEqual([]);
      const depths = await queueDepths(ctx.stack.clients, ctx.stack.names);
      expect(
        Object.values(depths).every((d) => d === 0),
        JSON.stringify(depths),
      ).toBe(true);
    });
  });

  it('reads every index shard of a market: liquidations and ADL counterparties in any of them', async () => {
    await withStack(
      DEFAULT_RISK_CONFIG_INPUT,
      async (ctx) => {
        await ctx.tick('200');
        for (let i = 1; i <= 6; i++) await ctx.admin(open(`p${i}`, 'LONG', '10', '200', '200'));
        // ADL's first counterparty (the most leveraged winner) sits in the last shard, the others anywhere.
        const layout = new PositionIndexLayout({ 'ETH-USD': 4 });
        const shardOf = (id: string) => layout.keyOf({ id, symbol: 'ETH-USD', side: 'SHORT' });
        const first = ['s1', 's2', 's3', 's4', 's5', 's6', 's7', 's8'].find((id) =>
          shardOf(id).endsWith('#3'),
        )!;
        const others = ['o1', 'o2', 'o3', 'o4', 'o5'];
        await ctx.admin(open(first, 'SHORT', '10', '200', '300'));
        for (const id of others) await ctx.admin(open(id, 'SHORT', '10', '200', '400'));
        const scan = await ctx.stack.clients.dynamo.send(
          new ScanCommand({ TableName: ctx.stack.names.tables.positions }),
        );
        const shardsOf = (side: string) =>
          new Set((scan.Items ?? []).flatMap((item) => (item.side?.S === side ? [item.liqKey?.S] : []))).size;
        expect(shardsOf('LONG')).toBeGreaterThan(1);
        expect(shardsOf('SHORT')).toBeGreaterThan(1);
        await ctx.tick('175');
        const liquidations = await ctx.liquidations();
        expect(liquidations.map((l) => l.positionId).sort()).toEqual(['p1', 'p2', 'p3', 'p4', 'p5', 'p6']);
        for (const l of liquidations) expect(l.state).toBe('SETTLED_ADL');
        // The fund was empty: ADL found its first counterparty in the last shard.
        expect((await ctx.adapters.positions.get(first))?.version).toBeGreaterThan(1);
      },
      { positionIndexShards: { 'ETH-USD': 4 } },
    );
  });
  it('a liquidation whose message a purge lost: liquidation-watch reports it, `liquidations overdue --resend` resumes it', async () => {
    await withStack(DEFAULT_RISK_CONFIG_INPUT, async (ctx) => {
      await queuedWithStackStopped(ctx);
      await ctx.stack.clients.sqs.send(
        new PurgeQueueCommand({ QueueUrl: ctx.stack.names.queues.liquidations.url }),
      );
      const [queued] = await ctx.liquidations();
      expect(queued?.state).toBe('QUEUED');
      const at = ['--target', 'local', '--endpoint', moto.endpoint, '--stage', `e2e${stageCounter}`];
      // Status says nothing moves it.
      expect(JSON.parse((await cli('status', '--json', ...at)).stdout)).toMatchObject({
        drained: true,
        stranded: 1,
      });
      // Known lost (the operator purged it): listed at once with --all, not yet overdue.
      const young = await cli('liquidations', 'overdue', '--all', '--json', ...at);
      expect(JSON.parse(young.stdout)).toMatchObject({ overdue: 1, liquidations: [{ id: queued!.id }] });
      expect(JSON.parse((await cli('liquidations', 'overdue', '--json', ...at)).stdout)).toMatchObject({
        overdue: 0,
      });
      // Three hours on (a start may stay quiet for its venue check's hold, a delay and an hour's slack).
      const longAgo = Date.now() - 3 * 3_600_000;
      await ctx.adapters.liquidations.replace(
        { ...queued!, history: [{ ...queued!.history[0]!, atMs: longAgo }], version: queued!.version + 1 },
        queued!.version,
      );
      const watch = async () =>
        (await ctx.stack.runner.triggerSchedule('liquidationWatch')) as {
          overdue: number;
          longestOverdue: { id: string; state: string }[];
        };
      expect(await watch()).toMatchObject({
        overdue: 1,
        longestOverdue: [{ id: queued!.id, state: 'QUEUED' }],
        // Read whole: the cycle ends and its cursor is stored, as granted (watch44b-cursor).
        complete: true,
        cycle: { judged: 1, overdue: 1, cursorSaved: true },
      });

      const listed = await cli('liquidations', 'overdue', '--json', ...at);
      expect(listed.stderr).toBe('');
      expect(JSON.parse(listed.stdout)).toMatchObject({ overdue: 1, resent: [] });
      const resent = await cli('liquidations', 'overdue', '--resend', '--json', ...at);
      expect(JSON.parse(resent.stdout)).toMatchObject({ overdue: 1, resent: [queued!.id] });
      // A fresh mark, and the resent message resumes the liquidation from its record.
      await ctx.stack.putTicks([tickDetail('175', 3)]);
      await runPhase(ctx.stack, ['marginCheck', 'liquidationConsumer', 'auction']);
      const [ended] = await ctx.liquidations();
      expect(ended?.state).toMatch(/^SETTLED_/);
      expect(await watch()).toMatchObject({ overdue: 0, longestOverdue: [] });
    });
  });
});
