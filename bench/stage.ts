import { randomUUID } from 'node:crypto';
import {
  type AwsAdapters,
  createAwsAdapters,
  createAwsQueueTransports,
  PositionIndexLayout,
} from '../shared/adapters/aws/index.ts';
import type { MarketShards } from '../shared/adapters/aws/position-layout.ts';
import { systemClock } from '../shared/adapters/embedded/clock.ts';
import {
  DEFAULT_RISK_CONFIG,
  DEFAULT_RISK_CONFIG_INPUT,
  marketConfig,
  type RiskConfigInput,
} from '../shared/domain/config.ts';
import {
  BASE_SCALE,
  formatPrice,
  minBig,
  PRICE_SCALE,
  type PriceE8,
  QUOTE_SCALE,
} from '../shared/domain/units.ts';
import { type LocalStack, startLocalStack } from '../shared/local/stack.ts';
import type { PositionRecord } from '../shared/ports/index.ts';
import { createLocalRunner, type LambdaHandler } from '../shared/runner/index.ts';
import { withLiquidationPrice } from '../shared/services/margin-check.ts';
import { FUNCTIONS, type FunctionId } from '../shared/topology.ts';
import { type BenchIds, benchId, sequenceBefore } from './ids.ts';

/**
 * One local stage on the emulator for the AWS benchmarks: resources from the topology and the project's handlers,
 * driven in phases (only the functions a phase names run, until their queues are idle) so every API call can be
 * attributed to a tick or to the liquidations it started. Handlers are wrapped to time each invocation.
 */

export const SYMBOL = 'ETH-USD';
const PHASE_DEADLINE_MS = 15 * 60_000;
const SEED_CONCURRENCY = 8;

export interface Invocations {
  readonly count: number;
  readonly totalMs: number;
}

/**
 * `config` with marks that never go stale: a stage's ticks come only when a phase moves the price, and its work on
 * a slow emulator may outlast maxMarkAgeSeconds (a live feed would keep the mark fresh meanwhile).
 */
const withHeldMarks = (config: RiskConfigInput): RiskConfigInput => ({
  ...config,
  markets: config.markets.map((m) => ({ ...m, maxMarkAgeSeconds: 1e9 })),
});

export class BenchStage {
  #sequence: number;
  /** Invocations that failed (and were retried) in this stage's phases. */
  failedInvocations = 0;
  readonly #timings = new Map<FunctionId, { count: number; totalMs: number }>();
  readonly handlers: Record<FunctionId, LambdaHandler>;
  readonly adapters: AwsAdapters;

  private constructor(
    readonly stack: LocalStack,
    readonly name: string,
    positionIndexShards: Readonly<Record<string, MarketShards>>,
    ids: BenchIds,
  ) {
    this.#sequence = sequenceBefore(ids);
    this.adapters = createAwsAdapters({
      clients: stack.clients,
      names: stack.names,
      clock: systemClock,
      positionLayout: new PositionIndexLayout(positionIndexShards),
    });
    this.handlers = Object.fromEntries(
      (Object.entries(stack.handlers) as [FunctionId, LambdaHandler][]).map(([id, h]) => [
        id,
        this.#timed(id, h),
      ]),
    ) as Record<FunctionId, LambdaHandler>;
  }

  static async open(
    endpoint: string,
    stage: string,
    config?: RiskConfigInput,
    positionIndexShards: Readonly<Record<string, MarketShards>> = {},
    ids: BenchIds = 'short',
  ): Promise<BenchStage> {
    const stack = await startLocalStack({
      endpoint,
      stage,
      fastRetries: true,
      riskConfig: withHeldMarks(config ?? DEFAULT_RISK_CONFIG_INPUT),
      positionIndexShards,
    });
    // Phases run their own runners; the stack's would take every message.
    await stack.runner.stop();
    return new BenchStage(stack, stage, positionIndexShards, ids);
  }

  /** Invocations and their total wall time per function since the stage opened. */
  invocations(): Map<FunctionId, Invocations> {
    return new Map([...this.#timings].map(([id, t]) => [id, { ...t }]));
  }

  #timed(id: FunctionId, handler: LambdaHandler): LambdaHandler {
    const call = handler as unknown as (event: unknown, context: unknown) => Promise<unknown>;
    return (async (event: unknown, context: unknown) => {
      const start = performance.now();
      try {
        return await call(event, context);
      } finally {
        const t = this.#timings.get(id) ?? { count: 0, totalMs: 0 };
        t.count += 1;
        t.totalMs += performance.now() - start;
        this.#timings.set(id, t);
      }
    }) as unknown as LambdaHandler;
  }

  async admin(request: unknown): Promise<void> {
    const call = this.stack.handlers.admin as unknown as (e: unknown, c: unknown) => Promise<unknown>;
    const result = (await call(request, LAMBDA_CONTEXT)) as { ok: boolean; reason?: string };
    if (!result.ok) throw new Error(`bench/admin-refused: ${JSON.stringify(result)}`);
  }

  /** A market's first print waits for a second that agrees (domain/tick.ts): two prints, then margin-check. */
  async openMarket(mark: PriceE8): Promise<void> {
    await this.putTick(mark);
    await this.putTick(mark);
    await this.phase(['marginCheck']);
  }

  /** Puts one tick on the bus now; returns its sequence. */
  async putTick(mark: PriceE8): Promise<number> {
    this.#sequence += 1;
    const failures = await this.stack.putTicks([
      {
        symbol: SYMBOL,
        markPrice: formatPrice(mark),
        timestamp: Date.now(),
        sequence: this.#sequence,
        source: 'bench',
      },
    ]);
    if (failures.length > 0) throw new Error(`bench/put-failed: ${failures.join(', ')}`);
    return this.#sequence;
  }

  /**
   * Runs only `functions` until their queues are idle. A failed invocation is retried as on AWS (and its calls
   * counted); the count of failures is returned, and callers check the records' final states.
   */
  async phase(functions: readonly FunctionId[]): Promise<number> {
    const runner = this.runner(functions);
    runner.start();
    try {
      await runner.runUntilIdle({ deadlineMs: PHASE_DEADLINE_MS });
    } finally {
      await runner.stop();
    }
    this.failedInvocations += runner.errors.length;
    return runner.errors.length;
  }

  /** A runner of `functions` (timed handlers) on this stage's queues; the caller starts and stops it. */
  runner(functions: readonly FunctionId[], wrap: Partial<Record<FunctionId, LambdaHandler>> = {}) {
    const transports = createAwsQueueTransports(this.stack.clients, this.stack.names);
    return createLocalRunner({
      handlers: Object.fromEntries(functions.map((id) => [id, wrap[id] ?? this.handlers[id]])),
      queues: transports.queues,
      tickQueue: transports.tickQueue,
      failureVisibilitySeconds: 0,
      schedules: false,
      stage: this.name,
    });
  }

  /** Creates positions directly in the table (the benchmark's own client: not counted as handler calls). */
  async seed(positions: readonly PositionRecord[]): Promise<void> {
    let next = 0;
    const worker = async () => {
      while (next < positions.length) {
        const p = positions[next++]!;
        await this.adapters.positions.create(p);
      }
    };
    await Promise.all(Array.from({ length: SEED_CONCURRENCY }, worker));
  }

  async close(): Promise<void> {
    await this.stack.stop();
  }
}

const LAMBDA_CONTEXT = {
  functionName: 'admin',
  awsRequestId: 'bench',
  invokedFunctionArn: 'arn:aws:lambda:us-east-1:000000000000:function:admin',
  getRemainingTimeInMillis: () => 30_000,
};

export const memoryOf = (id: FunctionId): number => FUNCTIONS.find((f) => f.id === id)?.memoryMb ?? 1024;

/**
 * `count` longs of 1 ETH entered at 200 USD whose liquidation prices step evenly from `topUsd` down to
 * `bottomUsd` (collateral = 200 - (1 - m) * L), most endangered first; ids as `ids` says.
 */
export function ladder(
  prefix: string,
  count: number,
  topUsd: number,
  bottomUsd: number,
  ids: BenchIds = 'short',
): PositionRecord[] {
  // Floats only place the targets; the records are exact (withLiquidationPrice).
  const m = Number(marketConfig(DEFAULT_RISK_CONFIG, SYMBOL).maintenanceMargin) / 1e6;
  const out: PositionRecord[] = [];
  for (let i = 0; i < count; i++) {
    const target = count === 1 ? topUsd : topUsd - ((topUsd - bottomUsd) * i) / (count - 1);
    const collateralUsd = 200 - (1 - m) * target;
    out.push(
      withLiquidationPrice(
        {
          id: benchId(ids, prefix, i),
          traderId: ids === 'uuid' ? randomUUID() : `t-${prefix}-${i}`,
          symbol: SYMBOL,
          side: 'LONG',
          size: BASE_SCALE,
          entryPrice: 200n * PRICE_SCALE,
          collateral: BigInt(Math.round(collateralUsd * Number(QUOTE_SCALE))),
          state: 'OPEN',
          version: 0,
        },
        DEFAULT_RISK_CONFIG,
      ),
    );
  }
  return out.sort((a, b) => (a.liquidationPrice > b.liquidationPrice ? -1 : 1));
}

/** The lowest liquidation price of a group: a falling tick there crosses the whole group and nothing below. */
export const markFor = (group: readonly PositionRecord[]): PriceE8 =>
  group.reduce((low, p) => minBig(low, p.liquidationPrice), group[0]!.liquidationPrice);
