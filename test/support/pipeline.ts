import {
  createEmbeddedAdapters,
  type EmbeddedAdapters,
  ManualClock,
} from '../../shared/adapters/embedded/index.ts';
import { SimulatedVenue, type SimulatedVenueOptions } from '../../shared/adapters/venue/simulated.ts';
import { DEFAULT_RISK_CONFIG, marketConfig, type RiskConfig } from '../../shared/domain/config.ts';
import { isLiquidatable } from '../../shared/domain/margin.ts';
import type { Side } from '../../shared/domain/model.ts';
import type { Tick } from '../../shared/domain/tick.ts';
import {
  NOTIONAL_TO_QUOTE,
  PRICE_SCALE,
  parseBase,
  parsePpm,
  parsePrice,
  parseQuote,
} from '../../shared/domain/units.ts';
import { MARKET_DIMENSION, METRICS } from '../../shared/metrics.ts';
import {
  type CrashHook,
  InjectedCrash,
  type PositionRecord,
  type ReceivedMessage,
  type Telemetry,
  type Venue,
} from '../../shared/ports/index.ts';
import { parseAuctionQueueMessage, parseLiquidationMessage } from '../../shared/schemas/messages.ts';
import type { AdlSnapshots } from '../../shared/services/adl-snapshots.ts';
import { processAuctionMessage } from '../../shared/services/auction.ts';
import { INSURANCE_ACCOUNT, type SettlementDeps } from '../../shared/services/context.ts';
import { processLiquidation } from '../../shared/services/liquidation.ts';
import {
  handleTick,
  type MarginCheckDeps,
  type TickOutcome,
  withLiquidationPrice,
} from '../../shared/services/margin-check.ts';
import { Rng } from '../../shared/sim/random.ts';
import { CountingVenue, checkInvariants, Observer, uncoveredAtTick } from './invariants.ts';

const BY_MARKET = new Set<string>(
  Object.values(METRICS)
    .filter((m) => 'byMarket' in m)
    .map((m) => m.name),
);

/**
 * Telemetry that records what the services emit, for assertions. `counts` is keyed by the metric and its values of
 * the other dimensions (the totals the alarms read); `marketCounts` by the metric and its Market.
 */
export class RecordingTelemetry implements Telemetry {
  readonly counts = new Map<string, number>();
  readonly marketCounts = new Map<string, number>();
  readonly observations: { metric: string; value: number; dimensions?: Readonly<Record<string, string>> }[] =
    [];
  readonly warnings: string[] = [];
  /** Data points of a metric `byMarket` that named no market (shown on no market's graph). */
  readonly unmarked = new Set<string>();
  count(metric: string, value = 1, dimensions?: Readonly<Record<string, string>>): void {
    this.checkMarket(metric, dimensions);
    const { Market: market, ...others } = dimensions ?? {};
    const key = Object.keys(others).length > 0 ? `${metric}:${Object.values(others).join(',')}` : metric;
    this.counts.set(key, (this.counts.get(key) ?? 0) + value);
    if (market !== undefined) {
      const byMarket = `${metric}@${market}`;
      this.marketCounts.set(byMarket, (this.marketCounts.get(byMarket) ?? 0) + value);
    }
  }
  observe(metric: string, value: number, dimensions?: Readonly<Record<string, string>>): void {
    this.checkMarket(metric, dimensions);
    this.observations.push({ metric, value, ...(dimensions ? { dimensions } : {}) });
  }
  private checkMarket(metric: string, dimensions?: Readonly<Record<string, string>>): void {
    if (BY_MARKET.has(metric) && dimensions?.[MARKET_DIMENSION] === undefined) this.unmarked.add(metric);
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
  /** Venue attempts per market order before the auction takes over (default 3). */
  readonly venueAttempts?: number;
  /** handleTick's bound per invocation (default 500); tick() follows the continuations. */
  readonly maxPositionsPerInvocation?: number;
  readonly maxWakesPerTick?: number;
  readonly maxReceiveCount?: Partial<Record<'liquidations' | 'auctionSteps', number>>;
  /** Market model of the simulated venue (default: its defaults). */
  readonly venue?: Omit<SimulatedVenueOptions, 'clock'>;
  /** Stands between the simulated venue and the services (a venue answering in its own way). */
  readonly wrapVenue?: (venue: Venue) => Venue;
  /** Clock start, epoch ms (default T0). */
  readonly startMs?: number;
  /** ADL queues kept between settlements (default none: every ADL settlement ranks its side again). */
  readonly adlSnapshots?: AdlSnapshots;
  /**
   * 'held' (default): the last mark never goes stale, as if the feed kept sending it; the scenarios tick only when
   * the price moves and run auctions for hours between. 'as-configured': marks go stale after the config's
   * maxMarkAgeSeconds, and the work waits for a tick.
   */
  readonly marks?: 'held' | 'as-configured';
  /** Also sees every data point and event the services emit (Powertools' EMF, in a test of what it prints). */
  readonly telemetry?: Telemetry;
}

/** Both telemetries see each data point and event. */
const teeTelemetry = (a: Telemetry, b: Telemetry): Telemetry => ({
  count: (metric, value, dimensions) => {
    a.count(metric, value, dimensions);
    b.count(metric, value, dimensions);
  },
  observe: (metric, value, dimensions) => {
    a.observe(metric, value, dimensions);
    b.observe(metric, value, dimensions);
  },
  info: (message, fields) => {
    a.info(message, fields);
    b.info(message, fields);
  },
  warn: (message, fields) => {
    a.warn(message, fields);
    b.warn(message, fields);
  },
});

/** `config` with marks that never go stale (a feed that keeps sending the last price). */
export const withHeldMarks = (config: RiskConfig): RiskConfig => ({
  ...config,
  markets: config.markets.map((m) => ({ ...m, maxMarkAgeSeconds: 1e9 })),
});

/**
 * The whole backstop on the embedded adapters with a manual clock: ticks go through margin-check, queued
 * messages through the consumer and the auction, exactly as the Lambda handlers call the services, with SQS
 * semantics (visibility timeout, redelivery, DLQ) from the embedded queues.
 */
export function createPipeline(options: PipelineOptions = {}) {
  const clock = new ManualClock(options.startMs ?? T0);
  const adapters: EmbeddedAdapters = createEmbeddedAdapters({
    clock,
    ...(options.crashHook ? { crashHook: options.crashHook } : {}),
    ...(options.maxReceiveCount ? { maxReceiveCount: options.maxReceiveCount } : {}),
  });
  // Watches every write and every order for the invariant checks; the services see the same ports.
  const observer = new Observer(adapters);
  const venue = new SimulatedVenue({ clock, ...options.venue });
  const orders = new CountingVenue(options.wrapVenue ? options.wrapVenue(venue) : venue);
  const configured = options.config ?? DEFAULT_RISK_CONFIG;
  const config = options.marks === 'as-configured' ? configured : withHeldMarks(configured);
  const telemetry = new RecordingTelemetry();
  const emitted = options.telemetry ? teeTelemetry(telemetry, options.telemetry) : telemetry;
  const deps: SettlementDeps = {
    ...adapters,
    venue: orders,
    config,
    telemetry: emitted,
    strategy: options.strategy ?? 'waterfall',
    insuranceAccount: INSURANCE_ACCOUNT,
    venueAttempts: options.venueAttempts ?? 3,
    // Shorter than the 30 s visibility timeout here, as the lease is shorter than the queues' on AWS.
    orderLeaseMs: 20_000,
    ...(options.adlSnapshots ? { adlSnapshots: options.adlSnapshots } : {}),
  };
  const marginDeps: MarginCheckDeps = {
    ...adapters,
    config,
    telemetry: emitted,
    maxPositionsPerInvocation: options.maxPositionsPerInvocation ?? 500,
    ...(options.maxWakesPerTick === undefined ? {} : { maxWakesPerTick: options.maxWakesPerTick }),
  };
  let sequence = 0;
  const venueSequence = new Map<string, number>();
  const errors: string[] = [];
  /** Accepted ticks, and OPEN positions still liquidatable at an accepted tick's mark once it was handled. */
  const accepted: { symbol: string; sequence: number; markPrice: bigint }[] = [];
  const skipped: string[] = [];

  async function tick(symbol: string, price: string, extra: Partial<Tick> = {}): Promise<TickOutcome> {
    sequence += 1;
    const markPrice = parsePrice(price);
    return deliverTick({
      symbol,
      markPrice,
      timestampMs: clock.nowMs(),
      sequence,
      source: 'test',
      ...extra,
    });
  }

  /**
   * Delivers one tick event as EventBridge would invoke margin-check, following its continuations; an accepted
   * tick is then checked against the whole book (nothing it crosses may be left OPEN: `skipped`).
   */
  async function deliverTick(t: Tick): Promise<TickOutcome> {
    // The market moves once per price, however often the feed delivers it.
    if (t.sequence > (venueSequence.get(t.symbol) ?? -1) && t.markPrice > 0n) {
      venueSequence.set(t.symbol, t.sequence);
      venue.onTick(t.symbol, t.markPrice, clock.nowMs());
    }
    const first = await handleTick(t, marginDeps, clock.nowMs());
    if (first.status !== 'accepted') return first;
    let { checked, enqueued } = first;
    let outcome: TickOutcome = first;
    for (let segment = 1; outcome.status === 'accepted' && outcome.needsContinuation; segment++) {
      outcome = await handleTick(t, marginDeps, clock.nowMs(), segment);
      if (outcome.status === 'accepted') {
        checked += outcome.checked;
        enqueued += outcome.enqueued;
      }
    }
    accepted.push({ symbol: t.symbol, sequence: t.sequence, markPrice: t.markPrice });
    for (const miss of uncoveredAtTick(adapters, config, t.symbol, t.markPrice))
      skipped.push(`${t.symbol}#${t.sequence}: ${miss}`);
    return { status: 'accepted', checked, enqueued, needsContinuation: false };
  }

  /** The Lambda handlers' work for one received message of each queue. */
  const handlers = {
    liquidation: (m: ReceivedMessage) => processLiquidation(parseLiquidationMessage(m.body), deps),
    auction: (m: ReceivedMessage) => processAuctionMessage(parseAuctionQueueMessage(m.body), deps),
  };

  /** No message visible, in flight or delayed on either queue. */
  async function idle(): Promise<boolean> {
    const [l, a] = await Promise.all([adapters.liquidationQueue.depth(), adapters.auctionQueue.depth()]);
    return l.visible + l.inFlight + l.delayed + a.visible + a.inFlight + a.delayed === 0;
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
        (await deliver(adapters.liquidationQueue, handlers.liquidation)) +
        (await deliver(adapters.auctionQueue, handlers.auction));
      if (handled > 0) continue;
      if (await idle()) return;
      clock.advance(1000);
    }
    throw new Error('pipeline did not drain before the deadline');
  }

  /**
   * Delivers what falls due until the clock reaches `untilMs` (same delivery as drain), then sets the clock there:
   * queued work runs between the ticks of a replay instead of jumping the clock past the next one.
   */
  async function runUntil(untilMs: number): Promise<void> {
    for (;;) {
      const handled =
        (await deliver(adapters.liquidationQueue, handlers.liquidation)) +
        (await deliver(adapters.auctionQueue, handlers.auction));
      if (handled > 0) continue;
      if (clock.nowMs() + 1000 > untilMs) break;
      clock.advance(1000);
    }
    if (clock.nowMs() < untilMs) clock.set(untilMs);
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

  /** The provider takes no lot any more (its capital stays): its standing bids can take nothing. */
  async function withdrawBids(id: string): Promise<void> {
    const current = await adapters.providers.get(id);
    if (!current) throw new Error(`no provider ${id}`);
    await adapters.providers.put({ ...current, maxLot: 0n, version: current.version + 1 }, current.version);
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

  /** Bulk-creates positions (OPEN ones must be healthy at the last accepted mark, as admin requires). */
  function seed(records: readonly PositionRecord[]): void {
    adapters.positions.createMany(records);
  }

  /**
   * Every invariant of issue 7 over the records so far (see invariants.ts), plus the per-tick `skipped`, and the
   * per-market metrics emitted without their market (on no market's graph).
   */
  async function check(allowedDeadLetters = 0) {
    const report = await checkInvariants({
      adapters,
      config,
      observer,
      venue: orders,
      insuranceAccount: INSURANCE_ACCOUNT,
      allowedDeadLetters,
    });
    report.violations.push(...skipped.map((s) => `skipped: ${s}`));
    report.violations.push(...[...telemetry.unmarked].map((m) => `metric without its market: ${m}`));
    return report;
  }

  return {
    clock,
    adapters,
    venue,
    config,
    telemetry,
    deps,
    tick,
    drain,
    open,
    provider,
    withdrawBids,
    fund,
    errors,
    // Additions for the stress suite (test/stress).
    marginDeps,
    observer,
    orders,
    accepted,
    skipped,
    deliverTick,
    runUntil,
    seed,
    handlers,
    idle,
    check,
  };
}

export type Pipeline = ReturnType<typeof createPipeline>;

export interface BookSpec {
  readonly count: number;
  readonly seed: number;
  /** Price every entry is drawn around, and at which every position must be healthy. */
  readonly price: string;
  readonly symbol?: string;
  /** Share of longs (default 0.7: books lean long into a sell-off). */
  readonly longShare?: number;
  /** Leverage drawn uniformly in [min, max] (default 2x to 19x; the market allows 20x). */
  readonly minLeverage?: number;
  readonly maxLeverage?: number;
  /** Notional in USD, log-uniform in [min, max] (default 1,000 to 50,000). */
  readonly minNotional?: number;
  readonly maxNotional?: number;
  readonly idPrefix?: string;
}

/**
 * A seeded book of isolated-margin positions around `price` (entries within about 1 % of it), all healthy at
 * `price`. Floats only shape the draws; the records are exact bigints. Ids are `${prefix}${i}`.
 */
export function syntheticBook(spec: BookSpec, config: RiskConfig = DEFAULT_RISK_CONFIG): PositionRecord[] {
  const symbol = spec.symbol ?? 'ETH-USD';
  const m = marketConfig(config, symbol).maintenanceMargin;
  const mark = parsePrice(spec.price);
  const rng = new Rng(spec.seed);
  const center = Number(mark) / Number(PRICE_SCALE);
  const [minLev, maxLev] = [spec.minLeverage ?? 2, spec.maxLeverage ?? 19];
  const [minNotional, maxNotional] = [spec.minNotional ?? 1000, spec.maxNotional ?? 50_000];
  const book: PositionRecord[] = [];
  for (let i = 1; book.length < spec.count; i++) {
    const side: Side = rng.chance(spec.longShare ?? 0.7) ? 'LONG' : 'SHORT';
    const notional = rng.logUniform(minNotional, maxNotional);
    const leverage = rng.uniform(minLev, maxLev);
    const entryCents = Math.max(1, Math.round(center * (1 + 0.004 * rng.normal()) * 100));
    const entryPrice = BigInt(entryCents) * (PRICE_SCALE / 100n);
    const size = (BigInt(Math.floor(notional * 1e6)) * NOTIONAL_TO_QUOTE) / entryPrice;
    const collateral = BigInt(Math.ceil((notional / leverage) * 1e6));
    if (size <= 0n) continue;
    const record = withLiquidationPrice(
      {
        id: `${spec.idPrefix ?? 'b'}${i}`,
        traderId: `trader-${i}`,
        symbol,
        side,
        size,
        entryPrice,
        collateral,
        state: 'OPEN',
        version: 0,
      },
      config,
    );
    if (!isLiquidatable(record, mark, m)) book.push(record);
  }
  return book;
}

/** A crash hook that, once armed, kills the next delivery to reach `point` (once): `crashed` says it did. */
export function crashOnceAt(point: string) {
  let armed = false;
  let crashed = false;
  return {
    arm: () => {
      armed = true;
    },
    crashed: () => crashed,
    hook: ((at: string) => {
      if (!armed || at !== point) return;
      armed = false;
      crashed = true;
      throw new InjectedCrash(at);
    }) as CrashHook,
  };
}
