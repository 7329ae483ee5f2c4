import { SendMessageCommand } from '@aws-sdk/client-sqs';
import type { Context, SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { TRANSACTION_ATTEMPTS } from '../../shared/adapters/aws/codec.ts';
import {
  type AwsAdapters,
  type AwsClients,
  createAwsAdapters,
  createAwsQueueTransports,
} from '../../shared/adapters/aws/index.ts';
import { systemClock } from '../../shared/adapters/embedded/clock.ts';
import { instrumentVenueKeyClients } from '../../shared/adapters/venue/key.ts';
import { DEFAULT_RISK_CONFIG_INPUT, type RiskConfigInput } from '../../shared/domain/config.ts';
import { isTerminal } from '../../shared/domain/model.ts';
import { logger } from '../../shared/lambda/runtime.ts';
import { instrumentAwsClients, wiring } from '../../shared/lambda/wiring.ts';
import type { Deployment } from '../../shared/local/deployment.ts';
import { discardDeadLetters, listDeadLetters, redriveDeadLetters } from '../../shared/local/dlq.ts';
import { type LocalStack, startLocalStack } from '../../shared/local/stack.ts';
import { type LiquidationRecord, silentTelemetry } from '../../shared/ports/index.ts';
import {
  asFunction,
  createLocalRunner,
  type InvocationError,
  type LambdaHandler,
} from '../../shared/runner/index.ts';
import { INSURANCE_ACCOUNT } from '../../shared/services/context.ts';
import { processLiquidation } from '../../shared/services/liquidation.ts';
import { reconcileAccount } from '../../shared/services/reconcile.ts';
import { type FunctionId, QUEUES, VENUE_KEY_ENV } from '../../shared/topology.ts';
import { FaultInjector, throttled, transactionConflict } from '../support/aws-faults.ts';
import { queueDepths } from '../support/emulator-invariants.ts';
import { GrantRecorder } from '../support/grants.ts';
import { recordFigures } from '../support/invariants.ts';
import { startMoto } from '../support/moto.ts';
import { AUCTION_ONLY } from '../support/risk-configs.ts';

/**
 * Issue 7, scenario 5: AWS faults against the emulator (moto), with the real handlers run by the local runner.
 * Faults are injected with SDK middleware into the handlers' own clients (instrumentAwsClients), below the SDK's
 * retry loop, so the SDK retries, the adapters' own retries and SQS redelivery all meet them as they would on AWS.
 * After every scenario: every liquidation terminal, the fund's ledger reconciles, one journal entry per
 * idempotency key, no message left in any queue or DLQ (unless the scenario puts it there).
 */

// The handlers log every injected failure at ERROR; the runner keeps them (asserted below), so keep the output short.
const logLevel = vi.hoisted(() => {
  const before = process.env.POWERTOOLS_LOG_LEVEL;
  process.env.POWERTOOLS_LOG_LEVEL ??= 'SILENT';
  return { before };
});

type Moto = Awaited<ReturnType<typeof startMoto>>;
let moto: Moto;
let stageCounter = 0;

beforeAll(async () => {
  moto = await startMoto();
});
afterAll(async () => {
  await moto?.stop();
  if (logLevel.before === undefined) delete process.env.POWERTOOLS_LOG_LEVEL;
  else process.env.POWERTOOLS_LOG_LEVEL = logLevel.before;
});

const DEADLINE_MS = 60_000;
const ALL_FUNCTIONS: readonly FunctionId[] = ['marginCheck', 'liquidationConsumer', 'auction'];

/** Three longs a fall to 180 makes liquidatable (maintenance margin 2.5%): one underwater, two not. */
const POSITIONS = [
  { id: 'p1', size: '10', collateral: '200' },
  { id: 'p2', size: '10', collateral: '220' },
  { id: 'p3', size: '5', collateral: '110' },
] as const;

interface Ctx {
  readonly stack: LocalStack;
  /** Adapters on clean clients, to read the final state. */
  readonly adapters: AwsAdapters;
  readonly faults: FaultInjector;
  readonly deployment: Deployment;
  /** The handlers' clients once faults are injected (their counter gives calls and SDK attempts). */
  handlerClients?: AwsClients;
  /** Installs faults into the handlers' clients from their next invocation on. */
  inject(install: (clients: AwsClients, faults: FaultInjector) => void): void;
  /** Puts ticks on the bus (sequence given) and runs every queue function until idle. */
  ticks(...prices: readonly [price: string, sequence: number][]): Promise<Phase>;
}

const lambdaContextStub = {
  functionName: 'admin',
  awsRequestId: 'aws-faults',
  invokedFunctionArn: 'arn:aws:lambda:us-east-1:000000000000:function:admin',
  getRemainingTimeInMillis: () => 30_000,
};

const tickDetail = (price: string, sequence: number) => ({
  symbol: 'ETH-USD',
  markPrice: price,
  timestamp: Date.now(),
  sequence,
  source: 'aws-faults',
});

async function withStack(
  body: (ctx: Ctx) => Promise<void>,
  riskConfig: RiskConfigInput = DEFAULT_RISK_CONFIG_INPUT,
): Promise<void> {
  stageCounter += 1;
  const stage = `fault${stageCounter}`;
  const stack = await startLocalStack({
    endpoint: moto.endpoint,
    stage,
    riskConfig,
    fastRetries: true,
  });
  const faults = new FaultInjector();
  // Every call the handlers make under faults (retries, recovery paths) must be granted by the topology.
  const grants = new GrantRecorder();
  grants.forStage(stack.names, stack.env[VENUE_KEY_ENV]);
  instrumentAwsClients((clients) => grants.attach(clients));
  instrumentVenueKeyClients((client) => grants.attachVenueKey(client));
  const ctx: Ctx = {
    stack,
    adapters: createAwsAdapters({ clients: stack.clients, names: stack.names, clock: systemClock }),
    faults,
    deployment: {
      kind: 'local',
      stage,
      region: 'us-east-1',
      endpoint: moto.endpoint,
      clients: stack.clients,
      names: stack.names,
      close: () => {},
    },
    inject(install) {
      instrumentAwsClients((clients) => {
        ctx.handlerClients = clients;
        grants.attach(clients);
        install(clients, faults);
      });
    },
    async ticks(...prices) {
      expect(await stack.putTicks(prices.map(([p, s]) => tickDetail(p, s)))).toEqual([]);
      return runPhase(stack, ALL_FUNCTIONS);
    },
  };
  try {
    // The stack's own runner invokes functions concurrently; phases below run one invocation at a time.
    await stack.runner.stop();
    // Seed without faults: a funded insurance fund, a first mark, three positions.
    await admin(stack, { action: 'deposit', amount: '100000', idempotencyKey: 'seed', operator: 'ops' });
    expect(errorTexts((await ctx.ticks(['200', 1])).errors)).toEqual([]);
    for (const p of POSITIONS) {
      await admin(stack, {
        action: 'openPosition',
        id: p.id,
        traderId: `t-${p.id}`,
        symbol: 'ETH-USD',
        side: 'LONG',
        size: p.size,
        entryPrice: '200',
        collateral: p.collateral,
      });
    }
    await body(ctx);
    expect(grants.ungranted()).toEqual([]);
  } finally {
    instrumentAwsClients(undefined);
    instrumentVenueKeyClients(undefined);
    await stack.stop();
  }
}

async function admin(stack: LocalStack, request: unknown): Promise<void> {
  const result = await (stack.handlers.admin as (e: unknown, c: unknown) => Promise<unknown>)(
    request,
    lambdaContextStub,
  );
  expect(result, JSON.stringify(result)).toMatchObject({ ok: true });
}

interface Phase {
  readonly errors: readonly InvocationError[];
  /** ApproximateReceiveCount of every SQS record delivered, by message id. */
  readonly receives: ReadonlyMap<string, readonly number[]>;
}

/** Runs only some functions until their queues are idle (records every delivery), then stops them. */
async function runPhase(stack: LocalStack, functions: readonly FunctionId[]): Promise<Phase> {
  const transports = createAwsQueueTransports(stack.clients, stack.names);
  const receives = new Map<string, number[]>();
  const observed = (handler: LambdaHandler): LambdaHandler =>
    ((event: SQSEvent, context: Context) => {
      for (const r of event.Records ?? []) {
        receives.set(r.messageId, [
          ...(receives.get(r.messageId) ?? []),
          Number(r.attributes.ApproximateReceiveCount),
        ]);
      }
      return (handler as (e: unknown, c: unknown) => unknown)(event, context);
    }) as LambdaHandler;
  const runner = createLocalRunner({
    handlers: Object.fromEntries(functions.map((id) => [id, observed(stack.handlers[id])])),
    queues: transports.queues,
    tickQueue: transports.tickQueue,
    failureVisibilitySeconds: 0,
    // Two invocations at a time per function, the least an SQS event source allows on AWS.
    maxConcurrency: 2,
  });
  runner.start();
  try {
    await runner.runUntilIdle({ deadlineMs: DEADLINE_MS });
    return { errors: [...runner.errors], receives };
  } finally {
    await runner.stop();
  }
}

async function liquidationsOf(ctx: Ctx): Promise<LiquidationRecord[]> {
  const found: LiquidationRecord[] = [];
  for (let sequence = 1; sequence <= 5; sequence++) {
    found.push(...(await ctx.adapters.liquidations.listByTick(`ETH-USD#${sequence}`)));
  }
  return found.sort((a, b) => a.id.localeCompare(b.id));
}

/**
 * The invariants after a scenario: one terminal liquidation per position, none left LIQUIDATING, the fund's
 * journal reconciles with one entry per idempotency key (and one per liquidation effect), queues drained.
 */
async function expectSettledOnce(ctx: Ctx, expectedDlq = 0): Promise<LiquidationRecord[]> {
  const liquidations = await liquidationsOf(ctx);
  expect(liquidations.map((l) => l.positionId)).toEqual(POSITIONS.map((p) => p.id));
  for (const l of liquidations) {
    expect(isTerminal(l.state), `${l.id} in ${l.state}`).toBe(true);
    expect((await ctx.adapters.positions.get(l.positionId))?.state).not.toBe('LIQUIDATING');
  }
  const report = await reconcileAccount(ctx.adapters.ledger, INSURANCE_ACCOUNT, silentTelemetry);
  expect(report.difference).toBe(0n);
  expect(report.problems).toEqual([]);
  expect(report.minBalance).toBeGreaterThanOrEqual(0n);
  const keys = (await ctx.adapters.ledger.journal(INSURANCE_ACCOUNT)).map((e) => e.idempotencyKey);
  expect(new Set(keys).size).toBe(keys.length);
  expect(keys[0]).toBe('admin:seed');
  // Every other movement belongs to one of this tick's liquidations.
  for (const key of keys.slice(1)) {
    expect(
      liquidations.some((l) => key.startsWith(`${l.id}:`)),
      key,
    ).toBe(true);
  }
  const depths = await queueDepths(ctx.stack.clients, ctx.stack.names);
  expect(depths).toEqual({
    liquidations: 0,
    auctionSteps: 0,
    liquidationsDlq: expectedDlq,
    auctionStepsDlq: 0,
    tickDeadLetters: 0,
    ticks: 0,
  });
  return liquidations;
}

/** An error with a cancelled transaction's reason codes, e.g. `TransactionCanceledException: ... [TransactionConflict]`. */
const describeError = (error: unknown): string => {
  const reasons = (error as { CancellationReasons?: { Code?: string }[] }).CancellationReasons;
  return reasons ? `${String(error)} [${reasons.map((r) => r.Code).join(',')}]` : String(error);
};

/** Each failed record's error (a batch whose records all failed reports them inside FullBatchFailureError). */
const errorTexts = (errors: readonly InvocationError[]): string[] =>
  errors.flatMap((e) => {
    const inner = (e.error as { recordErrors?: unknown[] }).recordErrors;
    return inner ? inner.map(describeError) : [describeError(e.error)];
  });

/** Figures for docs/RELIABILITY.md (written when STRESS_FIGURES is set). */
async function recordScenario(
  ctx: Ctx,
  name: string,
  liquidations: readonly LiquidationRecord[],
  errors: readonly InvocationError[],
  extra: Record<string, unknown> = {},
): Promise<void> {
  const journal = await ctx.adapters.ledger.journal(INSURANCE_ACCOUNT);
  recordFigures(`5-aws-faults-${name}`, {
    injected: ctx.faults.injected,
    handlerApiCalls: ctx.handlerClients?.counter.snapshot(),
    handlerApiAttempts: ctx.handlerClients?.counter.attemptsSnapshot(),
    failedRecords: errorTexts(errors).length,
    states: liquidations.map((l) => `${l.id} ${l.state}`),
    fundJournalEntries: journal.length,
    fundBalance: journal.at(-1)?.balanceAfter,
    ...extra,
  });
}

describe('AWS faults on moto (issue 7, scenario 5)', () => {
  it('throttling bursts on TransactWriteItems and UpdateItem: SDK retries and redelivery finish once', async () => {
    await withStack(async (ctx) => {
      // 9 throttled TransactWriteItems: the tick begins its three liquidations together and each exhausts its 3
      // attempts (the delivery fails and is redelivered, then they begin); 2 throttled UpdateItems are absorbed
      // by the SDK.
      ctx.inject((clients, faults) =>
        faults.failCalls(clients, [
          { operation: 'TransactWriteItems', times: 9, error: throttled },
          { operation: 'UpdateItem', times: 2, error: throttled },
        ]),
      );
      const run = await ctx.ticks(['180', 2]);
      expect(ctx.faults.injected).toEqual({ TransactWriteItems: 9, UpdateItem: 2 });
      // Only the call that ran out of SDK attempts surfaced (failing its tick, which was redelivered).
      expect(run.errors.map((e) => e.functionId)).toEqual(['marginCheck']);
      expect(errorTexts(run.errors)[0]).toContain('ProvisionedThroughputExceededException');
      const attempts = ctx.handlerClients?.counter.attemptsSnapshot() ?? {};
      const calls = ctx.handlerClients?.counter.snapshot() ?? {};
      expect((attempts['dynamodb.UpdateItem'] ?? 0) - (calls['dynamodb.UpdateItem'] ?? 0)).toBe(2);
      const liquidations = await expectSettledOnce(ctx);
      await recordScenario(ctx, 'throttling', liquidations, run.errors);
    });
  });

  it.each([
    { conflicts: TRANSACTION_ATTEMPTS - 1, outcome: 'retried in the adapter, no delivery fails' },
    { conflicts: 3 * TRANSACTION_ATTEMPTS, outcome: "past the adapter's attempts, redelivery finishes" },
  ])(
    "$conflicts transaction conflicts on the consumer's commits: $outcome, exactly once",
    async ({ conflicts }) => {
      await withStack(async (ctx) => {
        expect(await ctx.stack.putTicks([tickDetail('180', 2)])).toEqual([]);
        const margin = await runPhase(ctx.stack, ['marginCheck']);
        expect(errorTexts(margin.errors)).toEqual([]);
        // Faults only for the consumer: its next transactions are cancelled with TransactionConflict.
        ctx.inject((clients, faults) =>
          faults.failCalls(clients, [
            { operation: 'TransactWriteItems', times: conflicts, error: transactionConflict },
          ]),
        );
        const consumer = await runPhase(ctx.stack, ['liquidationConsumer', 'auction']);
        expect(ctx.faults.injected).toEqual({ TransactWriteItems: conflicts });
        const errors = errorTexts(consumer.errors);
        for (const e of errors) expect(e).toMatch(/TransactionConflict|ledger\/contention/);
        const receiveCounts = [...consumer.receives.values()].map((r) => Math.max(...r));
        expect(receiveCounts.length).toBe(POSITIONS.length);
        if (conflicts < TRANSACTION_ATTEMPTS) {
          // Fewer than one transaction's attempts: the adapter ran them again, every message done at once.
          expect(errors).toEqual([]);
          expect(Math.max(...receiveCounts)).toBe(1);
        } else {
          // Some delivery was retried because of the conflicts, and every message was finally deleted.
          expect(Math.max(...receiveCounts)).toBeGreaterThan(1);
        }
        const liquidations = await expectSettledOnce(ctx);
        await recordScenario(ctx, `conflicts-${conflicts}`, liquidations, consumer.errors, { receiveCounts });
      });
    },
  );

  it('a failed SendMessageBatch entry is resent by the transport; the liquidation is not lost', async () => {
    await withStack(async (ctx) => {
      // The margin-check's batch holds all three liquidations: p2's entry fails once (server side).
      ctx.inject((clients, faults) =>
        faults.failBatchEntries(clients, { times: 1, matches: (e) => (e.MessageBody ?? '').includes('p2:') }),
      );
      const run = await ctx.ticks(['180', 2]);
      expect(ctx.faults.injected).toEqual({ 'SendMessageBatch.entry': 1 });
      expect(errorTexts(run.errors)).toEqual([]);
      // The transport resent only the failed entry: two SendMessageBatch calls for the tick.
      expect(ctx.handlerClients?.counter.snapshot()['sqs.SendMessageBatch']).toBe(2);
      const liquidations = await expectSettledOnce(ctx);
      await recordScenario(ctx, 'batch-entry-resent', liquidations, run.errors);
    });
  });

  it('an entry failing past the transport retries fails the tick; its retry re-sends, nothing lost', async () => {
    await withStack(async (ctx) => {
      // 4 failures = the first send and its 3 resends: the tick invocation fails and the tick is redelivered.
      ctx.inject((clients, faults) =>
        faults.failBatchEntries(clients, { times: 4, matches: (e) => (e.MessageBody ?? '').includes('p2:') }),
      );
      const logged = vi.spyOn(logger, 'error');
      let failedTick: unknown[] | undefined;
      let errors: Phase['errors'] = [];
      try {
        ({ errors } = await ctx.ticks(['180', 2]));
        expect(ctx.faults.injected).toEqual({ 'SendMessageBatch.entry': 4 });
        expect(errors.map((e) => e.functionId)).toEqual(['marginCheck']);
        expect(String(errors[0]?.error)).toContain('queue/send-failed');
        failedTick = logged.mock.calls.find(([message]) => String(message).startsWith('tick failed'));
      } finally {
        logged.mockRestore();
      }
      // The failure names its tick: Lambda's own error line does not (a review of the logs, session 26).
      expect(failedTick?.[1]).toMatchObject({ symbol: 'ETH-USD', sequence: 2, segment: 0 });
      const liquidations = await expectSettledOnce(ctx);
      await recordScenario(ctx, 'batch-entry-tick-retried', liquidations, errors);
    });
  });

  it("a tick failing on every retry shows its error in `dlq list` (Lambda's on-failure record); redrive settles it", async () => {
    await withStack(async (ctx) => {
      ctx.inject((clients, faults) =>
        faults.failBatchEntries(clients, {
          times: Number.POSITIVE_INFINITY,
          matches: (e) => (e.MessageBody ?? '').includes('p2:'),
        }),
      );
      const { errors } = await ctx.ticks(['180', 2]);
      expect(errors.map((e) => e.functionId)).toEqual(['marginCheck', 'marginCheck']);
      const [dead, ...more] = await listDeadLetters(ctx.deployment, 'tickDeadLetters');
      expect(more).toEqual([]);
      // Before: the bare event, "tick ETH-USD #2: margin-check failed on every retry".
      expect(dead?.reason).toMatch(/^tick ETH-USD #2: QueueSendError: queue\/send-failed: .*InternalError/);

      ctx.faults.disable();
      expect(await redriveDeadLetters(ctx.deployment, 'tickDeadLetters')).toEqual({ moved: 1, failed: [] });
      const recovered = await runPhase(ctx.stack, ALL_FUNCTIONS);
      expect(errorTexts(recovered.errors)).toEqual([]);
      await expectSettledOnce(ctx);
    });
  });

  it('a consumer that times out after settling, before deleting: redelivered after the visibility timeout, settled once', async () => {
    await withStack(async (ctx) => {
      expect(await ctx.stack.putTicks([tickDetail('180', 2)])).toEqual([]);
      expect(errorTexts((await runPhase(ctx.stack, ['marginCheck'])).errors)).toEqual([]);
      const queue = createAwsQueueTransports(ctx.stack.clients, ctx.stack.names).queues.liquidations;
      const [message] = await queue.receive(1, 30);
      expect(message?.receiveCount).toBe(1);
      const { liquidationId } = JSON.parse(message!.body) as { liquidationId: string };
      // The work is done, then the function times out: no delete. The visibility timeout is shortened to 1 s.
      const first = await asFunction('liquidationConsumer', () =>
        processLiquidation({ liquidationId }, wiring().settlement),
      );
      expect(isTerminal(first.state)).toBe(true);
      const journalBefore = await ctx.adapters.ledger.journal(INSURANCE_ACCOUNT);
      await queue.changeVisibility(message!.receiptHandle, 1);

      const consumer = await runPhase(ctx.stack, ['liquidationConsumer', 'auction']);
      expect(errorTexts(consumer.errors)).toEqual([]);
      // Redelivered once the timeout ran out (2nd receive), and acknowledged without doing anything again.
      expect(consumer.receives.get(message!.messageId)).toEqual([2]);
      const after = await ctx.adapters.liquidations.get(liquidationId);
      expect(after?.state).toBe(first.state);
      const journalAfter = await ctx.adapters.ledger.journal(INSURANCE_ACCOUNT);
      const own = (j: typeof journalAfter) =>
        j.filter((e) => e.idempotencyKey.startsWith(`${liquidationId}:`));
      expect(own(journalAfter)).toEqual(own(journalBefore));
      const liquidations = await expectSettledOnce(ctx);
      await recordScenario(ctx, 'visibility-timeout', liquidations, consumer.errors, {
        redeliveredReceiveCount: 2,
        visibilityTimeoutSeconds: 1,
      });
    });
  });

  it('poison messages end in the DLQ after maxReceiveCount receives with their reason; redrive leaves them, discard removes them', async () => {
    await withStack(async (ctx) => {
      const poison = ['{"liquidationId": "p1:0"', '{"liquidationId": 42}'];
      // A body no retry can read comes back within a second each time, not after the backoff (review, session 26).
      const visibilities: number[] = [];
      ctx.inject((clients) => {
        clients.sqs.middlewareStack.add(
          (next, context) => async (args) => {
            if (context.commandName === 'ChangeMessageVisibilityCommand')
              visibilities.push((args.input as { VisibilityTimeout: number }).VisibilityTimeout);
            return next(args);
          },
          { step: 'initialize', name: 'recordPoisonVisibility' },
        );
      });
      for (const body of poison) {
        await ctx.stack.clients.sqs.send(
          new SendMessageCommand({ QueueUrl: ctx.stack.names.queues.liquidations.url, MessageBody: body }),
        );
      }
      const first = await runPhase(ctx.stack, ['liquidationConsumer']);
      // maxReceiveCount 5: five failed deliveries each, then SQS moves them to the DLQ.
      expect([...first.receives.values()]).toEqual(poison.map(() => [1, 2, 3, 4, 5]));
      const errors = errorTexts(first.errors);
      expect(errors.filter((e) => e.includes('liquidation-message/not-json'))).toHaveLength(5);
      expect(errors.filter((e) => e.includes('liquidation-message/malformed: liquidationId'))).toHaveLength(
        5,
      );
      expect(errors).toHaveLength(10);
      expect(visibilities).toEqual(Array.from({ length: 10 }, () => 1));
      const dead = await listDeadLetters(ctx.deployment, 'liquidations');
      expect(dead.map((d) => d.body).sort()).toEqual([...poison].sort());
      for (const d of dead) {
        expect(d.reason).toBe('poison: not a liquidation message');
        expect(d.receiveCount).toBeGreaterThanOrEqual(5);
      }
      const failedIds = new Set(first.errors.flatMap((e) => e.messageIds));
      expect(failedIds).toEqual(new Set(dead.map((d) => d.messageId)));

      // Redrive leaves them: sent back they would fail five more times and come back as new dead letters, their
      // alarm, aging and expiry restarted (a drill of the runbook in session 38).
      const redriven = await redriveDeadLetters(ctx.deployment, 'liquidations');
      expect(redriven.moved).toBe(0);
      expect(redriven.failed.map((f) => f.reason)).toEqual(
        redriven.failed.map(
          (f) =>
            `poison: not a liquidation message; backstop dlq discard --queue liquidations --message-id ${f.messageId} removes it`,
        ),
      );
      expect(redriven.failed).toHaveLength(poison.length);
      const again = await listDeadLetters(ctx.deployment, 'liquidations');
      expect(again.map((d) => d.messageId).sort()).toEqual(dead.map((d) => d.messageId).sort());
      // Discarded, their bodies returned (the only copy left).
      const gone = await discardDeadLetters(
        ctx.deployment,
        'liquidations',
        dead.map((d) => d.messageId),
      );
      expect(gone.discarded.map((d) => d.body).sort()).toEqual([...poison].sort());
      expect(gone.notFound).toEqual([]);
      expect(await listDeadLetters(ctx.deployment, 'liquidations')).toEqual([]);
      // The liquidation a poison body names was never touched.
      expect(await ctx.adapters.liquidations.get('p1:0')).toBeUndefined();
      recordFigures('5-aws-faults-poison', {
        poisonMessages: poison.length,
        failedRecords: errorTexts(first.errors).length,
        deadLetters: dead.map((d) => ({ receiveCount: d.receiveCount, reason: d.reason })),
        discarded: gone.discarded.length,
      });
    });
  });

  it('a valid liquidation dead-lettered by a persistent fault is recovered by redrive once the fault is gone', async () => {
    await withStack(async (ctx) => {
      expect(await ctx.stack.putTicks([tickDetail('180', 2)])).toEqual([]);
      expect(errorTexts((await runPhase(ctx.stack, ['marginCheck'])).errors)).toEqual([]);
      // Every consumer transaction conflicts until the fault is cleared: all three messages dead-letter.
      const backoffs: number[] = [];
      ctx.inject((clients, faults) => {
        faults.failCalls(clients, [
          { operation: 'TransactWriteItems', times: Number.POSITIVE_INFINITY, error: transactionConflict },
        ]);
        clients.sqs.middlewareStack.add(
          (next, context) => async (args) => {
            if (context.commandName === 'ChangeMessageVisibilityCommand') {
              backoffs.push((args.input as { VisibilityTimeout: number }).VisibilityTimeout);
            }
            return next(args);
          },
          { step: 'initialize', name: 'recordBackoffs' },
        );
      });
      const failing = await runPhase(ctx.stack, ['liquidationConsumer', 'auction']);
      // Each message delivered maxReceiveCount (5) times, each delivery failing on the injected conflict.
      expect([...failing.receives.values()]).toEqual(POSITIONS.map(() => [1, 2, 3, 4, 5]));
      // The consumer backed each failed receive off on the queue's schedule (the runner's fast retries then
      // brought it back at once); the fifth, the last, comes back within a second: its next receive dead-letters it.
      const schedule = QUEUES.find((q) => q.id === 'liquidations')!.deadLetter!.retryBackoffSeconds;
      expect(backoffs.sort((a, b) => a - b)).toEqual(
        POSITIONS.flatMap(() => [...schedule.slice(0, 4), 1]).sort((a, b) => a - b),
      );
      expect(errorTexts(failing.errors)).toHaveLength(5 * POSITIONS.length);
      for (const e of errorTexts(failing.errors)) expect(e).toMatch(/TransactionConflict|ledger\/contention/);
      const dead = await listDeadLetters(ctx.deployment, 'liquidations');
      expect(dead).toHaveLength(POSITIONS.length);
      // `dlq list` gives the error itself, recorded by the consumer on the record at the last (5th) receive,
      // not only where the record stands.
      const failure = /(TransactionCanceledException: .*TransactionConflict|ledger\/contention)/;
      for (const d of dead) {
        expect(d.receiveCount).toBeGreaterThanOrEqual(5);
        expect(d.reason).toMatch(/^liquidation p\d:\d+ in [A-Z_]+/);
        expect(d.reason).toMatch(
          new RegExp(`; last failure \\(receive 5, \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z\\): ${failure.source}`),
        );
      }
      const stuck = await liquidationsOf(ctx);
      expect(stuck.filter((l) => isTerminal(l.state))).toEqual([]);
      for (const l of stuck) {
        expect(l.lastFailure, l.id).toMatchObject({ attempt: 5, reason: expect.stringMatching(failure) });
      }

      // The fault is fixed (`backstop dlq redrive`): every message goes back and settles once.
      ctx.faults.disable();
      expect(await redriveDeadLetters(ctx.deployment, 'liquidations')).toEqual({
        moved: POSITIONS.length,
        failed: [],
      });
      const recovered = await runPhase(ctx.stack, ['liquidationConsumer', 'auction']);
      expect(errorTexts(recovered.errors)).toEqual([]);
      const liquidations = await expectSettledOnce(ctx);
      await recordScenario(ctx, 'dlq-redrive-recovers', liquidations, failing.errors, {
        deadLettered: dead.map((d) => ({ receiveCount: d.receiveCount, reason: d.reason })),
      });
    });
  });

  it('a dead-lettered auction step shows its recorded error in `dlq list`; redrive finishes the auction', async () => {
    await withStack(async (ctx) => {
      await admin(ctx.stack, {
        action: 'registerProvider',
        id: 'lp-1',
        capital: '100000',
        maxDiscount: '0.01',
        maxLot: '100',
        symbols: ['ETH-USD'],
      });
      // A mark just past p1's liquidation price only: its slice goes to the auction.
      expect(await ctx.stack.putTicks([tickDetail('184', 2)])).toEqual([]);
      expect(errorTexts((await runPhase(ctx.stack, ['marginCheck', 'liquidationConsumer'])).errors)).toEqual(
        [],
      );
      const [inAuction] = await liquidationsOf(ctx);
      expect(inAuction?.state).toBe('AUCTION');
      const auctionId = `${inAuction?.id}:auction`;
      ctx.inject((clients, faults) =>
        faults.failCalls(clients, [
          { operation: 'TransactWriteItems', times: Number.POSITIVE_INFINITY, error: transactionConflict },
        ]),
      );
      const failing = await runPhase(ctx.stack, ['auction']);
      // Step 0 delivered maxReceiveCount times. A delivery whose commit held the auction alone scheduled step 1
      // before failing; one that ran late enough for the falling price to reach the provider's bid (a busy
      // machine) committed a fill too, and a cleared auction schedules nothing. The step-1 messages no longer
      // match the auction's step: each is received once, stale, and deleted.
      const receives = [...failing.receives.values()];
      expect(receives.filter((r) => r.length > 1)).toEqual([[1, 2, 3, 4, 5]]);
      const scheduling = errorTexts(failing.errors).filter((e) => /\[TransactionConflict\]$/.test(e));
      expect(receives.filter((r) => r.length === 1)).toEqual(scheduling.map(() => [1]));
      const [dead, ...more] = await listDeadLetters(ctx.deployment, 'auctionSteps');
      expect(more).toEqual([]);
      expect(dead?.reason).toMatch(
        new RegExp(
          `^auction ${auctionId} step 0 \\(at step 0, RUNNING\\) of liquidation ${inAuction?.id}; ` +
            'last failure \\(receive 5, [^)]+\\): .*TransactionConflict',
        ),
      );
      expect((await ctx.adapters.auctions.get(auctionId))?.lastFailure).toMatchObject({ attempt: 5 });

      ctx.faults.disable();
      expect(await redriveDeadLetters(ctx.deployment, 'auctionSteps')).toEqual({ moved: 1, failed: [] });
      const recovered = await runPhase(ctx.stack, ['liquidationConsumer', 'auction']);
      expect(errorTexts(recovered.errors)).toEqual([]);
      expect((await ctx.adapters.auctions.get(auctionId))?.state).toBe('CLEARED');
      // The auction closed the whole slice. Its price falls with wall time (1% a second), so on a busy machine
      // it clears below the bankruptcy price and the fund pays the shortfall: the last layer that acted names it.
      const settled = await ctx.adapters.liquidations.get(inAuction!.id);
      expect(settled?.settlement?.auctionClosedSize).toBe(inAuction?.remainingSize);
      expect(settled?.state).toBe(
        (settled?.settlement?.insurancePaid ?? 0n) > 0n ? 'SETTLED_INSURANCE' : 'SETTLED_AUCTION',
      );
      expect(await queueDepths(ctx.stack.clients, ctx.stack.names)).toMatchObject({
        auctionSteps: 0,
        auctionStepsDlq: 0,
        liquidations: 0,
      });
    }, AUCTION_ONLY);
  });
});
