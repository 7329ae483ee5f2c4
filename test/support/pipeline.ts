import {
  createEmbeddedAdapters,
  type EmbeddedAdapters,
  ManualClock,
} from '../../shared/adapters/embedded/index.ts';
import { SimulatedVenue } from '../../shared/adapters/venue/simulated.ts';
import { DEFAULT_RISK_CONFIG, type RiskConfig } from '../../shared/domain/config.ts';
import type { Side } from '../../shared/domain/model.ts';
import type { Tick } from '../../shared/domain/tick.ts';
import { parseBase, parsePpm, parsePrice, parseQuote } from '../../shared/domain/units.ts';
import type { CrashHook, PositionRecord, ReceivedMessage, Telemetry } from '../../shared/ports/index.ts';
import { parseAuctionStepMessage, parseLiquidationMessage } from '../../shared/schemas/messages.ts';
import { processAuctionStep } from '../../shared/services/auction.ts';
import { INSURANCE_ACCOUNT, type SettlementDeps } from '../../shared/services/context.ts';
import { processLiquidation } from '../../shared/services/liquidation.ts';
import { handleTick, type TickOutcome, withLiquidationPrice } from '../../shared/services/margin-check.ts';

/** Telemetry that records what the services emit, for assertions. */
export class RecordingTelemetry implements Telemetry {
  readonly counts = new Map<string, number>();
  readonly observations: { metric: string; value: number; dimensions?: Readonly<Record<string, string>> }[] =
    [];
  readonly warnings: string[] = [];
  count(metric: string, value = 1, dimensions?: Readonly<Record<string, string>>): void {
    const key = dimensions ? `${metric}:${Object.values(dimensions).join(',')}` : metric;
    this.counts.set(key, (this.counts.get(key) ?? 0) + value);
  }
  observe(metric: string, value: number, dimensions?: Readonly<Record<string, string>>): void {
    this.observations.push({ metric, value, ...(dimensions ? { dimensions } : {}) });
  }
  info(): void {}
  warn(message: string): void {
    this.warnings.push(message);
  }
  total(metric: string): number {
    let sum = 0;
    for (const [key, value] of this.counts) if (key === metric || key.startsWith(`${metric}:`)) sum += value;
    return sum;
  }
}

export const T0 = Date.UTC(2020, 2, 12, 9, 0, 0);

export interface PipelineOptions {
  readonly config?: RiskConfig;
  readonly strategy?: 'waterfall' | 'market-only';
  readonly crashHook?: CrashHook;
}

/**
 * The whole backstop on the embedded adapters with a manual clock: ticks go through margin-check, queued
 * messages through the consumer and the auction, exactly as the Lambda handlers call the services, with SQS
 * semantics (visibility timeout, redelivery, DLQ) from the embedded queues.
 */
export function createPipeline(options: PipelineOptions = {}) {
  const clock = new ManualClock(T0);
  const adapters: EmbeddedAdapters = createEmbeddedAdapters({
    clock,
    ...(options.crashHook ? { crashHook: options.crashHook } : {}),
  });
  const venue = new SimulatedVenue({ clock });
  const config = options.config ?? DEFAULT_RISK_CONFIG;
  const telemetry = new RecordingTelemetry();
  const deps: SettlementDeps = {
    ...adapters,
    venue,
    config,
    telemetry,
    strategy: options.strategy ?? 'waterfall',
    insuranceAccount: INSURANCE_ACCOUNT,
    venueAttempts: 3,
  };
  let sequence = 0;
  const venueSequence = new Map<string, number>();
  const errors: string[] = [];

  async function tick(symbol: string, price: string, extra: Partial<Tick> = {}): Promise<TickOutcome> {
    sequence += 1;
    const markPrice = parsePrice(price);
    const t: Tick = {
      symbol,
      markPrice,
      timestampMs: clock.nowMs(),
      sequence,
      source: 'test',
      ...extra,
    };
    // The market moves once per price, however often the feed delivers it.
    if (t.sequence > (venueSequence.get(symbol) ?? -1)) {
      venueSequence.set(symbol, t.sequence);
      venue.onTick(symbol, markPrice, clock.nowMs());
    }
    return handleTick(t, { ...adapters, config, telemetry, maxPositionsPerInvocation: 500 }, clock.nowMs());
  }

  async function deliver(
    queue: EmbeddedAdapters['liquidationQueue'],
    handle: (message: ReceivedMessage) => Promise<unknown>,
  ): Promise<number> {
    const batch = await queue.receive(10, 30);
    for (const message of batch) {
      try {
        await handle(message);
        await queue.delete(message.receiptHandle);
      } catch (error) {
        // Left in flight: SQS redelivers it after the visibility timeout, then dead-letters it.
        errors.push(`${queue.name}: ${(error as Error).message}`);
      }
    }
    return batch.length;
  }

  /** Delivers every due message, advancing the clock through delays and visibility timeouts, until idle. */
  async function drain(maxSeconds = 4 * 3600): Promise<void> {
    const deadline = clock.nowMs() + maxSeconds * 1000;
    while (clock.nowMs() <= deadline) {
      const handled =
        (await deliver(adapters.liquidationQueue, (m) =>
          processLiquidation(parseLiquidationMessage(m.body).liquidationId, deps),
        )) +
        (await deliver(adapters.auctionQueue, (m) =>
          processAuctionStep(parseAuctionStepMessage(m.body), deps),
        ));
      if (handled > 0) continue;
      const [l, a] = await Promise.all([adapters.liquidationQueue.depth(), adapters.auctionQueue.depth()]);
      if (l.visible + l.inFlight + l.delayed + a.visible + a.inFlight + a.delayed === 0) return;
      clock.advance(1000);
    }
    throw new Error('pipeline did not drain before the deadline');
  }

  let positionCount = 0;
  async function open(
    side: Side,
    size: string,
    entry: string,
    collateral: string,
    symbol = 'ETH-USD',
  ): Promise<PositionRecord> {
    positionCount += 1;
    const record = withLiquidationPrice(
      {
        id: `p${positionCount}`,
        traderId: `t${positionCount}`,
        symbol,
        side,
        size: parseBase(size),
        entryPrice: parsePrice(entry),
        collateral: parseQuote(collateral),
        state: 'OPEN',
        version: 0,
      },
      config,
    );
    await adapters.positions.create(record);
    return record;
  }

  async function provider(
    id: string,
    capital: string,
    maxDiscount: string,
    maxLot: string,
    symbol = 'ETH-USD',
  ) {
    await adapters.providers.put(
      {
        id,
        capital: parseQuote(capital),
        maxDiscountPpm: parsePpm(maxDiscount),
        maxLot: parseBase(maxLot),
        symbols: [symbol],
        version: 0,
      },
      undefined,
    );
  }

  async function fund(amount: string): Promise<void> {
    await adapters.ledger.apply({
      account: INSURANCE_ACCOUNT,
      idempotencyKey: `deposit:${amount}:${clock.nowMs()}`,
      amount: parseQuote(amount),
      kind: 'deposit',
      reference: 'test',
      atMs: clock.nowMs(),
      floor: 0n,
    });
  }

  return { clock, adapters, venue, config, telemetry, deps, tick, drain, open, provider, fund, errors };
}

export type Pipeline = ReturnType<typeof createPipeline>;
